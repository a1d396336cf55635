"""Exact noise samplers from the CSPRNG: the discrete Gaussian and Skellam.

Which sampler runs where:

* the pipeline (and :func:`noise_sampler`) uses :class:`secagg.dp.tables.ExactTableSampler`
  for both distributions: an integer alias table with an exact escape path (one keystream word
  per sample, a few NumPy passes; exactness argument in :mod:`secagg.dp.tables`) over
  rigorous pmf enclosures (:mod:`secagg.dp.pmf`);
* :class:`secagg.dp.cks.CksDiscreteGaussian` is the reference discrete Gaussian sampler of
  Canonne, Kamath & Steinke (vectorized, int64-exact in its stated range); the tests check
  both against the exact pmf and against each other.

Every random bit comes from :class:`secagg.dp.randomness.RandomSource` (AES-128-CTR keyed by
``os.urandom``); nothing touches NumPy's random module. Tables are built once per parameter and
cached (they hold no secret).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from fractions import Fraction

import numpy as np

from secagg.dp.pmf import DiscreteGaussianPmf, SkellamPmf, enclose, to_fraction
from secagg.dp.randomness import RandomSource
from secagg.dp.tables import ExactTableSampler
from secagg.errors import ConfigurationError

__all__ = ["exact_variance", "noise_sampler", "sample_noise"]

_CACHE_SIZE = 32  # a run may rotate through several plans (one per width and epsilon)
_cache: OrderedDict[tuple[str, Fraction], ExactTableSampler] = OrderedDict()
_lock = threading.Lock()


def _pmf(mechanism: str, parameter: Fraction) -> DiscreteGaussianPmf | SkellamPmf:
    if mechanism == "dgauss":
        return DiscreteGaussianPmf(parameter)
    if mechanism == "skellam":
        return SkellamPmf(parameter)
    raise ConfigurationError(f"mechanism must be 'dgauss' or 'skellam', got {mechanism!r}")


def noise_sampler(mechanism: str, parameter: int | float | Fraction) -> ExactTableSampler:
    """The (cached) exact sampler of ``mechanism`` with ``parameter``.

    ``"dgauss"``: N_Z(0, sigma^2) with ``sigma^2 = parameter``; ``"skellam"``: Poisson(v/2)
    minus Poisson(v/2), variance ``v = parameter``. Raises :class:`ConfigurationError` on a
    bad mechanism or parameter, or one too large for a table.
    """
    key = (mechanism, to_fraction(parameter, "noise parameter"))
    with _lock:
        sampler = _cache.get(key)
        if sampler is not None:
            _cache.move_to_end(key)
            return sampler
    sampler = ExactTableSampler(_pmf(*key))
    with _lock:
        _cache[key] = sampler
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return sampler


def sample_noise(
    mechanism: str,
    parameter: int | float | Fraction,
    count: int,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """``count`` exact samples (int64) of ``mechanism`` noise; a fresh private source by default."""
    source = RandomSource() if rng is None else rng
    return noise_sampler(mechanism, parameter).sample(count, source)


def exact_variance(mechanism: str, parameter: int | float | Fraction) -> float:
    """The distribution's variance: ``v`` for Skellam; for the discrete Gaussian the exact
    ``sum x^2 p(x)`` (slightly below ``sigma^2`` for small ``sigma``), from the enclosure."""
    value = to_fraction(parameter, "noise parameter")
    if mechanism == "skellam":
        return float(value)
    pmf = _pmf(mechanism, value)
    half = int(12 * pmf.std_estimate) + 32
    enc = enclose(pmf, half, 96)
    second = sum(2 * x * x * w for x, w in enumerate(enc.w_lo))
    return float(Fraction(second, enc.z_hi))
