"""The digits workload of the FedAvg demo: data, a non-IID split, a small CNN, local training.

scikit-learn ships the 1797 8x8 handwritten digits of ``load_digits`` inside the package,
so nothing is downloaded. Everything here is test data and demo plumbing, not secrets:
the numpy Generators below only shuffle and partition public data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from secagg.errors import ConfigurationError

__all__ = ["DigitsCNN", "DigitsData", "dirichlet_split", "evaluate", "load_digits_data",
           "train_local"]


@dataclass(frozen=True)
class DigitsData:
    """Images as float32 tensors of shape (N, 1, 8, 8) scaled to [0, 1], labels as int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_data(*, test_fraction: float = 0.3, seed: int = 0) -> DigitsData:
    """scikit-learn's bundled digits, shuffled with ``seed`` and split train/test.

    Raises:
        ConfigurationError: ``test_fraction`` is not in (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigurationError("test_fraction must be in (0, 1)")
    from sklearn.datasets import load_digits  # an optional dependency of the demo only

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(seed)  # not-secret: shuffles public demo data
    order = rng.permutation(len(labels))
    n_test = round(len(labels) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    return DigitsData(x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])


def dirichlet_split(labels: np.ndarray, num_clients: int, *, alpha: float, seed: int,
                    min_size: int = 2, max_tries: int = 1000) -> list[np.ndarray]:
    """Partition sample indices among clients with label skew drawn from Dirichlet(alpha).

    For every class, the class's samples are divided among the clients in proportions drawn
    from a symmetric Dirichlet(alpha): small alpha gives each client few classes (very
    non-IID), large alpha approaches an IID split. Draws are repeated until every client
    holds at least ``min_size`` samples. Every index appears in exactly one part.

    Raises:
        ConfigurationError: bad parameters, or no draw met ``min_size`` in ``max_tries``.
    """
    labels = np.asarray(labels)
    if num_clients < 1 or alpha <= 0 or min_size < 0 or labels.ndim != 1:
        raise ConfigurationError("need num_clients >= 1, alpha > 0, min_size >= 0, 1-D labels")
    if num_clients * min_size > len(labels):
        raise ConfigurationError("not enough samples for min_size per client")
    rng = np.random.default_rng(seed)  # not-secret: partitions public demo data
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for client, piece in enumerate(np.split(idx, cuts)):
                parts[client].append(piece)
        result = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(r) for r in result) >= min_size:
            return result
    raise ConfigurationError(f"no Dirichlet draw gave every client {min_size} samples")


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 digits (about 38K parameters), with a BatchNorm layer.

    The BatchNorm gives the state_dict float buffers (running statistics) and an integer
    buffer (``num_batches_tracked``), so the demo exercises every kind of entry.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes) for images of shape (N, 1, 8, 8)."""
        out: torch.Tensor = self.classifier(self.features(x))
        return out


def train_local(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 1,
                batch_size: int = 16, lr: float = 0.05, seed: int = 0) -> int:
    """Train ``model`` in place with plain SGD on (x, y); returns the number of examples.

    The mini-batch order comes from a torch Generator seeded with ``seed``, so a run is
    reproducible given the starting weights.

    Raises:
        ConfigurationError: empty data, mismatched lengths or bad hyperparameters.
    """
    if len(x) == 0 or len(x) != len(y) or epochs < 1 or batch_size < 1 or lr <= 0:
        raise ConfigurationError("need non-empty matching data, epochs/batch_size >= 1, lr > 0")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return len(x)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on (x, y), in [0, 1], in eval mode."""
    model.eval()
    predictions = model(x).argmax(dim=1)
    return float((predictions == y).float().mean().item())
