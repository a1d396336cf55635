"""Plans shared by the dp tests (solving one takes about a second, so each is built once)."""

from __future__ import annotations

import functools

from secagg.dp import Compression, DistributedDP, DPPlan

SCHEDULE = dict(epsilon=5.0, delta=1e-5, rounds=10, sampling_rate=0.1, clip=1.0)
DIM = 1000
CLIENTS = 20


def config(mechanism: str = "skellam", **extra: object) -> DistributedDP:
    settings: dict[str, object] = {**SCHEDULE, "bits": 16, "expected_clients": CLIENTS}
    settings.update(extra)
    return DistributedDP(mechanism=mechanism, **settings)  # type: ignore[arg-type]


@functools.cache
def private_plan(mechanism: str = "skellam", rotation: str = "hadamard") -> DPPlan:
    return config(mechanism, rotation=rotation).plan(DIM)


@functools.cache
def floor_plan() -> DPPlan:
    return config("skellam", min_clients=10).plan(DIM)


@functools.cache
def compression_plan(rotation: str = "hadamard") -> DPPlan:
    return Compression(bits=16, clip=1.0, expected_clients=CLIENTS, rotation=rotation).plan(DIM)
