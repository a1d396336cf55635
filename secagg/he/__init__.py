"""Homomorphic-encryption backends: Paillier, threshold Paillier, CKKS.

* :mod:`secagg.he.slots`: carry-proof slot packing of Z_(2^b) vectors into big plaintexts;
* :mod:`secagg.he.paillier`: Paillier on gmpy2 (g = n + 1), phe interop, packed vectors,
  precomputed randomness;
* :mod:`secagg.he.threshold_paillier`: t-of-l threshold Paillier (Shoup / Damgard-Jurik),
  trusted dealer, proofs of correct decryption;
* :mod:`secagg.he.ckks`: CKKS through TenSEAL, single-key (clients hold the secret key, the
  aggregator only the public context).

Submodules are imported explicitly (``from secagg.he.paillier import ...``) so that using
Paillier does not load TenSEAL.
"""

from __future__ import annotations

__all__ = ["ckks", "paillier", "slots", "threshold_paillier"]
