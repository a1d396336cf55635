"""End to end on Flower's deployment engine: a SuperLink and SuperNodes as processes.

Each test starts ``flower-superlink`` and ``flower-supernode`` processes on 127.0.0.1
(free ports, insecure loopback, no runtime dependency installation, no telemetry, no
update check, ``FLWR_HOME`` in a temp dir), submits ``examples/flower_app`` with
``flwr run``, and lets Flower's FedAvg run through :class:`SecAggGrid`. A victim node's
ClientApp announces (marker file) that it received a chosen stage; the test then kills that
SuperNode's whole process group, so the node vanishes mid-round. The ServerApp writes its
round reports; the tests recompute the expected weighted means from the clients'
deterministic inputs. Every process is stopped in teardown; a hard timeout bounds each test.

1. semi-honest SecAgg+ (the default), two rounds, a node killed in round 2 after sharing
   its keys and before its masked input;
2. active mode (issue 15.6): an identity registry and one signing key per node, given as
   files; a fifth node holds a key that is not registered and is left out at
   identification (not fatal), and a registered node's ClientApp fails at the masked-input
   stage; the others' sum is exact and the report names both.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from secagg.integrations.flower import generate_identities
from tests.helpers.flower import (
    APP_DIR,
    BIN,
    Deployment,
    deployment_in,
    expected_mean,
    free_port,
    port_open,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)

STAGE_TIMEOUT = 30.0  # a healthy stage takes ~5 s (SuperNodes poll every 3 s); margin for load
READY_DEADLINE = 60.0
RUN_DEADLINE = 220.0
VICTIM = 2  # partition id of the node that vanishes


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with deployment_in(tmp_path) as deploy:
        yield deploy


def start_federation(deployment: Deployment, node_configs: list[str]) -> tuple[int, dict[int, int]]:
    """A SuperLink and one SuperNode per config; returns the port and partition -> node id."""
    link_port = free_port()
    deployment.start("superlink", [
        str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1",
        "--port", str(link_port), "--disable-runtime-dependency-installation",
    ])
    wait_for("the SuperLink", lambda: port_open(link_port), READY_DEADLINE,
             deployment.diagnostics)
    for partition, config in enumerate(node_configs):
        deployment.start(f"supernode{partition}", [
            str(BIN / "flower-supernode"), "--insecure", "--superlink",
            f"127.0.0.1:{link_port}", "--host", "127.0.0.1", "--port", str(free_port()),
            "--max-wait-time", "60", "--node-config", config,
        ])
    node_of: dict[int, int] = {}
    for partition in range(len(node_configs)):
        match = wait_for(
            f"SuperNode {partition} to register",
            lambda p=partition: re.search(r"SuperNode ID: (\d+)",
                                          deployment.log_text(f"supernode{p}")),
            READY_DEADLINE, deployment.diagnostics)
        node_of[partition] = int(match.group(1))
    (deployment.home / "config.toml").write_text(
        '[superlink]\ndefault = "e2e"\n\n[superlink.e2e]\n'
        f'address = "127.0.0.1:{link_port}"\ninsecure = true\n', encoding="utf-8")
    return link_port, node_of


def submit(deployment: Deployment, run_config: str) -> None:
    """``flwr run`` the example app (it returns once the run is submitted)."""
    run = subprocess.run(
        [str(BIN / "flwr"), "run", str(APP_DIR), "e2e", "--format", "json", "--run-config",
         run_config],
        env=deployment.env, cwd=deployment.root, capture_output=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
    started = json.loads(run.stdout)
    assert started["success"], started
    deployment.track()


def kill_at_marker(deployment: Deployment, markers: Path, partition: int, node: int) -> None:
    """Wait for the victim's marker, then kill its SuperNode's process group."""
    wait_for("the victim to reach its stage", lambda: (markers / f"dropped-{node}").exists(),
             RUN_DEADLINE, deployment.diagnostics)
    deployment.kill(f"supernode{partition}")
    deployment.procs[f"supernode{partition}"].wait(timeout=10)
    deployment.track()


def check_mean(entry: dict[str, object], partitions: list[int]) -> None:
    mean, weight, loss = expected_mean(partitions, int(entry["round"]))  # type: ignore[call-overload]
    arrays = entry["arrays"]
    assert isinstance(arrays, dict)
    for name, values in mean.items():
        np.testing.assert_allclose(np.array(arrays[name]), values, atol=1e-5)
    assert entry["total_weight"] == pytest.approx(weight, rel=1e-6)
    assert entry["metrics"]["train_loss"] == pytest.approx(loss, abs=1e-5)  # type: ignore[index]


def test_secure_fedavg_on_superlink_and_supernodes_with_a_node_killed(
    deployment: Deployment,
) -> None:
    markers = deployment.root / "markers"
    markers.mkdir()
    configs = [f"partition-id={p}" for p in range(3)]
    configs[VICTIM] += f' drop-round=2 drop-stage=3 marker-dir="{markers}"'
    _, node_of = start_federation(deployment, configs)
    result_path = deployment.root / "result.json"
    submit(deployment, f'result-path="{result_path}" stage-timeout={STAGE_TIMEOUT} min-nodes=3')
    kill_at_marker(deployment, markers, VICTIM, node_of[VICTIM])
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
        check_mean(entry, partitions)
    assert not rounds[0]["excluded_nodes"]
    assert set(map(int, rounds[1]["excluded_nodes"])) == everyone - {node_of[p] for p in
                                                                      survivors}
    assert "stage 3 (masked_input): no reply" in rounds[1]["excluded_nodes"][str(node_of[VICTIM])]
    final_mean, _, _ = expected_mean(survivors, 2)
    for name, values in final_mean.items():
        np.testing.assert_allclose(np.array(report["final_arrays"][name]), values, atol=1e-5)


def test_active_mode_with_a_registry_an_intruder_and_a_node_failing(
    deployment: Deployment,
) -> None:
    keys = deployment.root / "keys"
    generate_identities([f"node{p}" for p in range(4)], keys)
    generate_identities(["intruder"], deployment.root / "intruder")
    victim, intruder = 3, 4
    configs = [f'partition-id={p} secagg-signing-key="{keys}/node{p}.key" '
               f'secagg-registry="{keys}/registry.json"' for p in range(4)]
    configs.append(f'partition-id={intruder} '
                   f'secagg-signing-key="{deployment.root}/intruder/intruder.key"')
    _, node_of = start_federation(deployment, configs)
    result_path = deployment.root / "result.json"
    # The victim's ClientApp crashes at the masked-input stage (the SuperNode answers with
    # an error reply: no deadline has to pass; the test above kills a SuperNode instead).
    submit(deployment, f'result-path="{result_path}" stage-timeout={STAGE_TIMEOUT} '
                       f'min-nodes=4 num-server-rounds=1 mode="active" '
                       f'registry="{keys}/registry.json" drop-partition={victim} '
                       f'drop-round=1 drop-stage=3')
    wait_for("the ServerApp's report", result_path.exists, RUN_DEADLINE,
             deployment.diagnostics)
    (entry,) = json.loads(result_path.read_text(encoding="utf-8"))["rounds"]
    assert entry["aborted"] is None, entry
    assert "active" in entry["summary"]
    # Consistency check included: advertise, share, masked input, consistency, unmasking.
    assert entry["stages"] == 6, entry
    assert set(entry["included_nodes"]) == {node_of[p] for p in range(3)}, entry
    check_mean(entry, [0, 1, 2])
    excluded = entry["excluded_nodes"]
    assert set(excluded) == {str(node_of[victim]), str(node_of[intruder])}, entry
    assert "not in the identity registry" in excluded[str(node_of[intruder])]
    assert "stage 3 (masked_input): error reply" in excluded[str(node_of[victim])]
    assert entry["identities"][str(node_of[0])] == "registered as 'node0'"
