"""SecAgg+ graphs, the parameter finder and the cost model.

Run: ``.venv/bin/python -m benchmarks.bench_graph [--quick] [--json PATH]``.

Every figure is measured side by side with its floor in the same run:

* ``harary_adjacency`` (seeded, AES-CTR sort shuffle) against a non-secret floor that
  builds the same ``(n, k)`` neighbour array from ``np.random.permutation``;
* ``harary_graph`` (dict of frozensets) against building that dict from a ready array;
* ``find_parameters`` against one evaluation of the tail tables for the degree it returns
  (the cost of checking a single candidate; the ratio counts the candidates scanned);
* ``bonawitz_costs``: its run time, and the communication expansion it predicts at
  Bonawitz et al.'s parameters next to their published 1.73x and 1.98x.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from benchmarks.common import bench_parser, best_of, write_json
from secagg.cost.bonawitz import bonawitz_costs
from secagg.protocols.bonawitz.graph import harary_adjacency, harary_graph
from secagg.protocols.bonawitz.params import find_parameters

SEED = bytes(range(32))
LN2 = math.log(2.0)
MARGIN_BITS = 64.0  # the finder's Hoeffding margin (bits below the probability compared)


def floor_adjacency(n: int, k: int) -> np.ndarray:
    """The same neighbour array from a non-secret permutation (the floor of the work)."""
    # not-secret: a benchmark floor, never used as a graph.
    order = np.random.default_rng(0).permutation(n)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    steps = np.arange(1, k // 2 + 1, dtype=np.int64)
    offsets = np.concatenate([steps, -steps])
    ring = (order + 1).astype(np.int64)
    neighbours: np.ndarray = ring[(position[:, None] + offsets[None, :]) % n]
    return neighbours


def floor_dict(neighbours: np.ndarray) -> dict[int, frozenset[int]]:
    rows = neighbours.tolist()
    return {i + 1: frozenset(row) for i, row in enumerate(rows)}


def tail_table(total: int, marked: int, draws: int, log_cutoff: float) -> np.ndarray:
    """``log P[X >= x]`` for ``X ~ HG(total, marked, draws)`` over the window from the mean
    to Hoeffding's bound at ``log_cutoff`` (plus that bound beyond it): the table the finder
    builds per candidate degree (one lgamma term, then a cumulative sum of log ratios and a
    log-sum-exp)."""
    support_low = max(0, draws - (total - marked))
    support_high = min(draws, marked)
    lo = max(support_low, math.floor(draws * marked / total))
    hi = min(support_high, math.ceil(draws * marked / total + math.sqrt(-log_cutoff * draws / 2)))
    log_first = (
        math.lgamma(marked + 1)
        - math.lgamma(lo + 1)
        - math.lgamma(marked - lo + 1)
        + math.lgamma(total - marked + 1)
        - math.lgamma(draws - lo + 1)
        - math.lgamma(total - marked - draws + lo + 1)
        - math.lgamma(total + 1)
        + math.lgamma(draws + 1)
        + math.lgamma(total - draws + 1)
    )
    x = np.arange(lo, hi, dtype=np.float64)
    log_pmf = np.empty(hi - lo + 1, dtype=np.float64)
    log_pmf[0] = log_first
    np.cumsum(
        np.log(marked - x)
        + np.log(draws - x)
        - np.log(x + 1)
        - np.log(total - marked - draws + x + 1),
        out=log_pmf[1:],
    )
    log_pmf[1:] += log_first
    tails = np.empty(hi - lo + 2, dtype=np.float64)
    tails[:-1] = np.logaddexp.accumulate(log_pmf[::-1])[::-1]
    tails[-1] = -math.inf
    if hi < support_high:  # the mass beyond the window, bounded by Hoeffding
        np.logaddexp(tails, log_cutoff, out=tails)
    return tails


def floor_finder(n: int, degree: int) -> None:
    """One candidate check at the returned degree: both tail tables."""
    budget = -41 * LN2 - math.log(n)
    tail_table(n, math.floor(0.05 * n), degree, budget - MARGIN_BITS * LN2)
    tail_table(n, n - math.ceil(0.95 * n), degree, budget - MARGIN_BITS * LN2)


def run(quick: bool) -> dict[str, Any]:
    repeat = 3 if quick else 5
    rows: list[dict[str, Any]] = []
    sizes = [(1_000, 30), (10_000, 34)] if quick else [(1_000, 30), (10_000, 34), (100_000, 36)]
    for n, k in sizes:
        clients = list(range(1, n + 1))
        ours = best_of(partial(harary_adjacency, clients, k, SEED), repeat)
        floor = best_of(partial(floor_adjacency, n, k), repeat)
        rows.append({"work": "harary_adjacency", "n": n, "k": k, "seconds": ours, "floor": floor})
        array = floor_adjacency(n, k)
        ours = best_of(partial(harary_graph, clients, k, SEED), repeat)
        floor = best_of(partial(floor_dict, array), repeat)
        rows.append({"work": "harary_graph", "n": n, "k": k, "seconds": ours, "floor": floor})
    finder_cases = [10**3, 10**4, 10**6] if quick else [10**2, 10**3, 10**4, 10**5, 10**6]
    for n in finder_cases:
        params = find_parameters(n)
        ours = best_of(partial(find_parameters, n), repeat * 3)
        floor = best_of(partial(floor_finder, n, params.degree), repeat * 3)
        rows.append(
            {
                "work": f"find_parameters -> ({params.degree}, {params.threshold})",
                "n": n,
                "k": params.degree,
                "seconds": ours,
                "floor": floor,
            }
        )
    hard = find_parameters(10**6, corrupt_fraction=0.3, dropout_fraction=0.3, semi_malicious=True)
    ours = best_of(
        lambda: find_parameters(
            10**6, corrupt_fraction=0.3, dropout_fraction=0.3, semi_malicious=True
        ),
        1 if quick else 3,
    )
    rows.append(
        {
            "work": f"find_parameters 30%/30% semi-mal -> ({hard.degree}, {hard.threshold})",
            "n": 10**6,
            "k": hard.degree,
            "seconds": ours,
            "floor": best_of(lambda: floor_finder(10**6, hard.degree), 3),
        }
    )
    ours = best_of(lambda: bonawitz_costs(10_000, 10**6, 16, 20, 34, 500), repeat)
    rows.append(
        {"work": "bonawitz_costs", "n": 10_000, "k": 34, "seconds": ours, "floor": math.nan}
    )

    expansion = []
    for n, m, published in ((2**10, 2**20, 1.73), (2**14, 2**24, 1.98)):
        model = bonawitz_costs(n, m, 16, n // 2 + 1)
        sparse = find_parameters(n)
        plus = bonawitz_costs(n, m, 16, sparse.threshold, sparse.degree)
        expansion.append(
            {
                "n": n,
                "m": m,
                "bits": 16,
                "bonawitz_published": published,
                "secagg_complete": model["totals"]["expansion"],
                "secagg_plus": plus["totals"]["expansion"],
                "secagg_plus_degree": sparse.degree,
            }
        )
    return {"quick": quick, "rows": rows, "expansion": expansion}


def print_tables(result: dict[str, Any]) -> None:
    print(f"{'work':<52} {'n':>8} {'k':>6} {'ours ms':>10} {'floor ms':>10} {'ratio':>7}")
    for row in result["rows"]:
        ratio = row["seconds"] / row["floor"] if row["floor"] == row["floor"] else math.nan
        floor = f"{1e3 * row['floor']:>10.3f}" if row["floor"] == row["floor"] else f"{'-':>10}"
        print(
            f"{row['work']:<52} {row['n']:>8} {row['k']:>6} {1e3 * row['seconds']:>10.3f} "
            f"{floor} {ratio:>7.2f}"
        )
    print()
    print("Communication expansion per client (up + down) / packed input, 16-bit inputs:")
    print(f"{'n':>6} {'m':>9} {'Bonawitz CCS17':>15} {'secagg complete':>16} {'secagg+ (k)':>14}")
    for row in result["expansion"]:
        print(
            f"{row['n']:>6} {row['m']:>9} {row['bonawitz_published']:>14.2f}x "
            f"{row['secagg_complete']:>15.3f}x {row['secagg_plus']:>8.3f}x "
            f"({row['secagg_plus_degree']})"
        )


def main() -> None:
    parser = bench_parser(__doc__, "small sizes, a few seconds", "also write the results as JSON")
    args = parser.parse_args()
    result = run(args.quick)
    print_tables(result)
    if args.json:
        write_json(args.json, result, default=str)


if __name__ == "__main__":
    main()
