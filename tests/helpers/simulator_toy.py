"""A toy (insecure) sum protocol that exercises the simulator's transport in tests.

Three rounds: ``hello`` (everyone says hi), ``upload`` (clients send their vector in clear),
``confirm`` (uploaders confirm; only confirmed uploaders are included). ``wrong_total``
makes the server add 1 to its result, to exercise the failure paths of the checks.
Not a helper of the library: it lives in tests/ on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import numpy as np

from secagg.errors import DecodeError, ProtocolAbort, UsageError
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.registry import InputSource, ProtocolSpec, SimulationParams

ROUNDS = ("hello", "upload", "confirm")


@dataclass(frozen=True)
class ToyConfig:
    clients: int
    dim: int
    bits: int
    threshold: int = 1
    wrong_total: bool = False


@dataclass(frozen=True)
class ToyMessage:
    sender: int
    recipient: int
    session_id: bytes
    round_name: str
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        return msgpack.packb(
            [1, self.sender, self.recipient, self.session_id, self.round_name, self.payload]
        )


def decode(data: bytes, transport_sender: int) -> Message:
    try:
        version, sender, recipient, session, round_name, payload = msgpack.unpackb(data)
    except Exception as exc:
        raise DecodeError("bad toy message") from exc
    if version != 1 or round_name not in ROUNDS or sender != transport_sender:
        raise DecodeError("bad toy message")
    return ToyMessage(sender, recipient, session, round_name, payload)


class ToyClient:
    def __init__(self, config: ToyConfig, client_id: int, source: InputSource) -> None:
        self.client_id = client_id
        self._config = config
        self._source = source
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def receive(self, message: Message) -> list[Message]:
        payload = b""
        if message.round_name == "upload":
            payload = self._source().astype(np.uint64).tobytes()
        if message.round_name == "confirm":
            self._done = True
        return [ToyMessage(self.client_id, SERVER_ID, b"toy", message.round_name, payload)]


class ToyServer:
    def __init__(self, config: ToyConfig) -> None:
        self._config = config
        self._round = -1
        self._live = set(range(1, config.clients + 1))
        self._answered: set[int] = set()
        self._uploads: dict[int, np.ndarray] = {}
        self._result: AggregationResult | None = None
        self._excluded: dict[int, str] = {}

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> AggregationResult | None:
        return self._result

    def _broadcast(self) -> list[Message]:
        self._round += 1
        self._answered = set()
        if self._round == len(ROUNDS):
            # Only uploaders that confirmed are included (the toy saw vectors in clear).
            mask = np.uint64((1 << self._config.bits) - 1)
            total = np.zeros(self._config.dim, dtype=np.uint64)
            for cid in self._live:
                total += self._uploads[cid]
            total &= mask
            if self._config.wrong_total:
                total = (total + np.uint64(1)) & mask
            self._result = AggregationResult(total, frozenset(self._live), dict(self._excluded))
            return []
        name = ROUNDS[self._round]
        return [ToyMessage(SERVER_ID, c, b"toy", name) for c in sorted(self._live)]

    def start(self) -> list[Message]:
        if self._round != -1:
            raise UsageError("started twice")
        return self._broadcast()

    def receive(self, message: Message) -> list[Message]:
        if message.round_name != ROUNDS[self._round] or message.sender not in self._live:
            raise DecodeError("out of round", party=message.sender)
        self._answered.add(message.sender)
        if message.round_name == "upload":
            self._uploads[message.sender] = np.frombuffer(message.payload, dtype=np.uint64)
        if self._answered == self._live:
            return self._broadcast()
        return []

    def close_round(self) -> list[Message]:
        for cid in self._live - self._answered:
            self._excluded[cid] = f"dropped in {ROUNDS[self._round]}"
        self._live = set(self._answered)
        if len(self._live) < self._config.threshold:
            raise ProtocolAbort("too few clients")
        return self._broadcast()


def _spec(name: str) -> ProtocolSpec:
    return ProtocolSpec(
        name=name,
        config_type=ToyConfig,
        round_names=ROUNDS,
        make_config=lambda p: ToyConfig(
            p.clients, p.dim, p.bits, p.threshold or 1, wrong_total=name.endswith("broken")
        ),
        make_server=ToyServer,
        make_client=ToyClient,
        client_ids=lambda c: range(1, c.clients + 1),
        vector_length=lambda c: c.dim,
        bits=lambda c: c.bits,
        decode=decode,
        dropout_round="upload",
        description="toy protocol for tests",
    )


def toy_spec() -> ProtocolSpec:
    return _spec("toy")


def broken_toy_spec() -> ProtocolSpec:
    return _spec("toy-broken")


__all__ = ["ROUNDS", "SimulationParams", "ToyConfig", "broken_toy_spec", "toy_spec"]
