"""FedAvg of a small CNN on scikit-learn's digits, with secure aggregation and dropouts.

Ten clients (by default) hold a non-IID share of the 8x8 digits (label proportions drawn
from a Dirichlet(alpha) per class). Every round each client trains locally; the server
aggregates their updates with SecAgg+ (or another protocol), weighted by example counts
that stay hidden inside the masked sum, while some clients drop out mid-protocol. The
same training then runs as plain float64 FedAvg with the same seed and the same dropouts:
only the fixed-point quantization differs, and the final accuracies must agree within
``--tolerance`` points (exit code 1 otherwise).

By default nothing is clipped (FedAvg); ``--clip C`` bounds the L2 norm of each client's
update of the trainable parameters, and the table then shows how many clients each round
clipped and the smallest factor applied (``report.clipped``).

Run:  .venv/bin/python examples/fedavg_digits.py [--rounds 20] [--protocol secagg+] [--clip 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from secagg.integrations.torch.digits import (
    DigitsCNN,
    DigitsData,
    dirichlet_split,
    evaluate,
    load_digits_data,
    train_local,
)
from secagg.integrations.torch.fedavg import RoundReport, SecureFedAvg
from secagg.integrations.torch.mean import ClippingWarning
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_UNMASKING
from secagg.protocols.registry import get_protocol
from secagg.sim.ledger import format_bytes


def make_dropouts(clients: list[int], rate: float, seed: int, protocol: str
                  ) -> Callable[[int], dict[str, list[int]]]:
    """Round index -> dropouts: ``rate`` of the clients vanish each round, alternately
    before sending their input (left out of the sum) and in the protocol's last round
    (their input is already in; for Bonawitz/SecAgg+, the survivors' shares still unmask
    the sum). The plain baseline uses the Bonawitz names for the same two moments."""
    if protocol == "plain":
        early, late = ROUND_MASKED_INPUT, ROUND_UNMASKING
    else:
        spec = get_protocol(protocol)
        early, late = spec.dropout_round, spec.round_names[-1]

    def dropouts(round_index: int) -> dict[str, list[int]]:
        # not-secret: which simulated clients drop is test data.
        rng = np.random.default_rng([seed, round_index])
        count = round(rate * len(clients))
        chosen = [int(c) for c in rng.choice(clients, size=count, replace=False)]
        return {early: chosen[0::2], late: chosen[1::2]}

    return dropouts


def train_federated(args: argparse.Namespace, data: DigitsData, parts: list[np.ndarray],
                    protocol: str, log: bool) -> tuple[float, list[RoundReport], list[float]]:
    """Run the whole federated training with ``protocol``; return final accuracy, reports
    and per-round accuracies. Everything random is seeded by ``args.seed``."""
    clients = list(range(1, len(parts) + 1))
    torch.manual_seed(args.seed)
    model = DigitsCNN()

    def local_train(local: torch.nn.Module, cid: int, round_index: int) -> int:
        idx = torch.from_numpy(parts[cid - 1])
        return train_local(local, data.x_train[idx], data.y_train[idx], epochs=args.epochs,
                           batch_size=16, lr=args.lr,
                           seed=args.seed * 1_000_003 + round_index * 1009 + cid)

    accuracies: list[float] = []

    def on_round(report: RoundReport, global_model: torch.nn.Module) -> None:
        accuracies.append(evaluate(global_model, data.x_test, data.y_test))
        if log:
            left_out = ",".join(map(str, sorted(report.excluded))) or "-"
            factors = [c.factor for c in report.clipped.values()]
            clipped = f"{len(factors)} x{min(factors):.2f}" if factors else "0"
            tqdm.write(f"{report.round_index + 1:>5} {100 * accuracies[-1]:>8.2f} "
                       f"{len(report.included):>8} {left_out:>10} {clipped:>9} "
                       f"{report.total_examples:>8} {report.seconds:>8.3f} "
                       f"{format_bytes(report.bytes_up):>10} {format_bytes(report.bytes_down):>10}")

    # The baseline repeats the secure run's clipping: its log lines would only repeat them.
    logging.getLogger("secagg").setLevel(args.log_level.upper() if log else logging.ERROR)
    options = {} if protocol == "plain" else {"dropout_fraction": args.dropout}
    agg = SecureFedAvg(model, protocol=protocol, clip=args.clip, bits=args.bits,
                       protocol_options=options)
    reports = agg.run(model, clients, local_train, rounds=args.rounds,
                      dropouts=make_dropouts(clients, args.dropout, args.seed, protocol),
                      on_round=on_round, progress=log and not args.no_progress)
    return accuracies[-1], reports, accuracies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2, help="local epochs per round")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration")
    parser.add_argument("--dropout", type=float, default=0.2, help="fraction dropping per round")
    parser.add_argument("--protocol", default="secagg+")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--clip", type=float, default=None,
                        help="L2 bound of a client's parameter update (default: no clipping)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.5, help="accuracy points")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"],
                        help="the library's log lines (debug: rounds, exclusions, timings)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="  [%(levelname)s %(name)s] %(message)s")
    logging.getLogger("secagg").setLevel(args.log_level.upper())
    torch.set_num_threads(1)  # reproducible CPU kernels, and polite on a shared machine
    # The table's "clipped" column and the log report clipping; no need for warnings too.
    warnings.simplefilter("ignore", ClippingWarning)

    data = load_digits_data(test_fraction=0.3, seed=args.seed)
    parts = dirichlet_split(data.y_train.numpy(), args.clients, alpha=args.alpha,
                            seed=args.seed, min_size=10)
    print(f"FedAvg on digits: {args.clients} clients (Dirichlet alpha = {args.alpha}, "
          f"{min(map(len, parts))}-{max(map(len, parts))} examples each), {args.rounds} rounds, "
          f"{args.dropout:.0%} dropouts per round, protocol {args.protocol}, "
          f"{args.bits}-bit sums, "
          f"{'no clipping' if args.clip is None else f'clip {args.clip}'}, "
          f"test set {len(data.y_test)}")
    print(f"{'round':>5} {'acc %':>8} {'included':>8} {'left out':>10} {'clipped':>9} "
          f"{'examples':>8} {'agg s':>8} {'bytes up':>10} {'bytes down':>10}")
    started = time.perf_counter()
    secure_acc, reports, secure_curve = train_federated(args, data, parts, args.protocol,
                                                        log=True)
    secure_seconds = time.perf_counter() - started
    started = time.perf_counter()
    plain_acc, plain_reports, plain_curve = train_federated(args, data, parts, "plain",
                                                            log=False)
    plain_seconds = time.perf_counter() - started
    same_clients = all(a.included == b.included
                       for a, b in zip(reports, plain_reports, strict=True))
    gap = 100 * abs(secure_acc - plain_acc)
    agg_seconds = sum(r.seconds for r in reports)
    clipped = sum(len(r.clipped) for r in reports)
    resolution = max(r.max_resolution for r in reports)
    print(f"\nsecure FedAvg ({args.protocol}): accuracy {100 * secure_acc:.2f} %  "
          f"({secure_seconds:.1f} s, of which aggregation {agg_seconds:.1f} s; "
          f"{format_bytes(sum(r.bytes_up for r in reports))} up, "
          f"{format_bytes(sum(r.bytes_down for r in reports))} down)")
    print(f"clients clipped: {clipped} of {sum(len(r.included) for r in reports)} "
          f"client-rounds; largest fixed-point resolution of a round: {resolution:.2g}")
    print(f"plain  FedAvg (float64): accuracy {100 * plain_acc:.2f} %  "
          f"({plain_seconds:.1f} s; float32 uploads would be "
          f"{format_bytes(sum(r.bytes_up for r in plain_reports))})")
    verdict = "OK" if gap <= args.tolerance and same_clients else "MISMATCH"
    print(f"difference {gap:.2f} points (tolerance {args.tolerance}), same clients included "
          f"every round: {same_clients}: {verdict}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "secure_accuracy": secure_acc, "plain_accuracy": plain_acc,
            "secure_curve": secure_curve, "plain_curve": plain_curve,
            "secure_seconds": secure_seconds, "plain_seconds": plain_seconds,
            "rounds": [r.to_dict() for r in reports]}, indent=2))
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
