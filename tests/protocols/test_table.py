"""The shared round tables (secagg.protocols.table): a table must be a function of its key,
and the client's refusals say why without naming any field of the message."""

from __future__ import annotations

import enum

import pytest

from secagg.errors import ProtocolViolation
from secagg.protocols.table import ClientTable, RoundEnd, Row, ServerTable
from secagg.protocols.threshold_ckks.messages import DecryptionRequest, InputRequest


class State(enum.Enum):
    WAITING = "waiting"
    SENT = "sent"
    ENDED = "ended"


class Act(enum.Enum):
    SEND = "send"
    DECRYPT = "decrypt"
    CLOSE = "close"


ROWS = (
    Row(State.WAITING, InputRequest, Act.SEND, State.SENT),
    Row(State.SENT, DecryptionRequest, Act.DECRYPT, State.ENDED, members_only=True),
)


def test_two_rows_for_one_key_are_refused_on_both_sides() -> None:
    with pytest.raises(ValueError, match="two client rows"):
        ClientTable([*ROWS, Row(State.WAITING, InputRequest, Act.DECRYPT, State.SENT)],
                    ended=State.ENDED)
    close = Row(State.SENT, RoundEnd, Act.CLOSE, State.ENDED, modes=frozenset({"a"}))
    ServerTable([close, Row(State.SENT, RoundEnd, Act.CLOSE, State.ENDED,
                            modes=frozenset({"b"}))], modes=("a", "b"))
    with pytest.raises(ValueError, match="two server rows"):
        ServerTable([close, Row(State.SENT, RoundEnd, Act.SEND, State.SENT)], modes=("a", "b"))


@pytest.mark.parametrize(
    ("state", "event", "member", "text"),
    [
        (State.ENDED, InputRequest, True, "InputRequest after the session ended"),
        (State.WAITING, RoundEnd, True, "unexpected RoundEnd"),
        (State.SENT, DecryptionRequest, False, "decryption request to a non-member"),
        (State.WAITING, DecryptionRequest, True,
         "a decryption request out of turn: this client is waiting, not sent"),
        (State.SENT, InputRequest, False,
         "InputRequest out of turn: this client is sent, not waiting"),
    ],
)
def test_refusals_name_types_and_states(state: State, event: type, member: bool,
                                        text: str) -> None:
    table = ClientTable(ROWS, ended=State.ENDED,
                        described={DecryptionRequest: ("a", "decryption request")})
    with pytest.raises(ProtocolViolation) as caught:
        table.lookup(state, event, member=member)
    assert caught.value.party == 0 and str(caught.value).startswith(text)


def test_rows_hold_in_their_modes_only() -> None:
    table = ServerTable([Row(State.SENT, RoundEnd, Act.CLOSE, State.ENDED,
                             modes=frozenset({"a"}))], modes=("a", "b"))
    assert table.lookup(State.SENT, RoundEnd, "a") is not None
    assert table.lookup(State.SENT, RoundEnd, "b") is None
