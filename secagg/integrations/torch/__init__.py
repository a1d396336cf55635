"""PyTorch integration: state_dict flattening and secure FedAvg.

Requires the ``torch`` extra; the rest of :mod:`secagg` never imports torch.
"""

from __future__ import annotations

from secagg.integrations.torch.state import IntegerPolicy, StateDict, StateLayout, TensorSpec

__all__ = ["IntegerPolicy", "StateDict", "StateLayout", "TensorSpec"]
