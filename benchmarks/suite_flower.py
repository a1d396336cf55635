"""Flower's SecAgg+ (flwr) measured beside ours, with the same n, k, t, m and dropouts.

The client's masking step is flwr's own ``_collect_masked_vectors`` and the complete-graph
server unmasking flwr's primitives in flwr's order, both as
:mod:`benchmarks.bench_protocol` drives them (reused, not rewritten). For a sparse graph
:func:`flower_sparse_unmasking` follows flwr's ``unmask_stage`` the same way on a k-regular
ring (each client and its k nearest ids hold its shares): combine each client's shares
from its surviving holders (PyCryptodome Shamir, flwr's ``combine_shares``), regenerate the
self mask of a survivor or the pairwise masks of a dropped client with each neighbour
(flwr's ``pseudo_rand_gen``), then reduce mod 2^32.
"""

from __future__ import annotations

import os

from benchmarks.bench_protocol import (
    flower_client_masking,
    flower_server_unmasking,
    flower_timed_unmasking,
)

__all__ = ["flower_client", "flower_server", "flower_sparse_unmasking"]


def flower_client(k: int, m: int, repeat: int = 2) -> float:
    """Best-of-``repeat`` seconds of flwr's client masking step with ``k`` neighbours."""
    return flower_client_masking(k, m, repeat=repeat)


def _ring(n: int, k: int) -> dict[int, list[int]]:
    """Holders of each client's shares: itself and its k nearest ids on a ring."""
    half = k // 2
    return {
        nid: sorted({(nid - 1 + j) % n + 1 for j in range(-half, half + 1)})
        for nid in range(1, n + 1)
    }


def flower_sparse_unmasking(n: int, k: int, threshold: int, m: int, dropouts: int) -> float:
    """Seconds of flwr's server unmasking on a k-regular ring (k even), ``dropouts``
    clients dead after sharing keys (evenly spread ids), shares t-of-(k + 1). Raises
    ValueError when a client keeps fewer than t surviving holders."""
    from flwr.common.secure_aggregation.crypto.shamir import create_shares
    from flwr.supercore.primitives.asymmetric import (
        generate_key_pairs,
        private_key_to_bytes,
        public_key_to_bytes,
    )

    holders = _ring(n, k)
    # Spread the dead over the ring (ours drop a seeded random set): a contiguous block
    # would leave some neighbourhood with fewer than t survivors.
    dead = {1 + (i * n) // dropouts for i in range(dropouts)} if dropouts else set()
    short = [v for v, group in holders.items() if len(set(group) - dead) < threshold]
    if short:
        raise ValueError(f"clients {short[:5]} keep fewer than t = {threshold} share holders")
    pairs = {nid: generate_key_pairs() for nid in holders}
    public = {nid: public_key_to_bytes(pair[1]) for nid, pair in pairs.items()}
    collected: dict[int, list[bytes]] = {}
    for nid, group in holders.items():
        secret = os.urandom(32) if nid not in dead else private_key_to_bytes(pairs[nid][0])
        shares = create_shares(secret, threshold, len(group))
        collected[nid] = [s for s, h in zip(shares, group, strict=True) if h not in dead]
    return flower_timed_unmasking(collected, holders, public, dead, m)


def flower_server(n: int, k: int, threshold: int, m: int, dropouts: int) -> float:
    """Flower's server unmasking for our setting: flwr's complete-graph unmasking
    (``bench_protocol``) when ``k = n - 1``, else the sparse ring."""
    if k >= n - 1:
        return flower_server_unmasking(n, m, dropouts)
    return flower_sparse_unmasking(n, k, threshold, m, dropouts)
