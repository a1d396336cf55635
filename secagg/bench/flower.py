"""Flower's SecAgg+ (flwr) driven directly, measured beside ours with the same n, k, t, m.

Everything calls flwr's own code in flwr's order, with the same parameters and modulus
2^32: the client's masking step is flwr's ``_collect_masked_vectors``
(:func:`flower_client_masking`); the server's unmasking is the body of flwr's
``unmask_stage`` once the shares are in (:func:`flower_timed_unmasking`), on the complete
graph (:func:`flower_server_unmasking`) or, for a sparse graph, on a k-regular ring where
each client and its k nearest ids hold its shares (:func:`flower_sparse_unmasking`):
combine each client's shares from its surviving holders (PyCryptodome Shamir, flwr's
``combine_shares``), regenerate the self mask of a survivor or the pairwise masks of a
dropped client with each neighbour (flwr's ``pseudo_rand_gen``), then reduce mod 2^32.

flwr is optional (extra ``flower``): :func:`flower_available` says whether it imports and
:func:`flower_hint` how to add it.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "FLOWER_HINT",
    "flower_available",
    "flower_client",
    "flower_client_masking",
    "flower_hint",
    "flower_server",
    "flower_server_unmasking",
    "flower_sparse_unmasking",
    "flower_timed_unmasking",
]

FLOWER_HINT = (
    "flwr is not installed, so the Flower side-by-side is left out; "
    "add it with: pip install 'secagg[flower]'"
)


def flower_available() -> bool:
    """True when flwr imports (the Flower side-by-side can run)."""
    try:
        importlib.import_module("flwr")
    except ImportError:
        return False
    return True


def flower_hint() -> str | None:
    """:data:`FLOWER_HINT` when flwr is missing, else None."""
    return None if flower_available() else FLOWER_HINT


FLOWER_MOD_RANGE = 2**32
FLOWER_TARGET_RANGE = 4194304  # SecAggPlusWorkflow defaults
FLOWER_CLIPPING_RANGE = 8.0
FLOWER_MAX_WEIGHT = 1000.0


def flower_client_masking(k: int, length: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds of flwr's client stage 2 (``_collect_masked_vectors``:
    decrypt k share bundles, quantize, k + 1 masks, mod) for one client with k neighbours."""
    # The package re-exports a function under the module's name: import the module itself.
    mod = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")
    from flwr.common import ndarrays_to_parameters
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import (
        encrypt,
        generate_shared_key,
    )
    from flwr.common.secure_aggregation.secaggplus_constants import Key
    from flwr.common.secure_aggregation.secaggplus_utils import share_keys_plaintext_concat
    from flwr.supercore.primitives.asymmetric import (
        generate_key_pairs,
        private_key_to_bytes,
        public_key_to_bytes,
    )

    own = 1
    keys = {nid: (generate_key_pairs(), generate_key_pairs()) for nid in range(1, k + 2)}
    state = mod.SecAggPlusState()
    state.nid = own
    state.threshold = max(2, (k + 1) // 2 + 1)
    state.clipping_range = FLOWER_CLIPPING_RANGE
    state.target_range = FLOWER_TARGET_RANGE
    state.mod_range = FLOWER_MOD_RANGE
    state.max_weight = FLOWER_MAX_WEIGHT
    (sk1, _), (sk2, _) = keys[own]
    state.sk1 = private_key_to_bytes(sk1)
    state.sk2 = private_key_to_bytes(sk2)
    state.rd_seed = os.urandom(32)
    state.public_keys_dict = {
        nid: (public_key_to_bytes(p1[1]), public_key_to_bytes(p2[1]))
        for nid, (p1, p2) in keys.items()
    }
    state.rd_seed_share_dict = {}
    state.sk1_share_dict = {}
    state.ss2_dict = {}
    srcs, ciphertexts = [], []
    for nid, (_, (peer_sk2, _)) in keys.items():
        if nid == own:
            continue
        shared = generate_shared_key(sk2, keys[nid][1][1])
        state.ss2_dict[nid] = shared
        # Share sizes as flwr makes them: 32-byte seed -> 52 bytes, PEM key -> 4 + 16 * 12.
        plain = share_keys_plaintext_concat(nid, own, os.urandom(52), os.urandom(196))
        ciphertexts.append(encrypt(generate_shared_key(peer_sk2, keys[own][1][1]), plain))
        srcs.append(nid)
    configs: Any = {Key.CIPHERTEXT_LIST: ciphertexts, Key.SOURCE_LIST: srcs}
    rng = np.random.default_rng(0)  # not-secret: benchmark data
    params = ndarrays_to_parameters([rng.uniform(-1, 1, length).astype(np.float32)])
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        mod._collect_masked_vectors(state, configs, 1, params)
        best = min(best, time.perf_counter() - start)
    return best


def flower_timed_unmasking(
    collected: dict[int, list[bytes]],
    neighbours: Mapping[int, Sequence[int]],
    public: Mapping[int, bytes],
    dead: set[int],
    length: int,
) -> float:
    """Seconds of flwr's unmasking loop (the body of ``unmask_stage`` once the shares are in):
    combine each client's ``collected`` shares; a survivor's secret seeds its self mask, a
    dead client's secret is its key, agreed with each of its ``neighbours`` (itself skipped)
    for the pairwise masks; then mod. Calls flwr's own primitives in flwr's order, on a
    random masked vector of ``length`` made before the clock starts."""
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.ndarrays_arithmetic import (
        get_parameters_shape,
        parameters_addition,
        parameters_mod,
        parameters_subtraction,
    )
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

    rng = np.random.default_rng(1)  # not-secret: benchmark data
    masked = [rng.integers(0, FLOWER_MOD_RANGE, length, dtype=np.int64)]
    start = time.perf_counter()
    for nid, share_list in collected.items():
        secret = combine_shares(share_list)
        if nid not in dead:
            mask = pseudo_rand_gen(secret, FLOWER_MOD_RANGE, get_parameters_shape(masked))
            masked = parameters_subtraction(masked, mask)
            continue
        for neighbour in neighbours[nid]:
            if neighbour == nid:
                continue
            shared = generate_shared_key(
                bytes_to_private_key(secret), bytes_to_public_key(public[neighbour])
            )
            mask = pseudo_rand_gen(shared, FLOWER_MOD_RANGE, get_parameters_shape(masked))
            if nid > neighbour:
                masked = parameters_addition(masked, mask)
            else:
                masked = parameters_subtraction(masked, mask)
    parameters_mod(masked, FLOWER_MOD_RANGE)
    return time.perf_counter() - start


def flower_server_unmasking(n: int, length: int, dropouts: int) -> float:
    """Seconds of flwr's server unmasking (the body of ``unmask_stage`` after the shares are
    collected), complete graph of n clients, ``dropouts`` clients dead after sharing keys:
    combine every survivor's seed shares and every dead client's key shares, regenerate
    the masks, mod. Calls flwr's own primitives in flwr's order."""
    from flwr.common.secure_aggregation.crypto.shamir import create_shares
    from flwr.supercore.primitives.asymmetric import (
        generate_key_pairs,
        private_key_to_bytes,
        public_key_to_bytes,
    )

    threshold = n // 2 + 1
    nids = list(range(1, n + 1))
    dead = set(nids[-dropouts:]) if dropouts else set()
    active = [nid for nid in nids if nid not in dead]
    sk1 = {nid: generate_key_pairs() for nid in nids}
    pk1 = {nid: public_key_to_bytes(pair[1]) for nid, pair in sk1.items()}
    collected: dict[int, list[bytes]] = {}
    for nid in nids:
        secret = os.urandom(32) if nid in active else private_key_to_bytes(sk1[nid][0])
        # Every survivor returns its share of this secret, as flwr's clients do.
        collected[nid] = create_shares(secret, threshold, n)[: len(active)]
    return flower_timed_unmasking(collected, dict.fromkeys(nids, nids), pk1, dead, length)


# --- the suite's entry points ----------------------------------------------------------------


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
    (:func:`flower_server_unmasking`) when ``k = n - 1``, else the sparse ring."""
    if k >= n - 1:
        return flower_server_unmasking(n, m, dropouts)
    return flower_sparse_unmasking(n, k, threshold, m, dropouts)
