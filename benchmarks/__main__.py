"""``python -m benchmarks [--quick] [--out DIR] ...``: the same as ``secagg bench``.

The protocol cost suite lives in :mod:`secagg.bench` (shipped in the wheel); this entry
only forwards its arguments to the command line. ``make bench`` runs the full plan (about
half an hour; regenerates BENCHMARKS.md and docs/img/), ``make bench-quick`` the CI sizes.
The developer micro-benchmarks are the modules beside this one: ``python -m
benchmarks.bench_<name> [--quick] [--json PATH]``.
"""

from __future__ import annotations

import sys

from secagg.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
