"""Rotations: invertible, norm preserving, deterministic in the public seed, flat."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import hadamard

from secagg.dp.rotation import (
    fwht,
    padded_length,
    rotate,
    rotation_signs,
    unrotate,
)
from secagg.errors import ConfigurationError

SEED = bytes(range(32))


def vector(dim: int, tag: int) -> np.ndarray:
    # not-secret: test data only
    return np.random.default_rng(tag).standard_normal(dim)


@pytest.mark.parametrize("n", [2, 4, 8, 64, 512, 2048])
def test_fwht_matches_the_hadamard_matrix(n: int) -> None:
    x = vector(n, n)
    assert np.allclose(fwht(x), hadamard(n) @ x)
    assert np.allclose(fwht(x, gain=0.5), 0.5 * (hadamard(n) @ x))
    assert np.allclose(fwht(fwht(x)), n * x)


@given(
    dim=st.integers(min_value=1, max_value=5000),
    kind=st.sampled_from(["hadamard", "dft"]),
    tag=st.integers(min_value=0, max_value=2**32 - 1),
    gain=st.floats(min_value=1e-3, max_value=1e3),
)
def test_rotation_is_invertible_and_norm_preserving(
    dim: int, kind: str, tag: int, gain: float
) -> None:
    n = padded_length(dim, kind)
    assert n >= dim and (n & (n - 1) == 0 if kind == "hadamard" else n % 2 == 0)
    x = np.zeros(n)
    x[:dim] = vector(dim, tag)
    seed = tag.to_bytes(4, "big") * 8
    y = rotate(x, seed, kind, gain=gain)
    assert np.linalg.norm(y) == pytest.approx(gain * np.linalg.norm(x), rel=1e-12, abs=1e-12)
    back = unrotate(y, seed, kind, gain=1 / gain)
    assert np.allclose(back, x, rtol=0, atol=1e-12 * max(1.0, float(np.abs(x).max())))


def test_rotation_depends_only_on_the_public_seed() -> None:
    x = vector(1000, 1)
    x = np.concatenate((x, np.zeros(24)))
    for kind in ("hadamard", "dft"):
        assert np.array_equal(rotate(x, SEED, kind), rotate(x, SEED, kind))
        assert not np.allclose(rotate(x, SEED, kind), rotate(x, bytes(32), kind))
    assert not np.array_equal(rotation_signs(SEED, 64, "hadamard"), rotation_signs(SEED, 64, "dft"))
    signs = rotation_signs(SEED, 4096)
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(signs.mean()) < 0.1


def test_rotation_flattens_a_spike() -> None:
    """A one-hot vector becomes +-1/sqrt(n) everywhere (Hadamard) or spread (DFT)."""
    n = 1 << 12
    spike = np.zeros(n)
    spike[17] = 1.0
    y = rotate(spike, SEED, "hadamard")
    assert np.allclose(np.abs(y), 1 / np.sqrt(n))
    z = rotate(spike, SEED, "dft")
    assert np.abs(z).max() <= np.sqrt(2 / n) + 1e-12


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: padded_length(0), "dim must be"),
        (lambda: padded_length(True), "dim must be"),
        (lambda: padded_length(10, "fft"), "rotation must be"),
        (lambda: fwht(np.ones(6)), "power of two"),
        (lambda: rotate(np.ones(6), SEED, "hadamard"), "power of two"),
        (lambda: rotate(np.ones(5), SEED, "dft"), "even"),
        (lambda: rotate(np.ones(8), b"short", "hadamard"), "32 bytes"),
        (lambda: rotate(np.ones(8), SEED, "givens"), "rotation must be"),
        (lambda: unrotate(np.ones(8), SEED, "givens"), "rotation must be"),
    ],
)
def test_bad_rotation_inputs(call: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        call()  # type: ignore[operator]
