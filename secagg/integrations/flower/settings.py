"""What the server side of the Flower integration is configured with, and what clients accept.

:class:`SecAggSettings` is the ServerApp's choice of protocol and parameters (bit width,
clipping, weights, threshold, SecAgg+ degree, deadlines). :class:`ClientPolicy` is the
client's own floor: a client never trusts the server's choice blindly, it refuses a setup
below its policy (too few clients, an oversized vector, an unsafe threshold is already
refused by the protocol's own config).

``degree`` and ``threshold`` take fractions as Flower's ``SecAggPlusWorkflow`` takes
``num_shares`` and ``reconstruction_threshold``: a float in (0, 1] is resolved per round,
from the number of sampled nodes (see :func:`resolve_degree`, :func:`resolve_threshold`).

``privacy`` (a :class:`~secagg.dp.DistributedDP` or :class:`~secagg.dp.Compression`, also
from a run config's ``dp-*`` keys: :func:`privacy_from_run_config`) makes every client
encode its update with :mod:`secagg.dp` (docs/privacy.md); :meth:`SecAggSettings.with_privacy`
builds settings that satisfy its rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from secagg.dp import Compression, DistributedDP
from secagg.errors import ConfigurationError
from secagg.integrations.flower.identity import IdentityRegistry
from secagg.integrations.privacy import Privacy, check_masking_protocol, check_privacy
from secagg.protocols.bonawitz.config import ACTIVE, MODES, SEMI_HONEST, Mode, default_threshold

__all__ = [
    "DEADLINES",
    "DP_RUN_CONFIG_KEYS",
    "ClientPolicy",
    "SecAggSettings",
    "default_threshold",
    "privacy_from_run_config",
    "resolve_degree",
    "resolve_threshold",
]

Deadline = Literal["fixed", "progress"]
DEADLINES: tuple[Deadline, ...] = ("fixed", "progress")


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be finite and > 0, got {value}")


def _count_or_fraction(name: str, value: object, lowest: int) -> None:
    """``value`` is None, an int >= ``lowest`` or a float in (0, 1]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be None, an int or a fraction in (0, 1]")
    if isinstance(value, int):
        if value < lowest:
            raise ConfigurationError(f"{name} as an int must be >= {lowest}, got {value}")
    elif not (math.isfinite(value) and 0 < value <= 1):
        raise ConfigurationError(f"{name} as a float is a fraction in (0, 1], got {value}")


def resolve_degree(degree: int | float | None, n: int) -> int | None:
    """The SecAgg+ degree (neighbours per node) for ``n`` sampled nodes; None: the complete
    graph. ``None`` stays None (the caller picks a default).

    An int is the degree itself (``>= n - 1`` is the complete graph). A float ``f`` is, as
    Flower's ``num_shares``, the fraction of the sampled nodes that hold a node's shares
    (itself and its neighbours): ``round(f * n)`` holders, raised to an odd number of holders
    (an even degree: a Harary graph of odd degree does not exist on an odd number of
    nodes), and the complete graph when that leaves fewer than 3 holders or all n.
    """
    if degree is None:
        return None
    if isinstance(degree, float):
        holders = round(degree * n)
        if holders < n and holders % 2 == 0:
            holders += 1
        if holders <= 2 or holders >= n:
            return None
        return holders - 1
    return None if degree >= n - 1 else degree


def resolve_threshold(threshold: int | float | None, holders: int, mode: Mode, *,
                      complete: bool) -> int:
    """The Shamir threshold over ``holders`` share holders (a neighbourhood and its centre).

    ``None`` is :func:`default_threshold`; an int is taken as is; a float ``f`` is, as
    Flower's ``reconstruction_threshold``, the fraction of the holders needed:
    ``ceil(f * holders)`` (rounded up: never below the fraction asked), at least 2. The
    protocol's config then refuses a threshold below its safety bound.
    """
    if threshold is None:
        return default_threshold(holders, mode, complete=complete)
    if isinstance(threshold, float):
        return max(2, math.ceil(threshold * holders - 1e-9))
    return threshold


@dataclass(frozen=True)
class SecAggSettings:
    """Server-side parameters of secure aggregation over Flower.

    * ``protocol``: the Flower protocol that runs (:func:`secagg.integrations.flower.
      protocols.flower_protocol_names`): ``"secagg+"`` (default: a SecAgg+ graph from
      the parameter finder), ``"bonawitz"`` (the complete graph), ``"threshold-paillier"``
      (its public key in ``protocol_options["public_key"]``)...
    * ``bits``: the modulus 2^bits of the secure sum (8..64).
    * ``clip``: every model value is clipped to [-clip, clip];
      ``metric_clip``: the bound of the secure metrics (None: ``clip``). A metric larger
      than ``clip`` needs its own bound, or it is clipped (the report says how much weight
      was clipped, and a warning is logged).
    * ``max_weight``: bound on one client's weight (its ``weighted_by_key`` metric, e.g. the
      number of examples); a client whose weight exceeds it refuses to take part.
    * ``threshold``: Shamir threshold (Bonawitz / SecAgg+): None picks the default for the
      graph, an int is used as is, a float is a fraction of the share holders.
    * ``degree``: SecAgg+ neighbourhood size: None lets the protocol choose (``secagg+``:
      the parameter finder, for ``corrupt_fraction`` and ``dropout_fraction``;
      ``bonawitz``: the complete graph), an int is the degree, a float a fraction of the
      sampled nodes (as Flower's ``num_shares``).
    * ``mode``: ``"semi-honest"`` or ``"active"`` (malicious server: needs ``identities``,
      the registry of the nodes' Ed25519 keys, :mod:`secagg.integrations.flower.identity`).
    * ``min_clients``: fewer sampled (and identified) nodes than this and the round is not run.
    * ``train_timeout``: deadline (s) of the first stage, which includes local training;
      ``stage_timeout``: deadline of every later stage. None: no deadline, wait for every
      reply (as Flower's ``timeout=None``; a node that fails still answers through the
      engine's error reply). ``deadline="fixed"`` counts from when a stage's messages are
      pushed; ``"progress"`` from the latest reply of the stage, so an engine that runs the
      ClientApps one after another (Flower's simulation engine on a small machine) never
      times out a node that is only queued. A node that misses a deadline is dropped from
      that aggregation (the protocol goes on without it).
    * ``weighted_by_key``: the reply metric used as the client's weight (FedAvg's key).
    * ``secure_metrics``: reply metrics aggregated securely as weighted means; every other
      metric of a client's reply is discarded, never sent in clear.
    * ``weighted``: False gives every client weight 1 (a plain mean).
    * ``report_clipping``: every client adds two indicators to its vector (it clipped an
      array value / a metric) so that the report says what share of the weight was
      clipped (only that sum is revealed, as the sum of everything else).
    * ``poll_interval``: seconds between two pulls of replies from the SuperLink.
    * ``protocol_options``: what a protocol needs beyond these (e.g. a public key).
    * ``forward_logs``: make secagg's log lines visible in Flower's console, and so in
      ``flwr run --stream`` (:func:`secagg.integrations.flower.logs.forward_to_flower`).
    * ``privacy``: distributed DP (:class:`~secagg.dp.DistributedDP`) or compression
      (:class:`~secagg.dp.Compression`): each client sends :func:`secagg.dp.encode` of its
      update (trained arrays minus the global ones, L2-clipped to ``privacy.clip``), the
      server decodes the mean update and adds it to the global arrays, and every report
      carries the epsilon spent. Rules (ConfigurationError naming them): a masking protocol
      (``bonawitz``, ``secagg+``), ``bits == privacy.bits``, uniform weights
      (``weighted=False``), no ``secure_metrics`` and no ``report_clipping`` (their values
      would be outside the clipped, noised vector). ``clip``, ``metric_clip`` and
      ``max_weight`` do not apply. :meth:`with_privacy` sets all of that.

    Raises ConfigurationError on any invalid value.
    """

    protocol: str = "secagg+"
    bits: int = 32
    clip: float = 8.0
    metric_clip: float | None = None
    max_weight: float = 1000.0
    threshold: int | float | None = None
    degree: int | float | None = None
    mode: Mode = SEMI_HONEST
    identities: IdentityRegistry | None = None
    corrupt_fraction: float = 0.05
    dropout_fraction: float = 0.05
    min_clients: int = 3
    train_timeout: float | None = 600.0
    stage_timeout: float | None = 60.0
    deadline: Deadline = "fixed"
    weighted_by_key: str = "num-examples"
    secure_metrics: tuple[str, ...] = ()
    weighted: bool = True
    report_clipping: bool = True
    poll_interval: float = 0.25
    protocol_options: Mapping[str, Any] = field(default_factory=dict)
    forward_logs: bool = True
    privacy: Privacy | None = None

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise ConfigurationError("bits must be an int")
        if not 8 <= self.bits <= 64:
            raise ConfigurationError(f"bits must be in [8, 64], got {self.bits}")
        for name in ("clip", "max_weight", "poll_interval"):
            _positive(name, getattr(self, name))
        for name in ("train_timeout", "stage_timeout", "metric_clip"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.deadline not in DEADLINES:
            raise ConfigurationError(f"deadline must be one of {DEADLINES}")
        _count_or_fraction("threshold", self.threshold, 1)
        _count_or_fraction("degree", self.degree, 1)
        for name in ("corrupt_fraction", "dropout_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 <= value < 1
            ):
                raise ConfigurationError(f"{name} must be in [0, 1)")
        if self.mode not in MODES:
            raise ConfigurationError(f"mode must be one of {MODES}")
        if self.mode == ACTIVE and not isinstance(self.identities, IdentityRegistry):
            raise ConfigurationError(
                "active mode needs identities: the IdentityRegistry of the nodes' keys")
        if self.identities is not None and not isinstance(self.identities, IdentityRegistry):
            raise ConfigurationError("identities must be an IdentityRegistry")
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
        for name in ("weighted", "report_clipping", "forward_logs"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be a bool")
        if not isinstance(self.protocol_options, Mapping):
            raise ConfigurationError("protocol_options must be a mapping")
        object.__setattr__(self, "protocol_options", dict(self.protocol_options))
        if self.privacy is not None:
            self._check_privacy()
        # The protocol checks its own settings (imported here: the adapters import this).
        from secagg.integrations.flower.protocols import flower_protocol

        flower_protocol(self.protocol).check_settings(self)

    def _check_privacy(self) -> None:
        privacy = check_privacy(self.privacy)
        check_masking_protocol(self.protocol)
        if self.bits != privacy.bits:
            raise ConfigurationError(
                f"bits={self.bits} but privacy.bits={privacy.bits}: the rule is that the secure "
                "sum runs at the encodings' width (use SecAggSettings.with_privacy)")
        if self.weighted:
            raise ConfigurationError(
                "privacy needs uniform weights: set weighted=False (the L2 clip bounds each "
                "client's whole contribution; a weight would multiply it past the clip)")
        if self.secure_metrics or self.report_clipping:
            raise ConfigurationError(
                "privacy covers the model update only: set secure_metrics=() and "
                "report_clipping=False (their values would be summed without noise)")

    @classmethod
    def with_privacy(cls, privacy: Privacy, **changes: Any) -> SecAggSettings:
        """Settings for ``privacy``: ``bits`` from it, ``weighted=False``,
        ``report_clipping=False``, ``secure_metrics=()``, the rest defaults or ``changes``.
        Raises ConfigurationError as the settings would."""
        fields: dict[str, Any] = dict(bits=check_privacy(privacy).bits, weighted=False,
                                      report_clipping=False, secure_metrics=())
        fields.update(changes)
        return cls(privacy=privacy, **fields)

    @classmethod
    def from_secaggplus(
        cls,
        num_shares: int | float,
        reconstruction_threshold: int | float,
        *,
        max_weight: float = 1000.0,
        clipping_range: float = 8.0,
        quantization_range: int = 4194304,
        modulus_range: int = 2**32,
        timeout: float | None = None,
        **changes: Any,
    ) -> SecAggSettings:
        """The settings that match Flower's ``SecAggPlusWorkflow`` arguments, one for one.

        ``num_shares`` (a node and its neighbours: ``k + 1`` holders, or a fraction of the
        sampled nodes; 1 means all) becomes ``degree``; ``reconstruction_threshold`` (an
        int, or a fraction of the shares; 1 means all) becomes ``threshold`` (a fraction is
        rounded up, never below what was asked); ``clipping_range`` is ``clip``;
        ``modulus_range`` (a power of two) gives ``bits``; ``timeout`` is both deadlines
        (None: none, as Flower's). ``quantization_range`` is accepted and not needed: the
        encoding takes the finest resolution that cannot overflow. ``changes`` sets any
        other field. Raises ConfigurationError as Flower's checks would, and for invalid
        settings.
        """
        if isinstance(num_shares, bool) or not isinstance(num_shares, (int, float)):
            raise ConfigurationError("num_shares must be an int or a float")
        if isinstance(num_shares, int) and num_shares != 1 and num_shares <= 2:
            raise ConfigurationError("num_shares as an int must be greater than 2")
        degree: int | float = 1.0 if num_shares == 1 else (
            num_shares - 1 if isinstance(num_shares, int) else num_shares)
        if isinstance(reconstruction_threshold, bool) or not isinstance(
            reconstruction_threshold, (int, float)
        ):
            raise ConfigurationError("reconstruction_threshold must be an int or a float")
        threshold: int | float = 1.0 if reconstruction_threshold == 1 \
            else reconstruction_threshold
        if isinstance(threshold, int) and isinstance(num_shares, int) and threshold >= \
                num_shares:
            raise ConfigurationError("reconstruction_threshold must be less than num_shares")
        if isinstance(quantization_range, bool) or not isinstance(quantization_range, int) \
                or quantization_range <= 0:
            raise ConfigurationError("quantization_range must be a positive int")
        if isinstance(modulus_range, bool) or not isinstance(modulus_range, int) or \
                modulus_range < 2 or modulus_range & (modulus_range - 1):
            raise ConfigurationError("modulus_range must be a power of two")
        fields: dict[str, Any] = dict(
            degree=degree, threshold=threshold, max_weight=max_weight, clip=clipping_range,
            bits=modulus_range.bit_length() - 1, train_timeout=timeout, stage_timeout=timeout,
        )
        fields.update(changes)
        return cls(**fields)

    @property
    def metric_scale(self) -> float:
        """What metrics are multiplied by before encoding, ``clip / metric_clip`` (1 when
        ``metric_clip`` is None): a metric clipped to ``clip`` after scaling is clipped to
        ``metric_clip`` before."""
        if self.metric_clip is None:
            return 1.0
        return self.clip / self.metric_clip


@dataclass(frozen=True)
class ClientPolicy:
    """What a client accepts from a server's setup, whatever the server asks.

    * ``min_clients``: refuse aggregations over fewer clients (a sum of two reveals a lot).
    * ``max_vector_length``: refuse oversized vectors (memory exhaustion).
    * ``min_bits`` / ``max_bits``: accepted modulus widths.
    * ``require_secure``: refuse a training request that does not run secure aggregation
      (a server cannot downgrade a client to sending its update in clear).
    * ``max_payload_bytes``: refuse larger protocol payloads from the server.
    * ``require_active``: refuse a Bonawitz / SecAgg+ session that is not in active mode
      (a server cannot downgrade the client to the semi-honest protocol).
    * ``protocols``: the protocol names this client takes part in (None: any registered).
    * ``require_privacy``: refuse a session whose setup carries no distributed-DP plan (a
      server cannot make the client send an un-noised update).
    * ``max_epsilon``: refuse a DP plan that spends more than this over its rounds; the
      client recomputes the epsilon from the plan's noise, scale and clip
      (:func:`secagg.integrations.privacy.verify_plan`), so a server cannot understate it.

    Raises ConfigurationError on invalid values.
    """

    min_clients: int = 3
    max_vector_length: int = 2**27
    min_bits: int = 8
    max_bits: int = 64
    require_secure: bool = True
    max_payload_bytes: int = 2**30
    require_active: bool = False
    protocols: tuple[str, ...] | None = None
    require_privacy: bool = False
    max_epsilon: float | None = None

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
        for name in ("require_active", "require_privacy"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be a bool")
        if self.max_epsilon is not None:
            _positive("max_epsilon", self.max_epsilon)
        if self.protocols is not None:
            names = tuple(self.protocols)
            if not names or any(not isinstance(p, str) or not p for p in names):
                raise ConfigurationError("protocols must be None or non-empty names")
            object.__setattr__(self, "protocols", names)


DP_RUN_CONFIG_KEYS: dict[str, str] = {
    "dp-epsilon": "epsilon", "dp-delta": "delta", "dp-rounds": "rounds",
    "dp-sampling-rate": "sampling_rate", "dp-bits": "bits", "dp-clip": "clip",
    "dp-mechanism": "mechanism", "dp-expected-clients": "expected_clients",
    "dp-min-clients": "min_clients", "dp-wrap-probability": "wrap_probability",
    "dp-rotation": "rotation",
}
"""Run config key (``pyproject.toml``'s ``[tool.flwr.app.config]``) -> config field."""

_COMPRESSION_FIELDS = frozenset(
    {"bits", "clip", "expected_clients", "rotation", "wrap_probability"})


def privacy_from_run_config(run_config: Mapping[str, object]) -> Privacy | None:
    """The privacy config a Flower run config's ``dp-*`` keys describe, or None without any.

    With ``dp-epsilon``: a :class:`~secagg.dp.DistributedDP` (``dp-delta``, ``dp-rounds``,
    ``dp-bits`` and ``dp-clip`` required; ``dp-sampling-rate``, ``dp-mechanism``,
    ``dp-expected-clients``, ``dp-min-clients``, ``dp-wrap-probability``, ``dp-rotation``
    optional). Without it: a :class:`~secagg.dp.Compression` (``dp-bits``, ``dp-clip``;
    optional ``dp-expected-clients``, ``dp-wrap-probability``, ``dp-rotation``). TOML
    values keep their types (``dp-bits = 16``, ``dp-delta = 1e-5``). Raises
    ConfigurationError naming the key for an unknown ``dp-*`` key, a missing one, a key
    that needs ``dp-epsilon``, or a bad value (the config's own rules).
    """
    given = {k: v for k, v in run_config.items() if isinstance(k, str) and k.startswith("dp-")}
    if not given:
        return None
    unknown = sorted(set(given) - set(DP_RUN_CONFIG_KEYS))
    if unknown:
        raise ConfigurationError(f"unknown run config keys {unknown}; known: "
                                 f"{sorted(DP_RUN_CONFIG_KEYS)}")
    values = {DP_RUN_CONFIG_KEYS[k]: v for k, v in given.items()}
    noisy = "epsilon" in values
    required = ("epsilon", "delta", "rounds", "bits", "clip") if noisy else ("bits", "clip")
    missing = [f"dp-{name.replace('_', '-')}" for name in required if name not in values]
    if missing:
        raise ConfigurationError(f"run config: {missing} required with "
                                 f"{'dp-epsilon' if noisy else 'dp-* compression'}")
    if not noisy:
        extra = sorted(f"dp-{n.replace('_', '-')}" for n in set(values) - _COMPRESSION_FIELDS)
        if extra:
            raise ConfigurationError(f"run config: {extra} need dp-epsilon (without it the "
                                     "dp-* keys describe compression only)")
    try:
        if noisy:
            values.setdefault("sampling_rate", 1.0)
            return DistributedDP(**values)  # type: ignore[arg-type]
        return Compression(**values)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        raise ConfigurationError(f"run config dp-* keys: {exc}") from None
