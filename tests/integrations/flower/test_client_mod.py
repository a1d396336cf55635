"""The client mod's guards and the protocol client's state across ClientApp processes."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError, UsageError
from secagg.integrations.flower import (
    SECAGG_ERROR_CODE,
    ClientPolicy,
    SecAggSettings,
    make_secagg_mod,
    run_secure_round,
)
from secagg.integrations.flower.client_mod import STATE_KEY
from secagg.integrations.flower.client_state import BonawitzBackend
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.flower.testing import InProcessGrid
from secagg.integrations.flower.wire import (
    Envelope,
    FixedPointParams,
    SessionSetup,
    read_envelope,
    write_envelope,
)
from secagg.protocols.base import Message as ProtocolMessage
from secagg.protocols.bonawitz.client import Client, generate_identities
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import AdvertiseKeysRequest, UnmaskingRequest
from secagg.protocols.bonawitz.server import Server
from tests.helpers.flower import bonawitz_params, server_task_identity

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "flower_app"))
from secagg_flower_app.task import client_update, initial_arrays

SESSION = bytes(range(16))


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


class Trainer:
    """A ``call_next`` that records its calls and returns a configurable training reply."""

    def __init__(self, weight: object = 7, arrays: ArrayRecord | None = None) -> None:
        self.calls = 0
        self.weight = weight
        self.arrays = arrays

    def __call__(self, message: Message, context: Context) -> Message:
        self.calls += 1
        arrays, _, loss = client_update(1, 1)
        record = self.arrays or ArrayRecord({k: Array(v) for k, v in arrays.items()})
        metrics = {"train_loss": loss}
        if self.weight is not None:
            metrics["num-examples"] = self.weight  # type: ignore[assignment]
        return Message(
            RecordDict({"arrays": record, "metrics": MetricRecord(metrics)}), reply_to=message
        )


def context() -> Context:
    return Context(run_id=1, node_id=42, node_config={}, state=RecordDict(), run_config={})


def setup(threshold: int = 3, degree: int | None = None, **changes: object) -> SessionSetup:
    fields: dict[str, object] = dict(
        session_id=SESSION,
        protocol="bonawitz",
        n=4,
        client_id=2,
        bits=32,
        fixed_point=FixedPointParams(clip=4.0, scale=1000.0, max_clients=4, max_weight=10.0),
        layout=ArrayLayout.from_record(initial_arrays(), ["train_loss"]),
        weighted_by_key="num-examples",
        weighted=True,
        params=bonawitz_params(threshold, degree),
    )
    fields.update(changes)
    return SessionSetup(**fields)  # type: ignore[arg-type]


def first_message(
    s: SessionSetup,
    *,
    stage: int = 0,
    header_session: bytes | None = None,
    payloads: tuple[bytes, ...] | None = None,
    raw_setup: bytes | None = None,
) -> Message:
    request = AdvertiseKeysRequest(0, s.client_id, s.session_id, bytes(32)).to_bytes()
    content = RecordDict({"arrays": initial_arrays(), "config": ConfigRecord({"server-round": 1})})
    envelope = Envelope(
        stage,
        header_session or s.session_id,
        payloads if payloads is not None else (request,),
        raw_setup if raw_setup is not None else s.to_bytes(),
    )
    return Message(write_envelope(content, envelope), 42, "train")


def refused(reply: Message) -> str:
    assert reply.has_error(), "expected a refusal"
    assert reply.error.code == SECAGG_ERROR_CODE
    return str(reply.error.reason)


def test_other_message_types_pass_through() -> None:
    mod, trainer = make_secagg_mod(), Trainer()
    for kind in ("evaluate", "query", "evaluate.custom"):
        reply = mod(Message(RecordDict(), 42, kind), context(), trainer)
        assert not reply.has_error()
    assert trainer.calls == 3


def test_plain_training_is_refused_unless_the_policy_allows_it() -> None:
    trainer = Trainer()
    message = Message(RecordDict({"arrays": initial_arrays()}), 42, "train")
    assert "without secure aggregation" in refused(make_secagg_mod()(message, context(), trainer))
    assert trainer.calls == 0
    reply = make_secagg_mod(ClientPolicy(require_secure=False))(message, context(), trainer)
    assert not reply.has_error() and trainer.calls == 1


def test_a_valid_setup_trains_once_and_answers_with_secagg_records_only() -> None:
    trainer, ctx = Trainer(), context()
    reply = make_secagg_mod()(first_message(setup()), ctx, trainer)
    assert not reply.has_error() and trainer.calls == 1
    assert set(reply.content.keys()) == {"secagg", "secagg.payload"}
    envelope = read_envelope(reply.content, party=2, max_bytes=10**6)
    assert envelope.stage == 0 and len(envelope.payloads) == 1
    stored = ctx.state.config_records[STATE_KEY]
    assert stored["status"] == "active" and stored["stage"] == 1


@pytest.mark.parametrize(
    ("make", "reason", "trained"),
    [
        (
            lambda: first_message(
                setup(
                    n=2,
                    client_id=1,
                    threshold=2,
                    fixed_point=FixedPointParams(4.0, 1000.0, 2, 10.0),
                )
            ),
            "policy needs 3",
            False,
        ),
        (lambda: first_message(setup(bits=4)), "bit width", False),
        (
            lambda: first_message(setup(fixed_point=FixedPointParams(4.0, 1000.0, 3, 10.0))),
            "sized for 3 clients",
            False,
        ),
        (
            lambda: first_message(setup(fixed_point=FixedPointParams(4.0, 1e12, 4, 10.0))),
            "Headroom",
            False,
        ),
        (lambda: first_message(setup(threshold=2)), "n/2", False),
        (lambda: first_message(setup(), header_session=bytes(16)), "another session", False),
        (lambda: first_message(setup(), raw_setup=b"\x93\x01\x02\x03"), "DecodeError", False),
        (lambda: first_message(setup(), payloads=()), "no protocol message", False),
        # The protocol message is only read after training; refusing it aborts the session.
        (lambda: first_message(setup(), payloads=(b"junk",)), "DecodeError", True),
        (
            lambda: first_message(
                setup(), payloads=(AdvertiseKeysRequest(0, 3, SESSION, bytes(32)).to_bytes(),)
            ),
            "another client",
            True,
        ),
    ],
)
def test_bad_setups_are_refused(make: Callable[[], Message], reason: str, trained: bool) -> None:
    trainer, ctx = Trainer(), context()
    assert reason in refused(make_secagg_mod()(make(), ctx, trainer))
    assert trainer.calls == int(trained)
    stored = ctx.state.config_records.get(STATE_KEY)
    assert stored is None or stored["status"] == "aborted"


def test_oversized_vectors_are_refused() -> None:
    policy = ClientPolicy(max_vector_length=5)
    assert "DecodeError" in refused(
        make_secagg_mod(policy)(first_message(setup()), context(), Trainer())
    )


@pytest.mark.parametrize(
    ("trainer", "reason"),
    [
        (Trainer(weight=11), "outside [0, max_weight"),
        (Trainer(weight=None), "lacks the weight"),
        (Trainer(weight=[7, 8]), "lacks the weight"),
        (Trainer(arrays=ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32))})), "names"),
    ],
)
def test_bad_training_results_abort_the_session(trainer: Trainer, reason: str) -> None:
    ctx = context()
    assert reason in refused(make_secagg_mod()(first_message(setup()), ctx, trainer))
    assert ctx.state.config_records[STATE_KEY]["status"] == "aborted"


def test_training_errors_are_passed_on() -> None:
    def failing(message: Message, ctx: Context) -> Message:
        from flwr.app import Error

        return Message(Error(2, "out of memory"), reply_to=message)

    ctx = context()
    reply = make_secagg_mod()(first_message(setup()), ctx, failing)
    assert reply.has_error() and reply.error.reason == "out of memory"
    assert ctx.state.config_records[STATE_KEY]["status"] == "aborted"


def test_a_crashing_training_function_aborts_the_session() -> None:
    def crashing(message: Message, ctx: Context) -> Message:
        raise RuntimeError("boom")

    ctx = context()
    with pytest.raises(RuntimeError, match="boom"):  # Flower turns it into an error reply
        make_secagg_mod()(first_message(setup()), ctx, crashing)
    assert ctx.state.config_records[STATE_KEY]["status"] == "aborted"


def test_a_setup_may_come_in_a_later_stage_and_stages_only_grow() -> None:
    # A protocol may first address a node in a later stage (a committee's key setup runs
    # before the clients' inputs): the node trains then, and answers later stages only.
    mod, ctx, trainer = make_secagg_mod(), context(), Trainer()
    reply = mod(first_message(setup(), stage=2), ctx, trainer)
    assert not reply.has_error() and trainer.calls == 1
    assert read_envelope(reply.content, party=2, max_bytes=10**6).stage == 2
    assert ctx.state.config_records[STATE_KEY]["stage"] == 3


def test_replayed_session_and_out_of_order_stages_are_refused() -> None:
    mod, ctx = make_secagg_mod(), context()
    assert not mod(first_message(setup()), ctx, Trainer()).has_error()
    # A second setup of the same session: refused (the client already took part).
    assert "already took part" in refused(mod(first_message(setup()), ctx, Trainer()))
    # A new session id is fine.
    other = setup(session_id=bytes(range(1, 17)))
    assert not mod(first_message(other), ctx, Trainer()).has_error()
    # Stage 0 again while stage 1 or later is expected: refused, and the session is
    # aborted for good.
    replayed = Message(
        write_envelope(RecordDict(), Envelope(0, other.session_id, (b"x",))), 42, "train"
    )
    assert "out of order" in refused(mod(replayed, ctx, Trainer()))
    right = Message(
        write_envelope(RecordDict(), Envelope(1, other.session_id, (b"x",))), 42, "train"
    )
    assert "aborted" in refused(mod(right, ctx, Trainer()))
    stranger = Message(write_envelope(RecordDict(), Envelope(1, bytes(16), (b"x",))), 42, "train")
    assert "not in" in refused(mod(stranger, ctx, Trainer()))


class TamperingServer:
    """A protocol server whose unmasking requests list a victim as dropped AND alive."""

    def __init__(self, config: ProtocolConfig, victim: int) -> None:
        self.inner, self.victim = Server(config), victim

    def _tamper(self, messages: list[ProtocolMessage]) -> list[ProtocolMessage]:
        out: list[ProtocolMessage] = []
        for m in messages:
            if isinstance(m, UnmaskingRequest):
                m = dataclasses.replace(m, dropped=(*m.dropped, self.victim))
            out.append(m)
        return out

    def start(self) -> list[ProtocolMessage]:
        return self.inner.start()

    def receive(self, message: ProtocolMessage) -> list[ProtocolMessage]:
        return self._tamper(self.inner.receive(message))

    def receive_bytes(self, data: bytes, sender: int) -> list[ProtocolMessage]:
        return self._tamper(self.inner.receive_bytes(data, sender))

    def close_round(self) -> list[ProtocolMessage]:
        return self._tamper(self.inner.close_round())

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def result(self) -> object:
        return self.inner.result


def test_a_server_asking_for_both_shares_of_a_victim_gets_nothing() -> None:
    from secagg_flower_app.client_app import train  # the example's training function

    app = ClientApp(mods=[make_secagg_mod()])
    app.train()(train)
    grid = InProcessGrid.create(app, {100 + p: {"partition-id": p} for p in range(4)})
    messages = [
        Message(
            RecordDict({"arrays": initial_arrays(), "config": ConfigRecord({"server-round": 1})}),
            node,
            "train",
        )
        for node in grid.get_node_ids()
    ]
    report = run_secure_round(
        grid,
        messages,
        SecAggSettings(protocol="bonawitz", clip=4.0, max_weight=100.0, stage_timeout=0.02),
        make_server=lambda c: TamperingServer(c, victim=1),
    )  # type: ignore[arg-type,return-value]
    assert not report.ok
    assert all(
        "MaliciousRequestError" in r and "dropped and alive" in r
        for r in report.excluded_nodes.values()
    ), report.excluded_nodes
    for node in grid.get_node_ids():
        stored = grid.contexts[node].state.config_records[STATE_KEY]
        assert stored["status"] == "aborted" and stored["client"] == b""


# -- the protocol client carried across processes by the default backend ------------------


def session(n: int = 4) -> tuple[ProtocolConfig, Server, dict[int, Client]]:
    config = ProtocolConfig.create(
        clients=range(1, n + 1), threshold=n // 2 + 1, bits=24, vector_length=5
    )
    clients = {c: Client(config, c, np.full(5, c, dtype=np.uint32)) for c in config.clients}
    return config, Server(config), clients


def run(
    config: ProtocolConfig,
    server: Server,
    clients: dict[int, Client],
    hook: Callable[[int, Client], Client],
) -> Server:
    outgoing = server.start()
    while not server.done:
        incoming = []
        for m in outgoing:
            clients[m.recipient] = hook(m.recipient, clients[m.recipient])
            incoming += clients[m.recipient].receive(m)
        outgoing = []
        for m in incoming:
            outgoing += server.receive_bytes(m.to_bytes(), m.sender)
    return server


def test_backend_round_trips_at_every_stage_and_the_sum_is_right() -> None:
    config, server, clients = session()
    backend = BonawitzBackend()
    dumps: list[bytes] = []

    def through_bytes(client_id: int, client: Client) -> Client:
        data = backend.dump(client)
        restored = backend.load(config, client_id, data)
        assert isinstance(restored, Client) and backend.dump(restored) == data
        dumps.append(data)
        return restored

    result = run(config, server, clients, through_bytes).result
    assert result is not None and result.included == frozenset(config.clients)
    np.testing.assert_array_equal(result.total, np.full(5, 10))
    assert len(dumps) == 20  # 4 clients x 5 stages, each through bytes


def test_backend_refuses_foreign_or_broken_state() -> None:
    config, server, clients = session()
    backend = BonawitzBackend()
    server.start()
    clients[1].receive(AdvertiseKeysRequest(0, 1, config.session_id, bytes(32)))
    data = backend.dump(clients[1])
    with pytest.raises(DecodeError):
        backend.load(config, 2, data)  # another client's state
    with pytest.raises(DecodeError):
        backend.load(dataclasses.replace(config, vector_length=6), 1, data)  # another config
    with pytest.raises(DecodeError):
        backend.load(config, 1, data[:-1])  # truncated


@given(st.binary(max_size=300))
def test_backend_from_random_bytes_raises_decode_error_only(data: bytes) -> None:
    config, _, _ = session(3)
    with pytest.raises(DecodeError):
        BonawitzBackend().load(config, 1, data)


def test_backend_refuses_what_it_cannot_carry() -> None:
    config, _, _ = session()
    backend = BonawitzBackend()
    lazy = Client(config, 1, lambda: np.zeros(5, dtype=np.uint32))
    with pytest.raises(UsageError, match="lazy"):
        backend.dump(lazy)


def test_backend_carries_an_active_client_with_the_identity_given_back() -> None:
    identities = generate_identities([1, 2, 3, 4])
    active = ProtocolConfig.create(
        clients=[1, 2, 3, 4],
        threshold=3,
        bits=24,
        vector_length=5,
        mode="active",
        identities={c: k.verify_key for c, k in identities.items()},
    )
    backend = BonawitzBackend(identities[1])
    client = backend.create(active, 1, np.zeros(5, dtype=np.uint32))
    data = backend.dump(client)
    assert identities[1].private_bytes().hex() not in data.hex()  # the identity is not in it
    assert backend.dump(backend.load(active, 1, data)) == data
    with pytest.raises(ConfigurationError):  # without the node's key it cannot go on
        BonawitzBackend().load(active, 1, data)
    with pytest.raises(ConfigurationError):  # nor with another node's
        BonawitzBackend(identities[2]).load(active, 1, data)


def test_no_secret_in_reprs() -> None:
    from secagg.integrations.flower.client_mod import _Stored

    ctx = context()
    make_secagg_mod()(first_message(setup()), ctx, Trainer())
    stored = _Stored.load(ctx)
    assert stored.client and stored.client.hex() not in repr(stored)
    assert "bytes>" in repr(stored)
    grid = InProcessGrid.create(ClientApp(), {1: {}})
    grid.contexts[1] = ctx
    assert "state" not in repr(grid) and stored.client.hex()[:32] not in repr(grid)
