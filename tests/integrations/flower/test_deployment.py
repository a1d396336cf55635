"""End to end on Flower's deployment engine: a SuperLink and three SuperNodes as processes.

The test starts ``flower-superlink`` and three ``flower-supernode`` processes on 127.0.0.1
(free ports, insecure loopback, no runtime dependency installation, no telemetry, no
update check, ``FLWR_HOME`` in a temp dir), submits ``examples/flower_app`` with
``flwr run``, and lets Flower's FedAvg run two rounds through :class:`SecAggGrid`. In round
2 the third node's ClientApp announces (marker file) that it received the masked-input
stage; the test then kills that SuperNode's whole process group, so the node vanishes
after sharing its keys and before sending its masked input. The ServerApp writes its
round reports; the test checks that round 1 is the weighted mean of all three clients and
round 2 that of exactly the two survivors, recomputed from the clients' deterministic
inputs. Every process group is killed in teardown; a hard timeout bounds the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
APP_DIR = REPO / "examples" / "flower_app"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(APP_DIR))
from secagg_flower_app.task import expected_mean  # noqa: E402

pytestmark = pytest.mark.timeout(300)

STAGE_TIMEOUT = 30.0  # a healthy stage takes ~5 s (SuperNodes poll every 3 s); margin for load
READY_DEADLINE = 60.0
RUN_DEADLINE = 220.0
VICTIM = 2  # partition id of the node that vanishes


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
    every descendant it sees, by (pid, start time), and ends those too.
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
        frontier = [p.pid for p in self.procs.values()]
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
        """SIGTERM every tracked group, then SIGKILL whatever is left, by pid."""
        self.track()
        for pgid in {group for group, _ in self.seen.values()}:
            if pgid in self.seen or any(p.pid == pgid for p in self.procs.values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGTERM)
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


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deploy = Deployment(tmp_path)
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


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_secure_fedavg_on_superlink_and_supernodes_with_a_node_killed(
    deployment: Deployment,
) -> None:
    link_port = free_port()
    deployment.start("superlink", [
        str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1",
        "--port", str(link_port), "--disable-runtime-dependency-installation",
    ])
    wait_for("the SuperLink", lambda: port_open(link_port), READY_DEADLINE,
             deployment.diagnostics)

    markers = deployment.root / "markers"
    markers.mkdir()
    for partition in range(3):
        config = f"partition-id={partition}"
        if partition == VICTIM:
            config += f' drop-round=2 drop-stage=2 marker-dir="{markers}"'
        deployment.start(f"supernode{partition}", [
            str(BIN / "flower-supernode"), "--insecure", "--superlink",
            f"127.0.0.1:{link_port}", "--host", "127.0.0.1", "--port", str(free_port()),
            "--max-wait-time", "60", "--node-config", config,
        ])
    node_of: dict[int, int] = {}
    for partition in range(3):
        match = wait_for(
            f"SuperNode {partition} to register",
            lambda p=partition: re.search(r"SuperNode ID: (\d+)",
                                          deployment.log_text(f"supernode{p}")),
            READY_DEADLINE, deployment.diagnostics)
        node_of[partition] = int(match.group(1))

    (deployment.home / "config.toml").write_text(
        '[superlink]\ndefault = "e2e"\n\n[superlink.e2e]\n'
        f'address = "127.0.0.1:{link_port}"\ninsecure = true\n', encoding="utf-8")
    result_path = deployment.root / "result.json"
    run = subprocess.run(
        [str(BIN / "flwr"), "run", str(APP_DIR), "e2e", "--format", "json", "--run-config",
         f'result-path="{result_path}" stage-timeout={STAGE_TIMEOUT} min-nodes=3'],
        env=deployment.env, cwd=deployment.root, capture_output=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
    started = json.loads(run.stdout)
    assert started["success"], started
    deployment.track()

    victim = node_of[VICTIM]
    wait_for("the victim to reach round 2's masked-input stage",
             lambda: (markers / f"dropped-{victim}").exists(), RUN_DEADLINE,
             deployment.diagnostics)
    deployment.kill(f"supernode{VICTIM}")
    deployment.procs[f"supernode{VICTIM}"].wait(timeout=10)

    deployment.track()
    wait_for("the ServerApp's report", result_path.exists, RUN_DEADLINE,
             deployment.diagnostics)
    # The harness saw Flower's helpers (SuperExecs, ServerApp), so teardown can end them.
    assert len(deployment.seen) > len(deployment.procs)
    report = json.loads(result_path.read_text(encoding="utf-8"))
    rounds = report["rounds"]
    assert len(rounds) == 2, report

    everyone = {node_of[p] for p in range(3)}
    survivors = [p for p in range(3) if p != VICTIM]
    for entry, partitions in ((rounds[0], [0, 1, 2]), (rounds[1], survivors)):
        assert entry["aborted"] is None, entry
        assert set(entry["included_nodes"]) == {node_of[p] for p in partitions}, entry
        mean, weight, loss = expected_mean(partitions, entry["round"])
        for name, values in mean.items():
            np.testing.assert_allclose(np.array(entry["arrays"][name]), values, atol=1e-5)
        assert entry["total_weight"] == pytest.approx(weight, rel=1e-6)
        assert entry["metrics"]["train_loss"] == pytest.approx(loss, abs=1e-5)
    assert not rounds[0]["excluded_nodes"]
    assert set(map(int, rounds[1]["excluded_nodes"])) == everyone - {node_of[p] for p in
                                                                      survivors}
    assert "no reply in stage 2" in rounds[1]["excluded_nodes"][str(victim)]
    final_mean, _, _ = expected_mean(survivors, 2)
    for name, values in final_mean.items():
        np.testing.assert_allclose(np.array(report["final_arrays"][name]), values, atol=1e-5)
