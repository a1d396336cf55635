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
``"ckks"``).

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeAlias, TypeVar

from secagg.errors import ProtocolViolation
from secagg.protocols.base import SERVER_ID, Message
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


class RoundEnd:
    """The server's event that closes a round: every expected party answered, or the
    round's deadline passed (``close_round``). Never sent: a row key, like a message type."""


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
    modes: frozenset[str] = ALL_MODES


_C = ClientState
_S = ServerState

CLIENT_TRANSITIONS: tuple[Transition[ClientState], ...] = (
    Transition(_C.WAITING, InputRequest, Action.SEND_INPUT, _C.INPUT_SENT),
    # A member decrypts whether or not its own upload left (or arrived).
    Transition(_C.WAITING, DecryptionRequest, Action.DECRYPT, _C.DECRYPTED, members_only=True),
    Transition(_C.INPUT_SENT, DecryptionRequest, Action.DECRYPT, _C.DECRYPTED, members_only=True),
    # Balanced mode: a fallback wave may ask for new blocks of the same aggregate.
    Transition(
        _C.DECRYPTED,
        DecryptionRequest,
        Action.DECRYPT_MORE,
        _C.DECRYPTED,
        members_only=True,
        modes=frozenset({BALANCED}),
    ),
    # Full and CKKS mode: one decryption per member and session.
    Transition(
        _C.DECRYPTED,
        DecryptionRequest,
        Action.REFUSE_REPEAT,
        _C.ABORTED,
        members_only=True,
        modes=frozenset({FULL, CKKS}),
    ),
)
"""Every event a client accepts (see the module docstring)."""

SERVER_TRANSITIONS: tuple[Transition[ServerState], ...] = (
    Transition(_S.ENCRYPTED_INPUT, EncryptedInput, Action.ADD_INPUT, _S.ENCRYPTED_INPUT),
    Transition(_S.ENCRYPTED_INPUT, RoundEnd, Action.REQUEST_DECRYPTION, _S.DECRYPTION),
    Transition(_S.DECRYPTION, DecryptionShare, Action.ADD_SHARE, _S.DECRYPTION),
    # A decryption round that ends short: threshold Paillier asks other live members for
    # the short blocks (same round); CKKS members all hold the same key: the votes decide.
    Transition(
        _S.DECRYPTION,
        RoundEnd,
        Action.FALLBACK_WAVE,
        _S.DECRYPTION,
        modes=frozenset({FULL, BALANCED}),
    ),
    Transition(
        _S.DECRYPTION, RoundEnd, Action.FINISH_OR_ABORT, _S.ABORTED, modes=frozenset({CKKS})
    ),
)
"""Every event the server handles (see the module docstring)."""

_ClientKey = tuple[ClientState, Event, bool, str]
_ServerKey = tuple[ServerState, Event, str]


def _index_client() -> dict[_ClientKey, Transition[ClientState]]:
    index: dict[_ClientKey, Transition[ClientState]] = {}
    for row in CLIENT_TRANSITIONS:
        for member in (True, False) if not row.members_only else (True,):
            for mode in row.modes:
                key = (row.state, row.event, member, mode)
                if key in index:
                    raise AssertionError(f"two client rows for {key}")
                index[key] = row
    return index


def _index_server() -> dict[_ServerKey, Transition[ServerState]]:
    index: dict[_ServerKey, Transition[ServerState]] = {}
    for row in SERVER_TRANSITIONS:
        for mode in row.modes:
            key = (row.state, row.event, mode)
            if key in index:
                raise AssertionError(f"two server rows for {key}")
            index[key] = row
    return index


_CLIENT_INDEX: Final[Mapping[_ClientKey, Transition[ClientState]]] = _index_client()
_SERVER_INDEX: Final[Mapping[_ServerKey, Transition[ServerState]]] = _index_server()

_DESCRIBED: Final[Mapping[Event, tuple[str, str]]] = {  # (article, what) for refusal texts
    InputRequest: ("an", "input request"),
    DecryptionRequest: ("a", "decryption request"),
}


def client_transition(
    state: ClientState, event: Event, *, member: bool, mode: str
) -> Transition[ClientState]:
    """The row for ``event`` reaching a client (a committee ``member`` or not) in ``state``
    in decryption ``mode``.

    Raises ProtocolViolation (party 0: the server sent it) when there is none: an event
    after the session ended for this client, a request for members to a non-member, a
    request out of turn (the client's state is named) or a message type the client never
    takes. The texts name types and states only, never a field of the message.
    """
    row = _CLIENT_INDEX.get((state, event, member, mode))
    if row is not None:
        return row
    name = event.__name__
    article, what = _DESCRIBED.get(event, ("", ""))
    if state is ClientState.ABORTED:
        text = f"{name} after the session ended for this client ({state.value})"
    elif not what:
        text = f"unexpected {name}"
    elif not member and (state, event, True, mode) in _CLIENT_INDEX:
        text = f"{what} to a non-member"
    else:
        accepted = sorted(
            {r.state.value for r in CLIENT_TRANSITIONS if r.event is event and mode in r.modes}
        )
        text = f"{article} {what} out of turn: this client is {state.value}, " + (
            f"not {' or '.join(accepted)}"
        )
    raise ProtocolViolation(text, party=SERVER_ID)


def server_transition(
    state: ServerState, event: Event, mode: str
) -> Transition[ServerState] | None:
    """The row for ``event`` reaching the server in ``state`` in decryption ``mode``, or
    None when the table has none (an out-of-round message; ``RoundEnd``: no open round)."""
    return _SERVER_INDEX.get((state, event, mode))
