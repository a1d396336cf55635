"""Shared vocabulary of the sans-I/O aggregation protocols.

Theory of operation (as h11 does for HTTP): a protocol party is an object that consumes
messages and returns the messages it wants sent. It never touches a socket, a clock or a
sleep; a transport (the simulator, a test, a real network layer) moves the messages and
tells the server when a round's deadline passed (:meth:`ServerProtocol.close_round`).

Two rules every protocol in :mod:`secagg.protocols` keeps:

1. Party ids are ints: the server is :data:`SERVER_ID` (0), clients are 1, 2, ... (a client
   id is also its Shamir x coordinate, hence never 0).
2. Every message carries ``sender``, ``recipient`` and ``session_id`` and serializes itself
   with ``to_bytes()`` to a versioned msgpack encoding (never pickle); the bytes a cost
   accounting counts are exactly these encodings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "SERVER_ID",
    "AggregationResult",
    "ClientProtocol",
    "Message",
    "ServerProtocol",
]

SERVER_ID = 0
"""The server's party id; clients are numbered from 1."""

@runtime_checkable
class Message(Protocol):
    """A protocol message: a frozen dataclass that encodes itself.

    ``sender`` and ``recipient`` are party ids (0 = server). ``round_name`` is the protocol
    round the message belongs to (its family's round names, e.g.
    :data:`secagg.protocols.bonawitz.messages.ROUND_NAMES`).
    """

    @property
    def sender(self) -> int: ...

    @property
    def recipient(self) -> int: ...

    @property
    def session_id(self) -> bytes: ...

    @property
    def round_name(self) -> str: ...

    def to_bytes(self) -> bytes:
        """The versioned wire encoding (msgpack, no pickle)."""
        ...


class ClientProtocol(Protocol):
    """A client's state machine: consumes server messages, returns replies."""

    @property
    def client_id(self) -> int: ...

    def receive(self, message: Message) -> list[Message]:
        """Process one message from the server; return the replies to send to it.

        Raises ProtocolViolation (or a subclass) when the message is malformed, out of round
        or malicious; the client's state is then unchanged or terminally aborted.
        """
        ...

    @property
    def done(self) -> bool: ...


class ServerProtocol(Protocol):
    """The server's state machine: collects client messages round by round."""

    def start(self) -> list[Message]:
        """The first messages to send to the clients."""
        ...

    def receive(self, message: Message) -> list[Message]:
        """Record one client message; return the next round's messages once every client
        still alive has answered (else an empty list)."""
        ...

    def close_round(self) -> list[Message]:
        """The transport's deadline passed: go on with the clients that answered.

        Raises ProtocolAbort when fewer than the threshold remain.
        """
        ...

    @property
    def done(self) -> bool: ...

    @property
    def result(self) -> AggregationResult | None: ...


@dataclass(frozen=True)
class AggregationResult:
    """The outcome of one aggregation.

    ``total`` is the sum over exactly the clients in ``included``, in Z_(2^bits) (the
    storage dtype of :func:`secagg.ring.dtype_for_bits`). ``excluded`` maps every other
    configured client to the reason it is not in the sum (dropped in a round, bad message...).
    ``faults`` maps a party to misbehaviour that was contained without removing it from the
    sum (an off-polynomial share it revealed, a replayed message, a bad signature...).
    """

    total: np.ndarray
    included: frozenset[int]
    excluded: Mapping[int, str] = field(default_factory=dict)
    faults: Mapping[int, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"AggregationResult(length={self.total.shape[0] if self.total.ndim else 0}, "
            f"included={sorted(self.included)}, excluded={dict(sorted(self.excluded.items()))}, "
            f"faults={len(self.faults)})"
        )
