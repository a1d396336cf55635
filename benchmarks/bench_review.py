"""Server reconstruction under lying holders, against the honest run as its floor.

Run: ``.venv/bin/python -m benchmarks.bench_review [--quick] [--json PATH]``.

n clients of a complete graph (t = n/2 + 1) all survive; the server rebuilds every b_u from
the n revealed shares of each (``server_unmasking.reconstruct_all``). The floor is the same
call with every share honest (the bulk path only), measured side by side in this run.
Liars hold the lowest ids (they sit in the first t holders of every secret, the worst case)
and garble one limb of every share they reveal. Before the review's fix one such liar made
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
from secagg.protocols.bonawitz.bundles import self_mask_commitment
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import AdvertiseKeys
from secagg.protocols.bonawitz.server_unmasking import RevealedShares, reconstruct_all
from secagg.shamir import PRIME, pack_limb_shares, share_secrets, unpack_limb_shares


def _case(n: int) -> tuple[ProtocolConfig, dict[int, AdvertiseKeys], RevealedShares]:
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
        )
        for c in config.clients
    }
    revealed = RevealedShares()
    for owner in config.clients:
        shares = share_secrets([seeds[owner]], list(config.clients), config.threshold)
        # Revealed shares travel in compact form (limbs only), as clients send them.
        revealed.self_mask[owner] = {x: pack_limb_shares(s[0].values) for x, s in shares.items()}
    return config, adverts, revealed


def _garble(record: bytes) -> bytes:
    values = unpack_limb_shares(record).astype(np.int64)
    values[0] = (values[0] + 1 + secrets.randbelow(PRIME - 1)) % PRIME
    return pack_limb_shares(values)


def _timed(
    config: ProtocolConfig, adverts: dict[int, AdvertiseKeys], revealed: RevealedShares
) -> tuple[float, bool, int]:
    survivors = frozenset(config.clients)
    start = time.perf_counter()
    try:
        _, _, faults = reconstruct_all(config, adverts, revealed, survivors, frozenset())
    except ProtocolAbort:
        return time.perf_counter() - start, True, 0
    return time.perf_counter() - start, False, len(faults)


def run(n: int, liars: int, repeats: int) -> dict[str, Any]:
    config, adverts, honest = _case(n)
    lying = RevealedShares({o: dict(r) for o, r in honest.self_mask.items()})
    for records in lying.self_mask.values():
        for liar in range(1, liars + 1):
            records[liar] = _garble(records[liar])
    floors, times, aborted, blamed = [], [], False, 0
    for _ in range(repeats):  # interleaved: the floor and the case see the same machine load
        floors.append(_timed(config, adverts, honest)[0])
        seconds, aborted, blamed = _timed(config, adverts, lying)
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
