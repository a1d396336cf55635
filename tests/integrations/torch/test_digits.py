"""The digits workload: data, Dirichlet split, CNN, local training (integrations.torch.digits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.integrations.torch.digits import (
    DigitsCNN,
    dirichlet_split,
    evaluate,
    load_digits_data,
    train_local,
)
from secagg.integrations.torch.state import StateLayout


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_digits_data(test_fraction=0.3, seed=0)


def test_digits_shapes_ranges_and_disjoint_split(data) -> None:  # type: ignore[no-untyped-def]
    assert data.x_train.shape[1:] == (1, 8, 8) and data.x_train.dtype == torch.float32
    assert len(data.x_train) + len(data.x_test) == 1797
    assert abs(len(data.x_test) - 0.3 * 1797) <= 1
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    assert set(data.y_train.tolist()) == set(range(10))
    again = load_digits_data(test_fraction=0.3, seed=0)
    assert torch.equal(again.x_test, data.x_test)
    with pytest.raises(ConfigurationError):
        load_digits_data(test_fraction=1.0)


@given(
    labels=st.lists(st.integers(0, 4), min_size=40, max_size=300),
    clients=st.integers(1, 8),
    alpha=st.floats(0.05, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_dirichlet_split_is_a_partition(labels: list[int], clients: int, alpha: float,
                                        seed: int) -> None:
    y = np.array(labels)
    parts = dirichlet_split(y, clients, alpha=alpha, seed=seed, min_size=1, max_tries=10_000)
    assert len(parts) == clients
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(y)))
    assert min(len(p) for p in parts) >= 1
    again = dirichlet_split(y, clients, alpha=alpha, seed=seed, min_size=1, max_tries=10_000)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_small_alpha_is_more_skewed_than_large_alpha(data) -> None:  # type: ignore[no-untyped-def]
    y = data.y_train.numpy()

    def mean_classes_held(alpha: float) -> float:
        parts = dirichlet_split(y, 10, alpha=alpha, seed=1)
        return float(np.mean([np.count_nonzero(np.bincount(y[p], minlength=10) >= 5)
                              for p in parts]))

    assert mean_classes_held(0.1) < mean_classes_held(100.0)


def test_dirichlet_split_refuses_bad_parameters() -> None:
    y = np.zeros(10, dtype=int)
    with pytest.raises(ConfigurationError):
        dirichlet_split(y, 0, alpha=1.0, seed=0)
    with pytest.raises(ConfigurationError):
        dirichlet_split(y, 2, alpha=0.0, seed=0)
    with pytest.raises(ConfigurationError):
        dirichlet_split(y, 6, alpha=1.0, seed=0, min_size=2)


def test_cnn_has_every_kind_of_state_entry() -> None:
    model = DigitsCNN()
    out = model(torch.zeros(3, 1, 8, 8))
    assert out.shape == (3, 10)
    state = model.state_dict()
    assert any(not v.is_floating_point() for v in state.values())  # num_batches_tracked
    assert any("running_mean" in k for k in state)
    layout = StateLayout.from_state(state, integer_buffers="keep")
    assert layout.size == sum(v.numel() for v in state.values() if v.is_floating_point())
    assert StateLayout.from_state(state).size == sum(v.numel() for v in state.values())


def test_local_training_is_reproducible_and_learns(data) -> None:  # type: ignore[no-untyped-def]
    x, y = data.x_train[:300], data.y_train[:300]
    torch.manual_seed(0)
    start = DigitsCNN().state_dict()
    models = []
    for _ in range(2):
        model = DigitsCNN()
        model.load_state_dict(start)
        assert train_local(model, x, y, epochs=3, seed=7) == 300
        models.append(model)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    untrained = DigitsCNN()
    untrained.load_state_dict(start)
    assert evaluate(models[0], x, y) > evaluate(untrained, x, y) + 0.3
    assert 0.0 <= evaluate(models[0], data.x_test, data.y_test) <= 1.0
    with pytest.raises(ConfigurationError):
        train_local(models[0], x[:0], y[:0])
