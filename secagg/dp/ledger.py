"""Per-round privacy bookkeeping: what each round actually spent, given who was in the sum.

The plan promises its ``epsilon`` when ``noise_clients`` clients' noise is in every round's
sum. Dropouts change that: a round that sums ``k`` encodings carries ``k`` noise shares, so
fewer clients mean less noise and more epsilon (a floor, ``min_clients``, makes each client add
enough noise for the worst case). :class:`PrivacyLedger` recomputes each round's RDP for the
actual ``k`` (same sensitivities, sampling rate and accountant as the plan), composes the rounds
recorded so far and reports the spent ``epsilon`` after every round, in a
:class:`RoundPrivacy` that every round report can carry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from secagg.dp import accounting
from secagg.dp.plan import DPPlan
from secagg.errors import ConfigurationError

__all__ = ["PrivacyLedger", "RoundPrivacy"]


@dataclass(frozen=True)
class RoundPrivacy:
    """The privacy figures of one released round (JSON-ready via :meth:`to_dict`).

    ``epsilon_spent`` composes every round recorded so far, this one included;
    ``epsilon_round`` is this round alone. ``noise_multiplier`` is the actual summed noise's
    standard deviation over the clip. ``below_floor``: fewer noise shares than the plan
    counts on; ``over_budget``: ``epsilon_spent`` exceeds the target.
    """

    round_index: int
    included: int
    noise_multiplier: float
    epsilon_round: float
    epsilon_spent: float
    delta: float
    target_epsilon: float
    rounds_planned: int
    below_floor: bool
    over_budget: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (ints, floats, bools)."""
        return asdict(self)


class PrivacyLedger:
    """Tracks epsilon spent over the rounds of one private plan.

    Not thread-safe. Raises :class:`ConfigurationError` for a compression-only plan.
    """

    __slots__ = ("_history", "_plan", "_rdp", "_round_rdp")

    def __init__(self, plan: DPPlan) -> None:
        if not plan.private:
            raise ConfigurationError("a PrivacyLedger needs a plan with noise")
        self._plan = plan
        self._rdp = np.zeros(len(accounting.ORDERS))
        self._round_rdp: dict[int, np.ndarray] = {}
        self._history: list[RoundPrivacy] = []

    @property
    def plan(self) -> DPPlan:
        return self._plan

    @property
    def rounds_recorded(self) -> int:
        return len(self._history)

    @property
    def history(self) -> tuple[RoundPrivacy, ...]:
        return tuple(self._history)

    @property
    def epsilon_spent(self) -> float:
        """Epsilon of all rounds recorded so far (0 before the first)."""
        if not self._history:
            return 0.0
        return self._history[-1].epsilon_spent

    def round_rdp(self, included: int) -> np.ndarray:
        """One round's Poisson-subsampled RDP (orders 2..256) with ``included`` noise shares."""
        if isinstance(included, bool) or not isinstance(included, int) or included < 1:
            raise ConfigurationError(f"included must be an int >= 1, got {included!r}")
        cached = self._round_rdp.get(included)
        if cached is None:
            p = self._plan
            assert p.l2_sensitivity is not None and p.l1_sensitivity is not None
            assert p.sampling_rate is not None
            base = accounting.mechanism_rdp(
                p.mechanism, noise=float(p.local_noise), clients=included,
                l2=p.l2_sensitivity, l1=p.l1_sensitivity, dim=p.padded_dim,
            )
            cached = accounting.subsampled_rdp(base, p.sampling_rate)
            cached.setflags(write=False)
            self._round_rdp[included] = cached
        return cached

    def preview(self, included: int) -> float:
        """The epsilon spent if a round with ``included`` clients were recorded now."""
        assert self._plan.delta is not None
        return accounting.rdp_epsilon(self._rdp + self.round_rdp(included), self._plan.delta)

    def record(self, included: int) -> RoundPrivacy:
        """Record a released round whose sum held ``included`` clients' encodings."""
        p = self._plan
        assert p.delta is not None and p.target_epsilon is not None and p.rounds is not None
        step = self.round_rdp(included)
        self._rdp = self._rdp + step
        spent = accounting.rdp_epsilon(self._rdp, p.delta)
        report = RoundPrivacy(
            round_index=len(self._history),
            included=included,
            noise_multiplier=math.sqrt(included * p.local_noise) / (p.scale * p.clip),
            epsilon_round=accounting.rdp_epsilon(step, p.delta),
            epsilon_spent=spent,
            delta=p.delta,
            target_epsilon=p.target_epsilon,
            rounds_planned=p.rounds,
            below_floor=included < p.noise_clients,
            over_budget=spent > p.target_epsilon,
        )
        self._history.append(report)
        return report

    def __repr__(self) -> str:
        return (
            f"PrivacyLedger({self._plan.mechanism}, rounds={self.rounds_recorded}, "
            f"epsilon_spent={self.epsilon_spent:.4g})"
        )
