"""The pmf enclosures hold the true values (checked with mpmath at high precision)."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.dp.pmf import DiscreteGaussianPmf, SkellamPmf, enclose, exp_neg_bounds
from secagg.errors import ConfigurationError


def mp(value: Fraction) -> mpmath.mpf:
    return mpmath.mpf(value.numerator) / value.denominator


@given(
    st.fractions(min_value=0, max_value=5000, max_denominator=10**12),
    st.integers(min_value=8, max_value=200),
)
def test_exp_bounds_enclose(h: Fraction, prec: int) -> None:
    lo, hi = exp_neg_bounds(h, prec)
    with mpmath.workprec(prec + 400):
        exact = mpmath.exp(-mp(h)) * mpmath.mpf(2) ** prec
        assert lo <= exact <= hi
    assert hi - lo <= 4


@pytest.mark.parametrize(
    "pmf",
    [
        DiscreteGaussianPmf(Fraction(1, 3)),
        DiscreteGaussianPmf(Fraction(9, 4)),
        DiscreteGaussianPmf(810.25**2),
        SkellamPmf(Fraction(1, 2)),
        SkellamPmf(Fraction(5, 2)),
        SkellamPmf(Fraction(700)),
    ],
    ids=lambda p: p.name,
)
def test_enclosure_holds_the_pmf(pmf: DiscreteGaussianPmf | SkellamPmf) -> None:
    with mpmath.workprec(400):
        check_enclosure(pmf)


def check_enclosure(pmf: DiscreteGaussianPmf | SkellamPmf) -> None:
    std = pmf.std_estimate
    half = int(8.5 * std) + 16
    enc = enclose(pmf, half, 128)
    if isinstance(pmf, DiscreteGaussianPmf):
        s2 = mp(pmf.sigma2)
        reach = int(16 * std) + 40  # the rest is below e^-128 of the mass
        norm = mpmath.fsum(mpmath.exp(-mpmath.mpf(k * k) / (2 * s2)) for k in range(-reach, reach))

        def p(x: int) -> mpmath.mpf:
            return mpmath.exp(-mpmath.mpf(x * x) / (2 * s2)) / norm
    else:
        v = mp(pmf.variance)

        def p(x: int) -> mpmath.mpf:
            return mpmath.besseli(abs(x), v) * mpmath.exp(-v)

    for x in sorted({0, 1, 2, half // 7, half // 3, half // 2, half, -half // 2}):
        lo, hi = enc.p_bounds(x)
        value = p(x)
        assert mp(lo) <= value <= mp(hi), x
        assert float(hi - lo) <= 1e-15 * float(value) + 2.0**-100
    assert float(enc.tail_bound()) < 2.0**-45
    assert enc.w_lo[0] == enc.w_hi[0] == 1 << 128
    # ratios are non-increasing (log-concavity) within the enclosure's resolution
    assert all(enc.rho_hi[k + 1] <= enc.rho_hi[k] + 2 for k in range(min(half, 200)))


def test_enclose_refuses_bad_widths() -> None:
    with pytest.raises(ConfigurationError, match="half-width"):
        enclose(SkellamPmf(4), 0, 64)
    with pytest.raises(ConfigurationError, match="half-width"):
        enclose(SkellamPmf(4), 1 << 23, 64)
    with pytest.raises(ConfigurationError, match="too narrow"):
        enclose(DiscreteGaussianPmf(Fraction(10**12)), 2, 20)
