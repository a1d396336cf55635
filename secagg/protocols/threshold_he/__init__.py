"""Aggregation under threshold homomorphic encryption: threshold Paillier, CKKS.

The registry entries ``threshold-paillier`` and ``ckks`` live in
:mod:`secagg.protocols.threshold_he.spec`.
"""
