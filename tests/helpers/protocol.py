"""Hand-driven Bonawitz / SecAgg+ sessions for the example tests of ``tests/protocols/bonawitz``.

:func:`run_session` moves every message as bytes, drops clients before they send in a given
round, and lets a test tamper with what reaches the server: the known-answer and regression
tests use it. Property tests draw from :mod:`secagg.testing.strategies` and check with
:func:`secagg.testing.harness.run`; :func:`sessions` and :func:`dropout_plans` adapt those
strategies to this driver for the tests that need a Session.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from secagg.errors import ProtocolViolation
from secagg.protocols.base import AggregationResult, Message
from secagg.protocols.bonawitz.client import Client, generate_identities
from secagg.protocols.bonawitz.config import ACTIVE, SEMI_HONEST, ProtocolConfig
from secagg.protocols.bonawitz.messages import UnmaskingRequest, decode_message
from secagg.protocols.bonawitz.server import Server
from secagg.signing import SigningKey
from secagg.testing.strategies import bonawitz_targets, client_inputs, dropout_schedules

__all__ = [
    "OLD_BIT_WIDTHS",
    "Session",
    "Tamper",
    "assert_correct",
    "dropout_plans",
    "make_session",
    "run_session",
    "sessions",
]

OLD_BIT_WIDTHS = (1, 7, 16, 31, 32, 33, 64)
"""The bit widths the protocol tests always drew: both storage dtypes and their edges."""

# A tamper hook sees (sender, round name, encoded message) on the way to the server and
# returns the byte strings actually delivered (none, the same, garbled, duplicated...).
Tamper = Callable[[int, str, bytes], list[bytes]]


@dataclass
class Session:
    config: ProtocolConfig
    inputs: dict[int, np.ndarray]
    identities: dict[int, SigningKey] | None = None
    server: Server = field(init=False)
    clients: dict[int, Client] = field(init=False)

    def __post_init__(self) -> None:
        self.server = Server(self.config, threads=1)
        self.clients = {
            c: Client(
                self.config,
                c,
                self.inputs[c],
                self.identities[c] if self.identities else None,
            )
            for c in self.config.clients
        }

    def expected(self, included: frozenset[int]) -> np.ndarray:
        total = np.zeros(self.config.vector_length, dtype=np.uint64)
        for c in included:
            total += self.inputs[c].astype(np.uint64)
        if self.config.bits < 64:
            total &= np.uint64((1 << self.config.bits) - 1)
        return total


def make_session(
    n: int,
    threshold: int,
    *,
    bits: int = 16,
    length: int = 8,
    mode: str = SEMI_HONEST,
    degree: int | None = None,
    seed: int = 0,
) -> Session:
    clients = list(range(1, n + 1))
    identities = generate_identities(clients) if mode == ACTIVE else None
    config = ProtocolConfig.create(
        clients,
        threshold=threshold,
        bits=bits,
        vector_length=length,
        mode=mode,  # type: ignore[arg-type]
        degree=degree,
        identities={c: k.verify_key for c, k in identities.items()} if identities else None,
    )
    rng = np.random.default_rng(seed)
    high = 1 << bits
    inputs = {
        c: rng.integers(0, high, length, dtype=np.uint64).astype(config.dtype) for c in clients
    }
    return Session(config, inputs, identities)


def run_session(
    session: Session,
    *,
    drops: Mapping[str, set[int]] | None = None,
    tamper: Tamper | None = None,
    shuffle: random.Random | None = None,
    client_errors: dict[int, ProtocolViolation] | None = None,
) -> AggregationResult:
    """Drive the session to its end; return the server's result (or raise ProtocolAbort).

    A client in ``drops[r]`` vanishes just before it would send its round-``r`` message.
    ``shuffle`` reorders each round's deliveries to the server. A client that refuses a
    message is recorded in ``client_errors`` (a test failure when that is None).
    """
    drops = drops or {}
    server = session.server
    gone: set[int] = set()
    outgoing: list[Message] = server.start()
    while True:
        uploads: list[tuple[int, str, bytes]] = []
        for message in outgoing:
            client_id = message.recipient
            if client_id in gone:
                continue
            if client_id in drops.get(message.round_name, set()):
                gone.add(client_id)
                continue
            try:
                replies = session.clients[client_id].receive(decode_message(message.to_bytes()))
            except ProtocolViolation as exc:
                if client_errors is None:
                    raise
                client_errors[client_id] = exc
                gone.add(client_id)
                continue
            for reply in replies:
                uploads.append((client_id, reply.round_name, reply.to_bytes()))
        if shuffle is not None:
            shuffle.shuffle(uploads)
        outgoing = []
        for sender, round_name, data in uploads:
            for delivered in tamper(sender, round_name, data) if tamper else [data]:
                outgoing += server.receive_bytes(delivered, sender)
        if outgoing:
            continue
        if server.done:
            break
        outgoing = server.close_round()
    result = server.result
    assert result is not None
    return result


def assert_correct(session: Session, result: AggregationResult) -> None:
    assert result.total.dtype == session.config.dtype
    np.testing.assert_array_equal(result.total.astype(np.uint64), session.expected(result.included))
    assert result.included | set(result.excluded) == session.config.client_set
    assert not result.included & set(result.excluded)


@st.composite
def sessions(draw: st.DrawFn, *, max_n: int = 30, active: bool | None = None) -> Session:
    """A Session of a configuration drawn by :func:`secagg.testing.strategies.protocol_configs`
    (n in 2..max_n, semi-honest or active, SecAgg+ degrees, bit widths of OLD_BIT_WIDTHS,
    vector lengths 1..12) with inputs from :func:`~secagg.testing.strategies.client_inputs`."""
    modes = (SEMI_HONEST, ACTIVE) if active is None else ((ACTIVE,) if active else (SEMI_HONEST,))
    target = draw(
        bonawitz_targets(
            max_clients=max_n,
            modes=modes,
            bits=st.sampled_from(OLD_BIT_WIDTHS),
            max_vector_length=12,
        )
    )
    inputs = draw(client_inputs(target, headroom="none"))
    return Session(target.config, inputs, target.identities)


def dropout_plans(session: Session) -> st.SearchStrategy[dict[str, set[int]]]:
    """:func:`secagg.testing.strategies.dropout_schedules` as ``run_session``'s ``drops``."""
    return dropout_schedules(session.config).map(
        lambda schedule: {r: set(ids) for r, ids in schedule.by_round.items()}
    )


def advance_to(session: Session, round_name: str) -> dict[int, Message]:
    """Run the honest protocol until the server emits the requests of ``round_name``;
    return them (undelivered) by recipient."""
    outgoing = session.server.start()
    while True:
        if outgoing and outgoing[0].round_name == round_name:
            return {m.recipient: m for m in outgoing}
        replies: list[Message] = []
        for message in outgoing:
            replies += session.clients[message.recipient].receive(message)
        outgoing = []
        for reply in replies:
            outgoing += session.server.receive(reply)


def deliver(client: Client, message: Message) -> list[Message]:
    return client.receive(decode_message(message.to_bytes()))


def unmasking_setup(mode: str = "semi-honest") -> tuple[Session, dict[int, UnmaskingRequest]]:
    # 6 clients, client 6 drops before masking: it is "dropped" in every request.
    session = make_session(6, 5 if mode == "active" else 4, mode=mode)
    requests = advance_to(session, "masked_input")
    for client_id, request in requests.items():
        if client_id != 6:
            for reply in deliver(session.clients[client_id], request):
                session.server.receive(reply)
    if mode == "active":
        checks = session.server.close_round()
        replies = [r for m in checks for r in deliver(session.clients[m.recipient], m)]
        unmask: list[Message] = []
        for reply in replies:
            unmask += session.server.receive(reply)
    else:
        unmask = session.server.close_round()
    return session, {m.recipient: m for m in unmask}  # type: ignore[misc]
