"""A hand driver for threshold-CKKS sessions: every message travels as bytes, clients drop
before answering a given round, and a hook may tamper with what reaches the server."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from secagg.errors import ProtocolAbort
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.threshold_ckks import (
    ThresholdCkksClient,
    ThresholdCkksConfig,
    ThresholdCkksServer,
    decode_threshold_ckks_message,
)

# (sender, decoded message) -> the messages actually delivered to the server.
Tamper = Callable[[int, Message], list[Message]]


@dataclass
class Run:
    config: ThresholdCkksConfig
    inputs: dict[int, np.ndarray]
    server: ThresholdCkksServer = field(init=False)
    clients: dict[int, ThresholdCkksClient] = field(init=False)
    result: AggregationResult | None = None
    abort: ProtocolAbort | None = None
    traffic: dict[str, list[int]] = field(default_factory=dict)  # round -> [up, down]

    def __post_init__(self) -> None:
        self.server = ThresholdCkksServer(self.config)
        self.clients = {
            c: ThresholdCkksClient(self.config, c, self.inputs[c]) for c in self.config.clients
        }

    def expected(self, included: frozenset[int]) -> np.ndarray:
        total = np.zeros(self.config.vector_length, dtype=np.uint64)
        for c in included:
            total += self.inputs[c].astype(np.uint64)
        if self.config.bits < 64:
            total &= np.uint64((1 << self.config.bits) - 1)
        return total

    @property
    def faults(self) -> Mapping[int, str]:
        assert self.result is not None
        return self.result.faults


def make_inputs(config: ThresholdCkksConfig, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)  # not-secret: test data
    high = 1 << config.bits if config.bits < 64 else 2**63
    return {c: rng.integers(0, high, config.vector_length, dtype=np.uint64) for c in config.clients}


def run(
    config: ThresholdCkksConfig,
    inputs: dict[int, np.ndarray] | None = None,
    *,
    drop: Mapping[str, set[int]] | None = None,
    tamper: Tamper | None = None,
    client_hook: Callable[[int, Message], Message] | None = None,
) -> Run:
    """One session to its end: ``drop[round]`` clients vanish when a message of that round
    reaches them; ``tamper`` rewrites what a client sends the server; ``client_hook``
    rewrites what the server sends a client (a malicious server)."""
    session = Run(config, inputs if inputs is not None else make_inputs(config))
    drop = drop or {}
    gone: set[int] = set()

    def count(round_name: str, side: int, size: int) -> None:
        session.traffic.setdefault(round_name, [0, 0])[side] += size

    def to_server(sender: int, message: Message) -> list[Message]:
        out: list[Message] = []
        for item in tamper(sender, message) if tamper else [message]:
            data = item.to_bytes()
            count(message.round_name, 0, len(data))
            decoded = decode_threshold_ckks_message(data, sender=sender)
            out.extend(session.server.receive(decoded))
        return out

    try:
        outgoing = session.server.start()
        while True:
            while outgoing:
                replies: list[Message] = []
                for message in outgoing:
                    client = message.recipient
                    if client in drop.get(message.round_name, set()):
                        gone.add(client)
                    if client in gone:
                        continue
                    if client_hook is not None:
                        message = client_hook(client, message)
                    data = message.to_bytes()
                    count(message.round_name, 1, len(data))
                    decoded = decode_threshold_ckks_message(data, sender=SERVER_ID)
                    for reply in session.clients[client].receive(decoded):
                        replies.extend(to_server(client, reply))
                outgoing = replies
            if session.server.done:
                break
            outgoing = session.server.close_round()
    except ProtocolAbort as exc:
        session.abort = exc
    session.result = session.server.result
    return session
