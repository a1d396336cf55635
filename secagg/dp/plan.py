"""The frozen, JSON-ready result of planning a run: :class:`DPPlan`.

A plan is everything a client needs to encode and the server needs to decode and account:
the ring width, the rotation, the clip and scale, the conditional-rounding bound, the
per-client noise parameter (an exact dyadic rational) and the privacy figures it achieves.
It holds no secret. ``DPPlan.from_dict(plan.to_dict())`` round-trips (JSON-safe values only),
so a server can ship its plan to clients.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from secagg.dp.rotation import ROTATIONS, padded_length
from secagg.errors import ConfigurationError
from secagg.ring import check_bits

__all__ = ["NOISE_MECHANISMS", "PLAN_MECHANISMS", "DPPlan"]

NOISE_MECHANISMS = ("skellam", "dgauss")
PLAN_MECHANISMS = (*NOISE_MECHANISMS, "none")


@dataclass(frozen=True)
class DPPlan:
    """An encoding plan (``mechanism="none"``: compression only, no privacy figures).

    Units: ``scale`` maps a clipped update to the integer grid (grid step ``1 / scale``);
    ``l2_sensitivity``, ``l1_sensitivity`` and ``rounding_bound`` are in grid units;
    ``local_noise`` is the per-client noise parameter in grid units (``sigma^2`` of
    N_Z(0, sigma^2) for ``dgauss``, the variance for ``skellam``), stored exactly as
    ``local_noise_numerator / local_noise_denominator``. ``noise_multiplier`` is the standard
    deviation of the summed noise of ``noise_clients`` clients over the L2 clip (comparable to
    central DP-FedAvg's ``z``); ``epsilon`` is what the plan achieves when ``noise_clients``
    clients' noise is in every round's sum. ``wrap_probability`` bounds, per coordinate, the
    chance that the sum of ``clients`` encodings leaves the signed range of ``bits`` bits.
    """

    mechanism: str
    bits: int
    dim: int
    padded_dim: int
    rotation: str
    clip: float
    scale: float
    clients: int
    wrap_probability: float
    wrap_probability_bound: float
    bytes_per_client: int
    bytes_per_client_32bit: int
    noise_clients: int = 0
    beta: float = 0.0
    rounding_bound: float | None = None
    l2_sensitivity: float | None = None
    l1_sensitivity: float | None = None
    local_noise_numerator: int = 0
    local_noise_denominator: int = 1
    noise_multiplier: float | None = None
    central_gaussian_noise_multiplier: float | None = None
    epsilon: float | None = None
    target_epsilon: float | None = None
    delta: float | None = None
    rounds: int | None = None
    sampling_rate: float | None = None

    def __post_init__(self) -> None:
        if self.mechanism not in PLAN_MECHANISMS:
            raise ConfigurationError(f"mechanism must be one of {PLAN_MECHANISMS}")
        check_bits(self.bits)
        if self.rotation not in ROTATIONS:
            raise ConfigurationError(f"rotation must be one of {ROTATIONS}")
        if self.padded_dim != padded_length(self.dim, self.rotation):
            raise ConfigurationError("padded_dim must be padded_length(dim, rotation)")
        if not (math.isfinite(self.scale) and self.scale > 0 and self.clip > 0):
            raise ConfigurationError("scale and clip must be finite and > 0")
        if self.clients < 1:
            raise ConfigurationError("clients must be >= 1")
        if self.mechanism == "none":
            return
        if self.noise_clients < 1 or self.local_noise_numerator <= 0:
            raise ConfigurationError("a noisy plan needs noise_clients >= 1 and noise > 0")
        if self.local_noise_denominator < 1:
            raise ConfigurationError("local_noise_denominator must be >= 1")
        if self.rounding_bound is None or self.delta is None or self.sampling_rate is None:
            raise ConfigurationError("a noisy plan needs its rounding bound and privacy figures")

    @property
    def private(self) -> bool:
        """Whether clients add noise (``False`` for a compression-only plan)."""
        return self.mechanism != "none"

    @property
    def local_noise(self) -> Fraction:
        """The per-client noise parameter as an exact Fraction (0 without noise)."""
        return Fraction(self.local_noise_numerator, self.local_noise_denominator)

    def sum_error_variance(self, included: int) -> float:
        """Per-coordinate variance of the decoded sum's error when ``included`` clients are
        summed: noise ``included * local_noise`` plus rounding ``<= included / 4``, over
        ``scale^2`` (the rotation is orthogonal, so it averages the same over coordinates)."""
        return included * (float(self.local_noise) + 0.25) / self.scale**2

    def mean_error_rms(self, included: int) -> float:
        """Root expected squared L2 error of the decoded mean of ``included`` clients' updates
        (clipping bias and wraps aside): ``sqrt(padded_dim * sum_error_variance) / included``."""
        return math.sqrt(self.padded_dim * self.sum_error_variance(included)) / included

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (ints, floats, strings and None only)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DPPlan:
        """The plan ``to_dict`` produced; :class:`ConfigurationError` on unknown or bad fields."""
        if not isinstance(data, dict):
            raise ConfigurationError("a plan must be a dict")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigurationError(f"unknown plan fields: {sorted(unknown)[:5]}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigurationError(f"bad plan: {exc}") from exc
