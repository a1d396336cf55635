"""Secure FedAvg in a few lines: keep your model, data and local training; swap the sum.

::

    agg = SecureFedAvg(model)                       # secagg+, plain FedAvg semantics
    new_state, report = agg.round({cid: (local_state, num_examples), ...})
    model.load_state_dict(new_state)

or let :meth:`SecureFedAvg.run` drive the rounds with your ``local_train(model, cid, rnd)``.

Each round, for every client, the update is the delta of its local state against the global
model (:class:`~secagg.integrations.torch.state.StateLayout`). The deltas, weighted by the
clients' example counts, go through the same code path as
:func:`~secagg.integrations.torch.mean.secure_weighted_mean` (see its module for the
encoding): the server decodes only the weighted mean and the total number of examples, no
client's count, no client's update. The new global state is the old one moved by that mean.

Defaults: FedAvg, exactly up to the fixed-point resolution.

* **No clipping** unless ``clip`` is given. ``clip=C`` bounds the L2 norm of each client's
  update of the *trainable parameters* (``requires_grad`` parameters of the module, or the
  ``parameter_keys`` of a bare ``state_dict``), as DP-style training does. Buffers are never
  clipped.
* **Buffers are averaged exactly**: BatchNorm's running statistics move by the weighted
  mean of the clients' moves, each entry in its own fixed-point range, so a
  ``running_var`` never costs a weight its precision. A range is the smallest power of two
  above the entry's largest update across clients (public: the server learns that binary
  exponent), unless ``bounds`` fixes it in advance (a larger value is clamped and reported).
* **Integer buffers** (BatchNorm's ``num_batches_tracked``), ``integer_buffers="average"``
  (the default): the global counter advances by the weighted mean of the clients' advances,
  rounded to the nearest integer, as float64 FedAvg of the state dicts followed by a
  cast would give; ``"keep"`` leaves them as in the global model. ``integer_step_bound``
  optionally fixes their range (a larger step is clamped and reported).
* **Weights**: example counts are ints and travel exactly; ``report.total_examples`` is an
  ``int``. ``max_examples`` optionally fixes their public bound (a count above it is an
  error); by default it is the smallest power of two at least the largest count (public,
  like the ranges).

Every :class:`RoundReport` lists the clients whose update was clipped or clamped
(``report.clipped``: norm before, factor applied, values clamped), and a
:class:`~secagg.integrations.torch.mean.ClippingWarning` plus a ``logging`` warning fire
when that changed the result. ``report.resolution`` bounds each entry's deviation from
float64 FedAvg of the (clipped) updates. A client whose update holds NaN or infinity sits
the round out (``report.excluded``) rather than poison the sum.

Where it runs: every round is one fresh session of the protocol (new keys, new session id),
with the clients and the server simulated in this process by
:func:`secagg.sim.simulator.simulate`, every message really encoded and decoded. It is the
tool for research loops and demos; a deployment runs the same client-side steps (clip,
encode, the protocol's client) on the devices, e.g. through the Flower integration.
Debug logging (``logging.getLogger(__name__)``) records round starts and ends, exclusions,
clipping and timings, never values.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from secagg.errors import ConfigurationError
from secagg.integrations.privacy import check_left_unset
from secagg.integrations.torch.backends import AggregationBackend, ClientId, Dropouts
from secagg.integrations.torch.mean import (
    PLAIN,
    Clipping,
    MeanReport,
    Segment,
    aggregate_vectors,
    make_backend,
    positive_finite,
    private_mean_report,
)
from secagg.integrations.torch.privacy import (
    DPAggregation,
    Privacy,
    PrivacyReport,
    check_masking_protocol,
    check_privacy,
)
from secagg.integrations.torch.state import IntegerPolicy, StateDict, StateLayout
from secagg.sim.ledger import CostLedger

__all__ = ["LocalTrain", "RoundReport", "SecureFedAvg"]

log = logging.getLogger(__name__)

LocalTrain = Callable[[nn.Module, int, int], int]
"""``local_train(model, client_id, round_index) -> num_examples``: train ``model`` (already
loaded with the global state) in place on the client's data."""


@dataclass(frozen=True)
class RoundReport:
    """What one round did and cost, as the operator of the simulation may know it.

    ``total_examples`` is the decoded sum of the included clients' example counts (an exact
    ``int``); ``clipped`` maps each included client whose update clipping or clamping
    changed to a :class:`~secagg.integrations.torch.mean.Clipping`; ``resolution`` bounds,
    per ``state_dict`` entry, the deviation of the new global state from float64 FedAvg of
    the same (clipped) updates; ``bounds`` are the entries' encoding ranges. ``seconds`` is
    the wall time of the aggregation (clipping, encoding, protocol, decoding);
    ``bytes_up``/``bytes_down`` the server's traffic; ``costs`` the per-protocol-round,
    per-party ledger (``None`` for the plain baseline). ``privacy`` carries the round's
    epsilon (spent so far, and this round's for the clients actually included) and
    compression figures when the aggregator has ``privacy`` (``total_examples`` is then the
    number of included clients: uniform weights).
    """

    round_index: int
    protocol: str
    included: frozenset[int]
    excluded: Mapping[int, str]
    total_examples: int | float
    seconds: float
    bytes_up: int
    bytes_down: int
    clipped: Mapping[int, Clipping] = field(default_factory=dict)
    weights_exact: bool = True
    bounds: Mapping[str, float] = field(default_factory=dict, repr=False)
    resolution: Mapping[str, float] = field(default_factory=dict, repr=False)
    costs: CostLedger | None = field(default=None, repr=False)
    privacy: PrivacyReport | None = None

    @classmethod
    def of(cls, round_index: int, report: MeanReport) -> RoundReport:
        """The round report of one :func:`aggregate_vectors` call (ids are ints here)."""
        return cls(
            round_index=round_index, protocol=report.protocol,
            included=frozenset(int(c) for c in report.included),
            excluded={int(c): r for c, r in report.excluded.items()},
            total_examples=report.total_weight, seconds=report.seconds,
            bytes_up=report.bytes_up, bytes_down=report.bytes_down,
            clipped={int(c): v for c, v in report.clipped.items()},
            weights_exact=report.weights_exact, bounds=report.bounds,
            resolution=report.resolution, costs=report.costs, privacy=report.privacy)

    @property
    def max_resolution(self) -> float:
        """The largest per-entry ``resolution`` (0.0 for the plain baseline)."""
        return max(self.resolution.values(), default=0.0)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (with the cost ledger's summary when there is one)."""
        return {
            "round": self.round_index,
            "protocol": self.protocol,
            "included": sorted(self.included),
            "excluded": {str(c): r for c, r in sorted(self.excluded.items())},
            "total_examples": self.total_examples,
            "clipped": {str(c): v.to_dict() for c, v in sorted(self.clipped.items())},
            "weights_exact": self.weights_exact,
            "max_resolution": self.max_resolution,
            "seconds": self.seconds,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "costs": self.costs.to_dict() if self.costs is not None else None,
            "privacy": self.privacy.to_dict() if self.privacy is not None else None,
        }


def _trainable(model: nn.Module | StateDict, parameter_keys: Iterable[str] | None,
               names: Collection[str]) -> frozenset[str] | None:
    """The state entries that are trainable parameters, or None when unknown."""
    if parameter_keys is not None:
        if isinstance(parameter_keys, str):
            raise ConfigurationError("parameter_keys is a collection of state_dict keys")
        keys = frozenset(parameter_keys)
        unknown = sorted(keys - set(names))
        if unknown:
            raise ConfigurationError(f"parameter_keys names entries the state does not carry: "
                                     f"{unknown[:5]}")
        return keys
    if isinstance(model, nn.Module):
        # remove_duplicate=False: a tied weight appears in the state_dict under every name.
        return frozenset(name for name, p in model.named_parameters(remove_duplicate=False)
                         if p.requires_grad and name in names)
    return None


class SecureFedAvg:
    """FedAvg whose server learns only the weighted mean of the clients' updates.

    ``model`` is the ``nn.Module`` (or its ``state_dict``) holding the initial global state.
    ``protocol`` is a protocol name of :mod:`secagg.protocols.registry` (``"secagg+"``,
    ``"bonawitz"``, ``"threshold-paillier"``, ``"ckks"``, or any protocol registered there),
    ``"plain"`` for the insecure float64 baseline with the same clipping and weighting, or
    an :class:`AggregationBackend`. ``clip`` (default ``None``: no clipping) bounds the L2
    norm of each update of the trainable parameters: those of the module, or
    ``parameter_keys`` (required with ``clip`` when ``model`` is a ``state_dict``).
    ``bounds`` fixes the range of the updates of some entries (one value, or a value per
    entry name; default: a power of two from the data), ``max_examples`` a public bound on
    each client's example count, ``bits`` the modulus 2^bits of the secure sum.
    ``integer_buffers`` is ``"average"`` (default) or ``"keep"``, ``integer_step_bound``
    an optional fixed range for their steps. ``protocol_options`` go to
    :class:`SimulatedProtocolBackend` (threshold, degree, dropout_fraction,
    corrupt_fraction). ``weighted=False`` gives every client weight 1 (a plain mean; the
    example counts are still checked). The module docstring states the defaults and their
    guarantees.

    ``privacy`` (a :class:`~secagg.dp.DistributedDP` or :class:`~secagg.dp.Compression`)
    encodes every update with :mod:`secagg.dp` and sums the encodings at the config's
    ``bits`` (:mod:`~secagg.integrations.torch.privacy`): the whole travelling update is
    clipped to the config's L2 ``clip``, the protocol must be ``"bonawitz"`` or
    ``"secagg+"``, ``weighted=False`` is required (uniform weights), integer buffers must
    stay home (``integer_buffers="keep"``), and ``clip``, ``bounds``, ``max_examples``,
    ``bits`` and ``integer_step_bound`` are left unset. The plan is made at construction
    when the config has ``expected_clients`` (else at the first round, for its clients);
    every :class:`RoundReport` carries ``privacy`` (epsilon spent so far, this round's).

    Raises:
        ConfigurationError: bad bounds, an unknown protocol or protocol option, ``clip``
            without a way to tell the parameters, unknown entry names; with ``privacy``,
            any of the rules above, or a config that cannot be planned.
    """

    def __init__(self, model: nn.Module | StateDict, *, protocol: str | AggregationBackend
                 = "secagg+", clip: float | None = None,
                 parameter_keys: Iterable[str] | None = None,
                 bounds: float | Mapping[str, float] | None = None,
                 max_examples: int | None = None, bits: int | None = None,
                 integer_buffers: IntegerPolicy = "average",
                 integer_step_bound: float | None = None,
                 protocol_options: Mapping[str, object] | None = None,
                 weighted: bool = True,
                 privacy: Privacy | None = None) -> None:
        state = model.state_dict() if isinstance(model, nn.Module) else model
        if not isinstance(weighted, bool):
            raise ConfigurationError(f"weighted must be a bool, got {weighted!r}")
        self.weighted = weighted
        if max_examples is not None and (isinstance(max_examples, bool)
                                         or not isinstance(max_examples, int)
                                         or max_examples < 1):
            raise ConfigurationError(f"max_examples must be a positive int or None, got "
                                     f"{max_examples!r}")
        if not isinstance(protocol_options, Mapping | None):
            raise ConfigurationError("protocol_options must be a mapping")
        self.dp: DPAggregation | None = None
        if privacy is not None:
            _check_private_settings(weighted, clip=clip, bounds=bounds,
                                    max_examples=max_examples, bits=bits,
                                    integer_step_bound=integer_step_bound)
            self.dp = DPAggregation(
                check_privacy(privacy), protocol=check_masking_protocol(protocol),
                protocol_options=protocol_options)
            self.backend: AggregationBackend = self.dp.backend
        else:
            self.backend = make_backend(protocol, bits=None if protocol == PLAIN
                                        or not isinstance(protocol, str) else bits,
                                        options=protocol_options)
        self.layout = StateLayout.from_state(state, integer_buffers=integer_buffers)
        self.clip = None if clip is None else positive_finite("clip", clip)
        self.max_examples = max_examples
        self.integer_step_bound = (None if integer_step_bound is None
                                   else positive_finite("integer_step_bound",
                                                        integer_step_bound))
        travelling = [s for s in self.layout.specs if s.in_vector]
        self._segments = [Segment(s.name, s.offset, s.numel) for s in travelling]
        self.parameter_keys = _trainable(model, parameter_keys, self.layout.names)
        if self.clip is not None:
            if self.parameter_keys is None:
                raise ConfigurationError(
                    "clip bounds the trainable parameters' update: pass the nn.Module, or "
                    "parameter_keys=[...] naming them in the state_dict")
            if not self.parameter_keys & {s.name for s in travelling if s.is_floating}:
                raise ConfigurationError("clip is set but no trainable floating parameter is "
                                         "in the state")
        floats = {s.name for s in travelling if s.is_floating}
        self._clip_entries = frozenset(self.parameter_keys or ()) & floats
        self._bounds = self._fixed_bounds(bounds)
        self._global = {k: v.detach().clone() for k, v in state.items()}
        self.rounds_done = 0
        if self.dp is not None:
            integers = [s.name for s in travelling if not s.is_floating]
            if integers:
                raise ConfigurationError(
                    f"privacy clips the whole update in L2, so integer buffers {integers[:5]} "
                    "cannot travel: pass integer_buffers='keep'")
            if self.dp.privacy.expected_clients is not None:
                self.dp.plan_for(self.layout.size, self.dp.privacy.expected_clients)

    def _fixed_bounds(self, bounds: float | Mapping[str, float] | None) -> dict[str, float]:
        floats = [s.name for s in self.layout.specs if s.in_vector and s.is_floating]
        ints = [s.name for s in self.layout.specs if s.in_vector and not s.is_floating]
        fixed: dict[str, float] = {}
        if isinstance(bounds, Mapping):
            unknown = sorted(set(bounds) - set(floats) - set(ints))
            if unknown:
                raise ConfigurationError(f"bounds names entries that do not travel: "
                                         f"{unknown[:5]}")
            fixed.update({k: positive_finite(f"bounds[{k!r}]", v) for k, v in bounds.items()})
        elif bounds is not None:
            fixed.update(dict.fromkeys(floats, positive_finite("bounds", bounds)))
        if self.integer_step_bound is not None:
            fixed.update(dict.fromkeys(ints, self.integer_step_bound))
        return fixed

    @property
    def protocol(self) -> str:
        """The backend's name."""
        return self.backend.name

    @property
    def epsilon_spent(self) -> float:
        """Epsilon spent by the rounds so far (0.0 without distributed DP)."""
        return self.dp.epsilon_spent if self.dp is not None else 0.0

    @property
    def global_state(self) -> dict[str, torch.Tensor]:
        """A copy of the current global model state."""
        return {k: v.clone() for k, v in self._global.items()}

    def __repr__(self) -> str:
        return (f"SecureFedAvg(protocol={self.protocol!r}, parameters={self.layout.size}, "
                f"clip={self.clip}, max_examples={self.max_examples}, "
                f"rounds_done={self.rounds_done})")

    def _check_examples(self, cid: object, count: object) -> int:
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ConfigurationError(f"client ids are ints, got {cid!r}")
        top = self.max_examples
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1 \
                or (top is not None and count > top):
            expected = f"in [1, {top}]" if top is not None else ">= 1"
            raise ConfigurationError(f"client {cid}: num_examples must be an int {expected}, "
                                     f"got {count!r}")
        return int(count)

    def aggregate_deltas(self, deltas: Mapping[int, tuple[np.ndarray, int]], *,
                         dropouts: Dropouts | None = None
                         ) -> tuple[dict[str, torch.Tensor], RoundReport]:
        """One round from flat deltas (``layout.delta(local, global_state)``).

        The deltas are modified in place (clipped, scaled). Returns the new global state,
        which also becomes this object's global state, and the round's report.

        Raises:
            ConfigurationError: a delta of the wrong shape, a bad client id or count.
            ProtocolAbort: fewer than two clients remain, or the protocol aborts (the
                global state is then unchanged).
        """
        started = time.perf_counter()
        log.debug("round %d starts: %d clients, protocol %s", self.rounds_done, len(deltas),
                  self.protocol)
        vectors: dict[ClientId, np.ndarray] = {}
        weights: dict[ClientId, int | float] = {}
        for cid, (delta, count) in deltas.items():
            examples = self._check_examples(cid, count)
            weights[cid] = examples if self.weighted else 1
            if not isinstance(delta, np.ndarray) or delta.shape != (self.layout.size,) \
                    or delta.dtype.kind not in "fiu":
                raise ConfigurationError(f"client {cid}: delta must be a real array of shape "
                                         f"({self.layout.size},)")
            vectors[cid] = delta.astype(np.float64, copy=False)
        if self.dp is not None:
            mean, outcome = self.dp.aggregate(vectors, dropouts=dropouts)
            report = private_mean_report(outcome, self._segments, protocol=self.protocol,
                                         clip=self.dp.privacy.clip,
                                         seconds=time.perf_counter() - started)
            return self._finish(mean, report, started)
        mean, report = aggregate_vectors(
            vectors, weights, segments=self._segments, backend=self.backend, clip=self.clip,
            clip_entries=self._clip_entries, bounds=self._bounds,
            max_weight=None if self.max_examples is None else float(self.max_examples),
            non_finite="exclude", dropouts=dropouts, stacklevel=4)
        return self._finish(mean, report, started)

    def _finish(self, mean: np.ndarray, report: MeanReport, started: float
                ) -> tuple[dict[str, torch.Tensor], RoundReport]:
        self._global = self.layout.apply_delta(self._global, mean)
        round_report = RoundReport.of(self.rounds_done, report)
        log.debug("round %d ends after %.3f s: %d included, excluded %s, %d clipped",
                  self.rounds_done, time.perf_counter() - started, len(round_report.included),
                  dict(round_report.excluded), len(round_report.clipped))
        self.rounds_done += 1
        return self.global_state, round_report

    def round(self, results: Mapping[int, tuple[StateDict, int]], *,
              dropouts: Dropouts | None = None) -> tuple[dict[str, torch.Tensor], RoundReport]:
        """One round from the clients' local states: ``{client_id: (state_dict, examples)}``.

        ``dropouts`` maps a protocol round name (``secagg.protocols.base.ROUND_NAMES``) to
        the clients that vanish before sending in it. Returns the new global state and the
        round's report (who was left out and why, who was clipped, costs).

        Raises:
            ConfigurationError: a state that does not match the model, a bad id or count.
            ProtocolAbort: fewer than two clients remain, or the protocol aborts.
        """
        if not isinstance(results, Mapping):
            raise ConfigurationError("results must be a dict {client_id: (state_dict, "
                                     "num_examples)}")
        deltas: dict[int, tuple[np.ndarray, int]] = {}
        for cid, entry in results.items():
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise ConfigurationError(f"client {cid!r}: expected (state_dict, num_examples)")
            state, count = entry
            if not isinstance(state, Mapping):
                raise ConfigurationError(f"client {cid!r}: the state must be a state_dict, got "
                                         f"a {type(state).__name__}")
            try:
                deltas[cid] = (self.layout.delta(state, self._global), count)
            except ConfigurationError as exc:
                raise ConfigurationError(f"client {cid!r}: {exc}") from None
        return self.aggregate_deltas(deltas, dropouts=dropouts)

    def run(self, model: nn.Module, clients: Iterable[int], local_train: LocalTrain, *,
            rounds: int, dropouts: Callable[[int], Dropouts | None] | None = None,
            on_round: Callable[[RoundReport, nn.Module], None] | None = None,
            progress: bool = False) -> list[RoundReport]:
        """Run ``rounds`` rounds of FedAvg and leave the final global state in ``model``.

        Every round, each client trains a working copy of ``model`` loaded with the global
        state (``local_train(copy, client_id, round_index) -> num_examples``);
        ``dropouts(round_index)`` gives that round's dropouts; ``on_round(report, model)``
        is called after ``model`` received the new global state (e.g. to evaluate it).

        Raises:
            ConfigurationError, ProtocolAbort: as :meth:`round`.
        """
        ids = list(clients)
        if rounds < 0:
            raise ConfigurationError("rounds must be >= 0")
        rate = getattr(self.dp.privacy if self.dp else None, "sampling_rate", 1.0)
        if rate != 1.0:
            raise ConfigurationError(
                f"run() trains every client every round, so the accountant's sampling_rate "
                f"must be 1, got {rate}: sample clients yourself (Poisson, rate q) and call "
                "round()")
        model.load_state_dict(self._global)
        worker = copy.deepcopy(model)
        reports: list[RoundReport] = []
        with tqdm(total=rounds * len(ids), disable=not progress, unit="client",
                  desc=self.protocol, leave=False) as bar:
            for round_index in range(rounds):
                deltas: dict[int, tuple[np.ndarray, int]] = {}
                for cid in ids:
                    worker.load_state_dict(self._global)
                    count = local_train(worker, cid, round_index)
                    deltas[cid] = (self.layout.delta(worker.state_dict(), self._global), count)
                    bar.update(1)
                state, report = self.aggregate_deltas(
                    deltas, dropouts=dropouts(round_index) if dropouts else None)
                model.load_state_dict(state)
                reports.append(report)
                if on_round is not None:
                    on_round(report, model)
        return reports


def _check_private_settings(weighted: bool, **fixed: object) -> None:
    if weighted:
        raise ConfigurationError(
            "privacy needs uniform weights: pass weighted=False (the L2 clip bounds each "
            "client's whole contribution to the sum; a weight would multiply it past the clip)")
    check_left_unset(**fixed)
