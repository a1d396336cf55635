"""Flatten/unflatten of PyTorch state_dicts (secagg.integrations.torch.state)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from secagg.errors import ConfigurationError
from secagg.integrations.torch.state import StateLayout

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INT_DTYPES = [torch.int8, torch.int32, torch.int64, torch.uint8, torch.bool]


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))


@st.composite
def states(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    n = draw(st.integers(1, 5))
    state: dict[str, torch.Tensor] = {}
    for i in range(n):
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
        dtype = draw(st.sampled_from(FLOAT_DTYPES + INT_DTYPES))
        seed = draw(st.integers(0, 2**31))
        g = torch.Generator().manual_seed(seed)
        if dtype.is_floating_point:
            t = (torch.randn(shape, generator=g, dtype=torch.float64) * 100).to(dtype)
        elif dtype == torch.bool:
            t = torch.randint(0, 2, shape, generator=g).to(torch.bool)
        else:
            info = torch.iinfo(dtype)
            t = torch.randint(max(info.min, -1000), min(info.max, 1000), shape,
                              generator=g).to(dtype)
        state[f"layer{i}.w"] = t
    return state


@given(states(), st.sampled_from(["keep", "average"]))
def test_round_trip_is_exact_and_preserves_dtype_shape_device(
        state: dict[str, torch.Tensor], policy: str) -> None:
    layout = StateLayout.from_state(state, integer_buffers=policy)  # type: ignore[arg-type]
    vector = layout.flatten(state)
    assert vector.dtype == np.float64 and vector.shape == (layout.size,)
    back = layout.unflatten(vector, reference=state)
    assert list(back) == list(state)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype
        assert back[name].shape == tensor.shape
        assert back[name].device == tensor.device
        assert torch.equal(back[name], tensor)


@given(states())
def test_keep_policy_leaves_integers_out_of_the_vector(state: dict[str, torch.Tensor]) -> None:
    layout = StateLayout.from_state(state, integer_buffers="keep")
    expected = sum(t.numel() for t in state.values() if t.dtype.is_floating_point)
    assert layout.size == expected
    assert not layout.integer_mask.any()


def test_batchnorm_counter_travels_by_default_or_is_kept_from_reference() -> None:
    model = _bn_model()
    model(torch.randn(4, 1, 4, 4))  # one training step bumps num_batches_tracked
    state = model.state_dict()
    default = StateLayout.from_state(state)
    assert default.integer_buffers == "average" and default.integer_mask.sum() == 1
    layout = StateLayout.from_state(state, integer_buffers="keep")
    assert "1.num_batches_tracked" in layout.names
    reference = {k: v.clone() for k, v in state.items()}
    reference["1.num_batches_tracked"] = torch.tensor(41)
    back = layout.unflatten(layout.flatten(state), reference=reference)
    assert int(back["1.num_batches_tracked"]) == 41
    assert torch.equal(back["1.running_mean"], state["1.running_mean"])
    with pytest.raises(ConfigurationError):
        layout.unflatten(layout.flatten(state))  # reference needed for kept entries


def test_average_policy_rounds_integer_deltas() -> None:
    model = _bn_model()
    state = model.state_dict()
    layout = StateLayout.from_state(state, integer_buffers="average")
    mask = layout.integer_mask
    assert mask.sum() == 1
    delta = np.zeros(layout.size)
    delta[mask] = 2.6  # e.g. a weighted average of local step counts
    moved = layout.apply_delta(state, delta)
    assert int(moved["1.num_batches_tracked"]) == int(state["1.num_batches_tracked"]) + 3
    assert moved["1.num_batches_tracked"].dtype == torch.int64


def test_delta_against_global_and_apply_delta_invert() -> None:
    model = _bn_model()
    global_state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.25)
    layout = StateLayout.from_state(global_state, integer_buffers="keep")
    delta = layout.delta(model.state_dict(), global_state)
    float_entries = sum(v.numel() for v in global_state.values() if v.is_floating_point())
    params = sum(p.numel() for p in model.parameters())
    assert np.count_nonzero(delta) == params <= float_entries
    np.testing.assert_allclose(delta[delta != 0], 0.25, rtol=1e-6)
    moved = layout.apply_delta(global_state, delta)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(moved[name], tensor)


def test_flatten_reuses_out_buffer() -> None:
    state = _bn_model().state_dict()
    layout = StateLayout.from_state(state)
    out = np.empty(layout.size)
    assert layout.flatten(state, out=out) is out
    with pytest.raises(ConfigurationError):
        layout.flatten(state, out=np.empty(layout.size + 1))
    with pytest.raises(ConfigurationError):
        layout.flatten(state, out=np.empty(layout.size, dtype=np.float32))


def test_mismatched_states_are_refused() -> None:
    state = _bn_model().state_dict()
    layout = StateLayout.from_state(state)
    missing = dict(state)
    del missing["0.weight"]
    with pytest.raises(ConfigurationError):
        layout.flatten(missing)
    reshaped = dict(state)
    reshaped["0.weight"] = torch.zeros(2, 2)
    with pytest.raises(ConfigurationError):
        layout.flatten(reshaped)
    with pytest.raises(ConfigurationError):
        layout.unflatten(np.zeros(layout.size - 1), reference=state)
    bad = np.zeros(layout.size)
    bad[0] = np.nan
    with pytest.raises(ConfigurationError):
        layout.unflatten(bad, reference=state)


def test_bad_layouts_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        StateLayout.from_state({})
    with pytest.raises(ConfigurationError):
        StateLayout.from_state({"w": torch.zeros(2, dtype=torch.complex64)})
    with pytest.raises(ConfigurationError):
        StateLayout.from_state({"w": np.zeros(2)})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        StateLayout.from_state({"w": torch.zeros(2)}, integer_buffers="sum")  # type: ignore[arg-type]


def test_out_of_range_integer_values_saturate_instead_of_wrapping() -> None:
    state = {"w": torch.zeros(2), "count": torch.tensor([5, 5], dtype=torch.int8)}
    layout = StateLayout.from_state(state, integer_buffers="average")
    vector = layout.flatten(state)
    vector[layout.integer_mask] = [1e6, -1e6]
    back = layout.unflatten(vector, reference=state)
    assert back["count"].tolist() == [127, -128]
