"""Helpers every benchmark script shares: timing, the ``--quick``/``--json`` parser, JSON output.

The scripts keep their own tables and JSON shapes (benchmarks/report.py reads them); only the
mechanics live here, so that a change to how we time or write lands in one place.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

__all__ = ["bench_parser", "best_of", "optional_cells", "time_once", "write_json"]


def time_once(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn`` (perf_counter); its result is dropped."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall-clock seconds of ``repeat`` calls (the machine is shared: best is stablest).

    Returns ``math.inf`` when ``repeat`` is 0 or less (nothing was timed).
    """
    best = math.inf
    for _ in range(repeat):
        best = min(best, time_once(fn))
    return best


def bench_parser(doc: str | None, quick_help: str, json_help: str) -> argparse.ArgumentParser:
    """A parser with the two flags every script takes: ``--quick`` and ``--json PATH``.

    ``doc`` is the script's module docstring: its first line is the description. Callers add
    their own extra flags before parsing.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else "")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", metavar="PATH", help=json_help)
    return parser


def optional_cells(pct: object, goal: object) -> str:
    """The "% floor" and "goal" cells of a table row, 8 wide each; a None cell is blank."""
    return f"{'' if pct is None else f'{pct:.0f}%':>8} {'' if goal is None else goal:>8}"


def write_json(path: str, document: Any, *, default: Callable[[Any], Any] | None = None) -> None:
    """Write ``document`` to ``path`` as UTF-8 JSON, indented by 2 (the scripts' format).

    ``default`` is passed to :func:`json.dump` (e.g. ``str`` for values JSON cannot hold).
    Raises OSError when the file cannot be written, TypeError when a value cannot be encoded.
    """
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, default=default)
