"""The example's "training": a deterministic update per (partition, round).

A real app would train a model here. The example derives each client's update from its
partition id and the server round so that a test can recompute the exact weighted mean
over any set of clients. Values lie on a 1/64 grid, weights are integers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord

SHAPES: dict[str, tuple[int, ...]] = {"dense.kernel": (3, 2), "dense.bias": (2,)}


def client_update(partition: int, server_round: int) -> tuple[dict[str, np.ndarray], int, float]:
    """Arrays (float32 on a 1/64 grid in [-2, 2]), weight (num-examples) and a train loss."""
    rng = np.random.default_rng([partition, server_round])  # public example data
    arrays = {
        name: (np.round(rng.uniform(-2, 2, size=shape) * 64) / 64).astype(np.float32)
        for name, shape in SHAPES.items()
    }
    return arrays, 5 + 3 * partition, 0.25 * partition


def as_int(value: object) -> int:
    """A config value as an int (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


def as_float(value: object) -> float:
    """A config value as a float (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def as_count_or_fraction(value: object) -> int | float | None:
    """A run config degree / threshold: an int count, a float fraction, 0 for "not set"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a count or a fraction: {value!r}")
    return value or None


def initial_arrays() -> ArrayRecord:
    """The global model before round 1: zeros."""
    return ArrayRecord({n: Array(np.zeros(s, dtype=np.float32)) for n, s in SHAPES.items()})


def expected_mean(
    partitions: Iterable[int], server_round: int
) -> tuple[dict[str, np.ndarray], float, float]:
    """Weighted mean of the arrays and of the loss over ``partitions``, and the total weight."""
    total = {name: np.zeros(shape) for name, shape in SHAPES.items()}
    weight_sum = loss_sum = 0.0
    for partition in partitions:
        arrays, weight, loss = client_update(partition, server_round)
        for name in total:
            total[name] += weight * arrays[name].astype(np.float64)
        weight_sum += weight
        loss_sum += weight * loss
    return {n: v / weight_sum for n, v in total.items()}, weight_sum, loss_sum / weight_sum
