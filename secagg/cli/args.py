"""The argument sets ``secagg simulate``, ``secagg cost`` and ``secagg bench`` share.

Theory of operation. The protocol options (``--clients``, ``--threshold``, ``--degree``,
``--active``, ``--key-bits``...) are not written here one by one: :func:`add_options` reads
every registered protocol's option table (:mod:`secagg.protocols.options`) and adds one
flag per option name, its type from the table and its help listing what it means for each
protocol that takes it. Only the sizes of a default run (:data:`RUN_DEFAULTS`) are the
command line's own. :func:`options_of` collects what the user set and :func:`checked_spec`
checks it against the chosen protocol's table: a flag the protocol does not take, or a
value out of its range, is refused there (exit 2, one line), never silently reinterpreted.

Parse errors (argparse's) become :class:`UsageFailure`, reported by :mod:`secagg.cli` in
the same one-line style as every other error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

from secagg.errors import ConfigurationError
from secagg.protocols.options import Option, OptionError, flag_of
from secagg.protocols.registry import ProtocolSpec, get_protocol, protocol_names

__all__ = [
    "DEFAULT_PROTOCOL",
    "EXIT_ABORTED",
    "EXIT_BAD_PARAMETERS",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "LOG_LEVELS",
    "RUN_DEFAULTS",
    "HelpFormatter",
    "Parser",
    "UsageFailure",
    "add_common",
    "add_no_progress",
    "add_options",
    "add_protocol",
    "check_range",
    "checked_spec",
    "dest_of",
    "integer",
    "logging_to_stderr",
    "number",
    "option_names",
    "options_of",
]

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_PARAMETERS = 2
EXIT_ABORTED = 3

DEFAULT_PROTOCOL = "secagg+"

RUN_DEFAULTS: dict[str, Any] = {"clients": 100, "dim": 1000, "bits": 32, "dropout_fraction": 0.0}
"""The size of a run when no flag says otherwise (every protocol takes these options)."""

LOG_LEVELS = ("debug", "info", "warning", "error")


class UsageFailure(Exception):
    """A command line argparse could not parse (reported as exit 2, one line)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and shows every default that is a value
    (``None`` and ``False`` mean "not given" and are left out)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and action.option_strings
            and default is not None
            and default is not False
            and default is not argparse.SUPPRESS
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageFailure` instead of printing usage and
    exiting, so that :func:`secagg.cli.main` reports it in one line (or as JSON)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        prefix = "argument "
        if message.startswith(prefix) and ": " in message:
            flags, _, detail = message[len(prefix) :].partition(": ")
            flag = flags.split("/")[-1]
            message = f"{flag} {detail}" if detail.startswith("'") else f"{flag}: {detail}"
        raise UsageFailure(message)


def integer(text: str) -> int:
    """argparse type: an int, or a one-line error naming the text."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def number(text: str) -> float:
    """argparse type: a float (``nan`` parses; the range checks refuse it)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _takers(name: str) -> list[tuple[str, Option]]:
    return [
        (protocol, get_protocol(protocol).option_table[name])
        for protocol in protocol_names()
        if get_protocol(protocol).takes(name)
    ]


def option_names(*, cost: bool) -> tuple[str, ...]:
    """Every option some registered protocol takes, in registry order (``cost``: with the
    options only the cost models take)."""
    names: dict[str, None] = {}
    for protocol in protocol_names():
        for name, option in get_protocol(protocol).option_table.items():
            if cost or not option.cost_only:
                names[name] = None
    return tuple(names)


def dest_of(name: str) -> str:
    """The argparse destination of option ``name`` (``dropout_fraction`` -> ``dropout``)."""
    return flag_of(name)[2:].replace("-", "_")


def _help(name: str) -> str:
    """What option ``name`` means, per protocol (those that read it alike grouped), with
    each protocol's default when it has one."""
    takers = _takers(name)
    groups: dict[str, list[str]] = {}
    for protocol, option in takers:
        shown = option.default is not None and option.kind is not bool
        text = option.help + (f" (default: {option.default})" if shown else "")
        groups.setdefault(text, []).append(protocol)
    if len(groups) == 1 and len(takers) == len(protocol_names()):
        text = next(iter(groups))
    else:
        text = "; ".join(f"{', '.join(names)}: {meaning}" for meaning, names in groups.items())
    return text.replace("%", "%%").format_map(_Flags())


class _Flags(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return flag_of(key)


def add_protocol(parser: argparse.ArgumentParser) -> None:
    """``--protocol`` (default secagg+); checked against the registry by
    :func:`checked_spec`, so that a bad name gets the same one-line error as a bad value."""
    parser.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        metavar="NAME",
        help=f"one of {', '.join(protocol_names())}",
    )


def add_options(parser: argparse.ArgumentParser, *, cost: bool) -> None:
    """One flag per protocol option (:func:`option_names`), typed by the option tables."""
    for name in option_names(cost=cost):
        kinds = {option.kind for _, option in _takers(name)}
        flag = flag_of(name)
        dest = dest_of(name)
        if kinds == {bool}:
            parser.add_argument(flag, dest=dest, action="store_true", help=_help(name))
            continue
        choices = sorted({c for _, option in _takers(name) for c in option.choices})
        kind: Any = integer if kinds == {int} else number if kinds <= {int, float} else str
        default = RUN_DEFAULTS.get(name)
        parser.add_argument(
            flag,
            dest=dest,
            type=kind,
            default=default,
            metavar="|".join(choices) if choices else dest.upper(),
            help=_help(name) if default is None else _help(name).split(" (default: ")[0],
        )


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: never show a progress bar."""
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--log-level``: what the library's loggers (``secagg.*``) print on stderr."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        type=str.lower,
        help="print the library's log records of this level and above on stderr",
    )


def options_of(args: argparse.Namespace, *, cost: bool) -> dict[str, Any]:
    """Option name -> the value the user set (flags left at None / False are not set;
    the run sizes of :data:`RUN_DEFAULTS` always are)."""
    values: dict[str, Any] = {}
    for name in option_names(cost=cost):
        value = getattr(args, dest_of(name), None)
        if value is not None and value is not False:
            values[name] = value
    return values


def checked_spec(args: argparse.Namespace, *, cost: bool) -> tuple[ProtocolSpec, dict[str, Any]]:
    """The spec of ``--protocol`` and the options the user set, checked against its table.

    Raises OptionError (one line naming the flag, the value and the range, or why the
    protocol does not take the flag) or ConfigurationError for an unknown protocol.
    """
    try:
        spec = get_protocol(args.protocol)
    except ConfigurationError:
        raise OptionError(
            f"--protocol {args.protocol!r} is not a protocol: choose one of "
            f"{', '.join(protocol_names())}",
            option="protocol",
            flag="--protocol",
        ) from None
    values = options_of(args, cost=cost)
    spec.check_options(values, spell=flag_of)
    return spec, values


def check_range(flag: str, value: float, low: float, high: float) -> None:
    """OptionError unless ``low <= value <= high``, worded as the protocol options are."""
    if (isinstance(value, float) and math.isnan(value)) or not low <= value <= high:
        raise OptionError(
            f"{flag} {value!r} is out of range: secagg takes {low} <= {flag} <= {high}",
            option=flag.lstrip("-"),
            flag=flag,
        )


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to the current ``sys.stderr`` (tests and callers may swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def logging_to_stderr(level: str) -> Iterator[None]:
    """While inside: the ``secagg`` loggers' records of ``level`` and above go to stderr,
    one line each. The library itself only creates loggers; the command line decides
    where they go, and undoes it on the way out (``main`` may run in-process)."""
    logger = logging.getLogger("secagg")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.setLevel(level.upper())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
