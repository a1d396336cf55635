"""Shared setup of the Flower tests (a plain module: conftest.py is the lead's).

In-process helpers (:func:`make_app`, :func:`make_grid`, :func:`train_messages`,
:func:`check_report`) run the example app's deterministic "training"
(``examples/flower_app/secagg_flower_app/task.py``) behind the secagg mod, so that a test
can recompute the exact weighted mean over any set of nodes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgpack
import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.supercore.task_identity import TaskIdentity

from secagg.integrations.flower import ClientPolicy, RoundReport, make_secagg_mod
from secagg.integrations.flower.client_mod import KeySource
from secagg.integrations.flower.testing import InProcessGrid

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "flower_app"
sys.path.insert(0, str(APP_DIR))
from secagg_flower_app.task import client_update, expected_mean, initial_arrays  # noqa: E402


@contextmanager
def server_task_identity() -> Iterator[None]:
    """Set what a ServerApp process has set when it builds messages (run 1, SuperLink node 0),
    and restore the previous identity on exit, even when the body raises."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    try:
        yield
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def bonawitz_params(threshold: int, degree: int | None = None, mode: str = "semi-honest",
                    identities: Sequence[bytes] | None = None) -> bytes:
    """The Bonawitz protocol parameters of a SessionSetup (what the server's plan sends)."""
    return bytes(msgpack.packb([threshold, degree, mode,
                                None if identities is None else list(identities)],
                               use_bin_type=True))


def node_of(partition: int) -> int:
    return 1000 + 17 * partition


def make_app(policy: ClientPolicy | None = None, *, keys: KeySource | None = None,
             loss_of: dict[int, float] | None = None) -> ClientApp:
    """The example's training function behind the secagg mod (without fault injection).

    ``keys`` is the nodes' key material (active mode, committees); ``loss_of`` overrides
    the train loss a partition reports.
    """
    app = ClientApp(mods=[make_secagg_mod(policy or ClientPolicy(min_clients=3), keys=keys)])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])
        server_round = int(msg.content["config"]["server-round"])
        arrays, weight, loss = client_update(partition, server_round)
        if loss_of is not None and partition in loss_of:
            loss = loss_of[partition]
        return Message(RecordDict({
            "arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
            "metrics": MetricRecord({"num-examples": weight, "train_loss": loss}),
        }), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}),
                       reply_to=msg)

    return app


def make_grid(partitions: Iterable[int], app: ClientApp | None = None) -> InProcessGrid:
    """One in-process node per partition (node id :func:`node_of`), all running ``app``."""
    return InProcessGrid.create(app or make_app(),
                                {node_of(p): {"partition-id": p} for p in partitions})


def check_report(report: RoundReport, partitions: Iterable[int], server_round: int) -> None:
    """The report's aggregate is the weighted mean over exactly ``partitions``."""
    included = sorted(partitions)
    assert report.ok, report.aborted
    assert report.included_nodes == {node_of(p) for p in included}
    mean, weight, loss = expected_mean(included, server_round)
    assert report.arrays is not None
    for name, values in mean.items():
        np.testing.assert_allclose(report.arrays[name].numpy(), values, atol=1e-5)
    assert report.total_weight == pytest.approx(weight, rel=1e-6)
    assert report.metrics["train_loss"] == pytest.approx(loss, abs=1e-5)


def train_messages(grid: InProcessGrid, server_round: int = 1) -> list[Message]:
    config = ConfigRecord({"server-round": server_round})
    content = RecordDict({"arrays": initial_arrays(), "config": config})
    return [Message(content, node, "train") for node in grid.get_node_ids()]
