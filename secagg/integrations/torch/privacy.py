"""Distributed DP and compression for the PyTorch adapter: one round's private sum.

::

    agg = SecureFedAvg(model, weighted=False, integer_buffers="keep",
                       privacy=DistributedDP(epsilon=3, delta=1e-5, rounds=50,
                                             sampling_rate=1.0, bits=16, clip=0.5,
                                             expected_clients=20))
    state, report = agg.round(results)
    report.privacy.epsilon_spent, report.privacy.epsilon_round

Theory of operation. A :class:`DPAggregation` holds the run's :class:`~secagg.dp.DPPlan`
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
The plan, the ledger, the rules and the report are shared with the Flower adapter
(:mod:`secagg.integrations.privacy`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from secagg.dp import DPPlan, NonFiniteUpdateError, PrivacyLedger, encode
from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.integrations.privacy import (
    MASKING_PROTOCOLS,
    ROUND_SEED_BYTES,
    Privacy,
    PrivacyBudgetWarning,
    PrivacyReport,
    PrivacyRun,
    check_masking_protocol,
    check_privacy,
)
from secagg.integrations.torch.backends import ClientId, Dropouts, SimulatedProtocolBackend
from secagg.sim.ledger import CostLedger

__all__ = [
    "MASKING_PROTOCOLS",
    "ROUND_SEED_BYTES",
    "DPAggregation",
    "DPOutcome",
    "Privacy",
    "PrivacyBudgetWarning",
    "PrivacyReport",
    "check_masking_protocol",
    "check_privacy",
]

log = logging.getLogger(__name__)

_OPTIONS = ("threshold", "degree", "dropout_fraction", "corrupt_fraction")


@dataclass(frozen=True)
class DPOutcome:
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


class DPAggregation:
    """The private sums of one run: its plan, its privacy ledger, its protocol.

    ``privacy`` is a :class:`~secagg.dp.DistributedDP` or :class:`~secagg.dp.Compression`;
    ``protocol`` one of :data:`MASKING_PROTOCOLS`; ``protocol_options`` (``threshold``,
    ``degree``, ``dropout_fraction``, ``corrupt_fraction``) go to the protocol. ``plan`` is
    a plan already made from ``privacy`` (planning a noisy config takes about a second; a
    plan is JSON-ready and may be computed once and stored). Reuse one object across rounds
    (or calls of ``secure_weighted_mean``) so that the epsilon composes. Not thread-safe.

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
        self.run = PrivacyRun(privacy, plan=plan)

    @property
    def protocol(self) -> str:
        """The masking protocol's name."""
        return self.backend.name

    @property
    def plan(self) -> DPPlan | None:
        """The run's plan (``None`` before the first round or :meth:`plan_for`)."""
        return self.run.plan

    @property
    def ledger(self) -> PrivacyLedger | None:
        """The privacy ledger (``None`` for compression only or before planning)."""
        return self.run.ledger

    @property
    def epsilon_spent(self) -> float:
        """Epsilon of the rounds released so far (0.0 without a ledger)."""
        return self.run.epsilon_spent

    def plan_for(self, dim: int, clients: int) -> DPPlan:
        """:meth:`secagg.integrations.privacy.PrivacyRun.plan_for`."""
        return self.run.plan_for(dim, clients)

    def aggregate(self, updates: Mapping[ClientId, np.ndarray], *,
                  dropouts: Dropouts | None = None) -> tuple[np.ndarray, DPOutcome]:
        """The mean of the included clients' clipped updates, privately (module docstring).

        ``updates`` are float64 vectors of one length. Raises ConfigurationError (see
        :meth:`plan_for`), ProtocolAbort when fewer than two clients remain.
        """
        started = time.perf_counter()
        if not updates:
            raise ProtocolAbort("no client to aggregate")
        dim = len(next(iter(updates.values())))
        plan = self.plan_for(dim, len(updates))
        round_seed = self.run.round_seed()  # public, unpredictable before the round
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
        mean, report = self.run.release(summed.total, round_seed, len(summed.included),
                                        stacklevel=3)
        outcome = DPOutcome(
            included=summed.included, excluded={**excluded, **summed.excluded},
            clipped_norms={c: n for c, n in norms.items() if c in summed.included},
            privacy=report, seconds=time.perf_counter() - started,
            bytes_up=summed.bytes_up, bytes_down=summed.bytes_down, costs=summed.costs)
        return mean, outcome

    def __repr__(self) -> str:
        return (f"DPAggregation({type(self.privacy).__name__}, protocol={self.protocol!r},"
                f" epsilon_spent={self.epsilon_spent:.4g})")
