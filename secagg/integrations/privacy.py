"""What the PyTorch and Flower adapters share for distributed DP: rules, the run, reports.

Theory of operation. A :class:`PrivacyRun` is the server's side of one training run under a
:class:`~secagg.dp.DistributedDP` (or :class:`~secagg.dp.Compression`) config: the plan
(made once, for the update length and the expected number of clients), the
:class:`~secagg.dp.PrivacyLedger`, a fresh public rotation seed per round from the CSPRNG
(``os.urandom``), and the release of a round: decode the modular sum of the included
clients' encodings, record the round with the number of clients actually in the sum (fewer
clients carry less noise and spend more epsilon) and report it (:class:`PrivacyReport`).

Rules both adapters enforce (:class:`~secagg.errors.ConfigurationError` naming the rule):

* **masking protocols only** (:data:`MASKING_PROTOCOLS`): the secure sum must be the modular
  sum of the clients' Z_(2^bits) encodings. Threshold-HE protocols (threshold Paillier,
  CKKS, threshold CKKS) sum fixed-point plaintexts at their own modulus, and a plain
  baseline would show each client's lightly noised encoding to the server;
* **uniform weights**: the L2 clip bounds one client's whole contribution to the sum (the
  sensitivity the accountant counts); a weight would multiply it past the clip, and example
  counts are not covered by the noise;
* **one plan per run**: a round holds at most the planned number of clients (the wrap bound
  and the bits are sized for it), updates keep the planned length.

A client that receives a plan from a server checks it with :func:`check_plan_bounds` (the
sensitivities recomputed from the scale and clip) and, to bound it, :func:`verify_plan` (the
epsilon recomputed from the noise), so a server cannot understate what the plan spends.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from secagg.dp import (
    Compression,
    DistributedDP,
    DPPlan,
    PrivacyLedger,
    RoundPrivacy,
    accounting,
    decode,
    prepare,
)
from secagg.dp.planning import MAX_LOCAL_STD
from secagg.dp.quantization import rounded_l1_bound, rounded_l2_bound
from secagg.errors import ConfigurationError

__all__ = [
    "MASKING_PROTOCOLS",
    "ROUND_SEED_BYTES",
    "Privacy",
    "PrivacyBudgetWarning",
    "PrivacyReport",
    "PrivacyRun",
    "check_left_unset",
    "check_masking_protocol",
    "check_plan_bounds",
    "check_plan_matches",
    "check_privacy",
    "verify_plan",
]

log = logging.getLogger(__name__)

Privacy: TypeAlias = DistributedDP | Compression
"""A privacy setting: distributed DP (noise + compression) or compression alone."""

MASKING_PROTOCOLS = ("bonawitz", "secagg+")
"""The protocols whose sum is the modular sum of the clients' Z_(2^bits) vectors."""

ROUND_SEED_BYTES = 32
"""Length of a round's public rotation seed."""


class PrivacyBudgetWarning(UserWarning):
    """A released round spent more than planned: the run's epsilon exceeds its target, or
    fewer clients than the noise floor were in the sum."""


def check_masking_protocol(protocol: object) -> str:
    """``protocol`` if it is a masking protocol name; else ConfigurationError naming the rule."""
    if isinstance(protocol, str) and protocol in MASKING_PROTOCOLS:
        return protocol
    shown = protocol if isinstance(protocol, str) else type(protocol).__name__
    raise ConfigurationError(
        f"privacy needs a masking protocol {MASKING_PROTOCOLS}, got {shown!r}: the rule is "
        "that the secure sum is the modular sum of the clients' Z_(2^bits) encodings "
        "(threshold-HE protocols sum fixed-point plaintexts at their own modulus, and the "
        "plain baseline shows each client's encoding to the server)")


def check_left_unset(**fixed: object) -> None:
    """ConfigurationError naming every argument of ``fixed`` that is set (not None): with
    privacy, the clip and the bits come from the privacy config, never from the caller."""
    given = sorted(name for name, value in fixed.items() if value is not None)
    if given:
        raise ConfigurationError(f"with privacy, {given} come from the privacy config "
                                 "(its clip and bits): leave them unset")


def check_privacy(privacy: object) -> Privacy:
    """``privacy`` if it is a :class:`DistributedDP` or :class:`Compression`."""
    if not isinstance(privacy, DistributedDP | Compression):
        raise ConfigurationError(f"privacy must be a DistributedDP or a Compression, got a "
                                 f"{type(privacy).__name__}")
    return privacy


def check_plan_matches(plan: object, privacy: Privacy) -> DPPlan:
    """``plan`` if it is a :class:`DPPlan` made from ``privacy`` (same mechanism, bits,
    clip, rotation and target epsilon); else ConfigurationError."""
    if not isinstance(plan, DPPlan):
        raise ConfigurationError(f"plan must be a DPPlan, got a {type(plan).__name__}")
    mechanism = privacy.mechanism if isinstance(privacy, DistributedDP) else "none"
    epsilon = privacy.epsilon if isinstance(privacy, DistributedDP) else None
    mismatched = [name for name, ours, theirs in (
        ("mechanism", mechanism, plan.mechanism), ("bits", privacy.bits, plan.bits),
        ("clip", float(privacy.clip), plan.clip), ("rotation", privacy.rotation, plan.rotation),
        ("epsilon", epsilon, plan.target_epsilon)) if ours != theirs]
    if mismatched:
        raise ConfigurationError(f"the plan does not match the privacy config: {mismatched}")
    return plan


def check_plan_bounds(plan: DPPlan) -> None:
    """For a client given a plan by a server: the plan's sensitivities are at least those
    recomputed from its scale, clip and rounding parameter, its rounding bound at most its L2
    sensitivity, its noise within the exact sampler's range. Needs no accountant.

    Raises ConfigurationError naming what fails.
    """
    if not plan.private:
        return
    assert plan.l2_sensitivity is not None and plan.l1_sensitivity is not None
    assert plan.rounding_bound is not None
    l2 = rounded_l2_bound(plan.scale * plan.clip, plan.beta, plan.padded_dim)
    l1 = rounded_l1_bound(l2, plan.padded_dim)
    if plan.l2_sensitivity < l2 * (1 - 1e-12) or plan.l1_sensitivity < l1 * (1 - 1e-12):
        raise ConfigurationError("the plan understates its sensitivity")
    if plan.rounding_bound > plan.l2_sensitivity:
        raise ConfigurationError("the plan's rounding bound exceeds its L2 sensitivity")
    if math.sqrt(float(plan.local_noise)) > MAX_LOCAL_STD:
        raise ConfigurationError("the plan's noise exceeds the exact sampler's range")


def verify_plan(plan: DPPlan) -> float | None:
    """The epsilon ``plan`` really spends over its rounds (``None`` without noise),
    recomputed from its noise after :func:`check_plan_bounds`: a server cannot understate
    it. Needs the accountant (``secagg[dp]``).

    Raises ConfigurationError as :func:`check_plan_bounds`, or without ``dp-accounting``.
    """
    check_plan_bounds(plan)
    if not plan.private:
        return None
    assert plan.l2_sensitivity is not None and plan.l1_sensitivity is not None
    assert plan.delta is not None
    assert plan.sampling_rate is not None and plan.rounds is not None
    return accounting.mechanism_epsilon(
        plan.mechanism, noise=float(plan.local_noise), clients=plan.noise_clients,
        l2=plan.l2_sensitivity, l1=plan.l1_sensitivity, dim=plan.padded_dim,
        sampling_rate=plan.sampling_rate, rounds=plan.rounds, delta=plan.delta)


@dataclass(frozen=True)
class PrivacyReport:
    """The privacy and compression figures of one released round (JSON-ready via
    :meth:`to_dict`; all public, the round seed included).

    ``mechanism`` is ``"skellam"``, ``"dgauss"`` or ``"none"`` (compression only: the
    epsilon fields are then ``None``). ``included`` clients were in the sum of a plan made
    for ``planned_clients`` (noise split over ``noise_clients``). ``epsilon_spent`` composes
    every round released so far in the run, this one included; ``epsilon_round`` is this
    round alone, for the clients actually included. ``error_std`` is the standard deviation
    of each value of the decoded mean due to rounding and noise (not a bound).
    """

    mechanism: str
    bits: int
    round_seed: str
    planned_clients: int
    noise_clients: int
    included: int
    error_std: float
    bytes_per_client: int
    bytes_per_client_32bit: int
    epsilon_spent: float | None = None
    epsilon_round: float | None = None
    target_epsilon: float | None = None
    delta: float | None = None
    noise_multiplier: float | None = None
    rounds_recorded: int = 0
    rounds_planned: int | None = None
    below_floor: bool = False
    over_budget: bool = False

    @classmethod
    def of(cls, plan: DPPlan, round_seed: bytes, included: int,
           spent: RoundPrivacy | None) -> PrivacyReport:
        """The report of a round of ``plan`` with ``included`` clients (``spent``: the
        ledger's record of it, for a private plan)."""
        common: dict[str, Any] = dict(
            mechanism=plan.mechanism, bits=plan.bits, round_seed=round_seed.hex(),
            planned_clients=plan.clients, noise_clients=plan.noise_clients,
            included=included,
            error_std=math.sqrt(plan.sum_error_variance(included)) / included,
            bytes_per_client=plan.bytes_per_client,
            bytes_per_client_32bit=plan.bytes_per_client_32bit)
        if spent is None:
            return cls(**common)
        return cls(**common, epsilon_spent=spent.epsilon_spent,
                   epsilon_round=spent.epsilon_round, target_epsilon=spent.target_epsilon,
                   delta=spent.delta, noise_multiplier=spent.noise_multiplier,
                   rounds_recorded=spent.round_index + 1, rounds_planned=spent.rounds_planned,
                   below_floor=spent.below_floor, over_budget=spent.over_budget)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return dict(self.__dict__)


class PrivacyRun:
    """The server's side of a run under ``privacy`` (module docstring). Not thread-safe.

    ``plan`` is a plan already made from ``privacy`` (planning a noisy config takes about a
    second; a plan is JSON-ready and may be computed once and stored). Raises
    ConfigurationError for a bad config or a plan that does not match it.
    """

    def __init__(self, privacy: Privacy, *, plan: DPPlan | None = None) -> None:
        self.privacy = check_privacy(privacy)
        self._plan: DPPlan | None = None
        self._ledger: PrivacyLedger | None = None
        if plan is not None:
            self._adopt(check_plan_matches(plan, privacy))

    def _adopt(self, plan: DPPlan) -> None:
        prepare(plan)
        self._plan = plan
        self._ledger = PrivacyLedger(plan) if plan.private else None
        log.debug("privacy plan: %s, %d bits, scale %.4g, %d clients", plan.mechanism,
                  plan.bits, plan.scale, plan.clients)

    @property
    def plan(self) -> DPPlan | None:
        """The run's plan (``None`` before the first round or :meth:`plan_for`)."""
        return self._plan

    @property
    def ledger(self) -> PrivacyLedger | None:
        """The privacy ledger (``None`` for compression only or before planning)."""
        return self._ledger

    @property
    def epsilon_spent(self) -> float:
        """Epsilon of the rounds released so far (0.0 without a ledger)."""
        return self._ledger.epsilon_spent if self._ledger is not None else 0.0

    def plan_for(self, dim: int, clients: int) -> DPPlan:
        """The run's plan, made on the first call for ``dim``-value updates and
        ``expected_clients`` (or ``clients`` when the config does not fix it), then checked.

        Raises ConfigurationError when the config cannot be planned (too few bits, wrap
        bound), or when ``dim`` or ``clients`` do not fit the plan already made.
        """
        if self._plan is None:
            fixed = self.privacy.expected_clients
            self._adopt(self.privacy.plan(dim, None if fixed is not None else clients))
        plan = self._plan
        assert plan is not None
        if dim != plan.dim:
            raise ConfigurationError(f"updates have {dim} values, the privacy plan {plan.dim}")
        if clients > plan.clients:
            raise ConfigurationError(
                f"{clients} clients in a round planned for {plan.clients}: the rule is "
                "clients <= expected_clients (the wrap bound and the bits are sized for it)")
        return plan

    @staticmethod
    def round_seed() -> bytes:
        """A fresh public rotation seed for one round, from the CSPRNG."""
        return os.urandom(ROUND_SEED_BYTES)

    def release(self, total: np.ndarray, round_seed: bytes, included: int, *,
                stacklevel: int = 2) -> tuple[np.ndarray, PrivacyReport]:
        """The decoded mean of ``included`` clients' updates from the modular sum ``total``
        of their encodings, with the round recorded in the ledger and reported. Over budget
        or below the noise floor: logged and a :class:`PrivacyBudgetWarning`.

        Raises ConfigurationError before planning or for a malformed total.
        """
        plan = self._plan
        if plan is None:
            raise ConfigurationError("no plan yet: call plan_for first")
        mean, spent = decode(total, plan, round_seed, included, ledger=self._ledger)
        report = PrivacyReport.of(plan, round_seed, included, spent)
        _warn_budget(report, stacklevel + 1)
        return mean, report

    def __repr__(self) -> str:
        return (f"PrivacyRun({type(self.privacy).__name__}, "
                f"epsilon_spent={self.epsilon_spent:.4g})")


def _warn_budget(report: PrivacyReport, stacklevel: int) -> None:
    problems = []
    if report.over_budget:
        problems.append(f"epsilon spent {report.epsilon_spent:.4g} exceeds the target "
                        f"{report.target_epsilon:.4g}")
    if report.below_floor:
        problems.append(f"{report.included} clients in the sum, fewer than the "
                        f"{report.noise_clients} the noise is split over (this round spent "
                        f"epsilon {report.epsilon_round:.4g})")
    if problems:
        message = "privacy: " + "; ".join(problems)
        log.warning(message)
        warnings.warn(message, PrivacyBudgetWarning, stacklevel=stacklevel + 1)
