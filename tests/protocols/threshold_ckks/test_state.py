"""A threshold-CKKS client carried as state bytes between rounds (as Flower's ClientApp
processes carry it) finishes the session exactly as one kept in memory; foreign, garbled
or contradictory state bytes are refused with DecodeError."""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest

from secagg.errors import DecodeError, UsageError
from secagg.he.threshold_ckks import Committee, CommitteeMember
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_ckks import ThresholdCkksClient, ThresholdCkksConfig
from secagg.protocols.threshold_ckks.client import ClientState
from secagg.protocols.threshold_ckks.server import ThresholdCkksServer
from tests.protocols.threshold_ckks.driver import make_inputs

CONFIG = ThresholdCkksConfig.create(range(1, 6), bits=16, vector_length=40, committee=[1, 2, 3])


def _reload(client: ThresholdCkksClient, config: ThresholdCkksConfig) -> ThresholdCkksClient:
    data = client.to_state_bytes()
    restored = ThresholdCkksClient.from_state_bytes(config, client.client_id, data)
    assert restored.to_state_bytes() == data and restored.state == client.state
    return restored


def test_a_session_of_reloaded_clients_gives_the_exact_sum() -> None:
    inputs = make_inputs(CONFIG, seed=3)
    server = ThresholdCkksServer(CONFIG)
    states = {c: ThresholdCkksClient(CONFIG, c, inputs[c]).to_state_bytes()
              for c in CONFIG.clients}  # fmt: skip
    outgoing: list[Message] = server.start()
    seen_states: set[ClientState] = set()
    while not server.done:
        incoming: list[Message] = []
        for message in outgoing:
            client = ThresholdCkksClient.from_state_bytes(
                CONFIG, message.recipient, states[message.recipient]
            )
            seen_states.add(client.state)
            incoming += client.receive(message)
            if not client.done:
                states[message.recipient] = _reload(client, CONFIG).to_state_bytes()
        outgoing = [reply for m in incoming for reply in server.receive(m)]
    assert server.result is not None
    total = sum(v.astype(np.uint64) for v in inputs.values()) & np.uint64(0xFFFF)
    np.testing.assert_array_equal(server.result.total.astype(np.uint64), total)
    assert seen_states >= {ClientState.WAITING, ClientState.ADVERTISED, ClientState.DEALT,
                           ClientState.CHECKED, ClientState.INPUT_SENT}  # fmt: skip


def test_foreign_garbled_or_contradictory_states_are_refused() -> None:
    member = ThresholdCkksClient(CONFIG, 1, make_inputs(CONFIG)[1])
    plain = ThresholdCkksClient(CONFIG, 4, make_inputs(CONFIG)[4])
    data = member.to_state_bytes()
    other = dataclasses.replace(CONFIG, session_id=bytes(range(16)))
    bad_inputs = msgpack.unpackb(plain.to_state_bytes())
    bad_inputs[5] = bad_inputs[5][:-8]
    cases = [
        (CONFIG, 1, data[:-1]),
        (CONFIG, 1, b""),
        (CONFIG, 1, b"\xc1"),
        (other, 1, data),  # another session
        (CONFIG, 2, data),  # another member
        (CONFIG, 4, data),  # member material on a non-member
        (CONFIG, 1, plain.to_state_bytes()),
        (CONFIG, 4, msgpack.packb(bad_inputs)),  # an input of the wrong size
    ]
    for config, client_id, blob in cases:
        with pytest.raises(DecodeError):
            ThresholdCkksClient.from_state_bytes(config, client_id, blob)
    with pytest.raises(UsageError, match="lazy"):
        ThresholdCkksClient(CONFIG, 4, lambda: make_inputs(CONFIG)[4]).to_state_bytes()


def test_a_member_state_must_match_its_lifecycle() -> None:
    committee = Committee((1, 2), 2)
    params, seed = CONFIG.scheme, CONFIG.crs_seed
    member = CommitteeMember(params, committee, 1, seed)
    fresh = member.to_state_bytes()
    member.setup_message()
    sent = member.to_state_bytes()
    assert CommitteeMember.from_state_bytes(params, committee, 1, seed, sent).to_state_bytes() \
        == sent
    record = msgpack.unpackb(sent)
    record["s"] = "new"  # an own share in state NEW
    for blob in (msgpack.packb(record), sent[:-2], fresh.replace(b"new", b"old")):
        with pytest.raises(DecodeError):
            CommitteeMember.from_state_bytes(params, committee, 1, seed, blob)
    with pytest.raises(DecodeError):
        CommitteeMember.from_state_bytes(params, committee, 2, seed, fresh)
    assert repr(member).startswith("CommitteeMember(") and SERVER_ID == 0
