"""The Chernoff noise bound: it bounds simulated noise and stays close to the Gaussian figure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.he.rlwe.noise import noise_tail_bound, noise_variance


def _simulate(degree: int, holders: int, summands: int, eta: int, trials: int) -> np.ndarray:
    """Draws of one noise coefficient, straight from the model of the module docstring."""
    rng = np.random.default_rng(12345)  # not-secret: test data

    def ternary_sum(count: int, shape: tuple[int, ...]) -> np.ndarray:
        result: np.ndarray = rng.integers(-1, 2, size=(count, *shape)).sum(axis=0)
        return result

    def binomial(k: int, shape: tuple[int, ...]) -> np.ndarray:
        return rng.binomial(2 * k, 0.5, size=shape) - k

    shape = (trials, degree)
    first = (ternary_sum(summands, shape) * binomial(holders * eta, shape)).sum(axis=1)
    second = (ternary_sum(holders, shape) * binomial(summands * eta, shape)).sum(axis=1)
    result: np.ndarray = first + second + binomial(summands * eta, (trials,))
    return result


def test_bound_holds_on_simulated_noise_and_variance_matches() -> None:
    degree, holders, summands, eta = 32, 3, 4, 21
    draws = _simulate(degree, holders, summands, eta, 40000)
    variance = noise_variance(degree=degree, holders=holders, summands=summands, eta=eta)
    assert abs(float(draws.var()) / variance - 1) < 0.03
    for tail_bits in (4, 8, 12):
        bound = noise_tail_bound(
            degree=degree, holders=holders, summands=summands, eta=eta, tail_bits=tail_bits
        )
        exceed = float(np.mean(np.abs(draws) >= bound))
        assert exceed <= 2.0**-tail_bits
    # And the bound is not vacuous: a bound at half of it is exceeded far more often.
    bound = noise_tail_bound(
        degree=degree, holders=holders, summands=summands, eta=eta, tail_bits=4
    )
    assert float(np.mean(np.abs(draws) >= bound / 2)) > 2.0**-4


@pytest.mark.parametrize(
    ("degree", "holders", "summands"), [(8192, 5, 1000), (8192, 32, 100), (4096, 2, 10)]
)
def test_close_to_the_gaussian_estimate(degree: int, holders: int, summands: int) -> None:
    bound = noise_tail_bound(
        degree=degree, holders=holders, summands=summands, eta=21, tail_bits=64
    )
    variance = noise_variance(degree=degree, holders=holders, summands=summands, eta=21)
    gaussian = math.sqrt(2 * 65 * math.log(2) * variance)
    assert gaussian < bound < 1.01 * gaussian


def test_monotone_in_summands_and_holders() -> None:
    def bound(holders: int, summands: int) -> float:
        return noise_tail_bound(
            degree=8192, holders=holders, summands=summands, eta=21, tail_bits=64
        )

    assert bound(5, 100) < bound(5, 1000) < bound(6, 1000)


def test_refusals() -> None:
    with pytest.raises(ConfigurationError):
        noise_tail_bound(degree=8192, holders=0, summands=1, eta=21, tail_bits=64)
    with pytest.raises(ConfigurationError):
        noise_tail_bound(degree=8192, holders=1, summands=True, eta=21, tail_bits=64)
