"""A Grid decorator that gives any FedAvg-style Message-API strategy secure aggregation.

``Strategy.start(grid=SecAggGrid(grid, settings), ...)`` runs the strategy unchanged: every
``send_and_receive`` of training messages becomes one secure aggregation
(:func:`run_secure_round`), and the strategy receives a single reply holding the weighted
mean and the total weight, which FedAvg, FedAvgM, FedProx, FedAdam, FedYogi and FedAdagrad
aggregate to itself, plus one error reply per sampled node that is not in the sum (its
reason as the error). Evaluation and query messages pass through to the wrapped grid.

Flower's strategy therefore logs ``aggregate_train: Received 1 results and F failures``:
the *one* result is the secure aggregate of every included node (the server never sees a
node's own reply), the F failures are the nodes left out, each listed with its reason.
secagg logs the number of nodes in the aggregate just before.
Robust aggregators that need individual updates (Krum, median, trimmed mean) cannot work
on a secure sum and must not be used with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flwr.app import Error, Message, RecordDict
from flwr.proto.node_pb2 import NodeInfo
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from secagg.errors import ConfigurationError
from secagg.integrations.flower.logs import forward_to_flower
from secagg.integrations.flower.server import (
    IdentityCache,
    RoundReport,
    ServerFactory,
    is_train_message,
    run_secure_round,
)
from secagg.integrations.flower.settings import SecAggSettings
from secagg.integrations.flower.wire import SECAGG_ERROR_CODE
from secagg.integrations.privacy import PrivacyRun

__all__ = ["SecAggGrid", "aggregate_replies"]

log = logging.getLogger(__name__)


class SecAggGrid(Grid):
    """Wraps ``grid``; training rounds sent through it are securely aggregated.

    ``reports`` lists one :class:`RoundReport` per training round (included and excluded
    nodes, reasons, sizes; with ``settings.privacy`` the epsilon spent). ``identities``
    caches the nodes identified so far (active mode, committees); ``privacy`` is the run's
    :class:`~secagg.integrations.privacy.PrivacyRun` (plan and ledger). The strategy's
    ``timeout`` is replaced by the settings' ``train_timeout`` / ``stage_timeout``. Only
    ``send_and_receive`` is intercepted: do not push training messages with
    ``push_messages`` directly (the client mod refuses them).
    """

    def __init__(self, grid: Grid, settings: SecAggSettings | None = None, *,
                 make_server: ServerFactory | None = None) -> None:
        self._grid = grid
        self.settings = settings or SecAggSettings()
        self._make_server = make_server
        self.reports: list[RoundReport] = []
        self.identities: IdentityCache = {}
        # The run's privacy plan and ledger: epsilon composes over this object's rounds.
        self.privacy: PrivacyRun | None = (PrivacyRun(self.settings.privacy)
                                           if self.settings.privacy is not None else None)
        if self.settings.forward_logs:
            forward_to_flower()

    def set_run(self, run: Run) -> None:
        self._grid.set_run(run)

    @property
    def run(self) -> Run:
        return self._grid.run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int,
                       group_id: str, ttl: float | None = None) -> Message:
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def get_nodes(self) -> Iterable[NodeInfo]:
        return self._grid.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *,
                         timeout: float | None = None) -> Iterable[Message]:
        """Securely aggregate training messages; pass every other kind through.

        Returns one reply (the aggregate) for a completed training round, and an error reply
        for every node not in the sum (only error replies if the round aborted: the
        strategy then keeps its current model). Raises ConfigurationError for a batch that
        mixes training and other messages.
        """
        batch = list(messages)
        training = [is_train_message(m) for m in batch]
        if not any(training):
            return self._grid.send_and_receive(batch, timeout=timeout)
        if not all(training):
            # Sending the training part in clear is not an option, nor is guessing.
            raise ConfigurationError("a batch mixes training and other messages")
        report = run_secure_round(self._grid, batch, self.settings,
                                  make_server=self._make_server, identities=self.identities,
                                  privacy=self.privacy)
        self.reports.append(report)
        return aggregate_replies(report, batch)


def aggregate_replies(report: RoundReport, batch: list[Message]) -> list[Message]:
    """What a strategy receives for a secure round: one reply holding the aggregate (if the
    round completed) and one error reply per sampled node not in the sum."""
    by_node = {m.metadata.dst_node_id: m for m in batch}
    replies = []
    if report.ok:
        replies.append(Message(report.reply_content(),
                               reply_to=by_node[min(report.included_nodes)]))
    for node, reason in sorted(report.excluded_nodes.items()):
        replies.append(Message(Error(SECAGG_ERROR_CODE, f"secagg: not in the sum: {reason}"),
                               reply_to=by_node[node]))
    if report.ok:
        log.info("secagg: the strategy receives ONE reply, the secure aggregate of %d nodes, "
                 "and %d error replies (nodes not in the sum): Flower logs it as "
                 "'Received 1 results and %d failures'", len(report.included_nodes),
                 len(report.excluded_nodes), len(report.excluded_nodes))
    return replies
