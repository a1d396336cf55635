"""The threshold-CKKS state machines in one table: states, events and who handles what.

Theory of operation (as h11's ``_state.py``, and as the other two families). Each party is
in one state (:class:`ClientState`, :class:`ServerState`); what may happen in a state is
listed once, in :data:`CLIENT_TRANSITIONS` and :data:`SERVER_TRANSITIONS`: a row names the
state, the event (a message type, or :class:`RoundEnd` when a round's answers are in or its
deadline passed), the :class:`Action` that handles it and the state entered when the
action returns. A client row may hold for committee members only (``members_only``).
The rows, the tables that index them and the server's receive/close envelope are the shared
ones of :mod:`secagg.protocols.table` (one definition for the threshold families).

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
from typing import Final

from secagg.protocols.table import ClientTable, Event, RoundEnd, Row, ServerTable
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
    "CLIENT_TABLE",
    "CLIENT_TRANSITIONS",
    "SERVER_TABLE",
    "SERVER_TRANSITIONS",
    "SESSION_OVER",
    "Action",
    "ClientState",
    "Event",
    "RoundEnd",
    "ServerState",
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


_C = ClientState
_S = ServerState
_BEFORE_INPUT = (_C.WAITING, _C.ADVERTISED, _C.DEALT, _C.CHECKED)

CLIENT_TRANSITIONS: tuple[Row[ClientState, Action], ...] = (
    Row(_C.WAITING, KeyAdvertiseRequest, Action.ADVERTISE, _C.ADVERTISED, True),
    Row(_C.ADVERTISED, KeyDealRequest, Action.DEAL, _C.DEALT, True),
    Row(_C.DEALT, KeyCheckRequest, Action.CHECK, _C.CHECKED, True),
    # Every client uploads once; a member that missed part of the setup still does.
    Row(_C.WAITING, InputRequest, Action.SEND_INPUT, _C.INPUT_SENT),
    *(
        Row(state, InputRequest, Action.SEND_INPUT, _C.INPUT_SENT, True)
        for state in _BEFORE_INPUT[1:]
    ),
    Row(_C.INPUT_SENT, DecryptionRequest, Action.DECRYPT, _C.DECRYPTED, True),
    # One decryption per member and session.
    Row(_C.DECRYPTED, DecryptionRequest, Action.REFUSE_REPEAT, _C.ABORTED, True),
)
"""Every event a client accepts (see the module docstring)."""

SERVER_TRANSITIONS: tuple[Row[ServerState, Action], ...] = (
    Row(_S.KEY_ADVERTISE, KeyAdvertise, Action.ADD_ADVERTISE, _S.KEY_ADVERTISE),
    Row(_S.KEY_ADVERTISE, RoundEnd, Action.REQUEST_DEALS, _S.KEY_DEAL),
    Row(_S.KEY_DEAL, KeyDeal, Action.ADD_DEAL, _S.KEY_DEAL),
    Row(_S.KEY_DEAL, RoundEnd, Action.FORWARD_DELIVERIES, _S.KEY_CHECK),
    Row(_S.KEY_CHECK, KeyCheck, Action.ADD_CHECK, _S.KEY_CHECK),
    Row(_S.KEY_CHECK, RoundEnd, Action.PUBLISH_KEY, _S.ENCRYPTED_INPUT),
    Row(_S.ENCRYPTED_INPUT, EncryptedInput, Action.ADD_INPUT, _S.ENCRYPTED_INPUT),
    Row(_S.ENCRYPTED_INPUT, RoundEnd, Action.REQUEST_DECRYPTION, _S.DECRYPTION),
    Row(_S.DECRYPTION, DecryptionShare, Action.ADD_SHARE, _S.DECRYPTION),
    Row(_S.DECRYPTION, RoundEnd, Action.FINISH, _S.DONE),
)
"""Every event the server handles (see the module docstring)."""

CLIENT_TABLE: Final = ClientTable(CLIENT_TRANSITIONS, ended=ClientState.ABORTED)
SERVER_TABLE: Final = ServerTable(SERVER_TRANSITIONS)


def client_transition(
    state: ClientState, event: Event, *, member: bool
) -> Row[ClientState, Action]:
    """The row for ``event`` reaching a client (a committee ``member`` or not) in ``state``.

    Raises ProtocolViolation (party 0: the server sent it) when there is none
    (:meth:`~secagg.protocols.table.ClientTable.lookup` says which refusal).
    """
    return CLIENT_TABLE.lookup(state, event, member=member)


def server_transition(state: ServerState, event: Event) -> Row[ServerState, Action] | None:
    """The row for ``event`` reaching the server in ``state``, or None when the table has
    none (an out-of-round message; ``RoundEnd``: no open round)."""
    return SERVER_TABLE.lookup(state, event)
