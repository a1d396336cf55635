"""What checking a run with secagg.testing costs, beside the bare protocol run.

Run: ``.venv/bin/python -m benchmarks.bench_testing [--quick] [--json PATH]``.

* One session: :func:`secagg.testing.harness.run` (every message as bytes through the
  Network, the oracle, the sum, privacy, blame and uniformity checks) against its floor,
  :func:`secagg.sim.simulator.simulate` on the same config, inputs and dropouts
  (the same protocol work, messages encoded and decoded, one plaintext-sum check).
* A property test: examples per second of ``harness.run`` driven by the default
  strategies (config, inputs, dropout schedule), against the same drawn examples run
  through ``simulate``: the harness's share of a hypothesis test's time.

Times are the best of a few repeats (the machine is shared); compare the ratios.
"""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.common import bench_parser, best_of, write_json
from secagg.errors import ProtocolAbort
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.sim.simulator import DropoutSchedule, simulate
from secagg.testing import harness
from secagg.testing import strategies as sst


def session_rows(quick: bool) -> list[dict[str, Any]]:
    sizes = [(10, 1_000), (30, 10_000)] if quick else [(10, 1_000), (30, 10_000), (100, 10_000)]
    rows = []
    for n, m in sizes:
        config = ProtocolConfig.create(
            list(range(1, n + 1)), threshold=n // 2 + 1, bits=16, vector_length=m
        )
        # not-secret: benchmark inputs.
        rng = np.random.default_rng(0)
        inputs = {c: rng.integers(0, 1 << 10, m, dtype=np.uint32) for c in config.clients}
        drops = DropoutSchedule({"masked_input": frozenset(range(1, n // 10 + 1))})
        repeat = 2 if quick else 3
        ours = best_of(partial(harness.run, config, inputs, drops), repeat)
        floor = best_of(partial(simulate, config, inputs, dropouts=drops), repeat)
        rows.append({"work": "one session", "n": n, "m": m, "seconds": ours, "floor": floor})
    return rows


def property_row(quick: bool) -> dict[str, Any]:
    examples = 40 if quick else 200
    drawn: list[tuple[ProtocolConfig, dict[int, np.ndarray], DropoutSchedule]] = []
    fast = settings(
        max_examples=examples,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )

    @fast
    @given(sst.protocol_configs(modes=["semi-honest"]), st.data())
    def property_test(config: ProtocolConfig, data: st.DataObject) -> None:
        inputs = data.draw(sst.client_inputs(config))
        schedule = data.draw(sst.dropout_schedules(config))
        drawn.append((config, inputs, schedule))
        harness.run(config, inputs, schedule)

    start = time.perf_counter()
    property_test()
    ours = time.perf_counter() - start

    def replay_with_simulator() -> None:
        for config, inputs, schedule in drawn:
            with contextlib.suppress(ProtocolAbort):  # a legitimate outcome here
                simulate(config, inputs, dropouts=schedule)

    start = time.perf_counter()
    replay_with_simulator()
    floor = time.perf_counter() - start
    return {
        "work": f"property test, {len(drawn)} examples",
        "n": "2-10",
        "m": "1-16",
        "seconds": ours,
        "floor": floor,
        "examples_per_second": len(drawn) / ours,
    }


def run(quick: bool) -> dict[str, Any]:
    rows = session_rows(quick)
    rows.append(property_row(quick))
    return {"quick": quick, "rows": rows}


def print_table(result: dict[str, Any]) -> None:
    print("floor: simulate() on the same config, inputs and dropouts (shared machine)")
    print(f"{'work':<34} {'n':>6} {'m':>7} {'harness ms':>11} {'floor ms':>10} {'ratio':>6}")
    for row in result["rows"]:
        print(
            f"{row['work']:<34} {row['n']!s:>6} {row['m']!s:>7} {1e3 * row['seconds']:>11.1f} "
            f"{1e3 * row['floor']:>10.1f} {row['seconds'] / row['floor']:>6.2f}"
        )
    for row in result["rows"]:
        if "examples_per_second" in row:
            print(f"property test: {row['examples_per_second']:.0f} examples/s with the harness")


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, "small sizes, a few seconds", "also write the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print_table(result)
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
