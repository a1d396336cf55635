"""``examples/flower_app/run_local.sh``: a SuperLink and SuperNodes on 127.0.0.1, ready
before ``flwr run``, and every process stopped afterwards (also when the run fails).

The script is run as a user would (``bash run_local.sh`` with environment variables); the
failing run uses ``ACTIVE=1`` so that the key generation is exercised too (active mode on
the deployment engine is tested in ``test_deployment.py``).
Leftover processes are found through their environment: every process the script starts
(and every process those start) inherits this test's private ``FLWR_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.flower import APP_DIR, BIN, process_table

pytestmark = pytest.mark.timeout(420)

SCRIPT = APP_DIR / "run_local.sh"


def pids_with_env(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (e.g. ``FLWR_HOME=...``)."""
    found = []
    for pid in process_table():
        try:
            environ = (Path("/proc") / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(pid)
    return found


def run_script(tmp_path: Path, run_config: str, *, nodes: int = 3, active: bool = False,
               timeout: float = 360) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "flwr_home"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "FLWR_HOME": str(home), "NODES": str(nodes), "ACTIVE": "1" if active else "0",
           "RUN_CONFIG": run_config,
           "TMPDIR": str(tmp_path), "PYTHON": str(BIN / "python")}
    marker = f"FLWR_HOME={home}"
    try:
        return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)
    finally:
        end = time.monotonic() + 10  # the script's trap has run; let the kernel reap
        while pids_with_env(marker) and time.monotonic() < end:
            time.sleep(0.2)
        leftover = pids_with_env(marker)
        for pid in leftover:  # never leave them running, whatever the assertion says
            os.kill(pid, 9)
        assert not leftover, f"run_local.sh left processes behind: {leftover}"


def test_run_local_runs_the_app_and_stops_everything(tmp_path: Path) -> None:
    result_path = tmp_path / "result.json"
    run = run_script(tmp_path, f'num-server-rounds=1 result-path="{result_path}"')
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (entry,) = json.loads(result_path.read_text(encoding="utf-8"))["rounds"]
    assert entry["aborted"] is None and len(entry["included_nodes"]) == 3, entry
    # secagg's own log lines reach `flwr run --stream`.
    assert "secagg: stage 4 (unmasking): 3 of 3 nodes answered" in run.stdout
    assert "Received 1 results and 0 failures" in run.stdout
    assert not list(tmp_path.glob("secagg-flower.*"))  # the work directory is removed


def test_run_local_stops_everything_when_the_run_fails(tmp_path: Path) -> None:
    # ACTIVE=1 also makes the keys and hands them to the nodes before the run fails.
    run = run_script(tmp_path, "no-such-key=1", nodes=1, active=True)
    assert run.returncode != 0
    assert "logs kept in" in run.stderr  # kept for the user to read
