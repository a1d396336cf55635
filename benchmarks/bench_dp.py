"""Distributed DP: every target of issue 13 as a ratio measured in one run.

Five measurements, then a summary of the targets:

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
4. Upload bytes per client at 12/16/20 bits over 32-bit SecAgg+ for the same model: the
   masked vector (the plan's ``bytes_per_client``: ``ceil(padded_dim * bits / 8)``, packed;
   32-bit SecAgg+ sends ``4 * dim``), the masked-input message and the whole SecAgg+ session
   (keys, shares, masked input, unmasking; n = 100, from the cost model, checked against one
   simulated session per width at a smaller size). For d = 2^20 (a power of two: the
   Hadamard rotation pads nothing) and for the digits model (650 values, DFT rotation).
5. Digits accuracy at epsilon = 10 and 16 bits against central DP-FedAvg with the same
   clipping: runs ``examples/dp_fedavg_digits.py`` (a subprocess; averaged over seeds) and
   reads its JSON (``--no-digits`` skips it).

Run: ``python -m benchmarks.bench_dp [--quick] [--json PATH] [--digits-seeds N]``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import bench_parser, time_once, write_json
from secagg.cost.estimate import estimate
from secagg.dp import DistributedDP, RandomSource, encode, noise_sampler, quantize
from secagg.dp.quantization import conditional_round
from secagg.dp.rotation import fwht, rotate
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.sim.simulator import simulate

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
DIGITS_GOAL_POINTS = 1.0
UPLOAD_GOALS = {16: 2.0, 12: 32 / 12}
"""The issue's "2x (16 bits) to 2.7x (12 bits)": 32/16 and 32/12 = 2.67, the most packing
into ``bits``-bit words can give (2.7 is 2.67 rounded)."""
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dp_fedavg_digits.py"


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


def session_bytes(dim: int, bits: int, clients: int) -> dict[str, int]:
    """Per-client upload of one simulated SecAgg+ session (zeros; bytes do not depend on the
    values): the masked-input message and the whole session."""
    spec = get_protocol("secagg+")
    config = spec.make_config(SimulationParams(clients=clients, dim=dim, bits=bits,
                                               dropout_fraction=0.0))
    zeros = np.zeros(dim, dtype=np.uint64 if bits > 32 else np.uint32)
    costs: dict[str, Any] = simulate(
        config, dict.fromkeys(spec.client_ids(config), zeros)).costs.to_dict()
    masked = next(r for r in costs["rounds"] if r["round"] == "masked_input")
    return {"masked_input": int(masked["client_bytes_up_max"]),
            "session": int(costs["client_bytes_up_max"])}


def upload_bytes(bits_list: list[int], check_dim: int) -> list[dict[str, Any]]:
    """Upload per client, 12/16/20 bits over 32-bit SecAgg+, for d = 2^20 and for the
    digits model; the cost model's session figures are checked against a simulated
    session of ``check_dim`` values and 20 clients first."""
    for bits in [*bits_list, 32]:
        model = estimate("secagg+", clients=20, dim=check_dim, bits=bits)
        measured = session_bytes(check_dim, bits, 20)
        predicted = {"masked_input": model["rounds"]["masked_input"]["client_bytes_up"],
                     "session": model["totals"]["client_bytes_up"]}
        if measured != {k: int(v) for k, v in predicted.items()}:
            raise SystemExit(f"cost model {predicted} != simulated {measured} at {bits} bits")
    rows = []
    for label, dim, rotation in (("d = 2^20", 1 << 20, "hadamard"), ("digits", 650, "dft")):
        base = estimate("secagg+", clients=100, dim=dim, bits=32)
        base_payload = 4 * dim
        for bits in bits_list:
            plan = config("skellam", bits, rotation=rotation).plan(dim)
            assert plan.bytes_per_client_32bit == base_payload
            model = estimate("secagg+", clients=100, dim=plan.padded_dim, bits=bits)
            rows.append({
                "model": label, "dim": dim, "padded_dim": plan.padded_dim, "bits": bits,
                "payload_bytes": plan.bytes_per_client, "payload_bytes_32bit": base_payload,
                "payload_ratio": base_payload / plan.bytes_per_client,
                "message_ratio": (base["rounds"]["masked_input"]["client_bytes_up"]
                                  / model["rounds"]["masked_input"]["client_bytes_up"]),
                "session_bytes": model["totals"]["client_bytes_up"],
                "session_bytes_32bit": base["totals"]["client_bytes_up"],
                "session_ratio": (base["totals"]["client_bytes_up"]
                                  / model["totals"]["client_bytes_up"]),
            })
    return rows


def digits_accuracy(quick: bool, seeds: int) -> dict[str, Any]:
    """Run the digits example (epsilon 10 only, central and 16 bits) and read its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "digits.json"
        args = ["--epsilons", "10", "--bits", "16", "--json", str(out)]
        args += ["--quick"] if quick else ["--seeds", str(seeds)]
        env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])}
        started = time.perf_counter()
        subprocess.run([sys.executable, str(EXAMPLE), *args], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        doc = json.loads(out.read_text())
    rows = {r["bits"]: r for r in doc["results"]}
    return {"parameters": doc["parameters"], "seconds": time.perf_counter() - started,
            "central": rows[None]["accuracy_mean"], "central_sd": rows[None]["accuracy_sd"],
            "distributed": rows[16]["accuracy_mean"], "distributed_sd": rows[16]["accuracy_sd"],
            "gap_points": 100 * (rows[None]["accuracy_mean"] - rows[16]["accuracy_mean"]),
            "epsilon_spent": rows[16]["epsilon_spent"]}


def targets(speed: list[dict[str, Any]], ratios: list[dict[str, Any]],
            wraps: list[dict[str, Any]], uploads: list[dict[str, Any]],
            digits: dict[str, Any] | None) -> list[tuple[str, float, str, bool]]:
    """(target, measured, goal, met) for every target of issue 13."""
    rows = {r["case"]: r for r in speed}
    encode_ratio = min(rows["encode skellam"]["x_floor"], rows["encode dgauss"]["x_floor"])
    paired = min(rows["encode skellam"]["x_floor_median_paired"],
                 rows["encode dgauss"]["x_floor_median_paired"])
    encode_seconds = 1e-3 * rows["encode skellam"]["ms"]
    noise = max(r["ratio"] for r in ratios if r["bits"] == 16)
    wrap = max(w["rate"] for w in wraps)
    out = [("noise multiplier / central, 16 bits (worse mechanism)", noise,
            f"<= {NOISE_GOAL_RATIO}", noise <= NOISE_GOAL_RATIO),
           ("measured wrap rate (worst width)", wrap, f"<= {WRAP_GOAL:g}", wrap <= WRAP_GOAL),
           ("client encoding / floor, best of each (best mechanism)", encode_ratio,
            f"<= {ENCODE_GOAL_RATIO}", encode_ratio <= ENCODE_GOAL_RATIO),
           ("client encoding / floor, median of paired runs", paired,
            f"<= {ENCODE_GOAL_RATIO}", paired <= ENCODE_GOAL_RATIO),
           ("client encoding seconds (skellam)", encode_seconds,
            f"<= {ENCODE_GOAL_SECONDS}", encode_seconds <= ENCODE_GOAL_SECONDS)]
    for bits, goal in UPLOAD_GOALS.items():
        for r in uploads:
            if r["bits"] == bits and r["model"] == "d = 2^20":
                out.append((f"upload 32-bit / {bits}-bit, masked vector, d = 2^20",
                             r["payload_ratio"], f">= {goal:.3g}",
                             r["payload_ratio"] >= goal * (1 - 1e-12)))
    if digits is not None:
        out.append(("digits accuracy gap, eps 10, 16 bits (points)", digits["gap_points"],
                    f"<= {DIGITS_GOAL_POINTS}", digits["gap_points"] <= DIGITS_GOAL_POINTS))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, "smaller sizes (CI)", "write the results as JSON to PATH")
    parser.add_argument("--no-digits", action="store_true", help="skip the digits training")
    parser.add_argument("--digits-seeds", type=int, default=5,
                        help="seeds averaged by the digits comparison (full mode)")
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
    uploads = upload_bytes([12, 16, 20], 1 << (10 if args.quick else 14))
    print("upload per client over 32-bit SecAgg+ for the same model (n = 100; masked vector = "
          "ceil(padded_dim * bits / 8) bytes; session = keys + shares + masked input + "
          "unmasking, cost model checked against a simulated session)")
    for u in uploads:
        print(f"  {u['model']:<9} {u['bits']:>2} bits: masked vector {u['payload_bytes']:>9,} B "
              f"vs {u['payload_bytes_32bit']:>9,} B = {u['payload_ratio']:.3f}x; message "
              f"{u['message_ratio']:.3f}x; whole session {u['session_bytes']:>11,.0f} B vs "
              f"{u['session_bytes_32bit']:>11,.0f} B = {u['session_ratio']:.3f}x")
    digits = None if args.no_digits else digits_accuracy(args.quick, args.digits_seeds)
    if digits is not None:
        p = digits["parameters"]
        print(f"digits accuracy, eps = 10 (delta {p['delta']:g}), {p['clients']} clients, "
              f"{p['rounds']} rounds, clip {p['clip']}, {p['seeds']} seed(s) "
              f"({digits['seconds']:.0f} s): central {100 * digits['central']:.2f} "
              f"(sd {100 * digits['central_sd']:.2f}), distributed 16 bits "
              f"{100 * digits['distributed']:.2f} (sd {100 * digits['distributed_sd']:.2f}), "
              f"gap {digits['gap_points']:+.2f} points (goal <= {DIGITS_GOAL_POINTS:g})")
    summary = targets(speed, ratios, wraps, uploads, digits)
    print("issue 13 targets")
    for name, value, goal, met in summary:
        shown = f"{value:.3g}" if math.isfinite(value) else str(value)
        print(f"  {name:<58} {shown:>10} {goal:>8}  {'met' if met else 'NOT met'}")
    if args.json:
        write_json(args.json, {"encode": speed, "noise": ratios, "wrap": wraps,
                               "upload": uploads, "digits": digits,
                               "targets": [{"target": n, "measured": v, "goal": g, "met": m}
                                           for n, v, g, m in summary]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
