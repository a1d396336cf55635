"""Bit packing of Z_(2^b) vectors for the wire, 1 <= b <= 64.

Theory of operation. ``pack`` writes element ``i`` of a vector into bits
``[i*b, (i+1)*b)`` of one little-endian bit stream: stream bit ``j`` is bit ``j % 8`` of
byte ``j // 8`` (equivalently, the bytes are the little-endian encoding of the integer
``sum(v_i << (i*b))``). The stream is cut to ``ceil(len*b/8)`` bytes; the few padding bits
of the last byte are zero, and ``unpack`` refuses them otherwise, so one vector has exactly
one encoding.

Speed. Widths 8/16/32/64 are plain little-endian casts. Other widths use one of two
vectorized paths, never a Python loop over elements:

* short vectors: a bit matrix from ``np.unpackbits`` (64 bits per element; cheap when small,
  and a handful of NumPy calls whatever the width);
* long vectors: the vector is cut into groups of ``P = 64 / gcd(b, 64)`` elements, which
  fill exactly ``W = P*b/64`` whole 64-bit words. Transposed to ``(P, groups)`` rows, every
  (element slot, word slot) overlap is one shift-and-or over a contiguous row, so the work
  is about ``len * (1 + b/64)`` word operations in ``P + W`` NumPy calls.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from secagg.errors import ConfigurationError, DecodeError

__all__ = ["MAX_BITS", "pack", "packed_size", "storage_dtype", "unpack"]

MAX_BITS = 64

_LITTLE_ENDIAN = sys.byteorder == "little"
_FAST_DTYPES: dict[int, str] = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}
# Below this many stream bits the bit-matrix path beats the grouped path's per-call overhead.
_SMALL_BITS = 1 << 15


def _check_bits(bits: object) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise ConfigurationError(f"bits must be an int in 1..{MAX_BITS}, got {bits!r}")
    return bits


def storage_dtype(bits: int) -> np.dtype[np.unsignedinteger]:
    """The unsigned dtype that holds ``bits``-bit values: uint32 up to 32 bits, else uint64.

    Raises:
        ConfigurationError: ``bits`` is not an int in 1..64.
    """
    _check_bits(bits)
    return np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64)


def packed_size(length: int, bits: int) -> int:
    """Exact byte length of ``length`` packed ``bits``-bit values: ``ceil(length*bits/8)``.

    Raises:
        ConfigurationError: ``bits`` not in 1..64 or ``length`` not a non-negative int.
    """
    _check_bits(bits)
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise ConfigurationError(f"length must be a non-negative int, got {length!r}")
    return (length * bits + 7) // 8


@dataclass(frozen=True)
class _Plan:
    """Periodic layout of ``bits``-bit elements: P elements fill exactly W 64-bit words.

    Packing: word slot ``w`` ORs ``(slot[pack_src[k][w]] << pack_left[k][w]) >> pack_right[k][w]``
    over ``k``; source ``P`` is an all-zero sentinel column. Unpacking: element slot ``e``
    ORs ``word[unpack_src[0][e]] >> unpack_shift[e]`` and
    ``word[unpack_src[1][e]] << (64 - unpack_shift[e])`` (sentinel ``W``), then masks.
    Every shift is below 64, so none is undefined.
    """

    per_group: int
    words: int
    pack_src: tuple[np.ndarray, ...]
    pack_left: tuple[np.ndarray, ...]
    pack_right: tuple[np.ndarray, ...]
    unpack_lo: np.ndarray
    unpack_lo_shift: np.ndarray
    unpack_hi: np.ndarray
    unpack_hi_shift: np.ndarray


@lru_cache(maxsize=64)
def _plan(bits: int) -> _Plan:
    per_group = 64 // math.gcd(bits, 64)
    words = per_group * bits // 64
    overlapping: list[list[tuple[int, int]]] = [[] for _ in range(words)]
    for element in range(per_group):
        start = element * bits
        for word in range(start // 64, (start + bits - 1) // 64 + 1):
            overlapping[word].append((element, start - 64 * word))
    depth = max(len(row) for row in overlapping)
    src = np.full((depth, words), per_group, dtype=np.intp)
    left = np.zeros((depth, words), dtype=np.uint64)
    right = np.zeros((depth, words), dtype=np.uint64)
    for word, row in enumerate(overlapping):
        for k, (element, shift) in enumerate(row):
            src[k, word] = element
            left[k, word] = max(shift, 0)
            right[k, word] = max(-shift, 0)
    starts = np.arange(per_group) * bits
    lo = starts // 64
    lo_shift = starts % 64
    spans = lo_shift + bits > 64
    hi = np.where(spans, lo + 1, words)
    hi_shift = np.where(spans, 64 - lo_shift, 0)
    return _Plan(
        per_group=per_group,
        words=words,
        pack_src=tuple(src),
        pack_left=tuple(left),
        pack_right=tuple(right),
        unpack_lo=lo.astype(np.intp),
        unpack_lo_shift=lo_shift.astype(np.uint64),
        unpack_hi=hi.astype(np.intp),
        unpack_hi_shift=hi_shift.astype(np.uint64),
    )


def _grouped(values: np.ndarray, per_group: int, width: int) -> np.ndarray:
    """``values`` as uint64 rows of ``per_group`` (zero padded) plus one zero sentinel column."""
    groups = -(-values.size // per_group)
    full = values.size // per_group
    out = np.zeros((groups, width + 1), dtype=np.uint64)
    out[:full, :per_group] = values[: full * per_group].reshape(full, per_group)
    if full < groups:
        tail = values[full * per_group :]
        out[full, : tail.size] = tail
    return out


def _checked(values: np.ndarray, bits: int) -> np.ndarray:
    """Validate ``values``: a 1-D integer array with every value in [0, 2^bits)."""
    if not isinstance(values, np.ndarray):
        raise ConfigurationError("values must be a numpy array")
    if values.ndim != 1:
        raise ConfigurationError(f"values must be 1-D, got shape {values.shape}")
    if values.dtype.kind not in "ui":
        raise ConfigurationError(f"values must have an integer dtype, got {values.dtype}")
    if values.size:
        if values.dtype.kind == "i" and int(values.min()) < 0:
            raise ConfigurationError("values must be non-negative")
        if bits < 64 and int(values.max()) >> bits:
            raise ConfigurationError(f"values must be < 2^{bits}")
    return values


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack a 1-D vector of ``bits``-bit unsigned integers into ``ceil(len*bits/8)`` bytes.

    The layout is the little-endian bit stream described in the module docstring; padding
    bits are zero.

    Raises:
        ConfigurationError: ``bits`` not in 1..64, ``values`` not a 1-D integer array, or a
            value negative or ``>= 2^bits``.
    """
    _check_bits(bits)
    values = _checked(values, bits)
    if bits in _FAST_DTYPES:
        return values.astype(_FAST_DTYPES[bits], copy=False).tobytes()
    nbytes = (values.size * bits + 7) // 8
    if values.size * bits <= _SMALL_BITS:
        return _pack_small(values, bits)[:nbytes]
    return _pack_grouped(values, bits)[:nbytes]


def _pack_small(values: np.ndarray, bits: int) -> bytes:
    as_bytes = values.astype("<u8").view(np.uint8).reshape(-1, 8)
    bit_matrix = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :bits]
    return np.packbits(bit_matrix.reshape(-1), bitorder="little").tobytes()


def _pack_grouped(values: np.ndarray, bits: int) -> bytes:
    plan = _plan(bits)
    slots = _grouped(values, plan.per_group, plan.per_group)
    out = np.zeros((slots.shape[0], plan.words), dtype=np.uint64)
    tmp = np.empty_like(out)
    for src, left, right in zip(plan.pack_src, plan.pack_left, plan.pack_right, strict=True):
        np.take(slots, src, axis=1, out=tmp)
        np.left_shift(tmp, left, out=tmp)
        np.right_shift(tmp, right, out=tmp)
        np.bitwise_or(out, tmp, out=out)
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        out = out.astype("<u8")
    return out.tobytes()


def unpack(data: bytes | bytearray | memoryview, bits: int, length: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``length`` values of ``bits`` bits from ``data``.

    Returns a new writeable array of :func:`storage_dtype` (uint32 up to 32 bits, else uint64).

    Raises:
        ConfigurationError: ``bits`` not in 1..64 or ``length`` not a non-negative int (local).
        DecodeError: ``data`` is not bytes-like, is not exactly ``ceil(length*bits/8)`` bytes,
            or has a non-zero padding bit.
    """
    expected = packed_size(length, bits)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"packed data must be bytes, got {type(data).__name__}")
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != expected:
        raise DecodeError(f"packed data has {raw.size} bytes, expected {expected}")
    dtype = storage_dtype(bits)
    tail_bits = (length * bits) % 8
    if tail_bits and int(raw[-1]) >> tail_bits:
        raise DecodeError("non-zero padding bits in packed data")
    if bits in _FAST_DTYPES:
        return raw.view(_FAST_DTYPES[bits]).astype(dtype)
    if length * bits <= _SMALL_BITS:
        values = _unpack_small(raw, bits, length)
    else:
        values = _unpack_grouped(raw, bits, length)
    return values.astype(dtype, copy=False)


def _unpack_small(raw: np.ndarray, bits: int, length: int) -> np.ndarray:
    stream = np.unpackbits(raw, bitorder="little")[: length * bits].reshape(length, bits)
    bit_matrix = np.zeros((length, 64), dtype=np.uint8)
    bit_matrix[:, :bits] = stream
    as_bytes = np.packbits(bit_matrix, axis=1, bitorder="little")
    return as_bytes.view("<u8").reshape(length).astype(np.uint64)


def _unpack_grouped(raw: np.ndarray, bits: int, length: int) -> np.ndarray:
    plan = _plan(bits)
    groups = -(-length // plan.per_group)
    buf = np.zeros(groups * plan.words * 8, dtype=np.uint8)
    buf[: raw.size] = raw
    words = buf.view("<u8").reshape(groups, plan.words)
    # One extra all-zero column: the "next word" of elements that do not span two words.
    word_cols = np.zeros((groups, plan.words + 1), dtype=np.uint64)
    word_cols[:, : plan.words] = words
    out = np.take(word_cols, plan.unpack_lo, axis=1)
    np.right_shift(out, plan.unpack_lo_shift, out=out)
    tmp = np.take(word_cols, plan.unpack_hi, axis=1)
    np.left_shift(tmp, plan.unpack_hi_shift, out=tmp)
    np.bitwise_or(out, tmp, out=out)
    np.bitwise_and(out, np.uint64((1 << bits) - 1), out=out)
    return out.reshape(-1)[:length]
