"""PyTorch integration: secure FedAvg over any registered protocol, state_dict flattening.

Requires the ``torch`` extra; the rest of :mod:`secagg` never imports torch. The parts:

* :mod:`.state`: :class:`StateLayout`, a ``state_dict`` <-> flat float64 vector, with
  deltas against the global model;
* :mod:`.fedavg`: :class:`SecureFedAvg`, clip + fixed-point weighted encoding + a protocol
  (``bonawitz``, ``secagg+``, ``threshold-paillier``, ``ckks``, or ``plain``) per round;
* :mod:`.backends`: the protocol backends and the plain float64 baseline;
* :mod:`.digits`: the demo workload (digits data, Dirichlet split, small CNN, training);
* :mod:`.dlg` and :mod:`.server_view`: the gradient-inversion privacy demonstration.
"""

from __future__ import annotations

from secagg.integrations.torch.backends import (
    AggregateOutcome,
    AggregationBackend,
    PlainBackend,
    SimulatedProtocolBackend,
)
from secagg.integrations.torch.fedavg import LocalTrain, RoundReport, SecureFedAvg
from secagg.integrations.torch.state import IntegerPolicy, StateDict, StateLayout, TensorSpec

__all__ = [
    "AggregateOutcome",
    "AggregationBackend",
    "IntegerPolicy",
    "LocalTrain",
    "PlainBackend",
    "RoundReport",
    "SecureFedAvg",
    "SimulatedProtocolBackend",
    "StateDict",
    "StateLayout",
    "TensorSpec",
]
