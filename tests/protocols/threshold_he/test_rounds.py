"""The threshold-HE transition table: one row per accepted event, every other refused.

The client and the server find their handlers through
:mod:`secagg.protocols.threshold_he.rounds` and refuse from that one lookup whatever has no
row; these tests pin the table cell by cell, so a row that appears or vanishes fails here.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from secagg.errors import MaliciousRequestError, ProtocolViolation
from secagg.he.paillier import encrypt_vector
from secagg.he.threshold_paillier import KeyShare
from secagg.protocols.base import SERVER_ID
from secagg.protocols.threshold_he import (
    ThresholdHEClient,
    ThresholdHEConfig,
    ThresholdHEServer,
    setup_threshold_paillier,
)
from secagg.protocols.threshold_he.config import BALANCED, CKKS, FULL
from secagg.protocols.threshold_he.messages import (
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.protocols.threshold_he.rounds import (
    ALL_MODES,
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    Action,
    ClientState,
    Event,
    RoundEnd,
    ServerState,
    client_transition,
    server_transition,
)

EVENTS: list[Event] = [InputRequest, EncryptedInput, DecryptionRequest, DecryptionShare, RoundEnd]

C, S = ClientState, ServerState
CLIENT_CELLS = {
    # (state, event, member, mode) -> action
    **{
        (C.WAITING, InputRequest, m, mode): Action.SEND_INPUT
        for m in (True, False)
        for mode in ALL_MODES
    },
    **{(C.WAITING, DecryptionRequest, True, mode): Action.DECRYPT for mode in ALL_MODES},
    **{(C.INPUT_SENT, DecryptionRequest, True, mode): Action.DECRYPT for mode in ALL_MODES},
    (C.DECRYPTED, DecryptionRequest, True, BALANCED): Action.DECRYPT_MORE,
    (C.DECRYPTED, DecryptionRequest, True, FULL): Action.REFUSE_REPEAT,
    (C.DECRYPTED, DecryptionRequest, True, CKKS): Action.REFUSE_REPEAT,
}
SERVER_CELLS = {
    # (state, event, mode) -> action
    **{(S.ENCRYPTED_INPUT, EncryptedInput, mode): Action.ADD_INPUT for mode in ALL_MODES},
    **{(S.ENCRYPTED_INPUT, RoundEnd, mode): Action.REQUEST_DECRYPTION for mode in ALL_MODES},
    **{(S.DECRYPTION, DecryptionShare, mode): Action.ADD_SHARE for mode in ALL_MODES},
    (S.DECRYPTION, RoundEnd, FULL): Action.FALLBACK_WAVE,
    (S.DECRYPTION, RoundEnd, BALANCED): Action.FALLBACK_WAVE,
    (S.DECRYPTION, RoundEnd, CKKS): Action.FINISH_OR_ABORT,
}


@pytest.mark.parametrize(
    ("state", "event", "member", "mode"),
    list(itertools.product(ClientState, EVENTS, (True, False), sorted(ALL_MODES))),
    ids=str,
)
def test_client_cells(state: ClientState, event: Event, member: bool, mode: str) -> None:
    expected = CLIENT_CELLS.get((state, event, member, mode))
    if expected is not None:
        row = client_transition(state, event, member=member, mode=mode)
        assert (row.state, row.event, row.action) == (state, event, expected)
        return
    with pytest.raises(ProtocolViolation) as caught:
        client_transition(state, event, member=member, mode=mode)
    assert caught.value.party == SERVER_ID and not isinstance(caught.value, MaliciousRequestError)
    text = str(caught.value)
    assert len(text) < 120
    if state is C.ABORTED:
        assert "session ended for this client" in text
    elif event is InputRequest:
        assert text == f"an input request out of turn: this client is {state.value}, not waiting"
    elif event is DecryptionRequest:
        assert text == "decryption request to a non-member"
    else:
        assert text == f"unexpected {event.__name__}"


@pytest.mark.parametrize(
    ("state", "event", "mode"),
    list(itertools.product(ServerState, EVENTS, sorted(ALL_MODES))),
    ids=str,
)
def test_server_cells(state: ServerState, event: Event, mode: str) -> None:
    row = server_transition(state, event, mode)
    expected = SERVER_CELLS.get((state, event, mode))
    assert (row.action if row else None) is expected


def test_every_action_has_exactly_one_handler() -> None:
    assert set(ThresholdHEClient._HANDLERS) == {row.action for row in CLIENT_TRANSITIONS}
    assert set(ThresholdHEServer._HANDLERS) == {row.action for row in SERVER_TRANSITIONS}


@functools.cache
def full_setup() -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    # Test-only 512-bit key.
    return setup_threshold_paillier(
        [1, 2, 3, 4], bits=16, vector_length=4, committee=[1, 2, 3], threshold=2, key_bits=512
    )


def test_full_mode_refuses_any_second_request_even_of_the_same_aggregate() -> None:
    """The full-mode row: one decryption per member and session (balanced mode answers
    fallback waves for new blocks instead, see test_balanced)."""
    config, shares = full_setup()
    assert config.mode == FULL
    key = config.public_key
    assert key is not None
    uploads = [
        encrypt_vector(key.paillier, np.full(4, c, np.uint64), config.layout) for c in (2, 3, 4)
    ]
    aggregate = uploads[0] + uploads[1] + uploads[2]
    request = DecryptionRequest(SERVER_ID, 1, config.session_id, (2, 3, 4), aggregate.to_bytes())
    member = ThresholdHEClient(config, 1, np.zeros(4, np.uint32), key_share=shares[1])
    (share,) = member.receive(request)
    assert isinstance(share, DecryptionShare) and member.state is ClientState.DECRYPTED
    with pytest.raises(MaliciousRequestError):
        member.receive(request)
    assert member.state is ClientState.ABORTED
