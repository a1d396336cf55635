"""Shared setup of the Flower tests (a plain module: conftest.py is the lead's).

In-process helpers (:func:`make_app`, :func:`make_grid`, :func:`train_messages`,
:func:`check_report`) run the example app's deterministic "training"
(``examples/flower_app/secagg_flower_app/task.py``) behind the secagg mod, so that a test
can recompute the exact weighted mean over any set of nodes.

Process helpers (:class:`Deployment`, :func:`wait_for`, :func:`free_port`) start Flower's
SuperLink / SuperNodes / ``flwr`` on 127.0.0.1 for the deployment and simulation engine
tests and stop every process they (and Flower on their behalf) started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
BIN = Path(sys.executable).parent
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


def assert_no_secret_in(text: str, secrets: list[bytes], window: int = 12) -> None:
    """No ``window``-byte piece of any secret appears in ``text`` (hex or escaped bytes)."""
    lowered = text.lower()
    for secret in secrets:
        for start in range(0, max(1, len(secret) - window + 1), window // 2):
            piece = secret[start:start + window]
            assert piece.hex() not in lowered
            assert repr(piece)[2:-1] not in text


# -- processes of a local federation -------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], deadline: float,
              diagnostics: Callable[[], str]) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with diagnostics at the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{diagnostics()}")


def process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, process group, start time) of every live process (from /proc)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is the state; then ppid, pgrp, session...; starttime is field 22.
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[19]))
    return table


class Deployment:
    """The processes of one local federation and everything they spawn.

    Each started process leads its own process group; Flower starts some helpers in new
    sessions (the SuperLink's SuperExec and its ServerApp), so the deployment also tracks
    every descendant it sees, by (pid, start time), and ends those too. A process that
    ``flwr`` detached (the simulation engine's background SuperLink) is adopted by PID
    (:meth:`adopt`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "flwr_home"
        self.home.mkdir()
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLWR_HOME": str(self.home),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.seen: dict[int, tuple[int, int]] = {}  # pid -> (group, start time)
        self.adopted: dict[str, int] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                    cwd=self.root, start_new_session=True)
        self.procs[name], self.logs[name] = proc, log
        self.track()
        return proc

    def track(self) -> None:
        """Remember every live descendant of the started processes."""
        table = process_table()
        frontier = [p.pid for p in self.procs.values()] + list(self.adopted.values())
        for pid in frontier:
            if pid in table:
                self.seen.setdefault(pid, (table[pid][1], table[pid][2]))
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in self.seen:
                    self.seen[child] = (table[child][1], table[child][2])
                    frontier.append(child)

    def adopt(self, name: str, pid: int) -> None:
        """Track a process started on our behalf but not by us (and its descendants)."""
        table = process_table()
        if pid in table:
            self.seen.setdefault(pid, (table[pid][1], table[pid][2]))
            self.adopted[name] = pid
        self.track()

    def alive(self) -> list[int]:
        """The tracked processes still running (same pid and start time)."""
        table = process_table()
        return [pid for pid, (_, start) in self.seen.items()
                if pid in table and table[pid][2] == start]

    def log_text(self, name: str) -> str:
        return self.logs[name].read_text(encoding="utf-8", errors="replace")

    def diagnostics(self) -> str:
        parts = []
        for name in self.logs:
            lines = self.log_text(name).splitlines()[-40:]
            parts.append(f"--- {name} (exit {self.procs[name].poll()}) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process group ``name`` leads (the process and what it spawned)."""
        self.track()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, sig)

    def stop_all(self) -> None:
        """SIGTERM every tracked group (and adopted process), then SIGKILL whatever is
        left, by pid."""
        self.track()
        for pgid in {group for group, _ in self.seen.values()}:
            if pgid in self.seen or any(p.pid == pgid for p in self.procs.values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGTERM)
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 5
        while self.alive() and time.monotonic() < end:
            for proc in self.procs.values():
                proc.poll()  # reap our direct children
            time.sleep(0.2)
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0




def cmdline(pid: int) -> str:
    """A live process's command line ('' if it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (e.g. a private FLWR_HOME)."""
    return [pid for pid in process_table() if pid != os.getpid() and text in cmdline(pid)]


@contextmanager
def deployment_in(root: Path) -> Iterator[Deployment]:
    """A :class:`Deployment` in ``root`` whose processes are all gone on exit (asserted)."""
    deploy = Deployment(root)
    try:
        yield deploy
    finally:
        deploy.stop_all()
        # Orphaned grandchildren are reaped by init once dead; give them a moment.
        end = time.monotonic() + 10
        while deploy.alive() and time.monotonic() < end:
            time.sleep(0.2)
        leftover = deploy.alive()
        assert not leftover, f"processes left behind: {leftover}"
