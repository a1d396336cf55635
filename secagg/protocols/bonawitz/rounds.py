"""The Bonawitz / SecAgg+ state machines: their states and their one transition table.

Role: both sides, every round. Everything that decides what a Bonawitz party accepts next
lives here (as in h11's ``_state.py``); :mod:`~secagg.protocols.bonawitz.client` and
:mod:`~secagg.protocols.bonawitz.server` hold the handlers, not the rules.

Theory of operation. Each side is a :class:`TransitionTable` of :class:`Transition` rows.
A row reads: in ``state``, in a session of one of ``modes``, a message of exactly type
``receives`` is handled by the method named ``handler``, and the machine moves to
``next_state``. Each (mode, state) has at most one row, so a state waits for exactly one
message type. ``Client.receive`` and ``Server.receive`` consult their table once per
message (:meth:`TransitionTable.lookup`); a message with no row is out of round and is
refused from that lookup, before any handler runs, and the handler of a legal one is the
one its row names: there is no dispatch chain to keep in step with the table.

The two modes differ by one round. Active mode runs ConsistencyCheck (round 3: every
client signs the survivor set U3); semi-honest mode has none, so its MaskedInput row goes
straight to Unmasking. That skip is a row of each table (see :data:`CLIENT_TABLE` and
:data:`SERVER_TABLE`) and is written nowhere else.

Server rows say two more things about their round. ``closer`` names the method that runs
when the round closes (every live client answered, or the transport's deadline passed) and
returns the next round's requests. ``bad_answer_excludes`` says what a bad answer costs its
sender: in rounds 0-2 it is removed from the round and left out of the sum; in rounds 3-4
its masked input is already in the sum, so the bad answer is only recorded as a fault.

Round names (``ROUND_*``) are defined with the messages
(:mod:`secagg.protocols.bonawitz.messages`) that carry them; :class:`ServerState` takes
its collecting states' values from them. :class:`ClientState` values are part of a saved
client state (:mod:`secagg.protocols.bonawitz.client_state`): they never change.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from secagg.protocols.bonawitz.config import ACTIVE, MODES, SEMI_HONEST, Mode
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    MaskedInput,
    MaskedInputRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
)
from secagg.protocols.wire import ProtocolMessage

__all__ = [
    "CLIENT_TABLE",
    "SERVER_TABLE",
    "ClientState",
    "ServerState",
    "Transition",
    "TransitionTable",
]


class ClientState(enum.Enum):
    """Where a client stands: which request it waits for (values are stored in saved
    client states: never change them)."""

    AWAIT_ADVERTISE_KEYS = "await advertise_keys request"
    AWAIT_SHARE_KEYS = "await share_keys request"
    AWAIT_MASKED_INPUT = "await masked_input request"
    AWAIT_CONSISTENCY_CHECK = "await consistency_check request"
    AWAIT_UNMASKING = "await unmasking request"
    DONE = "done"
    ABORTED = "aborted"


class ServerState(enum.Enum):
    """Which round the server is collecting (or that it is idle, done or aborted)."""

    IDLE = "idle"
    ADVERTISE_KEYS = ROUND_ADVERTISE_KEYS
    SHARE_KEYS = ROUND_SHARE_KEYS
    MASKED_INPUT = ROUND_MASKED_INPUT
    CONSISTENCY_CHECK = ROUND_CONSISTENCY_CHECK
    UNMASKING = ROUND_UNMASKING
    DONE = "done"
    ABORTED = "aborted"


StateT = TypeVar("StateT", ClientState, ServerState)

BOTH_MODES: Final[frozenset[Mode]] = frozenset(MODES)
ACTIVE_ONLY: Final[frozenset[Mode]] = frozenset({ACTIVE})
SEMI_HONEST_ONLY: Final[frozenset[Mode]] = frozenset({SEMI_HONEST})


@dataclass(frozen=True)
class Transition(Generic[StateT]):
    """One row: in ``state`` (sessions of ``modes``), a ``receives`` message goes to the
    method named ``handler`` and the machine moves to ``next_state``.

    Server rows only: ``closer`` is the method that closes the round and returns the next
    round's requests; ``bad_answer_excludes`` whether a bad answer leaves its sender out of
    the sum (else it is only recorded as a fault).
    """

    state: StateT
    receives: type[ProtocolMessage]
    handler: str
    next_state: StateT
    modes: frozenset[Mode] = BOTH_MODES
    closer: str | None = None
    bad_answer_excludes: bool = False


class TransitionTable(Generic[StateT]):
    """The rows of one side, indexed for the one lookup per message.

    Raises ValueError at construction if two rows claim the same (mode, state) or a row
    names no mode: a table that is not a function of (mode, state) is a bug.
    """

    def __init__(self, rows: Iterable[Transition[StateT]]) -> None:
        self.rows: tuple[Transition[StateT], ...] = tuple(rows)
        by_state: dict[tuple[Mode, StateT], Transition[StateT]] = {}
        for row in self.rows:
            if not row.modes or not row.modes <= BOTH_MODES:
                raise ValueError(f"the row of {row.state.name} names no known mode")
            for mode in row.modes:
                if (mode, row.state) in by_state:
                    raise ValueError(f"two rows for {row.state.name} in {mode} mode")
                by_state[mode, row.state] = row
        self._by_state: Mapping[tuple[Mode, StateT], Transition[StateT]] = by_state
        self._by_message: Mapping[
            tuple[Mode, StateT, type[ProtocolMessage]], Transition[StateT]
        ] = {(mode, state, row.receives): row for (mode, state), row in by_state.items()}

    def lookup(
        self, mode: Mode, state: StateT, message_type: type[ProtocolMessage]
    ) -> Transition[StateT] | None:
        """The row that accepts a ``message_type`` message in ``state``, or None: the
        message is out of round (exact types: a subclass is not its parent)."""
        return self._by_message.get((mode, state, message_type))

    def row(self, mode: Mode, state: StateT) -> Transition[StateT] | None:
        """The row of ``state`` (what it waits for), or None if it waits for nothing."""
        return self._by_state.get((mode, state))

    def states(self, mode: Mode) -> frozenset[StateT]:
        """The states that wait for a message in ``mode``."""
        return frozenset(state for (row_mode, state) in self._by_state if row_mode == mode)


_C = ClientState
CLIENT_TABLE: Final[TransitionTable[ClientState]] = TransitionTable(
    [
        Transition(
            _C.AWAIT_ADVERTISE_KEYS, AdvertiseKeysRequest, "_advertise_keys", _C.AWAIT_SHARE_KEYS
        ),
        Transition(_C.AWAIT_SHARE_KEYS, ShareKeysRequest, "_share_keys", _C.AWAIT_MASKED_INPUT),
        Transition(
            _C.AWAIT_MASKED_INPUT,
            MaskedInputRequest,
            "_masked_input",
            _C.AWAIT_CONSISTENCY_CHECK,
            modes=ACTIVE_ONLY,
        ),
        # Semi-honest: no consistency check, masked input is followed by unmasking.
        Transition(
            _C.AWAIT_MASKED_INPUT,
            MaskedInputRequest,
            "_masked_input",
            _C.AWAIT_UNMASKING,
            modes=SEMI_HONEST_ONLY,
        ),
        Transition(
            _C.AWAIT_CONSISTENCY_CHECK,
            ConsistencyCheckRequest,
            "_consistency_check",
            _C.AWAIT_UNMASKING,
            modes=ACTIVE_ONLY,
        ),
        Transition(_C.AWAIT_UNMASKING, UnmaskingRequest, "_unmasking", _C.DONE),
    ]
)
"""The client: which server request each state waits for, its handler and what follows."""

_S = ServerState
SERVER_TABLE: Final[TransitionTable[ServerState]] = TransitionTable(
    [
        Transition(
            _S.ADVERTISE_KEYS,
            AdvertiseKeys,
            "_on_advertise",
            _S.SHARE_KEYS,
            closer="_finish_advertise",
            bad_answer_excludes=True,
        ),
        Transition(
            _S.SHARE_KEYS,
            ShareKeys,
            "_on_share_keys",
            _S.MASKED_INPUT,
            closer="_finish_share_keys",
            bad_answer_excludes=True,
        ),
        Transition(
            _S.MASKED_INPUT,
            MaskedInput,
            "_on_masked_input",
            _S.CONSISTENCY_CHECK,
            modes=ACTIVE_ONLY,
            closer="_finish_masked_input_then_check",
            bad_answer_excludes=True,
        ),
        # Semi-honest: no consistency check, masked input is followed by unmasking.
        Transition(
            _S.MASKED_INPUT,
            MaskedInput,
            "_on_masked_input",
            _S.UNMASKING,
            modes=SEMI_HONEST_ONLY,
            closer="_finish_masked_input_then_unmask",
            bad_answer_excludes=True,
        ),
        Transition(
            _S.CONSISTENCY_CHECK,
            ConsistencyCheck,
            "_on_consistency_check",
            _S.UNMASKING,
            modes=ACTIVE_ONLY,
            closer="_finish_consistency_check",
        ),
        Transition(
            _S.UNMASKING,
            UnmaskingResponse,
            "_on_unmasking",
            _S.DONE,
            closer="_finish_unmasking",
        ),
    ]
)
"""The server: which client message each collecting state takes, its handler, the
round's closer and what follows."""
