"""Client-side guards: every move of a malicious server is refused and reveals nothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    MaliciousRequestError,
    ProtocolViolation,
    UsageError,
)
from secagg.protocols.bonawitz.client import Client, generate_identities
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeysRequest,
    ConsistencyCheckRequest,
    MaskedInputRequest,
    PeerSignature,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
)
from secagg.protocols.bonawitz.rounds import ClientState
from secagg.testing import run
from secagg.testing.strategies import (
    bonawitz_targets,
    client_inputs,
    dropout_schedules,
    server_attacks,
)
from tests.helpers.protocol import advance_to, deliver, make_session, unmasking_setup


@given(st.data())
def test_no_malicious_server_move_breaks_privacy(data: st.DataObject) -> None:
    """Any move of a malicious server (both shares of a victim, swapped survivor lists,
    split views, replayed or stale requests, garbled or withheld bundles, a client listed
    as its own peer, garbled bytes), to any targets, maybe beside dropouts: no client
    discloses two secrets of one owner, the server never gathers t shares of both, and
    every refusal is a ProtocolViolation that blames the server (harness invariants)."""
    target = data.draw(bonawitz_targets(min_clients=3, max_clients=9), label="target")
    inputs = data.draw(client_inputs(target), label="inputs")
    attack = data.draw(server_attacks(target), label="attack")
    schedule = data.draw(st.none() | dropout_schedules(target), label="drops")
    report = run(target, inputs, schedule, server_attacks=[attack])
    if attack.kind == "both_shares" and report.attacked:
        # A request that lists a peer as both dropped and alive is refused, never answered.
        reached = attack.targets - set(report.log.gone)
        assert not reached or set(report.log.refusals) & reached


def test_honest_unmasking_request_is_answered_once() -> None:
    session, requests = unmasking_setup()
    client = session.clients[1]
    (response,) = deliver(client, requests[1])
    assert isinstance(response, UnmaskingResponse)
    assert {s.owner for s in response.self_mask_shares} == {1, 2, 3, 4, 5}
    assert {s.owner for s in response.key_shares} == {6}
    # It revealed a mask-key share: only the fallback wave about client 6 may follow.
    assert client.state is ClientState.UNMASKED
    with pytest.raises(ProtocolViolation):
        deliver(client, requests[1])  # a second Unmasking request gets nothing
    swapped = dataclasses.replace(requests[1], survivors=(1, 2, 3, 4, 6), dropped=(5,))
    with pytest.raises(ProtocolViolation):
        deliver(client, swapped)


@pytest.mark.parametrize(
    ("survivors", "dropped", "why"),
    [
        ((1, 2, 3, 4, 5, 6), (6,), "victim 6 listed dropped and alive"),
        ((1, 2, 3, 4, 5), (5, 6), "victim 5 listed dropped and alive"),
        ((1, 2, 3, 4), (6,), "client 5 missing from both lists"),
        ((1, 2, 3, 4, 5), (), "a peer we masked with is missing"),
        ((1, 2, 3, 4, 5), (6, 7), "an unknown client listed dropped"),
        ((2, 3, 4, 5), (1, 6), "this client listed as dropped"),
        ((1, 2, 3), (4, 5, 6), "fewer than t survivors"),
    ],
)
def test_malicious_unmasking_requests_get_nothing(
    survivors: tuple[int, ...], dropped: tuple[int, ...], why: str
) -> None:
    session, requests = unmasking_setup()
    client = session.clients[1]
    evil = dataclasses.replace(requests[1], survivors=survivors, dropped=dropped)
    with pytest.raises(MaliciousRequestError) as caught:
        deliver(client, evil)
    assert caught.value.party == 0, why
    assert client.aborted
    with pytest.raises(ProtocolViolation):  # the honest request comes too late
        deliver(client, requests[1])


def test_split_view_attack_is_stopped_by_the_consistency_check() -> None:
    # The attack that breaks Flower (fault 2): tell some holders the victim dropped (to get
    # its key shares) and others that it survived (to get its b shares). In semi-honest mode
    # the server is trusted to follow the protocol; in active mode the consistency check
    # catches it: every client needs t signatures over the very survivor set it was shown.
    session = make_session(6, 5, mode="active")
    sid, victim = session.config.session_id, 5
    requests = advance_to(session, "masked_input")
    for client_id, request in requests.items():
        for reply in deliver(session.clients[client_id], request):
            session.server.receive(reply)
    honest_view, lying_view = (1, 2, 3, 4, 5, 6), (1, 2, 3, 4, 6)
    signatures: dict[int, bytes] = {}
    for client_id in (1, 2, 3, 4, 6):
        view = lying_view if client_id <= 3 else honest_view
        (check,) = deliver(
            session.clients[client_id], ConsistencyCheckRequest(0, client_id, sid, view)
        )
        signatures[client_id] = check.signature  # type: ignore[attr-defined]
    # Client 1 is asked for the victim's key share, with every signature the server has.
    every = tuple(PeerSignature(c, signatures[c]) for c in (2, 3, 4, 6))
    with pytest.raises(AuthenticationError):
        deliver(session.clients[1], UnmaskingRequest(0, 1, sid, lying_view, (victim,), every))
    # With only the signatures over its own view, client 2 has fewer than t.
    own_camp = tuple(PeerSignature(c, signatures[c]) for c in (1, 3))
    with pytest.raises(MaliciousRequestError):
        deliver(session.clients[2], UnmaskingRequest(0, 2, sid, lying_view, (victim,), own_camp))
    assert session.clients[1].aborted and session.clients[2].aborted


def test_wrong_session_and_wrong_round_leave_the_state_unchanged() -> None:
    session = make_session(4, 3)
    requests = advance_to(session, "share_keys")
    client = session.clients[2]
    assert client.state is ClientState.AWAIT_SHARE_KEYS
    foreign = dataclasses.replace(requests[2], session_id=bytes(16))
    with pytest.raises(ProtocolViolation):
        deliver(client, foreign)
    out_of_round = UnmaskingRequest(0, 2, session.config.session_id, (1, 2, 3), ())
    with pytest.raises(ProtocolViolation):
        deliver(client, out_of_round)
    with pytest.raises(ProtocolViolation):  # replay of round 0
        deliver(client, AdvertiseKeysRequest(0, 2, session.config.session_id, bytes(32)))
    misrouted = dataclasses.replace(requests[3], recipient=3)
    with pytest.raises(ProtocolViolation):
        deliver(client, misrouted)
    assert client.state is ClientState.AWAIT_SHARE_KEYS
    assert deliver(client, requests[2])  # the genuine request still works


def test_share_keys_guards() -> None:
    session = make_session(5, 3)
    requests = advance_to(session, "share_keys")
    request = requests[1]
    assert isinstance(request, ShareKeysRequest)
    cases = {
        "fewer than t": request.peers[:1],
        "not a neighbour (itself)": (
            *request.peers[:2],
            request.peers[0]._replace(client_id=1),
        ),
        "equal keys": (
            request.peers[0],
            request.peers[1]._replace(mask_public_key=request.peers[0].mask_public_key),
        ),
    }
    for why, peers in cases.items():
        client = Client(session.config, 1, session.inputs[1])
        deliver(client, AdvertiseKeysRequest(0, 1, session.config.session_id, bytes(32)))
        with pytest.raises(MaliciousRequestError):
            deliver(client, dataclasses.replace(request, peers=peers))
        assert client.aborted, why


def test_masked_input_guards() -> None:
    session = make_session(5, 4)
    requests = advance_to(session, "masked_input")
    request = requests[1]
    assert isinstance(request, MaskedInputRequest)
    with pytest.raises(MaliciousRequestError):  # fewer than t - 1 peers to mask with
        deliver(session.clients[1], dataclasses.replace(request, peers=request.peers[:2]))
    with pytest.raises(MaliciousRequestError):  # a peer whose boxes it never opened
        deliver(
            session.clients[2],
            dataclasses.replace(requests[2], peers=(*requests[2].peers[1:], 9)),  # type: ignore[attr-defined]
        )
    with pytest.raises(MaliciousRequestError):  # itself as its own peer
        deliver(
            session.clients[3],
            dataclasses.replace(requests[3], peers=(*requests[3].peers, 3)),  # type: ignore[attr-defined]
        )


def test_active_mode_signature_and_consistency_guards() -> None:
    session, requests = unmasking_setup("active")
    request = requests[1]
    assert len(request.signatures) == 4
    forged = dataclasses.replace(
        request, signatures=(PeerSignature(2, bytes(64)), *request.signatures[1:])
    )
    with pytest.raises(AuthenticationError):
        deliver(session.clients[1], forged)
    too_few = dataclasses.replace(requests[2], signatures=requests[2].signatures[:2])
    with pytest.raises(MaliciousRequestError):
        deliver(session.clients[2], too_few)
    other_view = dataclasses.replace(requests[3], survivors=(1, 2, 3, 4), dropped=(5, 6))
    with pytest.raises(MaliciousRequestError):  # differs from the signed survivor set
        deliver(session.clients[3], other_view)
    (response,) = deliver(session.clients[4], requests[4])
    assert isinstance(response, UnmaskingResponse)


def test_active_mode_consistency_request_guards() -> None:
    session = make_session(6, 5, mode="active")
    requests = advance_to(session, "masked_input")
    for client_id, request in requests.items():
        for reply in deliver(session.clients[client_id], request):
            session.server.receive(reply)
    sid = session.config.session_id
    cases = [
        (1, (2, 3, 4, 5, 6)),  # without the client itself
        (2, (1, 2, 3, 4)),  # fewer than t
        (3, (1, 2, 3, 4, 5, 6, 9)),  # an unknown client
    ]
    for client_id, survivors in cases:
        with pytest.raises(MaliciousRequestError):
            deliver(
                session.clients[client_id], ConsistencyCheckRequest(0, client_id, sid, survivors)
            )


def test_active_mode_forged_advertisement_is_refused() -> None:
    session = make_session(4, 3, mode="active")
    requests = advance_to(session, "share_keys")
    request = requests[1]
    assert isinstance(request, ShareKeysRequest)
    forged = request.peers[0]._replace(signature=bytes(64))
    with pytest.raises(AuthenticationError):
        deliver(
            session.clients[1], dataclasses.replace(request, peers=(forged, *request.peers[1:]))
        )


def test_active_mode_needs_the_registered_identity() -> None:
    session = make_session(4, 3, mode="active")
    stranger = generate_identities([1])[1]
    with pytest.raises(ConfigurationError):
        Client(session.config, 1, session.inputs[1], stranger)
    with pytest.raises(ConfigurationError):
        Client(session.config, 1, session.inputs[1])
    plain = make_session(3, 2)
    with pytest.raises(ConfigurationError):
        Client(plain.config, 1, plain.inputs[1], stranger)


def test_bad_inputs_and_misuse() -> None:
    session = make_session(3, 2, bits=8, length=4)
    for bad in (
        np.zeros(5, dtype=np.uint8),
        np.array([0, 1, 2, 256]),
        np.array([0, 1, 2, -1]),
        np.zeros(4, dtype=np.float64),
    ):
        with pytest.raises(ConfigurationError):
            Client(session.config, 1, bad)
    with pytest.raises(ConfigurationError):
        Client(session.config, 4, session.inputs[1])
    with pytest.raises(UsageError):
        session.clients[1].receive("not a message")  # type: ignore[arg-type]
    assert "Client(id=1" in repr(session.clients[1])
