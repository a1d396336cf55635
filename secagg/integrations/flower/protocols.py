"""Which secure-aggregation protocols run over Flower, and the hook to add one.

Theory of operation. The Flower transport (:mod:`~secagg.integrations.flower.server`,
:mod:`~secagg.integrations.flower.client_mod`) is protocol-agnostic: it moves the protocol
messages of a stage, carries the client's state between ClientApp processes and closes
stages at their deadlines. What it cannot know is protocol-specific and lives in a
:class:`FlowerProtocol`:

* server side: whether nodes must first say which key they hold (active mode's identities,
  a decryption committee's shares), how to check such an answer, and how to plan a session
  (its public config, its server, the parameters every client receives);
* client side: how to answer an identification, rebuild the public config from a setup
  while checking it against what the node trusts (its policy, its registry, its committee
  key), create the protocol client, and store / restore it as bytes.

The protocol logic itself comes from the protocol registry
(:func:`secagg.protocols.registry.get_protocol`): message decoding, round names, the
server and client classes. Built in: ``"bonawitz"`` and ``"secagg+"``
(:mod:`~secagg.integrations.flower.bonawitz`), ``"threshold-paillier"``
(:mod:`~secagg.integrations.flower.threshold_he`) and ``"threshold-ckks"``
(:mod:`~secagg.integrations.flower.threshold_ckks`). Another protocol is one class
implementing :class:`FlowerProtocol` plus :func:`register_flower_protocol`;
``docs/flower_migration.md`` says what it must check.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from secagg.errors import ConfigurationError
from secagg.protocols.base import ClientProtocol, Message, ServerProtocol

if TYPE_CHECKING:
    from secagg.integrations.flower.node_keys import NodeKeys
    from secagg.integrations.flower.settings import ClientPolicy, SecAggSettings
    from secagg.integrations.flower.wire import SessionSetup

__all__ = [
    "FlowerProtocol",
    "Identity",
    "SessionPlan",
    "flower_protocol",
    "flower_protocol_names",
    "register_flower_protocol",
]


@dataclass(frozen=True)
class Identity:
    """What a node proved it holds (server side): ``value`` is the protocol's (a verify
    key, a share index), ``label`` a short public description for reports and logs."""

    value: object
    label: str


@dataclass(frozen=True)
class SessionPlan:
    """The server's decisions for one session.

    ``config`` is the protocol's public config and ``server`` its server; ``params`` the
    protocol parameters every client receives in its setup. ``node_of_client`` maps the
    protocol's client ids to Flower node ids; ``phantoms`` are client ids without a node
    (e.g. a committee seat whose holder was not sampled): the transport never contacts
    them, so they drop out at once. ``refused`` maps a node left out of the session to
    the reason; ``summary`` describes the session for the log (no secret).
    ``max_reply_bytes`` is the largest reply a node of this session may send when the
    protocol's messages outgrow the transport's allowance (a packed vector plus keys and
    shares, e.g. ciphertexts); 0 keeps the transport's.
    """

    config: Any
    server: ServerProtocol
    params: bytes
    node_of_client: Mapping[int, int]
    phantoms: frozenset[int] = frozenset()
    refused: Mapping[int, str] = field(default_factory=dict)
    summary: str = ""
    max_reply_bytes: int = 0

    @property
    def n(self) -> int:
        """Every client id of the session, phantoms included."""
        return len(self.node_of_client) + len(self.phantoms)


class FlowerProtocol(Protocol):
    """How one protocol runs over Flower (see the module docstring)."""

    @property
    def name(self) -> str:
        """The name settings and setups use (``SecAggSettings.protocol``)."""
        ...

    def check_settings(self, settings: SecAggSettings) -> None:
        """Raise ConfigurationError for settings this protocol cannot run."""
        ...

    def wants_identities(self, settings: SecAggSettings) -> bool:
        """Whether nodes must be identified before a session."""
        ...

    def check_identity(self, settings: SecAggSettings, *, node_id: int, session_id: bytes,
                       challenge: bytes, answer: bytes) -> Identity:
        """The identity a node's answer proves; ProtocolViolation (a subclass) if it proves
        nothing acceptable (unregistered key, bad proof, another committee's key)."""
        ...

    def plan(self, settings: SecAggSettings, *, session_id: bytes, nodes: Sequence[int],
             identities: Mapping[int, Identity], vector_length: int) -> SessionPlan:
        """The session over ``nodes`` (sorted node ids; their identities when wanted).
        Raises ConfigurationError when the settings do not fit this many nodes."""
        ...

    def identify(self, keys: NodeKeys, *, node_id: int, session_id: bytes,
                 challenge: bytes) -> bytes:
        """The node's answer to an identification request. ConfigurationError when the
        node lacks what the protocol needs (no signing key, no committee key)."""
        ...

    def client_config(self, setup: SessionSetup, keys: NodeKeys, policy: ClientPolicy) -> Any:
        """The public config the setup describes, checked against the node's trust.
        DecodeError for malformed parameters, MaliciousRequestError / ConfigurationError
        for a setup the node refuses."""
        ...

    def create_client(self, config: Any, client_id: int, vector: np.ndarray,
                      keys: NodeKeys) -> ClientProtocol:
        """A new protocol client holding the encoded ``vector``."""
        ...

    def dump_client(self, client: ClientProtocol) -> bytes:
        """The client's state as bytes (may be secret: it stays on the node)."""
        ...

    def load_client(self, config: Any, client_id: int, data: bytes,
                    keys: NodeKeys) -> ClientProtocol:
        """The client :meth:`dump_client` stored; DecodeError if ``data`` is not one."""
        ...

    def decode(self, data: bytes, sender: int) -> Message:
        """Decode one protocol message from ``sender`` (0: the server); DecodeError."""
        ...


# name -> "module:factory" (imported on first use, like the protocol registry).
_BUILTINS: dict[str, str] = {
    "secagg+": "secagg.integrations.flower.bonawitz:secagg_plus",
    "bonawitz": "secagg.integrations.flower.bonawitz:bonawitz",
    "threshold-paillier": "secagg.integrations.flower.threshold_he:threshold_paillier",
    "threshold-ckks": "secagg.integrations.flower.threshold_ckks:threshold_ckks",
}
_REGISTRY: dict[str, FlowerProtocol] = {}


def register_flower_protocol(protocol: FlowerProtocol, *, replace: bool = False) -> None:
    """Make ``protocol`` available over Flower under ``protocol.name``.

    Raises ConfigurationError if the name is taken and ``replace`` is false.
    """
    name = protocol.name
    if not replace and (name in _REGISTRY or name in _BUILTINS):
        raise ConfigurationError(f"Flower protocol {name!r} is already registered")
    _REGISTRY[name] = protocol


def flower_protocol_names() -> tuple[str, ...]:
    """Every protocol name that runs over Flower (built-in ones first)."""
    return tuple(dict.fromkeys([*_BUILTINS, *_REGISTRY]))


def flower_protocol(name: str) -> FlowerProtocol:
    """The Flower protocol registered as ``name``; ConfigurationError if none is."""
    found = _REGISTRY.get(name) if isinstance(name, str) else None
    if found is not None:
        return found
    target = _BUILTINS.get(name) if isinstance(name, str) else None
    if target is None:
        raise ConfigurationError(
            f"no protocol {name!r} over Flower; known: {', '.join(flower_protocol_names())}")
    module, _, attr = target.partition(":")
    factory: Callable[[], FlowerProtocol] = getattr(importlib.import_module(module), attr)
    protocol = factory()
    _REGISTRY[name] = protocol
    return protocol
