"""``secagg dp plan``: what distributed DP costs for a run, before running anything.

Solves the plan :meth:`secagg.dp.DistributedDP.plan` makes (the largest scale whose modular
sum still fits ``--bits`` bits with the wrap bound, the per-client noise that meets the
target epsilon) and prints the figures that decide a deployment: the noise multiplier
beside the central DP-FedAvg Gaussian's for the same ``(epsilon, delta, q, rounds)``, the
achieved epsilon, the scale, the per-coordinate wrap probability and the upload per client
beside 32-bit SecAgg+. Without ``--epsilon`` the plan is compression only
(:class:`secagg.dp.Compression`: rotation, rounding and modular clipping, no noise).

Bad values exit 2 with one line naming the flag, the value and the rule (as JSON with
``--json``).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, TextIO

from secagg.cli.args import EXIT_OK, add_common, check_range, integer, number
from secagg.dp import Compression, DistributedDP, DPPlan
from secagg.dp.plan import NOISE_MECHANISMS
from secagg.dp.rotation import ROTATIONS
from secagg.errors import ConfigurationError
from secagg.protocols.options import OptionError
from secagg.sim.ledger import format_bytes

__all__ = ["DESCRIPTION", "add_parser", "plan_document", "plan_table", "run"]

DESCRIPTION = """\
Plan distributed differential privacy for secure aggregation: the per-client noise and
scale that reach --epsilon over --rounds rounds (each client sampled with probability
--sampling-rate) when --clients clients' encodings of --bits bits are summed, and what
that costs beside central DP-FedAvg and 32-bit SecAgg+.

Without --epsilon: a compression-only plan (no noise; --delta, --rounds, --sampling-rate,
--mechanism and --min-clients then do not apply). Bad values exit 2 with one line."""

_NOISE_ONLY = ("delta", "rounds", "sampling_rate", "mechanism", "min_clients")
# Config field -> flag, for the config's error texts ("sampling_rate must be ...").
_FLAGS = {
    "epsilon": "--epsilon", "delta": "--delta", "rounds": "--rounds",
    "sampling_rate": "--sampling-rate", "bits": "--bits", "clip": "--clip",
    "mechanism": "--mechanism", "expected_clients": "--clients", "clients": "--clients",
    "min_clients": "--min-clients", "wrap_probability": "--wrap-probability",
    "rotation": "--rotation", "dim": "--dim",
}
_FIELD = re.compile(r"\b(" + "|".join(sorted(_FLAGS, key=len, reverse=True)) + r")(?=( must|=))")


def add_parser(commands: Any) -> None:
    """Add ``dp`` (with its ``plan`` subcommand) to an argparse subparsers object."""
    dp = commands.add_parser(
        "dp", help="distributed differential privacy: plan a run (no run)",
        description="Distributed differential privacy for secure aggregation.")
    sub = dp.add_subparsers(dest="dp_command", required=True, metavar="COMMAND")
    plan = sub.add_parser("plan", help="noise, scale, epsilon and upload size of a run",
                          description=DESCRIPTION)
    plan.add_argument("--clients", type=integer, required=True,
                      help="clients whose encodings one round sums")
    plan.add_argument("--dim", type=integer, required=True, help="values per update")
    plan.add_argument("--epsilon", type=number, help="target epsilon of the whole run")
    plan.add_argument("--delta", type=number, help="target delta, in (0, 1)")
    plan.add_argument("--rounds", type=integer, help="rounds of the run")
    plan.add_argument("--sampling-rate", type=number,
                      help="probability a client takes part in a round (Poisson sampling; "
                           "default 1)")
    plan.add_argument("--bits", type=integer, default=16,
                      help="ring width of an encoding (the modular sum's width)")
    plan.add_argument("--mechanism", choices=NOISE_MECHANISMS,
                      help="noise: skellam or dgauss (distributed discrete Gaussian; "
                           "default skellam)")
    plan.add_argument("--clip", type=number, default=1.0, help="L2 clip of an update")
    plan.add_argument("--min-clients", type=integer,
                      help="split the noise over this many clients (a floor for dropouts; "
                           "default --clients)")
    plan.add_argument("--wrap-probability", type=number, default=1e-4,
                      help="bound on the per-coordinate probability that the sum wraps")
    plan.add_argument("--rotation", choices=ROTATIONS, default="hadamard",
                      help="the random rotation")
    plan.add_argument("--json", action="store_true",
                      help="print one JSON document to stdout (errors too)")
    add_common(plan)
    plan.set_defaults(handler=run)


def _flagged(exc: ConfigurationError) -> ConfigurationError:
    """The config's error with its field names spelled as flags."""
    return ConfigurationError(_FIELD.sub(lambda m: _FLAGS[m.group(1)], str(exc)))


def _config(args: argparse.Namespace) -> DistributedDP | Compression:
    check_range("--clients", args.clients, 2, 2**31 - 1)
    check_range("--dim", args.dim, 1, 2**30)
    try:
        if args.epsilon is None:
            given = [name for name in _NOISE_ONLY if getattr(args, name) is not None]
            if given:
                flag = _FLAGS[given[0]]
                raise OptionError(f"{flag} needs --epsilon (without it the plan is "
                                  "compression only, with no noise)",
                                  option=given[0], flag=flag)
            return Compression(bits=args.bits, clip=args.clip, expected_clients=args.clients,
                               rotation=args.rotation, wrap_probability=args.wrap_probability)
        for name in ("delta", "rounds"):
            if getattr(args, name) is None:
                flag = _FLAGS[name]
                raise OptionError(f"{flag} is required with --epsilon", option=name, flag=flag)
        return DistributedDP(
            epsilon=args.epsilon, delta=args.delta, rounds=args.rounds,
            sampling_rate=1.0 if args.sampling_rate is None else args.sampling_rate,
            bits=args.bits, clip=args.clip, mechanism=args.mechanism or "skellam",
            expected_clients=args.clients, min_clients=args.min_clients,
            rotation=args.rotation, wrap_probability=args.wrap_probability)
    except OptionError:
        raise
    except ConfigurationError as exc:
        raise _flagged(exc) from None


def plan_document(plan: DPPlan) -> dict[str, Any]:
    """The plan's fields plus the comparisons the command prints (JSON-ready)."""
    document = plan.to_dict()
    central = plan.central_gaussian_noise_multiplier
    document["noise_multiplier_ratio"] = (
        plan.noise_multiplier / central
        if plan.noise_multiplier is not None and central else None)
    document["upload_ratio_vs_32bit"] = plan.bytes_per_client_32bit / plan.bytes_per_client
    document["mean_error_rms"] = plan.mean_error_rms(plan.clients)
    return document


def plan_table(document: dict[str, Any]) -> str:
    """The plan as aligned text lines."""
    d = document
    private = d["mechanism"] != "none"
    what = (f"{d['mechanism']}, noise split over {d['noise_clients']} clients" if private
            else "compression only (no noise)")
    rows: list[tuple[str, str]] = []
    if private:
        rows += [
            ("noise_multiplier", f"{d['noise_multiplier']:.6g}"),
            ("central_gaussian_noise_multiplier", f"{d['central_gaussian_noise_multiplier']:.6g}"),
            ("ratio (distributed / central)", f"{d['noise_multiplier_ratio']:.4f}x"),
            ("epsilon", f"{d['epsilon']:.6g} (target {d['target_epsilon']:g}, delta "
                        f"{d['delta']:g}, {d['rounds']} rounds, sampling rate "
                        f"{d['sampling_rate']:g})"),
        ]
    rows += [
        ("scale", f"{d['scale']:.6g} (grid step {1 / d['scale']:.3g})"),
        ("wrap_probability", f"{d['wrap_probability']:.3g} per coordinate (bound "
                             f"{d['wrap_probability_bound']:g})"),
        ("bytes per client upload", f"{format_bytes(d['bytes_per_client'])} "
                                    f"({d['bytes_per_client']} B; 32-bit SecAgg+: "
                                    f"{d['bytes_per_client_32bit']} B, "
                                    f"{d['upload_ratio_vs_32bit']:.2f}x smaller)"),
        ("mean error (rms, L2)", f"{d['mean_error_rms']:.4g} with {d['clients']} clients "
                                 f"(clip {d['clip']:g})"),
    ]
    width = max(len(name) for name, _ in rows)
    head = (f"secagg dp plan: {what}; {d['bits']} bits, {d['clients']} clients, dim "
            f"{d['dim']} (padded to {d['padded_dim']}, {d['rotation']} rotation)")
    return "\n".join([head, *(f"{name:<{width}}  {value}" for name, value in rows)])


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Print the plan ``args`` describe (a table, or ``--json``); the exit code.

    Raises OptionError / ConfigurationError (exit 2, one line) for bad values or a config
    that cannot be planned (too few bits, the wrap bound, the sampler's range).
    """
    config = _config(args)
    try:
        plan = config.plan(args.dim)
    except ConfigurationError as exc:
        raise _flagged(exc) from None
    document = plan_document(plan)
    if args.json:
        json.dump(document, out)
        out.write("\n")
    else:
        out.write(plan_table(document) + "\n")
    return EXIT_OK
