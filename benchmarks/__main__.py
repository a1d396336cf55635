"""``python -m benchmarks [--quick] [--json PATH] [--out DIR] ...``: the protocol cost suite.

The same as ``secagg bench`` (see :func:`secagg.bench_cli.run_bench`): measures every
protocol, round and party beside its model, its floor and Flower's SecAgg+, then writes
JSON, BENCHMARKS.md and the PNG plots. ``make bench`` runs the full plan (about half an
hour; regenerates BENCHMARKS.md and docs/img/), ``make bench-quick`` the CI sizes.
"""

from __future__ import annotations

import sys

from secagg.bench_cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
