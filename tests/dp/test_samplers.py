"""Exactness of the noise samplers: chi-square against independently computed pmfs, moments,
the escape paths forced, the CKS reference, and no use of numpy.random."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest

from secagg.dp import CksDiscreteGaussian, RandomSource, exact_variance, noise_sampler
from secagg.dp.pmf import DiscreteGaussianPmf, SkellamPmf
from secagg.dp.tables import ExactTableSampler
from secagg.errors import ConfigurationError, SecAggError
from tests.dp.exact import chi_square_pvalue, dgauss_pmf, moments, skellam_pmf

P_MIN = 1e-4  # fixed seeds make every test deterministic; a fair sampler passes w.p. 0.9999


def source(tag: int) -> RandomSource:
    return RandomSource(bytes([tag]) * 32)


def support_for(std: float) -> range:
    reach = int(12 * std) + 12
    return range(-reach, reach + 1)


DGAUSS = [Fraction(1, 3), Fraction(9, 4), Fraction(100), Fraction(2627641, 4)]
SKELLAM = [Fraction(1, 2), Fraction(5, 2), Fraction(40), Fraction(65536)]


@pytest.mark.parametrize("sigma2", DGAUSS, ids=str)
def test_table_dgauss_fits_exact_pmf(sigma2: Fraction) -> None:
    support = support_for(math.sqrt(sigma2))
    samples = noise_sampler("dgauss", sigma2).sample(200_000, source(1))
    assert chi_square_pvalue(samples, dgauss_pmf(sigma2, support), support) > P_MIN


@pytest.mark.parametrize("variance", SKELLAM, ids=str)
def test_table_skellam_fits_exact_pmf(variance: Fraction) -> None:
    support = support_for(math.sqrt(variance))
    samples = noise_sampler("skellam", variance).sample(200_000, source(2))
    assert chi_square_pvalue(samples, skellam_pmf(variance, support), support) > P_MIN


@pytest.mark.parametrize(
    ("mechanism", "parameter"),
    [("dgauss", Fraction(9, 4)), ("dgauss", Fraction(100)), ("skellam", Fraction(5, 2)),
     ("skellam", Fraction(40))],
)
def test_moments_match(mechanism: str, parameter: Fraction) -> None:
    """Sample mean, variance and fourth moment within 6 standard errors of the exact ones."""
    n = 400_000
    support = support_for(math.sqrt(parameter))
    pmf = (dgauss_pmf if mechanism == "dgauss" else skellam_pmf)(parameter, support)
    mean, var, fourth = moments(pmf, support)
    x = noise_sampler(mechanism, parameter).sample(n, source(3)).astype(float)
    assert abs(x.mean() - mean) < 6 * math.sqrt(var / n)
    grid = np.arange(support.start, support.stop, dtype=float) - mean
    eighth = float((pmf * grid**8).sum())
    assert abs(x.var() - var) < 6 * math.sqrt((fourth - var**2) / n)
    assert abs(((x - mean) ** 4).mean() - fourth) < 6 * math.sqrt((eighth - fourth**2) / n)
    assert exact_variance(mechanism, parameter) == pytest.approx(var, rel=1e-9)


def test_skellam_excess_kurtosis_is_one_over_variance() -> None:
    v = Fraction(4)
    support = support_for(2.0)
    _mean, var, fourth = moments(skellam_pmf(v, support), support)
    assert var == pytest.approx(4.0, rel=1e-12)
    assert fourth / var**2 - 3 == pytest.approx(1 / 4, rel=1e-9)


@pytest.mark.parametrize(
    ("pmf", "bits", "half"),
    [
        (DiscreteGaussianPmf(Fraction(9, 4)), 12, 3),
        (DiscreteGaussianPmf(Fraction(1, 5)), 10, 1),
        (SkellamPmf(Fraction(5, 2)), 14, 3),
        (SkellamPmf(Fraction(7)), 14, 4),
    ],
    ids=["dgauss-9/4", "dgauss-1/5", "skellam-5/2", "skellam-7"],
)
def test_escape_paths_are_exact(pmf: object, bits: int, half: int) -> None:
    """Coarse weights and a narrow table send a few percent of samples to levels 2 and 3
    (the Las Vegas residual sampler, tails included): the output is still exact."""
    sampler = ExactTableSampler(pmf, weight_bits=bits, half_width=half)  # type: ignore[arg-type]
    assert sampler.escape_probability > 5e-4
    n = 30_000
    samples = sampler.sample(n, source(4))
    value = getattr(pmf, "sigma2", None) or pmf.variance  # type: ignore[attr-defined]
    support = support_for(math.sqrt(value))
    exact = (dgauss_pmf if isinstance(pmf, DiscreteGaussianPmf) else skellam_pmf)(value, support)
    assert chi_square_pvalue(samples, exact, support) > P_MIN
    beyond = float(exact[np.abs(np.arange(support.start, support.stop)) > half].sum())
    if beyond * n > 30:
        assert np.abs(samples).max() > half  # the tail beyond the table was reached


def test_level_two_is_used_and_exact() -> None:
    sampler = noise_sampler("skellam", Fraction(300))
    assert 0.001 < sampler.level2_probability < 0.05
    support = support_for(math.sqrt(300))
    samples = sampler.sample(200_000, source(5))
    assert chi_square_pvalue(samples, skellam_pmf(Fraction(300), support), support) > P_MIN


@pytest.mark.parametrize("sigma2", [Fraction(1, 5), Fraction(9, 4), Fraction(100),
                                    Fraction(656000 * 256 + 3, 256)], ids=str)
def test_cks_reference_fits_exact_pmf(sigma2: Fraction) -> None:
    support = support_for(math.sqrt(sigma2))
    samples = CksDiscreteGaussian(sigma2).sample(60_000, source(6))
    assert chi_square_pvalue(samples, dgauss_pmf(sigma2, support), support) > P_MIN


def test_cks_and_table_agree() -> None:
    """Two-sample chi-square between the reference and the default sampler."""
    sigma2 = Fraction(49, 2)
    a = CksDiscreteGaussian(sigma2).sample(60_000, source(7))
    b = noise_sampler("dgauss", sigma2).sample(60_000, source(8))
    lo = min(a.min(), b.min())
    ca = np.bincount(a - lo)
    cb = np.bincount(b - lo, minlength=ca.size)
    ca = np.pad(ca, (0, cb.size - ca.size))
    keep = (ca + cb) >= 10
    table = np.vstack([np.append(ca[keep], ca[~keep].sum()), np.append(cb[keep], cb[~keep].sum())])
    from scipy.stats import chi2_contingency

    assert chi2_contingency(table)[1] > P_MIN


def test_cks_refuses_outside_its_int64_range() -> None:
    with pytest.raises(ConfigurationError, match="int64-exact range"):
        CksDiscreteGaussian(Fraction(2**40))
    with pytest.raises(ConfigurationError, match="int64-exact range"):
        CksDiscreteGaussian(Fraction(3**40, 2**50))  # huge denominator
    assert CksDiscreteGaussian(Fraction(2**26)).sample(10, source(9)).shape == (10,)


@pytest.mark.parametrize("bad", [0, -1.5, float("nan"), float("inf"), "1", True])
def test_bad_parameters_are_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        noise_sampler("dgauss", bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        CksDiscreteGaussian(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        noise_sampler("laplace", 1.0)


def test_too_wide_a_table_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="too large"):
        ExactTableSampler(SkellamPmf(Fraction(10**14)))


def test_samplers_never_touch_numpy_random(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy.random used")

    for name in ("default_rng", "random", "randint", "normal", "poisson", "RandomState",
                 "Generator", "seed", "integers", "choice", "uniform"):
        monkeypatch.setattr(np.random, name, forbidden, raising=False)
    rng = source(10)
    noise_sampler("skellam", Fraction(123, 7)).sample(1000, rng)
    noise_sampler("dgauss", Fraction(77, 3)).sample(1000, rng)
    CksDiscreteGaussian(Fraction(5, 3)).sample(1000, rng)
    ExactTableSampler(SkellamPmf(Fraction(3)), weight_bits=12, half_width=2).sample(2000, rng)


def test_random_source_uniform_below_is_exactly_uniform() -> None:
    rng = source(11)
    bounds = np.array([3, 5, 7, 2**62], dtype=np.int64)
    draws = np.stack([rng.uniform_below(bounds) for _ in range(30_000)])
    assert (draws >= 0).all() and (draws < bounds).all()
    from scipy.stats import chisquare

    for column, m in ((0, 3), (1, 5), (2, 7)):
        counts = np.bincount(draws[:, column], minlength=m)
        assert chisquare(counts).pvalue > P_MIN
    # The top bit of a bound near 2^62 is set about half the time (no modular folding).
    top = (draws[:, 3] >= 2**61).mean()
    assert abs(top - 0.5) < 0.02


def test_random_source_hides_its_state() -> None:
    rng = RandomSource(bytes(range(32)))
    assert "words_used=0" in repr(rng)
    assert bytes(range(32)).hex() not in repr(rng)
    with pytest.raises(SecAggError):
        pickle.dumps(rng)
    with pytest.raises(ConfigurationError):
        RandomSource(b"short")
    assert all(0 <= rng.randbelow(10) < 10 for _ in range(100))
    assert rng.bits(0) == 0 and 0 <= rng.bits(70) < 2**70


def test_fresh_sources_differ() -> None:
    assert not np.array_equal(RandomSource().words(4), RandomSource().words(4))


def test_a_slow_value_wider_than_the_table_type_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path stores int16; a slow-path value beyond that type widens the output."""
    sampler = ExactTableSampler(SkellamPmf(Fraction(3)), weight_bits=12, half_width=2)
    monkeypatch.setattr(ExactTableSampler, "_slow", lambda self, rng: 40_000)
    values, bound = sampler.sample_scratch(5000, source(12))
    assert values.dtype == np.int64 and bound == 40_000
    assert (values == 40_000).any() and np.abs(values[values != 40_000]).max() <= 2
