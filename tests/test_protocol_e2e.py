"""End-to-end properties of the Bonawitz / SecAgg+ state machines.

The in-test driver (:func:`run_session`, also used by the other ``test_protocol_*`` files)
moves every message as bytes, drops clients before they send in a given round, and lets a
test tamper with what reaches the server. The property checked everywhere: the total equals
the plaintext sum of exactly the included clients, or the session aborts with the typed
error, and only when fewer than t remain.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ProtocolAbort, ProtocolViolation
from secagg.protocols.base import ROUND_NAMES, AggregationResult, Message
from secagg.protocols.client import Client, generate_identities
from secagg.protocols.config import ProtocolConfig
from secagg.protocols.graph import harary_graph
from secagg.protocols.messages import decode_message
from secagg.protocols.server import Server
from secagg.signing import SigningKey

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
    mode: str = "semi-honest",
    degree: int | None = None,
    seed: int = 0,
) -> Session:
    clients = list(range(1, n + 1))
    identities = generate_identities(clients) if mode == "active" else None
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


# --- strategies -------------------------------------------------------------------------


@st.composite
def sessions(draw: st.DrawFn, *, max_n: int = 30, active: bool | None = None) -> Session:
    n = draw(st.integers(2, max_n))
    mode = (
        draw(st.sampled_from(["semi-honest", "active"]))
        if active is None
        else ("active" if active else "semi-honest")
    )
    degree = None
    if n >= 5 and draw(st.booleans()):
        degrees = [k for k in range(2, n - 1) if (n * k) % 2 == 0]
        degree = draw(st.sampled_from(degrees))
    holders = (degree if degree is not None else n - 1) + 1
    if degree is None:
        low = 2 * n // 3 + 1 if mode == "active" else n // 2 + 1
    else:
        low = holders // 2 + 1 if mode == "active" else 2
    threshold = draw(st.integers(max(low, 2), holders))
    bits = draw(st.sampled_from([1, 7, 16, 31, 32, 33, 64]))
    length = draw(st.integers(1, 12))
    return make_session(
        n,
        threshold,
        bits=bits,
        length=length,
        mode=mode,
        degree=degree,
        seed=draw(st.integers(0, 9)),
    )


def dropout_plans(session: Session) -> st.SearchStrategy[dict[str, set[int]]]:
    rounds = [r for r in ROUND_NAMES if session.config.mode == "active" or r != "consistency_check"]

    def plan(assignment: list[str | None]) -> dict[str, set[int]]:
        drops: dict[str, set[int]] = {r: set() for r in rounds}
        for client, round_name in zip(session.config.clients, assignment, strict=True):
            if round_name is not None:
                drops[round_name].add(client)
        return drops

    choice = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(rounds))
    return st.lists(choice, min_size=session.config.n, max_size=session.config.n).map(plan)


def complete_graph_outcome(
    session: Session, drops: Mapping[str, set[int]]
) -> frozenset[int] | None:
    """The included set Bonawitz et al. promise for the complete graph, or None (abort)."""
    t = session.config.threshold
    live = set(session.config.clients)
    survivors: set[int] = set()
    for round_name in ROUND_NAMES:
        if round_name == "consistency_check" and session.config.mode != "active":
            continue
        live -= drops.get(round_name, set())
        if len(live) < t:
            return None
        if round_name == "masked_input":
            survivors = set(live)
    return frozenset(survivors)


# --- tests ------------------------------------------------------------------------------


@given(sessions())
def test_sum_without_dropouts(session: Session) -> None:
    result = run_session(session)
    assert result.included == session.config.client_set
    assert not result.excluded and not result.faults
    assert_correct(session, result)


@given(st.data())
def test_sum_with_dropouts_at_every_round(data: st.DataObject) -> None:
    session = data.draw(sessions())
    drops = data.draw(dropout_plans(session))
    promised = complete_graph_outcome(session, drops) if session.config.is_complete else None
    try:
        result = run_session(session, drops=drops)
    except ProtocolAbort:
        # Plain SecAgg aborts exactly when fewer than t remain; SecAgg+ may also abort when
        # one neighbourhood falls below t.
        assert promised is None or not session.config.is_complete
        assert session.server.result is None
        return
    assert_correct(session, result)
    lost_before_input = drops.get("advertise_keys", set()) | drops.get("share_keys", set())
    lost_before_input |= drops.get("masked_input", set())
    assert not result.included & lost_before_input
    if session.config.is_complete:
        assert result.included == promised


@given(st.data())
def test_reordered_deliveries(data: st.DataObject) -> None:
    session = data.draw(sessions(max_n=12))
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    result = run_session(session, shuffle=rng)
    assert result.included == session.config.client_set
    assert_correct(session, result)


def test_abort_when_fewer_than_t_remain() -> None:
    session = make_session(5, 3)
    with pytest.raises(ProtocolAbort):
        run_session(session, drops={"masked_input": {1, 2, 3}})
    assert session.server.result is None
    assert not session.server.done


def test_abort_when_too_few_unmask() -> None:
    session = make_session(6, 4)
    with pytest.raises(ProtocolAbort):
        run_session(session, drops={"unmasking": {1, 2, 3}})


def test_dropouts_after_masking_still_count() -> None:
    # A client that sent its masked input and then vanished is in the sum (its b_u is
    # reconstructed from the others), as the paper says.
    session = make_session(7, 5, mode="active")
    result = run_session(session, drops={"consistency_check": {2}, "unmasking": {3}})
    assert {2, 3} <= result.included
    assert_correct(session, result)


def test_secagg_plus_large_sparse_graph() -> None:
    session = make_session(40, 4, degree=6, length=32, seed=3)
    result = run_session(session, drops={"share_keys": {5}, "masked_input": {9, 17}})
    assert_correct(session, result)
    assert not result.included & {5, 9, 17}


def test_secagg_plus_prunes_a_client_whose_neighbourhood_is_gone() -> None:
    clients = list(range(1, 11))
    graph = harary_graph(clients, 2, bytes(16))  # a ring
    victim = 1
    left, right = sorted(graph[victim])
    session = make_session(10, 2, degree=2)
    config = ProtocolConfig(session.config.session_id, tuple(clients), 2, 16, 8, neighbours=graph)
    session = Session(config, session.inputs)
    result = run_session(session, drops={"advertise_keys": {left, right}})
    assert victim not in result.included
    assert "fewer than t" in result.excluded[victim]
    assert_correct(session, result)


def test_input_from_callable_is_fetched_once() -> None:
    session = make_session(3, 2, length=5)
    calls: list[int] = []

    def lazy(c: int) -> Callable[[], np.ndarray]:
        def fetch() -> np.ndarray:
            calls.append(c)
            return session.inputs[c]

        return fetch

    session.clients = {c: Client(session.config, c, lazy(c)) for c in session.config.clients}
    result = run_session(session)
    assert sorted(calls) == [1, 2, 3]
    assert_correct(session, result)
