"""Registry entry of the threshold-CKKS protocol: ``threshold-ckks``.

Nothing is dealt: the committee generates the key inside the session, so the public
:class:`~secagg.protocols.threshold_ckks.config.ThresholdCkksConfig` is all a transport
needs (the server and every client are built from it alone).

CLI parameters: ``--threshold`` is the committee's t (default: a majority of it) and
``--degree`` the committee size (default: min(5, n), the first clients); no variant
(``--active``, ``--decryption``, ``--key-bits``...) applies. The ranges, and why the other
flags are refused, are the table of :mod:`~secagg.protocols.threshold_ckks.spec_options`.
"""

from __future__ import annotations

from secagg.errors import ConfigurationError
from secagg.protocols.base import Message
from secagg.protocols.registry import InputSource, ProtocolSpec, SimulationParams, client_ids_of
from secagg.protocols.threshold_ckks.client import ThresholdCkksClient
from secagg.protocols.threshold_ckks.config import DEFAULT_COMMITTEE, ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import (
    ROUND_ENCRYPTED_INPUT,
    THRESHOLD_CKKS_ROUNDS,
    decode_threshold_ckks_message,
)
from secagg.protocols.threshold_ckks.server import ThresholdCkksServer
from secagg.protocols.threshold_ckks.spec_options import REFUSALS, describe, options

__all__ = ["make_config", "threshold_ckks_spec"]


def make_config(params: SimulationParams) -> ThresholdCkksConfig:
    """Clients ``1..params.clients``, the committee their first ``params.degree`` (None:
    min(5, n)), t ``params.threshold`` (default a majority of the committee), the scheme's
    parameters chosen for them. Raises ConfigurationError for fewer than two clients, a
    degree outside 1..n (never silently another committee) or anything the config refuses."""
    clients = client_ids_of(params)
    size = params.degree
    if size is None:
        size = min(DEFAULT_COMMITTEE, len(clients))
    elif not 1 <= size <= len(clients):
        raise ConfigurationError(f"the committee size must be in 1..{len(clients)}")
    committee = clients[:size]
    return ThresholdCkksConfig.create(
        clients,
        bits=params.bits,
        vector_length=params.dim,
        committee=committee,
        threshold=params.threshold,
    )


def _make_client(
    config: ThresholdCkksConfig, client_id: int, source: InputSource
) -> ThresholdCkksClient:
    return ThresholdCkksClient(config, client_id, source)


def _decode(data: bytes, sender: int) -> Message:
    return decode_threshold_ckks_message(data, sender=sender)


def threshold_ckks_spec() -> ProtocolSpec:
    """Threshold CKKS: a committee-generated RLWE key, t-of-n decryption, no dealer."""
    return ProtocolSpec(
        name="threshold-ckks",
        config_type=ThresholdCkksConfig,
        round_names=THRESHOLD_CKKS_ROUNDS,
        make_config=make_config,
        make_server=ThresholdCkksServer,
        make_client=_make_client,
        client_ids=lambda config: config.clients,
        vector_length=lambda config: config.vector_length,
        bits=lambda config: config.bits,
        decode=_decode,
        dropout_round=ROUND_ENCRYPTED_INPUT,
        description=(
            "threshold CKKS (multiparty RLWE): committee-generated key, no dealer, any t of "
            "n members decrypt"
        ),
        cost_model="secagg.cost.threshold_ckks_spec:THRESHOLD_CKKS",
        options=options(),
        refusals=REFUSALS,
        describe=describe,
    )
