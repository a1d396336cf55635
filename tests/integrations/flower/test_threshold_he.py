"""Threshold Paillier over Flower, in process: a committee of key-holding nodes decrypts
the sum; the protocol hook (:mod:`secagg.integrations.flower.protocols`) is generic."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord
from flwr.serverapp.strategy import FedAvg

from secagg.errors import ConfigurationError, DecodeError, MaliciousRequestError
from secagg.he.threshold_paillier import deal_threshold_keys
from secagg.integrations.flower import (
    ClientPolicy,
    NodeKeys,
    SecAggGrid,
    SecAggSettings,
    deal_committee_keys,
    flower_protocol_names,
    register_flower_protocol,
    run_secure_round,
)
from secagg.integrations.flower.node_keys import (
    HE_KEY_SHARE_KEY,
    HE_PUBLIC_KEY_KEY,
    load_he_public_key,
)
from secagg.integrations.flower.protocols import flower_protocol
from secagg.integrations.flower.testing import InProcessGrid
from secagg.integrations.flower.threshold_he import ThresholdPaillierOverFlower
from secagg.protocols.threshold_he.client import ThresholdHEClient
from secagg.protocols.threshold_he.keys import setup_threshold_paillier
from secagg.protocols.threshold_he.messages import DecryptionRequest, InputRequest
from secagg.protocols.threshold_he.server import ThresholdHEServer
from tests.helpers.flower import (
    check_report,
    initial_arrays,
    make_app,
    node_of,
    server_task_identity,
    train_messages,
)


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An offline key ceremony: a 2-of-3 committee key (512 bits: fast, tests only)."""
    directory = tmp_path_factory.mktemp("committee")
    deal_committee_keys(directory, holders=3, threshold=2, key_bits=512)
    return directory


def configs(ceremony: Path, partitions: range, holders: dict[int, int]
            ) -> dict[int, dict[str, object]]:
    """Every node trusts the committee key; ``holders`` maps partition -> share index."""
    out: dict[int, dict[str, object]] = {}
    for p in partitions:
        config: dict[str, object] = {"partition-id": p,
                                     HE_PUBLIC_KEY_KEY: str(ceremony / "public_key.bin")}
        if p in holders:
            config[HE_KEY_SHARE_KEY] = str(ceremony / f"share-{holders[p]}.key")
        out[node_of(p)] = config
    return out


def settings(ceremony: Path, **changes: object) -> SecAggSettings:
    base = SecAggSettings(
        protocol="threshold-paillier", clip=4.0, max_weight=100.0,
        secure_metrics=("train_loss",), train_timeout=0.05, stage_timeout=0.05,
        poll_interval=0.01,
        protocol_options={"public_key": load_he_public_key(ceremony / "public_key.bin")})
    return dataclasses.replace(base, **changes)


def test_ceremony_files(ceremony: Path) -> None:
    public = load_he_public_key(ceremony / "public_key.bin")
    assert (public.threshold, public.holders) == (2, 3)
    keys = NodeKeys.from_node_config(configs(ceremony, range(1), {0: 2})[node_of(0)])
    assert keys.key_share is not None and keys.key_share.index == 2
    assert (ceremony / "share-2.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigurationError, match="needs"):
        NodeKeys.from_node_config({HE_KEY_SHARE_KEY: str(ceremony / "share-1.key")})
    with pytest.raises(ConfigurationError):
        deal_committee_keys(ceremony, holders=3, threshold=2, key_bits=512)  # no overwrite


def test_fedavg_with_a_threshold_paillier_committee(ceremony: Path) -> None:
    grid = _grid(ceremony, range(5), {0: 1, 2: 2, 4: 3})
    secure = SecAggGrid(grid, settings(ceremony))
    FedAvg(fraction_evaluate=0.0, min_available_nodes=5).start(
        grid=secure, initial_arrays=_initial(), num_rounds=2)
    for server_round, report in enumerate(secure.reports, start=1):
        check_report(report, range(5), server_round)
        assert report.protocol == "threshold-paillier" and "3 of 3" in report.summary
    assert secure.reports[0].identities[node_of(2)] == "holder of share 2"
    assert secure.reports[0].identities[node_of(1)] == "no key share"
    # Identified once; then input and decryption stages (three members) per round.
    assert [len(b) for b in grid.batches if b] == [5, 5, 3, 5, 3]


def test_a_seat_not_sampled_and_a_member_dropping(ceremony: Path) -> None:
    # Share 3's holder is not among the nodes: its seat is a phantom that never answers;
    # holders 1 and 2 are the t = 2 that decrypt. A plain node drops before its input.
    grid = _grid(ceremony, range(5), {0: 1, 2: 2})
    grid.drop_from[node_of(3)] = (1, 0)
    report = run_secure_round(grid, train_messages(grid), settings(ceremony))
    check_report(report, [0, 1, 2, 4], 1)
    assert "2 of 3 committee seats" in report.summary
    assert set(report.excluded_nodes) == {node_of(3)}  # the phantom is no node
    # Holder 2 drops at decryption: only one valid partial remains, fewer than t.
    grid = _grid(ceremony, range(5), {0: 1, 2: 2})
    grid.drop_from[node_of(2)] = (1, 1)
    report = run_secure_round(grid, train_messages(grid), settings(ceremony))
    assert not report.ok and "abort" in (report.aborted or "")


def test_wrong_committee_key_and_duplicate_shares_are_left_out(ceremony: Path,
                                                              tmp_path: Path) -> None:
    deal_committee_keys(tmp_path, holders=3, threshold=2, key_bits=512)
    node_configs = configs(ceremony, range(6), {0: 1, 2: 2, 4: 3, 5: 3})
    node_configs[node_of(3)][HE_PUBLIC_KEY_KEY] = str(tmp_path / "public_key.bin")
    grid = _grid_of(node_configs)
    report = run_secure_round(grid, train_messages(grid), settings(ceremony))
    check_report(report, [0, 1, 2], 1)
    assert "another committee's public key" in report.excluded_nodes[node_of(3)]
    for node in (node_of(4), node_of(5)):
        assert "another node claims key share 3" in report.excluded_nodes[node]


def test_clients_check_the_key_and_their_seat(ceremony: Path) -> None:
    protocol = ThresholdPaillierOverFlower()
    config = settings(ceremony)
    plan_nodes = [node_of(p) for p in range(4)]
    identities = {n: protocol.check_identity(
        config, node_id=n, session_id=bytes(16), challenge=bytes(32),
        answer=protocol.identify(NodeKeys.from_node_config(
            configs(ceremony, range(4), {0: 1, 1: 2, 2: 3})[n]),
            node_id=n, session_id=bytes(16), challenge=bytes(32)))
        for n in plan_nodes}
    plan = protocol.plan(config, session_id=bytes(16), nodes=plan_nodes,
                         identities=identities, vector_length=12)
    assert plan.config.committee == (1, 2, 3) and not plan.phantoms
    from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
    from secagg.integrations.flower.wire import FixedPointParams, SessionSetup

    def setup(client_id: int, params: bytes = plan.params) -> SessionSetup:
        return SessionSetup(bytes(16), "threshold-paillier", 4, client_id, 32,
                            FixedPointParams(4.0, 100.0, 4, 100.0),
                            ArrayLayout((ArraySpec("w", (11,), "<f4"),)), "n", True, params)

    member = NodeKeys.from_node_config(configs(ceremony, range(1), {0: 1})[node_of(0)])
    plain = NodeKeys.from_node_config(configs(ceremony, range(1), {})[node_of(0)])
    policy = ClientPolicy(min_clients=3)
    assert protocol.client_config(setup(1), member, policy).committee == (1, 2, 3)
    assert protocol.client_config(setup(4), plain, policy).n == 4
    with pytest.raises(MaliciousRequestError, match="another committee seat"):
        protocol.client_config(setup(2), member, policy)  # share 1 on seat 2
    with pytest.raises(MaliciousRequestError, match="another committee seat"):
        protocol.client_config(setup(1), plain, policy)  # a seat without a share
    other, _ = deal_threshold_keys(512, threshold=2, holders=3)
    swapped = plan.params.replace(member.he_public_key.to_bytes(),  # type: ignore[union-attr]
                                  other.to_bytes())
    with pytest.raises(MaliciousRequestError, match="not this node's committee key"):
        protocol.client_config(setup(4, swapped), plain, policy)
    with pytest.raises(MaliciousRequestError, match="policy needs 5"):
        protocol.client_config(setup(4), plain, ClientPolicy(min_clients=5))
    with pytest.raises(DecodeError):
        protocol.client_config(setup(4, b"\x93\x01"), plain, policy)
    with pytest.raises(ConfigurationError, match="no committee public key"):
        protocol.client_config(setup(4), NodeKeys(), policy)


def test_threshold_he_client_state_survives_bytes() -> None:
    config, shares = setup_threshold_paillier([1, 2, 3], bits=16, vector_length=4,
                                              committee=[1, 2], threshold=2, key_bits=512)
    server = ThresholdHEServer(config, simulation=True)  # one process plays every party
    vectors = {c: np.full(4, c, dtype=np.uint32) for c in config.clients}
    clients = {c: ThresholdHEClient(config, c, vectors[c], key_share=shares.get(c))
               for c in config.clients}
    outgoing = server.start()
    while not server.done:
        incoming = []
        for message in outgoing:
            client = clients[message.recipient]
            if isinstance(message, (InputRequest, DecryptionRequest)) and client.state.value != \
                    "waiting":
                data = client.to_state_bytes()
                client = ThresholdHEClient.from_state_bytes(
                    config, message.recipient, data, key_share=shares.get(message.recipient))
                assert client.to_state_bytes() == data
            incoming += client.receive(message)
        outgoing = [m for i in incoming for m in server.receive(i)]
    assert server.result is not None
    np.testing.assert_array_equal(server.result.total, np.full(4, 6))
    with pytest.raises(Exception, match="input has not been sent"):
        ThresholdHEClient(config, 1, vectors[1], key_share=shares[1]).to_state_bytes()
    data = clients[3].to_state_bytes()
    for bad in (data[:-1], b"", data.replace(config.session_id, bytes(16))):
        with pytest.raises(DecodeError):
            ThresholdHEClient.from_state_bytes(config, 3, bad)
    with pytest.raises(DecodeError):
        ThresholdHEClient.from_state_bytes(config, 2, data, key_share=shares[2])  # not 3's


def test_the_hook_registers_another_protocol() -> None:
    class Renamed(ThresholdPaillierOverFlower):
        name = "threshold-paillier-copy"

    assert "threshold-paillier" in flower_protocol_names()
    with pytest.raises(ConfigurationError, match="already registered"):
        register_flower_protocol(ThresholdPaillierOverFlower())
    register_flower_protocol(Renamed())
    assert isinstance(flower_protocol("threshold-paillier-copy"), Renamed)
    with pytest.raises(ConfigurationError, match="no protocol"):
        SecAggSettings(protocol="threshold-ckks-not-yet")
    with pytest.raises(ConfigurationError, match="public_key"):
        SecAggSettings(protocol="threshold-paillier")


def _initial() -> ArrayRecord:
    return initial_arrays()


def _grid_of(node_configs: dict[int, dict[str, object]]) -> InProcessGrid:
    return InProcessGrid.create(make_app(), node_configs)


def _grid(ceremony: Path, partitions: range, holders: dict[int, int]) -> InProcessGrid:
    return _grid_of(configs(ceremony, partitions, holders))
