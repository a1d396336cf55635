"""Secure FedAvg in a few lines: keep your model, data and local training; swap the sum.

::

    agg = SecureFedAvg(model, protocol="secagg+", clip=5.0, max_examples=500)
    new_state, report = agg.round({cid: (local_state, num_examples), ...})
    model.load_state_dict(new_state)

or let :meth:`SecureFedAvg.run` drive the rounds with your ``local_train(model, cid, rnd)``.

Each round, for every client: the update is the delta of its local state against the global
model (:class:`~secagg.integrations.torch.state.StateLayout`); the floating part is clipped
to L2 norm ``clip`` (so every element is within ``[-clip, clip]`` and the fixed-point
encoding never saturates); the backend then encodes ``num_examples * delta`` with
``num_examples`` as one extra element and sums under the chosen protocol. The server
decodes only the weighted mean and the total number of examples: no client's count, no
client's update. The new global state is the old one moved by that mean.

Where it runs: every round is one fresh session of the protocol (new keys, new session id),
with the clients and the server simulated in this process by
:func:`secagg.sim.simulator.simulate`, every message really encoded and decoded. It
is the tool for research loops and demos; a deployment runs the same client-side steps
(clip, :meth:`FixedPoint.encode_weighted`, the protocol's client) on the devices, e.g.
through the Flower integration.

Integer buffers (BatchNorm's ``num_batches_tracked``): with ``integer_buffers="keep"`` (the
default) they stay as in the global model, since they only count steps and BatchNorm with a
momentum never reads them; with ``"average"`` their deltas, bounded by
``integer_step_bound`` steps, ride in the masked vector rescaled into ``[-clip, clip]``, and
the global counter advances by their weighted mean, rounded.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from secagg.errors import ConfigurationError
from secagg.integrations.torch.backends import (
    AggregateOutcome,
    AggregationBackend,
    Dropouts,
    PlainBackend,
    SimulatedProtocolBackend,
)
from secagg.integrations.torch.state import IntegerPolicy, StateDict, StateLayout
from secagg.sim.ledger import CostLedger

__all__ = ["LocalTrain", "RoundReport", "SecureFedAvg"]

LocalTrain = Callable[[nn.Module, int, int], int]
"""``local_train(model, client_id, round_index) -> num_examples``: train ``model`` (already
loaded with the global state) in place on the client's data."""

PLAIN = "plain"


@dataclass(frozen=True)
class RoundReport:
    """What one round did and cost, as the server and the operator may know it.

    ``total_examples`` is the decoded sum of the included clients' example counts;
    ``seconds`` the wall time of the aggregation (encoding, protocol, decoding);
    ``bytes_up``/``bytes_down`` the traffic over all parties; ``costs`` the per-protocol-round,
    per-party ledger (``None`` for the plain baseline).
    """

    round_index: int
    protocol: str
    included: frozenset[int]
    excluded: Mapping[int, str]
    total_examples: float
    seconds: float
    bytes_up: int
    bytes_down: int
    costs: CostLedger | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (with the cost ledger's summary when there is one)."""
        return {
            "round": self.round_index,
            "protocol": self.protocol,
            "included": sorted(self.included),
            "excluded": {str(c): r for c, r in sorted(self.excluded.items())},
            "total_examples": self.total_examples,
            "seconds": self.seconds,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "costs": self.costs.to_dict() if self.costs is not None else None,
        }


def _positive_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _backend(protocol: str | AggregationBackend, bits: int,
             options: Mapping[str, object]) -> AggregationBackend:
    if not isinstance(protocol, str):
        return protocol
    if protocol == PLAIN:
        return PlainBackend()
    return SimulatedProtocolBackend(protocol, bits=bits, **options)  # type: ignore[arg-type]


class SecureFedAvg:
    """FedAvg whose server learns only the weighted mean of the clients' updates.

    ``protocol`` is a protocol name of :mod:`secagg.protocols.registry` (``"bonawitz"``,
    ``"secagg+"``, ``"threshold-paillier"``, ``"ckks"``, or any protocol registered there),
    ``"plain"`` for the insecure float64
    baseline with the same clipping and weighting, or an :class:`AggregationBackend`.
    ``clip`` bounds each update's L2 norm; ``max_examples`` bounds each client's example
    count (the weight); ``bits`` is the modulus 2^bits of the secure sum;
    ``protocol_options`` go to :class:`SimulatedProtocolBackend` (threshold, degree,
    dropout_fraction, corrupt_fraction).

    Raises:
        ConfigurationError: bad bounds, an unknown protocol or protocol option.
    """

    def __init__(self, model: nn.Module | StateDict, *, protocol: str | AggregationBackend
                 = "secagg+", clip: float = 10.0, max_examples: int = 10_000, bits: int = 32,
                 integer_buffers: IntegerPolicy = "keep", integer_step_bound: float = 1024.0,
                 protocol_options: Mapping[str, object] | None = None) -> None:
        state = model.state_dict() if isinstance(model, nn.Module) else model
        if isinstance(max_examples, bool) or not isinstance(max_examples, int) \
                or max_examples < 1:
            raise ConfigurationError("max_examples must be a positive int")
        try:
            self.backend = _backend(protocol, bits, protocol_options or {})
        except TypeError as exc:  # an option the backend does not take
            raise ConfigurationError(f"bad protocol_options: {exc}") from None
        self.layout = StateLayout.from_state(state, integer_buffers=integer_buffers)
        self.clip = _positive_finite("clip", clip)
        self.max_examples = max_examples
        self.integer_step_bound = _positive_finite("integer_step_bound", integer_step_bound)
        self._integer_mask = self.layout.integer_mask
        self._scratch = np.empty(self.layout.size, dtype=np.float64)
        self._global = {k: v.detach().clone() for k, v in state.items()}
        self.rounds_done = 0

    @property
    def protocol(self) -> str:
        """The backend's name."""
        return self.backend.name

    @property
    def global_state(self) -> dict[str, torch.Tensor]:
        """A copy of the current global model state."""
        return {k: v.clone() for k, v in self._global.items()}

    def __repr__(self) -> str:
        return (f"SecureFedAvg(protocol={self.protocol!r}, parameters={self.layout.size}, "
                f"clip={self.clip}, max_examples={self.max_examples}, "
                f"rounds_done={self.rounds_done})")

    def _prepared(self, delta: np.ndarray) -> np.ndarray | None:
        """The client-side transform: clip the float part to L2 norm ``clip``, rescale the
        integer part into [-clip, clip]. ``None`` for a non-finite update (the client sits
        the round out rather than poison the sum)."""
        if not np.all(np.isfinite(delta)):
            return None
        ints = self._integer_mask
        floats = delta[~ints] if ints.any() else delta
        # Not np.linalg.norm: its BLAS dot wakes a thread pool and costs 10x more than the
        # squaring on a loaded machine. The scratch buffer is reused across clients.
        squares = self._scratch[:floats.size]
        np.multiply(floats, floats, out=squares)
        norm = math.sqrt(float(squares.sum()))
        if norm > self.clip:
            floats *= self.clip / norm
        if ints.any():
            delta[~ints] = floats
            bound = self.integer_step_bound
            delta[ints] = np.clip(delta[ints], -bound, bound) * (self.clip / bound)
        return delta

    def _check_examples(self, cid: object, count: object) -> float:
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ConfigurationError(f"client ids are ints, got {cid!r}")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) \
                or not 1 <= count <= self.max_examples:
            raise ConfigurationError(f"client {cid}: num_examples must be an int in "
                                     f"[1, {self.max_examples}], got {count!r}")
        return float(count)

    def aggregate_deltas(self, deltas: Mapping[int, tuple[np.ndarray, int]], *,
                         dropouts: Dropouts | None = None
                         ) -> tuple[dict[str, torch.Tensor], RoundReport]:
        """One round from flat deltas (``layout.delta(local, global_state)``).

        The deltas are modified in place (clipped). Returns the new global state, which
        also becomes this object's global state, and the round's report.

        Raises:
            ConfigurationError: a delta of the wrong shape, a bad client id or count.
            ProtocolAbort: fewer than two clients remain, or the protocol aborts (the
                global state is then unchanged).
        """
        updates: dict[int, np.ndarray] = {}
        weights: dict[int, float] = {}
        refused: dict[int, str] = {}
        for cid, (delta, count) in deltas.items():
            weight = self._check_examples(cid, count)
            if not isinstance(delta, np.ndarray) or delta.shape != (self.layout.size,):
                raise ConfigurationError(f"client {cid}: delta must be an array of shape "
                                         f"({self.layout.size},)")
            prepared = self._prepared(delta.astype(np.float64, copy=False))
            if prepared is None:
                refused[cid] = "non-finite update"
                continue
            updates[cid], weights[cid] = prepared, weight
        outcome = self.backend.aggregate(updates, weights, clip=self.clip,
                                         max_weight=float(self.max_examples), dropouts=dropouts)
        return self._apply(outcome, refused)

    def _apply(self, outcome: AggregateOutcome, refused: Mapping[int, str]
               ) -> tuple[dict[str, torch.Tensor], RoundReport]:
        mean = outcome.mean
        if self._integer_mask.any():
            mean[self._integer_mask] *= self.integer_step_bound / self.clip
        self._global = self.layout.apply_delta(self._global, mean)
        report = RoundReport(
            round_index=self.rounds_done, protocol=self.protocol, included=outcome.included,
            excluded={**refused, **outcome.excluded}, total_examples=outcome.total_weight,
            seconds=outcome.seconds, bytes_up=outcome.bytes_up, bytes_down=outcome.bytes_down,
            costs=outcome.costs)
        self.rounds_done += 1
        return self.global_state, report

    def round(self, results: Mapping[int, tuple[StateDict, int]], *,
              dropouts: Dropouts | None = None) -> tuple[dict[str, torch.Tensor], RoundReport]:
        """One round from the clients' local states: ``{client_id: (state_dict, examples)}``.

        ``dropouts`` maps a protocol round name (``secagg.protocols.base.ROUND_NAMES``) to
        the clients that vanish before sending in it. Returns the new global state and the
        round's report (who was left out and why, costs).

        Raises:
            ConfigurationError: a state that does not match the model, a bad id or count.
            ProtocolAbort: fewer than two clients remain, or the protocol aborts.
        """
        deltas = {cid: (self.layout.delta(state, self._global), count)
                  for cid, (state, count) in results.items()}
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
