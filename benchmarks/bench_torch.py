"""PyTorch integration benchmarks: state_dict flattening and one secure FedAvg round.

Run: ``.venv/bin/python -m benchmarks.bench_torch [--quick] [--json PATH]``.

Two tables, each against a floor measured side by side in the same run:

* flatten + unflatten of a ``state_dict`` (:class:`StateLayout`) against the floor
  ``torch.cat`` of the flattened tensors into one float64 vector and ``torch.split`` back;
* one FedAvg round of :class:`SecureFedAvg` (clip, fixed-point encode with the weight
  inside, the protocol in-process with dropouts, decode, new global state) against the
  floor: the same round with the ``plain`` float64 backend (clip and weighted mean, no
  quantization, no protocol). Bytes up per client are compared with a float32 model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.common import best_of
from secagg.integrations.torch.digits import DigitsCNN
from secagg.integrations.torch.fedavg import SecureFedAvg
from secagg.integrations.torch.state import StateLayout
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT


def model_of(params: int) -> nn.Module:
    """The digits CNN (38K parameters), or a plain linear layer of about ``params``."""
    if params <= 40_000:
        return DigitsCNN()
    side = int(params**0.5)
    return nn.Linear(side, side)


def bench_flatten(params: int, repeat: int) -> dict[str, object]:
    torch.manual_seed(0)
    state = model_of(params).state_dict()
    layout = StateLayout.from_state(state)
    out = np.empty(layout.size)

    def ours() -> None:
        layout.unflatten(layout.flatten(state, out=out), reference=state)

    floats = [v for v in state.values() if v.is_floating_point()]
    sizes = [v.numel() for v in floats]

    def floor() -> None:
        flat = torch.cat([v.reshape(-1).to(torch.float64) for v in floats]).numpy()
        [p.to(torch.float32) for p in torch.split(torch.from_numpy(flat), sizes)]

    t_ours, t_floor = best_of(ours, repeat), best_of(floor, repeat)
    return {"params": layout.size, "ours_s": t_ours, "floor_s": t_floor,
            "ratio": t_ours / t_floor}


def bench_round(protocol: str, params: int, clients: int, dropout: float,
                repeat: int) -> dict[str, object]:
    torch.manual_seed(0)
    model = model_of(params)
    layout = StateLayout.from_state(model.state_dict())
    # not-secret: benchmark updates are synthetic test data.
    rng = np.random.default_rng(0)
    deltas = {cid: rng.normal(0, 0.01, layout.size) for cid in range(1, clients + 1)}
    dropped = list(range(1, round(dropout * clients) + 1))
    dropouts = {ROUND_MASKED_INPUT: dropped}

    def round_with(name: str) -> tuple[float, int]:
        options = {} if name == "plain" else {"dropout_fraction": max(dropout, 0.05)}
        agg = SecureFedAvg(model, protocol=name, clip=10.0, max_examples=1000,
                           protocol_options=options)
        reports = []

        def work() -> None:
            fresh = {cid: (d.copy(), 100 + cid) for cid, d in deltas.items()}
            reports.append(agg.aggregate_deltas(fresh, dropouts=dropouts)[1])

        seconds = best_of(work, repeat)
        sent = clients - len(dropped)
        return seconds, reports[-1].bytes_up // max(sent, 1)

    ours, up = round_with(protocol)
    floor, _ = round_with("plain")
    return {"protocol": protocol, "params": layout.size, "clients": clients,
            "dropout": dropout, "ours_s": ours, "floor_s": floor, "ratio": ours / floor,
            "bytes_up_per_client": up, "expansion_vs_float32": up / (4 * layout.size)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    repeat = 2 if args.quick else 3
    sizes = [38_000] if args.quick else [38_000, 1_000_000]
    # 1M parameters x 50 clients would hold 600 MB of updates: 1M runs with 10 clients.
    cases = ([("secagg+", 38_000, 5, 0.2)] if args.quick else
             [(p, m, n, 0.1) for p in ("bonawitz", "secagg+")
              for m, n in ((38_000, 10), (38_000, 50), (1_000_000, 10))])

    print("flatten + unflatten of a state_dict (floor: torch.cat + split)")
    print(f"{'params':>9} {'ours s':>9} {'floor s':>9} {'ratio':>6}")
    flat_rows = []
    for m in sizes:
        row = bench_flatten(m, repeat)
        flat_rows.append(row)
        print(f"{row['params']:>9} {row['ours_s']:>9.4f} {row['floor_s']:>9.4f} "
              f"{row['ratio']:>6.2f}")

    print("\none FedAvg round, dropouts before masked input (floor: plain float64 FedAvg)")
    print(f"{'protocol':>9} {'params':>9} {'n':>4} {'drop':>5} {'ours s':>8} {'floor s':>8} "
          f"{'ratio':>7} {'up/client':>10} {'vs f32':>6}")
    round_rows = []
    for protocol, m, n, dropout in cases:
        row = bench_round(protocol, m, n, dropout, repeat)
        round_rows.append(row)
        print(f"{protocol:>9} {row['params']:>9} {n:>4} {dropout:>5.0%} {row['ours_s']:>8.3f} "
              f"{row['floor_s']:>8.4f} {row['ratio']:>7.1f} "
              f"{row['bytes_up_per_client']:>10} {row['expansion_vs_float32']:>6.2f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"flatten": flat_rows, "round": round_rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
