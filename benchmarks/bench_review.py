"""Server reconstruction under lying holders, against the honest run as its floor.

Run: ``.venv/bin/python -m benchmarks.bench_review [--quick] [--json PATH]``.

n clients of a complete graph (t = n/2 + 1) all survive; the server rebuilds every b_u from
the n revealed shares of each (``server_unmasking.reconstruct_all``), every share checked
(wire version 3: a share comes with the key of the box it was dealt in, which the server
stored). The floor is the same call with every share honest (the bulk path only), measured
side by side in this run. Liars hold the lowest ids (they sit in the first t holders of
every secret, the worst case) and garble one limb of every share they reveal: the server
reads their boxes and blames them. Before the review's fix one such liar made
the server abort from n ~ 90 on (search budget exhausted) and cost O(n^2) slow
reconstructions below that; ``aborted`` says if the round could not finish.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np

from benchmarks.common import bench_parser, write_json
from secagg.errors import ProtocolAbort
from secagg.protocols.bonawitz.bundles import (
    SecretKind,
    mask_key_plaintext,
    seal_box,
    self_mask_commitment,
    self_mask_plaintext,
)
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import AdvertiseKeys, DealtBoxes
from secagg.protocols.bonawitz.server_check import BoxStore
from secagg.protocols.bonawitz.server_unmasking import RevealedShares, reconstruct_all
from secagg.shamir import PRIME, pack_limb_shares, share_secrets, unpack_limb_shares

Case = tuple[ProtocolConfig, dict[int, AdvertiseKeys], RevealedShares, BoxStore]


def _case(n: int) -> Case:
    config = ProtocolConfig.create(
        list(range(1, n + 1)), threshold=n // 2 + 1, bits=16, vector_length=1
    )
    seeds = {c: secrets.token_bytes(32) for c in config.clients}
    adverts = {
        c: AdvertiseKeys(
            c,
            0,
            config.session_id,
            bytes(32),
            bytes(32),
            self_mask_commitment(config.session_id, c, seeds[c]),
            bytes(64),
            bytes(64),
        )
        for c in config.clients
    }
    revealed, store = RevealedShares(), BoxStore()
    table = revealed.records[SecretKind.SELF_MASK]
    filler = mask_key_plaintext(np.zeros(13, dtype=np.int64))
    for owner in config.clients:
        shares = share_secrets([seeds[owner]], list(config.clients), config.threshold)
        boxes, table[owner] = [], {}
        for x, share in shares.items():
            key = secrets.token_bytes(16)
            plaintext = self_mask_plaintext(share[0].values, (0, 0))
            b_box = seal_box(key, plaintext, SecretKind.SELF_MASK)
            s_box = seal_box(secrets.token_bytes(16), filler, SecretKind.MASK_KEY)
            boxes.append(DealtBoxes(x, b_box, s_box))
            # Revealed shares travel in compact form (limbs only) with their box key.
            table[owner][x] = (pack_limb_shares(share[0].values), key)
        store.add(owner, boxes)
    return config, adverts, revealed, store


def _garble(record: bytes) -> bytes:
    values = unpack_limb_shares(record).astype(np.int64)
    values[0] = (values[0] + 1 + secrets.randbelow(PRIME - 1)) % PRIME
    return pack_limb_shares(values)


def _timed(case: Case) -> tuple[float, bool, int]:
    config, adverts, revealed, store = case
    survivors = frozenset(config.clients)
    start = time.perf_counter()
    try:
        publics = {c: bytes(32) for c in config.clients}  # no mask key is rebuilt here
        rebuilt = reconstruct_all(
            config, adverts, publics, revealed, store, survivors, frozenset()
        )
    except ProtocolAbort:
        return time.perf_counter() - start, True, 0
    return time.perf_counter() - start, False, len(rebuilt.faults)


def run(n: int, liars: int, repeats: int) -> dict[str, Any]:
    config, adverts, honest, store = _case(n)
    lying = RevealedShares()
    for owner, records in honest.records[SecretKind.SELF_MASK].items():
        lying.records[SecretKind.SELF_MASK][owner] = {
            x: (_garble(share), key) if x <= liars else (share, key)
            for x, (share, key) in records.items()
        }
    floors, times, aborted, blamed = [], [], False, 0
    for _ in range(repeats):  # interleaved: the floor and the case see the same machine load
        floors.append(_timed((config, adverts, honest, store))[0])
        seconds, aborted, blamed = _timed((config, adverts, lying, store))
        times.append(seconds)
    floor, seconds = float(np.median(floors)), float(np.median(times))
    return {
        "n": n,
        "t": config.threshold,
        "liars": liars,
        "seconds": seconds,
        "floor": floor,
        "ratio": seconds / floor,
        "aborted": aborted,
        "blamed": blamed,
    }


def main() -> None:
    parser = bench_parser(__doc__, "small sizes, seconds", "write the rows as JSON")
    args = parser.parse_args()
    sizes, repeats = ([60], 3) if args.quick else ([100, 300, 500], 5)
    rows = []
    for n in sizes:
        for liars in sorted({0, 1, 4, (n - (n // 2 + 1)) // 2}):
            rows.append(run(n, liars, repeats))
    print("absolute seconds depend on what else runs here: compare ratios")
    print(
        f"{'n':>5}{'t':>5}{'liars':>7}{'seconds':>10}{'floor':>9}{'ratio':>8}{'blamed':>8}  aborted"
    )
    for row in rows:
        print(
            f"{row['n']:>5}{row['t']:>5}{row['liars']:>7}{row['seconds']:>10.4f}"
            f"{row['floor']:>9.4f}{row['ratio']:>8.2f}{row['blamed']:>8}  {row['aborted']}"
        )
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
