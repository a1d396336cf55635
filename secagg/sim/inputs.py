"""Seeded test inputs for simulations and benchmarks (public, reproducible, not secret)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from secagg.ring import dtype_for_bits

__all__ = ["seeded_inputs"]


def seeded_inputs(seed: int, dim: int, bits: int) -> Callable[[int], np.ndarray]:
    """A deterministic factory: client id -> uniform vector of ``dim`` values in [0, 2^bits).

    Each client's vector depends only on (seed, client id), so it can be regenerated lazily.
    """
    dtype = dtype_for_bits(bits)

    def make(client_id: int) -> np.ndarray:
        rng = np.random.default_rng([seed, client_id])  # not-secret: simulated test inputs
        return rng.integers(0, 1 << bits, size=dim, dtype=dtype)

    return make
