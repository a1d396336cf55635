"""The Bonawitz / SecAgg+ state machines: their states and their one transition table.

Role: both sides, every round. Everything that decides what a Bonawitz party accepts next
lives here (as in h11's ``_state.py``); :mod:`~secagg.protocols.bonawitz.client` and
:mod:`~secagg.protocols.bonawitz.server` hold the handlers, not the rules.

Theory of operation. Each side is a :class:`TransitionTable` of :class:`Transition` rows.
A row reads: in ``state``, in a session of one of ``modes``, a message of exactly type
``receives`` is handled by the method named ``handler``, and the machine moves to
``next_state``. Each (mode, state, message type) has at most one row. ``Client.receive``
and ``Server.receive`` consult their table once per message
(:meth:`TransitionTable.lookup`); a message with no row is out of round and is refused
from that lookup, before any handler runs, and the handler of a legal one is the one its
row names: there is no dispatch chain to keep in step with the table.

Rounds, in order: AdvertiseKeys, ShareKeys, ShareCheck (every holder opens the boxes dealt
to it, complains with a proof about a box that does not open, and sends the blinded check
values of the others), MaskedInput, ConsistencyCheck (active mode only: every client signs
the survivor set U3), Unmasking. Semi-honest mode has no ConsistencyCheck, so its
MaskedInput row goes straight to Unmasking: that skip is a row of each table.

Two rounds may open a second wave, when and only when something went wrong: ShareCheck a
dispute wave (the holders whose check values disagree with the others reveal the key of the
disputed box, so that the server can tell a bad dealing from a lying holder), Unmasking a
fallback wave (when a dropped client's mask key does not rebuild to its advertised key, the
survivors that masked with it reveal their pairwise secret with it, with a proof). A wave
is a server state of its own, entered instead of ``next_state`` when the round's closer
asks for it (a row's ``wave``); its messages carry the round's name
(:attr:`ServerState.round_name`). On the client, a wave's request is one more row of the
state it may arrive in (a dispute before the masked-input request; the fallback after
Unmasking, in :attr:`ClientState.UNMASKED`).

Server rows say two more things about their round. ``closer`` names the method that runs
when the round closes (every live client answered, or the transport's deadline passed) and
returns the next round's requests. ``bad_answer_excludes`` says what a bad answer costs its
sender: up to MaskedInput it is removed from the round and left out of the sum; afterwards
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
    ROUND_SHARE_CHECK,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DisputeRequest,
    DisputeResponse,
    FallbackRequest,
    FallbackResponse,
    MaskedInput,
    MaskedInputRequest,
    ShareCheck,
    ShareCheckRequest,
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
    AWAIT_SHARE_CHECK = "await share_check request"
    AWAIT_MASKED_INPUT = "await masked_input request"
    DISPUTED = "await masked_input request after a dispute"
    AWAIT_CONSISTENCY_CHECK = "await consistency_check request"
    AWAIT_UNMASKING = "await unmasking request"
    UNMASKED = "unmasked, a fallback request may follow"
    DONE = "done"
    ABORTED = "aborted"


class ServerState(enum.Enum):
    """Which round (or wave) the server is collecting, or that it is idle, done or aborted."""

    IDLE = "idle"
    ADVERTISE_KEYS = ROUND_ADVERTISE_KEYS
    SHARE_KEYS = ROUND_SHARE_KEYS
    SHARE_CHECK = ROUND_SHARE_CHECK
    SHARE_CHECK_DISPUTE = "share_check dispute wave"
    MASKED_INPUT = ROUND_MASKED_INPUT
    CONSISTENCY_CHECK = ROUND_CONSISTENCY_CHECK
    UNMASKING = ROUND_UNMASKING
    UNMASKING_FALLBACK = "unmasking fallback wave"
    DONE = "done"
    ABORTED = "aborted"

    @property
    def round_name(self) -> str:
        """The round this state collects (a wave: its round's name)."""
        return _WAVE_ROUNDS.get(self, self.value)


_WAVE_ROUNDS: Final[Mapping[ServerState, str]] = {
    ServerState.SHARE_CHECK_DISPUTE: ROUND_SHARE_CHECK,
    ServerState.UNMASKING_FALLBACK: ROUND_UNMASKING,
}

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
    the sum (else it is only recorded as a fault); ``wave`` the state entered instead of
    ``next_state`` when the closer opens the round's second wave.
    """

    state: StateT
    receives: type[ProtocolMessage]
    handler: str
    next_state: StateT
    modes: frozenset[Mode] = BOTH_MODES
    closer: str | None = None
    bad_answer_excludes: bool = False
    wave: StateT | None = None


class TransitionTable(Generic[StateT]):
    """The rows of one side, indexed for the one lookup per message.

    Raises ValueError at construction if two rows claim the same (mode, state, message
    type), a row names no mode, or two rows of one (mode, state) name closers (a state
    that closes a round collects one message type): a table that is not a function of
    its key is a bug.
    """

    def __init__(self, rows: Iterable[Transition[StateT]]) -> None:
        self.rows: tuple[Transition[StateT], ...] = tuple(rows)
        by_message: dict[tuple[Mode, StateT, type[ProtocolMessage]], Transition[StateT]] = {}
        by_state: dict[tuple[Mode, StateT], list[Transition[StateT]]] = {}
        for row in self.rows:
            if not row.modes or not row.modes <= BOTH_MODES:
                raise ValueError(f"the row of {row.state.name} names no known mode")
            for mode in row.modes:
                key = (mode, row.state, row.receives)
                if key in by_message:
                    raise ValueError(
                        f"two rows for {row.receives.__name__} in {row.state.name}, {mode} mode"
                    )
                by_message[key] = row
                by_state.setdefault((mode, row.state), []).append(row)
        for (_, state), rows_of in by_state.items():
            if len(rows_of) > 1 and any(row.closer for row in rows_of):
                raise ValueError(f"{state.name} closes a round but takes several messages")
        self._by_message: Mapping[
            tuple[Mode, StateT, type[ProtocolMessage]], Transition[StateT]
        ] = by_message
        self._by_state: Mapping[tuple[Mode, StateT], tuple[Transition[StateT], ...]] = {
            key: tuple(value) for key, value in by_state.items()
        }

    def lookup(
        self, mode: Mode, state: StateT, message_type: type[ProtocolMessage]
    ) -> Transition[StateT] | None:
        """The row that accepts a ``message_type`` message in ``state``, or None: the
        message is out of round (exact types: a subclass is not its parent)."""
        return self._by_message.get((mode, state, message_type))

    def rows_of(self, mode: Mode, state: StateT) -> tuple[Transition[StateT], ...]:
        """Every row of ``state`` (what it may receive), empty if it waits for nothing."""
        return self._by_state.get((mode, state), ())

    def row(self, mode: Mode, state: StateT) -> Transition[StateT] | None:
        """The row of a state that waits for one message type (a collecting server state,
        most client states), or None if it waits for nothing. ValueError for a state with
        several rows (use :meth:`rows_of`)."""
        rows = self.rows_of(mode, state)
        if len(rows) > 1:
            raise ValueError(f"{state.name} takes several message types")
        return rows[0] if rows else None

    def states(self, mode: Mode) -> frozenset[StateT]:
        """The states that wait for a message in ``mode``."""
        return frozenset(state for (row_mode, state) in self._by_state if row_mode == mode)


_C = ClientState
_AFTER_MASKING = {ACTIVE: _C.AWAIT_CONSISTENCY_CHECK, SEMI_HONEST: _C.AWAIT_UNMASKING}
CLIENT_TABLE: Final[TransitionTable[ClientState]] = TransitionTable(
    [
        Transition(
            _C.AWAIT_ADVERTISE_KEYS, AdvertiseKeysRequest, "_advertise_keys", _C.AWAIT_SHARE_KEYS
        ),
        Transition(_C.AWAIT_SHARE_KEYS, ShareKeysRequest, "_share_keys", _C.AWAIT_SHARE_CHECK),
        Transition(_C.AWAIT_SHARE_CHECK, ShareCheckRequest, "_share_check", _C.AWAIT_MASKED_INPUT),
        # The dispute wave of ShareCheck, at most once, before the masked-input request.
        Transition(_C.AWAIT_MASKED_INPUT, DisputeRequest, "_dispute", _C.DISPUTED),
        *(
            Transition(
                state,
                MaskedInputRequest,
                "_masked_input",
                _AFTER_MASKING[mode],
                modes=frozenset({mode}),
            )
            for state in (_C.AWAIT_MASKED_INPUT, _C.DISPUTED)
            # Semi-honest: no consistency check, masked input is followed by unmasking.
            for mode in (ACTIVE, SEMI_HONEST)
        ),
        Transition(
            _C.AWAIT_CONSISTENCY_CHECK,
            ConsistencyCheckRequest,
            "_consistency_check",
            _C.AWAIT_UNMASKING,
            modes=ACTIVE_ONLY,
        ),
        # After Unmasking a client that revealed mask-key shares may be asked the fallback
        # wave (the client itself goes to DONE when it revealed none: nothing can follow).
        Transition(_C.AWAIT_UNMASKING, UnmaskingRequest, "_unmasking", _C.UNMASKED),
        Transition(_C.UNMASKED, FallbackRequest, "_fallback", _C.DONE),
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
            _S.SHARE_CHECK,
            closer="_finish_share_keys",
            bad_answer_excludes=True,
        ),
        Transition(
            _S.SHARE_CHECK,
            ShareCheck,
            "_on_share_check",
            _S.MASKED_INPUT,
            closer="_finish_share_check",
            bad_answer_excludes=True,
            wave=_S.SHARE_CHECK_DISPUTE,
        ),
        Transition(
            _S.SHARE_CHECK_DISPUTE,
            DisputeResponse,
            "_on_dispute",
            _S.MASKED_INPUT,
            closer="_finish_dispute",
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
            wave=_S.UNMASKING_FALLBACK,
        ),
        Transition(
            _S.UNMASKING_FALLBACK,
            FallbackResponse,
            "_on_fallback",
            _S.DONE,
            closer="_finish_fallback",
        ),
    ]
)
"""The server: which client message each collecting state takes, its handler, the
round's closer, the wave it may open and what follows."""
