"""User-facing configuration: :class:`DistributedDP` (noise + compression) and
:class:`Compression` (compression only), validated on construction.

Every bad value raises :class:`secagg.errors.ConfigurationError` naming the value and the
rule it breaks. ``plan(dim, clients)`` solves for the scale and the per-client noise
(:mod:`secagg.dp.planning`) and returns a frozen, JSON-ready :class:`secagg.dp.plan.DPPlan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from secagg.dp.plan import NOISE_MECHANISMS, DPPlan
from secagg.dp.planning import PlanRequest, build_plan
from secagg.dp.rotation import ROTATIONS
from secagg.errors import ConfigurationError

__all__ = ["MAX_DP_BITS", "Compression", "DistributedDP"]

MAX_DP_BITS = 32
"""Widest ring for encodings (values are stored as uint32)."""
DEFAULT_BETA = math.exp(-0.5)
"""Conditional rounding's beta (KLS21 recommend e^-0.5; 0 disables conditioning)."""


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigurationError(f"{name} must be finite, got {value!r}")
    return float(value)


def _count(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_bits_for_clients(bits: int, clients: int) -> None:
    if bits < math.log2(clients):
        raise ConfigurationError(
            f"bits={bits} is too few for {clients} clients: the rule is "
            f"bits >= log2(clients) = {math.log2(clients):.2f} (each client adds rounding error)"
        )


def _check_common(
    bits: object, clip: object, rotation: object, wrap_probability: object, k: object
) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= MAX_DP_BITS:
        raise ConfigurationError(f"bits must be an int in [2, {MAX_DP_BITS}], got {bits!r}")
    if _number("clip", clip) <= 0:
        raise ConfigurationError(f"clip must be > 0, got {clip!r}")
    if rotation not in ROTATIONS:
        raise ConfigurationError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
    if not 0 < _number("wrap_probability", wrap_probability) < 1:
        raise ConfigurationError(f"wrap_probability must be in (0, 1), got {wrap_probability!r}")
    if k is not None and _number("k_stddevs", k) <= 0:
        raise ConfigurationError(f"k_stddevs must be > 0, got {k!r}")


def _plan_clients(expected: int | None, clients: int | None) -> int:
    chosen = clients if clients is not None else expected
    if chosen is None:
        raise ConfigurationError("give clients= to plan() or expected_clients= to the config")
    return _count("clients", chosen)


@dataclass(frozen=True)
class DistributedDP:
    """Distributed DP for secure aggregation: each client adds a share of discrete noise.

    ``epsilon``/``delta``: the target for the whole run of ``rounds`` rounds in which each
    client takes part with probability ``sampling_rate`` (user-level, add/remove one client).
    ``bits``: ring width of an encoding (the modular sum's width). ``mechanism``:
    ``"skellam"`` (Agarwal et al. 2021) or ``"dgauss"`` (distributed discrete Gaussian,
    Kairouz et al. 2021). ``clip``: L2 clip of an update. ``expected_clients``: clients whose
    encodings are summed in a round. ``min_clients``: a floor, ``<= expected_clients``: noise
    is split over this many clients, so the target holds whenever at least that many are in
    the sum (``None``: split over ``expected_clients``). ``rotation``: ``"hadamard"`` or
    ``"dft"``. ``wrap_probability``: the bound on the per-coordinate probability that the sum
    leaves the ``bits``-bit range (TFF's ``modclip_prob``). ``k_stddevs``: set the scale by
    TFF's k-standard-deviations rule instead (the wrap bound must still hold). ``beta``:
    conditional rounding parameter in [0, 1).
    """

    epsilon: float
    delta: float
    rounds: int
    sampling_rate: float
    bits: int
    clip: float
    mechanism: str = "skellam"
    expected_clients: int | None = None
    min_clients: int | None = None
    rotation: str = "hadamard"
    wrap_probability: float = 1e-4
    k_stddevs: float | None = None
    beta: float = DEFAULT_BETA

    def __post_init__(self) -> None:
        if _number("epsilon", self.epsilon) <= 0:
            raise ConfigurationError(f"epsilon must be > 0, got {self.epsilon!r}")
        if not 0 < _number("delta", self.delta) < 1:
            raise ConfigurationError(f"delta must be in (0, 1), got {self.delta!r}")
        _count("rounds", self.rounds)
        if not 0 < _number("sampling_rate", self.sampling_rate) <= 1:
            raise ConfigurationError(
                f"sampling_rate must be in (0, 1], got {self.sampling_rate!r}"
            )
        _check_common(self.bits, self.clip, self.rotation, self.wrap_probability, self.k_stddevs)
        if self.mechanism not in NOISE_MECHANISMS:
            raise ConfigurationError(
                f"mechanism must be one of {NOISE_MECHANISMS}, got {self.mechanism!r}"
            )
        if not 0 <= _number("beta", self.beta) < 1:
            raise ConfigurationError(f"beta must be in [0, 1), got {self.beta!r}")
        if self.expected_clients is not None:
            _count("expected_clients", self.expected_clients)
            _check_bits_for_clients(self.bits, self.expected_clients)
        if self.min_clients is not None:
            _count("min_clients", self.min_clients)
            if self.expected_clients is not None and self.min_clients > self.expected_clients:
                raise ConfigurationError(
                    f"min_clients={self.min_clients} must be <= "
                    f"expected_clients={self.expected_clients}"
                )

    def plan(self, dim: int, clients: int | None = None) -> DPPlan:
        """Solve for the scale and per-client noise for ``dim``-value updates.

        ``clients`` (default ``expected_clients``) is how many encodings a round sums.
        Raises :class:`ConfigurationError` when the bits cannot hold that many clients, when
        the wrap probability would exceed its bound, or when the floor exceeds ``clients``.
        Takes about a second (bisection over the accountant); cache the result.
        """
        count = _plan_clients(self.expected_clients, clients)
        _check_bits_for_clients(self.bits, count)
        floor = self.min_clients
        if floor is not None and floor > count:
            raise ConfigurationError(f"min_clients={floor} must be <= clients={count}")
        request = PlanRequest(
            mechanism=self.mechanism, bits=self.bits, clip=float(self.clip),
            rotation=self.rotation, wrap_probability=float(self.wrap_probability),
            k_stddevs=None if self.k_stddevs is None else float(self.k_stddevs),
            beta=float(self.beta), epsilon=float(self.epsilon), delta=float(self.delta),
            rounds=self.rounds, sampling_rate=float(self.sampling_rate),
        )
        return build_plan(request, dim, count, floor)


@dataclass(frozen=True)
class Compression:
    """The same rotation, randomized rounding and modular clipping, without noise.

    Rounding is unconditional (no sensitivity to bound). Fields as in :class:`DistributedDP`.
    """

    bits: int
    clip: float
    expected_clients: int | None = None
    rotation: str = "hadamard"
    wrap_probability: float = 1e-4
    k_stddevs: float | None = None

    def __post_init__(self) -> None:
        _check_common(self.bits, self.clip, self.rotation, self.wrap_probability, self.k_stddevs)
        if self.expected_clients is not None:
            _count("expected_clients", self.expected_clients)
            _check_bits_for_clients(self.bits, self.expected_clients)

    def plan(self, dim: int, clients: int | None = None) -> DPPlan:
        """The compression-only plan (``mechanism="none"``) for ``dim``-value updates."""
        count = _plan_clients(self.expected_clients, clients)
        _check_bits_for_clients(self.bits, count)
        request = PlanRequest(
            mechanism="none", bits=self.bits, clip=float(self.clip), rotation=self.rotation,
            wrap_probability=float(self.wrap_probability),
            k_stddevs=None if self.k_stddevs is None else float(self.k_stddevs), beta=0.0,
        )
        return build_plan(request, dim, count, None)
