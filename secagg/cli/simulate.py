"""``secagg simulate``: one in-process aggregation, checked against the plaintext sum.

The flags are checked against the protocol's option table (:func:`~secagg.cli.args.checked_spec`),
the protocol's registry spec builds the configuration, the simulator runs every party and
counts the bytes, and the report (a table, or one JSON document) states every parameter the
run actually used: the spec's ``describe`` of the built configuration (threshold and degree
included, whether given or chosen) plus the options in force. Exit codes: 0 the result
equals the plaintext sum of exactly the included clients, 1 it does not (see
:mod:`secagg.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from secagg.cli.args import (
    EXIT_MISMATCH,
    EXIT_OK,
    add_common,
    add_no_progress,
    add_options,
    add_protocol,
    check_range,
    checked_spec,
    dest_of,
    integer,
)
from secagg.protocols.options import OptionError, flag_of
from secagg.protocols.registry import ProtocolSpec
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

__all__ = ["DESCRIPTION", "MAX_SEED", "add_parser", "parameters_used", "run"]

MAX_SEED = 2**64 - 1

DESCRIPTION = """\
Run one aggregation in-process: a server and every client, each message encoded,
counted and decoded. The result is checked against the plaintext sum of exactly the
clients the protocol included (exit 0 when it matches, 1 when not).

Every flag is checked for the protocol it runs: a flag the protocol does not take
(--degree for bonawitz, --active for the HE protocols...) or a value outside its range
is refused with exit code 2. The report states every parameter the run used, whether
given or chosen by the protocol (threshold, degree, key size...)."""


def add_parser(commands: Any) -> None:
    """Add ``simulate`` to an argparse subparsers object; it sets ``handler`` to :func:`run`."""
    sim = commands.add_parser(
        "simulate",
        help="run one aggregation in-process and check it against the plaintext sum",
        description=DESCRIPTION,
    )
    add_protocol(sim)
    add_options(sim, cost=False)
    sim.add_argument(
        "--dropout-round",
        default=None,
        metavar="ROUND",
        help="the round before which the dropping clients vanish (default: the protocol's: "
        "masked_input for bonawitz and secagg+, encrypted_input for the HE protocols)",
    )
    sim.add_argument(
        "--seed", type=integer, default=0, help="seed of the test inputs and of who drops"
    )
    sim.add_argument(
        "--json", action="store_true", help="print one JSON document to stdout (errors too)"
    )
    add_no_progress(sim)
    add_common(sim)
    sim.set_defaults(handler=run)


def _dropout_round(spec: ProtocolSpec, chosen: str | None) -> str:
    round_name = chosen if chosen is not None else spec.dropout_round
    if round_name not in spec.round_names:
        raise OptionError(
            f"--dropout-round {round_name!r} is not a round of {spec.name}: choose one of "
            f"{', '.join(spec.round_names)}",
            option="dropout_round",
            flag="--dropout-round",
        )
    return round_name


def parameters_used(spec: ProtocolSpec, values: dict[str, Any], config: object) -> dict[str, Any]:
    """Every parameter a run of ``config`` uses, by flag name: the options in force (given
    or defaulted; an option that does not apply in this context, such as the corrupt
    fraction once a degree is given, is left out) overlaid with the spec's ``describe`` of
    the built configuration (the threshold, degree... actually used)."""
    used: dict[str, Any] = {"protocol": spec.name}
    context = spec.context(values)
    for name, option in spec.option_table.items():
        if option.cost_only or context[name] is None:
            continue
        if option.unless is not None and option.unless(context) is not None:
            continue
        used[dest_of(name)] = context[name]
    used.update(spec.describe_config(config))
    used.setdefault("notes", [])
    return used


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the simulation ``args`` describe and report it to ``out``; the exit code.

    Raises OptionError / ConfigurationError for bad parameters, MissingExtraError when the
    protocol needs an extra that is not installed, and ProtocolAbort / ProtocolViolation
    when the protocol aborts (the caller maps them to exit codes).
    """
    spec, values = checked_spec(args, cost=False)
    check_range("--seed", args.seed, 0, MAX_SEED)
    round_name = _dropout_round(spec, args.dropout_round)
    config = spec.configure(values, spell=flag_of)
    ids = list(spec.client_ids(config))
    dropouts = DropoutSchedule.from_rate(ids, args.dropout, round_name, args.seed)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    result = simulate(
        config,
        seeded_inputs(args.seed, spec.vector_length(config), spec.bits(config)),
        dropouts=dropouts,
        progress=progress,
        protocol=spec,
    )
    parameters = parameters_used(spec, values, config)
    parameters.update(dropout_round=round_name, seed=args.seed)
    _report(result, parameters, args.json, out)
    return EXIT_OK if result.matches else EXIT_MISMATCH


def _report(
    result: SimulationResult, parameters: dict[str, Any], as_json: bool, out: TextIO
) -> None:
    if as_json:
        document = result.summary()
        document["parameters"] = parameters
        json.dump(document, out)
        out.write("\n")
        return
    aggregate = result.aggregate
    shown = ", ".join(
        f"{key} {value}"
        for key, value in parameters.items()
        if key not in ("protocol", "notes") and not isinstance(value, list | dict)
    )
    out.write(f"{result.protocol}: {shown}\n")
    for note in parameters["notes"]:
        out.write(f"note: {note}\n")
    out.write(
        f"{result.seconds:.2f} s; included {len(aggregate.included)}, excluded "
        f"{len(aggregate.excluded)} (dropped by the transport: {len(result.dropped)})\n\n"
    )
    out.write(result.costs.format_table() + "\n\n")
    verdict = "OK" if result.matches else "MISMATCH"
    out.write(f"check against the plaintext sum of the included clients: {verdict}\n")
