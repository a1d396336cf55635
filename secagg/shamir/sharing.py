"""t-of-n Shamir secret sharing of 32-byte secrets over GF(2^20 + 7), vectorized with NumPy.

Theory of operation. A 32-byte secret is read as a little-endian 256-bit integer and cut into
``LIMBS = 13`` limbs of ``LIMB_BITS = 20`` bits (the last limb holds the top 16 bits). Each
limb is the constant term of its own random polynomial of degree ``t - 1`` over GF(p),
``p = PRIME = 2^20 + 7``; holder ``x`` gets the 13 evaluations at ``x``. Any ``t`` holders
interpolate every limb at zero; any ``t - 1`` learn nothing (every secret is consistent with
their shares).

Why this prime: every share and Lagrange coefficient is below ``p < 2^21``, so one product
is below ``2^41`` and up to ``_BLOCK`` (8191) products sum exactly in a float64. Sharing is
then one BLAS matrix product ``V (holders x t) @ C (t x limbs*secrets)`` and reconstruction
one ``lambda (1 x t) @ S (t x limbs*secrets)``, reduced mod p between blocks of ``_BLOCK``
terms. The Vandermonde matrix is cached per (holders, t) and the Lagrange coefficients per
holder set, so sharing many secrets to the same holders, or reconstructing many secrets from
the same holders, pays for them once. Holder ids (x coordinates) are 1..p-1, which bounds
client ids to 1_048_582.

Randomness: polynomial coefficients are uniform mod p from ``os.urandom`` by rejection
sampling of 32-bit words (no modulo bias); sharing ids are ``os.urandom(16)``.

Wire format of one share (``SHARE_BYTES = 58`` bytes): a format byte (version 1, this
field), threshold (3 bytes little-endian), x (3 bytes little-endian), the 16-byte sharing id,
then the 13 limb shares bit-packed at 21 bits (the layout of :func:`secagg.packing.pack`,
35 bytes). This module is the one place that knows it: :meth:`Share.from_bytes` reads one
share, :func:`parse_shares` many at once into columns (vectorized over the records, with
the same validation), for a server that reads n * t shares per round.

Compact form. Inside a protocol the receiver already knows x (the holder), the threshold
(the session's) and the sharing (whose secret, from the message it arrived in), so only
the ``LIMB_SHARE_BYTES = 35`` bytes of packed limb shares need to travel:
:func:`pack_limb_shares` writes them (one share or many rows at once),
:func:`unpack_limb_shares` reads one with :meth:`Share.from_bytes`'s strictness
(DecodeError on a stray padding bit or a limb ``>= PRIME``) and :func:`parse_limb_shares`
reads many at once into a validity mask and a value matrix, vectorized over the records.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

import numpy as np

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
    ShareError,
)
from secagg.secret import SecretHolder

__all__ = [
    "LIMBS",
    "LIMB_BITS",
    "LIMB_SHARE_BYTES",
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "SHARING_ID_BYTES",
    "Share",
    "ShareArrays",
    "lagrange_coefficients_at_zero",
    "limbs_to_secrets",
    "pack_limb_shares",
    "parse_limb_shares",
    "parse_shares",
    "reconstruct_secret",
    "reconstruct_secrets",
    "share_secrets",
    "unpack_limb_shares",
]

PRIME = 1_048_583
"""2^20 + 7, the smallest prime above 2^20 (checked by the tests)."""
SECRET_BYTES = 32
LIMB_BITS = 20
LIMBS = -(-SECRET_BYTES * 8 // LIMB_BITS)
"""13 limbs of 20 bits cover 256 bits; the top limb holds only 16."""
SHARE_BITS = PRIME.bit_length()
"""21: bits per packed limb share."""
SHARING_ID_BYTES = 16
_FORMAT = 0x01
"""Format byte: version 1 of the wire format, over GF(2^20 + 7)."""
# The share wire layout, defined here only (Share.to_bytes, Share.from_bytes, parse_shares).
_INT_BYTES = 3
_THRESHOLD_AT = 1
_X_AT = _THRESHOLD_AT + _INT_BYTES
_ID_AT = _X_AT + _INT_BYTES
_LIMBS_AT = _ID_AT + SHARING_ID_BYTES
_PACKED_LIMBS_BYTES = (LIMBS * SHARE_BITS + 7) // 8
LIMB_SHARE_BYTES = _PACKED_LIMBS_BYTES
"""35: the packed limb shares of one share, its compact form (x, threshold, id implied)."""
SHARE_BYTES = _LIMBS_AT + _PACKED_LIMBS_BYTES
_TOP_LIMB_BITS = SECRET_BYTES * 8 - (LIMBS - 1) * LIMB_BITS
# Largest number of products (each <= (p-1)^2) whose sum stays exact in a float64.
_BLOCK = min(4096, (2**53 - 1) // (PRIME - 1) ** 2)
# Accept 32-bit words below the largest multiple of p: uniform mod p, rejection ~0.02 %.
_REJECTION_LIMIT = (2**32 // PRIME) * PRIME
_LIMB_WEIGHTS = (1 << np.arange(LIMB_BITS, dtype=np.int64)).astype(np.int64)
_BIT_POSITIONS = np.arange(LIMB_BITS, dtype=np.int64)


@dataclass(frozen=True, repr=False)
class Share(SecretHolder, export="Share.to_bytes() / Share.from_bytes()"):
    """One holder's share of one 32-byte secret.

    Constructing a Share validates it: ``x`` in 1..PRIME-1 (``x == 0`` raises
    :class:`DuplicateShareError`), ``threshold`` in 1..PRIME-1, a 16-byte ``sharing_id`` and
    ``LIMBS`` values in [0, PRIME) (anything else is a share of another field:
    :class:`IncompatibleSharesError`). ``values`` is stored as a read-only uint32 array.
    ``repr`` shows x, threshold and field, never the values.
    """

    x: int
    threshold: int
    sharing_id: bytes
    values: np.ndarray

    def __post_init__(self) -> None:
        x = _check_x(self.x)
        if (
            not isinstance(self.threshold, int)
            or isinstance(self.threshold, bool)
            or not 1 <= self.threshold < PRIME
        ):
            raise IncompatibleSharesError(f"threshold must be an int in 1..{PRIME - 1}")
        if not isinstance(self.sharing_id, bytes) or len(self.sharing_id) != SHARING_ID_BYTES:
            raise IncompatibleSharesError(f"sharing_id must be {SHARING_ID_BYTES} bytes")
        values = self.values
        if (
            not isinstance(values, np.ndarray)
            or values.shape != (LIMBS,)
            or values.dtype.kind not in "ui"
            or int(values.min()) < 0
            or int(values.max()) >= PRIME
        ):
            raise IncompatibleSharesError(
                f"values must be {LIMBS} integers in [0, {PRIME}): a share of another field"
            )
        stored = values.astype(np.uint32)
        stored.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "values", stored)

    def __repr__(self) -> str:
        return (
            f"Share(x={self.x}, threshold={self.threshold}, field=GF({PRIME}), "
            f"sharing_id={self.sharing_id[:4].hex()}...)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Share):
            return NotImplemented
        return (
            self.x == other.x
            and self.threshold == other.threshold
            and self.sharing_id == other.sharing_id
            and hmac.compare_digest(self.values.tobytes(), other.values.tobytes())
        )

    def __hash__(self) -> int:
        return hash((self.x, self.threshold, self.sharing_id))

    def to_bytes(self) -> bytes:
        """The compact ``SHARE_BYTES``-byte wire form (see the module docstring)."""
        return b"".join(
            (
                bytes((_FORMAT,)),
                self.threshold.to_bytes(_INT_BYTES, "little"),
                self.x.to_bytes(_INT_BYTES, "little"),
                self.sharing_id,
                _pack_limbs(self.values),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        """Parse and validate the output of :meth:`to_bytes`.

        Raises:
            DecodeError: ``data`` is not bytes of length ``SHARE_BYTES``, has an unknown
                format or field byte, a zero or out-of-field x, a threshold of 0, a limb
                share ``>= PRIME`` or a non-zero padding bit.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("a share must be bytes")
        raw = bytes(data)
        if len(raw) != SHARE_BYTES:
            raise DecodeError(f"a share is {SHARE_BYTES} bytes, got {len(raw)}")
        if raw[0] != _FORMAT:
            raise DecodeError(f"unknown share format or field byte {raw[0]:#04x}")
        threshold = int.from_bytes(raw[_THRESHOLD_AT:_X_AT], "little")
        x = int.from_bytes(raw[_X_AT:_ID_AT], "little")
        if not 1 <= threshold < PRIME:
            raise DecodeError("share threshold out of range")
        if not 1 <= x < PRIME:
            raise DecodeError("share x coordinate out of range")
        values = _unpack_limbs(raw[_LIMBS_AT:])
        return _make_share(x, threshold, raw[_ID_AT:_LIMBS_AT], values)


# The 13 limb shares are one fixed-size field-element tuple, not a vector: a Python int does
# the 21-bit packing (the same layout as secagg.packing.pack(values, 21)) 3-4x faster than
# NumPy calls, which matters because a server decodes about n * (n - 1) shares per round.
_LIMB_SHIFTS = tuple(SHARE_BITS * i for i in range(LIMBS))
_LIMB_MASK = (1 << SHARE_BITS) - 1


def _pack_limbs(values: np.ndarray) -> bytes:
    packed = 0
    for shift, limb in zip(_LIMB_SHIFTS, values.tolist(), strict=True):
        packed |= limb << shift
    return packed.to_bytes(_PACKED_LIMBS_BYTES, "little")


def _unpack_limbs(data: bytes) -> np.ndarray:
    """Read-only uint32 limb shares; DecodeError on a padding bit or a limb >= PRIME."""
    packed = int.from_bytes(data, "little")
    if packed >> (LIMBS * SHARE_BITS):
        raise DecodeError("non-zero padding bits in a share")
    limbs = [(packed >> shift) & _LIMB_MASK for shift in _LIMB_SHIFTS]
    if max(limbs) >= PRIME:
        raise DecodeError("limb share outside the field")
    values = np.array(limbs, dtype=np.uint32)
    values.setflags(write=False)
    return values


def _make_share(x: int, threshold: int, sharing_id: bytes, values: np.ndarray) -> Share:
    """Build a Share from already validated parts, skipping ``__post_init__``."""
    share = object.__new__(Share)
    object.__setattr__(share, "x", x)
    object.__setattr__(share, "threshold", threshold)
    object.__setattr__(share, "sharing_id", sharing_id)
    object.__setattr__(share, "values", values)
    return share


# --- many shares at once: the server reads n * t records per round -----------------------

_WORD_BYTES = 8
_RECORD_WORDS = -(-SHARE_BYTES // _WORD_BYTES)
_LIMB_BIT_AT = 8 * _LIMBS_AT
_PADDING_BIT_AT = _LIMB_BIT_AT + LIMBS * SHARE_BITS
# The padding bits after the limbs sit in the record's last word (checked at import).
assert _PADDING_BIT_AT // 64 == _RECORD_WORDS - 1


@dataclass(frozen=True, repr=False)
class ShareArrays(SecretHolder, export="none: parse the share records again"):
    """Many parsed shares as columns, one row per record. ``repr`` shows only the row count.

    ``valid[i]`` is True exactly when :meth:`Share.from_bytes` accepts record ``i``; the
    other columns of that row then hold that Share's fields (elsewhere they are
    meaningless). ``values`` holds share values: it is secret like a Share's.
    """

    valid: np.ndarray  # bool, (rows,)
    thresholds: np.ndarray  # int64, (rows,)
    xs: np.ndarray  # int64, (rows,)
    sharing_ids: np.ndarray  # uint8, (rows, SHARING_ID_BYTES)
    values: np.ndarray  # int64, (rows, LIMBS), each in [0, PRIME) where valid

    def __repr__(self) -> str:
        return f"ShareArrays(rows={self.valid.shape[0]})"


def _bit_field(words: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits ``start .. start + width`` of each little-endian record (``words``: one row of
    uint64 per record, transposed to (words, rows) for contiguous columns) as int64."""
    word, shift = divmod(start, 64)
    part: np.ndarray = words[word] >> np.uint64(shift)
    if shift + width > 64:
        part |= words[word + 1] << np.uint64(64 - shift)
    part &= np.uint64((1 << width) - 1)
    return part.astype(np.int64)


def _records_of(
    blobs: Sequence[bytes], size: int = SHARE_BYTES
) -> tuple[np.ndarray, np.ndarray | None]:
    """(rows, size) uint8 records of ``blobs`` and, if some blob is not bytes of ``size``,
    the mask of the well-sized ones (the others become zero rows)."""
    count = len(blobs)
    try:  # the common case, checked in C: every blob is bytes-like of size bytes
        joined = b"".join(blobs)
        uniform = len(joined) == count * size and set(map(len, blobs)) <= {size}
    except TypeError:
        uniform = False
    mask = None
    if not uniform:
        raw = [bytes(b) if isinstance(b, bytearray | memoryview) else b for b in blobs]
        sized = [isinstance(b, bytes) and len(b) == size for b in raw]
        blank = bytes(size)
        joined = b"".join(b if ok else blank for b, ok in zip(raw, sized, strict=True))
        mask = np.array(sized, dtype=bool)
    return np.frombuffer(joined, dtype=np.uint8).reshape(count, size), mask


def parse_shares(records: Sequence[bytes] | np.ndarray) -> ShareArrays:
    """Parse many :meth:`Share.to_bytes` records at once, vectorized over the records.

    ``records`` is a sequence of share byte strings, or a uint8 array of shape
    ``(rows, SHARE_BYTES)`` (one record per row, e.g. a joined buffer reshaped: no copy).
    Guarantees: never raises on record contents; row ``i`` is ``valid`` exactly when
    :meth:`Share.from_bytes` accepts record ``i`` (wrong size or type, unknown format byte,
    threshold or x outside 1..PRIME-1, a limb ``>= PRIME`` or a non-zero padding bit make
    it invalid), and then its fields equal that Share's.

    Raises:
        ConfigurationError: an array that is not uint8 of shape ``(rows, SHARE_BYTES)``, or
            ``records`` given as one bytes object.
    """
    sized: np.ndarray | None = None
    if isinstance(records, np.ndarray):
        if records.ndim != 2 or records.shape[1] != SHARE_BYTES or records.dtype != np.uint8:
            raise ConfigurationError(f"records must be uint8 of shape (rows, {SHARE_BYTES})")
    elif isinstance(records, bytes | bytearray | memoryview | str):
        raise ConfigurationError("records must be a sequence of share byte strings")
    else:
        records, sized = _records_of(records)
    rows = records.shape[0]
    padded = np.zeros((rows, _RECORD_WORDS * _WORD_BYTES), dtype=np.uint8)
    padded[:, :SHARE_BYTES] = records
    # (words, rows): each field below is then read from contiguous columns.
    words = np.ascontiguousarray(padded.view("<u8").T)
    thresholds = _bit_field(words, 8 * _THRESHOLD_AT, 8 * _INT_BYTES)
    xs = _bit_field(words, 8 * _X_AT, 8 * _INT_BYTES)
    # Limb-major while computing (contiguous rows), returned as a (rows, LIMBS) view.
    limbs = np.empty((LIMBS, rows), dtype=np.int64)
    for limb in range(LIMBS):  # 13 column passes, each vectorized over all records
        limbs[limb] = _bit_field(words, _LIMB_BIT_AT + limb * SHARE_BITS, SHARE_BITS)
    valid = (words[-1] >> np.uint64(_PADDING_BIT_AT % 64)) == 0
    valid &= records[:, 0] == _FORMAT
    valid &= (limbs < PRIME).all(axis=0)
    for column in (thresholds, xs):
        valid &= (column >= 1) & (column < PRIME)
    if sized is not None:
        valid &= sized
    return ShareArrays(valid, thresholds, xs, records[:, _ID_AT:_LIMBS_AT].copy(), limbs.T)


# --- the compact form: limb shares only (x, threshold and sharing implied by context) ----

_LIMB_RECORD_WORDS = -(-LIMB_SHARE_BYTES // _WORD_BYTES)
_LIMB_PADDING_BIT_AT = LIMBS * SHARE_BITS
# The padding bits after the limbs sit in the record's last word (checked at import).
assert _LIMB_PADDING_BIT_AT // 64 == _LIMB_RECORD_WORDS - 1


def _checked_limb_rows(values: object) -> np.ndarray:
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "ui":
        raise ConfigurationError("limb shares must be an integer numpy array")
    if values.ndim not in (1, 2) or values.shape[-1] != LIMBS:
        raise ConfigurationError(f"limb shares must have shape ({LIMBS},) or (rows, {LIMBS})")
    rows = values.reshape(-1, LIMBS)
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= PRIME):
        raise ConfigurationError(f"limb shares must be in [0, {PRIME})")
    return rows.astype(np.uint64)


def pack_limb_shares(values: np.ndarray) -> bytes:
    """The compact form of one share's limbs (shape ``(LIMBS,)``: ``LIMB_SHARE_BYTES``
    bytes, exactly the last 35 bytes of :meth:`Share.to_bytes`) or of many rows (shape
    ``(rows, LIMBS)``: the rows' compact forms concatenated), vectorized over the rows.

    Raises:
        ConfigurationError: not an integer array of one of those shapes, or a value outside
            [0, PRIME).
    """
    rows = _checked_limb_rows(values)
    if rows.shape[0] == 1:
        return _pack_limbs(rows[0])
    words = np.zeros((_LIMB_RECORD_WORDS, rows.shape[0]), dtype=np.uint64)
    for limb in range(LIMBS):  # 13 column passes, each vectorized over all rows
        word, shift = divmod(limb * SHARE_BITS, 64)
        column = rows[:, limb]
        words[word] |= column << np.uint64(shift)
        if shift + SHARE_BITS > 64:
            words[word + 1] |= column >> np.uint64(64 - shift)
    records = np.ascontiguousarray(words.T).astype("<u8").view(np.uint8)
    return records[:, :LIMB_SHARE_BYTES].tobytes()


def unpack_limb_shares(data: bytes) -> np.ndarray:
    """The ``LIMBS`` limb shares (read-only uint32) of one compact share.

    Raises:
        DecodeError: ``data`` is not bytes of length ``LIMB_SHARE_BYTES``, has a non-zero
            padding bit or a limb share ``>= PRIME``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("a compact share must be bytes")
    raw = bytes(data)
    if len(raw) != LIMB_SHARE_BYTES:
        raise DecodeError(f"a compact share is {LIMB_SHARE_BYTES} bytes, got {len(raw)}")
    return _unpack_limbs(raw)


def parse_limb_shares(records: Sequence[bytes] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse many compact shares at once: ``(valid, values)``, vectorized over the records.

    ``records`` is a sequence of byte strings or a uint8 array of shape
    ``(rows, LIMB_SHARE_BYTES)``. Guarantees: never raises on record contents;
    ``valid[i]`` (bool) is True exactly when :func:`unpack_limb_shares` accepts record
    ``i``, and then ``values[i]`` (int64, ``(rows, LIMBS)``) holds its limbs (elsewhere
    meaningless). ``values`` holds share values: secret.

    Raises:
        ConfigurationError: an array that is not uint8 of shape ``(rows, LIMB_SHARE_BYTES)``,
            or ``records`` given as one bytes object.
    """
    sized: np.ndarray | None = None
    if isinstance(records, np.ndarray):
        if (
            records.ndim != 2
            or records.shape[1] != LIMB_SHARE_BYTES
            or records.dtype != np.uint8
        ):
            raise ConfigurationError(f"records must be uint8 of shape (rows, {LIMB_SHARE_BYTES})")
    elif isinstance(records, bytes | bytearray | memoryview | str):
        raise ConfigurationError("records must be a sequence of compact share byte strings")
    else:
        records, sized = _records_of(records, LIMB_SHARE_BYTES)
    rows = records.shape[0]
    padded = np.zeros((rows, _LIMB_RECORD_WORDS * _WORD_BYTES), dtype=np.uint8)
    padded[:, :LIMB_SHARE_BYTES] = records
    words = np.ascontiguousarray(padded.view("<u8").T)
    limbs = np.empty((LIMBS, rows), dtype=np.int64)
    for limb in range(LIMBS):
        limbs[limb] = _bit_field(words, limb * SHARE_BITS, SHARE_BITS)
    valid = (words[-1] >> np.uint64(_LIMB_PADDING_BIT_AT % 64)) == 0
    valid &= (limbs < PRIME).all(axis=0)
    if sized is not None:
        valid &= sized
    return valid, limbs.T


def _check_x(x: object) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise IncompatibleSharesError(f"x coordinate must be an int, got {type(x).__name__}")
    if x == 0:
        raise DuplicateShareError("x coordinate 0 would reveal the secret")
    if not 1 <= x < PRIME:
        raise IncompatibleSharesError(f"x coordinate must be in 1..{PRIME - 1}")
    return x


def _check_xs(xs: Sequence[int]) -> tuple[int, ...]:
    checked = tuple(_check_x(x) for x in xs)
    if len(set(checked)) != len(checked):
        raise DuplicateShareError("duplicate x coordinate")
    return checked


# --- field arithmetic on int64 arrays (all values < p < 2^21, products < 2^42) ---


def inv_mod(values: np.ndarray) -> np.ndarray:
    """Elementwise inverse mod p by Fermat (a^(p-2)), square-and-multiply over the array."""
    result = np.ones_like(values)
    base = values % PRIME
    exponent = PRIME - 2
    while exponent:
        if exponent & 1:
            result = result * base % PRIME
        base = base * base % PRIME
        exponent >>= 1
    return result


def prod_mod_rows(matrix: np.ndarray) -> np.ndarray:
    """Product mod p along axis 1, as a pairwise tree (log2(width) vectorized steps)."""
    while matrix.shape[1] > 1:
        if matrix.shape[1] % 2:
            matrix = np.concatenate([matrix, np.ones((matrix.shape[0], 1), np.int64)], axis=1)
        matrix = matrix[:, 0::2] * matrix[:, 1::2] % PRIME
    return matrix[:, 0]


def _reduce(values: np.ndarray) -> np.ndarray:
    """Exact ``values mod p`` for non-negative integer-valued float64 arrays below 2^53.

    ``floor(v * (1/p))`` is the true quotient or off by one (the product's relative error is
    a few ulps), ``q * p`` and ``v - q * p`` are exact below 2^53, so one correction each way
    lands in [0, p). Several times faster than ``np.fmod``, which calls libm per element.
    """
    quotient: np.ndarray = values * (1.0 / PRIME)
    np.floor(quotient, out=quotient)
    np.multiply(quotient, float(PRIME), out=quotient)
    np.subtract(values, quotient, out=quotient)
    residue = quotient
    np.add(residue, float(PRIME), out=residue, where=residue < 0.0)
    np.subtract(residue, float(PRIME), out=residue, where=residue >= PRIME)
    return residue


def _matmul_mod(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right mod p`` for float64 matrices of field elements, exact.

    Blocks of ``_BLOCK`` inner terms keep every partial sum below 2^53.
    """
    inner = left.shape[1]
    if inner <= _BLOCK:
        return _reduce(left @ right)
    total = np.zeros((left.shape[0], right.shape[1]), dtype=np.float64)
    for start in range(0, inner, _BLOCK):
        total += _reduce(left[:, start : start + _BLOCK] @ right[start : start + _BLOCK])
    return _reduce(total)


def _uniform_mod_p(count: int) -> np.ndarray:
    """``count`` independent uniform field elements from os.urandom (rejection sampling)."""
    out = np.empty(count, dtype=np.int64)
    filled = 0
    while filled < count:
        want = count - filled
        draw = want + want // 256 + 16
        words = np.frombuffer(os.urandom(4 * draw), dtype="<u4")
        accepted = words[words < _REJECTION_LIMIT][:want]
        out[filled : filled + accepted.size] = accepted
        filled += accepted.size
    return out % PRIME


@lru_cache(maxsize=4)
def _vandermonde(xs: tuple[int, ...], threshold: int) -> np.ndarray:
    """Read-only float64 (len(xs), threshold) matrix ``x_i^j mod p``, by repeated doubling."""
    x = np.array(xs, dtype=np.int64)
    powers = np.empty((x.size, threshold), dtype=np.int64)
    powers[:, 0] = 1
    filled = 1
    step = x % PRIME  # x^filled
    while filled < threshold:
        width = min(filled, threshold - filled)
        powers[:, filled : filled + width] = powers[:, :width] * step[:, None] % PRIME
        filled += width
        step = step * step % PRIME
    matrix = powers.astype(np.float64)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=256)
def _lagrange(xs: tuple[int, ...]) -> np.ndarray:
    """Read-only int64 array: lambda_i = prod_{j != i} x_j / (x_j - x_i) mod p."""
    x = np.array(xs, dtype=np.int64)
    differences = (x[None, :] - x[:, None]) % PRIME
    np.fill_diagonal(differences, 1)
    denominators = prod_mod_rows(differences)
    numerator = int(prod_mod_rows(x[None, :])[0])
    coefficients = numerator * inv_mod(x * denominators % PRIME) % PRIME
    coefficients.setflags(write=False)
    return coefficients


def lagrange_coefficients_at_zero(xs: Sequence[int]) -> np.ndarray:
    """Lagrange coefficients at zero for the holder set ``xs`` (same order), mod PRIME.

    ``secret = sum(lambda_i * share_i) mod PRIME``. Cached per tuple of ``xs``; the returned
    int64 array is read-only.

    Raises:
        DuplicateShareError: a repeated or zero x.
        IncompatibleSharesError: an x that is not an int in 1..PRIME-1.
        InsufficientSharesError: ``xs`` is empty.
    """
    checked = _check_xs(xs)
    if not checked:
        raise InsufficientSharesError("no x coordinates")
    return _lagrange(checked)


# --- secrets <-> limbs ---


def _secrets_to_limbs(secrets: Sequence[bytes]) -> np.ndarray:
    raw = np.frombuffer(b"".join(secrets), dtype=np.uint8).reshape(len(secrets), SECRET_BYTES)
    bits = np.zeros((len(secrets), LIMBS * LIMB_BITS), dtype=np.int64)
    bits[:, : SECRET_BYTES * 8] = np.unpackbits(raw, axis=1, bitorder="little")
    limbs: np.ndarray = bits.reshape(len(secrets), LIMBS, LIMB_BITS) @ _LIMB_WEIGHTS
    return limbs


def limbs_to_secrets(limbs: np.ndarray) -> list[bytes | None]:
    """The 32-byte secrets of (secrets, LIMBS) interpolated limbs, in order; None for a row
    with a limb out of its range (a limb above 20 bits, a top limb above 16: the shares it
    came from were inconsistent). Never raises on limb values."""
    ok = ((limbs >= 0) & (limbs < (1 << LIMB_BITS))).all(axis=1)
    ok &= limbs[:, -1] < (1 << _TOP_LIMB_BITS)
    bits = (limbs[:, :, None] >> _BIT_POSITIONS) & 1
    flat = bits.reshape(limbs.shape[0], LIMBS * LIMB_BITS)[:, : SECRET_BYTES * 8]
    data = np.packbits(flat.astype(np.uint8), axis=1, bitorder="little").tobytes()
    return [
        data[i * SECRET_BYTES : (i + 1) * SECRET_BYTES] if good else None
        for i, good in enumerate(ok.tolist())
    ]


def _limbs_to_secrets(limbs: np.ndarray) -> list[bytes]:
    """(secrets, LIMBS) int64 limbs -> secrets; ShareError if a limb is out of range."""
    secrets = limbs_to_secrets(limbs)
    if None in secrets:
        raise ShareError("reconstruction is not a valid secret: the shares are inconsistent")
    return [secret for secret in secrets if secret is not None]


# --- public API ---

_GET_X = attrgetter("x")
_GET_THRESHOLD = attrgetter("threshold")
_GET_SHARING_ID = attrgetter("sharing_id")
_GET_VALUES = attrgetter("values")


def share_secrets(
    secrets: Sequence[bytes], holders: Sequence[int], threshold: int
) -> dict[int, list[Share]]:
    """Share every secret t-of-n among ``holders``: holder x -> [its share of each secret].

    Each secret gets a fresh random polynomial per limb and a fresh random sharing id. One
    vectorized pass: a cached Vandermonde matrix times all coefficients at once.

    Raises:
        ConfigurationError: a secret that is not ``SECRET_BYTES`` bytes, ``secrets`` given as
            one bytes object, no holders, or ``threshold`` not an int in 1..len(holders).
        DuplicateShareError: a repeated or zero holder x.
        IncompatibleSharesError: a holder x that is not an int in 1..PRIME-1.
    """
    if isinstance(secrets, bytes | bytearray | str):
        raise ConfigurationError("secrets must be a sequence of 32-byte secrets")
    secrets = list(secrets)
    for secret in secrets:
        if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
            raise ConfigurationError(f"every secret must be {SECRET_BYTES} bytes")
    xs = _check_xs(holders)
    if not xs:
        raise ConfigurationError("no holders")
    if (
        not isinstance(threshold, int)
        or isinstance(threshold, bool)
        or not 1 <= threshold <= len(xs)
    ):
        raise ConfigurationError(f"threshold must be an int in 1..{len(xs)}, got {threshold!r}")
    count = len(secrets)
    if count == 0:
        return {x: [] for x in xs}
    width = count * LIMBS
    coefficients = np.empty((threshold, width), dtype=np.float64)
    coefficients[0] = _secrets_to_limbs([bytes(s) for s in secrets]).reshape(width)
    if threshold > 1:
        coefficients[1:] = _uniform_mod_p((threshold - 1) * width).reshape(threshold - 1, width)
    shares = _matmul_mod(_vandermonde(xs, threshold), coefficients).astype(np.uint32)
    shares = shares.reshape(len(xs), count, LIMBS)
    shares.setflags(write=False)
    ids = os.urandom(SHARING_ID_BYTES * count)
    sharing_ids = [ids[i : i + SHARING_ID_BYTES] for i in range(0, len(ids), SHARING_ID_BYTES)]
    return {
        x: [_make_share(x, threshold, sharing_ids[i], row[i]) for i in range(count)]
        for x, row in zip(xs, shares, strict=True)
    }


def reconstruct_secret(shares: Sequence[Share]) -> bytes:
    """Reconstruct one secret from any ``t`` or more of its shares (uses the t smallest x).

    Raises:
        InsufficientSharesError: fewer than ``t`` shares.
        IncompatibleSharesError: shares of different sharings or thresholds, or not Shares.
        DuplicateShareError: two shares with the same x.
        ShareError: the interpolated value is not a valid secret (corrupt shares).
    """
    shares = list(shares)
    if not shares:
        raise InsufficientSharesError("no shares")
    if not all(isinstance(s, Share) for s in shares):
        raise IncompatibleSharesError("not a Share")
    first = shares[0]
    if any(s.threshold != first.threshold or s.sharing_id != first.sharing_id for s in shares):
        raise IncompatibleSharesError("shares of different sharings (sharing id or threshold)")
    _check_xs([s.x for s in shares])
    if len(shares) < first.threshold:
        raise InsufficientSharesError(f"{len(shares)} shares, the threshold is {first.threshold}")
    chosen = sorted(shares, key=lambda s: s.x)[: first.threshold]
    coefficients = _lagrange(tuple(s.x for s in chosen)).astype(np.float64)
    values = np.stack([s.values for s in chosen]).astype(np.float64)
    limbs = _matmul_mod(coefficients[None, :], values).astype(np.int64)
    return _limbs_to_secrets(limbs)[0]


def reconstruct_secrets(shares_by_holder: Mapping[int, Sequence[Share]]) -> list[bytes]:
    """Reconstruct many secrets shared to the same holders: x -> [share of secret i, ...].

    Every holder lists its shares in the same secret order. The t smallest x are used; their
    Lagrange coefficients are computed once (and cached) for all secrets, and the whole
    reconstruction is one matrix product.

    Raises:
        InsufficientSharesError: fewer than ``t`` holders.
        IncompatibleSharesError: holders with different numbers of shares, a share whose x is
            not its holder's, or shares of one position with different sharing ids or any
            two thresholds differing (foreign shares).
        DuplicateShareError: a zero holder x.
        ShareError: an interpolated value is not a valid secret (corrupt shares).
    """
    if not isinstance(shares_by_holder, Mapping):
        raise IncompatibleSharesError("shares_by_holder must be a mapping x -> shares")
    holders = _check_xs(list(shares_by_holder))
    if not holders:
        raise InsufficientSharesError("no holders")
    lists = [list(shares_by_holder[x]) for x in holders]
    count = len(lists[0])
    if any(len(shares) != count for shares in lists):
        raise IncompatibleSharesError("holders hold different numbers of shares")
    if count == 0:
        return []
    # map(attrgetter) keeps these checks in C: a server checks about n * t shares here.
    reference_ids: list[bytes] | None = None
    thresholds: set[int] = set()
    for x, shares in zip(holders, lists, strict=True):
        if set(map(type, shares)) != {Share} or set(map(_GET_X, shares)) != {x}:
            raise IncompatibleSharesError(f"holder {x} has a share that is not its own")
        ids = list(map(_GET_SHARING_ID, shares))
        if reference_ids is None:
            reference_ids = ids
        elif ids != reference_ids:
            raise IncompatibleSharesError(f"holder {x} has shares of other sharings")
        thresholds.update(map(_GET_THRESHOLD, shares))
    if len(thresholds) != 1:
        raise IncompatibleSharesError("shares with different thresholds")
    threshold = thresholds.pop()
    if len(holders) < threshold:
        raise InsufficientSharesError(f"{len(holders)} holders, the threshold is {threshold}")
    order = sorted(range(len(holders)), key=holders.__getitem__)[:threshold]
    chosen = tuple(holders[i] for i in order)
    coefficients = _lagrange(chosen).astype(np.float64)
    gathered = np.array([values for i in order for values in map(_GET_VALUES, lists[i])])
    values = gathered.astype(np.float64).reshape(threshold, count * LIMBS)
    limbs = _matmul_mod(coefficients[None, :], values).astype(np.int64)
    return _limbs_to_secrets(limbs.reshape(count, LIMBS))
