"""The integer Lagrange coefficients of threshold CKKS and the bounds its noise budget uses:
integrality for every set (Shoup's Delta = c!), exact enumeration against the closed forms."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.he.threshold_ckks import lagrange
from secagg.he.threshold_ckks.lagrange import (
    EXACT_LIMIT,
    delta,
    integer_lagrange,
    lagrange_bounds,
)


def _rational(points: list[int], at: int) -> list[Fraction]:
    out = []
    for j in points:
        value = Fraction(1)
        for k in points:
            if k != j:
                value *= Fraction(at - k, j - k)
        out.append(value)
    return out


@given(st.integers(1, 9).flatmap(lambda c: st.tuples(st.just(c), st.data())))
def test_delta_times_every_coefficient_is_an_integer(case: tuple[int, st.DataObject]) -> None:
    size, data = case
    points = data.draw(st.lists(st.integers(1, size), min_size=1, unique=True), label="S")
    at = data.draw(st.integers(0, size), label="at")
    scaled = integer_lagrange(points, at, delta(size))
    rational = _rational(points, at)
    assert [Fraction(v) for v in scaled] == [delta(size) * r for r in rational]
    # Interpolation at a point of the set is the indicator.
    if at in points:
        assert scaled == [delta(size) if x == at else 0 for x in points]


def test_interpolation_recovers_a_polynomial() -> None:
    coefficients = [7, -3, 11]
    points = [2, 4, 5]
    values = [sum(c * x**i for i, c in enumerate(coefficients)) for x in points]
    factors = integer_lagrange(points, 0, delta(5))
    assert sum(f * v for f, v in zip(factors, values, strict=True)) == delta(5) * 7


def test_refusals() -> None:
    with pytest.raises(ConfigurationError):
        integer_lagrange([1, 1], 0, 6)
    with pytest.raises(ConfigurationError, match="not an integer"):
        integer_lagrange([1, 3], 0, 1)  # 3 / 2 and -1 / 2
    for bad in (0, -1, True):
        with pytest.raises(ConfigurationError):
            delta(bad)  # type: ignore[arg-type]


def _brute(size: int) -> tuple[Fraction, Fraction]:
    amplification = simulation = Fraction(0)
    scale = delta(size)
    for t in range(1, size + 1):
        for subset in itertools.combinations(range(1, size + 1), t):
            lambdas = _rational(list(subset), 0)
            amplification = max(amplification, sum(abs(scale * v) for v in lambdas))
            simulation = max(simulation, max(abs(scale / v) for v in lambdas))
    return amplification, simulation


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_exact_bounds_are_the_brute_force_maxima(size: int) -> None:
    bounds = lagrange_bounds(size)
    assert bounds.exact
    assert (Fraction(bounds.amplification), Fraction(bounds.simulation)) == _brute(size)


def test_closed_forms_hold_where_enumeration_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    exact = {size: lagrange_bounds(size) for size in range(1, EXACT_LIMIT + 1)}
    monkeypatch.setattr(lagrange, "EXACT_LIMIT", 0)
    lagrange_bounds.cache_clear()
    try:
        for size, bounds in exact.items():
            closed = lagrange_bounds(size)
            assert not closed.exact
            assert closed.simulation == bounds.simulation  # the closed form is exact
            assert bounds.amplification <= closed.amplification <= 5 * bounds.amplification
    finally:
        monkeypatch.undo()
        lagrange_bounds.cache_clear()
    # At c = 5 the numbers the module docstring of threshold_ckks quotes.
    five = lagrange_bounds(5)
    assert round(math.log2(five.amplification), 1) == 12.5
    assert round(math.log2(five.simulation), 1) == 9.5
