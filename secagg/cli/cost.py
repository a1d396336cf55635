"""``secagg cost``: a protocol's bytes and operation counts per round and party, before
running anything.

The figures are the protocol's analytic cost model (:func:`secagg.cost.estimate`, reached
through its registry spec) with the defaults ``secagg simulate`` uses; ``--calibrate`` adds
predicted seconds from unit costs measured on this machine, in about a second. The flags
are checked against the protocol's option table as ``simulate`` checks them. The models
are formulas: they run on a core install (threshold Paillier's reads constants of its
backend, the ``he`` extra); ``--calibrate`` times the real operations and needs the
protocol's extras.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from secagg.cli.args import EXIT_OK, add_common, add_options, add_protocol, checked_spec
from secagg.cost.estimate import estimate, predict
from secagg.sim.ledger import format_bytes

__all__ = ["DESCRIPTION", "add_parser", "cost_table", "run"]

DESCRIPTION = """\
Print a protocol's bytes and operation counts per round and party from its cost model,
before running anything (the simulator's defaults: the same threshold and degree).
--calibrate adds predicted seconds from unit costs measured now on this machine.

Every flag is checked for the protocol it describes, as in secagg simulate: a flag the
protocol does not take, or a value outside its range, is refused with exit code 2."""

_ESTIMATE_ARGUMENTS = {
    "dropout_fraction": "dropout",
    "corrupt_fraction": "corrupt",
}


def add_parser(commands: Any) -> None:
    """Add ``cost`` to an argparse subparsers object; it sets ``handler`` to :func:`run`."""
    cost = commands.add_parser(
        "cost",
        help="bytes and operations per round and party, from the cost model (no run)",
        description=DESCRIPTION,
    )
    add_protocol(cost)
    add_options(cost, cost=True)
    cost.add_argument(
        "--calibrate", action="store_true", help="also predict seconds (measures unit costs now)"
    )
    cost.add_argument(
        "--json", action="store_true", help="print one JSON document to stdout (errors too)"
    )
    add_common(cost)
    cost.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Print the model ``args`` describe (a table, or ``--json``); the exit code.

    Raises OptionError / ConfigurationError for bad parameters or a protocol without a
    cost model, MissingExtraError when ``--calibrate`` needs an extra that is missing.
    """
    spec, values = checked_spec(args, cost=True)
    model = estimate(
        spec.name, **{_ESTIMATE_ARGUMENTS.get(name, name): v for name, v in values.items()}
    )
    prediction = predict(model) if args.calibrate else None
    if args.json:
        document = dict(model)
        if prediction is not None:
            document["predicted_seconds"] = prediction
        json.dump(document, out)
        out.write("\n")
    else:
        out.write(cost_table(model, prediction) + "\n")
    return EXIT_OK


def cost_table(model: dict[str, Any], prediction: dict[str, Any] | None) -> str:
    """The model as a plain-text table: one row per round, totals and operation counts,
    and the predicted seconds when ``prediction`` is given."""
    params = model["parameters"]
    shown = ", ".join(f"{k} = {v}" for k, v in params.items() if not isinstance(v, list))
    lines = [f"{model['protocol']}: {shown}", ""]
    header = (
        f"{'round':<18} {'clients':>8} {'up/client':>11} {'down/client':>12} "
        f"{'up total':>11} {'down total':>11}"
    )
    if prediction is not None:
        header += f" {'client s':>9} {'server s':>9}"
    lines += [header, "-" * len(header)]
    for name, data in model["rounds"].items():
        line = (
            f"{name:<18} {data['clients']:>8.6g} {format_bytes(data['client_bytes_up']):>11} "
            f"{format_bytes(data['client_bytes_down']):>12} "
            f"{format_bytes(data['server_bytes_up']):>11} "
            f"{format_bytes(data['server_bytes_down']):>11}"
        )
        if prediction is not None:
            guess = prediction["rounds"][name]
            line += f" {guess['client']:>9.4f} {guess['server']:>9.3f}"
        lines.append(line)
    totals = model["totals"]
    who = "one committee member" if "committee" in params else "one surviving client"
    lines += [
        "-" * len(header),
        f"{who}, whole run: up {format_bytes(totals['client_bytes_up'])}, down "
        f"{format_bytes(totals['client_bytes_down'])}, expansion {totals['expansion']:.3f}x "
        "over its packed input",
        f"server, whole run: received {format_bytes(totals['server_bytes_up'])}, sent "
        f"{format_bytes(totals['server_bytes_down'])}",
    ]
    for side in ("client", "server"):
        ops = {k: v for k, v in model["operations"][side].items() if v}
        shown_ops = ", ".join(f"{k} {v:,.6g}" for k, v in ops.items())
        lines.append(f"{side} operations: {shown_ops}")
    if prediction is not None:
        lines.append(
            f"predicted seconds (unit costs measured now; crypto and vector work only, "
            f"stated tolerance 3x): client {prediction['client']:.4f}, server "
            f"{prediction['server']:.3f}"
        )
    return "\n".join(lines)
