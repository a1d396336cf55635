"""Shamir sharing and reconstruction of 32-byte secrets against the BLAS floor and Flower.

Everything is measured side by side in one run, interleaved so machine drift hits every
case alike:

* the floor of sharing: the bare float64 BLAS product ``V (n x t) @ C (t x 26)`` of a
  precomputed Vandermonde matrix with precomputed coefficients, reduced mod p, plus the
  ``os.urandom`` bytes of the random coefficients: the arithmetic any vectorized Shamir over
  this field must do;
* the floor of reconstruction: the bare ``lambda (1 x t) @ S (t x 13 * secrets)`` mod p on a
  prebuilt share matrix (no Share objects, no validation, no limb decoding);
* Flower's Shamir (``flwr.common.secure_aggregation.crypto.shamir``, PyCryptodome over
  GF(2^128), 16-byte chunks) at n = 100 only: at n = 1000 one sharing takes over a minute.

``% floor`` is the floor's median time divided by secagg's (100 % = as fast as the floor).
"cold" gives every call a holder set secagg has not seen before, so that its cached
Vandermonde matrix / Lagrange coefficients are rebuilt (the floors build theirs here, from
the public field, outside the clock).
Run: ``python -m benchmarks.bench_shamir [--quick] [--json PATH]``.
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.common import bench_parser, optional_cells, time_once, write_json
from secagg.shamir import (
    LIMBS,
    PRIME,
    SECRET_BYTES,
    Share,
    lagrange_coefficients_at_zero,
    reconstruct_secrets,
    share_secrets,
)

# Goals of the task (docs: the Shamir assignment), in ms, at n = 1000, t = 667.
GOALS_MS = {("share 2 secrets", 1000): 50.0, ("reconstruct 1000 secrets", 1000): 1000.0}
RECONSTRUCT_SECRETS = 1000
FLOWER_MAX_N = 100


def vandermonde(xs: Sequence[int], t: int) -> np.ndarray:
    """The float64 ``(len(xs), t)`` matrix ``x_i^j mod p`` (the floor's prebuilt matrix)."""
    x = np.array(xs, dtype=np.int64) % PRIME
    powers = np.ones((len(xs), t), dtype=np.int64)
    for j in range(1, t):
        powers[:, j] = powers[:, j - 1] * x % PRIME
    return powers.astype(np.float64)


def reduce_mod_p(values: np.ndarray) -> np.ndarray:
    """``values mod p`` for non-negative integer-valued float64 below 2^53: one multiply by
    1/p, floor, multiply back, subtract and one correction each way (the least work of an
    exact float64 reduction)."""
    quotient: np.ndarray = values * (1.0 / PRIME)
    np.floor(quotient, out=quotient)
    np.multiply(quotient, float(PRIME), out=quotient)
    np.subtract(values, quotient, out=quotient)
    np.add(quotient, float(PRIME), out=quotient, where=quotient < 0.0)
    np.subtract(quotient, float(PRIME), out=quotient, where=quotient >= PRIME)
    return quotient


def _flower_cases(n: int, t: int) -> dict[str, tuple[Callable[[], object], int]]:
    """Flower's Shamir: (function, number of secrets it handles per call)."""
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares

    secrets = [os.urandom(SECRET_BYTES) for _ in range(2)]
    shares = create_shares(secrets[0], t, n)
    return {
        "flower share 2 secrets": (lambda: [create_shares(s, t, n) for s in secrets], 2),
        "flower reconstruct 1 secret": (lambda: combine_shares(shares[:t]), 1),
    }


def run_size(n: int, t: int, repeats: int) -> list[dict[str, object]]:
    holders = list(range(1, n + 1))
    two = [os.urandom(SECRET_BYTES) for _ in range(2)]
    many = [os.urandom(SECRET_BYTES) for _ in range(RECONSTRUCT_SECRETS)]
    shared = share_secrets(many, holders, t)
    subset = {x: shared[x] for x in holders[:t]}

    # Floors: the same products on prebuilt matrices.
    powers = vandermonde(holders, t)
    # not-secret: floor inputs only; secagg draws its coefficients from os.urandom.
    coefficients = np.random.default_rng(0).integers(0, PRIME, (t, 2 * LIMBS)).astype(np.float64)
    lagrange = lagrange_coefficients_at_zero(holders[:t]).astype(np.float64)[None, :]
    share_matrix = np.array(
        [s.values for x in holders[:t] for s in shared[x]], dtype=np.float64
    ).reshape(t, RECONSTRUCT_SECRETS * LIMBS)

    def share_floor() -> None:
        os.urandom(4 * (t - 1) * 2 * LIMBS)
        reduce_mod_p(powers @ coefficients)

    def reconstruct_floor() -> None:
        reduce_mod_p(lagrange @ share_matrix)

    # Cold: a fresh holder set per call (the warm-up and every repeat): shifted ids for
    # sharing, the first t + 1 holders less one for reconstruction (never the warm set).
    calls = repeats + 1
    fresh_holders = itertools.cycle([[x + k for x in holders] for k in range(1, calls + 1)])
    fresh_subsets = itertools.cycle(
        [{x: shared[x] for x in holders[: t + 1] if x != holders[i]} for i in range(calls)]
    )

    def share_cold() -> None:
        share_secrets(two, next(fresh_holders), t)

    def reconstruct_cold() -> None:
        reconstruct_secrets(next(fresh_subsets))

    one_share = shared[1][0]
    blobs = [s.to_bytes() for s in shared[1]]

    cases: dict[str, tuple[Callable[[], object], str, int]] = {
        # name: (function, floor name, items per call)
        "floor: BLAS V@C mod p + urandom": (share_floor, "", 2),
        "share 2 secrets": (lambda: share_secrets(two, holders, t), "share", 2),
        "share 2 secrets (cold)": (share_cold, "share", 2),
        "floor: BLAS lambda@S mod p": (reconstruct_floor, "", RECONSTRUCT_SECRETS),
        f"reconstruct {RECONSTRUCT_SECRETS} secrets": (
            lambda: reconstruct_secrets(subset),
            "reconstruct",
            RECONSTRUCT_SECRETS,
        ),
        f"reconstruct {RECONSTRUCT_SECRETS} secrets (cold)": (
            reconstruct_cold,
            "reconstruct",
            RECONSTRUCT_SECRETS,
        ),
        "Share.to_bytes x1000": (lambda: [s.to_bytes() for s in shared[1]], "", 1000),
        "Share.from_bytes x1000": (lambda: [Share.from_bytes(b) for b in blobs], "", 1000),
    }
    assert one_share.to_bytes() == blobs[0]
    if n <= FLOWER_MAX_N:
        for name, (fn, items) in _flower_cases(n, t).items():
            cases[name] = (fn, "", items)

    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn, _, _ in cases.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, (fn, _, _) in cases.items():
            samples[name].append(time_once(fn))
    floors = {
        "share": statistics.median(samples["floor: BLAS V@C mod p + urandom"]),
        "reconstruct": statistics.median(samples["floor: BLAS lambda@S mod p"]),
    }
    rows: list[dict[str, object]] = []
    for name, (_, floor_name, items) in cases.items():
        median = statistics.median(samples[name])
        goal = next(
            (ms for (case, size), ms in GOALS_MS.items() if name == case and size == n), None
        )
        rows.append(
            {
                "n": n,
                "t": t,
                "case": name,
                "median_ms": median * 1e3,
                "min_ms": min(samples[name]) * 1e3,
                "per_item_us": median * 1e6 / items,
                "pct_of_floor": 100.0 * floors[floor_name] / median if floor_name else None,
                "goal_ms": goal,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "n = 100 only, few repeats", "also write the rows as JSON")
    args = parser.parse_args(argv)
    sizes = [(100, 67)] if args.quick else [(100, 67), (1000, 667)]
    repeats = 3 if args.quick else 7
    rows: list[dict[str, object]] = []
    for n, t in sizes:
        rows += run_size(n, t, repeats)
    print(f"Shamir over GF({PRIME}), 32-byte secrets, {LIMBS} limbs; medians of {repeats}")
    print(
        f"{'n':>5} {'t':>4} {'case':<38} {'median ms':>10} {'min ms':>9} {'us/item':>9}"
        f" {'% floor':>8} {'goal ms':>8}"
    )
    for row in rows:
        pct = row["pct_of_floor"]
        goal = row["goal_ms"]
        print(
            f"{row['n']:>5} {row['t']:>4} {row['case']:<38} {row['median_ms']:>10.2f}"
            f" {row['min_ms']:>9.2f} {row['per_item_us']:>9.1f}"
            f" {optional_cells(pct, goal)}"
        )
    if args.json:
        write_json(args.json, {"benchmark": "shamir", "rows": rows})


if __name__ == "__main__":
    main()
