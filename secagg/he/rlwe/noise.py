"""A rigorous tail bound on the decryption noise of a sum of fresh RLWE encryptions.

The noise. Under a key whose secret ``s = s_1 + ... + s_M`` and public-key error
``e_pk = e_1 + ... + e_M`` are sums over ``M`` key holders (``s_i`` uniform ternary, ``e_i``
centered binomial with parameter ``eta``), a fresh encryption with ternary ``u`` and errors
``e0, e1`` decrypts with noise ``u e_pk + e0 + e1 s``. The sum of ``n`` of them has noise
``U e_pk + E0 + E1 s`` with ``U``, ``E0``, ``E1`` the sums of the ``n`` clients' ``u``,
``e0``, ``e1``. One coefficient of it is (negacyclic signs do not matter: every term is
symmetric)

    X = sum_(j < N) U_j E_j  +  sum_(j < N) S_j F_j  +  T0

with all ``2N + 1`` terms independent: ``U_j`` a sum of ``n`` ternaries, ``E_j`` a
coefficient of ``e_pk`` (centered binomial with parameter ``M eta``), ``S_j`` a coefficient of
``s`` (a sum of ``M`` ternaries), ``F_j`` a coefficient of ``E1`` and ``T0`` one of ``E0``
(centered binomial with parameter ``n eta``). Its variance is ``2 N n M eta / 3 + n eta / 2``.

The bound. By Chernoff, for every ``theta > 0``,
``P(|X| >= B) <= 2 exp(N l1(theta) + N l2(theta) + l0(theta) - theta B)`` where ``l1``,
``l2``, ``l0`` are the log moment generating functions of one ``U_j E_j``, one ``S_j F_j``
and ``T0``. These are computed exactly from the distributions, in log space so that no
probability underflows:

* ``l1 = log sum_e P(E = e) ((1 + 2 cosh(theta e)) / 3)^n`` (``E[exp(t u)] = (1 + 2 cosh t)/3``
  for a ternary ``u``);
* ``l2 = log sum_s P(S = s) cosh(theta s / 2)^(2 n eta)`` (``cosh(t/2)^(2 eta)`` is the MGF
  of a centered binomial with parameter ``eta``);
* ``l0 = 2 n eta log cosh(theta / 2)``.

:func:`noise_tail_bound` returns the smallest ``B`` it finds (over a grid of ``theta``, then
refined) with ``P(|X| >= B) <= 2^-tail_bits``. Every ``theta`` gives a valid bound, so the
search needs no optimality, only a correct evaluation; a relative margin of 10^-6 absorbs
floating-point error. The result is within a few percent of the Gaussian estimate
``sqrt(2 ln(2^(tail_bits + 1)) variance)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from secagg.errors import ConfigurationError

__all__ = ["noise_tail_bound", "noise_variance"]

_MAX_HOLDERS = 4096
_MAX_SUMMANDS = 1 << 40
_RELATIVE_MARGIN = 1e-6


def noise_variance(*, degree: int, holders: int, summands: int, eta: int) -> float:
    """Variance of one noise coefficient of a sum of ``summands`` fresh encryptions."""
    return 2 * degree * summands * holders * eta / 3 + summands * eta / 2


def _binomial_log_pmf(k: int) -> np.ndarray:
    """log P(e) of the centered binomial B(2k, 1/2) - k, for e = -k..k."""
    j = np.arange(2 * k, dtype=np.float64)
    log_choose = np.concatenate([[0.0], np.cumsum(np.log((2 * k - j) / (j + 1)))])
    result: np.ndarray = log_choose - 2 * k * math.log(2)
    return result


def _ternary_sum_log_pmf(count: int) -> np.ndarray:
    """log P(s) of a sum of ``count`` uniform ternaries, for s = -count..count."""
    log_p = np.array([0.0])
    third = math.log(3)
    for _ in range(count):
        size = log_p.size + 2
        padded = np.concatenate([[-np.inf, -np.inf], log_p, [-np.inf, -np.inf]])
        pair = np.logaddexp(padded[:size], padded[1 : size + 1])
        log_p = np.logaddexp(pair, padded[2 : size + 2]) - third
    return log_p


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(values, axis=axis, keepdims=True)
    result: np.ndarray = np.squeeze(top, axis=axis) + np.log(
        np.sum(np.exp(values - top), axis=axis)
    )
    return result


def _log_cosh(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.logaddexp(x, -x) - math.log(2)
    return result


@lru_cache(maxsize=64)
def noise_tail_bound(
    *, degree: int, holders: int, summands: int, eta: int, tail_bits: int
) -> float:
    """A ``B`` with ``P(|X| >= B) <= 2^-tail_bits`` for one noise coefficient ``X`` of a
    sum of ``summands`` fresh encryptions under a key of ``holders`` holders (module
    docstring). Raises ConfigurationError for out-of-range arguments."""
    for name, value, top in (
        ("degree", degree, 1 << 20),
        ("holders", holders, _MAX_HOLDERS),
        ("summands", summands, _MAX_SUMMANDS),
        ("eta", eta, 64),
        ("tail_bits", tail_bits, 1024),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise ConfigurationError(f"{name} must be an int in 1..{top}")
    log_e = _binomial_log_pmf(holders * eta)
    e_values = np.arange(-holders * eta, holders * eta + 1, dtype=np.float64)
    log_s = _ternary_sum_log_pmf(holders)
    s_values = np.arange(-holders, holders + 1, dtype=np.float64)
    target = (tail_bits + 1) * math.log(2)
    sigma = math.sqrt(noise_variance(degree=degree, holders=holders, summands=summands, eta=eta))

    def bounds(thetas: np.ndarray) -> np.ndarray:
        t = thetas[:, None]
        x = t * e_values[None, :]
        # log((1 + 2 cosh x) / 3) = log(1 + e^x + e^-x) - log 3, stably.
        g = np.logaddexp(np.logaddexp(0.0, x), -x) - math.log(3)
        l1 = _logsumexp(log_e[None, :] + summands * g, axis=1)
        l2 = _logsumexp(log_s[None, :] + 2 * summands * eta * _log_cosh(t * s_values / 2), 1)
        l0 = 2 * summands * eta * _log_cosh(thetas / 2)
        result: np.ndarray = (degree * (l1 + l2) + l0 + target) / thetas
        return result

    # The optimum is near theta = B / variance ~ sqrt(2 target) / sigma.
    center = math.sqrt(2 * target) / sigma
    thetas = center * np.logspace(-3, 3, 241)
    values = bounds(thetas)
    best = int(np.argmin(values))
    low = thetas[max(best - 1, 0)]
    high = thetas[min(best + 1, thetas.size - 1)]
    fine = np.linspace(low, high, 201)
    bound = float(min(values[best], float(np.min(bounds(fine)))))
    if not math.isfinite(bound) or bound <= 0:  # pragma: no cover - defensive
        raise ConfigurationError("noise bound computation failed")
    return bound * (1 + _RELATIVE_MARGIN)
