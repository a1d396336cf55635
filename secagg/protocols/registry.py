"""The protocols a transport (the simulator, the CLI) can run, by name.

A :class:`ProtocolSpec` tells a transport everything protocol-specific: how to build the
server and the clients from a configuration, how to build a configuration from the CLI's
generic parameters (and the variants it takes, e.g. an active mode), how its messages
decode, the names of its rounds, and where the layers above find its cost model. Adding a
protocol (threshold Paillier, CKKS...) is one spec plus one line in :data:`_BUILTINS` (or a
call to :func:`register_protocol`): the simulator, the cost models' front door, the
benchmark suite and the CLI need no change.

The layers above are named by strings only (``cost_model`` is ``"module:attribute"``,
resolved by :mod:`secagg.cost`), so this module, like every protocol, never imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.errors import ConfigurationError
from secagg.protocols.base import ClientProtocol, Message, ServerProtocol

__all__ = [
    "InputSource",
    "ProtocolSpec",
    "SimulationParams",
    "client_ids_of",
    "get_protocol",
    "protocol_for_config",
    "protocol_names",
    "protocols_taking",
    "register_protocol",
]

InputSource = Callable[[], np.ndarray]
"""What a client calls, once, when it needs its input vector (the simulator's lazy feed)."""


@dataclass(frozen=True)
class SimulationParams:
    """The protocol-independent knobs of ``secagg simulate``.

    ``threshold`` and ``degree`` are ``None`` to let the protocol choose (e.g. from the
    SecAgg+ parameter finder); ``corrupt_fraction`` and ``dropout_fraction`` feed that choice.
    """

    clients: int
    dim: int
    bits: int
    threshold: int | None = None
    degree: int | None = None
    dropout_fraction: float = 0.05
    corrupt_fraction: float = 0.05


def client_ids_of(params: SimulationParams) -> list[int]:
    """Client ids ``1..params.clients`` (every spec numbers its clients this way).
    Raises ConfigurationError for fewer than two clients."""
    if params.clients < 2:
        raise ConfigurationError("an aggregation needs at least two clients")
    return list(range(1, params.clients + 1))


@dataclass(frozen=True)
class ProtocolSpec:
    """How a transport drives one protocol.

    ``dropout_round`` is the round a bare dropout rate applies to (the CLI's default).
    ``decode(data, sender)`` decodes bytes whose sender the transport knows (0 = server).
    ``config_type`` is a class or a tuple of classes (as ``isinstance`` takes); ``accepts``
    tells two protocols sharing one config class apart (None: any instance).

    ``make_client(config, client_id, input_source)`` must call ``input_source`` at most once,
    when the client needs its vector, so that a transport never holds n vectors at once.

    ``make_config(params, **variant)`` builds a configuration from the generic parameters;
    ``variants`` names the keyword options it takes beyond them (for example ``"active"``:
    the active-adversary mode, ``"decryption"``: a committee decryption mode,
    ``"safe_primes"``: fixed key primes for benchmarks). ``make_config`` checks their values
    and raises ConfigurationError for one it refuses; a transport passes only the variants a
    spec names (:func:`protocols_taking` says which protocols take one).

    ``cost_model`` is ``"module:attribute"`` of the protocol's cost model in the cost layer
    (a :class:`secagg.cost.model.CostModel`), or None when it has none; it is a string so
    that the protocols never import the layers above them (:mod:`secagg.cost` resolves it).
    """

    name: str
    config_type: type[Any] | tuple[type[Any], ...]
    round_names: tuple[str, ...]
    make_config: Callable[..., Any]
    make_server: Callable[[Any], ServerProtocol]
    make_client: Callable[[Any, int, InputSource], ClientProtocol]
    client_ids: Callable[[Any], Sequence[int]]
    vector_length: Callable[[Any], int]
    bits: Callable[[Any], int]
    decode: Callable[[bytes, int], Message]
    dropout_round: str
    description: str = ""
    accepts: Callable[[Any], bool] | None = None
    variants: tuple[str, ...] = ()
    cost_model: str | None = None


# name -> "module:function" returning a ProtocolSpec; imported on first use so that a
# protocol's heavy dependencies load only when it is asked for.
_BUILTINS: dict[str, str] = {
    "bonawitz": "secagg.protocols.bonawitz.spec:bonawitz_spec",
    "secagg+": "secagg.protocols.bonawitz.spec:secagg_plus_spec",
    "threshold-paillier": "secagg.protocols.threshold_he.spec:threshold_paillier_spec",
    "ckks": "secagg.protocols.threshold_he.spec:ckks_spec",
    "threshold-ckks": "secagg.protocols.threshold_ckks.spec:threshold_ckks_spec",
}

_REGISTRY: dict[str, ProtocolSpec] = {}


def register_protocol(spec: ProtocolSpec, *, replace: bool = False) -> None:
    """Make ``spec`` available under ``spec.name``.

    Raises ConfigurationError if the name is taken and ``replace`` is false.
    """
    if not replace and (spec.name in _REGISTRY or spec.name in _BUILTINS):
        raise ConfigurationError(f"protocol {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def protocol_names() -> tuple[str, ...]:
    """Every protocol name the registry knows (built-in ones first)."""
    return tuple(dict.fromkeys([*_BUILTINS, *_REGISTRY]))


def get_protocol(name: str) -> ProtocolSpec:
    """The spec registered under ``name``; ConfigurationError if there is none."""
    spec = _REGISTRY.get(name)
    if spec is not None:
        return spec
    target = _BUILTINS.get(name)
    if target is None:
        raise ConfigurationError(
            f"unknown protocol {name!r}; known: {', '.join(protocol_names())}"
        )
    module_name, _, attr = target.partition(":")
    factory: Callable[[], ProtocolSpec] = getattr(importlib.import_module(module_name), attr)
    spec = factory()
    _REGISTRY[name] = spec
    return spec


def protocol_for_config(config: object) -> ProtocolSpec:
    """The spec whose configuration type ``config`` is an instance of.

    When several match (two names sharing a config class), the first registered wins;
    ConfigurationError if none does.
    """
    for name in protocol_names():
        spec = get_protocol(name)
        if isinstance(config, spec.config_type) and (
            spec.accepts is None or spec.accepts(config)
        ):
            return spec
    raise ConfigurationError(f"no registered protocol takes a {type(config).__name__}")


def protocols_taking(variant: str) -> tuple[str, ...]:
    """Names of the registered protocols whose ``make_config`` takes ``variant`` (loads
    every spec: for error messages and help, not for a hot path)."""
    return tuple(name for name in protocol_names() if variant in get_protocol(name).variants)
