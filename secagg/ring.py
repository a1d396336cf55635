"""Vectors over Z_(2^bits): the one definition of their bit width, dtype, size and range.

Every layer that holds a vector of ``bits``-bit values (the PRG, masking, packing, the
protocols' configs, messages and clients) asks this module, so the rules cannot drift
apart:

* ``bits`` is an int in 1..:data:`MAX_BITS` (:func:`check_bits`);
* values are stored as uint32 up to 32 bits and uint64 above (:func:`dtype_for_bits`);
* ``length`` values bit-packed take exactly ``ceil(length * bits / 8)`` bytes
  (:func:`packed_size`);
* an input vector is a 1-D integer array of the session's length with every value in
  [0, 2^bits) (:func:`check_values`), checked once, where a client takes its input.
"""

from __future__ import annotations

import numpy as np

from secagg.errors import ConfigurationError

__all__ = [
    "MAX_BITS",
    "check_bits",
    "check_values",
    "dtype_for_bits",
    "packed_size",
    "value_mask",
]

MAX_BITS = 64
_UINT32 = np.dtype(np.uint32)
_UINT64 = np.dtype(np.uint64)


def check_bits(bits: object) -> int:
    """``bits`` (as an int) if it is an integer in 1..64, else :class:`ConfigurationError`."""
    if isinstance(bits, int | np.integer) and not isinstance(bits, bool) and 1 <= bits <= MAX_BITS:
        return int(bits)
    raise ConfigurationError(f"bits must be an int in 1..{MAX_BITS}, got {bits!r}")


def dtype_for_bits(bits: int) -> np.dtype[np.unsignedinteger]:
    """Storage dtype of Z_(2^bits): uint32 for bits <= 32, uint64 above.

    Raises :class:`ConfigurationError` if bits is not in 1..64.
    """
    return _UINT32 if check_bits(bits) <= 32 else _UINT64


def value_mask(bits: int) -> int:
    """``2^bits - 1``: the AND mask that reduces a storage word to Z_(2^bits)."""
    return (1 << check_bits(bits)) - 1


def packed_size(length: int, bits: int) -> int:
    """Exact byte length of ``length`` packed ``bits``-bit values: ``ceil(length*bits/8)``.

    Raises :class:`ConfigurationError` for ``bits`` not in 1..64 or ``length`` not a
    non-negative int.
    """
    check_bits(bits)
    if not isinstance(length, int | np.integer) or isinstance(length, bool) or length < 0:
        raise ConfigurationError(f"length must be a non-negative int, got {length!r}")
    return (int(length) * bits + 7) // 8


def check_values(
    vector: object, bits: int, length: int | None = None, what: str = "the input"
) -> np.ndarray:
    """``vector`` itself if it is a 1-D numpy integer array (of ``length`` values, when
    given) with every value in [0, 2^bits); else :class:`ConfigurationError` naming
    ``what`` and the rule it breaks. Never copies; one pass over the values at most."""
    check_bits(bits)
    if not isinstance(vector, np.ndarray) or vector.dtype.kind not in "ui":
        raise ConfigurationError(f"{what} must be a numpy array of an integer dtype")
    if vector.ndim != 1 or (length is not None and vector.shape[0] != length):
        expected = "a 1-D array" if length is None else f"shape ({length},)"
        raise ConfigurationError(f"{what} must have {expected}, got shape {vector.shape}")
    needs_check = vector.dtype.kind == "i" or vector.dtype.itemsize * 8 > bits
    if (
        vector.size
        and needs_check
        and (int(vector.min()) < 0 or int(vector.max()) > value_mask(bits))
    ):
        raise ConfigurationError(f"{what} must hold values in [0, 2^{bits})")
    return vector
