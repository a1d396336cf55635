"""Small PyTorch models and client states for the torch integration tests.

:func:`resnet` is a ResNet-18-shaped network in miniature (a stem, basic blocks with a
strided 1x1 downsample, BatchNorm after every convolution): torchvision is not a
dependency, and what matters for FedAvg is the mix of weights, BatchNorm running statistics
and ``num_batches_tracked`` counters. :func:`fedavg64` is the reference: float64 FedAvg of
client state dicts, cast back to each entry's dtype (integers rounded).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv + BatchNorm, a 1x1 strided shortcut if needed."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride,
                                                    bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = torch.relu(out + self.shortcut(x))
        return result


def resnet(width: int = 8, classes: int = 10) -> nn.Module:
    """A miniature ResNet for 3x8x8 inputs: stem, 3 basic blocks (one strided), a head."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        BasicBlock(width, width, 1), BasicBlock(width, 2 * width, 2),
        BasicBlock(2 * width, 2 * width, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes))


def trained_clients(model: nn.Module, clients: int, *, seed: int = 0
                    ) -> list[dict[str, torch.Tensor]]:
    """Each client trains a copy of ``model`` on its own synthetic data for a different
    number of SGD steps, then runs extra forward passes in ``train()`` mode: its BatchNorm
    statistics move differently from every other client's (means shifted by ``+2 * client``,
    scales by ``1 + client``) and its ``num_batches_tracked`` advances by its own count."""
    states = []
    generator = torch.Generator().manual_seed(seed)
    for client in range(clients):
        local = copy.deepcopy(model)
        local.train()
        optimizer = torch.optim.SGD(local.parameters(), lr=0.05)
        for step in range(2 + client):
            x = torch.randn(16, 3, 8, 8, generator=generator) * (1 + client) + 2 * client
            y = torch.randint(0, 10, (16,), generator=generator)
            optimizer.zero_grad()
            nn.functional.cross_entropy(local(x), y).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        with torch.no_grad():
            for _ in range(3 * client):  # BatchNorm statistics only, no weight update
                local(torch.randn(16, 3, 8, 8, generator=generator) * (1 + client) + 2 * client)
        states.append({k: v.detach().clone() for k, v in local.state_dict().items()})
    return states


def fedavg64(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
             ) -> dict[str, torch.Tensor]:
    """Float64 FedAvg of ``states``: the weighted mean per entry, cast to its dtype
    (integers rounded to nearest), the reference the secure path must reproduce."""
    total = float(sum(weights))
    result = {}
    for name, first in states[0].items():
        mean = sum(float(w) * s[name].to(torch.float64) for w, s in zip(weights, states,
                                                                         strict=True)) / total
        assert isinstance(mean, torch.Tensor)
        result[name] = (mean if first.is_floating_point() else mean.round()).to(first.dtype)
    return result


def max_excess(secure: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor],
               resolution: Mapping[str, float]) -> float:
    """The largest ``|secure - reference| - allowed`` over all entries (<= 0 when within
    tolerance): the fixed-point ``resolution`` of the entry plus one unit in the last place
    of the entry's dtype (both sides are rounded to it), exact equality for integers."""
    worst = -float("inf")
    for name, ref in reference.items():
        got = secure[name]
        assert got.dtype == ref.dtype and got.shape == ref.shape, name
        diff = (got.to(torch.float64) - ref.to(torch.float64)).abs()
        if ref.is_floating_point():
            ulp = torch.finfo(ref.dtype).eps * ref.to(torch.float64).abs().clamp_min(
                torch.finfo(ref.dtype).tiny)
            allowed = resolution.get(name, 0.0) + ulp
        else:
            allowed = torch.zeros_like(diff)
        if diff.numel():
            worst = max(worst, float((diff - allowed).max()))
    return worst
