"""Reference pmfs computed independently with mpmath, and a chi-square goodness-of-fit helper.

These do not use :mod:`secagg.dp.pmf`: the discrete Gaussian is normalized by direct summation
and Skellam uses mpmath's modified Bessel function, so the samplers are checked against an
independent computation of the target distribution.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
from scipy import special, stats


def dgauss_pmf(sigma2: Fraction, support: range) -> np.ndarray:
    """P(X = x) for x in ``support``, X ~ N_Z(0, sigma2)."""
    with mpmath.workdps(40):
        s2 = mpmath.mpf(sigma2.numerator) / sigma2.denominator
        reach = int(14 * float(sigma2) ** 0.5) + 40  # the rest is below e^-98 of the mass
        norm = mpmath.fsum(
            mpmath.exp(-mpmath.mpf(k * k) / (2 * s2)) for k in range(-reach, reach + 1)
        )
        return np.array(
            [float(mpmath.exp(-mpmath.mpf(x * x) / (2 * s2)) / norm) for x in support]
        )


def skellam_pmf(variance: Fraction, support: range) -> np.ndarray:
    """P(X = x) for x in ``support``, X = Poisson(v/2) - Poisson(v/2): ``e^-v I_|x|(v)``.

    mpmath's Bessel function for small ``v``; scipy's exponentially scaled ``ive`` (about
    1e-14 relative accuracy) where mpmath's series converges too slowly.
    """
    if variance <= 1000:
        with mpmath.workdps(40):
            v = mpmath.mpf(variance.numerator) / variance.denominator
            return np.array(
                [float(mpmath.besseli(abs(x), v) * mpmath.exp(-v)) for x in support]
            )
    orders = np.abs(np.arange(support.start, support.stop, dtype=float))
    return np.asarray(special.ive(orders, float(variance)), dtype=float)


def chi_square_pvalue(samples: np.ndarray, pmf: np.ndarray, support: range) -> float:
    """Goodness of fit of integer ``samples`` to ``pmf`` on ``support`` (tails pooled).

    Cells with an expected count below 5 are pooled into a left and a right tail cell; samples
    outside ``support`` land in those tail cells too.
    """
    n = samples.size
    lo, hi = support.start, support.stop - 1
    counts = np.bincount(np.clip(samples, lo - 1, hi + 1) - (lo - 1), minlength=hi - lo + 3)
    observed_inner = counts[1:-1]
    expected_inner = pmf * n
    keep = expected_inner >= 5
    first = int(np.argmax(keep))
    last = len(keep) - int(np.argmax(keep[::-1])) - 1
    observed = [counts[0] + observed_inner[:first].sum()]
    expected = [n * (pmf[:first].sum() + 0.0)]
    observed += list(observed_inner[first : last + 1])
    expected += list(expected_inner[first : last + 1])
    observed.append(counts[-1] + observed_inner[last + 1 :].sum())
    expected.append(n - sum(expected))
    obs = np.array(observed, dtype=float)
    exp = np.array(expected, dtype=float)
    mask = exp > 0
    if (obs[~mask] > 0).any():
        return 0.0
    chi2 = float((((obs - exp) ** 2)[mask] / exp[mask]).sum())
    return float(stats.chi2.sf(chi2, int(mask.sum()) - 1))


def moments(pmf: np.ndarray, support: range) -> tuple[float, float, float]:
    """Mean, variance and fourth central moment of ``pmf`` on ``support``."""
    x = np.arange(support.start, support.stop, dtype=float)
    mean = float((pmf * x).sum())
    var = float((pmf * (x - mean) ** 2).sum())
    fourth = float((pmf * (x - mean) ** 4).sum())
    return mean, var, fourth
