"""The protocol client's state export: Client.to_state_bytes / Client.from_state_bytes.

The property: a session in which every client goes through bytes before every message it
receives (a new process per message, as under Flower) sums exactly as one kept in memory;
state bytes of another session, configuration or client, and truncated, garbled or
crafted bytes, raise DecodeError and nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
    ProtocolAbort,
    UsageError,
)
from secagg.protocols.bonawitz import client_state
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.client_state import ClientSnapshot, decode_state, encode_state
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import AdvertiseKeysRequest, MaskedInputRequest
from secagg.protocols.bonawitz.rounds import ClientState
from tests.helpers.protocol import (
    Session,
    assert_correct,
    dropout_plans,
    make_session,
    run_session,
    sessions,
)


class ThroughBytes(dict[int, Client]):
    """The clients of a session, each saved and restored before every message it gets."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.clients)
        self.session = session
        self.saved: list[tuple[int, bytes]] = []

    def __getitem__(self, client_id: int) -> Client:
        old = super().__getitem__(client_id)
        data = old.to_state_bytes()
        identity = self.session.identities[client_id] if self.session.identities else None
        new = Client.from_state_bytes(self.session.config, client_id, data, identity=identity)
        assert new.state is old.state and new.to_state_bytes() == data  # canonical
        self[client_id] = new
        self.saved.append((client_id, data))
        return new


# --- round trips inside whole sessions ------------------------------------------------------


@given(st.data())
def test_session_through_bytes_between_every_message_sums_right(data: st.DataObject) -> None:
    session = data.draw(sessions(max_n=7))
    drops = data.draw(dropout_plans(session))
    clients = ThroughBytes(session)
    session.clients = clients
    try:
        result = run_session(session, drops=drops)
    except ProtocolAbort:
        assert session.server.result is None
        return
    assert_correct(session, result)
    assert clients.saved


def test_every_state_of_an_active_session_round_trips() -> None:
    session = make_session(4, 3, mode="active", length=5)
    clients = ThroughBytes(session)
    session.clients = clients
    assert_correct(session, run_session(session))
    states = {
        Client.from_state_bytes(
            session.config, client_id, data, identity=(session.identities or {})[client_id]
        ).state
        for client_id, data in clients.saved
    }
    assert len(clients.saved) == 4 * 6  # 4 clients x 6 requests, each through bytes
    assert ClientState.AWAIT_CONSISTENCY_CHECK in states and ClientState.AWAIT_UNMASKING in states
    for client in session.clients.values():
        assert client.done
        done = Client.from_state_bytes(
            session.config,
            client.client_id,
            client.to_state_bytes(),
            identity=(session.identities or {})[client.client_id],
        )
        assert done.done


def test_identity_is_not_in_the_state_and_is_checked_on_restore() -> None:
    session = make_session(4, 3, mode="active", length=5)
    data = session.clients[1].to_state_bytes()
    assert session.identities is not None
    with pytest.raises(ConfigurationError):
        Client.from_state_bytes(session.config, 1, data)  # no identity
    with pytest.raises(ConfigurationError):
        Client.from_state_bytes(session.config, 1, data, identity=session.identities[2])


# --- refusals -------------------------------------------------------------------------------


def after_share_keys(n: int = 4) -> tuple[Session, bytes]:
    """A session in which client 1 waits for MaskedInputRequest (after ShareCheck), and its
    state bytes."""
    session = make_session(n, n // 2 + 1, length=6)
    outgoing = session.server.start()
    for _ in range(3):
        replies = [r for m in outgoing for r in session.clients[m.recipient].receive(m)]
        outgoing = [m for r in replies for m in session.server.receive(r)]
    client = session.clients[1]
    assert client.state is ClientState.AWAIT_MASKED_INPUT
    return session, client.to_state_bytes()


def test_state_of_another_session_config_or_client_is_refused() -> None:
    session, data = after_share_keys()
    config = session.config
    with pytest.raises(DecodeError, match="another client"):
        Client.from_state_bytes(config, 2, data)
    other_session = make_session(4, 3, length=6).config
    with pytest.raises(DecodeError, match="another session"):
        Client.from_state_bytes(other_session, 1, data)
    for changed in (
        dataclasses.replace(config, threshold=4),
        dataclasses.replace(config, vector_length=7),
        dataclasses.replace(config, bits=17),
        dataclasses.replace(config, clients=(1, 2, 3, 4, 5)),
    ):
        with pytest.raises(DecodeError, match="another configuration"):
            Client.from_state_bytes(changed, 1, data)
    with pytest.raises(ConfigurationError):
        Client.from_state_bytes(config, 9, data)  # not a client of the session
    with pytest.raises(ConfigurationError):
        Client.from_state_bytes(config, True, data)


def test_truncated_state_raises_decode_error() -> None:
    session, data = after_share_keys()
    for size in range(0, len(data), max(1, len(data) // 97)):
        with pytest.raises(DecodeError):
            Client.from_state_bytes(session.config, 1, data[:size])
    with pytest.raises(DecodeError):
        Client.from_state_bytes(session.config, 1, data + b"\x00")
    with pytest.raises(DecodeError):
        Client.from_state_bytes(session.config, 1, "text")  # type: ignore[arg-type]


@given(st.data())
def test_garbled_state_raises_decode_error(data: st.DataObject) -> None:
    session, good = after_share_keys(3)
    garbled = bytearray(good)
    for position in data.draw(st.sets(st.integers(0, len(good) - 1), min_size=1, max_size=4)):
        garbled[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError):
        Client.from_state_bytes(session.config, 1, bytes(garbled))


@given(st.binary(max_size=400))
def test_random_bytes_raise_decode_error(data: bytes) -> None:
    config = make_session(3, 2, length=6).config
    with pytest.raises(DecodeError):
        Client.from_state_bytes(config, 1, data)
    with pytest.raises(DecodeError):  # the same bytes with a valid checksum
        Client.from_state_bytes(config, 1, client_state._frame(data))


def record_of(data: bytes) -> list[Any]:
    record: list[Any] = msgpack.unpackb(data[:-32], raw=False)
    assert hashlib.sha256(b"secagg/v1/client-state\x00" + data[:-32]).digest() == data[-32:]
    return record


def reframed(record: list[Any]) -> bytes:
    return client_state._frame(msgpack.packb(record, use_bin_type=True))


def test_crafted_fields_are_refused() -> None:
    """Well-formed msgpack with a valid checksum and one field wrong: DecodeError."""
    session, data = after_share_keys()
    config = session.config
    record = record_of(data)
    Client.from_state_bytes(config, 1, reframed(record))  # the untouched record restores
    key = record[8]
    assert record[7] is None and record[10] is None  # cipher key, nonce commitment: wiped
    cases: dict[str, tuple[int, object]] = {
        "tag": (0, "other"),
        "version 2 (five rounds, sealed bundles)": (1, 2),
        "version 1 (full shares in bundles)": (1, 1),
        "bool version": (1, True),
        "float version": (1, 3.0),
        "float client id": (3, 1.0),
        "bool client id": (3, True),
        "state": (5, "NOPE"),
        "state type": (5, 3),
        "wiped state": (5, "AWAIT_UNMASKING"),  # keys and input where none may remain
        "early state": (5, "AWAIT_SHARE_KEYS"),  # peers before they were known
        "input size": (6, b"\x00" * 3),
        "no input": (6, None),
        "cipher key kept": (7, key),
        "short key": (8, key[:31]),
        "no key": (8, None),
        "unclamped mask key": (8, b"\xff" * 32),
        "seed type": (9, "seed"),
        "nonce commitment kept": (10, bytes(32)),
        "channel secrets kept": (11, [[1, bytes(32)]]),
        "held shares": (12, []),
        "held bytes": (12, [[1, b"\x93\x01"]]),
        "held float id": (12, [[1.0, pair[1]] for pair in record[12]]),
        "peer outside the neighbourhood": (13, [[9, *record[13][0][1:]], *record[13][1:]]),
        "peers unsorted": (13, record[13][::-1]),
        "peer arity": (13, [p[:4] for p in record[13]]),
        "disputed": (14, [2]),
        "sharers": (15, [2]),
        "survivors": (16, [1, 2, 3]),
        "dropped": (17, [2]),
        "extensions": (18, [1]),
        "record": (0, None),
    }
    for name, (index, value) in cases.items():
        broken = list(record)
        broken[index] = value
        with pytest.raises(DecodeError):
            Client.from_state_bytes(config, 1, reframed(broken))
        assert name
    for value in ("v" * 100_000, b"v" * 100_000, 2**64 - 1, [list(range(10_000))]):
        broken = list(record)
        broken[1] = value
        with pytest.raises(DecodeError) as caught:
            Client.from_state_bytes(config, 1, reframed(broken))
        assert len(str(caught.value)) < 200 and "vvvv" not in str(caught.value)
    for short in (record[:-1], {"a": 1}, [record]):
        with pytest.raises(DecodeError):
            Client.from_state_bytes(config, 1, reframed(short))  # type: ignore[arg-type]


def test_snapshots_a_state_cannot_hold_are_refused() -> None:
    """encode_state writes what it is given; decode_state refuses what no client reaches."""
    config = make_session(4, 3, length=6).config
    vector = np.zeros(6, dtype=np.uint32)
    secret = os.urandom(32)
    impossible = [
        ClientSnapshot(ClientState.AWAIT_ADVERTISE_KEYS),  # the input is missing
        ClientSnapshot(ClientState.AWAIT_ADVERTISE_KEYS, vector, cipher_key=secret),
        # A mask key with its low 3 bits set is never clamped (a random one is, 1 time in 32).
        ClientSnapshot(ClientState.AWAIT_SHARE_KEYS, vector, secret, b"\x07" + secret[1:], secret),
        ClientSnapshot(ClientState.DONE, vector),
        ClientSnapshot(ClientState.ABORTED, sharers=frozenset({2})),
    ]
    for snapshot in impossible:
        with pytest.raises(DecodeError):
            decode_state(config, 1, encode_state(config, 1, snapshot))
    done = decode_state(config, 1, encode_state(config, 1, ClientSnapshot(ClientState.DONE)))
    assert done.state is ClientState.DONE and done.input_vector is None


def test_lazy_input_cannot_be_stored_until_used() -> None:
    session = make_session(3, 2, length=4)
    lazy = Client(session.config, 1, lambda: np.zeros(4, dtype=np.uint32))
    with pytest.raises(UsageError, match="lazy"):
        lazy.to_state_bytes()


def test_restored_client_refuses_what_the_saved_one_would() -> None:
    session, data = after_share_keys()
    restored = Client.from_state_bytes(session.config, 1, data)
    with pytest.raises(Exception, match="out of round"):
        restored.receive(AdvertiseKeysRequest(0, 1, session.config.session_id, bytes(32)))
    assert restored.state is ClientState.AWAIT_MASKED_INPUT  # an out-of-round message: no change


def test_no_secret_in_reprs() -> None:
    session, data = after_share_keys()
    restored = Client.from_state_bytes(session.config, 1, data)
    snapshot = decode_state(session.config, 1, data)
    assert repr(restored) == "Client(id=1, state=AWAIT_MASKED_INPUT)"
    assert repr(snapshot) == "ClientSnapshot(state=AWAIT_MASKED_INPUT)"
    assert snapshot.mask_key is not None and snapshot.mask_key.hex() not in repr(snapshot)


def test_equal_configs_share_a_digest() -> None:
    config = make_session(5, 3, length=3, degree=2).config
    rebuilt = ProtocolConfig.create(
        clients=list(config.clients),
        threshold=3,
        bits=config.bits,
        vector_length=3,
        degree=2,
        session_id=config.session_id,
    )
    assert rebuilt is not config
    assert client_state.config_digest(rebuilt) == client_state.config_digest(config)


def test_a_peer_named_twice_to_mask_with_is_refused() -> None:
    """Each peer counts once: a doubled one would also make the state ambiguous."""
    session, data = after_share_keys()
    client = Client.from_state_bytes(session.config, 1, data)
    with pytest.raises(MaliciousRequestError, match="not distinct"):
        client.receive(MaskedInputRequest(0, 1, session.config.session_id, (2, 2)))
    assert client.aborted
