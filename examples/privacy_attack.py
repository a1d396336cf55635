"""Privacy demonstration: gradient inversion (DLG) against plain FedAvg, secagg and DP.

For each of ``--images`` clients, one client takes one SGD step on one training image of
scikit-learn's digits and sends its update. The attack of Zhu et al. (NeurIPS 2019), with
the iDLG label trick, runs twice on what an honest-but-curious server receives:

* plain FedAvg: the update itself. The image comes back almost exactly.
* secure aggregation: the client's masked vector, taken off the wire of a real protocol
  session (the server decodes it as if it were an update). What comes back is noise, as
  similar to the image as a random image is.

Secure aggregation still releases the sum, and a sum of a small round leaks too. The second
part (``--part sum``) runs a round of ``--sum-clients`` clients (3-4; SecAgg+ needs 3), each
taking one SGD step on one image (distinct labels), from the same global model:

* secure aggregation alone: each client's update, 32-bit fixed point, summed by a real
  SecAgg+ session; the server divides the released sum by the number of clients, which is
  the gradient of the batch of their images (times ``-lr``): DLG on a batch (Zhu et al.
  rebuild batches of up to 8) recovers every image;
* the same with ``secagg.dp`` compression (16 bits, rotation and rounding, no noise): still
  recovered (compression is not privacy);
* distributed DP (``secagg.dp``, Skellam, 16 bits, L2 clip 1.5: above every update's norm,
  so only the noise differs): each client adds its share of noise; the sum is released
  with (epsilon, delta = 1e-5) for that one round, for each epsilon of ``--epsilons``. The
  image attack fails (SSIM at chance level) at every epsilon tried, up to 10^4 (seed 0, 4
  clients, 30 L-BFGS steps); the labels, a much coarser secret, are still read off the
  noisy sum down to epsilon = 10 (DP at a large epsilon bounds, not removes, leakage).

The attacker is told the true labels in every case (its best case; whether the iDLG
inference would have found them is reported too) and runs the same L-BFGS budget.

Run:  .venv/bin/python examples/privacy_attack.py [--out build/privacy_attack.png]
      [--sum-out build/dlg_sum.png] [--part clients|sum|both]
It prints tables of similarity scores (SSIM, NCC, PSNR) and saves two PNG grids: per client
(originals, reconstructions from the plain updates, from the masked vectors) and for the sum
(originals, reconstructions from the secagg sum, from the DP sum at ``--epsilon``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from secagg.dp import Compression, DistributedDP, DPPlan, PrivacyLedger, decode, encode
from secagg.encoding import FixedPoint
from secagg.integrations.torch.digits import DigitsData, load_digits_data
from secagg.integrations.torch.dlg import (
    DLGNet,
    attack_update,
    infer_labels,
    ncc,
    psnr,
    sgd_step_update,
    ssim,
)
from secagg.integrations.torch.server_view import masked_update_view
from secagg.integrations.torch.state import StateLayout
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.sim.simulator import simulate

LR = 0.1  # the victims' local learning rate (the attacker is assumed to know it)
CLIP = 1.0  # fixed-point range of an update element; one SGD step stays well inside
DP_CLIP = 1.5  # L2 clip of distributed DP: one step's update has norm ~1.3-1.4 here
DP_DELTA = 1e-5
DP_BITS = 16
SUM_PROTOCOL = "secagg+"


@dataclass(frozen=True)
class Scores:
    ssim: float
    ncc: float
    psnr: float

    @classmethod
    def of(cls, original: np.ndarray, guess: np.ndarray) -> Scores:
        return cls(ssim(original, guess), ncc(original, guess), psnr(original, guess))


@dataclass(frozen=True)
class Outcome:
    """One victim: its image, both reconstructions and their scores."""

    label: int
    original: np.ndarray
    plain: np.ndarray
    secure: np.ndarray
    plain_scores: Scores
    secure_scores: Scores
    random_scores: Scores  # mean over 32 uniform random images
    random_ssim_sd: float  # their spread: the level of chance


def run(*, images: int, iterations: int, protocol: str, bits: int, clients: int,
        seed: int) -> list[Outcome]:
    data = load_digits_data(seed=seed)
    outcomes = []
    # not-secret: reference random images for the "no better than chance" baseline.
    rng = np.random.default_rng(seed)
    for i in range(images):
        torch.manual_seed(seed + i)
        model = DLGNet()
        x, y = data.x_train[i:i + 1], data.y_train[i:i + 1]
        update = sgd_step_update(model, x, y, lr=LR)
        plain = attack_update(model, update, lr=LR, iterations=iterations, seed=seed + i)
        masked = masked_update_view(update, protocol=protocol, bits=bits, clients=clients,
                                    clip=CLIP)
        secure = attack_update(model, masked, lr=LR, iterations=iterations, seed=seed + i)
        original = x.numpy()[0, 0]
        randoms = [Scores.of(original, rng.random((8, 8))) for _ in range(32)]
        outcomes.append(Outcome(
            label=int(y), original=original, plain=plain.images.numpy()[0, 0],
            secure=secure.images.numpy()[0, 0],
            plain_scores=Scores.of(original, plain.images.numpy()),
            secure_scores=Scores.of(original, secure.images.numpy()),
            random_scores=Scores(*np.mean([[r.ssim, r.ncc, r.psnr] for r in randoms], axis=0)),
            random_ssim_sd=float(np.std([r.ssim for r in randoms]))))
    return outcomes


def sum_victims(data: DigitsData, count: int) -> list[int]:
    """Indices of the first ``count`` training images with distinct labels, by label."""
    chosen: dict[int, int] = {}
    for i, label in enumerate(data.y_train.tolist()):
        chosen.setdefault(int(label), i)
        if len(chosen) == count:
            break
    return [chosen[label] for label in sorted(chosen)]


def secure_sum(inputs: list[np.ndarray], bits: int) -> np.ndarray:
    """The sum (mod 2^bits) of ``inputs`` from a real SecAgg+ session, checked against the
    plaintext sum of every client."""
    spec = get_protocol(SUM_PROTOCOL)
    config = spec.make_config(SimulationParams(clients=len(inputs), dim=inputs[0].size,
                                               bits=bits, dropout_fraction=0.0))
    ids = list(spec.client_ids(config))
    result = simulate(config, dict(zip(ids, inputs, strict=True)), protocol=SUM_PROTOCOL)
    if not result.matches or len(result.aggregate.included) != len(inputs):
        raise SystemExit("the SecAgg+ session did not return the sum of every client")
    total: np.ndarray = np.asarray(result.aggregate.total)
    return total


def fixed_point_mean(updates: list[np.ndarray]) -> np.ndarray:
    """Secure aggregation alone: 32-bit fixed point, summed by SecAgg+, divided by n."""
    codec = FixedPoint.for_precision(bits=32, clip=CLIP, max_clients=len(updates))
    total = secure_sum([codec.encode(u) for u in updates], 32)
    mean: np.ndarray = codec.decode(total) / len(updates)
    return mean


def dp_mean(updates: list[np.ndarray], plan: DPPlan) -> tuple[np.ndarray, float | None]:
    """``secagg.dp`` encodings summed by SecAgg+, decoded to the mean; with the epsilon the
    ledger states for this one released round (None without noise)."""
    seed = os.urandom(32)  # not-secret: the PUBLIC rotation seed of the round
    total = secure_sum([encode(u, plan, seed) for u in updates], plan.bits)
    ledger = PrivacyLedger(plan) if plan.private else None
    mean, report = decode(total, plan, seed, len(updates), ledger=ledger)
    return mean, None if report is None else report.epsilon_spent


@dataclass(frozen=True)
class SumRelease:
    """One released mean of the round and what DLG made of it."""

    name: str
    epsilon: float | None  # as stated by the ledger; None: no DP
    noise_multiplier: float | None
    images: np.ndarray  # (n, 8, 8) reconstructions, row j for victim j
    scores: list[Scores]
    labels_inferred: bool  # whether iDLG's inference from the release found the labels
    seconds: float

    @property
    def mean_ssim(self) -> float:
        return float(np.mean([s.ssim for s in self.scores]))


@dataclass(frozen=True)
class SumOutcome:
    originals: np.ndarray  # (n, 8, 8)
    labels: list[int]
    releases: list[SumRelease]
    random_ssim: float  # mean SSIM of uniform random images against the originals
    random_ssim_sd: float


def run_sum(*, clients: int, iterations: int, epsilons: list[float], seed: int
            ) -> SumOutcome:
    """DLG on the released mean of one round of ``clients`` one-image clients."""
    data = load_digits_data(seed=seed)
    victims = sum_victims(data, clients)
    torch.manual_seed(seed)
    model = DLGNet()
    updates = [sgd_step_update(model, data.x_train[i:i + 1], data.y_train[i:i + 1], lr=LR)
               for i in victims]
    labels = data.y_train[victims]
    names = [name for name, _ in model.named_parameters()]
    originals = data.x_train[victims].numpy()[:, 0]
    dim = updates[0].size
    releases: list[tuple[str, Any]] = [
        ("secagg alone (32-bit fixed point)", None),
        (f"secagg + dp compression ({DP_BITS} bits, no noise)",
         Compression(bits=DP_BITS, clip=DP_CLIP, expected_clients=clients,
                     rotation="dft").plan(dim))]
    for eps in epsilons:
        releases.append((f"distributed DP, eps = {eps:g} ({DP_BITS} bits)", DistributedDP(
            epsilon=eps, delta=DP_DELTA, rounds=1, sampling_rate=1.0, bits=DP_BITS,
            clip=DP_CLIP, expected_clients=clients, rotation="dft").plan(dim)))
    out = []
    for name, plan in releases:
        started = time.perf_counter()
        if plan is None:
            mean, spent = fixed_point_mean(updates), None
        else:
            mean, spent = dp_mean(updates, plan)
        gradient = StateLayout.from_state(model.state_dict()).unflatten(mean * (-1.0 / LR))
        inferred = infer_labels(gradient[names[-2]], clients)  # the last layer's weight
        result = attack_update(model, mean, lr=LR, iterations=iterations, seed=seed,
                               shape=(clients, 1, 8, 8), labels=labels)
        images = result.images.numpy()[:, 0]
        out.append(SumRelease(
            name=name, epsilon=spent,
            noise_multiplier=None if plan is None else plan.noise_multiplier,
            images=images, scores=[Scores.of(o, g) for o, g in zip(originals, images,
                                                                  strict=True)],
            labels_inferred=bool(torch.equal(inferred, torch.sort(labels).values)),
            seconds=time.perf_counter() - started))
    # not-secret: reference random images for the "no better than chance" baseline.
    rng = np.random.default_rng(seed)
    randoms = [ssim(o, rng.random((8, 8))) for o in originals for _ in range(32)]
    return SumOutcome(originals=originals, labels=[int(v) for v in labels], releases=out,
                      random_ssim=float(np.mean(randoms)), random_ssim_sd=float(np.std(randoms)))


def save_sum_grid(outcome: SumOutcome, pictured: SumRelease, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain = outcome.releases[0]
    rows = [("original", outcome.originals, None),
            ("DLG on the\nsecagg sum", plain.images, plain.scores),
            (f"DLG on the sum,\ndistributed DP\nε = {pictured.epsilon:.3g}", pictured.images,
             pictured.scores)]
    n = len(outcome.labels)
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n + 1.4, 4.6), squeeze=False)
    for r, (label, images, scores) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[c], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if scores is not None:
                ax.set_title(f"SSIM {scores[c].ssim:.2f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle(f"DLG on the released sum of a SecAgg+ round of {n} clients (one image each)"
                 f"\nsecure aggregation alone vs distributed DP (Skellam, {DP_BITS} bits, "
                 f"δ = {DP_DELTA:g}, one round)", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_sum(outcome: SumOutcome, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\nDLG on the released mean of one round: {len(outcome.labels)} clients, labels "
          f"{outcome.labels}, {args.iterations} L-BFGS steps, attacker told the labels")
    print(f"  {'release':<44} {'eps':>7} {'z':>7} {'mean SSIM':>9}  per image SSIM"
          f"{'':<14} labels  seconds")
    for r in outcome.releases:
        eps = "-" if r.epsilon is None else f"{r.epsilon:.3g}"
        z = "-" if r.noise_multiplier is None else f"{r.noise_multiplier:.3g}"
        per = " ".join(f"{s.ssim:6.3f}" for s in r.scores)
        print(f"  {r.name:<44} {eps:>7} {z:>7} {r.mean_ssim:>9.3f}  {per:<28} "
              f"{'found' if r.labels_inferred else 'missed':>6} {r.seconds:>7.1f}")
    print(f"  random images: SSIM {outcome.random_ssim:.3f} ± {outcome.random_ssim_sd:.3f}")
    return {"labels": outcome.labels, "random_ssim": outcome.random_ssim,
            "random_ssim_sd": outcome.random_ssim_sd,
            "releases": [{"name": r.name, "epsilon": r.epsilon,
                          "noise_multiplier": r.noise_multiplier, "mean_ssim": r.mean_ssim,
                          "scores": [asdict(s) for s in r.scores],
                          "labels_inferred": r.labels_inferred, "seconds": r.seconds}
                         for r in outcome.releases]}


def save_grid(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("original", lambda o: o.original, None),
            ("DLG on plain update", lambda o: o.plain, lambda o: o.plain_scores.ssim),
            ("DLG on secagg view", lambda o: o.secure, lambda o: o.secure_scores.ssim)]
    fig, axes = plt.subplots(3, len(outcomes), figsize=(1.3 * len(outcomes) + 1.2, 4.4),
                             squeeze=False)
    for r, (label, image, score) in enumerate(rows):
        for c, outcome in enumerate(outcomes):
            ax = axes[r][c]
            ax.imshow(image(outcome), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if score is not None:
                ax.set_title(f"SSIM {score(outcome):.2f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle("Deep Leakage from Gradients on 8x8 digits: plain FedAvg vs secure aggregation",
                 fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_clients(outcomes: list[Outcome], args: argparse.Namespace, seconds: float
                   ) -> dict[str, Any]:
    print(f"{'image':>5} {'label':>5} | {'plain SSIM':>10} {'NCC':>6} {'PSNR':>6} | "
          f"{'secagg SSIM':>11} {'NCC':>6} {'PSNR':>6} | {'random SSIM':>13}")
    for i, o in enumerate(outcomes):
        p, s, r = o.plain_scores, o.secure_scores, o.random_scores
        print(f"{i:>5} {o.label:>5} | {p.ssim:>10.3f} {p.ncc:>6.3f} {p.psnr:>6.1f} | "
              f"{s.ssim:>11.3f} {s.ncc:>6.3f} {s.psnr:>6.1f} | "
              f"{r.ssim:>6.3f} ± {o.random_ssim_sd:.3f}")
    mean = {k: float(np.mean([getattr(o, k).ssim for o in outcomes]))
            for k in ("plain_scores", "secure_scores", "random_scores")}
    chance = float(np.mean([o.random_ssim_sd for o in outcomes]))
    print(f"mean SSIM: plain {mean['plain_scores']:.3f}, secagg {mean['secure_scores']:.3f}, "
          f"random image {mean['random_scores']:.3f} ± {chance:.3f}  "
          f"({args.protocol}, {args.iterations} L-BFGS steps, {seconds:.1f} s)")
    return {"mean_ssim": mean, "random_ssim_sd": chance,
            "per_image": [{k: asdict(getattr(o, k)) for k in
                           ("plain_scores", "secure_scores", "random_scores")}
                          for o in outcomes]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["clients", "sum", "both"], default="both",
                        help="per-client attack, attack on the released sum, or both")
    parser.add_argument("--out", type=Path, default=Path("build/privacy_attack.png"))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=30, help="L-BFGS steps per attack")
    parser.add_argument("--protocol", default="secagg+")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--clients", type=int, default=5, help="clients in each session")
    parser.add_argument("--sum-out", type=Path, default=Path("build/dlg_sum.png"))
    parser.add_argument("--sum-clients", type=int, default=4,
                        help="clients (one image each) in the round whose sum is attacked")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1e4, 1e3, 100, 10, 1],
                        help="distributed DP levels tried on the sum (one round each)")
    parser.add_argument("--epsilon", type=float, default=10,
                        help="the level pictured (one of --epsilons)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the scores as JSON")
    args = parser.parse_args(argv)
    if not 3 <= args.sum_clients <= 10:
        parser.error("--sum-clients must be in [3, 10] (SecAgg+ needs 3; distinct labels)")
    if args.epsilon not in args.epsilons:
        parser.error("--epsilon must be one of --epsilons")
    torch.set_num_threads(1)
    document: dict[str, Any] = {"parameters": {k: str(v) if isinstance(v, Path) else v
                                               for k, v in vars(args).items()}}
    if args.part in ("clients", "both"):
        started = time.perf_counter()
        outcomes = run(images=args.images, iterations=args.iterations, protocol=args.protocol,
                       bits=args.bits, clients=args.clients, seed=args.seed)
        document |= report_clients(outcomes, args, time.perf_counter() - started)
        save_grid(outcomes, args.out)
        print(f"saved {args.out}")
    if args.part in ("sum", "both"):
        outcome = run_sum(clients=args.sum_clients, iterations=args.iterations,
                          epsilons=args.epsilons, seed=args.seed)
        document["sum"] = report_sum(outcome, args)
        pictured = outcome.releases[2 + args.epsilons.index(args.epsilon)]
        save_sum_grid(outcome, pictured, args.sum_out)
        print(f"saved {args.sum_out}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
