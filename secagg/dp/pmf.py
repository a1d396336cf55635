"""Rigorous enclosures of the discrete Gaussian and Skellam pmfs, in fixed-point integers.

Theory of operation. Both noise distributions are symmetric, log-concave pmfs on Z, described
by their unnormalized weights ``w(0) = 1, w(x+1) = w(x) * rho_x`` where the ratios
``rho_x = w(x+1) / w(x)`` are non-increasing in ``x >= 0`` (log-concavity):

* discrete Gaussian N_Z(0, sigma^2): ``w(x) = exp(-x^2 / (2 sigma^2))``, so
  ``rho_x = exp(-(2x + 1) h)`` with ``h = 1 / (2 sigma^2)``;
* Skellam with variance ``v`` (Poisson(v/2) minus Poisson(v/2)): ``p(x) = e^-v I_|x|(v)``, so
  ``rho_x = I_(x+1)(v) / I_x(v)``, which obeys ``rho_(x-1) = 1 / (2x / v + rho_x)``. Skellam
  is log-concave as the convolution of two log-concave pmfs (Hoggar 1974).

Every quantity is an interval ``[lo, hi]`` of integers in units of ``2^-prec`` computed with
directed rounding (floor for lower ends, ceiling for upper ends) from exact rational inputs:
the parameters are :class:`fractions.Fraction` (a float converts exactly), ``exp(-h)`` comes from
its alternating Taylor series (consecutive partial sums bracket the value) after halving ``h``
below 1/2 and squaring back, and the Skellam ratios come from the backward recurrence started
from the interval ``[0, 1]`` (which holds every ratio). The recurrence map ``r -> 1/(a + r)``
is decreasing, so interval ends swap at each step, and it contracts, so the start interval
shrinks to a few units after enough steps: the enclosure is always valid, only its width
depends on how far out the recurrence starts (we check the width and start further out if
needed). No floating point, no library special function, no assumed error bound.

The normalizer ``Z = sum_x w(x)`` is enclosed by the table's sum (lower) and the table's sum
plus the tail bound ``2 w(X) rho_X / (1 - rho_X)`` (upper), valid because the ratios beyond
``X`` are at most ``rho_X``. Hence ``p(x) in [w_lo(x) / Z_hi, w_hi(x) / Z_lo]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from secagg.errors import ConfigurationError

__all__ = [
    "DiscreteGaussianPmf",
    "Enclosure",
    "LogConcavePmf",
    "SkellamPmf",
    "enclose",
    "exp_neg_bounds",
    "to_fraction",
]

_MAX_HALF_WIDTH = 1 << 22
"""Largest table half-width (about 500 000 standard deviations of 1): 2^23 table columns."""


def to_fraction(value: object, what: str) -> Fraction:
    """``value`` (int, float or Fraction, finite and > 0) as an exact Fraction.

    Raises :class:`ConfigurationError` naming ``what`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise ConfigurationError(f"{what} must be a positive number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{what} must be finite, got {value!r}")
    frac = Fraction(value)
    if frac <= 0:
        raise ConfigurationError(f"{what} must be > 0, got {value!r}")
    return frac


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def exp_neg_bounds(h: Fraction, prec: int) -> tuple[int, int]:
    """Integers ``lo <= exp(-h) * 2^prec <= hi`` for rational ``h >= 0``; ``hi - lo`` is small.

    Exact: alternating Taylor series for ``g = h / 2^j <= 1/2`` (partial sums bracket the
    value), then ``j`` squarings with directed rounding.
    """
    if h < 0:
        raise ConfigurationError("exp_neg_bounds needs h >= 0")
    if h == 0:
        return 1 << prec, 1 << prec
    j = 0
    while h > Fraction(1, 2) * (1 << j):
        j += 1
    g = h / (1 << j)
    work = prec + 2 * j + 24
    eps = Fraction(1, 1 << (work + 2))
    term = Fraction(1)
    prev = Fraction(1)
    k = 0
    while True:
        k += 1
        term = term * g / k
        cur = prev - term if k % 2 else prev + term
        if term < eps:
            break
        prev = cur
    lo_f, hi_f = min(prev, cur), max(prev, cur)
    scale = 1 << work
    lo = lo_f.numerator * scale // lo_f.denominator
    hi = _ceil_div(hi_f.numerator * scale, hi_f.denominator)
    for _ in range(j):
        lo = (lo * lo) >> work
        hi = _ceil_div(hi * hi, scale)
    shift = work - prec
    return lo >> shift, _ceil_div(hi, 1 << shift)


class LogConcavePmf(Protocol):
    """A symmetric log-concave pmf on Z given by exact ratio enclosures (see module doc)."""

    @property
    def name(self) -> str:
        """A short label, e.g. ``"dgauss(sigma2=9/4)"``."""
        ...

    @property
    def std_estimate(self) -> float:
        """An approximate standard deviation (used only to size tables)."""
        ...

    def ratio_bounds(self, count: int, prec: int) -> tuple[list[int], list[int]]:
        """Lists ``lo, hi`` with ``lo[x] <= rho_x * 2^prec <= hi[x]`` for ``x < count``."""
        ...


class DiscreteGaussianPmf:
    """N_Z(0, sigma2): ``p(x)`` proportional to ``exp(-x^2 / (2 sigma2))``; sigma2 rational."""

    __slots__ = ("sigma2",)

    def __init__(self, sigma2: int | float | Fraction) -> None:
        self.sigma2 = to_fraction(sigma2, "sigma2")

    @property
    def name(self) -> str:
        return f"dgauss(sigma2={self.sigma2})"

    @property
    def std_estimate(self) -> float:
        return math.sqrt(float(self.sigma2))

    def ratio_bounds(self, count: int, prec: int) -> tuple[list[int], list[int]]:
        h = 1 / (2 * self.sigma2)
        work = prec + 2 * max(count, 1).bit_length() + 24
        scale = 1 << work
        c_lo, c_hi = exp_neg_bounds(h, work)
        r_lo, r_hi = exp_neg_bounds(2 * h, work)
        shift = work - prec
        unit = 1 << shift
        lo: list[int] = []
        hi: list[int] = []
        g_lo, g_hi = c_lo, c_hi
        for _ in range(count):
            lo.append(g_lo >> shift)
            hi.append(_ceil_div(g_hi, unit))
            g_lo = (g_lo * r_lo) >> work
            g_hi = _ceil_div(g_hi * r_hi, scale)
        return lo, hi

    def __repr__(self) -> str:
        return f"DiscreteGaussianPmf(sigma2={self.sigma2})"


class SkellamPmf:
    """Skellam with variance ``v``: Poisson(v/2) minus Poisson(v/2); ``p(x) = e^-v I_|x|(v)``."""

    __slots__ = ("variance",)

    def __init__(self, variance: int | float | Fraction) -> None:
        self.variance = to_fraction(variance, "variance")

    @property
    def name(self) -> str:
        return f"skellam(variance={self.variance})"

    @property
    def std_estimate(self) -> float:
        return math.sqrt(float(self.variance))

    def ratio_bounds(self, count: int, prec: int) -> tuple[list[int], list[int]]:
        zn, zd = self.variance.numerator, self.variance.denominator
        work = prec + 2 * max(count, 1).bit_length() + 24
        scale = 1 << work
        shift = work - prec
        unit = 1 << shift
        extra = 64 + 8 * math.isqrt(max(1, int(self.variance))) + count // 4
        while True:
            start = count + extra
            r_lo, r_hi = 0, scale
            lo = [0] * count
            hi = [0] * count
            top = zn * scale * scale
            for nu in range(start, 0, -1):
                base = 2 * nu * zd * scale
                # rho_(nu-1) = v / (2 nu + v rho_nu): decreasing in rho_nu, so the ends swap.
                new_lo = top // (base + zn * r_hi)
                new_hi = min(scale, _ceil_div(top, base + zn * r_lo))
                r_lo, r_hi = new_lo, new_hi
                index = nu - 1
                if index < count:
                    lo[index] = r_lo >> shift
                    hi[index] = _ceil_div(r_hi, unit)
            if count == 0 or hi[count - 1] - lo[count - 1] <= 2:
                return lo, hi
            extra *= 2

    def __repr__(self) -> str:
        return f"SkellamPmf(variance={self.variance})"


@dataclass(frozen=True)
class Enclosure:
    """Weights ``w(x)``, ``0 <= x <= X``, and the normalizer, enclosed at precision ``prec``.

    ``w_lo[x] <= w(x) * 2^prec <= w_hi[x]`` (so ``w_lo[0] == w_hi[0] == 2^prec``),
    ``z_lo <= Z * 2^prec <= z_hi`` with ``Z = sum over all of Z of w``, and
    ``rho_hi[x] >= rho_x * 2^prec`` (the ratio bounds, kept for tail envelopes).
    """

    prec: int
    w_lo: list[int]
    w_hi: list[int]
    rho_hi: list[int]
    z_lo: int
    z_hi: int

    @property
    def half_width(self) -> int:
        """``X``: the largest ``|x|`` enclosed."""
        return len(self.w_lo) - 1

    def p_bounds(self, x: int) -> tuple[Fraction, Fraction]:
        """``lo <= p(x) <= hi`` as Fractions, for ``|x| <= half_width``."""
        k = abs(x)
        return Fraction(self.w_lo[k], self.z_hi), Fraction(self.w_hi[k], self.z_lo)

    def tail_bound(self) -> Fraction:
        """An upper bound on ``P(|X| > half_width)``."""
        k = self.half_width
        unit = 1 << self.prec
        rho = self.rho_hi[k]
        return Fraction(2 * self.w_hi[k] * rho, (unit - rho) * self.z_lo)


def enclose(pmf: LogConcavePmf, half_width: int, prec: int) -> Enclosure:
    """The :class:`Enclosure` of ``pmf`` on ``|x| <= half_width`` at precision ``prec`` bits.

    Raises :class:`ConfigurationError` when ``half_width`` exceeds the supported table size or
    the ratio at ``half_width`` is not provably below 1 (the table is too narrow).
    """
    if not 1 <= half_width <= _MAX_HALF_WIDTH:
        raise ConfigurationError(
            f"noise table half-width {half_width} outside [1, {_MAX_HALF_WIDTH}]: "
            f"the noise standard deviation ({pmf.std_estimate:.4g}) is too large"
        )
    unit = 1 << prec
    rho_lo, rho_hi = pmf.ratio_bounds(half_width + 1, prec)
    if rho_hi[half_width] >= unit:
        raise ConfigurationError(f"{pmf.name}: table half-width {half_width} is too narrow")
    w_lo = [unit]
    w_hi = [unit]
    for x in range(half_width):
        w_lo.append((w_lo[x] * rho_lo[x]) >> prec)
        w_hi.append(_ceil_div(w_hi[x] * rho_hi[x], unit))
    sum_lo = 2 * sum(w_lo) - unit
    sum_hi = 2 * sum(w_hi) - unit
    tail = _ceil_div(2 * w_hi[half_width] * rho_hi[half_width], unit - rho_hi[half_width])
    return Enclosure(
        prec=prec, w_lo=w_lo, w_hi=w_hi, rho_hi=rho_hi, z_lo=sum_lo, z_hi=sum_hi + tail
    )
