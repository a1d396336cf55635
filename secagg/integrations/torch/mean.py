"""A secure weighted mean of client states, in one call, that equals FedAvg unless asked.

::

    mean, report = secure_weighted_mean([state_a, state_b, state_c], weights=[120, 80, 200])

``states`` is a list (client ids 0, 1, ...) or a dict ``{client_id: state}`` of PyTorch
state dicts, dicts or lists of numpy arrays, or single arrays
(:mod:`~secagg.integrations.torch.structure`); the mean comes back in the same form, with a
:class:`MeanReport`. The server of the chosen protocol learns only the weighted sum and the
sum of the weights, never one client's state or weight.

Theory of operation. A secure sum adds integers modulo 2^bits, so every value is encoded in
fixed point, and a fixed-point code needs a range. Ranges are chosen *per entry* (per
tensor), so a BatchNorm ``running_var`` of 300 does not cost a convolution's weights their
precision:

1. **Updates.** A client's update is its state, or its state minus ``reference`` (the global
   model) when one is given, flattened to float64.
2. **Clipping, only when asked.** With ``clip=C`` the L2 norm of the entries in
   ``clip_keys`` (by default every floating entry; :class:`SecureFedAvg` passes the model's
   trainable parameters) is scaled down to ``C``. Nothing else is ever scaled.
3. **Ranges.** An entry with a fixed range ``bounds[name] = b`` keeps its values in
   ``[-b, b]``: a value beyond it is clamped and *reported*. Every other entry gets the
   smallest power of two ``b >= max |value|`` over the clients, so nothing is clamped; the
   server then learns that power of two, i.e. the binary exponent of the entry's largest
   absolute value across clients (fix ``bounds`` in advance to reveal nothing data-dependent;
   in a deployment the ranges are agreed on beforehand).
4. **Weights.** Whole-number weights (ints, or floats with integral values) travel exactly,
   as themselves, in one extra element of the masked vector, as long as ``clients *
   max_weight`` fits the signed range of Z_(2^bits); the total comes back as an ``int``.
   Other weights are rounded to multiples of ``weight_unit``, a power of two equal to
   ``2^ceil(log2(max_weight))`` divided by the largest power of two the headroom allows
   (about 2^-29 of the largest weight for a few clients at 32 bits); the report says so.
   ``max_weight`` defaults to the smallest power of two at least the largest weight
   (public, like the ranges).
5. **Encoding.** Each entry is divided by its range (exact for powers of two), so every
   value is in ``[-1, 1]``; :class:`~secagg.integrations.torch.backends.SimulatedProtocolBackend`
   picks the largest fixed-point scale whose sum over all clients cannot wrap, encodes
   ``weight * value`` with unbiased stochastic rounding, runs the protocol and decodes.
   The mean is off from the float64 weighted mean (of the clipped updates) by less than
   ``report.resolution[name] = b * included / (scale * total_weight_in_units)`` per
   element, up to float64 rounding: at 32 bits and similar weights, about
   ``clients * 2^-30`` of the range, finer than float32 for up to dozens of clients.

Nothing is changed silently: every client whose update was clipped or clamped is in
``report.clipped`` (with its norm and the factor applied), a :class:`ClippingWarning` is
issued and a ``logging`` warning is logged. Debug logging (``logging.getLogger(__name__)``)
records each aggregation's size, exclusions and timing; it never records values, weights
or anything secret.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from secagg.errors import ConfigurationError, HeadroomError, ProtocolAbort
from secagg.integrations.privacy import check_left_unset
from secagg.integrations.torch.backends import (
    AggregationBackend,
    ClientId,
    Dropouts,
    PlainBackend,
    SimulatedProtocolBackend,
)
from secagg.integrations.torch.privacy import (
    DPAggregation,
    DPOutcome,
    Privacy,
    PrivacyReport,
    check_privacy,
)
from secagg.integrations.torch.structure import Structure
from secagg.sim.ledger import CostLedger

__all__ = [
    "Clipping",
    "ClippingWarning",
    "MeanReport",
    "Segment",
    "aggregate_vectors",
    "make_backend",
    "private_mean_report",
    "secure_weighted_mean",
]

log = logging.getLogger(__name__)

PLAIN = "plain"
DEFAULT_BITS = 32
# Ranges below this are raised to it: its reciprocal must stay a finite float64.
_MIN_BOUND = 2.0**-1000
_BACKEND_OPTIONS = ("threshold", "degree", "dropout_fraction", "corrupt_fraction")
S = TypeVar("S")


class ClippingWarning(UserWarning):
    """Clipping or clamping changed some client's update, so the mean is not the plain
    weighted mean of the updates (see ``report.clipped``)."""


@dataclass(frozen=True)
class Segment:
    """One entry of a flat update: ``size`` values from ``offset``, named ``name``."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Clipping:
    """How one client's update was changed before encoding.

    ``norm`` is the L2 norm of the clipped part (``clip_keys``) before clipping, ``None``
    when no ``clip`` was asked; ``factor`` the scale applied to that part (1.0: unchanged);
    ``saturated`` the number of values beyond their entry's fixed range, clamped to it.
    """

    norm: float | None
    factor: float
    saturated: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return {"norm": self.norm, "factor": self.factor, "saturated": self.saturated}


@dataclass(frozen=True)
class MeanReport:
    """What one secure weighted mean did, as the operator of the simulation sees it.

    ``included``/``excluded`` (client id -> reason) say whose update is in the mean;
    ``total_weight`` is the sum of the included weights (an ``int`` when ``weights_exact``
    and the weights were whole numbers); ``weight_unit`` the resolution the weights were
    carried with (1 for exact whole numbers, 0.0 when not quantized at all: the plain
    baseline). ``clipped`` maps every client whose update clipping or clamping changed to a
    :class:`Clipping` (in a deployment only that client would know). ``bounds`` is each
    entry's encoding range (public), ``resolution`` the largest deviation of each entry of
    the mean from the exact weighted mean due to fixed point (0.0 for the plain baseline).
    ``seconds`` is the wall time of the call; ``bytes_up``/``bytes_down`` the server's
    traffic; ``costs`` the per-round, per-party ledger (``None`` for the plain baseline).
    """

    protocol: str
    included: frozenset[ClientId]
    excluded: Mapping[ClientId, str]
    total_weight: int | float
    weights_exact: bool
    weight_unit: float
    clipped: Mapping[ClientId, Clipping]
    seconds: float
    bytes_up: int
    bytes_down: int
    bounds: Mapping[str, float] = field(default_factory=dict, repr=False)
    resolution: Mapping[str, float] = field(default_factory=dict, repr=False)
    costs: CostLedger | None = field(default=None, repr=False)
    privacy: PrivacyReport | None = None

    @property
    def max_resolution(self) -> float:
        """The largest per-entry ``resolution`` (0.0 when there is none)."""
        return max(self.resolution.values(), default=0.0)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (with the cost ledger's summary when there is one)."""
        return {
            "protocol": self.protocol,
            "included": sorted(map(str, self.included)),
            "excluded": {str(c): r for c, r in self.excluded.items()},
            "total_weight": self.total_weight,
            "weights_exact": self.weights_exact,
            "weight_unit": self.weight_unit,
            "clipped": {str(c): v.to_dict() for c, v in self.clipped.items()},
            "seconds": self.seconds,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "bounds": dict(self.bounds),
            "max_resolution": self.max_resolution,
            "costs": self.costs.to_dict() if self.costs is not None else None,
            "privacy": self.privacy.to_dict() if self.privacy is not None else None,
        }


# --- checks -------------------------------------------------------------------------------

def _real(value: object) -> int | float | None:
    """``value`` as a Python int or float if it is a real number (not a bool), else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return None


def positive_finite(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real > 0, else :class:`ConfigurationError`."""
    number = _real(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{name} must be a positive finite number, got {value!r}")
    return float(number)


def _check_weight(client: ClientId, value: object) -> int | float:
    number = _real(value)
    if number is None:
        raise ConfigurationError(f"client {client!r}: a weight is a number, got a "
                                 f"{type(value).__name__}")
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"client {client!r}: weight must be positive and finite, "
                                 f"got {value!r}")
    return number


def make_backend(protocol: str | AggregationBackend, *, bits: int | None = None,
                 options: Mapping[str, object] | None = None) -> AggregationBackend:
    """The backend for ``protocol``: a registry name, ``"plain"``, or a backend as is.

    Raises:
        ConfigurationError: an unknown protocol or option, or ``bits``/options given with
            a backend object (which has its own).
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(_BACKEND_OPTIONS))
    if unknown:
        raise ConfigurationError(f"unknown protocol options {unknown}; known: "
                                 f"{list(_BACKEND_OPTIONS)}")
    if not isinstance(protocol, str):
        if bits is not None or options:
            raise ConfigurationError("bits and protocol options belong to a protocol name; "
                                     "a backend object carries its own")
        return protocol
    if protocol == PLAIN:
        if options:
            raise ConfigurationError(f"the plain baseline takes no protocol options, got "
                                     f"{sorted(options)}")
        return PlainBackend()
    return SimulatedProtocolBackend(protocol, bits=DEFAULT_BITS if bits is None else bits,
                                    **options)  # type: ignore[arg-type]


# --- weights ------------------------------------------------------------------------------

def _pow2_at_least(value: float) -> float:
    """The smallest power of two >= ``value`` (> 0)."""
    mantissa, exponent = math.frexp(value)
    return math.ldexp(0.5 if mantissa == 0.5 else 1.0, exponent)


def _quantized(weights: Mapping[ClientId, int | float], *, clients: int, bits: int,
               max_weight: float | None
               ) -> tuple[dict[ClientId, int], float, int, bool]:
    """(integer weights, unit, lane bound, exact) for a fixed-point backend of ``bits``.

    Whole-number weights whose bound fits ``clients`` times in the signed range travel as
    themselves (unit 1); others are rounded to multiples of a power-of-two unit.
    """
    limit = (1 << (bits - 1)) - 1
    cap = limit // clients
    if cap < 1:
        raise HeadroomError(f"{clients} clients do not fit in {bits} bits")
    largest = max(weights.values())
    top = largest if max_weight is None else max_weight
    if top < largest:
        worst = next(c for c, w in weights.items() if w > top)
        raise ConfigurationError(f"client {worst!r}: weight {weights[worst]!r} exceeds "
                                 f"max_weight {max_weight!r}")
    whole = all(float(w).is_integer() for w in weights.values())
    if whole and top <= cap:
        lane = int(top) if max_weight is not None and float(top).is_integer() \
            else min(int(_pow2_at_least(top)), cap)
        return {c: int(w) for c, w in weights.items()}, 1.0, max(lane, int(largest)), True
    steps = 1 << (cap.bit_length() - 1)  # the largest power of two <= cap
    unit = _pow2_at_least(top) / steps
    ints = {c: max(1, min(steps, round(w / unit))) for c, w in weights.items()}
    exact = all(ints[c] * unit == w for c, w in weights.items())
    return ints, unit, steps, exact


# --- the aggregation ----------------------------------------------------------------------

def _check_segments(segments: Sequence[Segment], size: int) -> None:
    offset = 0
    for segment in segments:
        if segment.offset != offset or segment.size < 0:
            raise ConfigurationError("segments must tile the vector in order")
        offset += segment.size
    if offset != size:
        raise ConfigurationError(f"segments cover {offset} values, the vectors hold {size}")


def _segment_at(segments: Sequence[Segment], index: int) -> str:
    for segment in segments:
        if segment.offset <= index < segment.offset + segment.size:
            return segment.name
    return "?"


def _auto_bounds(vectors: Iterable[np.ndarray], segments: Sequence[Segment]) -> np.ndarray:
    """Per segment: the smallest power of two >= max |value| over ``vectors`` (1.0 for an
    all-zero or empty segment), never below :data:`_MIN_BOUND`."""
    nonempty = [i for i, s in enumerate(segments) if s.size > 0]
    bounds = np.ones(len(segments), dtype=np.float64)
    if not nonempty:
        return bounds
    starts = np.array([segments[i].offset for i in nonempty], dtype=np.intp)
    peak = np.zeros(len(nonempty), dtype=np.float64)
    scratch: np.ndarray | None = None
    for vector in vectors:
        if scratch is None:
            scratch = np.empty_like(vector)
        np.abs(vector, out=scratch)
        np.maximum(peak, np.maximum.reduceat(scratch, starts), out=peak)
    mantissa, exponent = np.frexp(peak)
    powers = np.ldexp(np.where(mantissa == 0.5, 0.5, 1.0), exponent)
    powers[peak == 0.0] = 1.0
    if not np.all(np.isfinite(powers)):
        raise ConfigurationError("values beyond 2^1023 cannot be encoded")
    bounds[nonempty] = np.maximum(powers, _MIN_BOUND)
    return bounds


def aggregate_vectors(vectors: Mapping[Any, np.ndarray], weights: Mapping[Any, int | float],
                      *,
                      segments: Sequence[Segment], backend: AggregationBackend,
                      clip: float | None = None, clip_entries: Collection[str] | None = None,
                      bounds: Mapping[str, float] | None = None,
                      max_weight: float | None = None,
                      non_finite: Literal["refuse", "exclude"] = "refuse",
                      dropouts: Dropouts | None = None, stacklevel: int = 2
                      ) -> tuple[np.ndarray, MeanReport]:
    """The weighted mean of flat float64 updates, through ``backend`` (module docstring).

    ``vectors`` (client id -> 1-D float64 vector, all of the length ``segments`` tile; ids
    are ints or strs) are modified in place; ``weights`` gives every client a positive
    finite number. ``clip`` bounds the L2
    norm of the segments named in ``clip_entries`` (every segment when ``None``); ``bounds``
    fixes the range of some segments (the others get a power-of-two range from the data);
    ``non_finite`` refuses or excludes a client whose update is not finite. ``stacklevel``
    is passed to :func:`warnings.warn` so the warning points at the caller's code.

    Returns the mean update and the report.

    Raises:
        ConfigurationError: a non-finite update under ``"refuse"``, inconsistent segments,
            a missing or bad weight, one above ``max_weight``, or parameters the backend
            refuses
            (``HeadroomError``: too many clients for ``bits``).
        ProtocolAbort: fewer than two clients remain, or the protocol aborts.
    """
    started = time.perf_counter()
    ids = list(vectors)
    size = len(vectors[ids[0]]) if ids else 0
    _check_segments(segments, size)
    log.debug("aggregating %d clients x %d values in %d entries with %s", len(ids), size,
              len(segments), backend.name)
    excluded: dict[ClientId, str] = {}
    weights = {cid: _check_weight(cid, weights.get(cid)) for cid in ids}
    for cid in ids:
        vector = vectors[cid]
        if not isinstance(vector, np.ndarray) or vector.shape != (size,) \
                or vector.dtype != np.float64:
            raise ConfigurationError(f"client {cid!r}: an update must be a float64 vector of "
                                     f"shape ({size},)")
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.add.reduce(vector))
        if math.isfinite(total):
            continue  # the common case, without a boolean array per client
        finite = np.isfinite(vector)
        if not finite.all():
            where = _segment_at(segments, int(np.argmin(finite)))
            if non_finite == "refuse":
                raise ConfigurationError(f"client {cid!r}: entry {where!r} holds NaN or "
                                         "infinity")
            excluded[cid] = "non-finite update"
            log.debug("client %r excluded: non-finite values in %r", cid, where)
    live = [cid for cid in ids if cid not in excluded]
    if len(live) < 2:
        raise ProtocolAbort(f"only {len(live)} client(s) left: an aggregate needs two")

    clipped = _clip(vectors, live, segments, clip, clip_entries)
    fixed = dict(bounds or {})
    ranges = _auto_bounds((vectors[c] for c in live), segments)
    for i, segment in enumerate(segments):
        if segment.name in fixed:
            ranges[i] = fixed[segment.name]
    sizes = np.array([s.size for s in segments], dtype=np.intp)
    per_value = np.repeat(ranges, sizes)
    saturated = {cid: 0 for cid in live}
    fixed_slices = [slice(s.offset, s.offset + s.size) for s in segments if s.name in fixed]
    for cid in live:
        vector = vectors[cid]
        np.divide(vector, per_value, out=vector)  # exact for the power-of-two ranges
        for part in fixed_slices:
            segment_values = vector[part]
            over = int(np.count_nonzero(np.abs(segment_values) > 1.0))
            if over:
                np.clip(segment_values, -1.0, 1.0, out=segment_values)
                saturated[cid] += over
    for cid, count in saturated.items():
        if count:
            before = clipped.get(cid)
            clipped[cid] = Clipping(norm=before.norm if before else None,
                                    factor=before.factor if before else 1.0,
                                    saturated=count)

    bits = getattr(backend, "bits", None)
    if isinstance(bits, int):
        sent, unit, lane, exact = _quantized({c: weights[c] for c in live}, clients=len(live),
                                             bits=bits, max_weight=max_weight)
        outcome = backend.aggregate({c: vectors[c] for c in live}, sent, clip=1.0,
                                    max_weight=float(lane), dropouts=dropouts)
    else:  # a float64 baseline: the weights as they are
        unit, exact = 0.0, True
        if max_weight is not None:
            for cid in live:
                if weights[cid] > max_weight:
                    raise ConfigurationError(f"client {cid!r}: weight {weights[cid]!r} "
                                             f"exceeds max_weight {max_weight!r}")
        largest = max(weights[c] for c in live)
        outcome = backend.aggregate({c: vectors[c] for c in live},
                                    {c: weights[c] for c in live}, clip=1.0,
                                    max_weight=float(max_weight or largest), dropouts=dropouts)
    mean = outcome.mean * per_value
    in_units = outcome.total_weight
    total_weight: int | float = in_units
    if unit not in (0.0, 1.0):
        # A power-of-two unit >= 1 keeps whole weights whole: the total is then an int.
        total_weight = (int(in_units) * int(unit) if unit > 1.0 and isinstance(in_units, int)
                        else in_units * unit)
    if outcome.scale is None:
        resolution = dict.fromkeys((s.name for s in segments), 0.0)
    else:
        step = len(outcome.included) / (outcome.scale * float(in_units))
        resolution = {s.name: float(r) * step for s, r in zip(segments, ranges, strict=True)}
    clipped = {c: v for c, v in clipped.items() if c in outcome.included}
    report = MeanReport(
        protocol=backend.name, included=outcome.included,
        excluded={**excluded, **outcome.excluded}, total_weight=total_weight,
        weights_exact=exact, weight_unit=unit, clipped=clipped,
        seconds=time.perf_counter() - started, bytes_up=outcome.bytes_up,
        bytes_down=outcome.bytes_down,
        bounds={s.name: float(r) for s, r in zip(segments, ranges, strict=True)},
        resolution=resolution, costs=outcome.costs)
    for cid, reason in outcome.excluded.items():
        log.debug("client %r excluded: %s", cid, reason)
    if clipped:
        _warn_clipped(clipped, len(outcome.included), stacklevel)
    log.debug("aggregated %d of %d clients with %s in %.3f s (%d excluded, %d clipped)",
              len(outcome.included), len(ids), backend.name, report.seconds,
              len(report.excluded), len(clipped))
    return mean, report


def _clip(vectors: Mapping[ClientId, np.ndarray], live: Sequence[ClientId],
          segments: Sequence[Segment], clip: float | None,
          clip_entries: Collection[str] | None) -> dict[ClientId, Clipping]:
    """Scale each live client's ``clip_entries`` part to L2 norm ``clip`` if above it."""
    if clip is None:
        return {}
    chosen = [slice(s.offset, s.offset + s.size) for s in segments
              if s.size and (clip_entries is None or s.name in clip_entries)]
    longest = max((p.stop - p.start for p in chosen), default=0)
    # Not np.linalg.norm: its BLAS dot wakes a thread pool and costs 10x more than the
    # squaring on a loaded machine. The scratch buffer is reused across clients.
    squares = np.empty(longest, dtype=np.float64)
    clipped: dict[ClientId, Clipping] = {}
    for cid in live:
        vector = vectors[cid]
        total = 0.0
        for part in chosen:
            values = vector[part]
            out = squares[:values.size]
            np.multiply(values, values, out=out)
            total += float(out.sum())
        norm = math.sqrt(total)
        if norm > clip:
            factor = clip / norm
            for part in chosen:
                vector[part] *= factor
            clipped[cid] = Clipping(norm=norm, factor=factor, saturated=0)
    return clipped


def _warn_clipped(clipped: Mapping[ClientId, Clipping], included: int, stacklevel: int
                  ) -> None:
    """Warn and log; ``stacklevel`` as if :func:`warnings.warn` were called by the caller."""
    factors = [c.factor for c in clipped.values() if c.factor < 1.0]
    saturated = sum(c.saturated for c in clipped.values())
    parts = []
    if factors:
        parts.append(f"L2 norm scaled by {min(factors):.3g}-{max(factors):.3g}")
    if saturated:
        parts.append(f"{saturated} values clamped to their fixed ranges")
    message = (f"{len(clipped)} of {included} clients were clipped ({'; '.join(parts)}): "
               "the mean is not the plain weighted mean of their updates (see "
               "report.clipped)")
    log.warning(message)
    warnings.warn(message, ClippingWarning, stacklevel=stacklevel + 1)


def private_mean_report(outcome: DPOutcome, segments: Sequence[Segment], *,
                        protocol: str, clip: float, seconds: float) -> MeanReport:
    """The :class:`MeanReport` of a private aggregation: uniform weights (the total weight
    is the number of included clients), ``clipped`` from the L2 clip (logged at debug level
    only: clipping is the mechanism's normal operation), ``resolution`` the standard
    deviation of each value's error (rounding and noise; not a bound), ``privacy`` the
    round's figures."""
    error = outcome.privacy.error_std
    clipped = {c: Clipping(norm=n, factor=clip / n, saturated=0)
               for c, n in outcome.clipped_norms.items()}
    if clipped:
        log.debug("privacy: %d of %d clients clipped to L2 norm %g", len(clipped),
                  len(outcome.included), clip)
    return MeanReport(
        protocol=protocol, included=outcome.included,
        excluded=dict(outcome.excluded), total_weight=len(outcome.included), weights_exact=True,
        weight_unit=1.0, clipped=clipped, seconds=seconds, bytes_up=outcome.bytes_up,
        bytes_down=outcome.bytes_down, bounds={},
        resolution=dict.fromkeys((s.name for s in segments), error), costs=outcome.costs,
        privacy=outcome.privacy)


def _dp_aggregation(privacy: object, protocol: object, options: Mapping[str, object]
                    ) -> DPAggregation:
    if isinstance(privacy, DPAggregation):
        if protocol != privacy.protocol or options:
            raise ConfigurationError(
                f"the DPAggregation runs {privacy.protocol!r} with its own options: pass "
                f"protocol={privacy.protocol!r} and no protocol options")
        return privacy
    if not isinstance(protocol, str):
        raise ConfigurationError("privacy takes a protocol name, not a backend object")
    return DPAggregation(check_privacy(privacy), protocol=protocol, protocol_options=options)


# --- the one-call API ---------------------------------------------------------------------

def _clients(states: object) -> list[tuple[ClientId, object]]:
    if isinstance(states, Mapping):
        for key in states:
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise ConfigurationError(f"client ids are ints or strs, got {key!r}")
        return list(states.items())
    if isinstance(states, Sequence) and not isinstance(states, str | bytes):
        return list(enumerate(states))
    raise ConfigurationError("states must be a list of client states or a dict "
                             f"{{client_id: state}}, got a {type(states).__name__}")


def _weights(ids: Sequence[ClientId], weights: object, keyed: bool
             ) -> dict[ClientId, int | float]:
    if weights is None:
        return dict.fromkeys(ids, 1)
    if isinstance(weights, torch.Tensor | np.ndarray):
        if weights.ndim != 1:
            raise ConfigurationError("weights must be one number per client")
        weights = weights.tolist()
    if keyed:
        if not isinstance(weights, Mapping):
            raise ConfigurationError("states is a dict: weights must be a dict with the same "
                                     "client ids")
        if set(weights) != set(ids):
            missing = [c for c in ids if c not in weights]
            extra = [c for c in weights if c not in set(ids)]
            raise ConfigurationError(f"weights do not match the clients: missing "
                                     f"{missing[:5]}, unexpected {extra[:5]}")
        return {c: _check_weight(c, weights[c]) for c in ids}
    if not isinstance(weights, Sequence) or isinstance(weights, str | bytes):
        raise ConfigurationError("states is a list: weights must be a list of the same length")
    if len(weights) != len(ids):
        raise ConfigurationError(f"{len(weights)} weights for {len(ids)} clients")
    return {c: _check_weight(c, w) for c, w in zip(ids, weights, strict=True)}


def _named_bounds(bounds: float | Mapping[str, float] | None, names: Sequence[str],
                  what: str = "bounds") -> dict[str, float]:
    if bounds is None:
        return {}
    if isinstance(bounds, Mapping):
        unknown = sorted(set(bounds) - set(names))
        if unknown:
            raise ConfigurationError(f"{what} names unknown entries {unknown[:5]}")
        return {k: positive_finite(f"{what}[{k!r}]", v) for k, v in bounds.items()}
    value = positive_finite(what, bounds)
    return dict.fromkeys(names, value)


def secure_weighted_mean(states: Sequence[S] | Mapping[Any, S],
                         weights: Sequence[float] | Mapping[Any, float] | np.ndarray
                         | torch.Tensor | None = None, *,
                         protocol: str | AggregationBackend = "secagg+",
                         reference: S | None = None, clip: float | None = None,
                         clip_keys: Collection[str] | None = None,
                         bounds: float | Mapping[str, float] | None = None,
                         max_weight: float | None = None, bits: int | None = None,
                         dropouts: Dropouts | None = None,
                         privacy: Privacy | DPAggregation | None = None,
                         **options: object) -> tuple[S, MeanReport]:
    """The weighted mean of client states under a secure-aggregation protocol.

    ``states``: a list (client ids 0, 1, ...) or a dict ``{client_id: state}`` (int or str
    ids) of at least two states of one structure (a ``state_dict`` or dict of arrays, a list
    of arrays, or one array/tensor). ``weights``: one positive number per client (a list,
    a dict with the same ids, or a 1-D array), ``None`` for equal weights. ``protocol``: a
    registry name (``"secagg+"``, ``"bonawitz"``, ``"threshold-paillier"``, ``"ckks"``),
    ``"plain"`` for the insecure float64 baseline, or an
    :class:`~secagg.integrations.torch.backends.AggregationBackend`.

    Defaults reproduce the plain weighted mean up to ``report.resolution``: nothing is
    clipped unless ``clip`` is given (the L2 bound of each update's ``clip_keys`` entries,
    every floating entry by default; the update is ``state - reference`` with a
    ``reference``, else the state), and each entry's range is a power of two from the data
    unless ``bounds`` (one range, or a range per entry name) fixes it. ``max_weight`` is a
    public bound on the weights; ``bits`` (default 32) the modulus 2^bits of the sum;
    ``dropouts`` maps a protocol round name to the client ids that vanish in it;
    ``options`` (``threshold``, ``degree``, ``dropout_fraction``, ``corrupt_fraction``) go to
    the protocol. See the module docstring for the encoding and what the server learns.

    ``privacy`` (a :class:`~secagg.dp.DistributedDP`, a :class:`~secagg.dp.Compression`, or
    a :class:`~secagg.integrations.torch.privacy.DPAggregation` reused across calls so
    that epsilon composes) encodes each update with :mod:`secagg.dp` instead: the whole
    update is clipped to the config's L2 ``clip`` and summed at its ``bits`` by a masking
    protocol (``bonawitz``, ``secagg+``); the mean is then the plain mean of the included
    clients' clipped updates, up to the noise and rounding (``report.resolution``: their
    standard deviation per value) and ``report.privacy`` carries the epsilon spent. It
    requires uniform weights (``weights=None``), leaves ``clip``, ``clip_keys``,
    ``bounds``, ``max_weight`` and ``bits`` to the config, and floating entries only.

    Returns ``(mean, report)``: the mean in the structure of the states (a ``dict`` for
    mappings, a ``list`` for sequences; dtypes, shapes and devices of the first state;
    integer entries rounded to the nearest integer) and a :class:`MeanReport`.

    Raises:
        ConfigurationError: bad input, naming the client and the problem: fewer than two
            clients, a state that is not a tensor/array structure or differs from the first
            (keys, shapes), NaN or infinity, a weight that is not a positive finite number,
            unknown options or entry names; ``HeadroomError`` when the clients do not fit
            ``bits``.
        ProtocolAbort: fewer than two clients remain after dropouts, or the protocol aborts.
    """
    clients = _clients(states)
    if len(clients) < 2:
        raise ConfigurationError(f"a secure mean needs at least two clients, got "
                                 f"{len(clients)}: a sum of one input is that input")
    ids = [cid for cid, _ in clients]
    private: DPAggregation | None = None
    if privacy is not None:
        _check_private_call(weights, clip=clip, clip_keys=clip_keys, bounds=bounds,
                            max_weight=max_weight, bits=bits)
        private = _dp_aggregation(privacy, protocol, options)
    weight_of = _weights(ids, weights, keyed=isinstance(states, Mapping))
    backend = private.backend if private is not None else make_backend(
        protocol, bits=bits, options=options)
    structure = Structure.of(clients[0][1], client=ids[0])
    try:
        vectors = {cid: structure.flatten(state, client=cid) for cid, state in clients}
    except ConfigurationError as exc:
        if isinstance(states, Mapping) and all(
                isinstance(v, torch.Tensor | np.ndarray) for v in states.values()):
            raise ConfigurationError(f"{exc} (is this one state_dict? pass a list or a dict "
                                     "of client states)") from None
        raise
    base: np.ndarray | None = None
    if reference is not None:
        base = structure.flatten(reference, client="reference")
        if not np.all(np.isfinite(base)):
            raise ConfigurationError("the reference state holds NaN or infinity")
        for vector in vectors.values():
            vector -= base
    if private is not None:
        return _private_mean(private, vectors, structure, base, dropouts)
    if clip is not None:
        clip = positive_finite("clip", clip)
        if clip_keys is not None:
            unknown = sorted(set(clip_keys) - set(structure.names))
            if unknown:
                raise ConfigurationError(f"clip_keys names unknown entries {unknown[:5]}")
    elif clip_keys is not None:
        raise ConfigurationError("clip_keys without clip: give the L2 bound too")
    if max_weight is not None:
        max_weight = positive_finite("max_weight", max_weight)
    segments = [Segment(e.name, e.offset, e.size) for e in structure.entries]
    clip_entries = clip_keys if clip_keys is not None else [
        e.name for e in structure.entries if not e.is_integer]
    mean, report = aggregate_vectors(
        vectors, weight_of, segments=segments, backend=backend, clip=clip,
        clip_entries=clip_entries, bounds=_named_bounds(bounds, structure.names),
        max_weight=max_weight, dropouts=dropouts, stacklevel=3)
    if base is not None:
        mean += base
    result: S = structure.rebuild(mean)  # type: ignore[assignment]
    return result, report


def _check_private_call(weights: object, **fixed: object) -> None:
    if weights is not None:
        raise ConfigurationError(
            "privacy needs uniform weights (weights=None): the L2 clip bounds each client's "
            "whole contribution to the sum, and a weight would multiply it past the clip")
    check_left_unset(**fixed)


def _private_mean(private: DPAggregation, vectors: dict[ClientId, np.ndarray],
                  structure: Structure, base: np.ndarray | None,
                  dropouts: Dropouts | None) -> tuple[Any, MeanReport]:
    started = time.perf_counter()
    integers = [e.name for e in structure.entries if e.is_integer]
    if integers:
        raise ConfigurationError(
            f"privacy clips the whole update in L2, integer entries {integers[:5]} cannot be "
            "in it: leave them out of the states")
    mean, outcome = private.aggregate(vectors, dropouts=dropouts)
    segments = [Segment(e.name, e.offset, e.size) for e in structure.entries]
    report = private_mean_report(outcome, segments, protocol=private.protocol,
                                 clip=private.privacy.clip,
                                 seconds=time.perf_counter() - started)
    if base is not None:
        mean += base
    return structure.rebuild(mean), report
