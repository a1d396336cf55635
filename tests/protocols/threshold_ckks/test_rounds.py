"""The threshold-CKKS transition table, cell by cell: a row that appears or vanishes fails
here; every other (state, event) is refused by the one lookup."""

from __future__ import annotations

import itertools

import pytest

from secagg.errors import ProtocolViolation
from secagg.protocols.threshold_ckks.messages import (
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
    KeyAdvertise,
    KeyAdvertiseRequest,
    KeyCheck,
    KeyCheckRequest,
    KeyDeal,
    KeyDealRequest,
)
from secagg.protocols.threshold_ckks.rounds import (
    Action,
    ClientState,
    Event,
    RoundEnd,
    ServerState,
    client_transition,
    server_transition,
)

C, S = ClientState, ServerState
TO_CLIENTS: list[Event] = [
    KeyAdvertiseRequest,
    KeyDealRequest,
    KeyCheckRequest,
    InputRequest,
    DecryptionRequest,
]
TO_SERVER: list[Event] = [
    KeyAdvertise,
    KeyDeal,
    KeyCheck,
    EncryptedInput,
    DecryptionShare,
    RoundEnd,
]

CLIENT_CELLS = {
    (C.WAITING, KeyAdvertiseRequest, True): Action.ADVERTISE,
    (C.ADVERTISED, KeyDealRequest, True): Action.DEAL,
    (C.DEALT, KeyCheckRequest, True): Action.CHECK,
    (C.WAITING, InputRequest, True): Action.SEND_INPUT,
    (C.WAITING, InputRequest, False): Action.SEND_INPUT,
    (C.ADVERTISED, InputRequest, True): Action.SEND_INPUT,
    (C.DEALT, InputRequest, True): Action.SEND_INPUT,
    (C.CHECKED, InputRequest, True): Action.SEND_INPUT,
    (C.INPUT_SENT, DecryptionRequest, True): Action.DECRYPT,
    (C.DECRYPTED, DecryptionRequest, True): Action.REFUSE_REPEAT,
}
SERVER_CELLS = {
    (S.KEY_ADVERTISE, KeyAdvertise): Action.ADD_ADVERTISE,
    (S.KEY_ADVERTISE, RoundEnd): Action.REQUEST_DEALS,
    (S.KEY_DEAL, KeyDeal): Action.ADD_DEAL,
    (S.KEY_DEAL, RoundEnd): Action.FORWARD_DELIVERIES,
    (S.KEY_CHECK, KeyCheck): Action.ADD_CHECK,
    (S.KEY_CHECK, RoundEnd): Action.PUBLISH_KEY,
    (S.ENCRYPTED_INPUT, EncryptedInput): Action.ADD_INPUT,
    (S.ENCRYPTED_INPUT, RoundEnd): Action.REQUEST_DECRYPTION,
    (S.DECRYPTION, DecryptionShare): Action.ADD_SHARE,
    (S.DECRYPTION, RoundEnd): Action.FINISH,
}


@pytest.mark.parametrize(
    ("state", "event", "member"), list(itertools.product(C, TO_CLIENTS, (True, False)))
)
def test_client_cells(state: ClientState, event: Event, member: bool) -> None:
    expected = CLIENT_CELLS.get((state, event, member))
    if expected is None:
        with pytest.raises(ProtocolViolation) as info:
            client_transition(state, event, member=member)
        assert info.value.party == 0 and len(str(info.value)) < 200
    else:
        assert client_transition(state, event, member=member).action is expected


@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, TO_SERVER)))
def test_server_cells(state: ServerState, event: Event) -> None:
    row = server_transition(state, event)
    expected = SERVER_CELLS.get((state, event))
    assert (row.action if row else None) is expected


def test_refusal_texts_say_why() -> None:
    with pytest.raises(ProtocolViolation, match="to a non-member"):
        client_transition(C.WAITING, KeyAdvertiseRequest, member=False)
    with pytest.raises(ProtocolViolation, match="out of turn: this client is waiting"):
        client_transition(C.WAITING, KeyCheckRequest, member=True)
    with pytest.raises(ProtocolViolation, match="after the session ended"):
        client_transition(C.ABORTED, InputRequest, member=True)
