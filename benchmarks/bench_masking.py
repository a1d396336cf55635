"""Mask accumulation (99 pairwise seeds + 1 self seed) against the AES-CTR + add floor.

The floor is measured in the same run, interleaved with secagg's calls: per seed, raw
AES-128-CTR keystream ``update_into`` a reused full-length buffer, viewed with
``np.frombuffer``, plus one ``np.add`` into a uint32 accumulator. ``% of floor`` is the
floor's time divided by secagg's (100 % = as fast as the floor).

Run: ``python -m benchmarks.bench_masking [--quick] [--json PATH]``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from functools import partial

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from benchmarks.common import bench_parser, time_once, write_json
from secagg.masking import apply_masks, mask_input
from secagg.prg import domain

SESSION = b"bench-session-01"
PEERS = 99
BITS = 32
# Flower SecAgg+ client masking step at k = 99 (docs: /work/shared/ANCHORS.md), in ms.
FLOWER_MS = {100_000: 83.0, 1_000_000: 324.0}


def floor_accumulate(acc: np.ndarray, keys: list[bytes], zeros: bytes, buf: bytearray) -> None:
    """The floor: per seed, keystream into a reused buffer, then one add into ``acc``."""
    view = np.frombuffer(buf, dtype=np.uint32)
    for key in keys:
        encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        encryptor.update_into(zeros, buf)
        np.add(acc, view, out=acc)


def run_size(m: int, repeats: int, thread_counts: list[int | None]) -> list[dict[str, object]]:
    # not-secret: benchmark inputs only; the library draws its own secrets from os.urandom.
    seeds = [os.urandom(32) for _ in range(PEERS + 1)]
    raw_keys = [os.urandom(16) for _ in range(PEERS + 1)]
    x = np.arange(m, dtype=np.uint32)
    # Client 50 among 100: 49 peers below it (masks subtracted), 50 above (added).
    peers = [peer for peer in range(1, PEERS + 2) if peer != 50]
    pair_seeds = {peer: seeds[i] for i, peer in enumerate(peers, start=1)}
    acc = np.zeros(m, dtype=np.uint32)
    zeros = bytes(4 * m)
    buf = bytearray(4 * m)
    label = domain(SESSION, "pairwise")

    cases: dict[str, Callable[[], object]] = {
        "floor (raw AES-CTR + add)": lambda: floor_accumulate(acc, raw_keys, zeros, buf),
    }
    for threads in thread_counts:
        tag = "auto" if threads is None else str(threads)
        cases[f"apply_masks threads={tag}"] = partial(
            apply_masks,
            acc,
            bits=BITS,
            domain=label,
            add_seeds=seeds[:50],
            sub_seeds=seeds[50:],
            threads=threads,
        )
        cases[f"mask_input threads={tag}"] = partial(
            mask_input,
            x,
            bits=BITS,
            own_id=50,
            self_seed=seeds[0],
            pair_seeds=pair_seeds,
            session_id=SESSION,
            threads=threads,
        )
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up: page in buffers, start pool threads
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():  # interleaved so drift hits every case alike
            samples[name].append(time_once(fn))
    floor = statistics.median(samples["floor (raw AES-CTR + add)"])
    floor_min = min(samples["floor (raw AES-CTR + add)"])
    rows: list[dict[str, object]] = []
    for name, times in samples.items():
        median = statistics.median(times)
        rows.append(
            {
                "m": m,
                "seeds": PEERS + 1,
                "case": name,
                "median_ms": median * 1e3,
                "min_ms": min(times) * 1e3,
                "elements_x_seeds_per_s": m * (PEERS + 1) / median,
                "pct_of_floor": 100.0 * floor / median,
                # On a shared machine the minimum is the run least disturbed by neighbours.
                "pct_of_floor_min": 100.0 * floor_min / min(times),
                "flower_ms": FLOWER_MS.get(m),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "m = 100K only, few repeats", "also write the rows as JSON")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    # Many short runs at m = 100K (~5 ms each) so neighbours' load averages out.
    repeats = {100_000: 11 if args.quick else 41, 1_000_000: 11}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    thread_counts: list[int | None] = [*sorted({1, 2, max(1, cpus or 1)}), None]
    rows: list[dict[str, object]] = []
    for m in sizes:
        rows += run_size(m, repeats[m], thread_counts)
    print(f"mask accumulation, {PEERS} pairwise + 1 self seed, bits={BITS}, cpus={cpus}")
    header = f"{'m':>9} {'case':<28} {'median ms':>10} {'min ms':>8} {'G el*seed/s':>12}"
    print(header + f" {'% floor':>8} {'(min)':>6} {'Flower ms':>10}")
    for row in rows:
        flower = row["flower_ms"]
        print(
            f"{row['m']:>9} {row['case']:<28} {row['median_ms']:>10.2f} {row['min_ms']:>8.2f}"
            f" {float(row['elements_x_seeds_per_s']) / 1e9:>12.2f}"  # type: ignore[arg-type]
            f" {row['pct_of_floor']:>7.0f}% {row['pct_of_floor_min']:>5.0f}%"
            f" {'' if flower is None else flower:>10}"
        )
    if args.json:
        write_json(args.json, {"benchmark": "masking", "rows": rows})


if __name__ == "__main__":
    main()
