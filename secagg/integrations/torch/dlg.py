"""Deep Leakage from Gradients (Zhu, Liu and Han, NeurIPS 2019): what a plain update leaks.

An honest-but-curious server that sees one client's update (here, one SGD step on one
image, so the update is ``-lr * gradient``) can often rebuild the training image: it
optimizes a dummy image until the dummy's gradient matches the observed one. This module
implements that attack, with the label inferred from the last layer's gradient as in iDLG
(Zhao, Mopuri and Bilen, 2020), and simple image-similarity scores to report how well it
worked. Secure aggregation's answer is that the server never sees one client's update: it
sees a masked vector, uniform in Z_(2^b), on which the same attack rebuilds noise.
But it still sees the sum: in a small round of one-image clients the released mean update is
the gradient of the batch of their images, which the same attack (a batch ``shape``,
labels from :func:`infer_labels`) rebuilds too, unless distributed DP noised the sum.

The attack lives in the library (not only in ``examples/``) so that tests and users can
measure what their own models leak; it is an auditing tool and needs no secrets.
The model is the paper's kind (sigmoid activations, twice differentiable), which is the
attacker's best case: the secure-aggregation side of the demonstration is meaningful
precisely because the attack succeeds so well on the plain side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from secagg.errors import ConfigurationError
from secagg.integrations.torch.state import StateLayout

__all__ = ["AttackResult", "DLGNet", "attack_update", "gradient_of", "infer_label",
           "infer_labels", "ncc", "psnr", "reconstruct", "sgd_step_update", "ssim"]


class DLGNet(nn.Module):
    """A small sigmoid CNN for 8x8 digits, in the style of the DLG paper's LeNet."""

    def __init__(self, num_classes: int = 10, width: int = 12) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1),
            nn.Sigmoid(),
            nn.Conv2d(width, width, kernel_size=3, padding=1),
            nn.Sigmoid(),
            nn.Flatten(),
            nn.Linear(width * 8 * 8, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes) for images of shape (N, 1, 8, 8)."""
        out: torch.Tensor = self.body(x)
        return out


def gradient_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The gradient of the mean cross-entropy of ``model`` on (x, y), per parameter."""
    loss = nn.functional.cross_entropy(model(x), y)
    return [g.detach() for g in torch.autograd.grad(loss, list(model.parameters()))]


def sgd_step_update(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float
                    ) -> np.ndarray:
    """The flat update (new minus old parameters) of one SGD step of ``model`` on (x, y):
    what a plain FedAvg client with one local step sends. ``model`` is left unchanged."""
    names = [name for name, _ in model.named_parameters()]
    step = {name: -lr * g for name, g in zip(names, gradient_of(model, x, y), strict=True)}
    # Raises ConfigurationError for a model with buffers: they would not be in ``step``.
    return StateLayout.from_state(model.state_dict()).flatten(step)


def infer_label(last_weight_grad: torch.Tensor) -> int:
    """iDLG: the true label of a single example from the last linear layer's weight gradient.

    With cross-entropy, row ``i`` of that gradient is ``(softmax_i - onehot_i) * h`` for the
    layer's input ``h``; when ``h >= 0`` (sigmoid outputs) only the true label's row is
    negative, so its row sum is the smallest.
    """
    if last_weight_grad.ndim != 2:
        raise ConfigurationError("expected the 2-D weight gradient of a linear layer")
    return int(last_weight_grad.sum(dim=1).argmin().item())


def infer_labels(last_weight_grad: torch.Tensor, count: int) -> torch.Tensor:
    """iDLG for a batch of ``count`` examples with distinct labels (e.g. a sum of
    one-image updates): the ``count`` labels whose rows of the last linear layer's weight
    gradient have the smallest sums, in increasing label order.

    Row ``i`` of the batch-mean gradient is ``mean_j (softmax_ij - onehot_ij) h_j``: with
    ``h >= 0`` it is negative (dominated by ``-h_j / count``) exactly for the labels present
    when the labels are distinct, the model is not yet confident and the batch is small
    (for larger batches a present label's row can turn positive: the sum of the batch's
    softmax mass times ``h`` can outweigh its own ``-h``; measured on a fresh
    :class:`DLGNet`: always right up to 6 labels, 8 wrong guesses in 600 batches of 7-8).

    Raises:
        ConfigurationError: not a 2-D gradient, or ``count`` not in [1, rows].
    """
    if last_weight_grad.ndim != 2:
        raise ConfigurationError("expected the 2-D weight gradient of a linear layer")
    if isinstance(count, bool) or not isinstance(count, int) or not (
            1 <= count <= last_weight_grad.shape[0]):
        raise ConfigurationError(f"count must be in [1, {last_weight_grad.shape[0]}]")
    rows = last_weight_grad.sum(dim=1)
    chosen = torch.topk(rows, count, largest=False).indices
    return torch.sort(chosen).values.to(torch.long)


def _squared_distance(grads: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
                      ) -> torch.Tensor:
    """The paper's objective: the squared L2 distance between two lists of gradients."""
    return torch.stack([((g - t) ** 2).sum() for g, t in zip(grads, targets, strict=True)]).sum()


@dataclass(frozen=True)
class AttackResult:
    """A reconstructed batch (N, 1, 8, 8) in [0, 1], its labels, and the final gradient loss."""

    images: torch.Tensor
    labels: torch.Tensor
    gradient_loss: float


def reconstruct(model: nn.Module, target: Sequence[torch.Tensor], *,
                shape: tuple[int, ...] = (1, 1, 8, 8), labels: torch.Tensor | None = None,
                iterations: int = 50, seed: int = 0) -> AttackResult:
    """Run DLG: find an input whose gradient on ``model`` matches ``target``.

    The dummy image starts from seeded noise and is optimized with L-BFGS on the squared
    distance between gradients (the paper's objective); ``labels`` default to the iDLG
    inference from ``target[-2]`` (the last linear layer's weight): :func:`infer_label` for
    one image, :func:`infer_labels` for a batch (which assumes distinct labels). ``labels``
    must hold one label per batch row. ``iterations`` is the number of L-BFGS steps (each up
    to 20 evaluations).

    Raises:
        ConfigurationError: ``target`` does not match the model's parameters, contains
            non-finite values, ``iterations < 1``, ``labels`` of the wrong shape, or no
            ``labels`` for a batch larger than the number of classes.
    """
    params = list(model.parameters())
    shapes = [tuple(p.shape) for p in params]
    if [tuple(t.shape) for t in target] != shapes:
        raise ConfigurationError("target gradients do not match the model's parameters")
    if not all(bool(torch.isfinite(t).all()) for t in target):
        raise ConfigurationError("target gradients are not finite")
    if iterations < 1:
        raise ConfigurationError("iterations must be >= 1")
    if labels is None:
        labels = (torch.full((1,), infer_label(target[-2]), dtype=torch.long) if shape[0] == 1
                  else infer_labels(target[-2], shape[0]))
    elif tuple(labels.shape) != (shape[0],):
        raise ConfigurationError(f"labels must have shape ({shape[0]},)")
    generator = torch.Generator().manual_seed(seed)  # not-secret: attack start point
    dummy = torch.rand(shape, generator=generator).requires_grad_(True)
    optimizer = torch.optim.LBFGS([dummy], lr=1.0, max_iter=20, history_size=100,
                                  line_search_fn="strong_wolfe")
    targets = [t.detach() for t in target]

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(dummy), labels)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        distance = _squared_distance(grads, targets)
        distance.backward()  # type: ignore[no-untyped-call]
        return distance

    for _ in range(iterations):
        optimizer.step(closure)  # type: ignore[no-untyped-call]
        if not bool(torch.isfinite(dummy).all()):
            break  # a target far outside the model's reach (e.g. noise) can blow up
    grads = torch.autograd.grad(nn.functional.cross_entropy(model(dummy), labels), params)
    final = float(_squared_distance(grads, targets))
    images = torch.nan_to_num(dummy.detach(), nan=0.5).clamp(0.0, 1.0)
    return AttackResult(images=images, labels=labels, gradient_loss=final)


def attack_update(model: nn.Module, update: np.ndarray, *, lr: float, iterations: int = 50,
                  seed: int = 0, shape: tuple[int, ...] = (1, 1, 8, 8),
                  labels: torch.Tensor | None = None) -> AttackResult:
    """DLG against a flat update vector: one SGD step of learning rate ``lr`` from ``model``.

    ``update`` is the model's parameter delta flattened by
    :class:`~secagg.integrations.torch.state.StateLayout` (parameters only, in
    ``state_dict`` order); the observed gradient is ``-update / lr``. Whatever the vector
    really is (a plain update, a masked one decoded as if it were an update, or the mean of
    ``shape[0]`` clients' one-image updates released by secure aggregation, which is the
    gradient of that batch), the same attack runs on it; a vector that is not finite is
    treated as zeros. ``labels`` (one per batch row) default to :func:`reconstruct`'s.

    Raises:
        ConfigurationError: the model has buffers, or ``update`` has the wrong length.
    """
    named = dict(model.named_parameters())
    state = model.state_dict()
    if set(state) != set(named):
        raise ConfigurationError("attack_update needs a model without buffers")
    layout = StateLayout.from_state(state)
    update = np.nan_to_num(np.asarray(update, dtype=np.float64), nan=0.0, posinf=0.0,
                           neginf=0.0)
    tensors = layout.unflatten(update * (-1.0 / lr))
    return reconstruct(model, [tensors[name] for name in named], shape=shape, labels=labels,
                       iterations=iterations, seed=seed)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ConfigurationError("images must be non-empty and of the same size")
    return a, b


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0) -> float:
    """Global structural similarity (Wang et al. 2004, one window over the whole image).

    1 for identical images, about 0 for unrelated ones, negative for anti-correlated ones.
    8x8 images are too small for the usual 7x7 sliding window, so one window is used.
    """
    x, y = _pair(a, b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    return float((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized cross-correlation (Pearson correlation of pixels), in [-1, 1]."""
    x, y = _pair(a, b)
    x, y = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / denominator if denominator > 0 else 0.0


def psnr(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (infinite for identical images)."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))
