"""Threshold CKKS over Flower, in process: a committee drawn per session generates the key,
every node encrypts, t members decrypt the exact weighted mean (issue 16.5); the client
checks what the setup asks; no secret reaches a log (issue 16.7)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from flwr.serverapp.strategy import FedAvg

from secagg.errors import ConfigurationError, DecodeError, MaliciousRequestError
from secagg.integrations.flower import (
    ClientPolicy,
    NodeKeys,
    SecAggGrid,
    SecAggSettings,
    flower_protocol_names,
    run_secure_round,
)
from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
from secagg.integrations.flower.protocols import flower_protocol
from secagg.integrations.flower.threshold_ckks import ThresholdCkksOverFlower, committee_for
from secagg.integrations.flower.wire import FixedPointParams, SessionSetup
from secagg.protocols.threshold_ckks.client import ThresholdCkksClient
from tests.helpers.flower import (
    check_report,
    initial_arrays,
    make_grid,
    node_of,
    server_task_identity,
    train_messages,
)
from tests.helpers.secrets_in_logs import SecretHarvest, captured_logs, leaks


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


def settings(**changes: object) -> SecAggSettings:
    base = SecAggSettings(
        protocol="threshold-ckks", clip=4.0, max_weight=100.0, secure_metrics=("train_loss",),
        train_timeout=0.05, stage_timeout=0.05, poll_interval=0.01)
    return dataclasses.replace(base, **changes)


def test_fedavg_with_a_threshold_ckks_committee() -> None:
    assert "threshold-ckks" in flower_protocol_names()
    assert isinstance(flower_protocol("threshold-ckks"), ThresholdCkksOverFlower)
    grid = make_grid(range(6))
    secure = SecAggGrid(grid, settings(degree=3))
    FedAvg(fraction_evaluate=0.0, min_available_nodes=6).start(
        grid=secure, initial_arrays=initial_arrays(), num_rounds=2)
    assert len(secure.reports) == 2
    for server_round, report in enumerate(secure.reports, start=1):
        check_report(report, range(6), server_round)
        assert report.protocol == "threshold-ckks"
        assert "committee of 3 of 6 nodes, t=2" in report.summary
        assert report.stages == 5


def test_members_dropping_before_the_input_and_at_decryption() -> None:
    # Every node is a member (degree = n), t = 2: one vanishes before its input (it is
    # left out of the sum and never decrypts), one after it (its input counts, 2 of the
    # 4 key holders still decrypt).
    grid = make_grid(range(4))
    grid.drop_from[node_of(1)] = (1, 3)
    grid.drop_from[node_of(2)] = (1, 4)
    report = run_secure_round(grid, train_messages(grid), settings(degree=4, threshold=2))
    check_report(report, [0, 2, 3], 1)
    assert set(report.excluded_nodes) == {node_of(1)}
    # With t = 3 the same drops leave two key holders: the round aborts, with the reason.
    grid = make_grid(range(4))
    grid.drop_from[node_of(1)] = (1, 3)
    grid.drop_from[node_of(2)] = (1, 4)
    report = run_secure_round(grid, train_messages(grid), settings(degree=4, threshold=3))
    assert not report.ok and "abort" in (report.aborted or "")


def test_a_node_outside_the_committee_vanishing_before_its_upload() -> None:
    # The committee is drawn at random: the first node addressed only in the input stage
    # (stage 3) is a non-member; its reply is lost, so it is left out of the sum.
    grid = make_grid(range(5))
    members: set[int] = set()
    lost: list[int] = []

    def lose_a_non_members_upload(node: int, stage: int, reply: Any) -> Any:
        if stage == 0:
            members.add(node)
        elif stage == 3 and node not in members and not lost:
            lost.append(node)
            return None
        return reply

    grid.tamper = lose_a_non_members_upload
    report = run_secure_round(grid, train_messages(grid), settings(degree=2, threshold=2))
    assert len(members) == 2 and len(lost) == 1
    check_report(report, [p for p in range(5) if node_of(p) != lost[0]], 1)
    assert set(report.excluded_nodes) == set(lost)


def test_committee_sizes_fractions_and_refused_settings() -> None:
    assert committee_for(settings(), 12) == (5, 3)
    assert committee_for(settings(), 2) == (2, 2)
    assert committee_for(settings(degree=0.5, threshold=0.5), 6) == (3, 2)
    assert committee_for(settings(degree=4, threshold=1.0), 9) == (4, 4)
    with pytest.raises(ConfigurationError, match="committee of 7 among 6"):
        committee_for(settings(degree=7), 6)
    with pytest.raises(ConfigurationError, match="threshold 4 for a committee of 3"):
        committee_for(settings(degree=0.5, threshold=4), 6)
    for bad, match in (
        ({"protocol_options": {"public_key": 1}}, "no protocol_options"),
        ({"bits": 62}, "at most 60-bit"),
        ({"degree": 2, "threshold": 3}, "above the committee size"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            settings(**bad)
    active = SimpleNamespace(mode="active", protocol_options={}, bits=32, degree=None,
                             threshold=None)
    with pytest.raises(ConfigurationError, match="no active mode"):
        ThresholdCkksOverFlower().check_settings(active)  # type: ignore[arg-type]
    # The committee is drawn at random per session, among the sampled nodes.
    protocol = ThresholdCkksOverFlower()
    nodes = [node_of(p) for p in range(8)]
    committees = {
        protocol.plan(settings(degree=3), session_id=bytes([i]) * 16, nodes=nodes,
                      identities={}, vector_length=6).config.committee
        for i in range(12)
    }  # fmt: skip
    assert len(committees) > 1 and all(len(c) == 3 for c in committees)


def _setup(params: bytes, *, client_id: int = 1, n: int = 4, bits: int = 32) -> SessionSetup:
    return SessionSetup(bytes(16), "threshold-ckks", n, client_id, bits,
                        FixedPointParams(4.0, 100.0, 4, 100.0),
                        ArrayLayout((ArraySpec("w", (11,), "<f4"),)), "n", True, params)


def test_clients_check_the_setup() -> None:
    protocol = ThresholdCkksOverFlower()
    plan = protocol.plan(settings(degree=3), session_id=bytes(16),
                         nodes=[node_of(p) for p in range(4)], identities={}, vector_length=12)
    keys, policy = NodeKeys(), ClientPolicy(min_clients=3)
    config = protocol.client_config(_setup(plan.params), keys, policy)
    assert config == plan.config
    committee, threshold, min_clients, scheme = msgpack.unpackb(plan.params)
    assert (committee, threshold, min_clients) == (list(plan.config.committee), 2, 3)

    def params(*fields: Any) -> bytes:
        return bytes(msgpack.packb(list(fields), use_bin_type=True))

    with pytest.raises(MaliciousRequestError, match="policy needs 5"):
        protocol.client_config(_setup(plan.params), keys, ClientPolicy(min_clients=5))
    for bad in (
        b"\x93\x01",  # truncated
        b"\xc1",  # not msgpack
        params(committee, threshold, min_clients),  # a field missing
        params(committee, 4, min_clients, scheme),  # t above the committee
        params([1, 2, 9], threshold, min_clients, scheme),  # a member that is no client
        params(committee, True, min_clients, scheme),  # a bool for an int
        params(committee, threshold, min_clients, {**scheme, "b": 16}),  # other bits
        params(committee, threshold, min_clients, {**scheme, "n": 4096}),  # insecure ring
        params(committee, threshold, min_clients, {**scheme, "m": 200}),  # noise overflow
        params(committee, threshold, min_clients, {**scheme, "s": 2}),  # fewer summands
    ):
        with pytest.raises(DecodeError):
            protocol.client_config(_setup(bad), keys, policy)


def test_no_secret_of_a_flower_session_reaches_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole session at DEBUG: the clients' secrets (their inputs, sealing keys, pair
    keys, Shamir deliveries, key shares, smudging keys), harvested whenever the mod stores
    or restores a client, never appear in the captured records."""
    harvest = SecretHarvest()
    dump, load = ThresholdCkksOverFlower.dump_client, ThresholdCkksOverFlower.load_client

    def watched_dump(self: ThresholdCkksOverFlower, client: Any) -> bytes:
        harvest.add(client)
        return dump(self, client)

    def watched_load(self: ThresholdCkksOverFlower, *args: Any) -> Any:
        client = load(self, *args)
        harvest.add(client)
        return client

    monkeypatch.setattr(ThresholdCkksOverFlower, "dump_client", watched_dump)
    monkeypatch.setattr(ThresholdCkksOverFlower, "load_client", watched_load)
    grid = make_grid(range(4))
    with captured_logs() as records:
        report = run_secure_round(grid, train_messages(grid), settings(degree=3))
    check_report(report, range(4), 1)
    assert records and any("threshold-ckks" in r for r in records)
    assert len(harvest.secrets) > 10, "the harvest found no secret: it would prove nothing"
    assert not leaks(records, harvest)
    # The stored state (what the harvest walked) is the client's, and it is secret.
    assert "ThresholdCkksClient.to_state_bytes" in ThresholdCkksClient.secret_export
