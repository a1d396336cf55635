"""Distributed DP: client encoding against its floor, noise over the central Gaussian, wraps.

Three measurements, each in one run:

1. Client encoding (rotate, clip, scale, conditional rounding, exact noise, mod 2^b) at
   d = 2^20 against the same-run floor: one NumPy Hadamard transform of that length (the
   library's transform) plus the AES-CTR keystream for the noise's random bits (one 64-bit
   word per coordinate). Interleaved, best of N. Run it on one core:
   ``taskset -c 1 python -m benchmarks.bench_dp``.
2. The noise multiplier (summed noise std over the clip) each mechanism needs at 12/16/20 bits
   on TFF's EMNIST schedule (n = 100 of 3400 clients per round, 1500 rounds, eps = 10,
   delta = 1/3400, d = 2^20, clip 0.03), over the central Gaussian's from ``dp-accounting``.
3. The measured per-coordinate wrap rate at the planned scale: 100 clients all sending the same
   update of norm ``clip`` (the largest possible sum), summed as integers; a wrap is a
   coordinate whose true sum leaves the signed ``bits``-bit range.

Run: ``python -m benchmarks.bench_dp [--quick] [--json PATH]``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import bench_parser, time_once, write_json
from secagg.dp import DistributedDP, RandomSource, encode, noise_sampler, quantize
from secagg.dp.quantization import conditional_round
from secagg.dp.rotation import fwht, rotate

SCHEDULE: dict[str, Any] = {
    "epsilon": 10.0,
    "delta": 1 / 3400,
    "rounds": 1500,
    "sampling_rate": 100 / 3400,
    "clip": 0.03,
    "expected_clients": 100,
}
ENCODE_GOAL_RATIO = 2.0
ENCODE_GOAL_SECONDS = 0.5
NOISE_GOAL_RATIO = 1.06
WRAP_GOAL = 1e-4


def config(mechanism: str, bits: int, **extra: Any) -> DistributedDP:
    return DistributedDP(mechanism=mechanism, bits=bits, **SCHEDULE, **extra)


def encode_speed(dim: int, repeats: int) -> list[dict[str, Any]]:
    plans = {mech: config(mech, 16).plan(dim) for mech in ("skellam", "dgauss")}
    seed = os.urandom(32)  # not-secret: the public rotation seed of a benchmark round
    rng = RandomSource()
    update = (rng.words(dim).astype(np.float64) / 2.0**64 - 0.5) * 1e-4
    x = np.ones(plans["skellam"].padded_dim)
    transformed = np.empty_like(x)
    words = np.empty(plans["skellam"].padded_dim, dtype=np.uint64)
    rotated = rotate(update.copy(), seed, gain=plans["skellam"].scale)
    sampler = noise_sampler("skellam", plans["skellam"].local_noise)

    def floor() -> None:
        fwht(x, out=transformed)  # reused buffers, like the encoder's scratch
        rng.fill(words)

    cases: dict[str, Callable[[], object]] = {
        "floor (Hadamard + keystream)": floor,
        "encode skellam": lambda: encode(update, plans["skellam"], seed, rng=rng),
        "encode dgauss": lambda: encode(update, plans["dgauss"], seed, rng=rng),
        "  part: rotate": lambda: rotate(update, seed, gain=2.0),
        "  part: conditional rounding": lambda: conditional_round(
            rotated, plans["skellam"].rounding_bound, rng
        ),
        "  part: skellam noise": lambda: sampler.sample(dim, rng),
    }
    floor_name = "floor (Hadamard + keystream)"
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(time_once(fn))
    best = {name: min(values) for name, values in times.items()}
    rows = []
    for name, values in times.items():
        # Also the median of back-to-back ratios: robust to load that shifts between cases.
        paired = [v / f for v, f in zip(values, times[floor_name], strict=True)]
        rows.append(
            {
                "case": name,
                "ms": 1e3 * best[name],
                "x_floor": best[name] / best[floor_name],
                "x_floor_median_paired": statistics.median(paired),
            }
        )
    return rows


def noise_ratios(dim: int, bits_list: list[int]) -> list[dict[str, Any]]:
    rows = []
    for mechanism in ("skellam", "dgauss"):
        for bits in bits_list:
            start = time.perf_counter()
            plan = config(mechanism, bits).plan(dim)
            elapsed = time.perf_counter() - start
            assert plan.noise_multiplier is not None
            assert plan.central_gaussian_noise_multiplier is not None
            rows.append(
                {
                    "mechanism": mechanism,
                    "bits": bits,
                    "noise_multiplier": plan.noise_multiplier,
                    "central": plan.central_gaussian_noise_multiplier,
                    "ratio": plan.noise_multiplier / plan.central_gaussian_noise_multiplier,
                    "epsilon": plan.epsilon,
                    "scale": plan.scale,
                    "wrap_bound": plan.wrap_probability,
                    "plan_seconds": elapsed,
                }
            )
    return rows


def wrap_rate(dim: int, bits: int, trials: int) -> dict[str, Any]:
    plan = config("skellam", bits).plan(dim)
    rng = RandomSource()
    direction = rng.words(dim).astype(np.float64) - 2.0**63
    update = direction * (plan.clip / np.linalg.norm(direction))
    half = 1 << (bits - 1)
    wraps = 0
    coords = 0
    for _ in range(trials):
        seed = os.urandom(32)  # not-secret: a public rotation seed
        total = np.zeros(plan.padded_dim, dtype=np.int64)
        for _client in range(plan.clients):
            total += quantize(update, plan, seed, rng=rng)
        wraps += int(np.count_nonzero((total >= half) | (total < -half)))
        coords += plan.padded_dim
    return {
        "bits": bits,
        "clients": plan.clients,
        "coordinates": coords,
        "wraps": wraps,
        "rate": wraps / coords,
        "bound": plan.wrap_probability,
    }


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, "smaller sizes (CI)", "write the results as JSON to PATH")
    args = parser.parse_args(argv)
    dim = 1 << (16 if args.quick else 20)
    repeats = 3 if args.quick else 15
    speed = encode_speed(dim, repeats)
    print(f"client encoding, d = {dim}, best of {repeats} (goal <= {ENCODE_GOAL_RATIO}x floor, "
          f"<= {ENCODE_GOAL_SECONDS} s)")
    print(f"  {'case':<32} {'best':>12} {'best/floor':>11} {'median paired':>14}")
    for row in speed:
        print(f"  {row['case']:<32} {row['ms']:9.1f} ms {row['x_floor']:10.2f}x "
              f"{row['x_floor_median_paired']:13.2f}x")
    ratios = noise_ratios(1 << 20, [16] if args.quick else [12, 16, 20])
    print(f"noise multiplier / central Gaussian, EMNIST schedule (goal <= {NOISE_GOAL_RATIO}x "
          "at 16 bits)")
    for r in ratios:
        print(f"  {r['mechanism']:<8} {r['bits']:>2} bits  z = {r['noise_multiplier']:.4f}  "
              f"central = {r['central']:.4f}  ratio = {r['ratio']:.4f}  eps = {r['epsilon']:.4f}"
              f"  wrap bound = {r['wrap_bound']:.2e}  ({r['plan_seconds']:.1f} s to plan)")
    wraps = [wrap_rate(dim, bits, 1 if args.quick else 3)
             for bits in ([16] if args.quick else [12, 16, 20])]
    print(f"measured wrap rate at the planned scale, skellam, {wraps[0]['clients']} clients "
          f"sending the same update of norm clip (goal <= {WRAP_GOAL:g})")
    for wrap in wraps:
        print(f"  {wrap['bits']:>2} bits: {wrap['wraps']} / {wrap['coordinates']} = "
              f"{wrap['rate']:.2e} (planned bound {wrap['bound']:.2e})")
    if args.json:
        write_json(args.json, {"encode": speed, "noise": ratios, "wrap": wraps})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
