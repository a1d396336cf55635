"""Round tables and the round engine shared by the threshold families.

Theory of operation (as h11's ``_state.py``). A family lists what may happen in each state
once, as :class:`Row` s: in ``state``, ``event`` (a message type, or :class:`RoundEnd` when
a round's answers are in or its deadline passed) is handled by ``action``, then the party
enters ``next_state``. A client row may hold for committee members only (``members_only``)
and a row may hold in some decryption modes only (``modes``; ``None``: every mode).

:class:`ClientTable` and :class:`ServerTable` index the rows once, refuse a table that is not
a function of its key (two rows for one key), and answer the one lookup per event. A client
event without a row is refused with a :class:`~secagg.errors.ProtocolViolation` whose text
names types and states only (never a field of the message); a server event without a row is
``None`` (the server records an out-of-round fault).

:class:`RoundServer` is the envelope every threshold-family server shares: ``receive``
checks the route (session, recipient), the table row, that the sender was asked this round
and has not answered yet, records every refusal as a typed fault in the bounded
:class:`~secagg.protocols.faults.FaultLog`, runs the row's handler, and closes the round
(its ``RoundEnd`` row) once every party asked has answered; ``close_round`` closes it at the
transport's deadline. A family writes only its handlers. (The Bonawitz family keeps its own
table, whose rows also name each round's closer and what a bad answer costs.)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from secagg.errors import ExclusionReason, ProtocolViolation, UsageError
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.faults import FaultLog

__all__ = [
    "ClientTable",
    "Event",
    "RoundClient",
    "RoundEnd",
    "RoundServer",
    "Row",
    "ServerTable",
]


class RoundEnd:
    """The server's event that closes a round: every expected party answered, or the
    round's deadline passed (``close_round``). Never sent: a row key, like a message type."""


Event: TypeAlias = type[Message] | type[RoundEnd]
"""A row's key besides the state: the type of a message, or :class:`RoundEnd`."""

StateT = TypeVar("StateT", bound=enum.Enum)
ActionT = TypeVar("ActionT", bound=enum.Enum)


@dataclass(frozen=True)
class Row(Generic[StateT, ActionT]):
    """One row: in ``state``, ``event`` is handled by ``action``, then ``next_state``."""

    state: StateT
    event: Event
    action: ActionT
    next_state: StateT
    members_only: bool = False
    modes: frozenset[str] | None = None  # None: every mode


def _modes(row: Row[Any, Any], modes: Collection[str]) -> Collection[str]:
    return modes if row.modes is None else row.modes


class ClientTable(Generic[StateT, ActionT]):
    """A client's rows, indexed by (state, event, member, mode).

    ``modes`` lists every mode of the family (one empty-named mode for a family without
    modes); ``ended`` is the state after which nothing is accepted; ``described`` gives
    (article, words) for an event in refusal texts (else its type name). Raises ValueError
    at construction when two rows claim one key.
    """

    def __init__(
        self,
        rows: Iterable[Row[StateT, ActionT]],
        *,
        ended: StateT,
        modes: Collection[str] = ("",),
        described: Mapping[Event, tuple[str, str]] | None = None,
    ) -> None:
        self.rows: tuple[Row[StateT, ActionT], ...] = tuple(rows)
        self._ended = ended
        self._described = dict(described or {})
        index: dict[tuple[StateT, Event, bool, str], Row[StateT, ActionT]] = {}
        for row in self.rows:
            for member in (True,) if row.members_only else (True, False):
                for mode in _modes(row, modes):
                    key = (row.state, row.event, member, mode)
                    if key in index:
                        raise ValueError(f"two client rows for {key}")
                    index[key] = row
        self._index = index

    def lookup(
        self, state: StateT, event: Event, *, member: bool, mode: str = ""
    ) -> Row[StateT, ActionT]:
        """The row for ``event`` reaching a client (a committee ``member`` or not) in
        ``state`` in ``mode``.

        Raises ProtocolViolation (party 0: the server sent it) when there is none: an event
        after the session ended for this client, a message type the client never takes, a
        request for members to a non-member, or a request out of turn (the client's state
        and the states that take it are named).
        """
        row = self._index.get((state, event, member, mode))
        if row is not None:
            return row
        article, words = self._described.get(event, ("", event.__name__))
        what = f"{article} {words}" if article else words
        keys = [key for key in self._index if key[1] is event and key[3] == mode]
        if state is self._ended:
            text = f"{event.__name__} after the session ended for this client ({state.value})"
        elif not keys:
            text = f"unexpected {event.__name__}"
        elif not member and not any(not key[2] for key in keys):
            text = f"{words} to a non-member"
        else:
            accepted = " or ".join(sorted({key[0].value for key in keys}))
            text = f"{what} out of turn: this client is {state.value}, not {accepted}"
        raise ProtocolViolation(text, party=SERVER_ID)


class ServerTable(Generic[StateT, ActionT]):
    """The server's rows, indexed by (state, event, mode). Raises ValueError at
    construction when two rows claim one key."""

    def __init__(self, rows: Iterable[Row[StateT, ActionT]], *, modes: Collection[str] = ("",)):
        self.rows: tuple[Row[StateT, ActionT], ...] = tuple(rows)
        index: dict[tuple[StateT, Event, str], Row[StateT, ActionT]] = {}
        for row in self.rows:
            for mode in _modes(row, modes):
                key = (row.state, row.event, mode)
                if key in index:
                    raise ValueError(f"two server rows for {key}")
                index[key] = row
        self._index = index

    def lookup(self, state: StateT, event: Event, mode: str = "") -> Row[StateT, ActionT] | None:
        """The row for ``event`` in ``state``, or None (an out-of-round message;
        ``RoundEnd``: no open round)."""
        return self._index.get((state, event, mode))


Handler: TypeAlias = Callable[[Any, Any], list[Message]]


class RoundClient(Generic[StateT, ActionT]):
    """The dispatch step of a table-driven client (see the module docstring).

    A subclass sets ``_TABLE``, ``_HANDLERS`` (action -> unbound handler) and ``_ABORTED``,
    keeps its state in ``_state`` and implements :meth:`_route` (its session id and client
    id), :meth:`_is_member` and, for a family with modes, :meth:`_mode`; its ``receive``
    documents what it answers and calls :meth:`_dispatch`.
    """

    _TABLE: ClassVar[ClientTable[Any, Any]]
    _HANDLERS: ClassVar[Mapping[Any, Handler]]
    _ABORTED: ClassVar[Any]

    _state: StateT

    def _route(self) -> tuple[bytes, int]:
        raise NotImplementedError

    def _is_member(self) -> bool:
        raise NotImplementedError

    def _mode(self) -> str:
        return ""

    def _dispatch(self, message: Message) -> list[Message]:
        """Check the route, find the row (the table's refusals leave the client as it was),
        run its handler and enter the row's next state; a handler's ProtocolViolation
        aborts the client for good.

        Raises ProtocolViolation (party 0) for a message of another session or recipient, and
        (party: the sender) for a message that does not come from the server.
        """
        session_id, client_id = self._route()
        if message.session_id != session_id or message.recipient != client_id:
            raise ProtocolViolation("message of another session or recipient", party=SERVER_ID)
        if message.sender != SERVER_ID:
            raise ProtocolViolation("clients only talk to the server", party=message.sender)
        row = self._TABLE.lookup(
            self._state, type(message), member=self._is_member(), mode=self._mode()
        )
        try:
            replies = self._HANDLERS[row.action](self, message)
        except ProtocolViolation:
            self._state = self._ABORTED
            raise
        self._state = row.next_state
        return replies


class RoundServer(Generic[StateT, ActionT]):
    """The receive/close envelope of a table-driven server (see the module docstring).

    A subclass sets ``_TABLE``, ``_HANDLERS`` (action -> unbound handler), ``_IDLE`` and
    ``_OVER`` (states in which whatever arrives is dropped without a note), calls
    :meth:`_init_rounds` in its constructor and implements :meth:`_session_id`,
    :meth:`_parties` (every party of the session) and, for a family with modes,
    :meth:`_mode`. Handlers take the message (or, for ``RoundEnd``, the sorted list of the
    parties that did not answer) and return the messages to send.
    """

    _TABLE: ClassVar[ServerTable[Any, Any]]
    _HANDLERS: ClassVar[Mapping[Any, Handler]]
    _IDLE: ClassVar[Any]
    _OVER: ClassVar[frozenset[Any]]

    _state: StateT
    _expected: set[int]
    _answered: set[int]
    _faults: FaultLog

    def _init_rounds(self) -> None:
        self._state = self._IDLE
        self._expected, self._answered = set(), set()
        self._faults = FaultLog()

    def _session_id(self) -> bytes:
        raise NotImplementedError

    def _parties(self) -> Collection[int]:
        raise NotImplementedError

    def _mode(self) -> str:
        return ""

    @property
    def faults(self) -> dict[int, list[str]]:
        """party -> its fault notes so far (a copy; bounded per party)."""
        return self._faults.as_dict()

    def receive(self, message: Message) -> list[Message]:
        """Record one client message; return the next round's messages when it completes.

        A message of another session or recipient, one the transition table does not take
        in this state (out of round), or one from a party not asked in this round or that
        already answered, is recorded as a fault against its sender and otherwise ignored.
        After the session ended, messages are dropped. Raises UsageError before start(),
        ProtocolAbort when the round that completes leaves too few parties.
        """
        if self._state is self._IDLE:
            raise UsageError("call start() before receive()")
        if self._state in self._OVER:
            return []
        sender, name = message.sender, type(message).__name__
        if message.recipient != SERVER_ID or message.session_id != self._session_id():
            self._fault(
                sender, ExclusionReason.MISROUTED, "message of another session or recipient"
            )
        else:
            row = self._TABLE.lookup(self._state, type(message), self._mode())
            if row is None:
                self._fault(sender, ExclusionReason.OUT_OF_ROUND, f"out-of-round {name}")
            elif sender not in self._expected or sender in self._answered:
                self._fault(sender, self._unexpected(sender), f"unexpected or duplicate {name}")
            else:
                self._answered.add(sender)
                replies = self._run(row, message)
                if self._state in self._OVER:
                    return replies  # the message ended the session
        if self._expected <= self._answered:
            return self._end_round()
        return []

    def close_round(self) -> list[Message]:
        """The round's deadline passed: go on with those who answered.

        Raises ProtocolAbort when too few remain, UsageError when no round is open.
        """
        if self._TABLE.lookup(self._state, RoundEnd, self._mode()) is None:
            raise UsageError(f"no round to close in state {self._state.value}")
        return self._end_round()

    def _run(self, row: Row[StateT, ActionT], argument: object) -> list[Message]:
        """Run ``row``'s action, then enter its next state unless the action ended the
        session (done, or aborted by raising ProtocolAbort)."""
        replies = self._HANDLERS[row.action](self, argument)
        if self._state not in self._OVER:
            self._state = row.next_state
        return replies

    def _end_round(self) -> list[Message]:
        """The open round ends (answers in, or deadline): its table row handles the
        parties that did not answer, then moves on."""
        row = self._TABLE.lookup(self._state, RoundEnd, self._mode())
        assert row is not None  # an open round always has a RoundEnd row
        missing = sorted(self._expected - self._answered)
        self._expected &= self._answered
        return self._run(row, missing)

    def _ask(self, parties: Iterable[int]) -> None:
        """Open a round (or wave) that waits for ``parties``."""
        self._expected, self._answered = set(parties), set()

    def _fault(self, party: int, reason: ExclusionReason, detail: str) -> None:
        self._faults.record(party, reason, self._state.value, detail)

    def _dropped(self, missing: Sequence[int], reason: ExclusionReason, detail: str) -> None:
        for party in missing:
            self._fault(party, reason, detail)

    def _unexpected(self, sender: int) -> ExclusionReason:
        if sender in self._answered:
            return ExclusionReason.DUPLICATE
        if sender not in self._parties():
            return ExclusionReason.UNKNOWN_SENDER
        return ExclusionReason.OUT_OF_ROUND  # a party this round (or wave) did not ask
