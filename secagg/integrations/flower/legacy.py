"""A drop-in replacement of Flower's ``SecAggPlusWorkflow`` for the legacy Strategy API.

Flower's own SecAgg+ runs as the ``fit_workflow`` of a ``DefaultWorkflow`` with a legacy
``flwr.server.strategy`` strategy (FitIns / FitRes). :class:`SecAggWorkflow` takes its
place (and ``secagg_mod`` takes the place of ``secaggplus_mod`` in the ClientApp)::

    workflow = DefaultWorkflow(fit_workflow=SecAggWorkflow(SecAggSettings(...)))

Each training round: the strategy's ``configure_fit`` picks the nodes, one secure
aggregation runs (:func:`run_secure_round`), and ``aggregate_fit`` receives a single
``FitRes`` holding the weighted mean and the total weight as ``num_examples`` (rounded),
with one failure per excluded node. Unlike Flower's workflow, no client's
``num_examples`` or metrics reach the server in clear, and a dropout in any stage only
excludes that node.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from flwr.app import Context, Message, MessageType
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.compat.common import recorddict_compat as compat
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.serverapp import Grid

from secagg.errors import ConfigurationError
from secagg.integrations.flower.logs import forward_to_flower
from secagg.integrations.flower.server import (
    IdentityCache,
    RoundReport,
    ServerFactory,
    run_secure_round,
)
from secagg.integrations.flower.settings import SecAggSettings
from secagg.integrations.privacy import PrivacyRun

__all__ = ["LEGACY_WEIGHT_KEY", "SecAggWorkflow"]

log = logging.getLogger(__name__)

LEGACY_WEIGHT_KEY = "num_examples"
"""Where a legacy FitRes carries its example count (``MetricRecord 'fitres.num_examples'``)."""


class SecAggWorkflow:
    """The ``fit_workflow`` of a ``DefaultWorkflow``: secure FedAvg-style training rounds.

    ``settings.weighted_by_key`` is forced to the legacy ``num_examples``. ``reports``
    lists one :class:`RoundReport` per round; ``privacy`` is the run's
    :class:`~secagg.integrations.privacy.PrivacyRun` with ``settings.privacy``.
    """

    def __init__(self, settings: SecAggSettings | None = None, *,
                 make_server: ServerFactory | None = None) -> None:
        self.settings = replace(settings or SecAggSettings(), weighted_by_key=LEGACY_WEIGHT_KEY)
        self._make_server = make_server
        self.reports: list[RoundReport] = []
        self.identities: IdentityCache = {}
        # The run's privacy plan and ledger: epsilon composes over this object's rounds.
        self.privacy: PrivacyRun | None = (PrivacyRun(self.settings.privacy)
                                           if self.settings.privacy is not None else None)
        if self.settings.forward_logs:
            forward_to_flower()

    @classmethod
    def from_secaggplus(cls, num_shares: int | float, reconstruction_threshold: int | float,
                        **kwargs: Any) -> SecAggWorkflow:
        """In place of ``SecAggPlusWorkflow(num_shares, reconstruction_threshold, ...)``,
        with the same arguments (:meth:`SecAggSettings.from_secaggplus`): switching from
        Flower's SecAgg+ is a change of class name."""
        return cls(SecAggSettings.from_secaggplus(num_shares, reconstruction_threshold,
                                                  **kwargs))

    def __call__(self, grid: Grid, context: Context) -> None:
        """Run one secure training round and hand its aggregate to the strategy.

        Raises ConfigurationError if ``context`` is not the ``LegacyContext`` a
        ``DefaultWorkflow`` passes.
        """
        if not isinstance(context, LegacyContext):
            raise ConfigurationError(f"expected a LegacyContext, got {type(context).__name__}")
        config = context.state.config_records[MAIN_CONFIGS_RECORD]
        current_round = int(config[Key.CURRENT_ROUND])  # type: ignore[arg-type]
        parameters = compat.arrayrecord_to_parameters(
            context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
        instructions = context.strategy.configure_fit(
            server_round=current_round, parameters=parameters,
            client_manager=context.client_manager)
        if not instructions:
            log.info("configure_fit: no clients selected, round %d skipped", current_round)
            return
        proxies = {proxy.node_id: proxy for proxy, _ in instructions}
        messages = [
            Message(compat.fitins_to_recorddict(fitins, True), proxy.node_id,
                    MessageType.TRAIN, group_id=str(current_round))
            for proxy, fitins in instructions
        ]
        report = run_secure_round(grid, messages, self.settings, make_server=self._make_server,
                                  identities=self.identities, privacy=self.privacy)
        self.reports.append(report)
        log.info("secagg: round %d: the strategy's aggregate_fit receives ONE FitRes, the "
                 "secure aggregate of %d nodes, and %d failures (nodes not in the sum)",
                 current_round, len(report.included_nodes), len(report.excluded_nodes))
        failures: list[tuple[ClientProxy, FitRes] | BaseException] = [
            RuntimeError(f"node {node} excluded: {reason}")
            for node, reason in sorted(report.excluded_nodes.items())
        ]
        results = []
        if report.ok and report.arrays is not None:
            mean = [report.arrays[name].numpy() for name in report.arrays]
            fitres = FitRes(
                status=Status(code=Code.OK, message="secure aggregate"),
                parameters=ndarrays_to_parameters(mean),
                num_examples=max(1, round(report.total_weight)),
                metrics=dict(report.metrics),
            )
            # The aggregate is attributed to one included node: the strategy only needs a
            # proxy to pair with the result.
            results.append((proxies[min(report.included_nodes)], fitres))
        aggregated, metrics = context.strategy.aggregate_fit(current_round, results, failures)
        if aggregated is not None:
            context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
                aggregated, True)
            context.history.add_metrics_distributed_fit(server_round=current_round,
                                                        metrics=metrics)
