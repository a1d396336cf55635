"""secagg: secure aggregation for federated learning.

The server learns only the sum of the clients' updates. Layers, from the bottom:

* root modules: primitives (Shamir sharing, key agreement and channels, PRG,
  masking, fixed-point encoding, bit packing);
* :mod:`secagg.he`: Paillier, threshold Paillier and CKKS backends;
* :mod:`secagg.protocols`: sans-I/O protocol state machines and a simulator;
* :mod:`secagg.integrations`: PyTorch and Flower adapters.
"""

from __future__ import annotations

__version__ = "0.1.0"
