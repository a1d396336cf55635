"""The threshold-HE state machines in one table: states, events and who handles what.

Theory of operation (as h11's ``_state.py``). Each party is in one state
(:class:`ClientState`, :class:`ServerState`); the server's open states are named after the
rounds of :mod:`secagg.protocols.threshold_he.messages` (``encrypted_input``, then
``decryption``). What may happen in a state is listed once, in :data:`CLIENT_TRANSITIONS`
and :data:`SERVER_TRANSITIONS`: a row names the state, the event (a message type, or
:class:`RoundEnd` when a round's answers are in or its deadline passed), the
:class:`Action` that handles it and the state entered when the action returns. A row may
hold for committee members only (``members_only``) or for some decryption modes only
(``modes``, keyed by :attr:`ThresholdHEConfig.mode`: ``"full"``, ``"balanced"``,
``"ckks"``). The rows, the tables that index them and the server's receive/close envelope
are the shared ones of :mod:`secagg.protocols.table`.

Both parties consult the table once per event (:func:`client_transition`,
:func:`server_transition`). An event without a row is refused by that lookup alone: the
client raises the :class:`~secagg.errors.ProtocolViolation` it returns (its state
unchanged), the server records an out-of-round fault. With a row, the party runs the
row's action; when the action returns, the party enters ``next_state`` unless the action
ended the session itself (the server's ``done`` or ``aborted``). A client whose action
raises a ProtocolViolation is aborted for good.

The rows, in words:

* a client uploads its input once, when asked in ``waiting``;
* a committee member decrypts when asked, before or after its upload (a member whose
  upload was lost still decrypts); afterwards, in balanced mode, it answers fallback waves
  for further blocks of the byte-identical aggregate; in full and CKKS mode it refuses
  every further request (:class:`~secagg.errors.MaliciousRequestError`): one decryption
  per session;
* the server adds uploads during ``encrypted_input`` and, when that round ends, asks the
  committee to decrypt (or aborts below ``min_clients``); it verifies shares during
  ``decryption``. Threshold Paillier finishes as soon as the sum is complete; when the
  round ends short it sends a fallback wave to live members in the same round. CKKS
  counts the members' answers when the round ends: the answer of a strict plurality of at
  least ``threshold`` members wins, the dissenters are blamed, else it aborts.
"""

from __future__ import annotations

import enum
from typing import Final

from secagg.protocols.table import ClientTable, Event, RoundEnd, Row, ServerTable
from secagg.protocols.threshold_he.config import BALANCED, CKKS, FULL
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)

__all__ = [
    "ALL_MODES",
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
    INPUT_SENT = "input_sent"
    DECRYPTED = "decrypted"
    ABORTED = "aborted"


class ServerState(enum.Enum):
    IDLE = "idle"
    ENCRYPTED_INPUT = ROUND_ENCRYPTED_INPUT
    DECRYPTION = ROUND_DECRYPTION
    DONE = "done"
    ABORTED = "aborted"


SESSION_OVER: Final = frozenset({ServerState.DONE, ServerState.ABORTED})
"""Server states in which whatever still arrives is dropped without a note (late answers
are normal once the session ended)."""


class Action(enum.Enum):
    """What a party does for a row; each party maps its actions to its handlers."""

    # client
    SEND_INPUT = "encrypt the input and upload it"
    DECRYPT = "decrypt the requested blocks of the aggregate"
    DECRYPT_MORE = "decrypt further blocks of the same aggregate (a fallback wave)"
    REFUSE_REPEAT = "refuse a second decryption request"
    # server
    ADD_INPUT = "add the upload to the encrypted sum"
    REQUEST_DECRYPTION = "ask the committee to decrypt the sum of the uploads"
    ADD_SHARE = "verify the decryption share; finish once the sum is complete"
    FALLBACK_WAVE = "finish, or ask live members for the blocks still short"
    FINISH_OR_ABORT = "finish with the majority's decryption, or abort without one"


ALL_MODES: Final = frozenset({FULL, BALANCED, CKKS})

_C = ClientState
_S = ServerState

CLIENT_TRANSITIONS: tuple[Row[ClientState, Action], ...] = (
    Row(_C.WAITING, InputRequest, Action.SEND_INPUT, _C.INPUT_SENT),
    # A member decrypts whether or not its own upload left (or arrived).
    Row(_C.WAITING, DecryptionRequest, Action.DECRYPT, _C.DECRYPTED, members_only=True),
    Row(_C.INPUT_SENT, DecryptionRequest, Action.DECRYPT, _C.DECRYPTED, members_only=True),
    # Balanced mode: a fallback wave may ask for new blocks of the same aggregate.
    Row(
        _C.DECRYPTED,
        DecryptionRequest,
        Action.DECRYPT_MORE,
        _C.DECRYPTED,
        members_only=True,
        modes=frozenset({BALANCED}),
    ),
    # Full and CKKS mode: one decryption per member and session.
    Row(
        _C.DECRYPTED,
        DecryptionRequest,
        Action.REFUSE_REPEAT,
        _C.ABORTED,
        members_only=True,
        modes=frozenset({FULL, CKKS}),
    ),
)
"""Every event a client accepts (see the module docstring)."""

SERVER_TRANSITIONS: tuple[Row[ServerState, Action], ...] = (
    Row(_S.ENCRYPTED_INPUT, EncryptedInput, Action.ADD_INPUT, _S.ENCRYPTED_INPUT),
    Row(_S.ENCRYPTED_INPUT, RoundEnd, Action.REQUEST_DECRYPTION, _S.DECRYPTION),
    Row(_S.DECRYPTION, DecryptionShare, Action.ADD_SHARE, _S.DECRYPTION),
    # A decryption round that ends short: threshold Paillier asks other live members for
    # the short blocks (same round); CKKS members all hold the same key: the votes decide.
    Row(
        _S.DECRYPTION,
        RoundEnd,
        Action.FALLBACK_WAVE,
        _S.DECRYPTION,
        modes=frozenset({FULL, BALANCED}),
    ),
    Row(
        _S.DECRYPTION, RoundEnd, Action.FINISH_OR_ABORT, _S.ABORTED, modes=frozenset({CKKS})
    ),
)
"""Every event the server handles (see the module docstring)."""

CLIENT_TABLE: Final = ClientTable(
    CLIENT_TRANSITIONS,
    ended=ClientState.ABORTED,
    modes=ALL_MODES,
    described={
        InputRequest: ("an", "input request"),
        DecryptionRequest: ("a", "decryption request"),
    },
)
SERVER_TABLE: Final = ServerTable(SERVER_TRANSITIONS, modes=ALL_MODES)


def client_transition(
    state: ClientState, event: Event, *, member: bool, mode: str
) -> Row[ClientState, Action]:
    """The row for ``event`` reaching a client (a committee ``member`` or not) in ``state``
    in decryption ``mode``.

    Raises ProtocolViolation (party 0: the server sent it) when there is none
    (:meth:`~secagg.protocols.table.ClientTable.lookup` says which refusal).
    """
    return CLIENT_TABLE.lookup(state, event, member=member, mode=mode)


def server_transition(
    state: ServerState, event: Event, mode: str
) -> Row[ServerState, Action] | None:
    """The row for ``event`` reaching the server in ``state`` in ``mode``, or None when the
    table has none (an out-of-round message; ``RoundEnd``: no open round)."""
    return SERVER_TABLE.lookup(state, event, mode)
