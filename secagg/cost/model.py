"""What the cost layer knows of one protocol: a :class:`CostModel`, named by its registry spec.

Theory of operation
-------------------
A :class:`~secagg.protocols.registry.ProtocolSpec` names its cost model as a string,
``spec.cost_model = "module:attribute"`` (the protocols never import the layers above
them); :func:`secagg.cost.estimate.cost_model_of` resolves it to a :class:`CostModel`, a
frozen record of five functions. Everything protocol-specific that the cost front door
(``secagg cost``), the time prediction and the benchmark suite need goes through it, so none
of them branches on protocol names and adding a protocol means adding its spec and its
cost model:

* :attr:`CostModel.estimate`: the model before any run, with the defaults ``secagg simulate``
  uses, from protocol-independent :class:`CostParams`;
* :attr:`CostModel.of_run`: the model of a run that happened, from its configuration and
  :class:`RunFacts` (who dropped, what an observer saw on the wire);
* :attr:`CostModel.calibrate`: unit costs measured now for the model's operand shapes (from
  the run's own key material when a configuration is given);
* :attr:`CostModel.floor_work`: the work of the floor a benchmark puts beside each party
  (:class:`FloorWork`: PRG-mask expansions and key agreements);
* :attr:`CostModel.observer`: for models that need a figure only the run's messages carry
  (CKKS: SEAL's compressed ciphertext sizes), a factory of a :class:`MessageObserver`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from secagg.cost.timing import UnitCosts
from secagg.protocols.base import Message
from secagg.protocols.registry import SimulationParams

__all__ = [
    "CostModel",
    "CostParams",
    "FloorWork",
    "MessageObserver",
    "RunFacts",
]


@dataclass(frozen=True)
class CostParams:
    """The protocol-independent knobs of ``secagg cost`` (validated by
    :func:`secagg.cost.estimate.estimate` before a model sees them).

    ``dropout`` is a fraction of the clients (``round(dropout * clients)`` drop, as
    ``DropoutSchedule.from_rate``); ``degree`` is SecAgg+'s k or the HE committee size;
    ``active`` is the masking protocols' active mode (a model without one ignores it);
    ``key_bits`` threshold Paillier's key size, ``ciphertext_bytes`` CKKS's mean ciphertext
    size, ``decryption`` threshold Paillier's committee mode (None: the protocol's default).
    """

    clients: int
    dim: int
    bits: int = 32
    dropout: float = 0.0
    threshold: int | None = None
    degree: int | None = None
    active: bool = False
    corrupt: float = 0.05
    key_bits: int = 2048
    ciphertext_bytes: float | None = None
    decryption: str | None = None

    @property
    def dropouts(self) -> int:
        """How many clients drop: ``round(dropout * clients)``, halves up."""
        return math.floor(self.dropout * self.clients + 0.5)

    def simulation_params(self) -> SimulationParams:
        """The same setting as the simulator's generic parameters (so that ``secagg cost``
        and ``secagg simulate`` take their defaults from one source, the spec)."""
        return SimulationParams(
            clients=self.clients,
            dim=self.dim,
            bits=self.bits,
            threshold=self.threshold,
            degree=self.degree,
            dropout_fraction=self.dropout,
            corrupt_fraction=self.corrupt,
        )


class MessageObserver(Protocol):
    """Sees every message a transport decodes (``see``), then says what the model takes
    from them (``figures``, keyword arguments of the model) and what a report shows
    (``record``, JSON-ready)."""

    def see(self, message: Message, sender: int) -> None: ...

    def figures(self) -> dict[str, float]: ...

    def record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunFacts:
    """What a finished run tells its cost model: the clients the transport dropped and the
    observer that watched its messages (None when the model has none)."""

    dropped: frozenset[int]
    observer: MessageObserver | None = None


@dataclass(frozen=True)
class FloorWork:
    """The least work of one party's main step for a PRG-mask scheme: ``masks`` keystream
    expansions of the model's vector length (each plus one vector add) and ``agreements``
    X25519 + HKDF key agreements."""

    masks: float
    agreements: float = 0.0


@dataclass(frozen=True)
class CostModel:
    """One protocol's cost model, as the cost layer, the suite and the CLI reach it.

    ``estimate(params)``: the model with the simulator's defaults (JSON-ready dict, the
    shape of :func:`~secagg.cost.bonawitz.bonawitz_costs`); raises ConfigurationError for
    parameters the model refuses.
    ``of_run(config, facts)``: the model of a finished run of the spec's ``config``.
    ``calibrate(model, config)``: unit costs for ``model``'s operations, measured now; with
    ``config`` None a throwaway key of the model's size and vector lengths capped for a
    quick answer (``secagg cost --calibrate``), else the run's own key and full length.
    ``floor_work(model)``: ``{"client": FloorWork, "server": FloorWork}``.
    ``observer``: a factory of a fresh :class:`MessageObserver` per run, or None.
    """

    estimate: Callable[[CostParams], dict[str, Any]]
    of_run: Callable[[Any, RunFacts], dict[str, Any]]
    calibrate: Callable[[Mapping[str, Any], Any], UnitCosts]
    floor_work: Callable[[Mapping[str, Any]], dict[str, FloorWork]]
    observer: Callable[[], MessageObserver] | None = None
