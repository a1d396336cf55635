"""Renyi-DP accounting for distributed discrete Gaussian and Skellam noise under sampling.

Theory of operation.

**Model.** Each round, clients are Poisson-sampled with rate ``q``; the server learns the
integer sum ``sum_i x~_i + N`` of the sampled clients' clipped, scaled, rounded updates plus the
sum ``N`` of ``n`` noise shares (``n`` = the clients whose noise is in the sum). Neighbouring
datasets differ by one client's update; its noise share is counted as present (the planned
``n`` shares; each round's report uses the actual count). The update's sensitivities are those
of the rounded integer vector: ``Delta2 = B`` and ``Delta1 = B min(sqrt(d), B)``
(:mod:`secagg.dp.quantization`). This is the model of central DP-FedAvg with the Gaussian
mechanism, which is our baseline.

**Base mechanisms** (integer orders ``alpha >= 2``; all in the scaled integer domain):

* distributed discrete Gaussian, ``n`` shares of N_Z(0, sigma^2) (Kairouz, Liu & Steinke,
  ICML 2021, Theorem 1 / Proposition 14), with
  ``tau = 10 sum_(k=1..n-1) exp(-2 pi^2 sigma^2 k / (k+1))`` and ``s2 = n sigma^2``:
  ``eps(alpha) = min(alpha Delta2^2 / (2 s2) + tau d,
  alpha/2 (Delta2^2 / s2 + 2 Delta1 tau / sqrt(s2) + tau^2 d),
  alpha/2 (Delta2 / sqrt(s2) + tau sqrt(d))^2)``; requires ``sigma >= 1/2``;
* Skellam with total variance ``mu = n v`` (Agarwal, Kairouz & Liu, NeurIPS 2021,
  Corollary 4.1): ``eps(alpha) = alpha Delta2^2 / (2 mu)
  + min(((2 alpha - 1) Delta2^2 + 6 Delta1) / (4 mu^2), 3 Delta1 / (2 mu))``;
* the Gaussian mechanism: ``eps(alpha) = alpha / (2 z^2)`` (for cross-checks).

**Poisson subsampling.** For neighbours ``P`` (with the client) and ``Q`` (without), the
subsampled pair is ``M = (1-q) Q + q P`` against ``Q``, in both directions; by joint convexity
it suffices to bound one base pair (Mironov, Talwar & Zhang 2019; Zhu & Wang 2019). With
``L = P / Q``, ``E_Q[L] = 1`` and ``E_Q[L^j] = exp((j-1) D_j(P||Q)) <= exp((j-1) eps(j))``:

* *add direction*, exact binomial expansion (integer ``alpha``, every coefficient positive):
  ``exp((alpha-1) D_alpha(M||Q)) = E_Q[(1 - q + q L)^alpha]
  <= sum_j C(alpha, j) (1-q)^(alpha-j) q^j exp((j-1) eps(j))`` (``j = 0, 1`` terms exact);
* *remove direction*: ``exp((alpha-1) D_alpha(Q||M)) = E_Q[(1 + q Y)^-(alpha-1)]`` with
  ``Y = L - 1 >= -1``, ``E_Q[Y] = 0``. Taylor's theorem with Lagrange remainder for
  ``f(u) = (1+u)^-(alpha-1)`` on ``u >= -q`` gives
  ``f(u) <= 1 - (alpha-1) u + C(alpha, 2) (1-q)^-(alpha+1) u^2`` (``f''`` is largest at
  ``u = -q``), hence ``<= 1 + C(alpha, 2) (1-q)^-(alpha+1) q^2 (exp(eps(2)) - 1)``, using
  ``E_Q[Y^2] = exp(D_2(P||Q)) - 1``;
* we take ``min(max(add, remove), Zhu-Wang Theorem 5, eps(alpha))``: each is a valid bound
  (Zhu & Wang's general bound, factor 3 on the terms ``j >= 3``, covers both directions by
  itself; no subsampling is also valid). For the Gaussian the add direction is exactly the
  RDP of the subsampled Gaussian that ``dp-accounting`` computes (a tested cross-check).

**Composition and conversion.** RDP adds over rounds; ``(eps, delta)`` comes from
``dp_accounting``'s ``compute_epsilon`` (the improved conversion of Canonne, Kamath & Steinke
2020, Proposition 12 / Asoodeh et al.) over integer orders 2..256.

**Central baseline.** ``dp_accounting``'s ``RdpAccountant`` (its default orders, fractional
ones included) on ``PoissonSampledDpEvent(q, GaussianDpEvent(z))`` composed ``rounds`` times,
calibrated with ``dp_accounting.calibrate_dp_mechanism``.

``dp-accounting`` is imported on first use (the ``secagg[dp]`` extra), so clients that only
encode never need it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from secagg.errors import ConfigurationError

__all__ = [
    "MAX_ORDER",
    "ORDERS",
    "central_gaussian_epsilon",
    "central_gaussian_noise_multiplier",
    "ddgauss_rdp",
    "gaussian_rdp",
    "mechanism_epsilon",
    "mechanism_rdp",
    "rdp_epsilon",
    "skellam_rdp",
    "smallest_noise",
    "subsampled_rdp",
    "subsampled_rdp_add",
    "subsampled_rdp_remove",
    "subsampled_rdp_zhu_wang",
]

MAX_ORDER = 256
ORDERS: tuple[int, ...] = tuple(range(2, MAX_ORDER + 1))
"""The RDP orders: every integer from 2 to 256 (the subsampling bounds need them all)."""
_ALPHAS = np.arange(2, MAX_ORDER + 1, dtype=np.float64)
MECHANISMS = ("skellam", "dgauss")


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """dp-accounting logs a warning for every fractional order whose series does not converge
    (it then drops that order, which is safe); silence them while we call it."""
    logger = logging.getLogger("absl")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _dp_accounting() -> Any:
    try:
        import dp_accounting
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise ConfigurationError(
            "privacy accounting needs the 'dp-accounting' package (pip install 'secagg[dp]')"
        ) from exc
    return dp_accounting


def gaussian_rdp(noise_multiplier: float) -> np.ndarray:
    """RDP of the Gaussian mechanism with noise multiplier ``z``: ``alpha / (2 z^2)``."""
    if not noise_multiplier > 0:
        raise ConfigurationError(f"noise_multiplier must be > 0, got {noise_multiplier!r}")
    return _ALPHAS / (2.0 * noise_multiplier**2)


def ddgauss_rdp(
    *, l2: float, l1: float, local_sigma2: float, clients: int, dim: int
) -> np.ndarray:
    """RDP (orders 2..256) of the sum of ``clients`` shares of N_Z(0, local_sigma2) (KLS21).

    Sensitivities and variance are in the scaled integer domain; ``dim`` is the padded length.
    Raises :class:`ConfigurationError` when ``local_sigma2 < 1/4`` (the theorem needs
    ``sigma >= 1/2``) or a count is not positive.
    """
    if not local_sigma2 >= 0.25:
        raise ConfigurationError(
            f"the discrete Gaussian bound needs a local sigma >= 1/2, got sigma^2 = {local_sigma2}"
        )
    if clients < 1 or dim < 1:
        raise ConfigurationError("clients and dim must be >= 1")
    k = np.arange(1, clients, dtype=np.float64)
    tau = 10.0 * float(np.sum(np.exp(-2.0 * math.pi**2 * local_sigma2 * k / (k + 1.0))))
    central_std = math.sqrt(clients * local_sigma2)
    a2 = l2 / central_std
    a1 = l1 / central_std
    term1 = _ALPHAS / 2.0 * a2**2 + tau * dim
    term2 = _ALPHAS / 2.0 * (a2**2 + 2.0 * a1 * tau + tau**2 * dim)
    term3 = _ALPHAS / 2.0 * (a2 + math.sqrt(dim) * tau) ** 2
    return np.minimum(np.minimum(term1, term2), term3)


def skellam_rdp(*, l2: float, l1: float, local_variance: float, clients: int) -> np.ndarray:
    """RDP (orders 2..256) of Skellam noise of total variance ``clients * local_variance``.

    Agarwal, Kairouz & Liu 2021, Corollary 4.1, in the scaled integer domain.
    """
    if not local_variance > 0 or clients < 1:
        raise ConfigurationError("Skellam accounting needs local_variance > 0 and clients >= 1")
    mu = clients * local_variance
    first = _ALPHAS * l2**2 / (2.0 * mu)
    second = np.minimum(
        ((2.0 * _ALPHAS - 1.0) * l2**2 + 6.0 * l1) / (4.0 * mu**2), 3.0 * l1 / (2.0 * mu)
    )
    return first + second


@functools.lru_cache(maxsize=64)
def _log_binomial_weights(q: float) -> np.ndarray:
    """``M[a-2, j] = log C(a, j) + (a-j) log(1-q) + j log q`` for ``j <= a``, else -inf."""
    j = np.arange(MAX_ORDER + 1, dtype=np.float64)
    lgam = np.array([math.lgamma(v + 1.0) for v in range(MAX_ORDER + 1)])
    a = _ALPHAS[:, None]
    ji = j[None, :].astype(np.int64)
    ai = a.astype(np.int64)
    valid = ji <= ai
    safe_j = np.where(valid, ji, 0)
    log_comb = lgam[ai] - lgam[safe_j] - lgam[np.where(valid, ai - ji, 0)]
    weights: np.ndarray = (
        log_comb + (a - j[None, :]) * math.log1p(-q) + j[None, :] * math.log(q)
    )
    weights[~valid] = -np.inf
    weights.setflags(write=False)
    return weights


def _row_logsumexp(values: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp; terms more than e^-700 below a row's largest are raised to that
    floor (upward, so a bound stays a bound) to keep ``exp`` away from slow subnormals."""
    top = np.max(values, axis=1)
    finite = np.isfinite(top)
    safe = np.where(finite, top, 0.0)
    shifted = values - safe[:, None]
    np.maximum(shifted, -700.0, out=shifted)
    np.exp(shifted, out=shifted)
    result: np.ndarray = np.where(finite, safe + np.log(np.sum(shifted, axis=1)), top)
    return result


def _check_rdp_and_rate(base: np.ndarray, q: float) -> np.ndarray:
    values = np.asarray(base, dtype=np.float64)
    if values.shape != (len(ORDERS),):
        raise ConfigurationError(f"base RDP must hold one value per order 2..{MAX_ORDER}")
    if not 0 <= q <= 1:
        raise ConfigurationError(f"sampling rate must be in [0, 1], got {q!r}")
    return values


def _log_expm1(x: np.ndarray) -> np.ndarray:
    """``log(exp(x) - 1)`` for ``x >= 0``, accurate for tiny and huge ``x`` (-inf at 0)."""
    with np.errstate(divide="ignore"):
        result: np.ndarray = x + np.log(-np.expm1(-x))
    return result


def _binomial_log_moment(values: np.ndarray, q: float, extra: np.ndarray) -> np.ndarray:
    """``log sum_j C(a, j) (1-q)^(a-j) q^j exp((j-1) eps(j) + extra_j)`` per order ``a``,
    with ``eps(0) = eps(1) = extra_0 = extra_1 = 0``.

    The binomial weights sum to 1, so this is ``log1p(sum_(j>=2) w_j expm1(...))``: computed
    that way it keeps full relative accuracy when the moments are close to 1 (small eps).
    """
    exponents = np.zeros(MAX_ORDER + 1)
    exponents[2:] = (_ALPHAS - 1.0) * values + extra[2:]
    terms = _log_binomial_weights(q).copy()
    terms[:, :2] = -np.inf
    terms[:, 2:] += _log_expm1(exponents[2:])[None, :]
    result: np.ndarray = np.logaddexp(0.0, _row_logsumexp(terms))
    return result


def subsampled_rdp_add(base: np.ndarray, q: float) -> np.ndarray:
    """The add direction ``D_alpha((1-q) Q + q P || Q)`` bound (module docstring), per order.

    For the Gaussian mechanism this equals the exact RDP of the Poisson-subsampled Gaussian.
    """
    values = _check_rdp_and_rate(base, q)
    if q == 0:
        return np.zeros_like(values)
    if q == 1:
        return values.copy()
    result: np.ndarray = _binomial_log_moment(values, q, np.zeros(MAX_ORDER + 1)) / (
        _ALPHAS - 1.0
    )
    return result


def subsampled_rdp_remove(base: np.ndarray, q: float) -> np.ndarray:
    """The remove direction ``D_alpha(Q || (1-q) Q + q P)`` bound (module docstring), per
    order: ``log(1 + C(alpha, 2) (1-q)^-(alpha+1) q^2 (exp(eps(2)) - 1)) / (alpha - 1)``."""
    values = _check_rdp_and_rate(base, q)
    if q == 0:
        return np.zeros_like(values)
    if q == 1:
        return values.copy()
    eps2 = float(values[0])
    if eps2 == 0:
        return np.zeros_like(values)
    if math.isinf(eps2):
        return np.full_like(values, np.inf)
    log_expm1 = eps2 + math.log(-math.expm1(-eps2))
    log_pairs = np.log(_ALPHAS * (_ALPHAS - 1.0) / 2.0)
    log_moment = np.logaddexp(
        0.0, log_pairs + 2.0 * math.log(q) - (_ALPHAS + 1.0) * math.log1p(-q) + log_expm1
    )
    result: np.ndarray = log_moment / (_ALPHAS - 1.0)
    return result


def subsampled_rdp_zhu_wang(base: np.ndarray, q: float) -> np.ndarray:
    """Zhu & Wang (ICML 2019) Theorem 5, the general Poisson-subsampling RDP bound."""
    values = _check_rdp_and_rate(base, q)
    if q == 0:
        return np.zeros_like(values)
    if q == 1:
        return values.copy()
    extra = np.zeros(MAX_ORDER + 1)
    extra[3:] = math.log(3.0)
    result: np.ndarray = _binomial_log_moment(values, q, extra) / (_ALPHAS - 1.0)
    return result


def subsampled_rdp(base: np.ndarray, q: float) -> np.ndarray:
    """RDP (orders 2..256) of the Poisson-subsampled mechanism whose RDP is ``base``.

    ``min(max(add, remove), Zhu-Wang Theorem 5, base)`` (module docstring): valid for any
    mechanism with symmetric neighbouring pairs, in both directions.
    """
    values = _check_rdp_and_rate(base, q)
    if q == 0:
        return np.zeros_like(values)
    if q == 1:
        return values.copy()
    both = np.maximum(subsampled_rdp_add(values, q), subsampled_rdp_remove(values, q))
    result: np.ndarray = np.minimum(np.minimum(both, subsampled_rdp_zhu_wang(values, q)), values)
    return result


def rdp_epsilon(rdp: np.ndarray, delta: float) -> float:
    """The ``eps`` of ``(eps, delta)``-DP implied by total RDP ``rdp`` (orders 2..256).

    Uses ``dp_accounting``'s ``compute_epsilon`` (improved RDP conversion).
    """
    if not 0 < delta < 1:
        raise ConfigurationError(f"delta must be in (0, 1), got {delta!r}")
    rdp_module = _dp_accounting().rdp.rdp_privacy_accountant
    eps, _order = rdp_module.compute_epsilon(ORDERS, np.asarray(rdp, dtype=np.float64), delta)
    return float(eps)


def mechanism_rdp(
    mechanism: str, *, noise: float, clients: int, l2: float, l1: float, dim: int
) -> np.ndarray:
    """One round's RDP without subsampling; ``noise`` is the local sigma^2 or variance."""
    if mechanism == "dgauss":
        return ddgauss_rdp(l2=l2, l1=l1, local_sigma2=noise, clients=clients, dim=dim)
    if mechanism == "skellam":
        return skellam_rdp(l2=l2, l1=l1, local_variance=noise, clients=clients)
    raise ConfigurationError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")


def mechanism_epsilon(
    mechanism: str,
    *,
    noise: float,
    clients: int,
    l2: float,
    l1: float,
    dim: int,
    sampling_rate: float,
    rounds: int,
    delta: float,
) -> float:
    """``eps`` after ``rounds`` identical Poisson-sampled rounds of ``mechanism``."""
    base = mechanism_rdp(mechanism, noise=noise, clients=clients, l2=l2, l1=l1, dim=dim)
    return rdp_epsilon(rounds * subsampled_rdp(base, sampling_rate), delta)


def smallest_noise(
    epsilon_of: Callable[[float], float],
    target: float,
    *,
    start: float,
    floor: float,
    rel_tol: float = 1e-6,
) -> float:
    """The smallest ``x >= floor`` (within ``rel_tol``) with ``epsilon_of(x) <= target``.

    ``epsilon_of`` must be non-increasing and ``floor > 0``. Log-space bisection bracketed from
    ``start``: the result always meets the target and ``x / (1 + rel_tol)`` does not (unless
    the result is ``floor``). Raises :class:`ConfigurationError` when no noise up to 1e30
    reaches the target.
    """
    if not floor > 0 or not start > 0 or not rel_tol > 0:
        raise ConfigurationError("smallest_noise needs floor, start and rel_tol > 0")
    good = max(start, floor)
    bad: float | None = None
    while epsilon_of(good) > target:
        bad = good
        good *= 4.0
        if good > 1e30:
            raise ConfigurationError(f"no noise level reaches epsilon = {target}")
    while bad is None:
        if good <= floor:
            return floor
        probe = max(good / 4.0, floor)
        if epsilon_of(probe) > target:
            bad = probe
        else:
            good = probe
    while good / bad - 1.0 > rel_tol:
        mid = math.sqrt(good * bad)
        if epsilon_of(mid) <= target:
            good = mid
        else:
            bad = mid
    return good


def central_gaussian_epsilon(
    noise_multiplier: float, delta: float, sampling_rate: float, rounds: int
) -> float:
    """``eps`` of central DP-FedAvg (Poisson-sampled Gaussian) from ``dp_accounting``."""
    dpa = _dp_accounting()
    accountant = dpa.rdp.RdpAccountant()
    event = dpa.SelfComposedDpEvent(
        dpa.PoissonSampledDpEvent(sampling_rate, dpa.GaussianDpEvent(noise_multiplier)), rounds
    )
    with _quiet_absl():
        return float(accountant.compose(event).get_epsilon(delta))


def central_gaussian_noise_multiplier(
    epsilon: float, delta: float, sampling_rate: float, rounds: int
) -> float:
    """The central Gaussian noise multiplier ``dp_accounting`` calibrates for the schedule.

    ``dp_accounting.calibrate_dp_mechanism`` with its ``RdpAccountant`` (default orders,
    fractional ones included), bracketed around the integer-order value this module computes
    exactly (which saves most of the slow fractional-order evaluations).
    """
    dpa = _dp_accounting()

    def event(z: float) -> Any:
        return dpa.SelfComposedDpEvent(
            dpa.PoissonSampledDpEvent(sampling_rate, dpa.GaussianDpEvent(z)), rounds
        )

    def integer_orders(z: float) -> float:
        return rdp_epsilon(rounds * subsampled_rdp_add(gaussian_rdp(z), sampling_rate), delta)

    guess = smallest_noise(integer_orders, epsilon, start=1.0, floor=1e-3, rel_tol=1e-4)
    with _quiet_absl():
        return _calibrate(dpa, event, epsilon, delta, guess)


def _calibrate(dpa: Any, event: Callable[[float], Any], epsilon: float, delta: float,
               guess: float) -> float:
    try:
        value = dpa.calibrate_dp_mechanism(
            dpa.rdp.RdpAccountant, event, epsilon, delta,
            dpa.ExplicitBracketInterval(0.9 * guess, 1.05 * guess), tol=1e-5 * guess,
        )
    except ValueError:  # the bracket missed: let dp_accounting search from scratch
        value = dpa.calibrate_dp_mechanism(
            dpa.rdp.RdpAccountant, event, epsilon, delta, dpa.LowerEndpointAndGuess(1e-3, guess),
            tol=1e-5 * guess,
        )
    return float(value)
