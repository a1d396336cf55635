"""With default settings, secure FedAvg is float64 FedAvg up to the fixed-point resolution.

Issue 16: clipping the whole state (BatchNorm statistics included) scaled clients down
silently and left ``num_batches_tracked`` behind. These tests take models with BatchNorm,
clients whose running statistics moved differently, and compare a default round with
float64 FedAvg of the same client states, entry by entry: the gap must stay within the
round's reported ``resolution`` plus one unit in the last place of the entry's dtype, and
integer buffers must be equal.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from secagg.integrations.torch import SecureFedAvg, secure_weighted_mean
from secagg.integrations.torch.digits import DigitsCNN, load_digits_data, train_local
from tests.integrations.torch.models import fedavg64, max_excess, resnet, trained_clients

WEIGHTS = [37, 80, 12, 55]


def _resnet_round() -> tuple[nn.Module, list[dict[str, torch.Tensor]]]:
    torch.manual_seed(0)
    model = resnet()
    return model, trained_clients(model, len(WEIGHTS))


def test_the_clients_move_batchnorm_statistics_more_than_weights() -> None:
    """The scenario of the issue: buffers dominate the update norm and the counters
    advance differently per client (so 'keep' or a whole-state clip would differ)."""
    model, states = _resnet_round()
    start = model.state_dict()
    params = dict(model.named_parameters())
    for state in states:
        sq_params = sum(float((state[k] - start[k]).pow(2).sum()) for k in params)
        sq_buffers = sum(float((state[k] - start[k]).pow(2).sum()) for k in start
                         if k not in params and start[k].is_floating_point())
        assert sq_buffers > sq_params
    counters = {int(s["1.num_batches_tracked"]) for s in states}
    assert len(counters) == len(states)


@pytest.mark.parametrize("protocol", ["secagg+", "bonawitz", "plain"])
def test_default_round_of_a_batchnorm_resnet_is_float64_fedavg(protocol: str) -> None:
    model, states = _resnet_round()
    expected = fedavg64(states, WEIGHTS)
    for name, value in expected.items():
        if not value.is_floating_point():  # the rounding of the counters is not a tie
            mean = sum(w * int(s[name]) for w, s in zip(WEIGHTS, states, strict=True))
            assert abs(mean / sum(WEIGHTS) % 1 - 0.5) > 0.01
    agg = SecureFedAvg(model, protocol=protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing clipped, nothing to warn about
        state, report = agg.round({cid + 1: (s, w) for cid, (s, w)
                                   in enumerate(zip(states, WEIGHTS, strict=True))})
    assert max_excess(state, expected, report.resolution) <= 0.0
    assert not report.clipped and report.weights_exact
    assert report.total_examples == sum(WEIGHTS)
    assert isinstance(report.total_examples, int)
    if protocol == "plain":
        assert report.max_resolution == 0.0
    else:
        # Tight: far below a float32 unit in the last place of a running_var of ~4.
        assert 0.0 < report.max_resolution < 1e-7
    assert int(state["1.num_batches_tracked"]) != int(model.state_dict()[
        "1.num_batches_tracked"])


def test_secure_weighted_mean_of_the_states_is_float64_fedavg() -> None:
    _, states = _resnet_round()
    mean, report = secure_weighted_mean(states, WEIGHTS)
    assert max_excess(mean, fedavg64(states, WEIGHTS), report.resolution) <= 0.0
    assert report.total_weight == sum(WEIGHTS) and isinstance(report.total_weight, int)


def test_float_weights_are_carried_with_the_stated_precision() -> None:
    _, states = _resnet_round()
    weights = [0.37, 0.8, 0.12, 0.55]
    mean, report = secure_weighted_mean(states, weights)
    assert not report.weights_exact and 0 < report.weight_unit < 1e-8
    assert report.total_weight == pytest.approx(sum(weights), abs=len(weights)
                                                * report.weight_unit)
    # A weight off by at most unit/2 moves the mean by at most this much.
    spread = max(float((s[k].double() - states[0][k].double()).abs().max())
                 for s in states for k in s)
    slack = len(weights) * report.weight_unit * spread / sum(weights)
    resolution = {k: v + slack for k, v in report.resolution.items()}
    assert max_excess(mean, fedavg64(states, weights), resolution) <= 0.0


def test_default_round_of_the_digits_cnn_is_float64_fedavg() -> None:
    data = load_digits_data(seed=0)
    torch.manual_seed(0)
    model = DigitsCNN()
    results = {}
    for cid, (start, stop) in enumerate([(0, 48), (48, 80), (80, 150)], start=1):
        local = DigitsCNN()
        local.load_state_dict(model.state_dict())
        count = train_local(local, data.x_train[start:stop], data.y_train[start:stop],
                            epochs=1, seed=cid)
        results[cid] = ({k: v.clone() for k, v in local.state_dict().items()}, count)
    expected = fedavg64([s for s, _ in results.values()], [c for _, c in results.values()])
    state, report = SecureFedAvg(model).round(results)
    assert max_excess(state, expected, report.resolution) <= 0.0
    assert report.total_examples == 150 and not report.clipped
    assert report.max_resolution < 1e-7


def test_the_check_is_not_vacuous() -> None:
    """A deviation of a few float32 ulps (what the old whole-state clip produced, and
    much less) fails the comparison."""
    _, states = _resnet_round()
    expected = fedavg64(states, WEIGHTS)
    mean, report = secure_weighted_mean(states, WEIGHTS)
    name = "1.running_var"
    nudged = dict(mean)
    nudged[name] = mean[name] * (1 + 8 * float(np.finfo(np.float32).eps))
    assert max_excess(nudged, expected, report.resolution) > 0.0
    counted = dict(mean)
    counted["1.num_batches_tracked"] = mean["1.num_batches_tracked"] + 1
    assert max_excess(counted, expected, report.resolution) > 0.0
