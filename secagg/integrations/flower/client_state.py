"""Creating, storing and restoring the protocol client between ClientApp processes.

Flower runs each message in a new ClientApp process, so the mod keeps the protocol
client's state as bytes in ``context.state`` (client side only). A :class:`ClientBackend`
says how: the default one uses secagg's Bonawitz/SecAgg+ client and its public, versioned
state export (:meth:`Client.to_state_bytes`, msgpack, no pickle); tests can plug in their
own. (Other protocols plug in through :mod:`secagg.integrations.flower.protocols`.)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from secagg.errors import UsageError
from secagg.protocols.base import ClientProtocol
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.signing import SigningKey

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
    """secagg's Bonawitz / SecAgg+ client (:class:`secagg.protocols.bonawitz.client.Client`).

    ``identity`` is the node's Ed25519 signing key for active mode: it is not in the
    state bytes (the node reloads it from its key file) and is given back on load.
    """

    def __init__(self, identity: SigningKey | None = None) -> None:
        self._identity = identity

    def __repr__(self) -> str:
        return f"BonawitzBackend(identity={self._identity!r})"

    def create(self, config: ProtocolConfig, client_id: int,
               vector: np.ndarray) -> ClientProtocol:
        """A new client; ConfigurationError as the Client's constructor (e.g. active mode
        without this node's registered identity)."""
        from secagg.protocols.bonawitz.client import Client

        return Client(config, client_id, vector, self._identity if config.mode == ACTIVE
                      else None)

    def dump(self, client: ClientProtocol) -> bytes:
        """The client's state bytes (secret). Raises UsageError for another client type or
        a lazy input."""
        from secagg.protocols.bonawitz.client import Client

        if not isinstance(client, Client):
            raise UsageError("BonawitzBackend stores only secagg.protocols.bonawitz.client.Client")
        return client.to_state_bytes()

    def load(self, config: ProtocolConfig, client_id: int, data: bytes) -> ClientProtocol:
        """The client :meth:`dump` stored; DecodeError if ``data`` is not its state,
        ConfigurationError for an active-mode config without the node's identity."""
        from secagg.protocols.bonawitz.client import Client

        return Client.from_state_bytes(
            config, client_id, data,
            identity=self._identity if config.mode == ACTIVE else None)


def default_backend() -> ClientBackend:
    """The backend the mod uses unless told otherwise."""
    return BonawitzBackend()
