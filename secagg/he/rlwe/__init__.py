"""Ring-LWE arithmetic in NumPy: the layer under :mod:`secagg.he.threshold_ckks`.

* :mod:`secagg.he.rlwe.primes`: the NTT-friendly 32-bit primes and roots of unity,
  generated deterministically;
* :mod:`secagg.he.rlwe.ntt`: the vectorized, batched negacyclic NTT;
* :mod:`secagg.he.rlwe.ring`: ``Z_Q[X]/(X^N + 1)`` in RNS form, scaling to ``2^k``;
* :mod:`secagg.he.rlwe.sampling`: uniform, ternary, binomial and smudging samplers drawing
  every bit from the AES-CTR PRG;
* :mod:`secagg.he.rlwe.params`: parameter sets checked against the HE security standard;
* :mod:`secagg.he.rlwe.noise`: a rigorous tail bound of aggregated encryption noise;
* :mod:`secagg.he.rlwe.wire`: strict bit-packed wire form of residue arrays.
"""

from __future__ import annotations

from secagg.he.rlwe.params import HE_STANDARD_MAX_LOG_Q, RlweParameters
from secagg.he.rlwe.ring import RnsRing
from secagg.he.rlwe.sampling import Sampler

__all__ = ["HE_STANDARD_MAX_LOG_Q", "RlweParameters", "RnsRing", "Sampler"]
