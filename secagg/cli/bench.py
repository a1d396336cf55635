"""``secagg bench``: the protocol cost suite of :mod:`secagg.bench`, with its reports.

The suite ships in the wheel (extra ``bench``: ``pip install 'secagg[bench]'``) and runs
from any directory. Outputs: with no path flag, everything goes to ``./secagg-bench/`` in
the current directory (``bench.json``, ``BENCHMARKS.md``, ``img/*.png``); ``--out DIR``
moves all three, ``--json``, ``--markdown`` and ``--plots`` each one (``make bench`` points
them at the repository's BENCHMARKS.md and docs/img/). Without flwr the Flower
side-by-side is left out, said once on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from secagg.cli.args import EXIT_OK, add_common, add_no_progress
from secagg.extras import require

__all__ = ["DEFAULT_OUT", "add_parser", "run"]

DEFAULT_OUT = "secagg-bench"
"""The output directory, relative to the current directory, when no path flag is given."""


def add_parser(commands: Any) -> None:
    """Add ``bench`` to an argparse subparsers object; it sets ``handler`` to :func:`run`."""
    bench = commands.add_parser(
        "bench",
        help="run the protocol cost benchmarks, write JSON, markdown and plots "
        f"(default: into ./{DEFAULT_OUT}/)",
        description="Run the protocol cost suite (needs the bench extra: "
        "pip install 'secagg[bench]'; the Flower side-by-side needs 'secagg[flower]'). "
        f"Writes bench.json, BENCHMARKS.md and img/*.png into ./{DEFAULT_OUT}/ of the "
        "current directory unless --out, --json, --markdown or --plots say otherwise.",
    )
    bench.add_argument("--quick", action="store_true", help="CI sizes: under a minute")
    bench.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"directory for JSON, markdown and plots (default: ./{DEFAULT_OUT})",
    )
    bench.add_argument("--json", default=None, metavar="PATH", help="where to write the JSON")
    bench.add_argument("--markdown", default=None, metavar="PATH", help="the markdown report")
    bench.add_argument("--plots", default=None, metavar="DIR", help="directory of the PNGs")
    add_no_progress(bench)
    bench.add_argument(
        "--from-json",
        default=None,
        metavar="PATH",
        help="re-render markdown and plots from an earlier run's JSON (no measurement)",
    )
    add_common(bench)
    bench.set_defaults(handler=run)


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(JSON, markdown, plots directory): ``--out`` (or the default) for all three, each
    overridden by its own flag."""
    base = Path(args.out if args.out is not None else DEFAULT_OUT)
    json_path = Path(args.json) if args.json else base / "bench.json"
    md_path = Path(args.markdown) if args.markdown else base / "BENCHMARKS.md"
    plots = Path(args.plots) if args.plots else base / "img"
    return json_path, md_path, plots


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the suite (or re-render ``--from-json``), write JSON, markdown and plots.

    Raises MissingExtraError when the bench extra (matplotlib, the HE backends) is not
    installed.
    """
    require("matplotlib", "bench", feature="secagg bench")
    require("gmpy2", "bench", feature="secagg bench")
    require("tenseal", "bench", feature="secagg bench")
    from secagg.bench.flower import flower_hint
    from secagg.bench.plots import write_plots
    from secagg.bench.report import console_summary, write_json, write_markdown
    from secagg.bench.suite import FULL, QUICK, run_suite

    json_path, md_path, plots = _paths(args)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as handle:
            document = json.load(handle)
    else:
        hint = flower_hint()
        if hint is not None:
            print(f"secagg bench: {hint}", file=sys.stderr)
        command = "secagg bench" + (" --quick" if args.quick else "")
        plan = QUICK if args.quick else FULL
        document = run_suite(plan, progress=not args.no_progress, argv=[command])
        write_json(document, str(json_path))
    written = write_plots(document, str(plots))
    write_markdown(document, str(md_path), str(plots))
    out.write(console_summary(document) + "\n")
    wrote = f"{md_path} and {len(written)} plots in {plots}"
    out.write(f"wrote {wrote}" + ("" if args.from_json else f", data in {json_path}") + "\n")
    return EXIT_OK
