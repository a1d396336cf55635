"""Choose the scale and the per-client noise of a plan: the largest scale whose sum still fits.

Theory of operation. For a candidate scale ``s`` the sensitivities are fixed
(:func:`secagg.dp.quantization.rounded_l2_bound`), so the accountant gives the smallest
per-client noise ``v(s)`` that meets the target ``epsilon`` with ``noise_clients`` shares
(bisection; :func:`secagg.dp.accounting.smallest_noise`), rounded *up* to a dyadic rational
(more noise is never less private; the reported epsilon is recomputed for the rounded value).

One coordinate of the sum of ``n`` encodings is ``S = signal + rounding + noise``:

* signal: the same rotation for all clients, so it is the rotation of the sum of the clipped
  updates (norm at most ``n c``): sub-Gaussian with proxy ``rho s^2 c^2 n^2 / d``
  (``rho`` from :data:`secagg.dp.rotation.FLATNESS`);
* rounding: independent, mean zero, each in an interval of length 1: proxy ``n / 4``
  (conditional rounding is treated like plain rounding here; its conditioning event is
  almost sure in practice);
* noise: N_Z(0, sigma^2) is sigma^2-sub-Gaussian (Canonne, Kamath & Steinke 2020), proxy
  ``n sigma^2``; Skellam(v) has log-MGF ``v (cosh(l) - 1)`` exactly.

Chernoff: ``P(|S| >= 2^(b-1)) <= 2 min_l exp(-l h + l^2 A / 2 + B (cosh(l) - 1))`` with
``h = 2^(b-1)``, ``A`` the sub-Gaussian proxies and ``B`` the Skellam variance. That is the
plan's ``wrap_probability``. It increases with ``s`` (both ``v(s)`` and the signal grow), so
the largest admissible scale is found by bisection. With ``k_stddevs`` the scale follows
TFF's rule instead (``k`` standard deviations of the sum fit in ``2^b``) and the Chernoff
bound must still meet ``wrap_probability``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from secagg.dp import accounting
from secagg.dp.plan import DPPlan
from secagg.dp.quantization import rounded_l1_bound, rounded_l2_bound
from secagg.dp.rotation import FLATNESS, padded_length
from secagg.errors import ConfigurationError
from secagg.ring import packed_size

__all__ = ["MAX_LOCAL_STD", "PlanRequest", "build_plan", "wrap_bound"]

MAX_LOCAL_STD = 100_000.0
"""Largest per-client noise standard deviation (grid units) we plan for: the exact sampler's
table then spans about 1.7 million values (below its 2^21 limit)."""

_SCALE_REL_TOL = 3e-4
_NOISE_REL_TOL = 1e-7
_SEARCH_REL_TOL = 1e-3


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is solved from (validated by :mod:`secagg.dp.config` beforehand)."""

    mechanism: str
    bits: int
    clip: float
    rotation: str
    wrap_probability: float
    k_stddevs: float | None
    beta: float
    epsilon: float = math.inf
    delta: float = 0.0
    rounds: int = 0
    sampling_rate: float = 0.0


def wrap_bound(
    *, bits: int, subgaussian: float, skellam_variance: float = 0.0
) -> float:
    """``2 min_l exp(-l h + l^2 A/2 + B (cosh l - 1))`` with ``h = 2^(bits-1)`` (module doc)."""
    h = float(2 ** (bits - 1))
    a, b = subgaussian, skellam_variance

    if not (a > 0 or b > 0):
        raise ConfigurationError("wrap_bound needs some variance")

    def slope(lam: float) -> float:
        return -h + lam * a + (b * math.sinh(lam) if b > 0 else 0.0)

    # The minimizer solves slope = 0; it lies below h / a and below asinh(h / b).
    hi = min(h / a if a > 0 else math.inf, math.asinh(h / b) if b > 0 else math.inf)
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if slope(mid) < 0:
            lo = mid
        else:
            hi = mid
    lam = 0.5 * (lo + hi)
    exponent = -lam * h + 0.5 * lam * lam * a + (b * (math.cosh(lam) - 1.0) if b > 0 else 0.0)
    return min(1.0, 2.0 * math.exp(exponent))


def _quantize_up(value: float) -> Fraction:
    """``value`` rounded up to a multiple of 2^-8 (2^-16 below 256): exact, CKS-friendly."""
    denominator = 256 if value >= 256 else 65536
    return Fraction(math.ceil(value * denominator), denominator)


@functools.lru_cache(maxsize=32)
def _central(epsilon: float, delta: float, rate: float, rounds: int) -> float:
    return accounting.central_gaussian_noise_multiplier(epsilon, delta, rate, rounds)


class _Solver:
    """The per-scale noise and wrap computations for one configuration and size."""

    def __init__(self, settings: PlanRequest, dim: int, clients: int, noise_clients: int):
        self.s = settings
        self.padded = padded_length(dim, settings.rotation)
        self.clients = clients
        self.noise_clients = noise_clients
        self.rho = FLATNESS[settings.rotation]
        self.private = settings.mechanism != "none"
        self._last_noise = 1.0

    def sensitivities(self, scale: float) -> tuple[float, float]:
        l2 = rounded_l2_bound(scale * self.s.clip, self.s.beta, self.padded)
        return l2, rounded_l1_bound(l2, self.padded)

    def epsilon(self, noise: float, l2: float, l1: float, noise_clients: int) -> float:
        s = self.s
        if s.mechanism == "dgauss" and noise < 0.25:
            return math.inf
        return accounting.mechanism_epsilon(
            s.mechanism, noise=noise, clients=noise_clients, l2=l2, l1=l1, dim=self.padded,
            sampling_rate=s.sampling_rate, rounds=s.rounds, delta=s.delta,
        )

    def noise(self, scale: float, rel_tol: float = _SEARCH_REL_TOL) -> Fraction:
        """The per-client noise for ``scale`` (rounded up; a looser ``rel_tol`` only ever
        gives more noise, so a scale admissible with it stays admissible with a tight one)."""
        if not self.private:
            return Fraction(0)
        l2, l1 = self.sensitivities(scale)
        found = accounting.smallest_noise(
            lambda v: self.epsilon(v, l2, l1, self.noise_clients),
            self.s.epsilon,
            start=self._last_noise,
            floor=0.25 if self.s.mechanism == "dgauss" else 1e-12,
            rel_tol=rel_tol,
        )
        self._last_noise = found
        return _quantize_up(found)

    def wrap(self, scale: float, noise: Fraction) -> float:
        n = self.clients
        signal = self.rho * (scale * self.s.clip) ** 2 * n * n / self.padded
        proxy = signal + n / 4.0
        skellam = 0.0
        if self.s.mechanism == "dgauss":
            proxy += n * float(noise)
        elif self.s.mechanism == "skellam":
            skellam = n * float(noise)
        return wrap_bound(bits=self.s.bits, subgaussian=proxy, skellam_variance=skellam)

    def fits_k_stddevs(self, scale: float, noise: Fraction, k: float) -> bool:
        n = self.clients
        variance = (
            self.rho * (scale * self.s.clip) ** 2 * n * n / self.padded
            + n / 4.0
            + n * float(noise)
        )
        return k * math.sqrt(variance) <= float(1 << (self.s.bits - 1))


def _largest_scale(solver: _Solver, admissible: object) -> float:
    ok = admissible  # callable(scale) -> bool, non-increasing in scale
    clip = solver.s.clip
    lo = 1e-3 / clip
    if not ok(lo):  # type: ignore[operator]
        raise ConfigurationError(
            f"bits={solver.s.bits} is too few for {solver.clients} clients at "
            f"wrap_probability={solver.s.wrap_probability}: even the coarsest grid wraps "
            f"(rounding and noise alone exceed 2^{solver.s.bits - 1})"
        )
    hi = 2.0 ** solver.s.bits / clip
    while ok(hi):  # type: ignore[operator]
        lo, hi = hi, hi * 4.0
    while hi / lo - 1.0 > _SCALE_REL_TOL:
        mid = math.sqrt(lo * hi)
        if ok(mid):  # type: ignore[operator]
            lo = mid
        else:
            hi = mid
    return lo


def build_plan(
    settings: PlanRequest, dim: int, clients: int, noise_clients: int | None
) -> DPPlan:
    """Plan ``dim``-value updates summed over ``clients`` clients (module docstring).

    ``noise_clients`` (``<= clients``) is how many noise shares the privacy claim counts on
    (``None``: all ``clients``). Raises :class:`ConfigurationError` when no scale fits the
    bits, when ``k_stddevs`` gives a wrap probability above the bound, or when the noise
    exceeds the exact sampler's range.
    """
    s = settings
    noise_count = clients if noise_clients is None else noise_clients
    solver = _Solver(s, dim, clients, noise_count)
    k = s.k_stddevs
    if k is None:
        scale = _largest_scale(
            solver, lambda x: solver.wrap(x, solver.noise(x)) <= s.wrap_probability
        )
    else:
        scale = _largest_scale(solver, lambda x: solver.fits_k_stddevs(x, solver.noise(x), k))
    noise = solver.noise(scale, _NOISE_REL_TOL)
    wrap = solver.wrap(scale, noise)
    if wrap > s.wrap_probability:
        raise ConfigurationError(
            f"wrap probability {wrap:.3g} per coordinate at k_stddevs={k} exceeds "
            f"wrap_probability={s.wrap_probability}: raise k_stddevs or bits"
        )
    padded = solver.padded
    common = dict(
        bits=s.bits, dim=dim, padded_dim=padded, rotation=s.rotation, clip=s.clip,
        scale=scale, clients=clients, wrap_probability=wrap,
        wrap_probability_bound=s.wrap_probability,
        bytes_per_client=packed_size(padded, s.bits),
        bytes_per_client_32bit=packed_size(dim, 32),
    )
    if not solver.private:
        return DPPlan(mechanism="none", **common)  # type: ignore[arg-type]
    if math.sqrt(noise) > MAX_LOCAL_STD:
        raise ConfigurationError(
            f"per-client noise std {math.sqrt(noise):.4g} exceeds the exact sampler's range "
            f"({MAX_LOCAL_STD:g} grid units): use fewer bits or more noise_clients"
        )
    l2, l1 = solver.sensitivities(scale)
    achieved = solver.epsilon(float(noise), l2, l1, noise_count)
    return DPPlan(
        mechanism=s.mechanism,
        noise_clients=noise_count,
        beta=s.beta,
        rounding_bound=l2,
        l2_sensitivity=l2,
        l1_sensitivity=l1,
        local_noise_numerator=noise.numerator,
        local_noise_denominator=noise.denominator,
        noise_multiplier=math.sqrt(noise_count * noise) / (scale * s.clip),
        central_gaussian_noise_multiplier=_central(
            s.epsilon, s.delta, s.sampling_rate, s.rounds
        ),
        epsilon=achieved,
        target_epsilon=s.epsilon,
        delta=s.delta,
        rounds=s.rounds,
        sampling_rate=s.sampling_rate,
        **common,  # type: ignore[arg-type]
    )
