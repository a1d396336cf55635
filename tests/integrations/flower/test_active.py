"""Active (malicious-server) mode over Flower, in process: identities, identification, and
the ConsistencyCheck round, with real ClientApps behind the secagg mod."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flwr.app import Context, Message

from secagg.errors import ConfigurationError, MaliciousRequestError
from secagg.integrations.flower import (
    ClientPolicy,
    IdentityRegistry,
    NodeKeys,
    SecAggGrid,
    SecAggSettings,
    generate_identities,
    run_secure_round,
)
from secagg.integrations.flower.bonawitz import BonawitzOverFlower
from secagg.integrations.flower.client_mod import STATE_KEY
from secagg.integrations.flower.identity import load_signing_key
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.flower.node_keys import REGISTRY_KEY, SIGNING_KEY_KEY
from secagg.integrations.flower.testing import IDENTIFY_STAGE, InProcessGrid
from secagg.integrations.flower.wire import FixedPointParams, SessionSetup
from secagg.signing import SigningKey
from tests.helpers.flower import (
    assert_no_secret_in,
    bonawitz_params,
    check_report,
    make_app,
    make_grid,
    node_of,
    server_task_identity,
    train_messages,
)


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


NAMES = [f"node{p}" for p in range(6)]


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("identities")
    generate_identities(NAMES, directory)
    return directory


def node_configs(key_dir: Path, partitions: range, *, stranger: int | None = None,
                 stranger_key: Path | None = None) -> dict[int, dict[str, object]]:
    """Node configs naming each node's key file and the registry (``stranger`` gets
    ``stranger_key``, a key outside the registry)."""
    configs: dict[int, dict[str, object]] = {}
    for p in partitions:
        key = stranger_key if p == stranger else key_dir / f"node{p}.key"
        configs[node_of(p)] = {"partition-id": p, SIGNING_KEY_KEY: str(key),
                               REGISTRY_KEY: str(key_dir / "registry.json")}
    return configs


def active_settings(key_dir: Path, **changes: object) -> SecAggSettings:
    base = SecAggSettings(protocol="bonawitz", mode="active", clip=4.0, max_weight=100.0,
                          identities=IdentityRegistry.load(key_dir / "registry.json"),
                          secure_metrics=("train_loss",), train_timeout=0.02,
                          stage_timeout=0.02, poll_interval=0.01)
    return dataclasses.replace(base, **changes)


def test_key_files_round_trip_and_stay_secret(key_dir: Path) -> None:
    registry = IdentityRegistry.load(key_dir / "registry.json")
    assert len(registry) == 6 and repr(registry) == "IdentityRegistry(6 nodes)"
    name, key = load_signing_key(key_dir / "node3.key")
    assert name == "node3" and registry.keys["node3"] == key.verify_key
    assert (key_dir / "node3.key").stat().st_mode & 0o077 == 0  # owner only
    keys = NodeKeys.from_node_config({SIGNING_KEY_KEY: str(key_dir / "node3.key")})
    assert key.private_bytes().hex() not in repr(keys) and "node3" in repr(keys)
    with pytest.raises(ConfigurationError):
        generate_identities(["node3"], key_dir)  # never overwrites a key
    for bad in ({"version": 1, "nodes": {"a": "00" * 31}}, {"version": 2, "nodes": {}},
                {"version": 1, "nodes": {"a": "11" * 32, "b": "11" * 32}}, [1]):
        path = key_dir / "bad.json"
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ConfigurationError):
            IdentityRegistry.load(path)


def test_active_mode_runs_the_consistency_check_and_sums_exactly(key_dir: Path) -> None:
    grid = InProcessGrid.create(make_app(), node_configs(key_dir, range(5)))
    secure = SecAggGrid(grid, active_settings(key_dir))
    for server_round in (1, 2):
        secure.send_and_receive(train_messages(grid, server_round))
    first = secure.reports[0]
    for server_round, report in enumerate(secure.reports, start=1):
        check_report(report, range(5), server_round)
        # advertise, share, share check, masked input, consistency, unmasking
        assert report.stages == 6
        assert "active" in report.summary
    assert first.identities[node_of(2)] == "registered as 'node2'"
    # Identified once per SuperNode life: round 2 has no identification stage.
    assert len(grid.batches) == 1 + 6 + 6


def test_a_node_with_an_unregistered_key_is_left_out_not_fatal(key_dir: Path,
                                                                 tmp_path: Path) -> None:
    generate_identities(["intruder"], tmp_path)
    configs = node_configs(key_dir, range(7), stranger=5, stranger_key=tmp_path / "intruder.key")
    # Node 5 also holds the registry: it notices its key is not in it and says so.
    # Node 6 holds only an unregistered key: the server's check refuses it.
    configs[node_of(6)] = {"partition-id": 6, SIGNING_KEY_KEY: str(tmp_path / "intruder.key")}
    grid = InProcessGrid.create(make_app(), configs)
    report = run_secure_round(grid, train_messages(grid), active_settings(key_dir))
    check_report(report, range(5), 1)
    assert "not in its own registry" in report.excluded_nodes[node_of(5)]
    reason = report.excluded_nodes[node_of(6)]
    assert reason.startswith("identification") and "not in the identity registry" in reason
    assert node_of(5) not in report.client_of_node and node_of(6) not in report.client_of_node


def test_a_node_without_keys_or_with_a_forged_proof_is_left_out(key_dir: Path) -> None:
    configs = node_configs(key_dir, range(6))
    configs[node_of(4)] = {"partition-id": 4}  # no key files at all
    grid = InProcessGrid.create(make_app(), configs)
    answers: dict[int, Message] = {}

    def forge(node: int, stage: int, reply: Message) -> Message:
        if stage != IDENTIFY_STAGE:
            return reply
        answers[node] = reply
        if node == node_of(5):
            # Node 5 replays node 0's answer (a registered key and a valid signature), but
            # the proof covers node 0's id and challenge: it proves nothing for node 5.
            return Message(metadata=reply.metadata, content=answers[node_of(0)].content)
        return reply

    grid.tamper = forge
    report = run_secure_round(grid, train_messages(grid), active_settings(key_dir))
    check_report(report, range(4), 1)
    assert "no signing key" in report.excluded_nodes[node_of(4)]
    assert "signature does not verify" in report.excluded_nodes[node_of(5)]


def test_active_mode_tolerates_dropouts(key_dir: Path) -> None:
    # Before its masked input, a node leaves the sum; after it (the consistency check),
    # it stays in the sum and its failure is recorded.
    for stage, included in ((1, range(4)), (4, range(5))):
        grid = InProcessGrid.create(make_app(), node_configs(key_dir, range(5)))
        grid.drop_from[node_of(4)] = (1, stage)
        report = run_secure_round(grid, train_messages(grid), active_settings(key_dir))
        check_report(report, included, 1)
        failure = report.stage_failures[node_of(4)][0]
        assert failure.startswith(f"stage {stage} (") and "no reply" in failure
        assert (node_of(4) in report.excluded_nodes) == (stage == 1)


def setup_for(client_id: int, identities: list[bytes], mode: str = "active") -> SessionSetup:
    from secagg_flower_app.task import initial_arrays

    return SessionSetup(
        session_id=bytes(range(16)), protocol="bonawitz", n=len(identities),
        client_id=client_id, bits=32,
        fixed_point=FixedPointParams(4.0, 1000.0, len(identities), 10.0),
        layout=ArrayLayout.from_record(initial_arrays()), weighted_by_key="num-examples",
        weighted=True,
        params=bonawitz_params(len(identities), None, mode,
                               identities if mode == "active" else None),
    )


def test_clients_refuse_identities_the_registry_does_not_vouch_for(key_dir: Path) -> None:
    protocol = BonawitzOverFlower("bonawitz", sparse=False)
    keys = NodeKeys.from_node_config(node_configs(key_dir, range(1))[node_of(0)])
    registry = IdentityRegistry.load(key_dir / "registry.json")
    mine = keys.signing_key.verify_key  # type: ignore[union-attr]
    others = [registry.keys[f"node{p}"] for p in range(1, 4)]
    policy = ClientPolicy()
    assert protocol.client_config(setup_for(1, [mine, *others]), keys, policy).mode == "active"
    sybil = SigningKey.generate().verify_key  # a client the server made up
    for setup, reason in (
        (setup_for(1, [mine, others[0], others[1], sybil]), "outside the registry"),
        (setup_for(1, [mine, others[0], others[0], others[1]]), "twice"),
        (setup_for(2, [mine, *others]), "another identity"),
    ):
        with pytest.raises(MaliciousRequestError, match=reason):
            protocol.client_config(setup, keys, policy)
    with pytest.raises(MaliciousRequestError, match="requires active"):
        protocol.client_config(setup_for(1, [mine, *others], mode="semi-honest"), keys,
                               ClientPolicy(require_active=True))
    with pytest.raises(ConfigurationError, match="signing key and registry"):
        protocol.client_config(setup_for(1, [mine, *others]), NodeKeys(), policy)


def test_active_settings_need_a_registry() -> None:
    with pytest.raises(ConfigurationError, match="identities"):
        SecAggSettings(mode="active")
    with pytest.raises(ConfigurationError, match="no active mode"):
        from secagg.he.threshold_paillier import deal_threshold_keys

        public, _ = deal_threshold_keys(512, threshold=1, holders=1)
        SecAggSettings(protocol="threshold-paillier", mode="active",
                       identities=IdentityRegistry(), protocol_options={"public_key": public})


def test_node_keys_from_a_callable_and_active_sparse_graph(key_dir: Path) -> None:
    keys = {node_of(p): NodeKeys.from_node_config(node_configs(key_dir, range(6))[node_of(p)])
            for p in range(6)}
    app = make_app(keys=lambda context: keys[context.node_id])
    grid = make_grid(range(6), app)
    report = run_secure_round(grid, train_messages(grid),
                              active_settings(key_dir, protocol="secagg+", degree=4))
    check_report(report, range(6), 1)
    assert "SecAgg+ graph k=4" in report.summary and report.stages == 6
    assert Context  # the callable receives the node's Context


def test_active_mode_logs_hold_no_key(key_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    grid = InProcessGrid.create(make_app(), node_configs(key_dir, range(5)))
    grid.drop_from[node_of(4)] = (1, 4)
    states: list[bytes] = []

    def keep_states(node: int, stage: int, reply: Message) -> Message:
        record = grid.contexts[node].state.config_records.get(STATE_KEY)
        if record is not None and isinstance(record["client"], bytes) and record["client"]:
            states.append(record["client"])
        return reply

    grid.tamper = keep_states
    with caplog.at_level(logging.DEBUG, logger="secagg"):
        report = run_secure_round(grid, train_messages(grid), active_settings(key_dir))
    assert report.ok and states
    assert "identified: registered as 'node0'" in caplog.text
    assert "stage 4 (consistency_check)" in caplog.text
    signing = [load_signing_key(key_dir / f"node{p}.key")[1].private_bytes() for p in range(5)]
    assert_no_secret_in(caplog.text, signing + states)
