"""The Canonne-Kamath-Steinke (NeurIPS 2020) exact discrete Gaussian sampler, vectorized.

Theory of operation. CKS sample N_Z(0, sigma^2) for rational ``sigma^2 = p / q`` using only
uniform integers and exact comparisons:

* ``Bernoulli(exp(-gamma))`` for rational ``gamma = n / d`` in [0, 1] (their Algorithm 1):
  ``K = 1``; while ``Bernoulli(gamma / K)``: ``K += 1``; return ``K`` odd. For ``gamma > 1``,
  ``floor(gamma)`` independent ``Bernoulli(exp(-1))`` must all succeed, then
  ``Bernoulli(exp(-(gamma - floor(gamma))))``. ``Bernoulli(n / m)`` is ``U < n`` for ``U``
  uniform in ``[0, m)`` (exactly uniform, by rejection: see :mod:`secagg.dp.randomness`).
* Discrete Laplace with integer scale ``t`` (Algorithm 2): ``U`` uniform in ``[0, t)``, kept
  with probability ``exp(-U / t)``; ``V`` geometric (count of successes of
  ``Bernoulli(exp(-1))``); ``X = U + t V``; a fair sign, rejecting (sign -, 0).
* Discrete Gaussian (Algorithm 3): ``t = floor(sigma) + 1``; draw ``Y`` from the discrete
  Laplace of scale ``t`` and accept with probability
  ``exp(-(|Y| - sigma^2 / t)^2 / (2 sigma^2)) = exp(-(|Y| q t - p)^2 / (2 p q t^2))``.

Vectorized: every loop above is a NumPy pass over the samples still pending, with int64
arithmetic. Exact range (int64, checked on construction): ``2 p q t^2 <= 2^56`` with ``p / q``
in lowest terms (e.g. ``q = 1``: ``sigma^2 <= 2^27``; ``q = 256``: ``sigma^2 <= 2^19.5``). A
sample whose integers would leave int64 (``|Y| q t - p >= 2^31`` or ``K d > 2^62``, which
happens with negligible probability) is finished by the same algorithm on Python integers, so
the output is exact for every draw. This sampler is the *reference*; the pipeline's default is
:class:`secagg.dp.tables.ExactTableSampler`, also exact and several times faster.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from secagg.dp.pmf import to_fraction
from secagg.dp.randomness import RandomSource
from secagg.errors import ConfigurationError

__all__ = ["CKS_MAX_DENOMINATOR_PRODUCT", "CksDiscreteGaussian"]

CKS_MAX_DENOMINATOR_PRODUCT = 1 << 56
"""The int64-exact range: ``2 p q t^2`` must not exceed this."""

_MAX_BOUND = 1 << 62
_MAX_CENTERED = 1 << 31


def _bern_exp_frac(num: np.ndarray, den: np.ndarray, rng: RandomSource) -> np.ndarray:
    """Vectorized ``Bernoulli(exp(-num/den))`` for ``0 <= num <= den`` (CKS Algorithm 1)."""
    size = num.shape[0]
    result = np.empty(size, dtype=bool)
    k = np.ones(size, dtype=np.int64)
    active = np.arange(size)
    while active.size:
        bound = den[active] * k[active]
        overflow = bound > _MAX_BOUND
        if overflow.any():
            for index in active[overflow]:
                result[index] = _bern_exp_frac_scalar(int(num[index]), int(den[index]),
                                                      int(k[index]), rng)
            active = active[~overflow]
            bound = bound[~overflow]
            if not active.size:
                break
        success = rng.uniform_below(bound) < num[active]
        done = active[~success]
        result[done] = (k[done] % 2) == 1
        active = active[success]
        k[active] += 1
    return result


def _bern_exp_frac_scalar(num: int, den: int, k: int, rng: RandomSource) -> bool:
    """Algorithm 1 on Python integers, resumed at counter ``k`` (the rare int64 overflow)."""
    while rng.randbelow(den * k) < num:
        k += 1
    return k % 2 == 1


def _bern_exp(num: np.ndarray, den: np.ndarray, rng: RandomSource) -> np.ndarray:
    """Vectorized ``Bernoulli(exp(-num/den))`` for any ``num >= 0``, ``den >= 1``."""
    whole = num // den
    alive = np.ones(num.shape[0], dtype=bool)
    pending = np.flatnonzero(whole > 0)
    rounds = 0
    ones = np.ones(0, dtype=np.int64)
    while pending.size:
        if ones.size < pending.size:
            ones = np.ones(pending.size, dtype=np.int64)
        keep = _bern_exp_frac(ones[: pending.size], ones[: pending.size], rng)
        alive[pending[~keep]] = False
        rounds += 1
        pending = pending[keep]
        pending = pending[whole[pending] > rounds]
    result = np.zeros(num.shape[0], dtype=bool)
    survivors = np.flatnonzero(alive)
    if survivors.size:
        result[survivors] = _bern_exp_frac(num[survivors] % den[survivors], den[survivors], rng)
    return result


def _bern_exp_scalar(num: int, den: int, rng: RandomSource) -> bool:
    for _ in range(num // den):
        if not _bern_exp_frac_scalar(1, 1, 1, rng):
            return False
    return _bern_exp_frac_scalar(num % den, den, 1, rng)


class CksDiscreteGaussian:
    """Exact N_Z(0, sigma2) by CKS rejection from a discrete Laplace, vectorized in int64.

    ``sigma2`` is an int, float (converted exactly) or Fraction. Raises
    :class:`ConfigurationError` outside the int64-exact range (module docstring).
    """

    __slots__ = ("_den", "_p", "_q", "_t", "sigma2")

    def __init__(self, sigma2: int | float | Fraction) -> None:
        self.sigma2 = to_fraction(sigma2, "sigma2")
        p, q = self.sigma2.numerator, self.sigma2.denominator
        t = math.isqrt(p * q) // q + 1
        den = 2 * p * q * t * t
        if den > CKS_MAX_DENOMINATOR_PRODUCT:
            raise ConfigurationError(
                f"sigma2 = {self.sigma2} is outside the CKS sampler's int64-exact range "
                f"(2 p q t^2 = {den} > 2^56 with sigma2 = p/q, t = floor(sigma) + 1)"
            )
        self._p, self._q, self._t, self._den = p, q, t, den

    def _laplace(self, count: int, rng: RandomSource) -> np.ndarray:
        t = self._t
        out = np.empty(count, dtype=np.int64)
        pending = np.arange(count)
        while pending.size:
            n = pending.size
            u = rng.uniform_below(np.full(n, t, dtype=np.int64))
            keep = _bern_exp_frac(u, np.full(n, t, dtype=np.int64), rng)
            u = u[keep]
            slots = pending[keep]
            v = np.zeros(u.size, dtype=np.int64)
            going = np.arange(u.size)
            while going.size:
                more = _bern_exp_frac(
                    np.ones(going.size, np.int64), np.ones(going.size, np.int64), rng
                )
                going = going[more]
                v[going] += 1
            x = u + t * v
            negative = (rng.words(x.size) & np.uint64(1)).astype(bool)
            bad = negative & (x == 0)
            value = np.where(negative, -x, x)
            out[slots[~bad]] = value[~bad]
            pending = np.concatenate((pending[~keep], slots[bad]))
        return out

    def sample(self, count: int, rng: RandomSource) -> np.ndarray:
        """``count`` independent exact samples (int64)."""
        p, q, t, den = self._p, self._q, self._t, self._den
        out = np.empty(count, dtype=np.int64)
        pending = np.arange(count)
        while pending.size:
            y = self._laplace(pending.size, rng)
            magnitude = np.abs(y)
            # |Y| q t - p stays in (-2^31, 2^31) (p < 2^28 in range), so its square fits.
            inside = magnitude < (_MAX_CENTERED + p) // (q * t)
            accept = np.zeros(y.size, dtype=bool)
            idx = np.flatnonzero(inside)
            if idx.size:
                centered = magnitude[idx] * (q * t) - p
                num = centered * centered
                accept[idx] = _bern_exp(num, np.full(idx.size, den, dtype=np.int64), rng)
            for i in np.flatnonzero(~inside):
                c = abs(int(y[i])) * q * t - p
                accept[i] = _bern_exp_scalar(c * c, den, rng)
            out[pending[accept]] = y[accept]
            pending = pending[~accept]
        return out

    def __repr__(self) -> str:
        return f"CksDiscreteGaussian(sigma2={self.sigma2})"
