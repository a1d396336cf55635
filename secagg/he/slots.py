"""Slot packing: many Z_(2^b) values in one big plaintext, with carry-proof slots.

A plaintext of ``capacity_bits`` bits is cut into ``slots`` slots of ``slot_bits`` bits, slot
``k`` holding bits ``[k * slot_bits, (k + 1) * slot_bits)`` (little-endian order). Each value is
an element of Z_(2^value_bits) stored as its representative in ``[0, 2^value_bits)``; adding
packed plaintexts adds slot by slot as long as no slot overflows, and the slot width

    slot_bits = value_bits + ceil(log2(max_summands)) + guard_bits

guarantees that a sum of at most ``max_summands`` packed plaintexts never carries into the next
slot: ``max_summands * (2^value_bits - 1) < 2^slot_bits``. Unpacking keeps the low
``value_bits`` bits of every slot, which is the sum reduced mod 2^value_bits, exactly the sum
of the encodings in :mod:`secagg.encoding` (two's complement over Z_(2^b)).

``capacity_bits`` is chosen below the plaintext modulus (``modulus.bit_length() - 1`` for a
Paillier ``n``), so a packed sum is an integer smaller than the modulus and never wraps.

Packing and unpacking are vectorized bit manipulations (``np.unpackbits``/``np.packbits``);
the only Python loop runs over plaintexts (one per ``slots`` values), never over values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from secagg.errors import ConfigurationError, DecodeError, HeadroomError

__all__ = ["MAX_CAPACITY_BITS", "MAX_VALUE_BITS", "SlotLayout", "pack", "unpack"]

MAX_VALUE_BITS = 64
"""Values are held in uint64 arrays."""
MAX_CAPACITY_BITS = 1 << 20
"""Largest plaintext a layout describes (far above any key): a loaded layout stays cheap."""


@dataclass(frozen=True)
class SlotLayout:
    """How values are laid out in a plaintext of ``capacity_bits`` bits.

    Raises ConfigurationError for out-of-range parameters (``capacity_bits`` above
    :data:`MAX_CAPACITY_BITS` included) and HeadroomError when not even one slot of the
    required width fits in ``capacity_bits``.
    """

    value_bits: int
    max_summands: int
    capacity_bits: int
    guard_bits: int = 1

    def __post_init__(self) -> None:
        for name in ("value_bits", "max_summands", "capacity_bits", "guard_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigurationError(f"{name} must be an int, got {type(value).__name__}")
        if not 1 <= self.value_bits <= MAX_VALUE_BITS:
            raise ConfigurationError(f"value_bits must be in [1, {MAX_VALUE_BITS}]")
        if self.max_summands < 1:
            raise ConfigurationError("max_summands must be at least 1")
        if self.guard_bits < 0:
            raise ConfigurationError("guard_bits must be non-negative")
        if not 1 <= self.capacity_bits <= MAX_CAPACITY_BITS:
            raise ConfigurationError(f"capacity_bits must be in [1, {MAX_CAPACITY_BITS}]")
        if self.slot_bits > self.capacity_bits:
            raise HeadroomError(
                f"a slot of {self.slot_bits} bits does not fit in a {self.capacity_bits}-bit "
                "plaintext: use fewer value bits, fewer summands or a larger key"
            )
        # The invariant every other guarantee of this module rests on; holds by construction.
        if self.max_summands * ((1 << self.value_bits) - 1) >= 1 << self.slot_bits:
            raise HeadroomError("slot too narrow for the configured number of summands")

    @classmethod
    def for_modulus(
        cls, modulus: int, *, value_bits: int, max_summands: int, guard_bits: int = 1
    ) -> SlotLayout:
        """The layout for plaintexts modulo ``modulus`` (e.g. a Paillier ``n``).

        Uses ``modulus.bit_length() - 1`` bits, so every packed sum is below the modulus.
        """
        if modulus < 4:
            raise ConfigurationError("plaintext modulus too small")
        return cls(
            value_bits=value_bits,
            max_summands=max_summands,
            capacity_bits=int(modulus).bit_length() - 1,
            guard_bits=guard_bits,
        )

    @property
    def summand_bits(self) -> int:
        """ceil(log2(max_summands)): the carry room a sum needs."""
        return (self.max_summands - 1).bit_length()

    @property
    def slot_bits(self) -> int:
        return self.value_bits + self.summand_bits + self.guard_bits

    @property
    def slots(self) -> int:
        """Values per plaintext."""
        return self.capacity_bits // self.slot_bits

    @property
    def used_bits(self) -> int:
        """Bits of a plaintext that slots occupy; a packed sum is below 2^used_bits."""
        return self.slots * self.slot_bits

    def plaintexts_for(self, length: int) -> int:
        """How many plaintexts hold ``length`` values."""
        return -(-length // self.slots)

    def to_dict(self) -> dict[str, int]:
        """A msgpack/JSON-ready copy (no secret in it)."""
        return {
            "value_bits": self.value_bits,
            "max_summands": self.max_summands,
            "capacity_bits": self.capacity_bits,
            "guard_bits": self.guard_bits,
        }

    @classmethod
    def from_dict(cls, data: object) -> SlotLayout:
        """Inverse of :meth:`to_dict`; DecodeError on anything malformed."""
        keys = ("value_bits", "max_summands", "capacity_bits", "guard_bits")
        if not isinstance(data, dict) or set(data) != set(keys):
            raise DecodeError("malformed slot layout")
        values = [data[k] for k in keys]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise DecodeError("malformed slot layout")
        try:
            return cls(*values)
        except ConfigurationError as exc:
            raise DecodeError(f"invalid slot layout: {exc}") from None


def _check_values(values: np.ndarray, value_bits: int) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        raise ConfigurationError("values must be a one-dimensional numpy array")
    if values.dtype.kind not in "ui":
        raise ConfigurationError(f"values must be integers, got dtype {values.dtype}")
    if values.size and values.dtype.kind == "i" and int(values.min()) < 0:
        raise ConfigurationError("values must be non-negative representatives of Z_(2^b)")
    if values.size and value_bits < 64 and int(values.max()) >> value_bits:
        raise ConfigurationError(f"a value does not fit in {value_bits} bits")
    return values.astype("<u8", copy=False)


def pack(values: np.ndarray, layout: SlotLayout) -> list[int]:
    """Pack ``values`` (each in ``[0, 2^value_bits)``) into ``plaintexts_for(len)`` ints.

    Guarantees every returned int is below ``2^layout.used_bits`` and that the sum of up to
    ``layout.max_summands`` such packings unpacks to the element-wise sum mod 2^value_bits.
    The last plaintext is padded with zero slots. Raises ConfigurationError for values that
    are not a 1-D integer array within range.
    """
    words = _check_values(values, layout.value_bits)
    count = layout.plaintexts_for(words.shape[0])
    if count == 0:
        return []
    # bits[i, j] = bit j of value i (little-endian); slot k of plaintext p holds value
    # p * slots + k in its low value_bits bits and zeros above.
    bits = np.unpackbits(words.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    slot_bits = layout.slot_bits
    row_bytes = -(-layout.used_bits // 8)
    slot_grid = np.zeros((count * layout.slots, slot_bits), dtype=np.uint8)
    take = min(layout.value_bits, slot_bits)
    slot_grid[: words.shape[0], :take] = bits[:, :take]
    grid = np.zeros((count, row_bytes * 8), dtype=np.uint8)
    grid[:, : layout.used_bits] = slot_grid.reshape(count, layout.used_bits)
    packed = np.packbits(grid, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack(plaintexts: Sequence[int], layout: SlotLayout, length: int) -> np.ndarray:
    """The first ``length`` slot values of ``plaintexts``, each reduced mod 2^value_bits.

    Returns a uint64 array. Raises DecodeError when a plaintext is negative or has bits at
    or above ``layout.used_bits`` (a sum that overflowed its configured summands, or a
    tampered ciphertext), and ConfigurationError when ``length`` does not match the count.
    """
    count = len(plaintexts)
    if length < 0 or layout.plaintexts_for(length) != count:
        raise ConfigurationError(f"{count} plaintexts cannot hold exactly {length} values")
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    row_bytes = -(-layout.used_bits // 8)
    limit = 1 << layout.used_bits
    buffer = bytearray(count * row_bytes)
    for index, plaintext in enumerate(plaintexts):
        value = int(plaintext)
        if value < 0 or value >= limit:
            raise DecodeError(f"plaintext {index} exceeds its slot layout (overflow or tampering)")
        buffer[index * row_bytes : (index + 1) * row_bytes] = value.to_bytes(row_bytes, "little")
    rows = np.frombuffer(bytes(buffer), dtype=np.uint8).reshape(count, row_bytes)
    bits = np.unpackbits(rows, axis=1, bitorder="little")[:, : layout.used_bits]
    slots = bits.reshape(count * layout.slots, layout.slot_bits)[:length]
    out_bits = np.zeros((length, 64), dtype=np.uint8)
    take = min(layout.value_bits, layout.slot_bits)
    out_bits[:, :take] = slots[:, :take]
    return np.packbits(out_bits, axis=1, bitorder="little").view("<u8").reshape(length).copy()
