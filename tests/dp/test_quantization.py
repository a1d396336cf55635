"""Rounding is unbiased and within its bound; modular clipping round-trips inside the range."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.dp import RandomSource
from secagg.dp.quantization import (
    clip_l2,
    conditional_round,
    from_ring,
    rounded_l1_bound,
    rounded_l2_bound,
    to_ring,
)
from secagg.errors import ConfigurationError, UsageError
from secagg.ring import dtype_for_bits


def source(tag: int) -> RandomSource:
    return RandomSource(bytes([tag]) * 32)


def test_rounding_is_unbiased() -> None:
    """Each coordinate's mean over many roundings converges to its value (z-test)."""
    y = np.array([0.0, 0.25, -0.25, 0.5, 0.999, -3.3, 1234.125, -0.001])
    rng = source(1)
    trials = 20_000
    total = np.zeros_like(y)
    for _ in range(trials):
        rounded, tries = conditional_round(y, None, rng)
        assert tries == 1
        assert np.all((rounded == np.floor(y)) | (rounded == np.floor(y) + 1))
        total += rounded
    frac = y - np.floor(y)
    std = np.sqrt(frac * (1 - frac) / trials)
    assert np.all(np.abs(total / trials - y) <= 6 * std + 1e-9)


@given(
    dim=st.integers(min_value=1, max_value=4000),
    scaled_clip=st.floats(min_value=0.0, max_value=1e4),
    beta=st.sampled_from([0.0, math.exp(-0.5), 0.1, 0.9]),
    tag=st.integers(min_value=0, max_value=255),
)
def test_conditional_rounding_meets_its_bound(
    dim: int, scaled_clip: float, beta: float, tag: int
) -> None:
    y = np.random.default_rng(tag).standard_normal(dim)  # not-secret: test data
    norm = float(np.linalg.norm(y))
    if norm > 0:
        y *= scaled_clip / norm
    bound = rounded_l2_bound(scaled_clip, beta, dim)
    assert bound <= scaled_clip + math.sqrt(dim) + 1e-9
    rounded, tries = conditional_round(y, bound, source(tag))
    assert float(np.dot(rounded, rounded)) <= bound**2
    assert np.all(np.abs(rounded - y) < 1.0)
    assert tries >= 1
    l1 = rounded_l1_bound(bound, dim)
    assert float(np.abs(rounded).sum()) <= l1 + 1e-9


def test_rounding_bound_formula() -> None:
    """KLS21: min(c + sqrt(d), sqrt(c^2 + d/4 + sqrt(2 ln(1/beta)) (c + sqrt(d)/2)))."""
    assert rounded_l2_bound(10.0, 0.0, 100) == 20.0
    expected = math.sqrt(100 + 25 + 1.0 * (10 + 5))
    assert rounded_l2_bound(10.0, math.exp(-0.5), 100) == pytest.approx(expected)
    assert rounded_l1_bound(3.0, 100) == 9.0
    assert rounded_l1_bound(30.0, 100) == 300.0
    with pytest.raises(ConfigurationError):
        rounded_l2_bound(1.0, 1.0, 10)


def test_conditional_rounding_gives_up_on_an_impossible_bound() -> None:
    y = np.full(16, 0.5)
    with pytest.raises(UsageError, match="too many times"):
        conditional_round(y, 0.1, source(2))


def test_large_norms_are_checked_exactly() -> None:
    """Past 2^53 the squared norm is checked in Python integers."""
    y = np.full(4, 2.0**27 + 0.5)
    bound = math.sqrt(4 * (2.0**27 + 1) ** 2)
    rounded, _ = conditional_round(y, bound, source(3))
    assert sum(int(v) ** 2 for v in rounded) <= math.floor(Fraction(bound) ** 2)


def test_clip() -> None:
    x = np.array([3.0, 4.0])
    assert clip_l2(x, 1.0) == 5.0
    assert np.allclose(x, [0.6, 0.8])
    y = np.array([0.3, 0.4])
    assert clip_l2(y, 1.0) == pytest.approx(0.5)
    assert np.allclose(y, [0.3, 0.4])


@given(
    bits=st.integers(min_value=1, max_value=64),
    data=st.data(),
)
def test_modular_clipping_round_trips_inside_the_range(bits: int, data: st.DataObject) -> None:
    half = 1 << (bits - 1)
    values = data.draw(st.lists(st.integers(-half, half - 1), min_size=1, max_size=50))
    z = np.array(values, dtype=np.int64)
    ring = to_ring(z, bits)
    assert ring.dtype == dtype_for_bits(bits)
    assert int(ring.max()) < 2**bits
    assert np.array_equal(from_ring(ring, bits), z)
    if bits <= 32:  # the int32 fast path gives the same residues
        assert np.array_equal(to_ring(z.astype(np.int32), bits), ring)
    with pytest.raises(ConfigurationError):
        to_ring(z.astype(np.float64), bits)


@given(bits=st.integers(min_value=2, max_value=32), data=st.data())
def test_modular_sum_decodes_the_integer_sum(bits: int, data: st.DataObject) -> None:
    """Summing encodings mod 2^bits and mapping back gives the integer sum when it fits."""
    half = 1 << (bits - 1)
    rows = data.draw(
        st.lists(st.lists(st.integers(-half, half - 1), min_size=4, max_size=4), min_size=1,
                 max_size=6)
    )
    z = np.array(rows, dtype=np.int64)
    total_int = z.sum(axis=0)
    ring_sum = np.zeros(4, dtype=np.uint64)
    for row in z:
        ring_sum = (ring_sum + to_ring(row, bits).astype(np.uint64)) & np.uint64(2**bits - 1)
    decoded = from_ring(ring_sum.astype(dtype_for_bits(bits)), bits)
    inside = (total_int >= -half) & (total_int < half)
    assert np.array_equal(decoded[inside], total_int[inside])
    assert np.array_equal((decoded - total_int) % (1 << bits), np.zeros(4, dtype=np.int64))
