"""Privacy demonstration: gradient inversion (DLG) against plain FedAvg and against secagg.

For each of ``--images`` clients, one client takes one SGD step on one training image of
scikit-learn's digits and sends its update. The attack of Zhu et al. (NeurIPS 2019), with
the iDLG label trick, runs twice on what an honest-but-curious server receives:

* plain FedAvg: the update itself. The image comes back almost exactly.
* secure aggregation: the client's masked vector, taken off the wire of a real protocol
  session (the server decodes it as if it were an update). What comes back is noise, as
  similar to the image as a random image is.

Run:  .venv/bin/python examples/privacy_attack.py [--out build/privacy_attack.png]
It prints a table of similarity scores (SSIM, NCC, PSNR) and saves a PNG grid: originals,
reconstructions from the plain updates, reconstructions from the masked vectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from secagg.integrations.torch.digits import load_digits_data
from secagg.integrations.torch.dlg import DLGNet, attack_update, ncc, psnr, sgd_step_update, ssim
from secagg.integrations.torch.server_view import masked_update_view

LR = 0.1  # the victims' local learning rate (the attacker is assumed to know it)
CLIP = 1.0  # fixed-point range of an update element; one SGD step stays well inside


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/privacy_attack.png"))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=30, help="L-BFGS steps per attack")
    parser.add_argument("--protocol", default="secagg+")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--clients", type=int, default=5, help="clients in each session")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the scores as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    outcomes = run(images=args.images, iterations=args.iterations, protocol=args.protocol,
                   bits=args.bits, clients=args.clients, seed=args.seed)
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
          f"({args.protocol}, {args.iterations} L-BFGS steps, "
          f"{time.perf_counter() - started:.1f} s)")
    save_grid(outcomes, args.out)
    print(f"saved {args.out}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "parameters": vars(args) | {"out": str(args.out), "json": str(args.json)},
            "mean_ssim": mean, "random_ssim_sd": chance,
            "per_image": [{k: asdict(getattr(o, k)) for k in
                           ("plain_scores", "secure_scores", "random_scores")}
                          for o in outcomes]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
