"""Review: the client's guards count distinct peers, whatever object reaches them.

Finding (before the fix): the id lists of a message were checked for duplicates only when
decoding bytes. A message object built in process (the simulator, a test harness, any
embedding that hands objects to ``Client.receive``) could repeat an id, and the guards
counted entries, not peers:
* a MaskedInputRequest repeating one neighbour's bundle t - 1 times passed the "at least
  t - 1 peers shared" check, and the client masked with that single neighbour (a server
  colluding with it then needs only b_u to unmask u's input);
* an UnmaskingRequest repeating one signature passed the "t - 1 neighbours confirmed U3"
  check of active mode.
The other engineer's client now refuses doubled bundles (pinned here); the guards of this
review count distinct signers and advertisers, and the server drops a client whose
ShareKeys names one neighbour twice (else the doubled bundle reached an honest neighbour,
which refused the whole round) and discards an Unmasking answer that repeats an owner.
"""

from __future__ import annotations

import dataclasses

import pytest

from secagg.errors import ExclusionReason, MaliciousRequestError, ProtocolViolation
from secagg.protocols.base import Message
from secagg.protocols.bonawitz.messages import (
    MaskedInputRequest,
    RevealedShare,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingResponse,
)
from secagg.protocols.bonawitz.server_unmasking import RevealedShares
from tests.helpers.protocol import advance_to, deliver, make_session, unmasking_setup

SID = bytes(16)


def test_a_repeated_bundle_does_not_count_as_t_minus_1_peers() -> None:
    session = make_session(6, 4)
    requests = advance_to(session, "masked_input")
    request = requests[1]
    assert isinstance(request, MaskedInputRequest)
    one = request.peers[0]
    client = session.clients[1]
    with pytest.raises(ProtocolViolation):
        # Either the message cannot be built or the client refuses it: never a masked input.
        client.receive(dataclasses.replace(request, peers=(one, one, one)))


def test_repeated_signatures_do_not_count_twice() -> None:
    session, requests = unmasking_setup("active")  # n = 6, t = 5: 4 signatures needed
    request = requests[2]
    two = request.signatures[:2]
    client = session.clients[2]
    with pytest.raises(MaliciousRequestError):
        client.receive(dataclasses.replace(request, signatures=two + two))
    assert client.aborted


def test_repeated_advertisements_are_refused() -> None:
    session = make_session(5, 4)
    requests = advance_to(session, "share_keys")
    request = requests[1]
    assert isinstance(request, ShareKeysRequest)
    first, second = request.peers[:2]
    # Two advertisements under one id (distinct keys): one neighbour, counted twice.
    twin = second._replace(client_id=first.client_id)
    client = session.clients[1]
    with pytest.raises(MaliciousRequestError):
        client.receive(dataclasses.replace(request, peers=(first, twin, *request.peers[2:])))
    assert client.aborted


def test_server_drops_a_client_that_sends_two_bundles_to_one_neighbour() -> None:
    session = make_session(5, 3)
    server = session.server
    requests = advance_to(session, "share_keys")
    replies = {c: session.clients[c].receive(m)[0] for c, m in requests.items()}
    bad = replies[1]
    assert isinstance(bad, ShareKeys)
    doubled = (*bad.boxes, bad.boxes[0])
    server.receive(dataclasses.replace(bad, boxes=doubled))
    outgoing: list[Message] = []
    for client_id in (2, 3, 4, 5):
        outgoing += server.receive(replies[client_id])
    assert {m.recipient for m in outgoing} == {2, 3, 4, 5}
    for message in outgoing:  # the honest clients never see a doubled box
        assert isinstance(message, ShareCheckRequest)
        assert all(item.peer != 1 for item in message.boxes)
        session.clients[message.recipient].receive(message)
    assert "two boxes for one holder" in " ".join(server.faults[1])


def test_a_response_with_repeated_owners_is_discarded() -> None:
    revealed = RevealedShares()
    doubled = UnmaskingResponse(
        3,
        0,
        SID,
        (RevealedShare(2, bytes(35), bytes(16)), RevealedShare(2, b"\x01" * 35, bytes(16))),
        (),
    )
    notes = revealed.record(doubled, frozenset({2}), frozenset())
    assert notes and "does not answer" in notes[0]
    assert [note.reason for note in notes] == [ExclusionReason.INVALID_CONTENT]
    assert not any(revealed.records.values())


def test_both_shares_of_a_victim_are_never_revealed_in_one_answer() -> None:
    # Flower fault 2, pinned at the guard: every way of listing a neighbour both dropped
    # and alive is refused, and the refused client is aborted with its secrets wiped.
    _, requests = unmasking_setup()
    request = requests[1]
    for victim in (2, 3, 4, 5, 6):
        client_session, fresh = unmasking_setup()
        survivors = tuple(sorted({*request.survivors, victim}))
        dropped = tuple(sorted({*request.dropped, victim}))
        client = client_session.clients[1]
        with pytest.raises(MaliciousRequestError):
            deliver(client, dataclasses.replace(fresh[1], survivors=survivors, dropped=dropped))
        assert client.aborted
        assert not client._held
