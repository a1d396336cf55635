"""The Bonawitz transition tables (secagg.protocols.bonawitz.rounds) and their one lookup.

The tables must be complete (every message type reaches a handler on the side that
receives it, every handler and closer exists and takes the row's message type),
consistent (one row per mode and state, a path from the first state to the last in each
mode, the semi-honest skip of ConsistencyCheck as a row) and the only gate: every message
without a row is refused from the one lookup, leaving the party unchanged and able to go
on, on both sides.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ExclusionReason, ProtocolViolation, UsageError
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.client_state import decode_state, encode_state
from secagg.protocols.bonawitz.config import ACTIVE, MODES, SEMI_HONEST, Mode
from secagg.protocols.bonawitz.messages import (
    ROUND_NAMES,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DisputeRequest,
    DisputeResponse,
    FallbackRequest,
    FallbackResponse,
    MaskedInput,
    MaskedInputRequest,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
)
from secagg.protocols.bonawitz.rounds import (
    CLIENT_TABLE,
    SERVER_TABLE,
    ClientState,
    ServerState,
    Transition,
    TransitionTable,
)
from secagg.protocols.bonawitz.server import Server
from secagg.protocols.faults import Fault
from secagg.protocols.wire import ProtocolMessage
from tests.helpers.protocol import Session, advance_to, make_session

MESSAGE_TYPES: tuple[type[ProtocolMessage], ...] = (
    AdvertiseKeysRequest,
    AdvertiseKeys,
    ShareKeysRequest,
    ShareKeys,
    ShareCheckRequest,
    ShareCheck,
    DisputeRequest,
    DisputeResponse,
    MaskedInputRequest,
    MaskedInput,
    ConsistencyCheckRequest,
    ConsistencyCheck,
    UnmaskingRequest,
    UnmaskingResponse,
    FallbackRequest,
    FallbackResponse,
)
TO_CLIENT = tuple(t for t in MESSAGE_TYPES if t.FROM_SERVER)
TO_SERVER = tuple(t for t in MESSAGE_TYPES if not t.FROM_SERVER)


def test_the_message_list_is_every_bonawitz_message() -> None:
    assert sorted(t.TYPE for t in MESSAGE_TYPES) == list(range(1, 17))


# -- completeness and consistency -------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "side", "incoming"),
    [(CLIENT_TABLE, Client, TO_CLIENT), (SERVER_TABLE, Server, TO_SERVER)],
)
def test_every_message_type_reaches_a_handler_that_takes_it(
    table: TransitionTable[typing.Any], side: type, incoming: tuple[type[ProtocolMessage], ...]
) -> None:
    assert {row.receives for row in table.rows} == set(incoming)
    for row in table.rows:
        handler = getattr(side, row.handler)
        hints = typing.get_type_hints(handler)
        parameters = [name for name in hints if name != "return"]
        assert parameters == ["message"], row.handler
        assert hints["message"] is row.receives, row.handler
    for mode in MODES:
        for message_type in incoming:
            rows = [r for r in table.rows if r.receives is message_type and mode in r.modes]
            # ConsistencyCheck messages only exist in active mode; every other has a row.
            only_active = "ConsistencyCheck" in message_type.__name__
            if mode == SEMI_HONEST and only_active:
                assert not rows, message_type.__name__
            else:  # a masked-input request may come before or after a dispute wave
                expected = 2 if message_type is MaskedInputRequest else 1
                assert len(rows) == expected, (mode, message_type.__name__)


def test_every_server_row_names_a_closer_and_client_rows_none() -> None:
    assert all(row.closer is None and not row.bad_answer_excludes for row in CLIENT_TABLE.rows)
    for row in SERVER_TABLE.rows:
        assert row.closer is not None
        closer = getattr(Server, row.closer)
        assert [n for n in typing.get_type_hints(closer) if n != "return"] == []
    # A bad answer leaves its sender out of the sum only before its input is summed.
    excluding = {row.state for row in SERVER_TABLE.rows if row.bad_answer_excludes}
    assert excluding == {
        ServerState.ADVERTISE_KEYS,
        ServerState.SHARE_KEYS,
        ServerState.SHARE_CHECK,
        ServerState.SHARE_CHECK_DISPUTE,
        ServerState.MASKED_INPUT,
    }
    # The second waves: entered from their round's row, closing into what follows it.
    waves = {row.state: row.wave for row in SERVER_TABLE.rows if row.wave is not None}
    assert waves == {
        ServerState.SHARE_CHECK: ServerState.SHARE_CHECK_DISPUTE,
        ServerState.UNMASKING: ServerState.UNMASKING_FALLBACK,
    }


_WAVE_REQUESTS = (DisputeRequest,)  # the client's side of a wave inside its state


def _walk(table: TransitionTable[typing.Any], mode: Mode, start: typing.Any) -> list[typing.Any]:
    """The main path: every state's row that is not a wave's."""
    path, state = [start], start
    while rows := [r for r in table.rows_of(mode, state) if r.receives not in _WAVE_REQUESTS]:
        assert len(rows) == 1
        state = rows[0].next_state
        assert state not in path, "a cycle in the table"
        path.append(state)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_is_one_path_through_every_row(mode: Mode) -> None:
    client = _walk(CLIENT_TABLE, mode, ClientState.AWAIT_ADVERTISE_KEYS)
    server = _walk(SERVER_TABLE, mode, ServerState.ADVERTISE_KEYS)
    assert client[-1] is ClientState.DONE and server[-1] is ServerState.DONE
    # Off the main path: the waves (server) and the state after a dispute (client).
    assert set(client[:-1]) == CLIENT_TABLE.states(mode) - {ClientState.DISPUTED}
    waves = {ServerState.SHARE_CHECK_DISPUTE, ServerState.UNMASKING_FALLBACK}
    assert set(server[:-1]) == SERVER_TABLE.states(mode) - waves
    # The two sides walk the same rounds, in protocol order.
    server_rounds = [state.value for state in server[:-1]]
    assert server_rounds == [r for r in ROUND_NAMES if mode == ACTIVE or r != "consistency_check"]
    assert len(client) == len(server) + 1  # UNMASKED: a fallback request may follow


def test_the_semi_honest_skip_is_a_row_of_each_table() -> None:
    for table, waiting, check, unmasking in (
        (
            CLIENT_TABLE,
            ClientState.AWAIT_MASKED_INPUT,
            ClientState.AWAIT_CONSISTENCY_CHECK,
            ClientState.AWAIT_UNMASKING,
        ),
        (
            SERVER_TABLE,
            ServerState.MASKED_INPUT,
            ServerState.CONSISTENCY_CHECK,
            ServerState.UNMASKING,
        ),
    ):
        request = MaskedInputRequest if table is CLIENT_TABLE else MaskedInput
        semi_honest = table.lookup(SEMI_HONEST, waiting, request)
        active = table.lookup(ACTIVE, waiting, request)
        assert semi_honest is not None and active is not None
        assert semi_honest is not active and semi_honest.receives is active.receives
        assert semi_honest.next_state is unmasking and active.next_state is check
        assert table.row(SEMI_HONEST, check) is None  # no such round semi-honest
        assert all(table.lookup(SEMI_HONEST, check, t) is None for t in MESSAGE_TYPES)
        row = table.row(ACTIVE, check)
        assert row is not None and row.modes == frozenset({ACTIVE})


def test_a_table_that_is_not_a_function_of_mode_and_state_is_refused() -> None:
    row = Transition(ClientState.AWAIT_UNMASKING, UnmaskingRequest, "_unmasking", ClientState.DONE)
    with pytest.raises(ValueError, match="two rows"):
        TransitionTable([row, dataclasses.replace(row, modes=frozenset({ACTIVE}))])
    with pytest.raises(ValueError, match="no known mode"):
        TransitionTable([dataclasses.replace(row, modes=frozenset())])
    with pytest.raises(ValueError, match="no known mode"):
        TransitionTable([dataclasses.replace(row, modes=frozenset({"paranoid"}))])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("table", "states"), [(CLIENT_TABLE, ClientState), (SERVER_TABLE, ServerState)]
)
def test_lookup_accepts_exactly_the_rows(
    table: TransitionTable[typing.Any], states: type[typing.Any]
) -> None:
    rows = {(mode, row.state, row.receives): row for row in table.rows for mode in row.modes}
    for key in itertools.product(MODES, states, MESSAGE_TYPES):
        assert table.lookup(*key) is rows.get(key)

    class Subclass(UnmaskingResponse):  # exact types: a subclass has no row of its own
        pass

    assert table.lookup(SEMI_HONEST, ServerState.UNMASKING, Subclass) is None


# -- the one lookup, on real parties ------------------------------------------------------


def _stray(
    message_type: type[ProtocolMessage], sender: int, recipient: int, session: Session
) -> ProtocolMessage:
    """A message of ``message_type`` whose header routes it in ``session`` (contents: empty
    or zeros: it must be refused before anyone reads them)."""
    hints = typing.get_type_hints(message_type)
    names = [f.name for f in dataclasses.fields(message_type)][3:]  # after the header
    values = [{bytes: bytes(32), int: 1}.get(hints[name], ()) for name in names]
    sid = session.config.session_id
    return message_type(sender, recipient, sid, *values)  # type: ignore[call-arg]


@contextmanager
def counting_lookups() -> Iterator[mock.MagicMock]:
    with mock.patch.object(
        TransitionTable, "lookup", autospec=True, side_effect=TransitionTable.lookup
    ) as spy:
        yield spy


def _session(mode: Mode) -> Session:
    return make_session(3, 3 if mode == ACTIVE else 2, mode=mode, length=4)


@cache
def _client_transcript(mode: Mode) -> tuple[Session, dict[ClientState, tuple[bytes, Message]]]:
    """An honest session, and client 1's saved state before each request with the request."""
    session = _session(mode)
    client = session.clients[1]
    saved: dict[ClientState, tuple[bytes, Message]] = {}
    outgoing = session.server.start()
    while outgoing:
        replies: list[Message] = []
        for message in outgoing:
            target = session.clients[message.recipient]
            if target is client:
                saved[client.state] = (client.to_state_bytes(), message)
            replies += target.receive(message)
        outgoing = []
        for reply in replies:
            outgoing += session.server.receive(reply)
    assert session.server.done and client.done
    return session, saved


def _restored(mode: Mode, state: ClientState) -> tuple[Client, Message | None]:
    """Client 1 of a recorded session in ``state``, and the request it honestly gets there
    (None in semi-honest AWAIT_CONSISTENCY_CHECK: no client reaches it, a saved state can)."""
    session, saved = _client_transcript(mode)
    identity = session.identities[1] if session.identities else None
    if state in saved:
        data, request = saved[state]
        return Client.from_state_bytes(session.config, 1, data, identity=identity), request
    data, _ = saved[ClientState.AWAIT_UNMASKING]
    snapshot = dataclasses.replace(decode_state(session.config, 1, data), state=state)
    data = encode_state(session.config, 1, snapshot)
    return Client.from_state_bytes(session.config, 1, data, identity=identity), None


# DISPUTED and UNMASKED follow a wave, which an honest session never opens.
WAITING_CLIENT_STATES = [
    s
    for s in ClientState
    if s not in (ClientState.DONE, ClientState.ABORTED, ClientState.DISPUTED, ClientState.UNMASKED)
]


@given(
    mode=st.sampled_from(MODES),
    state=st.sampled_from(WAITING_CLIENT_STATES),
    strays=st.lists(st.sampled_from(MESSAGE_TYPES), min_size=1, max_size=6),
)
def test_a_client_refuses_every_message_without_a_row_and_goes_on(
    mode: Mode, state: ClientState, strays: list[type[ProtocolMessage]]
) -> None:
    client, request = _restored(mode, state)
    session, _ = _client_transcript(mode)
    rows = CLIENT_TABLE.rows_of(mode, state)
    row = next((r for r in rows if r.receives not in _WAVE_REQUESTS), None)
    for message_type in strays:
        if any(message_type is r.receives for r in rows):
            continue
        for name in {r.handler for r in CLIENT_TABLE.rows}:  # no handler may run
            setattr(client, name, mock.Mock(side_effect=AssertionError(name)))
        with counting_lookups() as spy, pytest.raises(ProtocolViolation, match="out of round"):
            client.receive(_stray(message_type, SERVER_ID, 1, session))
        assert spy.call_count == 1
        for name in {r.handler for r in CLIENT_TABLE.rows}:
            delattr(client, name)
        assert client.state is state and not client.aborted
    if request is not None:  # unharmed: the honest request still moves it on
        assert row is not None and isinstance(request, row.receives)
        with counting_lookups() as spy:
            assert len(client.receive(request)) == 1
        assert spy.call_count == 1
        # Unmasking leads to UNMASKED only when it revealed a mask-key share (none here).
        following = {ClientState.UNMASKED: ClientState.DONE}
        assert client.state is following.get(row.next_state, row.next_state)


@pytest.mark.parametrize("state", [ClientState.DONE, ClientState.ABORTED])
def test_a_finished_client_refuses_everything(state: ClientState) -> None:
    client, _ = _restored(SEMI_HONEST, ClientState.AWAIT_UNMASKING)
    session, _ = _client_transcript(SEMI_HONEST)
    if state is ClientState.ABORTED:
        with pytest.raises(ProtocolViolation):  # empty lists: refused inside the round
            client.receive(_stray(UnmaskingRequest, SERVER_ID, 1, session))
    else:
        _, request = _restored(SEMI_HONEST, ClientState.AWAIT_UNMASKING)
        assert request is not None
        client.receive(request)
    assert client.state is state
    for message_type in MESSAGE_TYPES:
        with pytest.raises(ProtocolViolation, match="after the session ended"):
            client.receive(_stray(message_type, SERVER_ID, 1, session))


def _server_in(mode: Mode, state: ServerState) -> tuple[Session, dict[int, Message]]:
    session = _session(mode)
    return session, advance_to(session, state.value)


@given(
    mode=st.sampled_from(MODES),
    round_index=st.integers(0, len(ROUND_NAMES) - 1),
    strays=st.lists(st.sampled_from(MESSAGE_TYPES), min_size=1, max_size=6),
)
def test_a_server_refuses_every_message_without_a_row_and_goes_on(
    mode: Mode, round_index: int, strays: list[type[ProtocolMessage]]
) -> None:
    states = [s for s in ServerState if s in SERVER_TABLE.states(mode) and s.value in ROUND_NAMES]
    state = states[round_index % len(states)]
    session, requests = _server_in(mode, state)
    server = session.server
    row = SERVER_TABLE.row(mode, state)
    assert server.state is state and row is not None
    refused = 0
    for message_type in strays:
        if message_type is row.receives:
            continue
        with counting_lookups() as spy:
            assert server.receive(_stray(message_type, 2, SERVER_ID, session)) == []
        assert spy.call_count == 1
        refused += 1
        assert server.state is state
        last = server.faults[2][-1]
        assert isinstance(last, Fault) and last.reason is ExclusionReason.OUT_OF_ROUND
        assert last.round_name == state.value
    assert len(server.faults.get(2, [])) == refused
    # Unharmed: the honest answers still close the round.
    outgoing: list[Message] = []
    for request in requests.values():
        for reply in session.clients[request.recipient].receive(request):
            with counting_lookups() as spy:
                outgoing += server.receive(reply)
            assert spy.call_count == 1
    assert server.state is row.next_state
    assert outgoing or server.done


@pytest.mark.parametrize("mode", MODES)
def test_a_server_outside_a_round_has_no_row(mode: Mode) -> None:
    session = _session(mode)
    with pytest.raises(UsageError):
        session.server.close_round()  # idle: no round to close
    for state in (ServerState.IDLE, ServerState.DONE, ServerState.ABORTED):
        assert SERVER_TABLE.row(mode, state) is None
