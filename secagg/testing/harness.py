"""Drive any sans-I/O protocol through a dropout schedule and check its invariants.

Theory of operation. A :class:`Network` holds one session: the target's server and
clients, and the messages in flight, always as bytes (``to_bytes`` on the way out, the
target's ``decode`` on the way in, so the wire encoding is exercised). Every message goes
through, in order: the sender's own misbehaviour (a :class:`ServerAttack` on the server's
requests, a :class:`ClientFault` on a client's answers), then the ``transport`` under test
(``transport(data, sender, recipient) -> the byte strings that arrive``), then the queue.
:meth:`Network.deliver` moves one queued message (any one: the caller picks the order),
:meth:`Network.deadline` tells the server its round's deadline passed, and
:meth:`Network.run_to_end` does both until the session ends.

Dropouts follow :class:`~secagg.sim.simulator.DropoutSchedule`: a client listed for
round ``r`` vanishes when its round-``r`` request reaches it, before answering. A client
whose answer is still in flight when the deadline of its round passes counts as dropped in
that round (it is "late"). While messages move, the network checks that a party refusing
a message raises a ProtocolViolation naming the sender (an honest server's requests must
never be refused) and that nothing else escapes a party; :class:`RunReport` then checks
the invariants of :mod:`secagg.testing.invariants`.

:func:`run` is the one-call form: ``run(config, inputs, schedule).check()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    ProtocolAbort,
    ProtocolViolation,
    UsageError,
)
from secagg.protocols.base import SERVER_ID, AggregationResult, ClientProtocol, Message
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.sim.simulator import DropoutSchedule
from secagg.testing.bonawitz import BonawitzTarget
from secagg.testing.invariants import InvariantViolation, RunLog, RunReport
from secagg.testing.model import ClientFault, ServerAttack
from secagg.testing.target import ProtocolUnderTest

__all__ = ["Chooser", "Network", "Transport", "as_target", "run"]

Transport = Callable[[bytes, int, int], Sequence[bytes]]
"""``transport(data, sender, recipient)`` -> the byte strings that arrive (none: lost)."""

_JUNK_PREFIX = b"\xc1"  # a byte msgpack never uses: the message cannot decode
_REPEATS = frozenset({"duplicate", "replay"})  # faults that resend genuine bytes


class Chooser(Protocol):
    """Picks the next message to deliver (``random.Random`` or hypothesis's ``randoms()``)."""

    def randrange(self, stop: int, /) -> int: ...


def as_target(target: ProtocolUnderTest | ProtocolConfig) -> ProtocolUnderTest:
    """A ProtocolConfig becomes a :class:`BonawitzTarget`; a target is returned as is."""
    if isinstance(target, ProtocolConfig):
        return BonawitzTarget(target)
    return target


@dataclasses.dataclass
class _Envelope:
    sender: int
    recipient: int
    round_name: str
    data: bytes
    genuine: bool = True  # False: produced by a fault or an attack
    fault: ClientFault | None = None


class Network:
    """One session in flight. Raises ConfigurationError on inputs, a schedule or faults
    that do not fit the target; InvariantViolation as soon as a party misbehaves."""

    def __init__(
        self,
        target: ProtocolUnderTest | ProtocolConfig,
        inputs: Mapping[int, np.ndarray],
        schedule: DropoutSchedule | None = None,
        *,
        transport: Transport | None = None,
        server_attacks: Iterable[ServerAttack] = (),
        client_faults: Iterable[ClientFault] = (),
    ) -> None:
        self.target = as_target(target)
        model = self.target.dropout_model
        self._rounds = model.rounds
        self.inputs = _checked_inputs(self.target, inputs)
        self.schedule = schedule or DropoutSchedule()
        self._check_names(self.schedule.by_round.keys(), self.schedule.clients, "schedule")
        self._attacks = tuple(server_attacks)
        self._faults: dict[tuple[int, str], ClientFault] = {}
        for fault in client_faults:
            self._check_names([fault.round_name], [fault.client], "client fault")
            self._faults.setdefault((fault.client, fault.round_name), fault)
        self._transport = transport
        self.server = self.target.make_server()
        self.log = RunLog()
        # A fault that is the client's own behaviour is built into the client (when the
        # target can build it), and counts as injected from the start.
        make_faulty = getattr(self.target, "make_faulty_client", None)
        self.clients: dict[int, ClientProtocol] = {}
        for c in self.target.clients:
            own = next(
                (f for (fc, _), f in self._faults.items() if fc == c and f.faulty_client), None
            )
            if own is not None and callable(make_faulty):
                self.clients[c] = make_faulty(c, self.inputs[c].copy(), own)
                self.log.injected.append(own)
                del self._faults[c, own.round_name]
            else:
                self.clients[c] = self.target.make_client(c, self.inputs[c].copy())
        self.pending: list[_Envelope] = []
        self.result: AggregationResult | None = None
        self.abort: ProtocolAbort | None = None
        self._started = False
        self._vanishing: set[int] = set()
        self._dead: set[int] = set()  # vanished: receives and sends nothing more
        self._reached: dict[int, int] = {}  # client -> latest round index it answered
        self._round = self._rounds[0]
        self._sent: dict[int, list[bytes]] = {}
        self._requests: dict[int, list[Message]] = {}
        self._stalled = 0
        self._arrivals: Counter[tuple[int, bytes]] = Counter()

    def _check_names(self, rounds: Iterable[str], clients: Iterable[int], what: str) -> None:
        unknown = set(rounds) - set(self._rounds)
        strangers = set(clients) - set(self.target.clients)
        if unknown or strangers:
            raise ConfigurationError(
                f"{what} names rounds {sorted(unknown)} or clients {sorted(strangers)} "
                f"that {self.target.name} does not have"
            )

    # -- state ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from start() until the server completed or aborted."""
        return self._started and self.result is None and self.abort is None

    def report(self) -> RunReport:
        """The run's report so far (meant for the end; :meth:`RunReport.check_so_far` is
        also valid mid-run)."""
        faults = getattr(self.server, "faults", None)
        if isinstance(faults, Mapping):
            self.log.server_faults = dict(faults)
        return RunReport(self.target, self.inputs, self.log, self.result, self.abort, self._rounds)

    # -- moves ---------------------------------------------------------------------------

    def start(self) -> None:
        """The server's first requests go out. UsageError on a second call."""
        if self._started:
            raise UsageError("the network was already started")
        self._started = True
        self._server_call(self.server.start)

    def deliver(self, index: int = 0) -> None:
        """Deliver the in-flight message at ``index`` (0: the oldest)."""
        envelope = self.pending.pop(index)
        self.log.deliveries += 1
        if envelope.recipient == SERVER_ID:
            self._to_server(envelope)
        else:
            self._to_client(envelope)

    def deadline(self) -> None:
        """The current round's deadline passes; clients whose request or answer of this
        round is still in flight count as late. No-op once the session ended."""
        if not self.running:
            return
        for envelope in self.pending:
            if not envelope.genuine or envelope.round_name != self._round:
                continue
            if envelope.recipient == SERVER_ID and self._arrivals[self._key(envelope)]:
                continue  # a replayed copy of this very answer already arrived in time
            self.log.late.add((envelope.recipient or envelope.sender, self._round))
        self._server_call(self.server.close_round, deadline=True)

    def vanish(self, client: int) -> None:
        """``client`` disappears before answering its next request."""
        self._vanishing.add(client)

    def replay(self, client: int) -> bool:
        """``client`` sends its previous message again (a contained ``replay`` fault).
        Returns False when it has not sent anything yet or has vanished."""
        sent = self._sent.get(client)
        if not sent or client in self._dead:
            return False
        fault = ClientFault(client, self._round, "replay")
        self.log.injected.append(fault)
        self._post(client, SERVER_ID, self._round, sent[-1], genuine=False, fault=fault)
        return True

    def run_to_end(
        self, order: Chooser | None = None, *, max_deliveries: int | None = None
    ) -> None:
        """Deliver (oldest first, or in ``order``) and pass deadlines until the session
        ends, then deliver what is left. InvariantViolation if it does not end."""
        if not self._started:
            self.start()
        limit = max_deliveries or 64 * (len(self.clients) + 1) * (len(self._rounds) + 1) ** 2
        while self.running or self.pending:
            if self.log.deliveries > limit:
                raise InvariantViolation(f"the session did not end after {limit} deliveries")
            if self.pending:
                self.deliver(order.randrange(len(self.pending)) if order else 0)
            else:
                self.deadline()

    # -- the server side -----------------------------------------------------------------

    def _server_call(self, call: Callable[[], list[Message]], *, deadline: bool = False) -> None:
        try:
            outgoing = call()
        except ProtocolAbort as exc:
            self.abort = exc
            return
        except Exception as exc:
            raise InvariantViolation(
                f"the server raised {type(exc).__name__}: {exc} (only ProtocolAbort may "
                "leave a server)"
            ) from exc
        if getattr(self.server, "done", False):
            self.result = self.server.result
            if self.result is None:
                raise InvariantViolation("the server is done but has no result")
        if deadline and not outgoing and self.running:
            self._stalled += 1
            if self._stalled > 1:
                raise InvariantViolation("the server made no progress after its deadline")
        elif outgoing:
            self._stalled = 0
        for message in outgoing:
            self._from_server(message)

    def _from_server(self, message: Message) -> None:
        client = message.recipient
        if message.sender != SERVER_ID or client not in self.clients:
            raise InvariantViolation(
                f"the server emitted a message from {message.sender} to {client}"
            )
        self._round = message.round_name
        attack = next(
            (
                a
                for a in self._attacks
                if a.round_name == message.round_name and client in a.targets
            ),
            None,
        )
        items = [(message, True)] if attack is None else self._attacked(message, attack)
        self._requests.setdefault(client, []).append(message)
        for item, genuine in items:
            data = item if isinstance(item, bytes) else item.to_bytes()
            self._post(SERVER_ID, client, message.round_name, data, genuine=genuine)

    def _attacked(
        self, message: Message, attack: ServerAttack
    ) -> list[tuple[Message | bytes, bool]]:
        """What a malicious server sends instead of ``message`` (with genuine flags)."""
        items: list[tuple[Message | bytes, bool]] | None = None
        if attack.kind == "replay":
            items = [(message, True), (message, False)]
        elif attack.kind == "stale":
            earlier = self._requests.get(message.recipient)
            items = [(earlier[-1], False), (message, True)] if earlier else None
        elif attack.kind == "garbled_bytes":
            data = bytearray(message.to_bytes())
            data[len(data) // 2] ^= 0x5A
            items = [(bytes(data), False)]
        else:
            tampered = self.target.tamper_request(message, attack)
            if tampered is not None:
                items = [(item, False) for item in tampered]
        if items is None:
            return [(message, True)]
        self.log.attacks.append(attack)
        return items

    def _to_server(self, envelope: _Envelope) -> None:
        if not self.running:
            self._after_the_end(envelope)
            return
        self._note_arrival(envelope)
        receive_bytes = getattr(self.server, "receive_bytes", None)
        if callable(receive_bytes):
            self._server_call(lambda: receive_bytes(envelope.data, envelope.sender))
            return
        try:
            message = self.target.decode(envelope.data, envelope.sender)
        except DecodeError as exc:
            self._check_blame(exc, envelope.sender, "the server's decoder")
            self.log.transport_blamed.add(envelope.sender)
            return
        self._server_call(lambda: self.server.receive(message))

    @staticmethod
    def _key(envelope: _Envelope) -> tuple[int, bytes]:
        return envelope.sender, hashlib.sha256(envelope.data).digest()

    def _note_arrival(self, envelope: _Envelope) -> None:
        """Record a bad message the running server must blame on its sender: bytes that
        already arrived once (a duplicate or a replay: whichever copy comes second), or
        bytes of a fault that no genuine message carries (junk, a foreign session...)."""
        key = self._key(envelope)
        self._arrivals[key] += 1
        fault = envelope.fault
        repeat = self._arrivals[key] > 1
        forged = fault is not None and fault.must_be_blamed and fault.kind not in _REPEATS
        if repeat or forged:
            self.log.observed.add(envelope.sender)

    def _after_the_end(self, envelope: _Envelope) -> None:
        """A message reaching a finished server must change nothing."""
        before = self.result
        try:
            message = self.target.decode(envelope.data, envelope.sender)
            outgoing = self.server.receive(message)
        except DecodeError:
            return
        except Exception as exc:
            raise InvariantViolation(
                f"the finished server raised {type(exc).__name__} for a late message"
            ) from exc
        if outgoing or self.server.result is not before:
            raise InvariantViolation("a message after the end changed the finished server")

    # -- the client side -----------------------------------------------------------------

    def _to_client(self, envelope: _Envelope) -> None:
        client_id = envelope.recipient
        if client_id in self._dead:
            return
        scheduled = self.schedule.by_round.get(envelope.round_name, frozenset())
        if client_id in self._vanishing or client_id in scheduled:
            self._vanish(client_id, envelope.round_name)
            return
        try:
            message = self.target.decode(envelope.data, SERVER_ID)
        except DecodeError as exc:
            self._refused(client_id, exc, envelope)
            return
        try:
            replies = self.clients[client_id].receive(message)
        except ProtocolViolation as exc:
            self._refused(client_id, exc, envelope)
            return
        except Exception as exc:
            raise InvariantViolation(
                f"client {client_id} raised {type(exc).__name__} ({exc}) for a message of "
                "the server: a peer's message may only raise ProtocolViolation naming it"
            ) from exc
        rank = self._rounds.index(envelope.round_name)
        self._reached[client_id] = max(rank, self._reached.get(client_id, -1))
        for reply in replies:
            self._from_client(client_id, reply)

    def _vanish(self, client_id: int, round_name: str) -> None:
        """``client_id`` disappears as a ``round_name`` message reaches it. If that message
        is stale (the client already answered this round or a later one), it vanished
        before the round after the last it answered (or after the end: not recorded)."""
        self._vanishing.discard(client_id)
        self._dead.add(client_id)
        reached = self._reached.get(client_id, -1)
        if self._rounds.index(round_name) <= reached:
            if reached + 1 >= len(self._rounds):
                return
            round_name = self._rounds[reached + 1]
        self.log.gone[client_id] = round_name

    def _refused(self, client_id: int, exc: ProtocolViolation, envelope: _Envelope) -> None:
        """A client refused a server message: it must blame the server, and an honest
        server's request may only be refused when it arrived after its round's deadline."""
        self._check_blame(exc, SERVER_ID, f"client {client_id}")
        late = (client_id, envelope.round_name) in self.log.late
        if not self._attacks and not late:
            raise InvariantViolation(
                f"client {client_id} refused a request of an honest server: {exc}"
            ) from exc
        self.log.refusals[client_id] = exc

    @staticmethod
    def _check_blame(exc: ProtocolViolation, sender: int, who: str) -> None:
        if exc.party != sender:
            raise InvariantViolation(
                f"{who} blamed party {exc.party} for a message of party {sender}: {exc}"
            ) from exc

    def _from_client(self, client_id: int, reply: Message) -> None:
        if reply.sender != client_id or reply.recipient != SERVER_ID:
            raise InvariantViolation(
                f"client {client_id} sent a message as {reply.sender} to {reply.recipient}"
            )
        data = reply.to_bytes()
        revealed = self.target.reveals(reply)
        if revealed is not None:
            self.log.reveals.setdefault(client_id, []).append(list(revealed))
            self.log.reveal_types.setdefault(client_id, []).append(type(reply).__name__)
        view = self.target.masked_view(reply)
        if view is not None:
            self.log.views[client_id] = view
        fault = self._faults.pop((client_id, reply.round_name), None)
        items = [(data, True)] if fault is None else self._faulty(client_id, reply, data, fault)
        self._sent.setdefault(client_id, []).append(data)
        for item, genuine in items:
            self._post(
                client_id,
                SERVER_ID,
                reply.round_name,
                item,
                genuine=genuine,
                fault=None if genuine else fault,
            )

    def _faulty(
        self, client_id: int, reply: Message, data: bytes, fault: ClientFault
    ) -> list[tuple[bytes, bool]]:
        """The byte strings a faulty client sends instead of ``data`` (genuine flags)."""
        kind = fault.kind
        items: list[tuple[bytes, bool]] | None = None
        if kind == "truncate":
            items = [(data[: len(data) // 2], False)]
        elif kind == "junk":
            items = [(_JUNK_PREFIX + data[:8], False)]
        elif kind == "impersonate":
            others = [sent[-1] for c, sent in sorted(self._sent.items()) if c != client_id and sent]
            items = [(others[-1] if others else _JUNK_PREFIX, False)]
        elif kind == "duplicate":
            items = [(data, True), (data, False)]
        elif kind == "replay":
            earlier = self._sent.get(client_id)
            items = [(data, True), (earlier[-1], False)] if earlier else None
        elif kind == "foreign_session" and dataclasses.is_dataclass(reply):
            foreign_id = bytes(b ^ 0xFF for b in reply.session_id)
            foreign = dataclasses.replace(reply, session_id=foreign_id)
            items = [(foreign.to_bytes(), False), (data, True)]
        else:
            tampered = self.target.tamper_answer(reply, fault)
            items = [(tampered.to_bytes(), False)] if tampered is not None else None
        if items is None:
            return [(data, True)]
        self.log.injected.append(fault)
        return items

    # -- the wire ------------------------------------------------------------------------

    def _post(
        self,
        sender: int,
        recipient: int,
        round_name: str,
        data: bytes,
        *,
        genuine: bool,
        fault: ClientFault | None = None,
    ) -> None:
        if round_name not in self._rounds:
            raise InvariantViolation(
                f"party {sender} sent a message of round {round_name!r}, which "
                f"{self.target.name} does not list in {self._rounds}"
            )
        arrived = [data] if self._transport is None else self._transport(data, sender, recipient)
        for item in arrived:
            self.pending.append(
                _Envelope(sender, recipient, round_name, bytes(item), genuine, fault)
            )


def _checked_inputs(
    target: ProtocolUnderTest, inputs: Mapping[int, np.ndarray]
) -> dict[int, np.ndarray]:
    if set(inputs) != set(target.clients):
        raise ConfigurationError("inputs must hold exactly one vector per configured client")
    checked: dict[int, np.ndarray] = {}
    for client in target.clients:
        vector = np.asarray(inputs[client])
        if vector.dtype.kind not in "ui" or vector.shape != (target.vector_length,):
            raise ConfigurationError(
                f"client {client}'s input must be an integer vector of length "
                f"{target.vector_length}"
            )
        if vector.size and (
            int(vector.min()) < 0 or (target.bits < 64 and int(vector.max()) >> target.bits)
        ):
            raise ConfigurationError(f"client {client}'s input is outside [0, 2^{target.bits})")
        checked[client] = vector.copy()
    return checked


def run(
    target: ProtocolUnderTest | ProtocolConfig,
    inputs: Mapping[int, np.ndarray],
    schedule: DropoutSchedule | None = None,
    *,
    transport: Transport | None = None,
    server_attacks: Iterable[ServerAttack] = (),
    client_faults: Iterable[ClientFault] = (),
    order: Chooser | None = None,
    check: bool = True,
) -> RunReport:
    """Run one session to its end and (by default) check every invariant.

    ``target`` is a ProtocolUnderTest (a ProtocolConfig is wrapped in a BonawitzTarget);
    ``inputs`` maps every client to its vector in Z_(2^bits); ``order`` picks the message
    delivered next (default: oldest first). Returns the RunReport. Raises
    InvariantViolation when an invariant breaks and ConfigurationError on bad arguments.
    """
    network = Network(
        target,
        inputs,
        schedule,
        transport=transport,
        server_attacks=server_attacks,
        client_faults=client_faults,
    )
    network.run_to_end(order)
    report = network.report()
    return report.check() if check else report
