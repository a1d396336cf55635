"""The ``secagg`` command line: ``secagg simulate | cost | bench ...``.

* ``secagg simulate`` runs one in-process aggregation (:mod:`secagg.cli.simulate`);
* ``secagg cost`` prints a protocol's cost model (:mod:`secagg.cli.cost`);
* ``secagg bench`` runs the benchmark suite and writes its reports (:mod:`secagg.cli.bench`);
* ``secagg dp plan`` plans distributed differential privacy for a run (:mod:`secagg.cli.dp`).

The flags they share are defined once (:mod:`secagg.cli.args`); every protocol-specific
choice, and the check of every flag, goes through the protocol's registry spec.

Exit codes: 0 the result equals the plaintext sum of exactly the included clients (or the
command is done); 1 it does not; 2 bad parameters, a flag the protocol does not take, or
an optional extra that is not installed; 3 the protocol aborted or a party rejected a
message. Every failure is ONE line on stderr (``secagg: ...``), never a traceback. With
``--json`` (``simulate``, ``cost``, ``dp plan``) stdout carries exactly one JSON document whatever
happens: the result, or ``{"error": ..., "exit_code": ..., "kind": ...}`` (the line on
stderr is still written). A reader that closes the pipe early (``secagg simulate | head
-1``) is not an error: the rest of the output is dropped, without a traceback, and the
exit code stays the command's own (0 for a matching sum). Ctrl-C is one line and exit 130.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO, cast

import secagg
from secagg.cli import bench, cost, dp, simulate
from secagg.cli.args import (
    EXIT_ABORTED,
    EXIT_BAD_PARAMETERS,
    Parser,
    UsageFailure,
    logging_to_stderr,
)
from secagg.errors import ConfigurationError, ProtocolAbort, ProtocolViolation
from secagg.extras import MissingExtraError, missing_extra
from secagg.protocols.options import OptionError

__all__ = ["DESCRIPTION", "EXIT_INTERRUPTED", "JSON_COMMANDS", "build_parser", "main"]

DESCRIPTION = """\
Secure aggregation for federated learning: simulate a protocol in-process, print its
cost model, run the benchmark suite, or plan distributed differential privacy.

exit codes: 0 done (simulate: the sum matches), 1 the sum does not match,
2 bad parameters or a missing optional extra, 3 the protocol aborted."""

EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT, as shells report it): one line, no traceback."""

JSON_COMMANDS = ("simulate", "cost", "dp")
"""The subcommands whose ``--json`` switch makes errors JSON too."""


def build_parser() -> Parser:
    """The ``secagg`` parser; each subcommand sets ``handler(args, out) -> exit code``."""
    parser = Parser(prog="secagg", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"secagg {secagg.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simulate.add_parser(commands)
    cost.add_parser(commands)
    bench.add_parser(commands)
    dp.add_parser(commands)
    return parser


class _PipeGuard:
    """``out`` that stops writing, silently, once its reader has gone (EPIPE)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.broken = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so that the interpreter's final flush of a
    stdout whose reader has gone raises nothing (Python's documented recipe for EPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (captured in tests)
        pass


def _command(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _fail(
    message: str, code: int, kind: str, out: _PipeGuard, as_json: bool, **fields: str
) -> int:
    """One line on stderr and, with ``--json``, the error document on ``out``."""
    with contextlib.suppress(BrokenPipeError):
        print(f"secagg: {message}", file=sys.stderr)
    if as_json:
        document = {"error": message, "exit_code": code, "kind": kind, **fields}
        out.write(json.dumps(document) + "\n")
    return code


def _run(argv: list[str], out: _PipeGuard, as_json: bool) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageFailure as exc:
        return _fail(f"bad parameters: {exc}", EXIT_BAD_PARAMETERS, "usage", out, as_json)
    except SystemExit as exc:  # --help and --version print, then exit 0
        return exc.code if isinstance(exc.code, int) else 0
    feature = f"secagg {args.command}" + (
        f" --protocol {args.protocol}" if hasattr(args, "protocol") else ""
    )
    try:
        with logging_to_stderr(getattr(args, "log_level", "warning")):
            return int(args.handler(args, cast(TextIO, out)))
    except MissingExtraError as exc:
        return _fail(str(exc), EXIT_BAD_PARAMETERS, "missing_extra", out, as_json,
                     extra=exc.extra)  # fmt: skip
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc, feature)
        if extra is None:
            raise
        return _fail(str(extra), EXIT_BAD_PARAMETERS, "missing_extra", out, as_json,
                     extra=extra.extra)  # fmt: skip
    except OptionError as exc:
        return _fail(f"bad parameters: {exc}", EXIT_BAD_PARAMETERS, "bad_parameters", out,
                     as_json, option=exc.flag)  # fmt: skip
    except ConfigurationError as exc:
        return _fail(f"bad parameters: {exc}", EXIT_BAD_PARAMETERS, "bad_parameters", out,
                     as_json)  # fmt: skip
    except (ProtocolAbort, ProtocolViolation) as exc:
        return _fail(f"protocol aborted: {type(exc).__name__}: {exc}", EXIT_ABORTED,
                     "aborted", out, as_json)  # fmt: skip


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``), writing to ``out``
    (default: standard output); return the exit code (see the module docstring).

    Never raises for bad input: parse errors, bad parameters, missing extras and aborts
    are one line on stderr and an exit code.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = _command(arguments) in JSON_COMMANDS and "--json" in arguments
    guard = _PipeGuard(out if out is not None else sys.stdout)
    try:
        code = _run(arguments, guard, as_json)
        guard.flush()
    except BrokenPipeError:  # argparse's --help / --version write to sys.stdout directly
        guard.broken = True
        code = 0
    except KeyboardInterrupt:
        with contextlib.suppress(BrokenPipeError):
            print("secagg: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if guard.broken and guard.stream is sys.stdout:
        _silence_stdout()
    return code
