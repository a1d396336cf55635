"""secure_weighted_mean: one call for client states (integrations.torch.mean)."""

from __future__ import annotations

import logging
import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from secagg.errors import ConfigurationError, HeadroomError, ProtocolAbort
from secagg.integrations.torch import (
    ClippingWarning,
    MeanReport,
    PlainBackend,
    secure_weighted_mean,
)
from secagg.integrations.torch.mean import Segment, aggregate_vectors
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT


def _states(n: int = 3) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    states = []
    for i in range(n):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        for value in state.values():
            if value.is_floating_point():
                value += torch.randn_like(value) * (i + 1)
            else:
                value += 3 * i + 1
        states.append(state)
    return states


def _mean64(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    total = sum(w * a.astype(np.float64) for w, a in zip(weights, arrays, strict=True))
    result: np.ndarray = total / sum(weights)
    return result


# --- what it accepts and returns ------------------------------------------------------------

def test_a_list_of_state_dicts_with_int_weights() -> None:
    states = _states()
    weights = [50, 30, 80]
    mean, report = secure_weighted_mean(states, weights)
    assert isinstance(mean, dict) and list(mean) == list(states[0])
    assert isinstance(report, MeanReport) and report.protocol == "secagg+"
    assert report.included == frozenset({0, 1, 2}) and not report.excluded
    assert report.total_weight == 160 and isinstance(report.total_weight, int)
    assert report.weights_exact and report.weight_unit == 1.0 and not report.clipped
    for name, value in mean.items():
        assert value.dtype == states[0][name].dtype and value.shape == states[0][name].shape
        exact = _mean64([s[name].double().numpy() for s in states], weights)
        if value.is_floating_point():
            ulp = np.finfo(np.float32).eps * np.abs(exact)
            assert np.all(np.abs(value.double().numpy() - exact)
                          <= report.resolution[name] + ulp)
        else:
            assert np.array_equal(value.numpy(), np.rint(exact))


def test_a_dict_of_numpy_states_with_float_weights_and_str_ids() -> None:
    # not-secret: test data.
    rng = np.random.default_rng(1)
    states = {name: {"w": rng.normal(size=(3, 2)).astype(np.float32),
                     "b": rng.normal(size=2), "steps": np.array(7 * i, dtype=np.int32)}
              for i, name in enumerate(["alice", "bob", "carol"])}
    weights = {"alice": 0.2, "bob": 0.3, "carol": 0.5}
    mean, report = secure_weighted_mean(states, weights, protocol="bonawitz")
    assert set(mean) == {"w", "b", "steps"} and mean["w"].dtype == np.float32
    assert mean["steps"].dtype == np.int32 and int(mean["steps"]) == round(7 * 1.3)
    assert report.included == frozenset(weights)
    assert not report.weights_exact and report.total_weight == pytest.approx(1.0, abs=1e-8)
    exact = _mean64([s["b"] for s in states.values()], list(weights.values()))
    np.testing.assert_allclose(mean["b"], exact, atol=1e-7, rtol=0)


def test_lists_of_arrays_single_arrays_and_tensors_keep_their_form() -> None:
    arrays = [[np.full(2, 1.0, np.float32), np.arange(3)], [np.zeros(2, np.float32),
                                                            np.arange(3) * 3]]
    mean, _ = secure_weighted_mean(arrays, protocol="bonawitz")
    assert isinstance(mean, list) and len(mean) == 2
    np.testing.assert_allclose(mean[0], [0.5, 0.5], atol=1e-7)
    assert mean[1].tolist() == [0, 2, 4] and mean[1].dtype == arrays[0][1].dtype
    flat, report = secure_weighted_mean({3: np.array([1.0, -2.0]), 9: np.array([3.0, 2.0])},
                                        {3: 1, 9: 3})
    assert isinstance(flat, np.ndarray) and report.included == frozenset({3, 9})
    np.testing.assert_allclose(flat, [2.5, 1.0], atol=1e-8)
    tensor, _ = secure_weighted_mean((torch.ones(2, dtype=torch.float16),
                                      torch.zeros(2, dtype=torch.float16)))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float16
    assert tensor.tolist() == [0.5, 0.5]
    ordered, _ = secure_weighted_mean([OrderedDict(a=torch.ones(1)),
                                       OrderedDict(a=torch.zeros(1))], protocol="plain")
    assert float(ordered["a"]) == 0.5


def test_weights_as_arrays_and_none() -> None:
    states = [np.array([1.0]), np.array([3.0]), np.array([8.0])]
    for weights in (None, np.ones(3), torch.tensor([2, 2, 2])):
        mean, report = secure_weighted_mean(states, weights, protocol="plain")
        assert float(mean[0]) == pytest.approx(4.0)
    assert report.total_weight == 6


def test_a_reference_makes_the_update_a_delta_and_clip_bounds_it() -> None:
    reference = {"w": torch.zeros(4), "b": torch.zeros(1)}
    states = [{"w": torch.full((4,), 3.0), "b": torch.tensor([5.0])},
              {"w": torch.full((4,), 0.1), "b": torch.tensor([1.0])}]
    with pytest.warns(ClippingWarning, match="1 of 2 clients were clipped"):
        mean, report = secure_weighted_mean(states, reference=reference, clip=1.0,
                                            clip_keys=["w"], protocol="bonawitz")
    assert set(report.clipped) == {0}
    assert report.clipped[0].norm == pytest.approx(6.0)
    assert report.clipped[0].factor == pytest.approx(1 / 6)
    torch.testing.assert_close(mean["w"], torch.full((4,), (0.5 + 0.1) / 2), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(mean["b"], torch.tensor([3.0]), atol=1e-6, rtol=0)


def test_dropouts_leave_clients_out() -> None:
    states = [np.full(3, float(i)) for i in range(5)]
    mean, report = secure_weighted_mean(states, [1, 2, 3, 4, 5], protocol="bonawitz",
                                        dropouts={ROUND_MASKED_INPUT: [4]})
    assert report.included == frozenset(range(4)) and set(report.excluded) == {4}
    assert report.total_weight == 10
    np.testing.assert_allclose(mean, (0 + 2 + 6 + 12) / 10, atol=1e-7)
    with pytest.raises(ProtocolAbort):
        secure_weighted_mean(states[:3], protocol="bonawitz",
                             dropouts={ROUND_MASKED_INPUT: [0, 1]})


@settings(max_examples=10)
@given(values=st.lists(hnp.arrays(np.float64, 6, elements=st.floats(-1e4, 1e4)),
                       min_size=2, max_size=5),
       weights=st.lists(st.integers(1, 10**6), min_size=5, max_size=5))
def test_the_mean_is_within_the_reported_resolution(values: list[np.ndarray],
                                                    weights: list[int]) -> None:
    weights = weights[:len(values)]
    mean, report = secure_weighted_mean(values, weights, protocol="bonawitz")
    assert report.total_weight == sum(weights) and isinstance(report.total_weight, int)
    exact = _mean64(values, weights)
    slack = 1e-12 * max(1.0, float(np.abs(exact).max()))
    assert np.all(np.abs(mean - exact) <= report.resolution[""] + slack)
    assert report.resolution[""] <= 2.0**-20 * report.bounds[""]


def test_huge_integer_weights_are_quantized_not_wrapped() -> None:
    values = [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
    weights = [3 * 2**40 + 1, 2**40]
    mean, report = secure_weighted_mean(values, weights, bits=32, protocol="bonawitz")
    assert not report.weights_exact and report.weight_unit == 2**13  # 2^42 / 2^29
    assert report.total_weight == 4 * 2**40 and isinstance(report.total_weight, int)
    np.testing.assert_allclose(mean, [0.75, 0.25], atol=1e-7)
    # Multiples of the unit stay exact, and so does the plain baseline.
    _, report = secure_weighted_mean(values, [3 * 2**40, 2**40], protocol="bonawitz")
    assert report.weights_exact and report.total_weight == 4 * 2**40
    _, report = secure_weighted_mean(values, weights, protocol="plain")
    assert report.total_weight == sum(weights) and report.weights_exact


def test_fixed_bounds_are_used_and_values_beyond_are_reported() -> None:
    values = [np.array([0.5, 4.0]), np.array([0.25, 1.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report = secure_weighted_mean(values, protocol="bonawitz", bounds=8.0)
    assert report.bounds == {"": 8.0}
    with pytest.warns(ClippingWarning, match="1 values clamped"):
        mean, report = secure_weighted_mean(values, protocol="bonawitz", bounds=2.0)
    assert report.clipped[0].saturated == 1 and report.clipped[0].norm is None
    np.testing.assert_allclose(mean, [0.375, 1.5], atol=1e-7)


def test_clipping_warns_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    values = [np.array([3.0, 4.0]), np.array([0.3, 0.4])]
    with caplog.at_level(logging.WARNING, logger="secagg.integrations.torch"), \
            pytest.warns(ClippingWarning):
        secure_weighted_mean(values, clip=1.0, protocol="plain")
    assert any("1 of 2 clients were clipped" in r.getMessage() for r in caplog.records)


def test_debug_log_records_the_run_and_never_values(caplog: pytest.LogCaptureFixture) -> None:
    secret = 1234.5678
    values = [np.array([secret, 1.0]), np.array([2.0, 3.0]), np.array([4.0, np.nan])]
    with caplog.at_level(logging.DEBUG, logger="secagg.integrations.torch"):
        with pytest.raises(ConfigurationError):
            secure_weighted_mean(values, [17, 23, 29])
        secure_weighted_mean(values[:2], [17, 23], protocol="bonawitz")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "aggregating 2 clients" in text and "aggregated 2 of 2 clients" in text
    for hidden in ("1234", "17", "23"):
        assert hidden not in text


# --- what it refuses ----------------------------------------------------------------------

def _refused(match: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(ConfigurationError, match=match):
        secure_weighted_mean(*args, **kwargs)  # type: ignore[arg-type]


def test_bad_states_are_refused_naming_the_client() -> None:
    a, b = _states(2)
    _refused("at least two clients", [a])
    _refused("at least two clients", {})
    _refused("a list of client states", a["0.weight"])
    missing = dict(b)
    del missing["0.bias"]
    _refused(r"client 1: keys differ.*missing \['0.bias'\]", [a, missing])
    reshaped = {**b, "0.weight": torch.zeros(2, 2)}
    _refused(r"client 'x': entry '0.weight' has shape \(2, 2\), expected \(4, 3\)",
             {"w": a, "x": reshaped})
    _refused(r"client 1: entry '0.bias' holds NaN", [a, {**b, "0.bias": b["0.bias"] / 0}])
    _refused(r"client 1: entry '0.bias' is a list", [a, {**b, "0.bias": [1.0] * 4}])
    _refused(r"client 1: entry '0.bias' is a float, not a torch.Tensor or numpy array",
             [a, {**b, "0.bias": 1.0}])
    _refused(r"client 0: .* got a str", ["state", b])
    _refused(r"client 1: entry '0.bias' has dtype complex", [
        {"0.bias": np.zeros(4)}, {"0.bias": np.zeros(4, dtype=complex)}])
    _refused(r"client 1: 1 arrays, the first client has 2", [[np.zeros(1), np.zeros(1)],
                                                             [np.zeros(1)]])
    _refused(r"client 1: expected a mapping state", [a, [a["0.bias"]]])
    _refused("holds no values", [np.zeros(0), np.zeros(0)])
    _refused("client ids are ints or strs", {1.5: a, 2.5: b})
    _refused("one state_dict", a)  # a single state_dict passed as if it were the clients


@pytest.mark.parametrize(("weights", "match"), [
    ([1, -1], r"client 1: weight must be positive"),
    ([0, 1], r"client 0: weight must be positive"),
    ([1, float("nan")], r"client 1: weight must be positive and finite"),
    ([1, float("inf")], r"client 1: weight must be positive and finite"),
    ([1, True], r"client 1: a weight is a number, got a bool"),
    ([1, "2"], r"client 1: a weight is a number, got a str"),
    ([1], r"1 weights for 2 clients"),
    ({0: 1, 1: 1}, r"weights must be a list"),
    (np.ones((2, 1)), r"one number per client"),
])
def test_bad_weights_are_refused_naming_the_client(weights: object, match: str) -> None:
    _refused(match, [np.zeros(2), np.ones(2)], weights)


def test_bad_keyed_weights_and_options_are_refused() -> None:
    states = {"a": np.zeros(2), "b": np.ones(2)}
    _refused(r"missing \['b'\], unexpected \['c'\]", states, {"a": 1, "c": 1})
    _refused("must be a dict", states, [1, 1])
    _refused("unknown protocol options", states, nope=1)
    _refused("takes no protocol options", states, protocol="plain", threshold=2)
    _refused("belong to a protocol name", states, protocol=PlainBackend(), bits=32)
    _refused("clip must be a positive finite number", states, clip=-1.0)
    _refused("clip_keys without clip", states, clip_keys=[""])
    _refused("clip_keys names unknown entries", states, clip=1.0, clip_keys=["w"])
    _refused("bounds names unknown entries", states, bounds={"w": 1.0})
    _refused("bounds must be a positive finite number", states, bounds=0.0)
    _refused(r"weight 5 exceeds max_weight 4", states, {"a": 5, "b": 1}, max_weight=4)
    _refused("reference state holds NaN", states, reference=np.array([0.0, np.nan]))
    _refused("unknown protocol", states, protocol="no-such-protocol")
    with pytest.raises(HeadroomError):
        secure_weighted_mean(states, bits=2)


def test_aggregate_vectors_checks_its_segments() -> None:
    vectors = {1: np.zeros(3), 2: np.ones(3)}
    for segments in ([Segment("a", 0, 2)], [Segment("a", 1, 3)]):
        with pytest.raises(ConfigurationError, match="segments"):
            aggregate_vectors(vectors, {1: 1, 2: 1}, segments=segments,
                              backend=PlainBackend())
    with pytest.raises(ConfigurationError, match="client 2: a weight is a number, got a "
                                                 "NoneType"):
        aggregate_vectors(vectors, {1: 1}, segments=[Segment("a", 0, 3)],
                          backend=PlainBackend())
    with pytest.raises(ConfigurationError, match="client 2: an update must be a float64"):
        aggregate_vectors({1: np.zeros(3), 2: np.zeros(3, np.float32)}, {1: 1, 2: 1},
                          segments=[Segment("a", 0, 3)], backend=PlainBackend())
    mean, report = aggregate_vectors(vectors, {1: 1, 2: 3}, segments=[
        Segment("a", 0, 1), Segment("empty", 1, 0), Segment("b", 1, 2)], backend=PlainBackend())
    np.testing.assert_allclose(mean, 0.75)
    assert report.bounds == {"a": 1.0, "empty": 1.0, "b": 1.0}
    assert math.isclose(report.total_weight, 4)
