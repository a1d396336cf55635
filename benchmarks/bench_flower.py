"""Flower integration: what the transport layer costs on top of the protocol.

Run: ``.venv/bin/python -m benchmarks.bench_flower [--quick] [--json PATH]``.

One secure FedAvg round of n clients with an m-parameter model, through ``run_secure_round``
and real ClientApps behind the secagg mod, on :class:`InProcessGrid` (no copies: the
SuperLink's network and polling are not measured, only our layer and the protocol). It is
compared, side by side in the same run, with its two floors:

* protocol: the bare sans-I/O Server and Clients on already encoded vectors, messages
  through bytes (what the cryptography costs, with no Flower at all);
* plain: the same Flower round without secure aggregation (the ClientApps' replies
  averaged in clear: what Flower's message handling costs).

``overhead = flower / (protocol + plain)``: 1.0 would mean the integration adds nothing
(model layout, fixed-point encoding, envelopes, and the client state carried across
ClientApp processes through ``context.state`` at every stage). ``state`` is the largest
client state stored between stages. ``--quick`` runs one small case in seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.task_identity import TaskIdentity

from benchmarks.common import bench_parser, write_json
from secagg.encoding import FixedPoint
from secagg.integrations.flower import (
    ClientPolicy,
    SecAggSettings,
    default_threshold,
    make_secagg_mod,
)
from secagg.integrations.flower.client_mod import STATE_KEY
from secagg.integrations.flower.server import run_secure_round
from secagg.integrations.flower.testing import InProcessGrid
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.server import Server


@dataclass(frozen=True)
class Case:
    clients: int
    length: int
    degree: int | None = None
    dropouts: int = 0


@dataclass
class Row:
    clients: int
    length: int
    degree: int | None
    dropouts: int
    protocol_s: float
    plain_s: float
    flower_s: float
    overhead: float
    state_bytes: int
    upload_bytes: int


def model(length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(length)  # benchmark data, not secret
    return {"w": rng.uniform(-1, 1, size=length).astype(np.float32)}


def make_app(arrays: dict[str, np.ndarray], secure: bool) -> ClientApp:
    mods = [make_secagg_mod(ClientPolicy(min_clients=2))] if secure else []
    app = ClientApp(mods=mods)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return Message(RecordDict({
            "arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
            "metrics": MetricRecord({"num-examples": 10}),
        }), reply_to=msg)

    return app


def messages(grid: InProcessGrid, arrays: dict[str, np.ndarray]) -> list[Message]:
    content = RecordDict({
        "arrays": ArrayRecord({k: Array(np.zeros_like(v)) for k, v in arrays.items()}),
        "config": ConfigRecord({"server-round": 1}),
    })
    return [Message(content, node, "train") for node in grid.get_node_ids()]


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def protocol_floor(case: Case) -> None:
    """The bare protocol: one session on encoded vectors, every message through bytes."""
    n = case.clients
    fixed = FixedPoint.for_precision(bits=32, clip=4.0, max_clients=n, max_weight=100.0)
    vector = fixed.encode_weighted(model(case.length)["w"].astype(np.float64), 10.0)
    holders = (case.degree if case.degree is not None else n - 1) + 1
    config = ProtocolConfig.create(clients=range(1, n + 1),
                                   threshold=default_threshold(holders, "semi-honest"), bits=32,
                                   vector_length=case.length + 1, degree=case.degree)
    server = Server(config)
    clients = {c: Client(config, c, vector.copy()) for c in config.clients}
    dropped = set(range(n - case.dropouts + 1, n + 1))
    outgoing, stage = server.start(), 0
    while not server.done:
        replies = []
        for message in outgoing:
            if stage >= 2 and message.recipient in dropped:
                continue
            replies += clients[message.recipient].receive(message)
        outgoing = []
        for reply in replies:
            outgoing += server.receive_bytes(reply.to_bytes(), reply.sender)
        if not outgoing and not server.done:
            outgoing = server.close_round()
        stage += 1


def plain_round(case: Case, arrays: dict[str, np.ndarray]) -> None:
    """The same Flower round without secure aggregation: FedAvg of clear replies."""
    app = make_app(arrays, secure=False)
    grid = InProcessGrid.create(app, {i + 1: {} for i in range(case.clients)}, isolate=False)
    replies = grid.send_and_receive(messages(grid, arrays))
    FedAvg().aggregate_train(1, replies)


def flower_round(case: Case, arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    """One secure round through the integration; returns (max state bytes, upload bytes)."""
    app = make_app(arrays, secure=True)
    grid = InProcessGrid.create(app, {i + 1: {} for i in range(case.clients)}, isolate=False)
    for node in range(case.clients - case.dropouts + 1, case.clients + 1):
        grid.drop_from[node] = (1, 2)
    sizes = [0]

    def measure(node: int, stage: int, reply: Message) -> Message:
        record = grid.contexts[node].state.config_records.get(STATE_KEY)
        if record is not None:
            sizes.append(len(record["client"]))  # type: ignore[arg-type]
        return reply

    grid.tamper = measure
    report = run_secure_round(grid, messages(grid, arrays),
                              SecAggSettings(protocol="bonawitz" if case.degree is None
                                             else "secagg+", clip=4.0, max_weight=100.0,
                                             min_clients=2, degree=case.degree,
                                             stage_timeout=1e-3, poll_interval=1e-3,
                                             report_clipping=False, forward_logs=False))
    assert report.ok, report.aborted
    np.testing.assert_allclose(report.arrays["w"].numpy() if report.arrays else None,  # type: ignore[arg-type]
                               arrays["w"], atol=1e-4)
    return max(sizes), report.bytes_received // max(1, case.clients - case.dropouts)


def run_case(case: Case, repeat: int) -> Row:
    arrays = model(case.length)
    protocol_s, _ = best_of(repeat, lambda: protocol_floor(case))
    plain_s, _ = best_of(repeat, lambda: plain_round(case, arrays))
    flower_s, (state, upload) = best_of(repeat, lambda: flower_round(case, arrays))
    return Row(case.clients, case.length, case.degree, case.dropouts, protocol_s, plain_s,
               flower_s, flower_s / (protocol_s + plain_s), state, upload)


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "one small case, in seconds", "write the rows as JSON")
    args = parser.parse_args(argv)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    logging.getLogger("flwr").setLevel(logging.WARNING)  # FedAvg logs every aggregation
    logging.getLogger("secagg").setLevel(logging.WARNING)  # and secagg every stage
    if args.quick:
        cases, repeat = [Case(5, 10_000, dropouts=1)], 1
    else:
        cases, repeat = [Case(10, 100_000), Case(10, 100_000, dropouts=1),
                         Case(10, 1_000_000, dropouts=1), Case(50, 100_000, dropouts=5),
                         Case(100, 100_000, degree=10, dropouts=5)], 2
    header = (f"{'n':>4} {'m':>9} {'k':>4} {'drop':>4} {'protocol s':>11} {'plain s':>9} "
              f"{'flower s':>9} {'overhead':>8} {'state B':>10} {'upload B':>10}")
    print(header)
    rows = []
    for case in cases:
        row = run_case(case, repeat)
        rows.append(row)
        degree = "-" if row.degree is None else str(row.degree)
        print(f"{row.clients:>4} {row.length:>9} {degree:>4} {row.dropouts:>4} "
              f"{row.protocol_s:>11.3f} {row.plain_s:>9.3f} {row.flower_s:>9.3f} "
              f"{row.overhead:>7.2f}x {row.state_bytes:>10} {row.upload_bytes:>10}")
    if args.json:
        write_json(args.json, {"benchmark": "flower", "quick": args.quick,
                               "rows": [asdict(r) for r in rows]})


if __name__ == "__main__":
    main()
