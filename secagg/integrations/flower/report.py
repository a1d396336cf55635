"""What a secure round over Flower produced, in Flower's terms (node ids), and its log lines.

:class:`RoundReport` is what :func:`~secagg.integrations.flower.server.run_secure_round`
returns and what ``SecAggGrid.reports`` / ``SecAggWorkflow.reports`` collect; it holds the
decoded aggregate (or why there is none), who is in it, who is not and why, every failure
of every stage, and sizes and timings. Nothing secret: ids, reasons, public aggregates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, MetricRecord, RecordDict

from secagg.errors import UsageError
from secagg.integrations.privacy import PrivacyReport
from secagg.protocols.base import AggregationResult

__all__ = ["RoundReport", "log_outcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundReport:
    """The outcome of one secure aggregation, in Flower's terms (node ids).

    ``arrays``/``metrics``/``total_weight`` are the decoded weighted means over exactly
    ``included_nodes`` (``None``/empty when ``aborted`` holds the reason it did not
    complete). ``excluded_nodes`` maps every other sampled node to the reason it is not in
    the sum. ``stage_failures`` lists, for every node that failed in any stage, what
    happened (``"stage 3 (unmasking): ..."``), including failures that did not remove it
    from the sum (a node that sent its masked input, then missed the unmasking stage, is
    in the sum: the others' shares unmask it). ``identities`` labels the identified nodes
    (``"registered as 'alice'"``, ``"holder of share 2"``). ``clipped`` gives the share of
    the included weight whose arrays / metrics were clipped (``report_clipping``).
    ``result`` is the protocol's raw :class:`AggregationResult` (client ids 1..n) and
    ``client_of_node`` the mapping used. ``privacy`` (settings with ``privacy``, a released
    round) carries the epsilon spent so far in the run and this round's, for the nodes
    actually in the sum, and the compression figures (:class:`PrivacyReport`).
    """

    session_id: bytes
    client_of_node: Mapping[int, int]
    protocol: str = ""
    summary: str = ""
    included_nodes: frozenset[int] = frozenset()
    excluded_nodes: Mapping[int, str] = field(default_factory=dict)
    stage_failures: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    identities: Mapping[int, str] = field(default_factory=dict)
    arrays: ArrayRecord | None = None
    arrays_key: str = "arrays"
    metrics: Mapping[str, float] = field(default_factory=dict)
    total_weight: float = 0.0
    weighted_by_key: str = "num-examples"
    clipped: Mapping[str, float] = field(default_factory=dict)
    aborted: str | None = None
    result: AggregationResult | None = None
    stages: int = 0
    stage_seconds: tuple[float, ...] = ()
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    privacy: PrivacyReport | None = None

    @property
    def ok(self) -> bool:
        """True when the aggregate is available."""
        return self.aborted is None and self.arrays is not None

    def reply_content(self) -> RecordDict:
        """A FedAvg-shaped reply: the mean arrays and the total weight (plus secure metrics).

        Raises UsageError if the round did not complete (there is no aggregate).
        """
        if not self.ok or self.arrays is None:
            raise UsageError(f"no aggregate: {self.aborted}")
        metrics = MetricRecord({self.weighted_by_key: self.total_weight, **self.metrics})
        return RecordDict({self.arrays_key: self.arrays, "metrics": metrics})

    def __repr__(self) -> str:
        return (
            f"RoundReport(session={self.session_id.hex()[:16]}..., protocol={self.protocol!r}, "
            f"included={sorted(self.included_nodes)}, "
            f"excluded={dict(sorted(self.excluded_nodes.items()))}, "
            f"failed_in_a_stage={sorted(self.stage_failures)}, "
            f"total_weight={self.total_weight}, aborted={self.aborted!r}, stages={self.stages}"
            + (f", epsilon_spent={self.privacy.epsilon_spent}" if self.privacy else "") + ")"
        )


def log_outcome(report: RoundReport) -> None:
    """Log the round's outcome: aggregate or abort, exclusions with reasons, clipping."""
    if report.aborted is not None:
        log.warning("secagg: round aborted after %d stages (%.2f s): %s", report.stages,
                    report.seconds, report.aborted)
    else:
        log.info("secagg: aggregated %d of %d nodes in %.2f s (%d stages, %d B sent, "
                 "%d B received)", len(report.included_nodes),
                 len(report.included_nodes) + len(report.excluded_nodes), report.seconds,
                 report.stages, report.bytes_sent, report.bytes_received)
    for node, reason in sorted(report.excluded_nodes.items()):
        log.info("secagg: node %d not in the sum: %s", node, reason)
    privacy = report.privacy
    if privacy is not None and privacy.epsilon_spent is not None:
        log.info("secagg: privacy: epsilon spent %.4g of %.4g (this round %.4g with %d of %d "
                 "noise shares)", privacy.epsilon_spent, privacy.target_epsilon,
                 privacy.epsilon_round, privacy.included, privacy.noise_clients)
    for kind, share in sorted(report.clipped.items()):
        if share > 0:
            log.warning("secagg: %.1f %% of the aggregated weight had %s clipped; raise "
                        "SecAggSettings.%s if that is not intended", 100 * share, kind,
                        "clip" if kind == "arrays" else "metric_clip")
