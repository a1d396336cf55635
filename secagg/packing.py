"""Bit packing of Z_(2^b) vectors for the wire, 1 <= b <= 64.

Theory of operation. ``pack`` writes element ``i`` of a vector into bits
``[i*b, (i+1)*b)`` of one little-endian bit stream: stream bit ``j`` is bit ``j % 8`` of
byte ``j // 8`` (equivalently, the bytes are the little-endian encoding of the integer
``sum(v_i << (i*b))``). The stream is cut to ``ceil(len*b/8)`` bytes; the few padding bits
of the last byte are zero, and ``unpack`` refuses them otherwise, so one vector has exactly
one encoding. The byte length is :func:`secagg.ring.packed_size` and unpacked values come
in :func:`secagg.ring.dtype_for_bits` (the one definition of both).

Speed. Widths 8/16/32/64 are plain little-endian casts. Other widths use one of two
vectorized paths, never a Python loop over elements:

* short vectors: a bit matrix from ``np.unpackbits`` (64 bits per element; a handful of
  NumPy calls whatever the width, which is what matters when the vector is small);
* long vectors: ``P = 64 / gcd(b, 64)`` consecutive elements fill exactly ``W = P*b/64``
  64-bit words, so element ``i = j + P*g`` always lands in word ``w_j + W*g`` at shift
  ``s_j`` (plus the next word when it straddles one). Packing ORs each phase ``j`` into the
  strided word view ``words[w_j::W]`` with one shift; unpacking shifts the strided word
  views into one contiguous row per phase and transposes the rows into place. Both run
  chunk by chunk so the strided passes stay in cache: a few word operations per element.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from secagg.errors import DecodeError
from secagg.ring import check_bits, check_values, dtype_for_bits, packed_size

__all__ = ["pack", "unpack"]

_LITTLE_ENDIAN = sys.byteorder == "little"
_FAST_DTYPES: dict[int, str] = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}
# Crossovers measured on this project's machines: the bit-matrix path costs ~10 ns per
# element, the long path ~2 us per phase (P of them) when packing and ~15 us when unpacking.
_SMALL_PACK_PER_PHASE = 200
_SMALL_UNPACK = 512
# Elements per chunk of the long paths: input, output and scratch stay within L2 cache.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class _Plan:
    """Periodic layout of ``bits``-bit elements: ``per_group`` elements fill ``words`` words.

    ``phases[j] = (word, shift, straddles)``: element slot ``j`` starts in word slot ``word``
    at bit ``shift`` and, if it straddles, ends in ``word + 1`` (then ``shift > 0``). Every
    shift used, ``shift`` or ``64 - shift``, is below 64, so none is undefined.
    """

    per_group: int
    words: int
    phases: tuple[tuple[int, int, bool], ...]


@lru_cache(maxsize=64)
def _plan(bits: int) -> _Plan:
    per_group = 64 // math.gcd(bits, 64)
    words = per_group * bits // 64
    starts = [slot * bits for slot in range(per_group)]
    phases = tuple((start // 64, start % 64, start % 64 + bits > 64) for start in starts)
    return _Plan(per_group=per_group, words=words, phases=phases)


def _checked(values: np.ndarray, bits: int) -> np.ndarray:
    """Validate ``values`` (a 1-D integer array, all in [0, 2^bits)); return them unsigned."""
    values = check_values(values, bits, what="the values to pack")
    if values.dtype.kind == "i":
        # Non-negative, so the same bits read as unsigned; keeps shifts in unsigned loops.
        values = values.view(values.dtype.str.replace("i", "u"))
    return values


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack a 1-D vector of ``bits``-bit unsigned integers into ``ceil(len*bits/8)`` bytes.

    The layout is the little-endian bit stream described in the module docstring; padding
    bits are zero.

    Raises:
        ConfigurationError: ``bits`` not in 1..64, ``values`` not a 1-D integer array, or a
            value negative or ``>= 2^bits``.
    """
    bits = check_bits(bits)
    values = _checked(values, bits)
    if bits in _FAST_DTYPES:
        return values.astype(_FAST_DTYPES[bits], copy=False).tobytes()
    nbytes = packed_size(values.size, bits)
    if values.size <= _SMALL_PACK_PER_PHASE * _plan(bits).per_group:
        return _pack_small(values, bits)[:nbytes]
    return _pack_long(values, bits)[:nbytes]


def _pack_small(values: np.ndarray, bits: int) -> bytes:
    as_bytes = values.astype("<u8").view(np.uint8).reshape(-1, 8)
    bit_matrix = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :bits]
    return np.packbits(bit_matrix.reshape(-1), bitorder="little").tobytes()


def _pack_long(values: np.ndarray, bits: int) -> bytes:
    plan = _plan(bits)
    per_group, width = plan.per_group, plan.words
    out = np.zeros(-(-values.size // per_group) * width, dtype=np.uint64)
    step = _CHUNK - _CHUNK % per_group  # whole groups per chunk
    scratch = np.empty(step // per_group, dtype=np.uint64)
    for start in range(0, values.size, step):
        chunk = values[start : start + step]
        words = out[start // per_group * width :]
        for slot, (word, shift, straddles) in enumerate(plan.phases):
            source = chunk[slot::per_group]
            count = source.size
            if not count:  # a short last group
                continue
            part = scratch[:count]
            np.left_shift(source, np.uint64(shift), out=part)
            target = words[word::width][:count]
            np.bitwise_or(target, part, out=target)
            if straddles:
                np.right_shift(source, np.uint64(64 - shift), out=part)
                target = words[word + 1 :: width][:count]
                np.bitwise_or(target, part, out=target)
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        out = out.astype("<u8")
    return out.tobytes()


def unpack(data: bytes | bytearray | memoryview, bits: int, length: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``length`` values of ``bits`` bits from ``data``.

    Returns a new writeable array of :func:`secagg.ring.dtype_for_bits` (uint32 up to 32
    bits, else uint64).

    Raises:
        ConfigurationError: ``bits`` not in 1..64 or ``length`` not a non-negative int (local).
        DecodeError: ``data`` is not bytes-like, is not exactly ``ceil(length*bits/8)`` bytes,
            or has a non-zero padding bit.
    """
    expected = packed_size(length, bits)
    bits = check_bits(bits)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"packed data must be bytes, got {type(data).__name__}")
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != expected:
        raise DecodeError(f"packed data has {raw.size} bytes, expected {expected}")
    dtype = dtype_for_bits(bits)
    tail_bits = (length * bits) % 8
    if tail_bits and int(raw[-1]) >> tail_bits:
        raise DecodeError("non-zero padding bits in packed data")
    if bits in _FAST_DTYPES:
        return raw.view(_FAST_DTYPES[bits]).astype(dtype)
    if length <= _SMALL_UNPACK:
        values = _unpack_small(raw, bits, length)
    else:
        values = _unpack_long(raw, bits, length)
    return values.astype(dtype, copy=False)


def _unpack_small(raw: np.ndarray, bits: int, length: int) -> np.ndarray:
    stream = np.unpackbits(raw, bitorder="little")[: length * bits].reshape(length, bits)
    bit_matrix = np.zeros((length, 64), dtype=np.uint8)
    bit_matrix[:, :bits] = stream
    as_bytes = np.packbits(bit_matrix, axis=1, bitorder="little")
    return as_bytes.view("<u8").reshape(length).astype(np.uint64)


def _unpack_long(raw: np.ndarray, bits: int, length: int) -> np.ndarray:
    plan = _plan(bits)
    per_group, width = plan.per_group, plan.words
    groups = -(-length // per_group)
    # Whole groups of words plus one zero word, so every straddling read stays in bounds.
    words = np.zeros(groups * width + 1, dtype=np.uint64)
    words.view(np.uint8)[: raw.size] = raw
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        words = words.view("<u8").astype(np.uint64)
    out = np.empty((groups, per_group), dtype=np.uint64)
    step = max(1, _CHUNK // per_group)  # groups per chunk
    # One contiguous row per element slot, transposed into ``out`` once per chunk.
    slots = np.empty((per_group, step), dtype=np.uint64)
    scratch = np.empty(step, dtype=np.uint64)
    mask = np.uint64((1 << bits) - 1)
    for first in range(0, groups, step):
        count = min(step, groups - first)
        chunk = words[first * width : (first + count) * width + 1]
        rows, high = slots[:, :count], scratch[:count]
        for slot, (word, shift, straddles) in enumerate(plan.phases):
            row = rows[slot]
            np.right_shift(chunk[word : word + count * width : width], np.uint64(shift), out=row)
            if straddles:
                source = chunk[word + 1 : word + 1 + count * width : width]
                np.left_shift(source, np.uint64(64 - shift), out=high)
                np.bitwise_or(row, high, out=row)
        np.bitwise_and(rows, mask, out=rows)
        out[first : first + count] = rows.T
    return out.reshape(-1)[:length]
