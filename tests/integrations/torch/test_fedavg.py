"""SecureFedAvg: clipping, hidden weights, dropouts, backends (integrations.torch.fedavg)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.integrations.torch.backends import PlainBackend, SimulatedProtocolBackend
from secagg.integrations.torch.fedavg import SecureFedAvg
from secagg.integrations.torch.mean import ClippingWarning
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_SHARE_KEYS, ROUND_UNMASKING


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _shifted(model: nn.Module, shift: float, steps: int = 0) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, value in state.items():
        if value.is_floating_point():
            value += shift
        else:
            value += steps
    return state


def _results(model: nn.Module, shifts: dict[int, float], counts: dict[int, int]
             ) -> dict[int, tuple[dict[str, torch.Tensor], int]]:
    return {cid: (_shifted(model, shift), counts[cid]) for cid, shift in shifts.items()}


def _param(state: dict[str, torch.Tensor]) -> float:
    return float(state["0.weight"][0, 0])


@given(shifts=st.lists(st.floats(-0.05, 0.05), min_size=2, max_size=5),
       counts=st.lists(st.integers(1, 100), min_size=5, max_size=5))
def test_plain_round_is_the_example_weighted_mean(shifts: list[float], counts: list[int]) -> None:
    model = _model()
    start = _param(model.state_dict())
    agg = SecureFedAvg(model, protocol="plain", clip=100.0, max_examples=100)
    ids = {cid: s for cid, s in enumerate(shifts, start=1)}
    state, report = agg.round(_results(model, ids, dict(enumerate(counts, start=1))))
    weights = np.array(counts[:len(shifts)], dtype=float)
    expected = start + float(np.dot(weights, shifts) / weights.sum())
    assert _param(state) == pytest.approx(expected, abs=1e-6)
    assert report.total_examples == weights.sum()
    assert report.included == frozenset(ids) and not report.excluded


@settings(max_examples=5)
@given(shifts=st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3),
       counts=st.lists(st.integers(1, 50), min_size=3, max_size=3))
def test_secure_round_matches_plain_up_to_quantization(shifts: list[float],
                                                       counts: list[int]) -> None:
    model = _model()
    ids = dict(enumerate(shifts, start=1))
    weights = dict(enumerate(counts, start=1))
    states = {}
    for protocol in ("plain", "bonawitz"):
        agg = SecureFedAvg(model, protocol=protocol, clip=1.0, max_examples=50)
        states[protocol], report = agg.round(_results(model, ids, weights))
        assert report.total_examples == pytest.approx(sum(counts), abs=1e-6)
    for name, value in states["plain"].items():
        torch.testing.assert_close(states["bonawitz"][name], value, atol=1e-5, rtol=0)


@pytest.mark.parametrize("protocol", ["bonawitz", "secagg+"])
def test_dropouts_follow_the_protocol_rounds_and_match_the_baseline(protocol: str) -> None:
    model = _model()
    shifts = {cid: 0.01 * cid - 0.04 for cid in range(1, 11)}
    counts = {cid: cid for cid in shifts}
    dropouts = {ROUND_SHARE_KEYS: [2], ROUND_MASKED_INPUT: [5], ROUND_UNMASKING: [6]}
    outcome = {}
    for name in ("plain", protocol):
        agg = SecureFedAvg(model, protocol=name, clip=1.0, max_examples=10,
                           protocol_options={} if name == "plain" else {"dropout_fraction": 0.3})
        state, report = agg.round(_results(model, shifts, counts), dropouts=dropouts)
        outcome[name] = (_param(state), report)
        # 2 and 5 never sent their input; 6 vanished after sending it: it is in the sum.
        assert report.included == frozenset(shifts) - {2, 5}
        assert set(report.excluded) == {2, 5}
        assert report.total_examples == pytest.approx(55.0 - 7.0)
    assert outcome[protocol][0] == pytest.approx(outcome["plain"][0], abs=1e-5)
    secure = outcome[protocol][1]
    assert secure.costs is not None and secure.bytes_up > 0 and secure.bytes_down > 0
    assert secure.costs.rounds[0] == "advertise_keys"
    assert outcome["plain"][1].costs is None


def test_clip_bounds_the_trainable_parameters_only_and_is_reported() -> None:
    model = _model()
    agg = SecureFedAvg(model, protocol="plain", clip=0.5, max_examples=10)
    before = agg.layout.flatten(agg.global_state)
    params = np.zeros(agg.layout.size, dtype=bool)
    for spec in agg.layout.specs:
        if spec.name in dict(model.named_parameters()):
            params[spec.offset:spec.offset + spec.numel] = True
    results = _results(model, {1: 1.0, 2: 1.0}, {1: 5, 2: 5})
    with pytest.warns(ClippingWarning, match="2 of 2 clients were clipped"):
        state, report = agg.round(results)
    moved = agg.layout.flatten(state) - before
    assert np.linalg.norm(moved[params]) == pytest.approx(0.5)
    np.testing.assert_allclose(moved[params], moved[params][0], rtol=1e-5)  # same direction
    # BatchNorm's running statistics are buffers: averaged exactly, never clipped.
    buffers = ~params & ~agg.layout.integer_mask
    np.testing.assert_allclose(moved[buffers], 1.0, rtol=1e-6)
    assert moved[agg.layout.integer_mask].tolist() == [0.0]  # num_batches_tracked: no step
    norm = math.sqrt(params.sum())  # every parameter moved by 1.0
    assert set(report.clipped) == {1, 2}
    for clipping in report.clipped.values():
        assert clipping.norm == pytest.approx(norm)
        assert clipping.factor == pytest.approx(0.5 / norm)
        assert clipping.saturated == 0


def test_no_clip_by_default_and_no_warning() -> None:
    model = _model()
    agg = SecureFedAvg(model)
    assert agg.clip is None and agg.protocol == "secagg+"
    results = _results(model, {1: 3.0, 2: -2.0, 3: 1.0}, {1: 5, 2: 5, 3: 10})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state, report = agg.round(results)
    assert not report.clipped and report.total_examples == 20
    assert isinstance(report.total_examples, int)
    expected = _param(model.state_dict()) + (5 * 3.0 - 5 * 2.0 + 10 * 1.0) / 20
    assert _param(state) == pytest.approx(expected, abs=report.max_resolution + 1e-6)


def test_clip_needs_to_know_the_parameters_of_a_bare_state_dict() -> None:
    model = _model()
    with pytest.raises(ConfigurationError, match="parameter_keys"):
        SecureFedAvg(model.state_dict(), clip=1.0)
    with pytest.raises(ConfigurationError, match="parameter_keys"):
        SecureFedAvg(model.state_dict(), clip=1.0, parameter_keys=["no.such.key"])
    agg = SecureFedAvg(model.state_dict(), protocol="plain", clip=0.5,
                       parameter_keys=["0.weight"])
    with pytest.warns(ClippingWarning):
        state, report = agg.round(_results(model, {1: 1.0, 2: 1.0}, {1: 1, 2: 1}))
    assert set(report.clipped) == {1, 2}
    moved = state["0.weight"] - model.state_dict()["0.weight"]
    assert float(moved.norm()) == pytest.approx(0.5)
    torch.testing.assert_close(state["0.bias"], model.state_dict()["0.bias"] + 1.0)


def test_fixed_bounds_clamp_and_report_instead_of_silently_changing() -> None:
    model = _model()
    agg = SecureFedAvg(model, protocol="bonawitz", bounds={"0.bias": 0.25})
    results = _results(model, {1: 0.5, 2: 0.1, 3: 0.1}, {1: 1, 2: 1, 3: 1})
    with pytest.warns(ClippingWarning, match="values clamped"):
        state, report = agg.round(results)
    assert set(report.clipped) == {1}
    assert report.clipped[1].saturated == 4 and report.clipped[1].norm is None
    assert report.bounds["0.bias"] == 0.25
    moved = state["0.bias"] - model.state_dict()["0.bias"]
    torch.testing.assert_close(moved, torch.full((4,), 0.15), atol=1e-6, rtol=0)
    torch.testing.assert_close(state["0.weight"] - model.state_dict()["0.weight"],
                               torch.full((4, 3), 0.7 / 3), atol=1e-6, rtol=0)


def test_non_finite_update_is_left_out_not_summed() -> None:
    model = _model()
    agg = SecureFedAvg(model, protocol="secagg+", clip=1.0, max_examples=10)
    results = _results(model, {1: 0.01, 2: 0.03, 3: 0.02, 4: 0.0}, dict.fromkeys(range(1, 5), 1))
    results[4][0]["0.weight"][0, 0] = float("nan")
    state, report = agg.round(results)
    assert report.excluded == {4: "non-finite update"}
    assert report.included == frozenset({1, 2, 3})
    assert _param(state) == pytest.approx(_param(model.state_dict()) + 0.02, abs=1e-5)


def test_integer_buffers_average_by_default_or_keep() -> None:
    model = _model()
    results = {cid: (_shifted(model, 0.0, steps=steps), 10) for cid, steps in
               ((1, 4), (2, 7), (3, 7))}
    start = int(model.state_dict()["1.num_batches_tracked"])
    average = SecureFedAvg(model, protocol="bonawitz")
    state, _ = average.round(results)
    assert int(state["1.num_batches_tracked"]) == start + 6  # round(mean(4, 7, 7))
    assert state["1.num_batches_tracked"].dtype == torch.int64
    keep = SecureFedAvg(model, protocol="bonawitz", integer_buffers="keep")
    state, _ = keep.round(results)
    assert int(state["1.num_batches_tracked"]) == start
    weighted = {1: (results[1][0], 30), 2: (results[2][0], 10), 3: (results[3][0], 10)}
    state, _ = SecureFedAvg(model, protocol="secagg+").round(weighted)
    assert int(state["1.num_batches_tracked"]) == start + 5  # round((120 + 70 + 70) / 50)
    bounded = SecureFedAvg(model, protocol="bonawitz", integer_step_bound=5)
    with pytest.warns(ClippingWarning, match="clamped"):
        state, report = bounded.round(results)
    assert int(state["1.num_batches_tracked"]) == start + 5  # round(mean(4, 5, 5))
    assert {c: v.saturated for c, v in report.clipped.items()} == {2: 1, 3: 1}


def test_run_trains_and_loads_the_global_model() -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([[2.0], [-1.0]])
    shards = {1: slice(0, 20), 2: slice(20, 45), 3: slice(45, 64)}

    def local_train(local: nn.Module, cid: int, round_index: int) -> int:
        opt = torch.optim.SGD(local.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.mse_loss(local(x[shards[cid]]), y[shards[cid]]).backward()  # type: ignore[no-untyped-call]
            opt.step()
        return len(x[shards[cid]])

    seen: list[float] = []
    agg = SecureFedAvg(model, protocol="secagg+", clip=2.0, max_examples=64)
    with pytest.warns(ClippingWarning):
        reports = agg.run(model, [1, 2, 3], local_train, rounds=4,
                          on_round=lambda report, m: seen.append(
                              float(m.state_dict()["weight"][0, 0])))
    assert [r.round_index for r in reports] == [0, 1, 2, 3]
    assert all(r.total_examples == 64 for r in reports)
    assert reports[0].clipped and all(c.factor < 1 for c in reports[0].clipped.values())
    assert len(seen) == 4 and seen[-1] == pytest.approx(float(model.weight[0, 0].detach()))
    assert nn.functional.mse_loss(model(x), y) < 0.5
    assert agg.rounds_done == 4


def test_bad_inputs_are_refused() -> None:
    model = _model()
    agg = SecureFedAvg(model, protocol="plain", clip=1.0, max_examples=10)
    good = _results(model, {1: 0.0, 2: 0.0}, {1: 1, 2: 1})
    for count in (0, 11, 2.5, True):
        with pytest.raises(ConfigurationError):
            agg.round({**good, 3: (good[1][0], count)})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        agg.round({**good, "3": good[1]})  # type: ignore[dict-item]
    wrong = dict(good[1][0])
    del wrong["0.bias"]
    with pytest.raises(ConfigurationError, match=r"client 3: .*missing \['0.bias'\]"):
        agg.round({**good, 3: (wrong, 1)})
    with pytest.raises(ConfigurationError, match="results must be a dict"):
        agg.round([good[1], good[2]])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="client 3: expected"):
        agg.round({**good, 3: good[1][0]})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="client 3: the state must be a state_dict"):
        agg.round({**good, 3: ([1.0], 1)})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="client 3: num_examples"):
        SecureFedAvg(model).round({**good, 3: (good[1][0], -1)})
    with pytest.raises(ProtocolAbort):
        agg.round({1: good[1]})
    with pytest.raises(ProtocolAbort):
        agg.round(good, dropouts={ROUND_MASKED_INPUT: [2]})
    with pytest.raises(ConfigurationError):
        agg.round(good, dropouts={"no-such-round": [2]})
    for kwargs in ({"clip": 0.0}, {"clip": float("inf")}, {"clip": "5"}, {"max_examples": 0},
                   {"protocol": "no-such-protocol"}, {"protocol_options": {"nope": 1}},
                   {"integer_step_bound": -1.0}):
        with pytest.raises(ConfigurationError):
            SecureFedAvg(model, **kwargs)


def test_secure_round_with_too_few_survivors_aborts() -> None:
    model = _model()
    agg = SecureFedAvg(model, protocol="bonawitz", clip=1.0, max_examples=10)
    results = _results(model, dict.fromkeys(range(1, 5), 0.01), dict.fromkeys(range(1, 5), 1))
    before = agg.global_state
    with pytest.raises(ProtocolAbort):
        agg.round(results, dropouts={ROUND_MASKED_INPUT: [1, 2, 3]})
    for name, value in agg.global_state.items():
        assert torch.equal(value, before[name])


def test_backends_and_repr_show_no_data() -> None:
    agg = SecureFedAvg(_model(), protocol="secagg+", clip=1.0, max_examples=10)
    assert isinstance(agg.backend, SimulatedProtocolBackend) and agg.protocol == "secagg+"
    assert "clip=1.0" in repr(agg) and "tensor" not in repr(agg)
    assert isinstance(SecureFedAvg(_model(), protocol="plain").backend, PlainBackend)
    custom = PlainBackend(name="mine")
    assert SecureFedAvg(_model(), protocol=custom).protocol == "mine"


def test_the_library_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import secagg, secagg.encoding, secagg.sim.simulator, secagg.integrations\n"
        "try:\n"
        "    import secagg.integrations.torch\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.fixture()
def he_protocols() -> None:
    """Register the threshold-HE specs if the registry's built-ins do not list them yet."""
    from secagg.protocols.registry import protocol_names, register_protocol
    from secagg.protocols.threshold_he.spec import ckks_spec, threshold_paillier_spec

    for spec in (ckks_spec(), threshold_paillier_spec()):
        if spec.name not in protocol_names():
            register_protocol(spec)


@pytest.mark.parametrize("protocol", ["ckks", "threshold-paillier", "threshold-ckks"])
def test_he_protocols_run_through_the_same_wrapper(protocol: str, he_protocols: None) -> None:
    from secagg.protocols.registry import get_protocol

    torch.manual_seed(0)
    model = nn.Linear(6, 2)
    shifts = {1: 0.01, 2: 0.02, 3: -0.03, 4: 0.04}
    counts = {1: 3, 2: 5, 3: 7, 4: 9}
    input_round = get_protocol(protocol).dropout_round
    secure = SecureFedAvg(model, protocol=protocol, clip=1.0, max_examples=10)
    state, report = secure.round(_results(model, shifts, counts), dropouts={input_round: [2]})
    plain = SecureFedAvg(model, protocol="plain", clip=1.0, max_examples=10)
    expected, _ = plain.round(_results(model, shifts, counts),
                              dropouts={ROUND_MASKED_INPUT: [2]})
    assert report.included == frozenset({1, 3, 4}) and set(report.excluded) == {2}
    assert report.total_examples == 19 and isinstance(report.total_examples, int)
    assert report.bytes_up > 0 and report.costs is not None
    for name, value in expected.items():
        torch.testing.assert_close(state[name], value, atol=1e-5, rtol=0)
