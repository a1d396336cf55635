"""The ``secagg`` command line: ``secagg simulate | cost | bench ...``.

* ``secagg simulate`` runs one in-process aggregation (:mod:`secagg.cli.simulate`);
* ``secagg cost`` prints a protocol's cost model (:mod:`secagg.cli.cost`);
* ``secagg bench`` runs the benchmark suite and writes its reports (:mod:`secagg.cli.bench`).

The flags they share are defined once (:mod:`secagg.cli.args`); every protocol-specific
choice goes through the protocol's registry spec. Exit codes: 0 the result equals the
plaintext sum of exactly the included clients (or the command is done); 1 it does not;
2 bad parameters; 3 the protocol aborted or a party rejected a message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from secagg.cli import bench, cost, simulate
from secagg.cli.args import EXIT_ABORTED, EXIT_BAD_PARAMETERS
from secagg.errors import ConfigurationError, ProtocolAbort, ProtocolViolation

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``secagg`` parser; each subcommand sets ``handler(args, out) -> exit code``."""
    parser = argparse.ArgumentParser(prog="secagg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    simulate.add_parser(commands)
    cost.add_parser(commands)
    bench.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``), writing to ``out``
    (default: standard output); return the exit code (see the module docstring).

    argparse exits (code 2) on flags it cannot parse.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, out if out is not None else sys.stdout))
    except ConfigurationError as exc:
        print(f"secagg: bad parameters: {exc}", file=sys.stderr)
        return EXIT_BAD_PARAMETERS
    except (ProtocolAbort, ProtocolViolation) as exc:
        print(f"secagg: protocol aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ABORTED
