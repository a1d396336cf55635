"""Aggregation backends for :class:`~secagg.integrations.torch.fedavg.SecureFedAvg`.

A backend turns bounded float updates and their weights into a weighted mean. Two kinds:

* :class:`SimulatedProtocolBackend` runs any protocol of :mod:`secagg.protocols.registry`
  (``"bonawitz"``, ``"secagg+"``, and whatever else registers a ``ProtocolSpec``, e.g. the
  threshold Paillier and CKKS protocols) in-process through
  :func:`secagg.sim.simulator.simulate`. Each update is fixed-point encoded with
  :meth:`FixedPoint.encode_weighted`, so the weight travels *inside* the masked vector as
  one extra element: the server learns only the sum of the weights. When every weight is a
  whole number and ``clients * max_weight`` fits the signed range of Z_(2^bits), that
  element carries the weight itself (an exact integer lane), so the total comes back exact.
* :class:`PlainBackend` is the insecure baseline: float64 FedAvg with the same clipping,
  the same weights and the same dropout rule, and no quantization. Comparing the two
  isolates the cost of the secure path.

Adding a protocol needs no change here: register its ``ProtocolSpec`` (one line in the
registry's built-ins), and ``SecureFedAvg(model, protocol="<its name>")`` runs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeAlias

import numpy as np

from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_NAMES
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.sim.ledger import CostLedger
from secagg.sim.simulator import DropoutSchedule, simulate

__all__ = ["AggregateOutcome", "AggregationBackend", "ClientId", "Dropouts", "ModularSum",
           "PlainBackend", "SimulatedProtocolBackend"]

ClientId: TypeAlias = int | str
"""A caller's client id: an int or a str (the protocols number their clients themselves)."""

Dropouts: TypeAlias = Mapping[str, Collection[ClientId]]
"""Round name -> the clients that vanish before sending in that round (caller's ids)."""


@dataclass(frozen=True)
class AggregateOutcome:
    """One aggregation, in the caller's client ids.

    ``mean`` is the weighted mean of the included updates (float64), ``total_weight`` the
    sum of their weights (an ``int``, exact, when every weight was a whole number carried in
    the exact lane or summed in the clear): the only per-round facts the server learns
    besides membership. ``scale`` is the fixed-point scale of the encoding (``None`` when
    there is none): each included client's encoding of ``weight * x`` is off by less than
    ``1 / scale``, so the mean is off by less than ``len(included) / (scale * total_weight)``
    per element. ``costs`` holds the transport's per-round, per-party ledger (``None`` for
    the plain baseline); ``bytes_up``/``bytes_down`` are the totals over all parties.
    """

    mean: np.ndarray
    total_weight: int | float
    included: frozenset[ClientId]
    excluded: Mapping[ClientId, str]
    seconds: float
    bytes_up: int
    bytes_down: int
    costs: CostLedger | None = field(default=None, repr=False)
    scale: float | None = None


@dataclass(frozen=True)
class ModularSum:
    """One protocol session's result in the caller's ids: ``total`` is the sum modulo
    ``2^bits`` of exactly the ``included`` clients' vectors."""

    total: np.ndarray
    included: frozenset[ClientId]
    excluded: Mapping[ClientId, str]
    bytes_up: int
    bytes_down: int
    costs: CostLedger = field(repr=False)


class AggregationBackend(Protocol):
    """What :class:`SecureFedAvg` needs from a backend."""

    @property
    def name(self) -> str: ...

    def aggregate(self, updates: Mapping[ClientId, np.ndarray],
                  weights: Mapping[ClientId, int | float], *, clip: float, max_weight: float,
                  dropouts: Dropouts | None = None) -> AggregateOutcome:
        """The weighted mean of the included updates (each with ``max |x| <= clip`` and
        ``0 < weight <= max_weight``), who was included, and what it cost."""
        ...


def _reason(reason: object) -> str:
    """A protocol's exclusion reason as text (an enum's value, or the text itself)."""
    value = getattr(reason, "value", reason)
    return value if isinstance(value, str) else str(value)


def _require_two(included: Collection[ClientId]) -> None:
    # A sum of one input is that input: aggregating fewer than two clients is never safe.
    if len(included) < 2:
        raise ProtocolAbort(f"only {len(included)} client(s) left: an aggregate needs two")


@dataclass(frozen=True)
class PlainBackend:
    """Insecure float64 FedAvg: the server sees every update (the baseline).

    Dropouts follow the Bonawitz rounds: a client that vanishes in a round up to and
    including ``masked_input`` never sent its update and is left out; one that vanishes
    later already sent it and is included, exactly as the secure protocols do.
    ``bytes_up`` counts what float32 uploads of the updates would weigh.
    """

    name: str = "plain"

    def aggregate(self, updates: Mapping[ClientId, np.ndarray],
                  weights: Mapping[ClientId, int | float], *, clip: float, max_weight: float,
                  dropouts: Dropouts | None = None) -> AggregateOutcome:
        """Weighted mean of the updates of the clients that sent theirs (``clip`` and
        ``max_weight`` are the caller's bounds; float64 needs no headroom for them). The
        total weight is an exact ``int`` when every weight is an int.

        Raises:
            ConfigurationError: a dropout round that is not a Bonawitz round.
            ProtocolAbort: fewer than two clients sent an update.
        """
        started = time.perf_counter()
        excluded: dict[ClientId, str] = {}
        last_input_round = ROUND_NAMES.index(ROUND_MASKED_INPUT)
        for round_name, ids in (dropouts or {}).items():
            if round_name not in ROUND_NAMES:
                raise ConfigurationError(f"unknown round {round_name!r}; rounds: {ROUND_NAMES}")
            if ROUND_NAMES.index(round_name) <= last_input_round:
                excluded.update({cid: f"dropped in {round_name}" for cid in ids if cid in updates})
        order = [cid for cid in updates if cid not in excluded]
        included = frozenset(order)
        _require_two(included)
        length = len(next(iter(updates.values())))
        total = np.zeros(length, dtype=np.float64)
        total_weight: int | float = 0
        for cid in order:
            total += weights[cid] * updates[cid]
            total_weight += weights[cid]
        total /= total_weight
        return AggregateOutcome(mean=total, total_weight=total_weight, included=included,
                                excluded=excluded, seconds=time.perf_counter() - started,
                                bytes_up=4 * length * len(included), bytes_down=0)


@dataclass(frozen=True)
class SimulatedProtocolBackend:
    """A registered secure-aggregation protocol, run in-process by the simulator.

    ``threshold`` and ``degree`` (``None``: the protocol's own choice, e.g. the SecAgg+
    parameter finder) and the expected ``dropout_fraction`` / ``corrupt_fraction`` go to
    the protocol's ``make_config``. ``bits`` is the modulus 2^bits of the masked sum.
    """

    name: str
    bits: int = 32
    threshold: int | None = None
    degree: int | None = None
    dropout_fraction: float = 0.1
    corrupt_fraction: float = 0.05

    def __post_init__(self) -> None:
        get_protocol(self.name)  # ConfigurationError now for an unknown protocol

    def fixed_point(self, *, clip: float, clients: int, max_weight: float) -> FixedPoint:
        """The encoding of one round: the largest scale whose sum over ``clients`` cannot wrap.

        Raises:
            HeadroomError: no scale >= 1 fits ``bits`` for these bounds.
        """
        return FixedPoint.for_precision(bits=self.bits, clip=clip, max_clients=clients,
                                        max_weight=max_weight)

    def aggregate(self, updates: Mapping[ClientId, np.ndarray],
                  weights: Mapping[ClientId, int | float], *, clip: float, max_weight: float,
                  dropouts: Dropouts | None = None) -> AggregateOutcome:
        """Securely aggregate: encode each ``weights[c] * updates[c]`` with its weight, sum
        under the protocol, decode the weighted mean.

        Every update must already satisfy ``max |x| <= clip`` and every weight
        ``0 < w <= max_weight``. When every weight is a whole number and
        ``clients * max_weight <= 2^(bits-1) - 1``, the weight element carries the weight
        itself and the total weight comes back as an exact ``int``; otherwise it is the
        fixed-point weight of :meth:`FixedPoint.decode_weighted` (a float). The caller's
        client ids are mapped, in the order of ``updates``, onto the protocol's ids;
        ``dropouts`` use the caller's ids.

        Raises:
            ConfigurationError / HeadroomError: parameters the protocol refuses.
            ProtocolAbort: the protocol cannot finish (too few clients left).
        """
        started = time.perf_counter()
        ours = list(updates)
        _require_two(ours)
        encoding = self.fixed_point(clip=clip, clients=len(ours), max_weight=max_weight)
        exact = _exact_lane(weights.values(), clients=len(ours), max_weight=max_weight,
                            bits=self.bits)
        # Encoded once, eagerly: stochastic rounding draws fresh randomness at every call,
        # and the simulator may ask for a vector twice (to check its plaintext sum).
        encoded: dict[ClientId, np.ndarray] = {}
        for c in ours:
            vector = encoding.encode_weighted(updates[c], weights[c])
            if exact:
                # The exact lane: the weight itself, a non-negative int < 2^(bits-1).
                vector[-1] = int(weights[c])
            encoded[c] = vector
        summed = self.modular_sum(encoded, dropouts=dropouts)
        total_weight: int | float
        if exact:
            # Every included weight is in [1, max_weight] and their sum cannot wrap: the
            # residue is the sum itself.
            total_weight = int(summed.total[-1]) & ((1 << self.bits) - 1)
            mean = encoding.decode(summed.total[:-1]) / total_weight
        else:
            mean, total_weight = encoding.decode_weighted(summed.total)
        return AggregateOutcome(
            mean=mean, total_weight=total_weight, included=summed.included,
            excluded=summed.excluded, seconds=time.perf_counter() - started,
            bytes_up=summed.bytes_up, bytes_down=summed.bytes_down, costs=summed.costs,
            scale=encoding.scale)

    def modular_sum(self, vectors: Mapping[ClientId, np.ndarray], *,
                    dropouts: Dropouts | None = None) -> ModularSum:
        """Run one session of the protocol on vectors already in Z_(2^bits) (all of one
        length) and return their sum modulo 2^bits over the clients the protocol included.

        The caller's client ids are mapped, in the order of ``vectors``, onto the
        protocol's ids; ``dropouts`` use the caller's ids.

        Raises:
            ConfigurationError / HeadroomError: parameters the protocol refuses, or values
                outside Z_(2^bits).
            ProtocolAbort: fewer than two clients are included, or the protocol aborts.
        """
        ours = list(vectors)
        _require_two(ours)
        length = len(vectors[ours[0]])
        spec = get_protocol(self.name)
        params = SimulationParams(
            clients=len(ours), dim=length, bits=self.bits, threshold=self.threshold,
            degree=self.degree, dropout_fraction=self.dropout_fraction,
            corrupt_fraction=self.corrupt_fraction)
        try:
            config = spec.make_config(params)
        except ConfigurationError:
            if len(ours) != 2 or self.degree is not None:
                raise
            # The SecAgg+ parameter finder starts at three clients; on two, every graph is
            # the complete one (degree 1), which is what the protocol runs then.
            config = spec.make_config(replace(params, degree=1))
        theirs = list(spec.client_ids(config))
        if len(theirs) != len(ours) or spec.vector_length(config) != length:
            raise ConfigurationError(f"protocol {self.name!r} did not configure "
                                     f"{len(ours)} clients of length {length}")
        to_protocol = dict(zip(ours, theirs, strict=True))
        to_caller = {p: c for c, p in to_protocol.items()}
        schedule = DropoutSchedule({
            round_name: frozenset(to_protocol[c] for c in ids if c in to_protocol)
            for round_name, ids in (dropouts or {}).items()})
        result = simulate(config, {to_protocol[c]: v for c, v in vectors.items()},
                          dropouts=schedule)
        aggregate = result.aggregate
        included = frozenset(to_caller[p] for p in aggregate.included)
        _require_two(included)
        server = result.costs.party_total(SERVER_ID)
        return ModularSum(
            total=aggregate.total, included=included,
            excluded={to_caller[p]: _reason(r) for p, r in aggregate.excluded.items()},
            bytes_up=server.bytes_up, bytes_down=server.bytes_down, costs=result.costs)


def _exact_lane(weights: Collection[int | float], *, clients: int, max_weight: float,
                bits: int) -> bool:
    """Whether the weights can travel as themselves: whole numbers in [1, max_weight] whose
    sum over ``clients`` cannot leave the signed range of Z_(2^bits)."""
    limit = (1 << (bits - 1)) - 1
    if not math.isfinite(max_weight) or clients * math.floor(max_weight) > limit:
        return False
    return all(float(w).is_integer() and 1 <= w <= max_weight for w in weights)
