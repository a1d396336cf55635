"""Fixed-point encoding and bit packing of float vectors against same-run floors and Flower.

Measured side by side in one run, interleaved so machine drift hits every case alike:

* encoding floor: what any CSPRNG-driven stochastic rounding must do at least: AES-128-CTR
  keystream of 8 bytes per element ``update_into`` a reused buffer, one ``x * scale`` pass
  and one float64 -> uint32 cast, all into reused buffers;
* packing floor: one copy of the packed size (``bytes`` of a buffer of ``m * b / 8`` bytes);
* Flower's ``quantize`` (``flwr.common.secure_aggregation.quantization``: clip, shift, scale,
  stochastic rounding from ``np.random``, not a CSPRNG) as the reference of the field.

``% floor`` is the floor's median time divided by secagg's (100 % = as fast as the floor).
Run: ``python -m benchmarks.bench_encoding [--quick] [--json PATH]``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from functools import partial

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from benchmarks.common import bench_parser, optional_cells, time_once, write_json
from secagg.encoding import FixedPoint
from secagg.packing import pack, unpack

GOAL_MS_AT_1M = 20.0
PACK_BITS = (16, 20, 25, 32)
CLIP = 1.0
MAX_CLIENTS = 1000


def run_size(m: int, repeats: int) -> list[dict[str, object]]:
    # not-secret: benchmark inputs only; secagg draws its rounding randomness itself.
    x = np.random.default_rng(0).normal(0.0, 0.3, m)
    x32 = x.astype(np.float32)
    fp = FixedPoint.for_precision(bits=32, clip=CLIP, max_clients=MAX_CLIENTS, max_weight=100.0)
    encoded = fp.encode(x)

    keystream = bytearray(8 * m + 16)
    zeros = bytes(8 * m)
    scaled = np.empty(m, dtype=np.float64)
    out = np.empty(m, dtype=np.uint32)

    def encode_floor() -> None:
        encryptor = Cipher(algorithms.AES(os.urandom(16)), modes.CTR(bytes(16))).encryptor()
        encryptor.update_into(zeros, keystream)
        np.multiply(x, fp.scale, out=scaled)
        np.copyto(out, scaled, casting="unsafe")

    def flower_quantize() -> object:
        from flwr.common.secure_aggregation.quantization import quantize

        return quantize([x], CLIP, 2**22)

    cases: dict[str, tuple[Callable[[], object], str]] = {
        "floor: keystream + scale + cast": (encode_floor, ""),
        "encode float64 (bits=32)": (lambda: fp.encode(x), "encode"),
        "encode float32 (bits=32)": (lambda: fp.encode(x32), "encode"),
        "encode_weighted (bits=32)": (lambda: fp.encode_weighted(x, 17.0), "encode"),
        "decode (bits=32)": (lambda: fp.decode(encoded), ""),
        "flower quantize (np.random, int64)": (flower_quantize, "encode"),
    }
    packed_sizes: dict[int, int] = {}
    for bits in PACK_BITS:
        values = encoded if bits == 32 else (encoded >> np.uint32(32 - bits))
        data = pack(values, bits)
        packed_sizes[bits] = len(data)
        buffer = bytearray(len(data))
        cases[f"floor: copy {bits}-bit packed size"] = (partial(bytes, buffer), "")
        cases[f"pack bits={bits}"] = (partial(pack, values, bits), f"copy{bits}")
        cases[f"unpack bits={bits}"] = (partial(unpack, data, bits, m), f"copy{bits}")

    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn, _ in cases.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, (fn, _) in cases.items():
            samples[name].append(time_once(fn))
    floors = {"encode": statistics.median(samples["floor: keystream + scale + cast"])}
    for bits in PACK_BITS:
        floors[f"copy{bits}"] = statistics.median(samples[f"floor: copy {bits}-bit packed size"])
    rows: list[dict[str, object]] = []
    for name, (_, floor_name) in cases.items():
        median = statistics.median(samples[name])
        is_goal = m == 1_000_000 and (name.startswith(("encode ", "pack ")))
        rows.append(
            {
                "m": m,
                "case": name,
                "median_ms": median * 1e3,
                "min_ms": min(samples[name]) * 1e3,
                "m_elements_per_s": m / median / 1e6,
                "pct_of_floor": 100.0 * floors[floor_name] / median if floor_name else None,
                "goal_ms": GOAL_MS_AT_1M if is_goal else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "m = 100K only, few repeats", "also write the rows as JSON")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    repeats = 5 if args.quick else 15
    rows: list[dict[str, object]] = []
    for m in sizes:
        rows += run_size(m, repeats)
    print(f"fixed-point encoding and bit packing, clip={CLIP}, max_clients={MAX_CLIENTS}")
    print(
        f"{'m':>9} {'case':<36} {'median ms':>10} {'min ms':>8} {'M el/s':>8}"
        f" {'% floor':>8} {'goal ms':>8}"
    )
    for row in rows:
        pct = row["pct_of_floor"]
        goal = row["goal_ms"]
        print(
            f"{row['m']:>9} {row['case']:<36} {row['median_ms']:>10.2f} {row['min_ms']:>8.2f}"
            f" {row['m_elements_per_s']:>8.0f}"
            f" {optional_cells(pct, goal)}"
        )
    if args.json:
        write_json(args.json, {"benchmark": "encoding", "rows": rows})


if __name__ == "__main__":
    main()
