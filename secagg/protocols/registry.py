"""The protocols a transport (the simulator, the CLI) can run, by name.

A :class:`ProtocolSpec` tells a transport everything protocol-specific: how to build the
server and the clients from a configuration, how to build a configuration from the CLI's
generic parameters (and the variants it takes, e.g. an active mode), which of those it takes
and their ranges (its ``options``, :mod:`secagg.protocols.options`), what a configuration
actually uses (``describe``), which optional dependencies it needs (``extras``), how its
messages decode, the names of its rounds, and where the layers above find its cost model. Adding a
protocol (threshold Paillier, CKKS...) is one spec plus one line in :data:`_BUILTINS` (or a
call to :func:`register_protocol`): the simulator, the cost models' front door, the
benchmark suite and the CLI need no change.

The layers above are named by strings only (``cost_model`` is ``"module:attribute"``,
resolved by :mod:`secagg.cost`), so this module, like every protocol, never imports them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secagg.errors import ConfigurationError
from secagg.extras import require
from secagg.protocols.base import ClientProtocol, Message, ServerProtocol
from secagg.protocols.options import (
    COMMON_OPTIONS,
    Option,
    Spelling,
    check_value,
    refusal,
)

__all__ = [
    "GENERIC_PARAMETERS",
    "InputSource",
    "ProtocolSpec",
    "SimulationParams",
    "client_ids_of",
    "get_protocol",
    "protocol_for_config",
    "protocol_names",
    "protocols_taking",
    "register_protocol",
    "simulation_params",
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


GENERIC_PARAMETERS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SimulationParams))
"""The option names that are :class:`SimulationParams` fields (every other option is a
variant: a keyword of ``make_config``, or a cost-model figure)."""


def simulation_params(values: Mapping[str, Any]) -> SimulationParams:
    """The :class:`SimulationParams` of ``values`` (option name -> value): its generic
    options, where given and not None (the others keep their defaults)."""
    return SimulationParams(
        **{k: v for k, v in values.items() if k in GENERIC_PARAMETERS and v is not None}
    )


def _legacy_options(variants: Sequence[str]) -> dict[str, Option]:
    """The table of a spec that declares none: every generic parameter with its widest
    range, its variants unchecked (``make_config`` checks them)."""
    table = dict(COMMON_OPTIONS)
    table["threshold"] = Option("threshold t", int, 1)
    table["degree"] = Option("degree", int, 1)
    table["corrupt_fraction"] = Option("fraction of corrupt clients", float, 0.0, 1.0)
    for name in variants:
        table[name] = Option(name, object)
    return table


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

    ``options`` (option name -> :class:`~secagg.protocols.options.Option`, in checking
    order) are the generic parameters and variants the protocol takes, with their ranges;
    None (a spec written before options existed) takes every generic parameter with its
    widest range and its variants unchecked. ``refusals`` (option name -> reason) says why
    it does not take an option. ``describe(config)`` returns every parameter ``config``
    actually uses (JSON-ready; a ``"notes"`` list says what a user may not expect, e.g. a
    degree that makes the complete graph). ``extras`` maps each optional module a session
    needs to the extra that installs it (:mod:`secagg.extras`).
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
    options: Mapping[str, Option] | None = field(default=None, hash=False, compare=False)
    refusals: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    describe: Callable[[Any], dict[str, Any]] | None = None
    extras: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.options is not None:
            loose = [
                name
                for name, option in self.options.items()
                if name not in GENERIC_PARAMETERS
                and not option.cost_only
                and name not in self.variants
            ]
            if loose:
                raise ConfigurationError(
                    f"protocol {self.name!r}: options {loose} are neither generic parameters "
                    "nor variants"
                )

    @property
    def option_table(self) -> Mapping[str, Option]:
        """The options this protocol takes (``options``, or the legacy table)."""
        return self.options if self.options is not None else _legacy_options(self.variants)

    def takes(self, name: str) -> bool:
        """True when the protocol takes option ``name``."""
        return name in self.option_table

    def context(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every option this protocol takes -> its value: from ``values`` where given (not
        None), else the option's default."""
        given = {k: v for k, v in values.items() if v is not None}
        return {name: given.get(name, opt.default) for name, opt in self.option_table.items()}

    def check_options(self, values: Mapping[str, Any], *, spell: Spelling | None = None) -> None:
        """Refuse what the protocol does not take. ``values`` maps option names to what the
        caller set (None: not set); ``spell`` names an option in messages (default: its name).

        Raises OptionError (a ConfigurationError), one line that names the option, the value
        and its range, or why the protocol does not take it and which protocols do.
        """
        say: Spelling = spell if spell is not None else str
        table = self.option_table
        given = {k: v for k, v in values.items() if v is not None}
        for name in given:
            if name not in table:
                raise refusal(
                    self.name, name, self.refusals.get(name), protocols_taking(name), say
                )
        context = self.context(given)
        for name, option in table.items():
            if name in given:
                check_value(self.name, name, option, given[name], context, say)

    def configure(self, values: Mapping[str, Any], *, spell: Spelling | None = None) -> Any:
        """Check ``values`` (:meth:`check_options`), then build the configuration:
        ``make_config(params, **variants)`` with the generic options as params and the
        other ones (given or defaulted, not None; cost-only ones left out) as variants.

        Raises OptionError / ConfigurationError, or MissingExtraError (:meth:`require_extras`).
        """
        self.check_options(values, spell=spell)
        self.require_extras()
        context = self.context(values)
        table = self.option_table
        variants = {
            name: value
            for name, value in context.items()
            if name not in GENERIC_PARAMETERS and value is not None and not table[name].cost_only
        }
        return self.make_config(simulation_params(context), **variants)

    def describe_config(self, config: Any) -> dict[str, Any]:
        """``describe(config)``, or (a spec without one) its clients, length and bits."""
        if self.describe is not None:
            return self.describe(config)
        return {
            "clients": len(self.client_ids(config)),
            "dim": self.vector_length(config),
            "bits": self.bits(config),
        }

    def require_extras(self) -> None:
        """Import every optional module a session needs. Raises MissingExtraError (with an
        install command) for the first one missing."""
        for module, extra in self.extras.items():
            require(module, extra, feature=f"protocol {self.name}")


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


def protocols_taking(option: str) -> tuple[str, ...]:
    """Names of the registered protocols that take ``option``: a variant of their
    ``make_config``, or an entry of their option table (loads every spec: for error
    messages and help, not for a hot path)."""
    return tuple(
        name
        for name in protocol_names()
        if option in get_protocol(name).variants or get_protocol(name).takes(option)
    )
