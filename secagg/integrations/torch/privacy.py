"""Distributed DP and compression for the PyTorch adapter: one round's private sum.

::

    agg = SecureFedAvg(model, weighted=False, integer_buffers="keep",
                       privacy=DistributedDP(epsilon=3, delta=1e-5, rounds=50,
                                             sampling_rate=1.0, bits=16, clip=0.5,
                                             expected_clients=20))
    state, report = agg.round(results)
    report.privacy.epsilon_spent, report.privacy.epsilon_round

Theory of operation. A :class:`PrivateAggregation` holds the run's :class:`~secagg.dp.DPPlan`
(made once, for the update length and the expected number of clients) and, for a
:class:`~secagg.dp.DistributedDP` config, its :class:`~secagg.dp.PrivacyLedger`. Each round:

1. the server draws the round's public rotation seed from the CSPRNG (``os.urandom``);
2. every client encodes its flat update with :func:`secagg.dp.encode` (rotation, L2 clip,
   scaling, conditional randomized rounding, its share of exact discrete noise from its own
   CSPRNG, reduction mod ``2^bits``); a client whose update is not finite sits the round
   out (``excluded``, reason ``"non-finite update"``);
3. the masking protocol (``bonawitz`` or ``secagg+``) sums the encodings at ``bits`` bits,
   in-process through :meth:`SimulatedProtocolBackend.modular_sum`, dropouts included;
4. the server decodes the mean of the included clients' updates (:func:`secagg.dp.decode`)
   and the ledger records the round with the number of clients actually in the sum: fewer
   clients carry less noise and spend more epsilon.

Rules, enforced with :class:`~secagg.errors.ConfigurationError`:

* **masking protocols only** (:data:`MASKING_PROTOCOLS`): the encodings are elements of
  Z_(2^bits) whose modular sum the server maps back; a threshold-HE protocol (threshold
  Paillier, CKKS, threshold CKKS) sums fixed-point plaintexts at its own modulus, and the
  plain baseline would show each client's lightly noised encoding to the server;
* **uniform weights**: the L2 clip bounds one client's whole contribution to the sum (the
  sensitivity the accountant counts); a weight would multiply it past the clip, and the
  example counts themselves are not covered by the noise. The mean is the plain mean of
  the included clients' clipped updates;
* **a fixed plan**: a round may hold at most the planned number of clients (the wrap bound
  is computed for it), updates keep the planned length.

Nothing is silent: rounds past the planned budget (``over_budget``) or with fewer noise
shares than the floor (``below_floor``) are logged and raise a :class:`PrivacyBudgetWarning`.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from secagg.dp import (
    Compression,
    DistributedDP,
    DPPlan,
    NonFiniteUpdateError,
    PrivacyLedger,
    RoundPrivacy,
    decode,
    encode,
    prepare,
)
from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.integrations.torch.backends import ClientId, Dropouts, SimulatedProtocolBackend
from secagg.sim.ledger import CostLedger

__all__ = [
    "MASKING_PROTOCOLS",
    "ROUND_SEED_BYTES",
    "Privacy",
    "PrivacyBudgetWarning",
    "PrivacyReport",
    "PrivateAggregation",
    "PrivateOutcome",
    "check_masking_protocol",
]

log = logging.getLogger(__name__)

Privacy: TypeAlias = DistributedDP | Compression
"""A privacy setting: distributed DP (noise + compression) or compression alone."""

MASKING_PROTOCOLS = ("bonawitz", "secagg+")
"""The protocols whose sum is the modular sum of the clients' Z_(2^bits) vectors."""

ROUND_SEED_BYTES = 32
"""Length of a round's public rotation seed."""

_OPTIONS = ("threshold", "degree", "dropout_fraction", "corrupt_fraction")


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


def check_privacy(privacy: object) -> Privacy:
    """``privacy`` if it is a :class:`DistributedDP` or :class:`Compression`."""
    if not isinstance(privacy, DistributedDP | Compression):
        raise ConfigurationError(f"privacy must be a DistributedDP or a Compression, got a "
                                 f"{type(privacy).__name__}")
    return privacy


@dataclass(frozen=True)
class PrivacyReport:
    """The privacy and compression figures of one released round (JSON-ready via
    :meth:`to_dict`; nothing secret: the round seed is public).

    ``mechanism`` is ``"skellam"``, ``"dgauss"`` or ``"none"`` (compression only: the
    epsilon fields are then ``None``). ``included`` clients were in the sum of a plan made
    for ``planned_clients`` (noise split over ``noise_clients``). ``epsilon_spent`` composes
    every round released so far with this aggregation, this one included; ``epsilon_round``
    is this round alone, for the clients actually included. ``error_std`` is the standard
    deviation of each value of the decoded mean due to rounding and noise (not a bound).
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


@dataclass(frozen=True)
class PrivateOutcome:
    """One private aggregation, in the caller's ids: who is in the mean, who is not and
    why, the clients whose update the L2 clip scaled (id -> norm before), costs, and the
    round's :class:`PrivacyReport`."""

    included: frozenset[ClientId]
    excluded: Mapping[ClientId, str]
    clipped_norms: Mapping[ClientId, float]
    privacy: PrivacyReport
    seconds: float
    bytes_up: int
    bytes_down: int
    costs: CostLedger | None = field(default=None, repr=False)


class PrivateAggregation:
    """The private sums of one run: its plan, its privacy ledger, its protocol.

    ``privacy`` is a :class:`DistributedDP` or :class:`Compression`; ``protocol`` one of
    :data:`MASKING_PROTOCOLS`; ``protocol_options`` (``threshold``, ``degree``,
    ``dropout_fraction``, ``corrupt_fraction``) go to the protocol. ``plan`` is a plan
    already made from ``privacy`` (planning a noisy config takes about a second; a plan is
    JSON-ready and may be computed once and stored). Reuse one object across rounds (or
    calls of ``secure_weighted_mean``) so that the epsilon composes. Not thread-safe.

    Raises ConfigurationError for a bad config, protocol or option, or a ``plan`` that does
    not match ``privacy``.
    """

    def __init__(self, privacy: Privacy, *, protocol: str = "secagg+",
                 protocol_options: Mapping[str, object] | None = None,
                 plan: DPPlan | None = None) -> None:
        self.privacy = check_privacy(privacy)
        options = dict(protocol_options or {})
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(f"unknown protocol options {unknown}; known: "
                                     f"{list(_OPTIONS)}")
        self.backend = SimulatedProtocolBackend(
            check_masking_protocol(protocol), bits=privacy.bits,
            **options)  # type: ignore[arg-type]
        self._plan: DPPlan | None = None
        self._ledger: PrivacyLedger | None = None
        if plan is not None:
            _check_plan_matches(plan, privacy)
            prepare(plan)
            self._plan = plan
            self._ledger = PrivacyLedger(plan) if plan.private else None

    @property
    def protocol(self) -> str:
        """The masking protocol's name."""
        return self.backend.name

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
        plan = self._plan
        if plan is None:
            fixed = self.privacy.expected_clients
            plan = self.privacy.plan(dim, None if fixed is not None else clients)
            prepare(plan)
            self._plan = plan
            self._ledger = PrivacyLedger(plan) if plan.private else None
            log.debug("privacy plan: %s, %d bits, scale %.4g, %d clients", plan.mechanism,
                      plan.bits, plan.scale, plan.clients)
        if dim != plan.dim:
            raise ConfigurationError(f"updates have {dim} values, the privacy plan {plan.dim}")
        if clients > plan.clients:
            raise ConfigurationError(
                f"{clients} clients in a round planned for {plan.clients}: the rule is "
                "clients <= expected_clients (the wrap bound and the bits are sized for it)")
        return plan

    def aggregate(self, updates: Mapping[ClientId, np.ndarray], *,
                  dropouts: Dropouts | None = None) -> tuple[np.ndarray, PrivateOutcome]:
        """The mean of the included clients' clipped updates, privately (module docstring).

        ``updates`` are float64 vectors of one length. Raises ConfigurationError (see
        :meth:`plan_for`), ProtocolAbort when fewer than two clients remain.
        """
        started = time.perf_counter()
        if not updates:
            raise ProtocolAbort("no client to aggregate")
        dim = len(next(iter(updates.values())))
        plan = self.plan_for(dim, len(updates))
        round_seed = os.urandom(ROUND_SEED_BYTES)  # public, unpredictable before the round
        excluded: dict[ClientId, str] = {}
        encoded: dict[ClientId, np.ndarray] = {}
        norms: dict[ClientId, float] = {}
        for cid, update in updates.items():
            try:
                encoded[cid] = encode(update, plan, round_seed)
            except NonFiniteUpdateError:
                excluded[cid] = "non-finite update"
                log.debug("client %r excluded: non-finite update", cid)
                continue
            norm = math.sqrt(float(np.dot(update, update)))
            if norm > plan.clip:
                norms[cid] = norm
        if len(encoded) < 2:
            raise ProtocolAbort(f"only {len(encoded)} client(s) left: an aggregate needs two")
        summed = self.backend.modular_sum(encoded, dropouts=dropouts)
        included = len(summed.included)
        mean, spent = decode(summed.total, plan, round_seed, included, ledger=self._ledger)
        report = PrivacyReport.of(plan, round_seed, included, spent)
        _warn_budget(report)
        outcome = PrivateOutcome(
            included=summed.included, excluded={**excluded, **summed.excluded},
            clipped_norms={c: n for c, n in norms.items() if c in summed.included},
            privacy=report, seconds=time.perf_counter() - started,
            bytes_up=summed.bytes_up, bytes_down=summed.bytes_down, costs=summed.costs)
        return mean, outcome

    def __repr__(self) -> str:
        return (f"PrivateAggregation({type(self.privacy).__name__}, protocol={self.protocol!r},"
                f" epsilon_spent={self.epsilon_spent:.4g})")


def _check_plan_matches(plan: object, privacy: Privacy) -> None:
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


def _warn_budget(report: PrivacyReport) -> None:
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
        warnings.warn(message, PrivacyBudgetWarning, stacklevel=4)
