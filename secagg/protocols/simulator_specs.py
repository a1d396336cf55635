"""Registry entries of the built-in protocols: Bonawitz et al. (CCS'17) and SecAgg+.

Both run the same :class:`~secagg.protocols.client.Client` and
:class:`~secagg.protocols.server.Server` on a :class:`ProtocolConfig`; they differ by the
graph: complete for ``bonawitz``, a sparse Harary graph whose ``(k, t)`` come from the
parameter finder for ``secagg+``. Semi-honest mode (active mode needs identities registered
out of band, which a simulation from generic parameters does not have).
"""

from __future__ import annotations

from typing import Any

from secagg.protocols.base import ROUND_MASKED_INPUT, ROUND_NAMES, Message
from secagg.protocols.client import Client
from secagg.protocols.config import SEMI_HONEST, ProtocolConfig
from secagg.protocols.messages import decode_message
from secagg.protocols.params import find_parameters
from secagg.protocols.registry import InputSource, ProtocolSpec, SimulationParams, _client_ids
from secagg.protocols.server import Server

__all__ = ["bonawitz_spec", "secagg_plus_spec"]


def _bonawitz_config(params: SimulationParams) -> ProtocolConfig:
    """Complete graph; default threshold the semi-honest minimum ``floor(n/2) + 1``."""
    ids = _client_ids(params)
    threshold = params.threshold if params.threshold is not None else len(ids) // 2 + 1
    return ProtocolConfig.create(
        ids, threshold=threshold, bits=params.bits, vector_length=params.dim, mode=SEMI_HONEST
    )


def _secagg_plus_config(params: SimulationParams) -> ProtocolConfig:
    """Harary graph; ``k`` and ``t`` from the parameter finder unless given explicitly.

    The finder is asked for the larger of the requested dropout fraction and 5 %.
    """
    ids = _client_ids(params)
    degree, threshold = params.degree, params.threshold
    if degree is None or threshold is None:
        found = find_parameters(
            len(ids),
            corrupt_fraction=params.corrupt_fraction,
            dropout_fraction=max(params.dropout_fraction, 0.05),
        )
        degree = found.degree if degree is None else degree
        threshold = found.threshold if threshold is None else threshold
    return ProtocolConfig.create(
        ids,
        threshold=threshold,
        bits=params.bits,
        vector_length=params.dim,
        mode=SEMI_HONEST,
        degree=degree,
    )


def _make_client(config: ProtocolConfig, client_id: int, source: InputSource) -> Client:
    return Client(config, client_id, source)


def _make_server(config: ProtocolConfig) -> Server:
    return Server(config)


def _decode(data: bytes, sender: int) -> Message:
    return decode_message(data, sender=sender)


def _common(**kwargs: Any) -> ProtocolSpec:
    return ProtocolSpec(
        config_type=ProtocolConfig,
        round_names=ROUND_NAMES,
        make_server=_make_server,
        make_client=_make_client,
        client_ids=lambda config: config.clients,
        vector_length=lambda config: config.vector_length,
        bits=lambda config: config.bits,
        decode=_decode,
        # "5 % dropout after ShareKeys": they never send their masked input, so the
        # server must regenerate their pairwise masks (the expensive case).
        dropout_round=ROUND_MASKED_INPUT,
        **kwargs,
    )


def bonawitz_spec() -> ProtocolSpec:
    """Plain SecAgg: every client neighbours every other."""
    return _common(
        name="bonawitz",
        make_config=_bonawitz_config,
        description="Bonawitz et al. CCS'17, complete graph",
        accepts=lambda config: config.is_complete,
    )


def secagg_plus_spec() -> ProtocolSpec:
    """SecAgg+: sparse Harary graph (takes any ProtocolConfig, complete ones included)."""
    return _common(
        name="secagg+",
        make_config=_secagg_plus_config,
        description="Bell et al. CCS'20, Harary graph, (k, t) from the parameter finder",
    )
