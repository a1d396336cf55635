"""What the server side of the Flower integration is configured with, and what clients accept.

:class:`SecAggSettings` is the ServerApp's choice of protocol parameters (bit width,
clipping, weights, threshold, SecAgg+ degree, deadlines). :class:`ClientPolicy` is the
client's own floor: a client never trusts the server's choice blindly, it refuses a setup
below its policy (too few clients, an oversized vector, an unsafe threshold is already
refused by :class:`secagg.protocols.bonawitz.config.ProtocolConfig`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.config import MODES, SEMI_HONEST, Mode, default_threshold

__all__ = ["ClientPolicy", "SecAggSettings", "default_threshold"]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be finite and > 0, got {value}")


@dataclass(frozen=True)
class SecAggSettings:
    """Server-side parameters of secure aggregation over Flower.

    * ``bits``: the modulus 2^bits of the secure sum (8..64).
    * ``clip``: every model value and secure metric is clipped to [-clip, clip].
    * ``max_weight``: bound on one client's weight (its ``weighted_by_key`` metric, e.g. the
      number of examples); a client whose weight exceeds it refuses to take part.
    * ``threshold``: Shamir threshold; ``None`` picks :func:`default_threshold` for the
      neighbourhood size.
    * ``degree``: SecAgg+ neighbourhood size k; ``None`` (or >= n-1) is the complete graph.
    * ``min_clients``: fewer sampled nodes than this and the round is not run.
    * ``train_timeout``: deadline (s) of the first stage, which includes local training;
      ``stage_timeout``: deadline of every later stage. A node that misses a deadline is
      dropped from that aggregation (the protocol goes on without it).
    * ``weighted_by_key``: the reply metric used as the client's weight (FedAvg's key).
    * ``secure_metrics``: reply metrics aggregated securely as weighted means; every other
      metric of a client's reply is discarded, never sent in clear.
    * ``weighted``: False gives every client weight 1 (a plain mean).
    * ``poll_interval``: seconds between two pulls of replies from the SuperLink.

    Raises ConfigurationError on any invalid value.
    """

    bits: int = 32
    clip: float = 8.0
    max_weight: float = 1000.0
    threshold: int | None = None
    degree: int | None = None
    mode: Mode = SEMI_HONEST
    min_clients: int = 3
    train_timeout: float = 600.0
    stage_timeout: float = 60.0
    weighted_by_key: str = "num-examples"
    secure_metrics: tuple[str, ...] = ()
    weighted: bool = True
    poll_interval: float = 0.25

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise ConfigurationError("bits must be an int")
        if not 8 <= self.bits <= 64:
            raise ConfigurationError(f"bits must be in [8, 64], got {self.bits}")
        for name in ("clip", "max_weight", "train_timeout", "stage_timeout", "poll_interval"):
            _positive(name, getattr(self, name))
        for name in ("threshold", "degree"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigurationError(f"{name} must be None or a positive int")
        if self.mode not in MODES:
            raise ConfigurationError(f"mode must be one of {MODES}")
        if self.mode != SEMI_HONEST:
            # Active mode needs Ed25519 identities registered out of band for every node;
            # the Flower transport has no such registry yet.
            raise ConfigurationError("the Flower integration runs the semi-honest mode only")
        if isinstance(self.min_clients, bool) or not isinstance(self.min_clients, int) \
                or self.min_clients < 2:
            raise ConfigurationError("min_clients must be an int >= 2")
        if not isinstance(self.weighted_by_key, str) or not self.weighted_by_key:
            raise ConfigurationError("weighted_by_key must be a non-empty string")
        metrics = tuple(self.secure_metrics)
        if any(not isinstance(m, str) or not m for m in metrics) or len(set(metrics)) != len(
            metrics
        ):
            raise ConfigurationError("secure_metrics must be distinct non-empty strings")
        if self.weighted_by_key in metrics:
            raise ConfigurationError("the weight key is aggregated anyway: not a secure metric")
        object.__setattr__(self, "secure_metrics", metrics)


@dataclass(frozen=True)
class ClientPolicy:
    """What a client accepts from a server's setup, whatever the server asks.

    * ``min_clients``: refuse aggregations over fewer clients (a sum of two reveals a lot).
    * ``max_vector_length``: refuse oversized vectors (memory exhaustion).
    * ``min_bits`` / ``max_bits``: accepted modulus widths.
    * ``require_secure``: refuse a training request that does not run secure aggregation
      (a server cannot downgrade a client to sending its update in clear).
    * ``max_payload_bytes``: refuse larger protocol payloads from the server.

    Raises ConfigurationError on invalid values.
    """

    min_clients: int = 3
    max_vector_length: int = 2**27
    min_bits: int = 8
    max_bits: int = 64
    require_secure: bool = True
    max_payload_bytes: int = 2**30

    def __post_init__(self) -> None:
        for name in ("min_clients", "max_vector_length", "min_bits", "max_bits",
                     "max_payload_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive int")
        if self.min_clients < 2:
            raise ConfigurationError("min_clients must be >= 2")
        if not 1 <= self.min_bits <= self.max_bits <= 64:
            raise ConfigurationError("need 1 <= min_bits <= max_bits <= 64")
