"""Distributed DP through SecAgg+ against central DP-FedAvg, on scikit-learn's digits.

Theory of operation. ``--clients`` clients (200 by default) each hold an equal, shuffled
share of the 8x8 digits' training part (shipped with scikit-learn: nothing is downloaded).
The model is multinomial logistic regression in NumPy (64 pixels + bias -> 10 classes:
650 parameters). Every round every client (sampling rate 1, user-level DP: adding or
removing one client's whole data) runs ``--local-steps`` full-batch gradient steps from the
global model; its update is clipped to L2 norm ``--clip`` and aggregated; the server adds
``--server-lr`` times the mean to the model. The same training runs under:

* distributed DP (``secagg.dp``) for every epsilon in ``--epsilons`` x ``--bits``: each
  client encodes its update (rotation, clipping, scaling, conditional rounding, its share
  of Skellam noise from the CSPRNG, reduction mod 2^bits) with
  :func:`secagg.dp.encode`; a real SecAgg+ session (:func:`secagg.sim.simulator.simulate`)
  sums the encodings; the server decodes with :func:`secagg.dp.decode` and records the
  round in a :class:`secagg.dp.PrivacyLedger`, which states the epsilon actually spent.
  epsilon = inf is :class:`secagg.dp.Compression` (same rotation and rounding, no noise).
  The privacy levels of one bit width share each session: their encodings are
  concatenated, and since a modular sum is taken coordinate by coordinate this is the same
  sum as one session per level, four times faster (every session's total is checked
  against the plaintext sum of the encodings).
* central DP-FedAvg (McMahan et al. 2018): the server sums the same clipped float updates
  and adds Gaussian noise of standard deviation ``z * clip``, where ``z`` is the
  ``dp-accounting`` noise multiplier for the same (epsilon, delta, rounds, sampling rate)
  (the plan's ``central_gaussian_noise_multiplier``). The Gaussian is drawn by Box-Muller
  from the library's AES-CTR CSPRNG (:class:`secagg.dp.RandomSource`), never numpy.random.
  epsilon = inf is FedAvg with the same clipping.

Both sides start from the same model (zeros) on the same split; only the aggregation
differs. Accuracy is on the held-out test part, averaged over ``--seeds`` runs (the split
changes with the seed; the noise always comes fresh from the CSPRNG).

Upload bytes: the masked-input payload of one client is ``ceil(650 * bits / 8)`` bytes
(``secagg.packing``; the DFT rotation pads an even length by nothing, where a Hadamard
rotation would pad 650 to 1024), against ``650 * 4`` for 32-bit SecAgg+. One extra
session per width measures the whole per-client upload (keys, shares, masked input,
unmasking) from the simulator's cost ledger.

Run:  .venv/bin/python examples/dp_fedavg_digits.py [--quick] [--json out.json]
      [--png docs/img/dp_digits.png]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secagg.dp import (
    Compression,
    DistributedDP,
    DPPlan,
    PrivacyLedger,
    RandomSource,
    decode,
    encode,
    prepare,
)
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.ring import packed_size
from secagg.sim.simulator import simulate

FEATURES = 65  # 64 pixels + a bias input
CLASSES = 10
DIM = FEATURES * CLASSES
PROTOCOL = "secagg+"
TARGET_POINTS = 1.0  # issue 13: epsilon 10, 16 bits within 1 point of central DP-FedAvg
CENTRAL = 0  # the "bits" of the central baseline in result keys


@dataclass(frozen=True)
class Split:
    """One seed's data: the clients' (features, one-hot labels) and the test set."""

    clients: list[tuple[np.ndarray, np.ndarray]]
    x_test: np.ndarray
    y_test: np.ndarray


def load_split(clients: int, seed: int, test_fraction: float = 0.25) -> Split:
    """scikit-learn's digits, scaled to [0, 1] with a bias column, split over ``clients``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.hstack([np.asarray(bunch.data, dtype=np.float64) / 16.0,
                   np.ones((len(bunch.target), 1))])
    y = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(seed)  # not-secret: shuffles public demo data
    order = rng.permutation(len(y))
    n_test = round(len(y) * test_fraction)
    train = order[n_test:]
    if len(train) < clients:
        raise SystemExit(f"{clients} clients need at least as many training examples")
    eye = np.eye(CLASSES)
    parts = [(x[p], eye[y[p]]) for p in np.array_split(train, clients)]
    return Split(parts, x[order[:n_test]], y[order[:n_test]])


def local_update(weights: np.ndarray, x: np.ndarray, onehot: np.ndarray, *, steps: int,
                 lr: float) -> np.ndarray:
    """The flat update (new minus old weights) of ``steps`` full-batch gradient steps of
    softmax regression from ``weights`` (flat, ``DIM`` values)."""
    w = weights.reshape(FEATURES, CLASSES).copy()
    for _ in range(steps):
        logits = x @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        w -= lr * (x.T @ (p - onehot)) / len(x)
    return w.reshape(-1) - weights


def clipped(update: np.ndarray, clip: float) -> np.ndarray:
    norm = float(np.linalg.norm(update))
    return update * (clip / norm) if norm > clip else update


def accuracy(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((x @ weights.reshape(FEATURES, CLASSES)).argmax(axis=1) == y))


def gaussian(source: RandomSource, size: int) -> np.ndarray:
    """``size`` standard normal values by Box-Muller from the CSPRNG's 64-bit words
    (53-bit uniforms in (0, 1]: the logarithm never sees zero)."""
    words = source.words(2 * size) >> np.uint64(11)
    u = (words.astype(np.float64) + 1.0) * 2.0**-53
    radius = np.sqrt(-2.0 * np.log(u[:size]))
    return radius * np.cos(2.0 * math.pi * u[size:])


@dataclass
class Run:
    """One setting's model and history (``bits == CENTRAL`` for central DP-FedAvg)."""

    epsilon: float
    bits: int
    weights: np.ndarray
    curve: list[float] = field(default_factory=list)
    plan: DPPlan | None = None
    ledger: PrivacyLedger | None = None
    noise_std: float = 0.0  # central only: the Gaussian's standard deviation on the sum

    @property
    def name(self) -> str:
        eps = "inf" if math.isinf(self.epsilon) else f"{self.epsilon:g}"
        return f"eps={eps} " + ("central" if self.bits == CENTRAL else f"{self.bits} bits")


def make_plans(args: argparse.Namespace) -> dict[tuple[float, int], DPPlan]:
    """The plan of every (epsilon, bits) (cached over seeds: planning takes ~0.1-3 s)."""
    plans: dict[tuple[float, int], DPPlan] = {}
    for bits in args.bits:
        for eps in args.epsilons:
            if math.isinf(eps):
                plans[eps, bits] = Compression(bits=bits, clip=args.clip,
                                               expected_clients=args.clients,
                                               rotation="dft").plan(DIM)
            else:
                plans[eps, bits] = DistributedDP(
                    epsilon=eps, delta=args.delta, rounds=args.rounds, sampling_rate=1.0,
                    bits=bits, clip=args.clip, mechanism=args.mechanism,
                    expected_clients=args.clients, rotation="dft").plan(DIM)
            prepare(plans[eps, bits])
    return plans


def central_multiplier(plans: dict[tuple[float, int], DPPlan], eps: float) -> float:
    if math.isinf(eps):
        return 0.0
    z = next(p.central_gaussian_noise_multiplier for (e, _), p in plans.items() if e == eps)
    assert z is not None
    return z


def secure_means(runs: Sequence[Run], updates: list[list[np.ndarray]], config: Any,
                 source: RandomSource) -> list[np.ndarray]:
    """One SecAgg+ session for ``runs`` (all of the session's width): each client's
    encodings of its updates (``updates[client][run]``), concatenated; returns each run's
    decoded mean update, recording the round in its ledger."""
    seed = os.urandom(32)  # not-secret: the PUBLIC rotation seed of this round
    plans = [r.plan for r in runs]
    assert all(p is not None for p in plans)
    inputs = {cid: np.concatenate([encode(u, p, seed, rng=source)  # type: ignore[arg-type]
                                   for u, p in zip(per_run, plans, strict=True)])
              for cid, per_run in enumerate(updates, start=1)}
    result = simulate(config, inputs, protocol=PROTOCOL)
    if not result.matches or len(result.aggregate.included) != len(updates):
        raise SystemExit("the SecAgg+ session did not return the sum of every client")
    total = np.asarray(result.aggregate.total)
    included = len(result.aggregate.included)
    means = []
    offset = 0
    for run, plan in zip(runs, plans, strict=True):
        assert plan is not None
        part = total[offset:offset + plan.padded_dim]
        offset += plan.padded_dim
        mean, _ = decode(part, plan, seed, included, ledger=run.ledger)
        means.append(mean)
    return means


def train(args: argparse.Namespace, seed: int, plans: dict[tuple[float, int], DPPlan],
          source: RandomSource, log: bool) -> list[Run]:
    """Every setting trained on one seed's split; returns the runs (final weights, curves).

    One group at a time (central, then each bit width), all rounds: a group's noise samplers
    stay in the library's sampler cache instead of evicting each other every round.
    """
    split = load_split(args.clients, seed)
    central = [Run(eps, CENTRAL, np.zeros(DIM), noise_std=central_multiplier(plans, eps)
                   * args.clip) for eps in args.epsilons]
    groups = [central]
    for bits in args.bits:
        groups.append([Run(eps, bits, np.zeros(DIM), plan=plans[eps, bits],
                           ledger=PrivacyLedger(plans[eps, bits])
                           if plans[eps, bits].private else None) for eps in args.epsilons])
    spec = get_protocol(PROTOCOL)
    for group in groups:
        started = time.perf_counter()
        bits = group[0].bits
        config = None if bits == CENTRAL else spec.make_config(SimulationParams(
            clients=args.clients, dim=DIM * len(group), bits=bits, dropout_fraction=0.0))
        for _ in range(args.rounds):
            updates = [[clipped(local_update(run.weights, x, y, steps=args.local_steps,
                                             lr=args.lr), args.clip) for run in group]
                       for x, y in split.clients]
            if config is None:
                means = []
                for i, run in enumerate(group):
                    total = np.sum([u[i] for u in updates], axis=0)
                    if run.noise_std > 0:
                        total += run.noise_std * gaussian(source, DIM)
                    means.append(total / args.clients)
            else:
                means = secure_means(group, updates, config, source)
            for run, mean in zip(group, means, strict=True):
                run.weights += args.server_lr * mean
                run.curve.append(accuracy(run.weights, split.x_test, split.y_test))
        if log:
            print(f"  seed {seed}: {group[0].name.split(' ', 1)[1]} done "
                  f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    return [run for group in groups for run in group]


def measure_bytes(args: argparse.Namespace, plans: dict[tuple[float, int], DPPlan]
                  ) -> list[dict[str, Any]]:
    """Per-client upload of one setting: payload from the packing rule, whole session from
    one SecAgg+ session of a single encoding (and of 32-bit SecAgg+ on the raw model)."""
    spec = get_protocol(PROTOCOL)
    rows = []
    for bits in [*args.bits, 32]:
        plan = plans.get((args.epsilons[-1], bits))
        length = DIM if plan is None else plan.padded_dim
        config = spec.make_config(SimulationParams(clients=args.clients, dim=length, bits=bits,
                                                   dropout_fraction=0.0))
        zeros = {cid: np.zeros(length, dtype=np.uint32) for cid in spec.client_ids(config)}
        costs = simulate(config, zeros, protocol=PROTOCOL).costs.to_dict()
        masked = next(r for r in costs["rounds"] if r["round"] == "masked_input")
        rows.append({"bits": bits, "values": length, "payload_bytes": packed_size(length, bits),
                     "masked_input_message_bytes": masked["client_bytes_up_max"],
                     "session_upload_bytes": costs["client_bytes_up_max"]})
    base = rows[-1]
    for row in rows:
        row["payload_ratio"] = base["payload_bytes"] / row["payload_bytes"]
        row["message_ratio"] = (base["masked_input_message_bytes"]
                                / row["masked_input_message_bytes"])
        row["session_ratio"] = base["session_upload_bytes"] / row["session_upload_bytes"]
    return rows


def summarize(all_runs: list[list[Run]], clip: float) -> list[dict[str, Any]]:
    rows = []
    for i, first in enumerate(all_runs[0]):
        finals = [runs[i].curve[-1] for runs in all_runs]
        row: dict[str, Any] = {
            "setting": first.name, "epsilon": None if math.isinf(first.epsilon)
            else first.epsilon, "bits": first.bits or None,
            "accuracy_mean": float(np.mean(finals)), "accuracy_sd": float(np.std(finals)),
            "accuracy_per_seed": finals,
            "curve_mean": np.mean([runs[i].curve for runs in all_runs], axis=0).tolist()}
        if first.plan is not None and first.plan.private:
            assert first.ledger is not None
            row |= {"noise_multiplier": first.plan.noise_multiplier,
                    "central_noise_multiplier": first.plan.central_gaussian_noise_multiplier,
                    "planned_epsilon": first.plan.epsilon,
                    "epsilon_spent": max(r[i].ledger.epsilon_spent  # type: ignore[union-attr]
                                         for r in all_runs),
                    "scale": first.plan.scale, "wrap_bound": first.plan.wrap_probability}
        elif first.bits == CENTRAL:
            row["noise_multiplier"] = first.noise_std / clip
        rows.append(row)
    return rows


def save_png(rows: list[dict[str, Any]], byte_rows: list[dict[str, Any]],
             args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["inf" if math.isinf(e) else f"{e:g}" for e in args.epsilons]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.6),
                                      gridspec_kw={"width_ratios": [3, 2]})
    xs = np.arange(len(labels))
    series = [(CENTRAL, "central DP-FedAvg (float)", "k", "s")] + [
        (b, f"distributed DP, {b} bits", c, "o")
        for b, c in zip(args.bits, ["tab:red", "tab:blue", "tab:green"], strict=False)]
    for k, (bits, label, color, marker) in enumerate(series):
        pts = [r for r in rows if (r["bits"] or CENTRAL) == bits]
        left.errorbar(xs + (k - 1.5) * 0.06, [100 * r["accuracy_mean"] for r in pts],
                      yerr=[100 * r["accuracy_sd"] for r in pts], label=label, color=color,
                      marker=marker, capsize=2, lw=1.2, ms=4)
    left.set_xticks(xs, [f"ε = {lab}" for lab in labels])
    left.set_ylabel("test accuracy (%)")
    left.set_title(f"digits, {args.clients} clients, {args.rounds} rounds, clip {args.clip}, "
                   f"δ = {args.delta:g}", fontsize=9)
    left.legend(fontsize=7, loc="lower left")
    left.grid(alpha=0.3)
    names = [f"{r['bits']} bits" + (" (SecAgg+)" if r["bits"] == 32 else "") for r in byte_rows]
    bar_x = np.arange(len(byte_rows))
    right.bar(bar_x - 0.2, [r["payload_bytes"] for r in byte_rows], 0.4, label="masked vector")
    right.bar(bar_x + 0.2, [r["session_upload_bytes"] for r in byte_rows], 0.4,
              label="whole session")
    for x, r in zip(bar_x, byte_rows, strict=True):
        right.text(x - 0.2, r["payload_bytes"], f"{r['payload_ratio']:.2f}x", ha="center",
                   va="bottom", fontsize=7)
    right.set_xticks(bar_x, names, fontsize=7)
    right.set_ylabel("bytes uploaded per client per round")
    right.set_title(f"upload, {DIM} parameters", fontsize=9)
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3, help="runs averaged (seeds 0..n-1)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[math.inf, 10, 3, 1])
    parser.add_argument("--bits", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--mechanism", default="skellam", choices=["skellam", "dgauss"])
    parser.add_argument("--local-steps", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1.0, help="clients' learning rate")
    parser.add_argument("--server-lr", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true",
                        help="40 clients, 3 rounds, 1 seed (a smoke test)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None, help="e.g. docs/img/dp_digits.png")
    parser.add_argument("--progress", action="store_true", help="a line per round on stderr")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.rounds, args.seeds = 40, 3, 1
    args.epsilons = sorted(args.epsilons, reverse=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    plans = make_plans(args)
    source = RandomSource()
    all_runs = [train(args, seed, plans, source, args.progress) for seed in range(args.seeds)]
    rows = summarize(all_runs, args.clip)
    byte_rows = measure_bytes(args, plans)
    seconds = time.perf_counter() - started
    print(f"digits, softmax regression ({DIM} parameters), {args.clients} clients (all every "
          f"round), {args.rounds} rounds, {args.local_steps} local steps, clip {args.clip}, "
          f"delta {args.delta:g}, {args.mechanism}, {PROTOCOL}; mean (sd) over "
          f"{args.seeds} seed(s); {seconds:.0f} s")
    header = ["epsilon", "central"] + [f"{b} bits" for b in args.bits]
    print("".join(f"{h:>16}" for h in header))
    for eps in args.epsilons:
        cells = ["inf" if math.isinf(eps) else f"{eps:g}"]
        for bits in [CENTRAL, *args.bits]:
            r = next(r for r in rows if (r["bits"] or CENTRAL) == bits
                     and (r["epsilon"] or math.inf) == eps)
            cells.append(f"{100 * r['accuracy_mean']:.2f} ({100 * r['accuracy_sd']:.2f})")
        print("".join(f"{c:>16}" for c in cells))
    print("noise multiplier z (summed noise std / clip): distributed vs central, epsilon spent")
    for r in rows:
        if "planned_epsilon" in r:
            print(f"  {r['setting']:<18} z = {r['noise_multiplier']:.4f} vs "
                  f"{r['central_noise_multiplier']:.4f} "
                  f"({r['noise_multiplier'] / r['central_noise_multiplier']:.4f}x), "
                  f"epsilon spent {r['epsilon_spent']:.4f}")
    print(f"upload per client per round ({PROTOCOL}, {args.clients} clients):")
    for b in byte_rows:
        print(f"  {b['bits']:>2} bits: masked vector {b['payload_bytes']:>5} B "
              f"({b['payload_ratio']:.3f}x smaller than 32-bit), its message "
              f"{b['masked_input_message_bytes']} B ({b['message_ratio']:.3f}x), whole session "
              f"{b['session_upload_bytes']} B ({b['session_ratio']:.3f}x)")
    verdict = None
    if 10.0 in args.epsilons and 16 in args.bits:
        central = next(r for r in rows if r["epsilon"] == 10.0 and r["bits"] is None)
        ours = next(r for r in rows if r["epsilon"] == 10.0 and r["bits"] == 16)
        gap = 100 * (central["accuracy_mean"] - ours["accuracy_mean"])
        verdict = {"gap_points": gap, "met": gap <= TARGET_POINTS}
        print(f"target: epsilon 10, 16 bits within {TARGET_POINTS:g} point of central: "
              f"{100 * ours['accuracy_mean']:.2f} vs {100 * central['accuracy_mean']:.2f} "
              f"(gap {gap:+.2f} points): {'met' if verdict['met'] else 'NOT met'}")
    if args.png is not None:
        save_png(rows, byte_rows, args, args.png)
        print(f"saved {args.png}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        params["epsilons"] = [None if math.isinf(e) else e for e in args.epsilons]
        args.json.write_text(json.dumps({
            "parameters": params, "dim": DIM, "protocol": PROTOCOL, "seconds": seconds,
            "results": rows, "bytes": byte_rows, "target": verdict}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
