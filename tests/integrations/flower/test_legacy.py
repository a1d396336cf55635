"""SecAggWorkflow: the legacy DefaultWorkflow + Strategy + NumPyClient path, in process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.client import NumPyClient
from flwr.clientapp import ClientApp
from flwr.common import NDArrays, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat
from flwr.server import ServerConfig
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

from secagg.dp import Compression
from secagg.errors import ConfigurationError
from secagg.integrations.flower import SecAggSettings, make_secagg_mod
from secagg.integrations.flower.legacy import SecAggWorkflow
from secagg.integrations.flower.testing import InProcessGrid
from tests.helpers.flower import server_task_identity

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "flower_app"))
from secagg_flower_app.task import SHAPES, client_update, expected_mean


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


class LegacyClient(NumPyClient):
    def __init__(self, partition: int) -> None:
        self.partition = partition

    def fit(self, parameters: NDArrays, config: dict[str, Scalar]
            ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        arrays, weight, loss = client_update(self.partition, int(config["server-round"]))
        return [arrays[name] for name in SHAPES], weight, {"train_loss": loss}


def client_fn(context: Context) -> object:
    return LegacyClient(int(context.node_config["partition-id"])).to_client()


def run_legacy(partitions: range, drop: dict[int, tuple[int, int]] | None = None,
               settings: SecAggSettings | None = None
               ) -> tuple[InProcessGrid, LegacyContext, SecAggWorkflow]:
    app = ClientApp(client_fn=client_fn, mods=[make_secagg_mod()])  # type: ignore[arg-type]
    grid = InProcessGrid.create(app, {100 + p: {"partition-id": p} for p in partitions})
    grid.drop_from.update(drop or {})
    initial = ndarrays_to_parameters([np.zeros(s, dtype=np.float32) for s in SHAPES.values()])
    strategy = FedAvg(initial_parameters=initial, fraction_evaluate=0.0,
                      min_available_clients=len(partitions), min_fit_clients=len(partitions),
                      on_fit_config_fn=lambda r: {"server-round": r})
    context = LegacyContext(
        Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        config=ServerConfig(num_rounds=2), strategy=strategy)
    workflow = SecAggWorkflow(settings or SecAggSettings(
        clip=4.0, max_weight=100.0, secure_metrics=("train_loss",), train_timeout=0.05,
        stage_timeout=0.05, poll_interval=0.01))
    DefaultWorkflow(fit_workflow=workflow)(grid, context)
    return grid, context, workflow


def test_legacy_fedavg_with_a_dropout_in_round_two() -> None:
    grid, context, workflow = run_legacy(range(4), drop={100 + 3: (2, 1)})
    first, second = workflow.reports
    assert first.ok and first.included_nodes == {100, 101, 102, 103}
    assert second.ok and second.included_nodes == {100, 101, 102}
    assert "stage 1 (share_keys): no reply within" in second.excluded_nodes[103]
    final = parameters_to_ndarrays(compat.arrayrecord_to_parameters(
        context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True))
    mean, _, loss = expected_mean([0, 1, 2], 2)
    for got, want in zip(final, mean.values(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert second.metrics["train_loss"] == pytest.approx(loss, abs=1e-5)
    assert len(grid.batches) == 10  # two rounds of five secagg stages, nothing else


def test_workflow_needs_a_legacy_context() -> None:
    plain = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(ConfigurationError, match="LegacyContext"):
        SecAggWorkflow()(InProcessGrid(apps={}), plain)


def test_legacy_fedavg_with_compression_is_the_unweighted_mean() -> None:
    settings = SecAggSettings.with_privacy(
        Compression(bits=16, clip=8.0, expected_clients=4, wrap_probability=1e-9),
        train_timeout=0.05, stage_timeout=0.05, poll_interval=0.01)
    _, context, workflow = run_legacy(range(4), settings=settings)
    last = workflow.reports[-1].privacy
    assert last is not None and last.included == 4
    final = parameters_to_ndarrays(compat.arrayrecord_to_parameters(
        context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True))
    updates = [client_update(p, 2)[0] for p in range(4)]
    for got, name in zip(final, SHAPES, strict=True):
        want = np.mean([u[name] for u in updates], axis=0)
        np.testing.assert_allclose(got, want, atol=8 * last.error_std + 1e-6)
