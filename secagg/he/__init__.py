"""Homomorphic-encryption backends: Paillier, threshold Paillier, CKKS."""
