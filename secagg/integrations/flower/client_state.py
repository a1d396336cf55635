"""Creating, storing and restoring the protocol client between ClientApp processes.

Flower runs each message in a new ClientApp process, so the mod keeps the protocol
client's state as bytes in ``context.state`` (client side only). A :class:`ClientBackend`
says how: the default one uses secagg's Bonawitz/SecAgg+ client and its public, versioned
state export (:meth:`Client.to_state_bytes`, msgpack, no pickle); tests and other
protocols can plug in their own.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from secagg.errors import UsageError
from secagg.protocols.base import ClientProtocol
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig

__all__ = ["BonawitzBackend", "ClientBackend", "default_backend"]


class ClientBackend(Protocol):
    """How the mod makes a protocol client and carries it across processes."""

    def create(self, config: ProtocolConfig, client_id: int,
               vector: np.ndarray) -> ClientProtocol:
        """A new client of ``config`` holding the encoded input ``vector``."""
        ...

    def dump(self, client: ClientProtocol) -> bytes:
        """The client's complete state as bytes (secret: stays on the client's node)."""
        ...

    def load(self, config: ProtocolConfig, client_id: int, data: bytes) -> ClientProtocol:
        """The client :meth:`dump` stored; DecodeError/UsageError if ``data`` is not one."""
        ...


class BonawitzBackend:
    """secagg's Bonawitz / SecAgg+ client (:class:`secagg.protocols.bonawitz.client.Client`)."""

    def create(self, config: ProtocolConfig, client_id: int,
               vector: np.ndarray) -> ClientProtocol:
        from secagg.protocols.bonawitz.client import Client

        return Client(config, client_id, vector)

    def dump(self, client: ClientProtocol) -> bytes:
        """The client's state bytes (secret). Raises UsageError for another client type,
        an active-mode client (its identity is not carried across Flower processes) or a
        lazy input."""
        from secagg.protocols.bonawitz.client import Client

        if not isinstance(client, Client):
            raise UsageError("BonawitzBackend stores only secagg.protocols.bonawitz.client.Client")
        if client.config.mode == ACTIVE:
            raise UsageError("active-mode clients cannot be carried across Flower processes")
        return client.to_state_bytes()

    def load(self, config: ProtocolConfig, client_id: int, data: bytes) -> ClientProtocol:
        """The client :meth:`dump` stored; DecodeError if ``data`` is not its state."""
        from secagg.protocols.bonawitz.client import Client

        return Client.from_state_bytes(config, client_id, data)


def default_backend() -> ClientBackend:
    """The backend the mod uses unless told otherwise."""
    return BonawitzBackend()
