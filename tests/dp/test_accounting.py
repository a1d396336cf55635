"""The accountant: monotone, equal to dp-accounting where both apply, and its subsampling bound
checked against divergences computed exactly."""

from __future__ import annotations

import math
from fractions import Fraction

import dp_accounting
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp import accounting as acc
from secagg.errors import ConfigurationError
from tests.dp.exact import dgauss_pmf, skellam_pmf

ORDERS = np.array(acc.ORDERS, dtype=float)


def dp_accounting_rdp(q: float, z: float) -> np.ndarray:
    accountant = dp_accounting.rdp.RdpAccountant(list(acc.ORDERS))
    event = dp_accounting.GaussianDpEvent(z)
    if q < 1:
        event = dp_accounting.PoissonSampledDpEvent(q, event)
    return accountant.compose(event).rdp


@pytest.mark.parametrize("z", [0.7, 1.0, 5.0, 40.0])
def test_continuous_limit_matches_dp_accounting(z: float) -> None:
    """With huge grid noise both discrete bounds reduce to the Gaussian RDP (1e-9 relative)."""
    gaussian = dp_accounting_rdp(1.0, z)
    assert np.allclose(acc.gaussian_rdp(z), gaussian, rtol=1e-12, atol=0)
    scale = 1e7  # sensitivity 1e7 grid steps, central std z * 1e7
    dim = 1 << 20
    l2 = scale
    l1 = l2 * math.sqrt(dim)
    ddg = acc.ddgauss_rdp(l2=l2, l1=l1, local_sigma2=(z * scale) ** 2 / 100, clients=100, dim=dim)
    sk = acc.skellam_rdp(l2=l2, l1=l1, local_variance=(z * scale) ** 2 / 100, clients=100)
    assert np.max(np.abs(ddg / gaussian - 1)) < 1e-9
    assert np.max(np.abs(sk / gaussian - 1)) < 1e-9


@pytest.mark.parametrize("q", [1e-3, 100 / 3400, 0.3])
@pytest.mark.parametrize("z", [0.6, 2.0, 8.0])
def test_add_direction_is_the_exact_subsampled_gaussian(q: float, z: float) -> None:
    """For the Gaussian the add-direction expansion is the exact subsampled RDP."""
    ours = acc.subsampled_rdp_add(acc.gaussian_rdp(z), q)
    theirs = dp_accounting_rdp(q, z)
    assert np.max(np.abs(ours / theirs - 1)) < 1e-9


def exact_pair_divergences(q: float, alphas: list[int], p: np.ndarray, shift: int) -> tuple[
    list[float], list[float], np.ndarray
]:
    """D_alpha(M || Q), D_alpha(Q || M) with M = (1-q) Q + q P, P = Q shifted, by summation;
    and the base RDP D_j(P || Q) for j = 2..256."""
    with mpmath.workdps(60):
        return _exact_pair_divergences(q, alphas, p, shift)


def _exact_pair_divergences(q: float, alphas: list[int], p: np.ndarray, shift: int) -> tuple[
    list[float], list[float], np.ndarray
]:
    qp = [mpmath.mpf(float(v)) for v in p]
    pp = [mpmath.mpf(0)] * shift + qp[: len(qp) - shift]
    keep = [i for i in range(len(qp)) if qp[i] > 0]
    mix = {i: (1 - q) * qp[i] + q * pp[i] for i in keep}
    add, remove = [], []
    for a in alphas:
        s_add = mpmath.fsum(mix[i] ** a * qp[i] ** (1 - a) for i in keep)
        s_rem = mpmath.fsum(qp[i] ** a * mix[i] ** (1 - a) for i in keep)
        add.append(float(mpmath.log(s_add) / (a - 1)))
        remove.append(float(mpmath.log(s_rem) / (a - 1)))
    base = []
    for j in acc.ORDERS:
        s = mpmath.fsum(pp[i] ** j * qp[i] ** (1 - j) for i in keep)
        base.append(float(mpmath.log(s) / (j - 1)))
    return add, remove, np.array(base)


@pytest.mark.parametrize(
    ("name", "pmf", "shift", "q"),
    [
        ("skellam", skellam_pmf(Fraction(30), range(-120, 121)), 4, 0.05),
        ("skellam", skellam_pmf(Fraction(8), range(-60, 61)), 2, 0.3),
        ("dgauss", dgauss_pmf(Fraction(16), range(-60, 61)), 3, 0.1),
    ],
)
def test_subsampling_bounds_hold_on_exact_divergences(
    name: str, pmf: np.ndarray, shift: int, q: float
) -> None:
    """Given the exact base RDP of a 1-D pair, the add bound equals the exact add-direction
    divergence (binomial identity) and the remove bound is above the exact remove one."""
    alphas = [2, 3, 5, 8, 16]
    add, remove, base = exact_pair_divergences(q, alphas, pmf, shift)
    add_bound = acc.subsampled_rdp_add(base, q)
    remove_bound = acc.subsampled_rdp_remove(base, q)
    both = acc.subsampled_rdp(base, q)
    for k, a in enumerate(alphas):
        i = a - 2
        assert add_bound[i] == pytest.approx(add[k], rel=1e-6)
        assert remove_bound[i] >= remove[k] * (1 - 1e-9)
        assert both[i] >= max(add[k], remove[k]) * (1 - 1e-6)
    assert np.all(both <= acc.subsampled_rdp_zhu_wang(base, q) + 1e-15)


def test_remove_bound_holds_for_the_subsampled_gaussian() -> None:
    """Numerical integration of D_alpha(N(0,z^2) || (1-q) N(0,z^2) + q N(1,z^2))."""
    with mpmath.workdps(30):
        check_gaussian_remove_bound()


def check_gaussian_remove_bound() -> None:
    for z, q in ((0.8, 0.03), (2.0, 0.2), (0.5, 0.01)):
        bound = acc.subsampled_rdp_remove(acc.gaussian_rdp(z), q)
        for a in (2, 4, 9):
            def integrand(x: mpmath.mpf, a: int = a, z: float = z, q: float = q) -> mpmath.mpf:
                p0 = mpmath.npdf(x, 0, z)
                p1 = mpmath.npdf(x, 1, z)
                return p0**a * ((1 - q) * p0 + q * p1) ** (1 - a)

            value = mpmath.quad(integrand, [-mpmath.inf, -5, 0, 1, 6, mpmath.inf])
            exact = float(mpmath.log(value) / (a - 1))
            assert bound[a - 2] >= exact


@settings(max_examples=15)
@given(
    mechanism=st.sampled_from(["skellam", "dgauss"]),
    noise=st.floats(min_value=1.0, max_value=1e6),
    factor=st.floats(min_value=1.01, max_value=10.0),
    rounds=st.integers(min_value=1, max_value=5000),
    q=st.floats(min_value=1e-4, max_value=0.5),
)
def test_epsilon_is_monotone(
    mechanism: str, noise: float, factor: float, rounds: int, q: float
) -> None:
    common = dict(clients=50, l2=300.0, l1=300.0 * 32, dim=1024, delta=1e-5)

    def eps(v: float, r: int, rate: float) -> float:
        return acc.mechanism_epsilon(
            mechanism, noise=v, rounds=r, sampling_rate=rate, **common  # type: ignore[arg-type]
        )

    base = eps(noise, rounds, q)
    assert eps(noise * factor, rounds, q) <= base + 1e-12
    assert eps(noise, rounds + 1, q) >= base - 1e-12
    assert eps(noise, rounds, min(1.0, q * factor)) >= base - 1e-12


@given(q=st.floats(min_value=1e-4, max_value=0.9), z=st.floats(min_value=0.3, max_value=20))
def test_subsampled_bound_is_monotone_in_rate_and_below_its_parts(q: float, z: float) -> None:
    base = acc.gaussian_rdp(z)
    low = acc.subsampled_rdp(base, q)
    high = acc.subsampled_rdp(base, min(1.0, 1.5 * q))
    assert np.all(low <= high * (1 + 1e-12) + 1e-300)
    assert np.all(low <= base)
    assert np.all(low <= acc.subsampled_rdp_zhu_wang(base, q) * (1 + 1e-12))
    assert np.all(low >= acc.subsampled_rdp_add(base, q) * (1 - 1e-12))


def test_conversion_is_dp_accountings() -> None:
    rdp = 1500 * acc.subsampled_rdp(acc.gaussian_rdp(0.9), 0.03)
    theirs = dp_accounting.rdp.rdp_privacy_accountant.compute_epsilon(acc.ORDERS, rdp, 1e-5)[0]
    assert acc.rdp_epsilon(rdp, 1e-5) == theirs
    with pytest.raises(ConfigurationError, match="delta"):
        acc.rdp_epsilon(rdp, 0.0)


def test_central_baseline_is_dp_accountings() -> None:
    """The EMNIST schedule: z = 0.833 (ANCHORS); dp-accounting's epsilon at it is the target."""
    q, rounds, delta = 100 / 3400, 1500, 1 / 3400
    z = acc.central_gaussian_noise_multiplier(10.0, delta, q, rounds)
    assert z == pytest.approx(0.8331, abs=5e-4)
    assert acc.central_gaussian_epsilon(z, delta, q, rounds) == pytest.approx(10.0, abs=1e-4)
    accountant = dp_accounting.rdp.RdpAccountant()
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds
    )
    assert accountant.compose(event).get_epsilon(delta) == pytest.approx(10.0, abs=1e-4)


@given(
    target=st.floats(min_value=0.5, max_value=50),
    mechanism=st.sampled_from(["skellam", "dgauss"]),
)
@settings(max_examples=10)
def test_smallest_noise_is_minimal(target: float, mechanism: str) -> None:
    def eps(v: float) -> float:
        if mechanism == "dgauss" and v < 0.25:
            return math.inf
        return acc.mechanism_epsilon(
            mechanism, noise=v, clients=20, l2=100.0, l1=3200.0, dim=1024,
            sampling_rate=0.05, rounds=200, delta=1e-6,
        )

    tol = 1e-6
    floor = 0.25 if mechanism == "dgauss" else 1e-9
    v = acc.smallest_noise(eps, target, start=1.0, floor=floor, rel_tol=tol)
    assert eps(v) <= target
    if v > floor:
        assert eps(v / (1 + 2 * tol)) > target


def test_bad_inputs() -> None:
    with pytest.raises(ConfigurationError, match="sigma >= 1/2"):
        acc.ddgauss_rdp(l2=1, l1=1, local_sigma2=0.2, clients=3, dim=4)
    with pytest.raises(ConfigurationError, match="mechanism"):
        acc.mechanism_rdp("laplace", noise=1, clients=1, l2=1, l1=1, dim=1)
    with pytest.raises(ConfigurationError, match="sampling rate"):
        acc.subsampled_rdp(acc.gaussian_rdp(1.0), 1.5)
    with pytest.raises(ConfigurationError, match="one value per order"):
        acc.subsampled_rdp(np.zeros(3), 0.5)
    with pytest.raises(ConfigurationError):
        acc.gaussian_rdp(0.0)
    with pytest.raises(ConfigurationError, match="no noise level"):
        acc.smallest_noise(lambda v: 1.0, 0.5, start=1.0, floor=1e-3)
