"""An in-process transport: runs a server and n clients, injects dropouts, counts costs.

Theory of operation. The simulator is the only place that touches clocks: it wraps each
party's work (``start``, ``receive``, ``close_round``) in ``time.perf_counter``. Every message
really travels as bytes: the sender's ``to_bytes()`` is what is counted and what the receiver
gets back through the protocol's ``decode`` (so the wire encoding is always exercised).

Messages are delivered one at a time and a client's replies go to the server at once, so
the simulator never holds more than one client's masked vector; inputs come from a mapping
or a factory called lazily, and a running plaintext sum (one vector) checks the result.

Dropouts: a client listed in ``DropoutSchedule.by_round[r]`` disappears the first time any
message of round ``r`` travels: it receives nothing more and anything it would send in or
after round ``r`` is lost. The server learns of it only through its deadline
(:meth:`ServerProtocol.close_round`), which the simulator calls when a round stalls.

Logging (``logging.getLogger("secagg.sim.simulator")``, DEBUG; ``secagg simulate
--log-level debug`` shows it): the session's shape, each round as it begins (with the
clients the schedule drops there), every deadline the server passes, each round's costs
when the run ends, and every exclusion and fault with its reason. Only public facts are
logged (round names, client ids, counts, sizes, seconds, reasons): never a message's bytes,
a key, a seed, a share or an input.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from secagg.errors import ConfigurationError, ProtocolAbort, ProtocolViolation, UsageError
from secagg.protocols.base import SERVER_ID, AggregationResult, ClientProtocol, Message
from secagg.protocols.registry import ProtocolSpec, get_protocol, protocol_for_config
from secagg.secret import SecretHolder
from secagg.sim.ledger import CostLedger

__all__ = [
    "MAX_LOGGED_IDS",
    "DropoutSchedule",
    "InputProvider",
    "SimulationResult",
    "simulate",
]

logger = logging.getLogger(__name__)

MAX_LOGGED_IDS = 20
"""Client ids a log line lists at most (the rest are counted), so that a line stays short
at thousands of clients."""

InputProvider = Mapping[int, np.ndarray] | Callable[[int], np.ndarray]
"""Client inputs: a mapping id -> vector, or a deterministic factory id -> vector (called
lazily, at most twice per client: once when the client masks, once more only if the client
ends up excluded after sending, to take it back out of the check sum)."""


@dataclass(frozen=True)
class DropoutSchedule:
    """Who disappears before sending in which round: round name -> client ids.

    Round names are the protocol's (``secagg.protocols.base.ROUND_NAMES`` for Bonawitz and
    SecAgg+). A client may appear in at most one round. Raises ConfigurationError otherwise,
    or on an id that is not a positive int.
    """

    by_round: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen: dict[str, frozenset[int]] = {}
        seen: set[int] = set()
        for round_name, ids in self.by_round.items():
            if not isinstance(round_name, str):
                raise ConfigurationError("round names must be str")
            members = frozenset(ids)
            for cid in members:
                if isinstance(cid, bool) or not isinstance(cid, int) or cid <= 0:
                    raise ConfigurationError(f"client ids are positive ints, got {cid!r}")
            if members & seen:
                raise ConfigurationError(
                    f"clients {sorted(members & seen)} are scheduled to drop in two rounds"
                )
            seen |= members
            if members:
                frozen[round_name] = members
        object.__setattr__(self, "by_round", frozen)

    @classmethod
    def from_rate(
        cls, clients: Sequence[int], rate: float, round_name: str, seed: int
    ) -> DropoutSchedule:
        """Drop ``round(rate * len(clients))`` of ``clients``, chosen by ``seed``, in one round.

        Deterministic in ``seed``. Raises ConfigurationError unless 0 <= rate <= 1.
        """
        if not 0.0 <= rate <= 1.0 or math.isnan(rate):
            raise ConfigurationError(f"dropout rate must be in [0, 1], got {rate}")
        pool = sorted(set(clients))
        count = math.floor(rate * len(pool) + 0.5)
        rng = np.random.default_rng(seed)  # not-secret: which simulated clients drop
        chosen = rng.choice(len(pool), size=count, replace=False).tolist() if count else []
        return cls({round_name: frozenset(pool[i] for i in chosen)})

    def __or__(self, other: DropoutSchedule) -> DropoutSchedule:
        """The union of two schedules (ConfigurationError if a client is in both)."""
        merged: dict[str, set[int]] = {r: set(ids) for r, ids in self.by_round.items()}
        for r, ids in other.by_round.items():
            merged.setdefault(r, set()).update(ids)
        total = sum(len(v) for v in self.by_round.values()) + sum(
            len(v) for v in other.by_round.values()
        )
        if sum(len(v) for v in merged.values()) != total:
            raise ConfigurationError("a client is scheduled to drop in both schedules")
        return DropoutSchedule({r: frozenset(v) for r, v in merged.items()})

    @property
    def clients(self) -> frozenset[int]:
        """Every client the schedule drops."""
        return frozenset().union(*self.by_round.values())


@dataclass(frozen=True, repr=False)
class SimulationResult:
    """What a simulation produced and what it cost.

    ``expected`` is the plaintext sum, mod 2^bits, of exactly ``aggregate.included``;
    ``dropped`` maps each client the transport dropped to the round it vanished in.
    """

    protocol: str
    aggregate: AggregationResult
    expected: np.ndarray
    bits: int
    costs: CostLedger
    dropped: Mapping[int, str]
    clients: int
    seconds: float

    @property
    def matches(self) -> bool:
        """True iff the protocol's total equals the plaintext sum of the included clients."""
        mask = np.uint64((1 << self.bits) - 1) if self.bits < 64 else np.uint64(2**64 - 1)
        total = np.asarray(self.aggregate.total)
        if total.shape != self.expected.shape:
            return False
        return bool(np.array_equal(total.astype(np.uint64) & mask, self.expected & mask))

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary (no vectors): outcome, membership and costs."""
        return {
            "protocol": self.protocol,
            "clients": self.clients,
            "bits": self.bits,
            "vector_length": int(self.expected.shape[0]),
            "matches_plaintext_sum": self.matches,
            "included": len(self.aggregate.included),
            "excluded": {str(c): r for c, r in sorted(self.aggregate.excluded.items())},
            "dropped_by_transport": {str(c): r for c, r in sorted(self.dropped.items())},
            "seconds": self.seconds,
            "costs": self.costs.to_dict(),
        }

    def __repr__(self) -> str:
        return (
            f"SimulationResult(protocol={self.protocol!r}, clients={self.clients}, "
            f"included={len(self.aggregate.included)}, dropped={len(self.dropped)}, "
            f"matches={self.matches}, seconds={self.seconds:.3f})"
        )


def _ids(ids: Collection[int]) -> str:
    """``ids`` sorted, at most :data:`MAX_LOGGED_IDS` of them, for a log line."""
    ordered = sorted(ids)
    shown = ", ".join(str(i) for i in ordered[:MAX_LOGGED_IDS])
    more = len(ordered) - MAX_LOGGED_IDS
    return f"[{shown}{f', ... {more} more' if more > 0 else ''}]"


def _log_outcome(spec: ProtocolSpec, aggregate: AggregationResult, ledger: CostLedger) -> None:
    """Per-round costs, then every exclusion and fault with its reason (DEBUG)."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    for summary in ledger.summaries():
        logger.debug(
            "%s round %s: server %.4f s, clients max %.4f s; %d bytes up, %d down, %d clients",
            spec.name,
            summary.round_name,
            summary.server.seconds,
            summary.client_seconds_max,
            summary.server.bytes_up,
            summary.server.bytes_down,
            summary.clients,
        )
    for kind, entries in (("excluded", aggregate.excluded), ("fault of", aggregate.faults)):
        for count, (client, reason) in enumerate(sorted(entries.items())):
            if count == MAX_LOGGED_IDS:
                logger.debug("%s: %d more %s entries", spec.name, len(entries) - count, kind)
                break
            logger.debug("%s: %s client %d: %s", spec.name, kind, client, reason)


class _InputFeed(SecretHolder, export="none: the inputs stay in the simulator's process"):
    """Lazy inputs plus the running plaintext sum of every vector handed to a client."""

    def __init__(self, inputs: InputProvider, length: int, bits: int, ids: Collection[int]):
        if isinstance(inputs, Mapping):
            missing = set(ids) - set(inputs)
            extra = set(inputs) - set(ids)
            if missing or extra:
                raise ConfigurationError(
                    f"inputs must cover exactly the configured clients "
                    f"(missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]})"
                )
        elif not callable(inputs):
            raise ConfigurationError("inputs must be a mapping or a callable(client_id)")
        self._inputs = inputs
        self._length = length
        self._bits = bits
        self._dtype = np.dtype(np.uint32 if bits <= 32 else np.uint64)
        self.running_sum = np.zeros(length, dtype=self._dtype)
        self.fed: set[int] = set()
        self.overhead = 0.0  # seconds spent here, deducted from the calling client's time

    def vector(self, client_id: int) -> np.ndarray:
        """Client ``client_id``'s input, validated and in the storage dtype."""
        raw = (
            self._inputs[client_id]
            if isinstance(self._inputs, Mapping)
            else self._inputs(client_id)
        )
        vec = np.asarray(raw)
        if vec.ndim != 1 or vec.shape[0] != self._length:
            raise ConfigurationError(
                f"client {client_id}'s input must have shape ({self._length},), got {vec.shape}"
            )
        if vec.dtype.kind not in "ui":
            raise ConfigurationError(f"client {client_id}'s input must be integers")
        if vec.size and (
            (vec.dtype.kind == "i" and int(vec.min()) < 0)
            or (self._bits < 64 and int(vec.max()) >= 1 << self._bits)
        ):
            raise ConfigurationError(f"client {client_id}'s input is outside [0, 2^{self._bits})")
        return vec.astype(self._dtype, copy=False)

    def source(self, client_id: int) -> Callable[[], np.ndarray]:
        def fetch() -> np.ndarray:
            start = time.perf_counter()
            vec = self.vector(client_id)
            if client_id not in self.fed:
                self.fed.add(client_id)
                np.add(self.running_sum, vec, out=self.running_sum)
            self.overhead += time.perf_counter() - start
            return vec

        return fetch

    def expected_for(self, included: frozenset[int]) -> np.ndarray:
        """The plaintext sum mod 2^bits over exactly ``included`` (a uint64 vector)."""
        total = self.running_sum  # reused: the simulation is over
        for cid in sorted(self.fed - included):
            np.subtract(total, self.vector(cid), out=total)
        for cid in sorted(included - self.fed):
            np.add(total, self.vector(cid), out=total)
        out = total.astype(np.uint64)
        if self._bits < 64:
            np.bitwise_and(out, np.uint64((1 << self._bits) - 1), out=out)
        return out


class _Transport:
    """One run: delivery, dropouts, clocks and bytes."""

    def __init__(
        self,
        spec: ProtocolSpec,
        config: Any,
        feed: _InputFeed,
        schedule: DropoutSchedule,
        bar: tqdm[Any],
    ) -> None:
        self.spec = spec
        self.server = spec.make_server(config)
        self.clients: dict[int, ClientProtocol] = {
            cid: spec.make_client(config, cid, feed.source(cid)) for cid in spec.client_ids(config)
        }
        self.feed = feed
        self.schedule = schedule
        self.ledger = CostLedger()
        self.dropped: dict[int, str] = {}
        self.bar = bar
        self._active_rounds: set[str] = set()
        self._server_round = spec.round_names[0] if spec.round_names else "start"

    def _activate(self, round_name: str) -> None:
        # First sight of a round: its scheduled clients vanish now.
        if round_name in self._active_rounds:
            return
        self._active_rounds.add(round_name)
        self.bar.set_description(round_name)
        leaving = self.schedule.by_round.get(round_name, frozenset())
        for cid in leaving:
            self.dropped.setdefault(cid, round_name)
        logger.debug(
            "%s: round %s begins; %d clients drop before sending: %s",
            self.spec.name,
            round_name,
            len(leaving),
            _ids(leaving),
        )

    def _server_call(self, call: Callable[[], list[Message]]) -> list[Message]:
        start = time.perf_counter()
        out = call()
        self.ledger.record_time(self._server_round, SERVER_ID, time.perf_counter() - start)
        return out

    def _to_server(self, message: Message) -> list[Message]:
        round_name = message.round_name
        data = message.to_bytes()
        self.ledger.record_message(round_name, message.sender, SERVER_ID, len(data))
        decoded = self.spec.decode(data, message.sender)
        self._server_round = round_name
        return self._server_call(lambda: self.server.receive(decoded))

    def _to_client(self, message: Message) -> list[Message]:
        """Deliver one server message; return what the server answers to the replies."""
        round_name = message.round_name
        self._activate(round_name)
        cid = message.recipient
        client = self.clients.get(cid)
        if client is None:
            raise UsageError(f"the server addressed unknown party {cid}")
        if cid in self.dropped:
            return []
        data = message.to_bytes()
        self.ledger.record_message(round_name, SERVER_ID, cid, len(data))
        decoded = self.spec.decode(data, SERVER_ID)
        overhead = self.feed.overhead
        start = time.perf_counter()
        replies = client.receive(decoded)
        elapsed = time.perf_counter() - start - (self.feed.overhead - overhead)
        # Work is charged to the round it produces (the round it consumed if it produced nothing).
        charge_round = replies[0].round_name if replies else round_name
        self.ledger.record_time(charge_round, cid, max(elapsed, 0.0))
        self.bar.update(1)
        answers: list[Message] = []
        for reply in replies:
            self._activate(reply.round_name)
            if cid in self.dropped:
                break
            if reply.sender != cid or reply.recipient != SERVER_ID:
                raise UsageError(
                    f"client {cid} sent a message as {reply.sender} to {reply.recipient}"
                )
            answers.extend(self._to_server(reply))
        return answers

    def run(self) -> AggregationResult:
        outgoing = self._server_call(self.server.start)
        while True:
            if outgoing:
                if any(m.sender != SERVER_ID for m in outgoing):
                    raise UsageError("the server emitted a message not sent by the server")
                next_round: list[Message] = []
                for message in outgoing:
                    next_round.extend(self._to_client(message))
                outgoing = next_round
                continue
            if self.server.done:
                break
            # Nobody is left to answer this round: the deadline passes.
            logger.debug("%s: deadline of round %s passes", self.spec.name, self._server_round)
            outgoing = self._server_call(self.server.close_round)
            if not outgoing and not self.server.done:
                raise ProtocolAbort("the server made no progress after its round deadline")
        result = self.server.result
        if result is None:
            raise ProtocolAbort("the server finished without a result")
        return result


def simulate(
    config: Any,
    inputs: InputProvider,
    *,
    dropouts: DropoutSchedule | None = None,
    progress: bool = False,
    protocol: str | ProtocolSpec | None = None,
) -> SimulationResult:
    """Run one aggregation of ``config``'s protocol in-process.

    ``inputs`` gives each configured client's vector in Z_(2^bits) (integers in
    [0, 2^bits), the protocol's vector length): a mapping or a deterministic factory.
    ``protocol`` (a registry name or a spec) overrides the lookup by config type.

    Guarantees: every message is encoded, counted and decoded; the returned ``expected``
    is the plaintext sum of exactly the clients the protocol reports as included, and
    ``matches`` compares it with the protocol's total. Raises ConfigurationError for an
    unknown config type, a dropout round the protocol does not have, a dropout of an
    unconfigured client, or bad inputs (or a ``protocol`` that does not take ``config``);
    ProtocolAbort if the protocol cannot finish (for
    example too few clients remain); ProtocolViolation if a party rejects a message.
    """
    if protocol is None:
        spec = protocol_for_config(config)
    else:
        spec = get_protocol(protocol) if isinstance(protocol, str) else protocol
        if not isinstance(config, spec.config_type):
            raise ConfigurationError(f"{spec.name} does not take a {type(config).__name__}")
    schedule = dropouts if dropouts is not None else DropoutSchedule()
    ids = list(spec.client_ids(config))
    unknown_rounds = set(schedule.by_round) - set(spec.round_names)
    if unknown_rounds:
        raise ConfigurationError(
            f"{spec.name} has no round {sorted(unknown_rounds)}; rounds: {list(spec.round_names)}"
        )
    strangers = schedule.clients - set(ids)
    if strangers:
        raise ConfigurationError(f"cannot drop unconfigured clients {sorted(strangers)[:5]}")
    bits = spec.bits(config)
    feed = _InputFeed(inputs, spec.vector_length(config), bits, ids)
    logger.debug(
        "%s: simulating %d clients, vector length %d, %d bits; %d scheduled to drop",
        spec.name,
        len(ids),
        spec.vector_length(config),
        bits,
        len(schedule.clients),
    )
    started = time.perf_counter()
    with tqdm(
        total=len(ids) * len(spec.round_names),
        disable=not progress,
        file=sys.stderr,
        unit="msg",
        delay=0.5,  # short runs print nothing
        leave=False,
    ) as bar:
        transport = _Transport(spec, config, feed, schedule, bar)
        try:
            aggregate = transport.run()
        except (ProtocolAbort, ProtocolViolation) as exc:
            logger.debug("%s: aborted: %s: %s", spec.name, type(exc).__name__, exc)
            raise
    seconds = time.perf_counter() - started
    _log_outcome(spec, aggregate, transport.ledger)
    expected = feed.expected_for(frozenset(aggregate.included))
    logger.debug(
        "%s: done in %.3f s; %d included, %d excluded, %d faults",
        spec.name,
        seconds,
        len(aggregate.included),
        len(aggregate.excluded),
        len(aggregate.faults),
    )
    return SimulationResult(
        protocol=spec.name,
        aggregate=aggregate,
        expected=expected,
        bits=bits,
        costs=transport.ledger,
        dropped=dict(transport.dropped),
        clients=len(ids),
        seconds=seconds,
    )
