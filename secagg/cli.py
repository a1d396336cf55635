"""The ``secagg`` command line: ``secagg simulate ...`` runs one in-process aggregation.

Exit codes: 0 the result equals the plaintext sum of exactly the included clients; 1 it does
not; 2 bad parameters; 3 the protocol aborted or a party rejected a message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from secagg.errors import ConfigurationError, ProtocolAbort, ProtocolViolation
from secagg.protocols.registry import SimulationParams, get_protocol, protocol_names
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

__all__ = ["main"]

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_PARAMETERS = 2
EXIT_ABORTED = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secagg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser(
        "simulate",
        help="run one aggregation in-process and check it against the plaintext sum",
    )
    sim.add_argument("--protocol", choices=protocol_names(), default="secagg+")
    sim.add_argument("--clients", type=int, default=100, help="number of clients n")
    sim.add_argument("--dim", type=int, default=1000, help="vector length m")
    sim.add_argument("--dropout", type=float, default=0.0, help="fraction of clients dropping")
    sim.add_argument(
        "--dropout-round",
        default=None,
        help="round before which they drop (default: the protocol's, e.g. masked_input)",
    )
    sim.add_argument("--threshold", type=int, default=None, help="Shamir threshold t")
    sim.add_argument("--degree", type=int, default=None, help="SecAgg+ neighbours k")
    sim.add_argument("--bits", type=int, default=32, help="modulus 2^bits")
    sim.add_argument(
        "--decryption",
        choices=("full", "balanced"),
        default=None,
        help="threshold Paillier: every member decrypts all (full, default) or t/l (balanced)",
    )
    sim.add_argument(
        "--active",
        action="store_true",
        help="bonawitz / secagg+: active-adversary mode (Ed25519 identities made in-process)",
    )
    sim.add_argument("--seed", type=int, default=0, help="seed of the test inputs and dropouts")
    sim.add_argument("--json", action="store_true", help="print one JSON document to stdout")
    sim.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    from secagg.bench_cli import add_subcommands  # cost and bench: their own module

    add_subcommands(commands)
    return parser


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
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
    config = _make_config(args, params)
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


def _make_config(args: argparse.Namespace, params: SimulationParams) -> object:
    """The spec's own config, or the variant a flag asks for; ConfigurationError when the
    flag does not apply to the protocol."""
    if args.active and args.decryption is not None:
        raise ConfigurationError("--active and --decryption apply to different protocols")
    if args.active:
        if args.protocol not in ("bonawitz", "secagg+"):
            raise ConfigurationError("--active applies to bonawitz and secagg+ only")
        from secagg.protocols.bonawitz.spec import ActiveSimulation

        return ActiveSimulation.create(params, sparse=args.protocol == "secagg+")
    if args.decryption is not None:
        if args.protocol != "threshold-paillier":
            raise ConfigurationError("--decryption applies to threshold-paillier only")
        from secagg.protocols.threshold_he.spec import ThresholdHESimulation

        return ThresholdHESimulation.threshold_paillier(params, decryption=args.decryption)
    return get_protocol(args.protocol).make_config(params)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args, sys.stdout)
        if args.command in ("cost", "bench"):
            return int(args.handler(args, sys.stdout))
    except ConfigurationError as exc:
        print(f"secagg: bad parameters: {exc}", file=sys.stderr)
        return EXIT_BAD_PARAMETERS
    except (ProtocolAbort, ProtocolViolation) as exc:
        print(f"secagg: protocol aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ABORTED
    return EXIT_BAD_PARAMETERS  # pragma: no cover - argparse requires a command
