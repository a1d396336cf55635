"""The hook for another protocol over Flower (what threshold CKKS will use): a toy protocol,
registered with ``register_flower_protocol``, runs through the unchanged transport.

The toy (INSECURE: it sums inputs in clear; tests only) first addresses one "leader"
client only, as a committee's key setup addresses only the committee, then every client:
a node receives its setup and the strategy's content with the first message addressed to
it, whichever stage that is, and trains then.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import pytest

from secagg.errors import DecodeError
from secagg.integrations.flower import SecAggSettings, register_flower_protocol, run_secure_round
from secagg.integrations.flower.protocols import Identity, SessionPlan
from secagg.protocols.base import SERVER_ID, AggregationResult, ClientProtocol, Message
from secagg.ring import dtype_for_bits
from tests.helpers.flower import (
    check_report,
    make_grid,
    node_of,
    server_task_identity,
    train_messages,
)

NAME = "toy-leader"


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


@dataclass(frozen=True)
class ToyConfig:
    session_id: bytes
    n: int
    bits: int
    vector_length: int


@dataclass(frozen=True)
class ToyMessage:
    sender: int
    recipient: int
    session_id: bytes
    round_name: str
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        return bytes(msgpack.packb([self.sender, self.recipient, self.session_id,
                                    self.round_name, self.payload]))


def decode(data: bytes, sender: int) -> Message:
    try:
        fields = msgpack.unpackb(data)
        message = ToyMessage(*fields)
    except Exception:
        raise DecodeError("not a toy message", party=sender) from None
    if message.sender != sender:
        raise DecodeError("another sender", party=sender)
    return message


class ToyClient:
    def __init__(self, config: ToyConfig, client_id: int, vector: np.ndarray | None,
                 done: bool = False) -> None:
        self.config, self.client_id, self.vector, self._done = config, client_id, vector, done

    @property
    def done(self) -> bool:
        return self._done

    def receive(self, message: Message) -> list[Message]:
        sid = self.config.session_id
        if message.round_name == "lead":
            return [ToyMessage(self.client_id, SERVER_ID, sid, "led")]
        assert self.vector is not None
        self._done = True
        return [ToyMessage(self.client_id, SERVER_ID, sid, "upload", self.vector.tobytes())]


class ToyServer:
    def __init__(self, config: ToyConfig) -> None:
        self.config = config
        self.total = np.zeros(config.vector_length, dtype=np.uint64)
        self.uploaded: set[int] = set()
        self.stage = "lead"
        self._result: AggregationResult | None = None

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> AggregationResult | None:
        return self._result

    def start(self) -> list[Message]:
        return [ToyMessage(SERVER_ID, 1, self.config.session_id, "lead")]

    def _uploads(self) -> list[Message]:
        self.stage = "upload"
        sid = self.config.session_id
        return [ToyMessage(SERVER_ID, c, sid, "upload") for c in range(1, self.config.n + 1)]

    def receive(self, message: Message) -> list[Message]:
        if self.stage == "lead":
            return self._uploads()
        assert isinstance(message, ToyMessage)
        dtype = dtype_for_bits(self.config.bits)
        self.total += np.frombuffer(message.payload, dtype=dtype).astype(np.uint64)
        self.uploaded.add(message.sender)
        if len(self.uploaded) == self.config.n:
            self._finish()
        return []

    def close_round(self) -> list[Message]:
        if self.stage == "lead":
            return self._uploads()
        self._finish()
        return []

    def _finish(self) -> None:
        total = (self.total % (1 << self.config.bits)).astype(dtype_for_bits(self.config.bits))
        self._result = AggregationResult(total, frozenset(self.uploaded))


class ToyOverFlower:
    name = NAME

    def check_settings(self, settings: SecAggSettings) -> None:
        pass

    def wants_identities(self, settings: SecAggSettings) -> bool:
        return False

    def check_identity(self, settings: SecAggSettings, **kwargs: Any) -> Identity:
        raise AssertionError("never asked")

    def plan(self, settings: SecAggSettings, *, session_id: bytes, nodes: Sequence[int],
             identities: Mapping[int, Identity], vector_length: int) -> SessionPlan:
        config = ToyConfig(session_id, len(nodes), settings.bits, vector_length)
        return SessionPlan(config=config, server=ToyServer(config), params=b"",
                           node_of_client={i + 1: n for i, n in enumerate(nodes)},
                           summary="toy, insecure")

    def identify(self, keys: Any, **kwargs: Any) -> bytes:
        raise AssertionError("never asked")

    def client_config(self, setup: Any, keys: Any, policy: Any) -> ToyConfig:
        return ToyConfig(setup.session_id, setup.n, setup.bits, setup.vector_length)

    def create_client(self, config: ToyConfig, client_id: int, vector: np.ndarray,
                      keys: Any) -> ClientProtocol:
        return ToyClient(config, client_id, vector)

    def dump_client(self, client: ClientProtocol) -> bytes:
        assert isinstance(client, ToyClient) and client.vector is not None
        return client.vector.tobytes()

    def load_client(self, config: ToyConfig, client_id: int, data: bytes,
                    keys: Any) -> ClientProtocol:
        return ToyClient(config, client_id, np.frombuffer(data, dtype_for_bits(config.bits)))

    def decode(self, data: bytes, sender: int) -> Message:
        return decode(data, sender)


def test_a_registered_protocol_runs_over_the_unchanged_transport() -> None:
    register_flower_protocol(ToyOverFlower(), replace=True)  # type: ignore[arg-type]
    grid = make_grid(range(4))
    settings = SecAggSettings(protocol=NAME, clip=4.0, max_weight=100.0,
                              secure_metrics=("train_loss",), stage_timeout=0.05,
                              poll_interval=0.005)
    report = run_secure_round(grid, train_messages(grid), settings)
    check_report(report, range(4), 1)
    assert report.summary == "toy, insecure" and report.stages == 2
    # Stage 0 reached the leader only (its setup, and it trained then); stage 1 everyone,
    # the three others with their setups.
    assert grid.batches == [[node_of(0)], [node_of(p) for p in range(4)]]
    assert all(grid.rounds_seen.get(node_of(p), 0) == (1 if p == 0 else 0) for p in range(4))
