"""PyTorch integration: secure FedAvg over any registered protocol, state_dict flattening.

Requires the ``torch`` extra; the rest of :mod:`secagg` never imports torch. The parts:

* :mod:`.mean`: :func:`secure_weighted_mean`, one call for frameworks that already hold
  the client states (lists or dicts of state dicts or arrays, int or float weights),
  and the one code path both entry points share (optional clipping, per-entry fixed-point
  ranges, exact integer weights, a :class:`MeanReport`);
* :mod:`.fedavg`: :class:`SecureFedAvg`, FedAvg rounds over a model with any protocol
  (``secagg+``, ``bonawitz``, ``threshold-paillier``, ``ckks``, or ``plain``);
* :mod:`.state` and :mod:`.structure`: ``state_dict`` (and array structures) <-> flat
  float64 vectors;
* :mod:`.backends`: the protocol backends and the plain float64 baseline;
* :mod:`.privacy`: distributed DP and compression (``privacy=`` of both entry points,
  :class:`DPAggregation`; docs/privacy.md);
* :mod:`.digits`: the demo workload (digits data, Dirichlet split, small CNN, training);
* :mod:`.dlg` and :mod:`.server_view`: the gradient-inversion privacy demonstration.
"""

from __future__ import annotations

from secagg.integrations.torch.backends import (
    AggregateOutcome,
    AggregationBackend,
    ClientId,
    PlainBackend,
    SimulatedProtocolBackend,
)
from secagg.integrations.torch.fedavg import LocalTrain, RoundReport, SecureFedAvg
from secagg.integrations.torch.mean import (
    Clipping,
    ClippingWarning,
    MeanReport,
    secure_weighted_mean,
)
from secagg.integrations.torch.privacy import (
    DPAggregation,
    PrivacyBudgetWarning,
    PrivacyReport,
)
from secagg.integrations.torch.state import IntegerPolicy, StateDict, StateLayout, TensorSpec

__all__ = [
    "AggregateOutcome",
    "AggregationBackend",
    "ClientId",
    "Clipping",
    "ClippingWarning",
    "DPAggregation",
    "IntegerPolicy",
    "LocalTrain",
    "MeanReport",
    "PlainBackend",
    "PrivacyBudgetWarning",
    "PrivacyReport",
    "RoundReport",
    "SecureFedAvg",
    "SimulatedProtocolBackend",
    "StateDict",
    "StateLayout",
    "TensorSpec",
    "secure_weighted_mean",
]
