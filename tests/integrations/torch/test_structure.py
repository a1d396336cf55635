"""Client-state structures <-> flat float64 vectors (integrations.torch.structure)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.integrations.torch.structure import Structure

NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8,
                np.bool_]
TORCH_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                torch.int32, torch.int64, torch.uint8, torch.bool]


@st.composite
def entries(draw: st.DrawFn) -> torch.Tensor | np.ndarray:
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    # not-secret: test data.
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(0, 100, shape)
    if draw(st.booleans()):
        dtype = draw(st.sampled_from(TORCH_DTYPES))
        tensor = torch.from_numpy(values)
        return (tensor > 0).to(dtype) if dtype == torch.bool else tensor.to(dtype) \
            if dtype.is_floating_point else tensor.round().clamp(0, 100).to(dtype)
    np_dtype = np.dtype(draw(st.sampled_from(NUMPY_DTYPES)))
    if np_dtype.kind == "b":
        array = values > 0
    else:
        array = values.astype(np_dtype) if np_dtype.kind == "f" else \
            np.clip(np.rint(values), 0, 100).astype(np_dtype)
    # A 0-d result of a numpy operation is a numpy scalar, and comes back as one.
    return array[()] if draw(st.booleans()) else np.asarray(array)


@st.composite
def states(draw: st.DrawFn) -> object:
    kind = draw(st.sampled_from(["mapping", "sequence", "single"]))
    items = draw(st.lists(entries(), min_size=1, max_size=4))
    if kind == "single":
        return items[0]
    if kind == "sequence":
        return items
    return {f"layer{i}.w": v for i, v in enumerate(items)}


def _same(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and b.dtype == a.dtype and b.device == a.device
        assert torch.equal(a, b)
    else:
        assert type(a) is type(b) and isinstance(a, np.ndarray | np.generic)
        assert b.dtype == a.dtype and np.array_equal(a, b)


@given(states())
def test_flatten_then_rebuild_is_exact(state: object) -> None:
    try:
        structure = Structure.of(state)
    except ConfigurationError as exc:  # only an empty state is refused
        assert "no values" in str(exc)
        return
    vector = structure.flatten(state)
    assert vector.dtype == np.float64 and vector.shape == (structure.size,)
    _same(state, structure.rebuild(vector))


def test_integer_entries_are_rounded_and_clamped_to_their_dtype() -> None:
    structure = Structure.of({"n": np.zeros(3, np.uint8), "t": torch.zeros(2, dtype=torch.int8),
                              "b": np.zeros(2, bool)})
    rebuilt = structure.rebuild(np.array([2.6, -5.0, 300.0, 1e6, -1e6, 0.4, 7.0]))
    assert isinstance(rebuilt, dict)
    assert rebuilt["n"].tolist() == [3, 0, 255]
    assert rebuilt["t"].tolist() == [127, -128]
    assert rebuilt["b"].tolist() == [False, True]


def test_a_tensor_that_needs_grad_is_read_not_tracked() -> None:
    parameter = torch.nn.Parameter(torch.ones(2))
    structure = Structure.of([parameter])
    assert structure.flatten([parameter]).tolist() == [1.0, 1.0]
    with pytest.raises(ConfigurationError, match="only real dense tensors"):
        Structure.of([torch.zeros(2).to_sparse()])
