"""The threshold-CKKS state machines in one table: states, events and who handles what.

Theory of operation (as h11's ``_state.py``, and as the other two families). Each party is
in one state (:class:`ClientState`, :class:`ServerState`); what may happen in a state is
listed once, in :data:`CLIENT_TRANSITIONS` and :data:`SERVER_TRANSITIONS`: a row names the
state, the event (a message type, or :class:`RoundEnd` when a round's answers are in or its
deadline passed), the :class:`Action` that handles it and the state entered when the
action returns. A client row may hold for committee members only (``members_only``).

Both parties consult their table once per event (:func:`client_transition`,
:func:`server_transition`). An event without a row is refused by that lookup alone: the
client raises the :class:`~secagg.errors.ProtocolViolation` it returns (its state
unchanged), the server records an out-of-round fault. A client whose action raises a
ProtocolViolation is aborted for good.

The rows, in words:

* a committee member advertises, deals and checks its deliveries once each, in order;
* every client uploads once when asked, whatever setup round it reached (a member that
  missed part of the setup holds no key share but still contributes its input);
* a member that holds a key share decrypts once, after its upload; a second decryption
  request is refused (MaliciousRequestError): one decryption per session;
* the server collects each round's answers and, when the round ends, sends the next
  round's requests (or aborts when too few remain); the decryption round ends with the
  verified combination of whatever shares arrived.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeAlias, TypeVar

from secagg.errors import ProtocolViolation
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_ckks.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    ROUND_KEY_ADVERTISE,
    ROUND_KEY_CHECK,
    ROUND_KEY_DEAL,
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

__all__ = [
    "CLIENT_TRANSITIONS",
    "SERVER_TRANSITIONS",
    "SESSION_OVER",
    "Action",
    "ClientState",
    "RoundEnd",
    "ServerState",
    "Transition",
    "client_transition",
    "server_transition",
]


class ClientState(enum.Enum):
    WAITING = "waiting"
    ADVERTISED = "advertised"
    DEALT = "dealt"
    CHECKED = "checked"
    INPUT_SENT = "input_sent"
    DECRYPTED = "decrypted"
    ABORTED = "aborted"


class ServerState(enum.Enum):
    IDLE = "idle"
    KEY_ADVERTISE = ROUND_KEY_ADVERTISE
    KEY_DEAL = ROUND_KEY_DEAL
    KEY_CHECK = ROUND_KEY_CHECK
    ENCRYPTED_INPUT = ROUND_ENCRYPTED_INPUT
    DECRYPTION = ROUND_DECRYPTION
    DONE = "done"
    ABORTED = "aborted"


SESSION_OVER: Final = frozenset({ServerState.DONE, ServerState.ABORTED})
"""Server states in which whatever still arrives is dropped without a note."""


class RoundEnd:
    """The server's event that closes a round: every expected party answered, or the
    round's deadline passed (``close_round``). Never sent: a row key, like a message type."""


class Action(enum.Enum):
    """What a party does for a row; each party maps its actions to its handlers."""

    # client (committee member)
    ADVERTISE = "draw a sealing key pair and advertise its public key"
    DEAL = "generate the key share, seal one Shamir delivery per peer"
    CHECK = "open the deliveries addressed to this member, complain about bad ones"
    # client (everyone)
    SEND_INPUT = "encrypt the input under the collective key and upload it"
    DECRYPT = "answer with this member's decryption share of the aggregate"
    REFUSE_REPEAT = "refuse a second decryption request"
    # server
    ADD_ADVERTISE = "record a member's sealing key"
    REQUEST_DEALS = "send every advertised member its peers' keys"
    ADD_DEAL = "check and record a member's public key share and sealed deliveries"
    FORWARD_DELIVERIES = "forward every member the deliveries addressed to it"
    ADD_CHECK = "record a member's complaints"
    PUBLISH_KEY = "fix the contributors and the key holders; send the collective key"
    ADD_INPUT = "add the upload to the encrypted sum"
    REQUEST_DECRYPTION = "ask the key holders to decrypt the sum of the uploads"
    ADD_SHARE = "check and record a decryption share"
    FINISH = "combine the shares (any t, checked against the rest), or abort"


StateT = TypeVar("StateT", ClientState, ServerState)
Event: TypeAlias = type[Message] | type[RoundEnd]
"""A row's key besides the state: the type of a message, or :class:`RoundEnd`."""


@dataclass(frozen=True)
class Transition(Generic[StateT]):
    """One row: in ``state``, ``event`` is handled by ``action``, then ``next_state``."""

    state: StateT
    event: Event
    action: Action
    next_state: StateT
    members_only: bool = False


_C = ClientState
_S = ServerState
_BEFORE_INPUT = (_C.WAITING, _C.ADVERTISED, _C.DEALT, _C.CHECKED)

CLIENT_TRANSITIONS: tuple[Transition[ClientState], ...] = (
    Transition(_C.WAITING, KeyAdvertiseRequest, Action.ADVERTISE, _C.ADVERTISED, True),
    Transition(_C.ADVERTISED, KeyDealRequest, Action.DEAL, _C.DEALT, True),
    Transition(_C.DEALT, KeyCheckRequest, Action.CHECK, _C.CHECKED, True),
    # Every client uploads once; a member that missed part of the setup still does.
    Transition(_C.WAITING, InputRequest, Action.SEND_INPUT, _C.INPUT_SENT),
    *(
        Transition(state, InputRequest, Action.SEND_INPUT, _C.INPUT_SENT, True)
        for state in _BEFORE_INPUT[1:]
    ),
    Transition(_C.INPUT_SENT, DecryptionRequest, Action.DECRYPT, _C.DECRYPTED, True),
    # One decryption per member and session.
    Transition(_C.DECRYPTED, DecryptionRequest, Action.REFUSE_REPEAT, _C.ABORTED, True),
)
"""Every event a client accepts (see the module docstring)."""

SERVER_TRANSITIONS: tuple[Transition[ServerState], ...] = (
    Transition(_S.KEY_ADVERTISE, KeyAdvertise, Action.ADD_ADVERTISE, _S.KEY_ADVERTISE),
    Transition(_S.KEY_ADVERTISE, RoundEnd, Action.REQUEST_DEALS, _S.KEY_DEAL),
    Transition(_S.KEY_DEAL, KeyDeal, Action.ADD_DEAL, _S.KEY_DEAL),
    Transition(_S.KEY_DEAL, RoundEnd, Action.FORWARD_DELIVERIES, _S.KEY_CHECK),
    Transition(_S.KEY_CHECK, KeyCheck, Action.ADD_CHECK, _S.KEY_CHECK),
    Transition(_S.KEY_CHECK, RoundEnd, Action.PUBLISH_KEY, _S.ENCRYPTED_INPUT),
    Transition(_S.ENCRYPTED_INPUT, EncryptedInput, Action.ADD_INPUT, _S.ENCRYPTED_INPUT),
    Transition(_S.ENCRYPTED_INPUT, RoundEnd, Action.REQUEST_DECRYPTION, _S.DECRYPTION),
    Transition(_S.DECRYPTION, DecryptionShare, Action.ADD_SHARE, _S.DECRYPTION),
    Transition(_S.DECRYPTION, RoundEnd, Action.FINISH, _S.DONE),
)
"""Every event the server handles (see the module docstring)."""

_ClientKey = tuple[ClientState, Event, bool]
_ServerKey = tuple[ServerState, Event]


def _index_client() -> dict[_ClientKey, Transition[ClientState]]:
    index: dict[_ClientKey, Transition[ClientState]] = {}
    for row in CLIENT_TRANSITIONS:
        for member in (True,) if row.members_only else (True, False):
            key = (row.state, row.event, member)
            if key in index:
                raise AssertionError(f"two client rows for {key}")
            index[key] = row
    return index


def _index_server() -> dict[_ServerKey, Transition[ServerState]]:
    index: dict[_ServerKey, Transition[ServerState]] = {}
    for row in SERVER_TRANSITIONS:
        key = (row.state, row.event)
        if key in index:
            raise AssertionError(f"two server rows for {key}")
        index[key] = row
    return index


_CLIENT_INDEX: Final[Mapping[_ClientKey, Transition[ClientState]]] = _index_client()
_SERVER_INDEX: Final[Mapping[_ServerKey, Transition[ServerState]]] = _index_server()


def client_transition(state: ClientState, event: Event, *, member: bool) -> Transition[ClientState]:
    """The row for ``event`` reaching a client (a committee ``member`` or not) in ``state``.

    Raises ProtocolViolation (party 0: the server sent it) when there is none: an event
    after the session ended for this client, a request for members to a non-member, a
    request out of turn (the client's state is named) or a message type the client never
    takes. The texts name types and states only, never a field of the message.
    """
    row = _CLIENT_INDEX.get((state, event, member))
    if row is not None:
        return row
    name = event.__name__
    if state is ClientState.ABORTED:
        text = f"{name} after the session ended for this client ({state.value})"
    elif not member and not any(key[1] is event and not key[2] for key in _CLIENT_INDEX):
        text = f"{name} to a non-member"
    elif any(key[1] is event for key in _CLIENT_INDEX):
        accepted = sorted({key[0].value for key in _CLIENT_INDEX if key[1] is event})
        text = f"{name} out of turn: this client is {state.value}, not {' or '.join(accepted)}"
    else:
        text = f"unexpected {name}"
    raise ProtocolViolation(text, party=SERVER_ID)


def server_transition(state: ServerState, event: Event) -> Transition[ServerState] | None:
    """The row for ``event`` reaching the server in ``state``, or None when the table has
    none (an out-of-round message; ``RoundEnd``: no open round)."""
    return _SERVER_INDEX.get((state, event))
