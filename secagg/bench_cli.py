"""The ``secagg cost`` and ``secagg bench`` subcommands.

``secagg cost``: a protocol's bytes and operation counts per round and party, from the
analytic models, before running anything (``--calibrate`` adds predicted seconds from unit
costs measured on this machine, in about a second). ``secagg bench``: the cost suite of
``benchmarks/`` (a source checkout), writing JSON, BENCHMARKS.md and PNG plots.

Wire into :mod:`secagg.cli` with :func:`add_subcommands` (each subparser sets a
``handler(args, out) -> exit code``); :func:`main` runs the two commands alone.
Exit codes as :mod:`secagg.cli`: 0 done, 2 bad parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from secagg.errors import ConfigurationError
from secagg.sim.ledger import format_bytes

__all__ = [
    "COST_PROTOCOLS",
    "add_subcommands",
    "estimate_costs",
    "main",
    "run_bench",
    "run_cost",
]

COST_PROTOCOLS = ("bonawitz", "secagg+", "threshold-paillier", "ckks")
EXIT_OK = 0
EXIT_BAD_PARAMETERS = 2


def estimate_costs(
    protocol: str,
    *,
    clients: int,
    dim: int,
    bits: int = 32,
    dropout: float = 0.0,
    threshold: int | None = None,
    degree: int | None = None,
    active: bool = False,
    corrupt: float = 0.05,
    key_bits: int = 2048,
    ciphertext_bytes: float | None = None,
    decryption: str | None = None,
) -> dict[str, Any]:
    """The cost model of ``protocol`` with the defaults ``secagg simulate`` uses.

    ``dropout`` is a fraction of the clients (``round(dropout * clients)`` drop, as
    :meth:`DropoutSchedule.from_rate`); ``degree`` is SecAgg+'s k or the HE committee size
    (default ``min(5, n)``); Bonawitz and SecAgg+ take their defaults of ``threshold`` and
    ``degree`` from :func:`~secagg.protocols.bonawitz.spec.graph_parameters` (mode-aware:
    ``active`` raises the minimum threshold), threshold Paillier a committee majority and
    CKKS 1.
    ``decryption`` is threshold Paillier's committee mode (``"full"``, the default, or
    ``"balanced"``); any other protocol refuses it. Returns the model's JSON-ready dict with
    ``"protocol"`` set.

    Raises ConfigurationError for an unknown protocol or any parameter the model refuses.
    """
    if protocol not in COST_PROTOCOLS:
        raise ConfigurationError(f"unknown protocol {protocol!r}; known: {COST_PROTOCOLS}")
    if isinstance(clients, bool) or not isinstance(clients, int) or clients < 2:
        raise ConfigurationError("clients must be an int >= 2")
    if not isinstance(dropout, float | int) or not 0.0 <= dropout <= 1.0 or math.isnan(dropout):
        raise ConfigurationError(f"dropout must be a fraction in [0, 1], got {dropout}")
    dropouts = math.floor(dropout * clients + 0.5)
    if decryption is not None and protocol != "threshold-paillier":
        raise ConfigurationError("--decryption applies to threshold-paillier only")
    model: dict[str, Any]
    if protocol in ("bonawitz", "secagg+"):
        from secagg.cost.bonawitz import bonawitz_costs
        from secagg.protocols.bonawitz.config import ACTIVE, SEMI_HONEST
        from secagg.protocols.bonawitz.spec import graph_parameters
        from secagg.protocols.registry import SimulationParams

        params = SimulationParams(
            clients=clients,
            dim=dim,
            bits=bits,
            threshold=threshold,
            degree=degree,
            dropout_fraction=dropout,
            corrupt_fraction=corrupt,
        )
        mode = ACTIVE if active else SEMI_HONEST
        k, t = graph_parameters(params, sparse=protocol == "secagg+", mode=mode)
        model = bonawitz_costs(clients, dim, bits, t, k, dropouts, active=active)
    elif protocol == "threshold-paillier":
        from secagg.cost.threshold_he import threshold_paillier_costs
        from secagg.protocols.threshold_he.config import DEFAULT_DECRYPTION

        model = threshold_paillier_costs(
            clients,
            dim,
            bits,
            degree,
            threshold,
            dropouts,
            key_bits=key_bits,
            decryption=decryption or DEFAULT_DECRYPTION,
        )
    else:
        from secagg.cost.threshold_he import ckks_costs

        model = ckks_costs(
            clients,
            dim,
            bits,
            degree,
            1 if threshold is None else threshold,
            dropouts,
            ciphertext_bytes=ciphertext_bytes,
        )
    model["protocol"] = protocol
    return model


def _calibrated(model: dict[str, Any], key_bits: int) -> dict[str, Any]:
    """Predicted seconds for ``model`` from unit costs measured now, on this machine."""
    from secagg.cost import timing as cost_timing

    params = model["parameters"]
    protocol = model["protocol"]
    if protocol in ("bonawitz", "secagg+"):
        units = cost_timing.calibrate(
            m=min(params["m"], 1 << 22),
            bits=params["bits"],
            holders=params["degree"] + 1,
            threshold=params["threshold"],
            reconstructions=min(params["n"], 256),
        )
    elif protocol == "threshold-paillier":
        from secagg.he.threshold_paillier import deal_threshold_keys

        # A throwaway key of the model's size; unit costs depend on sizes only.
        public, _ = deal_threshold_keys(
            key_bits, threshold=params["threshold"], holders=params["committee"]
        )
        units = cost_timing.calibrate_paillier(public, ciphertexts=params["ciphertexts"])
    else:
        from secagg.he.ckks import CkksParameters

        units = cost_timing.calibrate_ckks(
            CkksParameters(params["poly_modulus_degree"], tuple(params["coeff_mod_bit_sizes"])),
            m=min(params["m"], 1 << 22),
            bits=params["bits"],
        )
    prediction = cost_timing.predict_seconds(model, units)
    prediction["unit_costs"] = units.to_dict()
    return prediction


def _cost_table(model: dict[str, Any], prediction: dict[str, Any] | None) -> str:
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


def run_cost(args: argparse.Namespace, out: TextIO) -> int:
    """Handler of ``secagg cost``: print the model (table or ``--json``)."""
    model = estimate_costs(
        args.protocol,
        clients=args.clients,
        dim=args.dim,
        bits=args.bits,
        dropout=args.dropout,
        threshold=args.threshold,
        degree=args.degree,
        active=args.active,
        key_bits=args.key_bits,
        ciphertext_bytes=args.ciphertext_bytes,
        decryption=args.decryption,
    )
    prediction = _calibrated(model, args.key_bits) if args.calibrate else None
    if args.json:
        document = dict(model)
        if prediction is not None:
            document["predicted_seconds"] = prediction
        json.dump(document, out)
        out.write("\n")
    else:
        out.write(_cost_table(model, prediction) + "\n")
    return EXIT_OK


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def run_bench(args: argparse.Namespace, out: TextIO) -> int:
    """Handler of ``secagg bench``: run the suite, write JSON, markdown and plots.

    Needs a source checkout (the ``benchmarks`` package beside ``secagg``): raises
    ConfigurationError when it is missing. Defaults: the full plan writes BENCHMARKS.md,
    docs/img/*.png and benchmarks/results/bench.json; ``--quick`` writes everything under
    benchmarks/results/quick/; ``--out DIR`` puts all three under DIR.
    """
    root = _repo_root()
    if not (root / "benchmarks" / "suite.py").is_file():
        raise ConfigurationError(
            "secagg bench needs a source checkout (benchmarks/ beside secagg/)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.plots import write_plots
    from benchmarks.report import console_summary, write_json, write_markdown
    from benchmarks.suite import FULL, QUICK, run_suite

    plan = QUICK if args.quick else FULL
    if args.out is not None:
        base = Path(args.out)
        json_path, md_path, plots = base / "bench.json", base / "BENCHMARKS.md", base / "img"
    elif args.quick:
        base = root / "benchmarks" / "results" / "quick"
        json_path, md_path, plots = base / "bench.json", base / "BENCHMARKS.md", base / "img"
    else:
        json_path = root / "benchmarks" / "results" / "bench.json"
        md_path, plots = root / "BENCHMARKS.md", root / "docs" / "img"
    json_path = Path(args.json) if args.json else json_path
    md_path = Path(args.markdown) if args.markdown else md_path
    plots = Path(args.plots) if args.plots else plots
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as handle:
            document = json.load(handle)
    else:
        command = "secagg bench" + (" --quick" if args.quick else "")
        document = run_suite(plan, progress=not args.no_progress, argv=[command])
        write_json(document, str(json_path))
    written = write_plots(document, str(plots))
    write_markdown(document, str(md_path), str(plots))
    out.write(console_summary(document) + "\n")
    wrote = f"{md_path} and {len(written)} plots in {plots}"
    out.write(f"wrote {wrote}" + ("" if args.from_json else f", data in {json_path}") + "\n")
    return EXIT_OK


def add_subcommands(subparsers: Any) -> None:
    """Add ``cost`` and ``bench`` to an argparse subparsers object (``add_subparsers()``).

    Each sets ``handler``: call ``args.handler(args, sys.stdout)`` for the exit code.
    """
    cost = subparsers.add_parser(
        "cost",
        help="bytes and operations per round and party, from the cost model (no run)",
    )
    cost.add_argument("--protocol", choices=COST_PROTOCOLS, default="secagg+")
    cost.add_argument("--clients", type=int, default=100, help="number of clients n")
    cost.add_argument("--dim", type=int, default=1000, help="vector length m")
    cost.add_argument("--bits", type=int, default=32, help="modulus 2^bits / value bits")
    cost.add_argument("--dropout", type=float, default=0.0, help="fraction of clients dropping")
    cost.add_argument("--threshold", type=int, default=None, help="Shamir / committee threshold")
    cost.add_argument(
        "--degree", type=int, default=None, help="SecAgg+ neighbours k, or HE committee size"
    )
    cost.add_argument("--active", action="store_true", help="active-security mode (masking)")
    cost.add_argument("--key-bits", type=int, default=2048, help="threshold Paillier key size")
    cost.add_argument(
        "--decryption",
        choices=("full", "balanced"),
        default=None,
        help="threshold Paillier: every member decrypts all (full, default) or t/l (balanced)",
    )
    cost.add_argument(
        "--ciphertext-bytes", type=float, default=None, help="CKKS: mean ciphertext size"
    )
    cost.add_argument(
        "--calibrate", action="store_true", help="also predict seconds (measures unit costs now)"
    )
    cost.add_argument("--json", action="store_true", help="print one JSON document")
    cost.set_defaults(handler=run_cost)

    bench = subparsers.add_parser(
        "bench", help="run the protocol cost benchmarks (source checkout), write reports"
    )
    bench.add_argument("--quick", action="store_true", help="CI sizes: under a minute")
    bench.add_argument("--out", default=None, help="directory for JSON, markdown and plots")
    bench.add_argument("--json", default=None, metavar="PATH", help="where to write the JSON")
    bench.add_argument("--markdown", default=None, metavar="PATH", help="the markdown report")
    bench.add_argument("--plots", default=None, metavar="DIR", help="directory of the PNGs")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.add_argument(
        "--from-json",
        default=None,
        metavar="PATH",
        help="re-render markdown and plots from an earlier run's JSON (no measurement)",
    )
    bench.set_defaults(handler=run_bench)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``secagg cost|bench ...`` alone: parse, run the handler, map errors to exit codes."""
    parser = argparse.ArgumentParser(prog="secagg", description=__doc__.splitlines()[0])
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args, out if out is not None else sys.stdout)
    except ConfigurationError as exc:
        print(f"secagg: bad parameters: {exc}", file=sys.stderr)
        return EXIT_BAD_PARAMETERS
    return code


if __name__ == "__main__":
    raise SystemExit(main())
