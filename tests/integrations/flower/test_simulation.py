"""End to end on Flower's simulation engine (flwr 1.42, Ray, ``flwr[simulation]``).

``flwr run`` on a federation whose address is ``":local:"`` starts a background SuperLink
in simulation mode (detached: it outlives ``flwr run``) which runs the ClientApps through
Ray. The test gives that SuperLink free ports and a private ``FLWR_HOME``, disables runtime
dependency installation, telemetry, update checks and Ray's usage stats (nothing is
downloaded), runs one round over five simulated SuperNodes with no deadlines
(``train-timeout=0 stage-timeout=0``: an engine that runs one ClientApp at a time must not
time nodes out) and a dropout injected through the run config (partition 3's ClientApp
crashes at the masked-input stage: the engine answers with an error reply). It then finds
the background SuperLink by PID (its command line names our ``FLWR_HOME``) and stops it
and everything it started. One small run keeps it to about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.flower import (
    APP_DIR,
    BIN,
    Deployment,
    deployment_in,
    expected_mean,
    free_port,
    pids_mentioning,
)

pytestmark = pytest.mark.timeout(360)

NODES, DROPPED = 5, 3


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with deployment_in(tmp_path) as deploy:
        yield deploy


def test_simulation_engine_with_a_dropout_and_no_deadlines(deployment: Deployment) -> None:
    home = deployment.home
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n',
        encoding="utf-8")
    env = {**deployment.env,
           "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
           "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
           "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    result_path = deployment.root / "result.json"
    run_config = (f'num-server-rounds=1 min-nodes={NODES} train-timeout=0 stage-timeout=0 '
                  f'drop-partition={DROPPED} drop-round=1 drop-stage=3 '
                  f'result-path="{result_path}"')
    try:
        run = subprocess.run(
            [str(BIN / "flwr"), "run", str(APP_DIR), "local", "--stream",
             "--federation-config", f"num-supernodes={NODES}", "--run-config", run_config],
            env=env, cwd=deployment.root, capture_output=True, text=True, timeout=300)
    finally:
        # The background SuperLink, by PID: stopped (with what it started) in teardown.
        for pid in pids_mentioning(str(home)):
            deployment.adopt(f"local-superlink-{pid}", pid)
    assert deployment.adopted, "the background SuperLink was not found"
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (entry,) = json.loads(result_path.read_text(encoding="utf-8"))["rounds"]
    assert entry["aborted"] is None, entry
    assert len(entry["included_nodes"]) == NODES - 1, entry
    ((dropped, reason),) = entry["excluded_nodes"].items()
    assert "stage 3 (masked_input): error reply" in reason, reason
    assert entry["stage_failures"][dropped][0].startswith("stage 3 (masked_input)")
    survivors = [p for p in range(NODES) if p != DROPPED]
    mean, weight, loss = expected_mean(survivors, 1)
    for name, values in mean.items():
        np.testing.assert_allclose(np.array(entry["arrays"][name]), values, atol=1e-5)
    assert entry["total_weight"] == pytest.approx(weight, rel=1e-6)
    assert entry["metrics"]["train_loss"] == pytest.approx(loss, abs=1e-5)
    assert entry["clipped"] == {"arrays": 0.0, "metrics": 0.0}
    # secagg's log lines are in the stream, next to Flower's.
    out = run.stdout
    assert "secagg: stage 3 (masked_input): 5 of 5 nodes answered" in out, out[-4000:]
    assert f"secagg: aggregated {NODES - 1} of {NODES} nodes" in out
    assert "Received 1 results and 1 failures" in out
    assert os.environ.get("FLWR_HOME") != str(home)  # the test's home is private
