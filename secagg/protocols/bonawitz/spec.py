"""Registry entries of the built-in protocols: Bonawitz et al. (CCS'17) and SecAgg+.

Role: neither side: how the registry builds configs, clients and servers of this family.

Both run the same :class:`~secagg.protocols.bonawitz.client.Client` and
:class:`~secagg.protocols.bonawitz.server.Server` on a :class:`ProtocolConfig`; they differ by the
graph: complete for ``bonawitz``, a sparse Harary graph whose ``(k, t)`` come from the
parameter finder for ``secagg+``.

Semi-honest mode by default. Active mode needs Ed25519 identities registered out of band;
:class:`ActiveSimulation` plays that registry in-process (every client's signing key beside
the public config, which alone goes to the server), as ``secagg simulate --active`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secagg.errors import ConfigurationError
from secagg.protocols.base import Message
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import (
    ACTIVE,
    SEMI_HONEST,
    Mode,
    ProtocolConfig,
    default_threshold,
)
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_NAMES, decode_message
from secagg.protocols.bonawitz.params import find_parameters
from secagg.protocols.bonawitz.server import Server
from secagg.protocols.registry import InputSource, ProtocolSpec, SimulationParams, client_ids_of
from secagg.signing import SigningKey

__all__ = ["ActiveSimulation", "bonawitz_spec", "graph_parameters", "secagg_plus_spec"]


def graph_parameters(
    params: SimulationParams, *, sparse: bool, mode: Mode = SEMI_HONEST
) -> tuple[int | None, int]:
    """The ``(degree, threshold)`` a simulation of ``params`` uses (degree ``None``: the
    complete graph), the single source of the defaults for ``secagg simulate`` and
    ``secagg cost``.

    Complete graph (``sparse`` false): the threshold defaults to the mode's minimum
    (:func:`~secagg.protocols.bonawitz.config.default_threshold`: ``floor(n/2) + 1`` semi-honest,
    ``floor(2n/3) + 1`` active). SecAgg+: ``k`` and ``t`` come from the parameter finder for
    ``params.corrupt_fraction`` and the larger of ``params.dropout_fraction`` and 5 % (its
    semi-malicious bounds in active mode); a degree given without a threshold gets
    ``default_threshold`` of that graph: a majority of the ``k + 1`` holders of a
    neighbourhood (``2t > k + 1``, what active SecAgg+ requires), or ``t > 2n/3`` for a
    complete graph in active mode. Raises ConfigurationError for fewer than two clients or
    parameters the finder refuses.
    """
    n = len(client_ids_of(params))
    degree, threshold = params.degree, params.threshold
    if not sparse:
        return None, threshold if threshold is not None else default_threshold(n, mode)
    if degree is not None and threshold is None:
        holders = min(degree, n - 1) + 1
        threshold = default_threshold(holders, mode, complete=holders == n)
    if degree is None or threshold is None:
        found = find_parameters(
            n,
            corrupt_fraction=params.corrupt_fraction,
            dropout_fraction=max(params.dropout_fraction, 0.05),
            semi_malicious=mode == ACTIVE,
        )
        degree = found.degree if degree is None else degree
        threshold = found.threshold if threshold is None else threshold
    return degree, threshold


def _config(
    params: SimulationParams,
    *,
    sparse: bool,
    mode: Mode = SEMI_HONEST,
    identities: Mapping[int, bytes] | None = None,
) -> ProtocolConfig:
    """A fresh-session config with :func:`graph_parameters`' degree and threshold."""
    degree, threshold = graph_parameters(params, sparse=sparse, mode=mode)
    return ProtocolConfig.create(
        client_ids_of(params),
        threshold=threshold,
        bits=params.bits,
        vector_length=params.dim,
        mode=mode,
        degree=degree,
        identities=identities,
    )


def _bonawitz_config(
    params: SimulationParams, *, active: bool = False
) -> ProtocolConfig | ActiveSimulation:
    if active:
        return ActiveSimulation.create(params, sparse=False)
    return _config(params, sparse=False)


def _secagg_plus_config(
    params: SimulationParams, *, active: bool = False
) -> ProtocolConfig | ActiveSimulation:
    if active:
        return ActiveSimulation.create(params, sparse=True)
    return _config(params, sparse=True)


@dataclass(frozen=True, repr=False)
class ActiveSimulation:
    """An active-mode config plus every client's Ed25519 signing key (in-process).

    A deployment registers identities out of band; this object plays that registry. The
    server is built from ``config`` alone and each client receives only its own key.
    Never give this object to a real server: it holds every client's signing key.
    """

    config: ProtocolConfig
    signing_keys: Mapping[int, SigningKey]

    def __repr__(self) -> str:
        return f"ActiveSimulation({self.config!r})"

    @classmethod
    def create(cls, params: SimulationParams, *, sparse: bool) -> ActiveSimulation:
        """Fresh identities (``SigningKey.generate``, a CSPRNG) for clients ``1..n`` and an
        active-mode config: SecAgg+ when ``sparse``, else the complete graph. Raises
        ConfigurationError as :meth:`ProtocolConfig.create` does (for example a threshold
        ``t <= 2n/3`` on the complete graph or ``2t <= k + 1`` on a sparse one)."""
        keys = {client_id: SigningKey.generate() for client_id in client_ids_of(params)}
        identities = {client_id: key.verify_key for client_id, key in keys.items()}
        return cls(_config(params, sparse=sparse, mode=ACTIVE, identities=identities), keys)


def _public(config: ProtocolConfig | ActiveSimulation) -> ProtocolConfig:
    return config.config if isinstance(config, ActiveSimulation) else config


def _make_client(
    config: ProtocolConfig | ActiveSimulation, client_id: int, source: InputSource
) -> Client:
    if isinstance(config, ActiveSimulation):
        if client_id not in config.signing_keys:
            raise ConfigurationError(f"client {client_id!r} is not in this session")
        return Client(config.config, client_id, source, config.signing_keys[client_id])
    return Client(config, client_id, source)


def _make_server(config: ProtocolConfig | ActiveSimulation) -> Server:
    return Server(_public(config))  # public config only


def _decode(data: bytes, sender: int) -> Message:
    return decode_message(data, sender=sender)


def _common(**kwargs: Any) -> ProtocolSpec:
    return ProtocolSpec(
        config_type=(ProtocolConfig, ActiveSimulation),
        round_names=ROUND_NAMES,
        make_server=_make_server,
        make_client=_make_client,
        client_ids=lambda config: _public(config).clients,
        vector_length=lambda config: _public(config).vector_length,
        bits=lambda config: _public(config).bits,
        decode=_decode,
        # "5 % dropout after ShareKeys": they never send their masked input, so the
        # server must regenerate their pairwise masks (the expensive case).
        dropout_round=ROUND_MASKED_INPUT,
        variants=("active",),  # make_config(params, active=True): an ActiveSimulation
        **kwargs,
    )


def bonawitz_spec() -> ProtocolSpec:
    """Plain SecAgg: every client neighbours every other."""
    from secagg.protocols.bonawitz.spec_options import describe, options, refusals

    return _common(
        name="bonawitz",
        make_config=_bonawitz_config,
        description="Bonawitz et al. CCS'17, complete graph",
        accepts=lambda config: _public(config).is_complete,
        cost_model="secagg.cost.bonawitz_spec:BONAWITZ",
        options=options(sparse=False),
        refusals=refusals(sparse=False),
        describe=lambda config: describe(config, sparse=False),
    )


def secagg_plus_spec() -> ProtocolSpec:
    """SecAgg+: sparse Harary graph (takes any ProtocolConfig or ActiveSimulation, complete
    ones included)."""
    from secagg.protocols.bonawitz.spec_options import describe, options, refusals

    return _common(
        name="secagg+",
        make_config=_secagg_plus_config,
        description="Bell et al. CCS'20, Harary graph, (k, t) from the parameter finder",
        cost_model="secagg.cost.bonawitz_spec:SECAGG_PLUS",
        options=options(sparse=True),
        refusals=refusals(sparse=True),
        describe=lambda config: describe(config, sparse=True),
    )
