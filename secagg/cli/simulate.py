"""``secagg simulate``: one in-process aggregation, checked against the plaintext sum.

The protocol's registry spec builds the configuration (with the variants the flags ask
for), the simulator runs every party and counts the bytes, and the report is a table or
one JSON document. Exit codes: 0 the result equals the plaintext sum of exactly the
included clients, 1 it does not (see :mod:`secagg.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from secagg.cli.args import (
    EXIT_MISMATCH,
    EXIT_OK,
    add_no_progress,
    add_protocol,
    add_size,
    add_variants,
    check_variants,
    variants_of,
)
from secagg.errors import ConfigurationError
from secagg.protocols.registry import SimulationParams, get_protocol, protocol_names
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add ``simulate`` to an argparse subparsers object; it sets ``handler`` to :func:`run`."""
    sim = commands.add_parser(
        "simulate",
        help="run one aggregation in-process and check it against the plaintext sum",
    )
    add_protocol(sim, protocol_names())
    add_size(sim)
    sim.add_argument(
        "--dropout-round",
        default=None,
        help="round before which they drop (default: the protocol's, e.g. masked_input)",
    )
    add_variants(sim)
    sim.add_argument("--seed", type=int, default=0, help="seed of the test inputs and dropouts")
    sim.add_argument("--json", action="store_true", help="print one JSON document to stdout")
    add_no_progress(sim)
    sim.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the simulation ``args`` describe and report it to ``out``; the exit code.

    Raises ConfigurationError for bad parameters and ProtocolAbort / ProtocolViolation when
    the protocol aborts (the caller maps them to exit codes).
    """
    if args.clients < 1 or args.dim < 1 or not 1 <= args.bits <= 64 or args.seed < 0:
        raise ConfigurationError("need --clients >= 1, --dim >= 1, 1 <= --bits <= 64, --seed >= 0")
    spec = get_protocol(args.protocol)
    params = SimulationParams(
        clients=args.clients,
        dim=args.dim,
        bits=args.bits,
        threshold=args.threshold,
        degree=args.degree,
        dropout_fraction=args.dropout,
    )
    variants = variants_of(args)
    check_variants(spec, variants)
    config = spec.make_config(params, **variants)
    ids = list(spec.client_ids(config))
    round_name = args.dropout_round or spec.dropout_round
    dropouts = DropoutSchedule.from_rate(ids, args.dropout, round_name, args.seed)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    result = simulate(
        config,
        seeded_inputs(args.seed, spec.vector_length(config), spec.bits(config)),
        dropouts=dropouts,
        progress=progress,
    )
    _report(result, args, out)
    return EXIT_OK if result.matches else EXIT_MISMATCH


def _report(result: SimulationResult, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        document = result.summary()
        document["parameters"] = {
            "protocol": args.protocol,
            "clients": args.clients,
            "dim": args.dim,
            "dropout": args.dropout,
            "dropout_round": args.dropout_round,
            "threshold": args.threshold,
            "degree": args.degree,
            "bits": args.bits,
            "decryption": args.decryption,
            "active": args.active,
            "seed": args.seed,
        }
        json.dump(document, out)
        out.write("\n")
        return
    aggregate = result.aggregate
    out.write(
        f"{result.protocol}: n = {result.clients}, m = {result.expected.shape[0]}, "
        f"bits = {result.bits}, {result.seconds:.2f} s\n"
    )
    out.write(
        f"included {len(aggregate.included)}, excluded {len(aggregate.excluded)}"
        f" (dropped by the transport: {len(result.dropped)})\n\n"
    )
    out.write(result.costs.format_table() + "\n\n")
    verdict = "OK" if result.matches else "MISMATCH"
    out.write(f"check against the plaintext sum of the included clients: {verdict}\n")
