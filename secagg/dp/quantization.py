"""Clipping, scaling, conditional randomized rounding and modular clipping into Z_(2^b).

Theory of operation (Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation", ICML 2021, Section 4 and Theorem 1):

* **clip**: ``x <- x * min(1, c / ||x||_2)``, so ``||x||_2 <= c``;
* **scale**: ``x <- s x`` (``s`` is the plan's scale; the grid step is ``1 / s``);
* **randomized rounding**: each coordinate goes to ``floor(x_i)`` or ``floor(x_i) + 1`` with
  the probability that makes it unbiased (``rint(x_i + V)``, ``V`` uniform in [-1/2, 1/2)
  on a 2^-32 grid, from the private keystream). Each coordinate moves by less than 1, so always
  ``||x~||_2 < ||x||_2 + sqrt(d)``;
* **conditional** rounding: rounding is repeated until ``||x~||_2 <= B``, where
  ``B = min(s c + sqrt(d), sqrt((s c)^2 + d/4 + sqrt(2 ln(1/beta)) (s c + sqrt(d)/2)))``.
  Unconditional rounding already meets the second bound with probability at least ``1 - beta``
  (KLS21, Theorem 1 / Proposition 22), so the expected number of tries is at most
  ``1 / (1 - beta)``; ``beta = 0`` means no conditioning and ``B = s c + sqrt(d)``. The check is
  exact (an integer sum of squares), so ``B`` is a hard L2 sensitivity bound, and the L1
  sensitivity is ``B * min(sqrt(d), B)`` (Cauchy-Schwarz; ``|k| <= k^2`` for integers).
  Conditioning biases the rounding very slightly (by the tiny rejected mass);
* **modular clipping**: the integer vector (plus noise) is reduced mod ``2^b`` and stored in
  the ring's dtype (:func:`secagg.ring.dtype_for_bits`); the server maps the modular sum back to
  the signed range ``[-2^(b-1), 2^(b-1))`` with :func:`from_ring`. That is exact whenever the
  true integer sum lies in that range (the plan bounds the probability it does not).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from secagg.dp.randomness import RandomSource
from secagg.errors import ConfigurationError, UsageError
from secagg.ring import check_bits, dtype_for_bits, value_mask

__all__ = [
    "MAX_ROUNDING_TRIES",
    "clip_l2",
    "conditional_round",
    "from_ring",
    "rounded_l1_bound",
    "rounded_l2_bound",
    "to_ring",
]

MAX_ROUNDING_TRIES = 10_000
"""Conditional rounding gives up (UsageError) after this many tries: with ``beta <= 0.9``
the chance of reaching it is below ``0.9^10000``, so reaching it means a broken input."""

_INV_2_32 = 2.0**-32
_MAX_EXACT = 2.0**53


def rounded_l2_bound(scaled_clip: float, beta: float, dim: int) -> float:
    """``B``: the L2 norm bound of a conditionally rounded vector (module docstring).

    ``scaled_clip`` is ``s c``; ``beta`` in [0, 1); ``dim`` the (padded) length.
    """
    if not scaled_clip >= 0 or not 0 <= beta < 1 or dim < 1:
        raise ConfigurationError("rounded_l2_bound needs scaled_clip >= 0, 0 <= beta < 1")
    plain = scaled_clip + math.sqrt(dim)
    if beta == 0:
        return plain
    squared = (
        scaled_clip**2
        + dim / 4
        + math.sqrt(2 * math.log(1 / beta)) * (scaled_clip + math.sqrt(dim) / 2)
    )
    return min(plain, math.sqrt(squared))


def rounded_l1_bound(l2_bound: float, dim: int) -> float:
    """The L1 bound of an integer vector of L2 norm at most ``l2_bound`` in ``dim`` coordinates."""
    return l2_bound * min(math.sqrt(dim), l2_bound)


def clip_l2(x: np.ndarray, clip: float) -> float:
    """Scale float64 ``x`` in place so ``||x||_2 <= clip``; return the norm before clipping."""
    norm = math.sqrt(float(np.dot(x, x)))
    if norm > clip:
        x *= clip / norm
    return norm


def conditional_round(
    y: np.ndarray, bound: float | None, rng: RandomSource, *, out: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Unbiased randomized rounding of float64 ``y``, repeated until ``||result|| <= bound``.

    Returns ``(rounded, tries)``: ``rounded`` is ``out`` (or a new float64 array) holding
    integers: ``rint(y + V)`` with ``V`` uniform on the grid ``k 2^-32`` in ``[-1/2, 1/2)``
    (32 keystream bits read as a signed integer: a fast exact conversion), which rounds up
    with probability ``frac(y)`` up to ``2^-32`` (the grid) and float rounding. The rounding's
    exactness does not matter for privacy, only the norm check does. ``bound=None`` rounds
    once, unconditionally. ``y`` is left unchanged. The norm check is exact: a float sum of
    integer squares is exact while it stays below 2^53 (no partial sum can round); beyond,
    it is redone in Python integers. Raises :class:`UsageError` after
    :data:`MAX_ROUNDING_TRIES` failed tries.
    """
    floats = np.empty(y.shape, dtype=np.float64) if out is None else out
    # ||z||^2 is an integer: ||z|| <= bound iff ||z||^2 <= floor(bound^2), computed exactly.
    limit = None if bound is None else math.floor(Fraction(bound) ** 2)
    for tries in range(1, MAX_ROUNDING_TRIES + 1):
        words = rng.scratch_words((y.size + 1) // 2).view(np.int32)[: y.size]
        np.multiply(words, _INV_2_32, out=floats)
        np.add(floats, y, out=floats)
        np.rint(floats, out=floats)
        if limit is None:
            return floats, tries
        norm_sq = float(np.dot(floats, floats))
        if norm_sq >= _MAX_EXACT:
            ints = floats.astype(np.int64).tolist()
            if sum(v * v for v in ints) <= limit:
                return floats, tries
        elif norm_sq <= limit:
            return floats, tries
    raise UsageError("conditional rounding failed too many times: is the input clipped?")


def to_ring(z: np.ndarray, bits: int) -> np.ndarray:
    """Integer vector ``z`` (int32 or int64) reduced mod ``2^bits`` into the ring's storage
    dtype, as a new array.

    In two's complement ``z & (2^bits - 1)`` is the residue of negative values too, and the
    bit pattern of an int32 (int64) is its residue mod 2^32 (2^64).
    """
    check_bits(bits)
    if z.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise ConfigurationError("to_ring needs an int32 or int64 array")
    width = z.dtype.itemsize * 8
    if bits > width:
        z = z.astype(np.int64)
        width = 64
    unsigned = z.view(np.uint32 if width == 32 else np.uint64)
    out = np.empty(z.shape, dtype=dtype_for_bits(bits))
    if bits == width:
        np.copyto(out, unsigned, casting="unsafe")
    else:
        # One pass: mask the two's complement bits and store into the ring dtype.
        np.bitwise_and(unsigned, unsigned.dtype.type(value_mask(bits)), out=out, casting="unsafe")
    return out


def from_ring(total: np.ndarray, bits: int) -> np.ndarray:
    """Residues mod ``2^bits`` mapped to the signed range ``[-2^(bits-1), 2^(bits-1))`` (int64)."""
    check_bits(bits)
    values = np.asarray(total)
    if values.dtype.kind not in "ui":
        raise ConfigurationError("from_ring needs an integer array")
    if bits == 64:
        return values.astype(np.uint64).astype(np.int64)
    half = np.int64(1 << (bits - 1))
    signed = values.astype(np.int64) & np.int64(value_mask(bits))
    signed += half
    signed &= np.int64(value_mask(bits))
    signed -= half
    return signed
