"""RNS conversions, the scaling to a power of two, and Lagrange coefficients mod q."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.he.rlwe.primes import ntt_primes
from secagg.he.rlwe.ring import RnsRing, lagrange_at_zero

RING = RnsRing(8, ntt_primes(3))
Q = RING.modulus


def _residues(values: list[int]) -> np.ndarray:
    return np.array([[[v % q for v in values]] for q in RING.moduli], dtype=np.uint64)


@given(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=8, max_size=8))
def test_from_signed_and_back(values: list[int]) -> None:
    residues = RING.from_signed(np.array([values], dtype=np.int64))
    assert np.array_equal(residues, _residues(values))
    assert RING.to_int_lists(residues) == [values]


@given(st.lists(st.integers(0, 2**64 - 1), min_size=8, max_size=8))
def test_from_unsigned(values: list[int]) -> None:
    residues = RING.from_unsigned(np.array([values], dtype=np.uint64))
    assert np.array_equal(residues, _residues(values))


@given(
    st.lists(st.integers(0, Q - 1), min_size=8, max_size=8),
    st.lists(st.integers(0, Q - 1), min_size=8, max_size=8),
)
def test_add_sub_neg_mul_are_mod_q(x: list[int], y: list[int]) -> None:
    a, b = _residues(x), _residues(y)
    assert RING.to_int_lists(RING.add(a, b))[0] == [_centered(u + v) for u, v in zip(x, y)]
    assert RING.to_int_lists(RING.sub(a, b))[0] == [_centered(u - v) for u, v in zip(x, y)]
    assert RING.to_int_lists(RING.neg(a))[0] == [_centered(-u) for u in x]
    assert RING.to_int_lists(RING.mul(a, b))[0] == [_centered(u * v) for u, v in zip(x, y)]


def _centered(v: int) -> int:
    v %= Q
    return v - Q if v > Q // 2 else v


@given(
    st.lists(st.integers(0, Q - 1), min_size=8, max_size=8),
    st.sampled_from([1, 7, 32, 45, 63, 64]),
)
def test_scale_to_bits_is_exact(x: list[int], bits: int) -> None:
    integer, fraction = RING.scale_to_bits(_residues(x)[:, 0], bits)
    for k, value in enumerate(x):
        # integer + fraction = 2^bits X / Q (mod 2^bits); the integer part is exact up to
        # the whole units the fractions add up to (< limbs).
        quotient, remainder = divmod(value << bits, Q)
        excess = float(fraction[k]) - remainder / Q
        carry = round(excess)
        assert abs(excess - carry) < 1e-9 and 0 <= carry < RING.limbs
        assert (quotient - int(integer[k]) - carry) % (1 << bits) == 0


def test_scale_to_bits_rounds_like_the_rationals() -> None:
    # X = Q / 2^k * m + small: scaling by 2^k gives m + small 2^k / Q.
    bits = 32
    ring = RnsRing(4, ntt_primes(3))
    modulus = ring.modulus
    messages = [0, 1, 2**31, 2**32 - 1]
    noise = [5, -5, 10**6, -(10**6)]
    values = [(modulus * m >> bits) + e for m, e in zip(messages, noise)]
    residues = np.array([[[v % q for v in values]] for q in ring.moduli], dtype=np.uint64)
    integer, fraction = ring.scale_to_bits(residues[:, 0], bits)
    decoded = (integer + np.floor(fraction + 0.5).astype(np.uint64)) % np.uint64(1 << bits)
    assert [int(v) for v in decoded] == messages


def test_lagrange_interpolates_at_zero() -> None:
    moduli = ntt_primes(2)
    xs = [3, 9, 2**31 - 1, 17]
    for q_index, q in enumerate(moduli):
        coefficients = [3, 1, 4]  # f(x) = 3 + x + 4 x^2
        values = [sum(c * pow(x, k, q) for k, c in enumerate(coefficients)) % q for x in xs]
        for subset in ([0, 1, 2], [1, 2, 3], [0, 1, 2, 3]):
            points = [xs[i] for i in subset]
            total = sum(
                lagrange_at_zero(points, j, moduli)[q_index] * values[i]
                for j, i in enumerate(subset)
            )
            assert total % q == 3
    assert math.prod(moduli) > 0


def test_lagrange_refusals() -> None:
    moduli = ntt_primes(1)
    with pytest.raises(ConfigurationError):
        lagrange_at_zero([1, 1], 0, moduli)
    with pytest.raises(ConfigurationError):
        lagrange_at_zero([1, moduli[0]], 0, moduli)  # 0 mod q
    with pytest.raises(ConfigurationError):
        lagrange_at_zero([1, 1 + moduli[0]], 0, moduli)  # equal mod q
    with pytest.raises(ConfigurationError):
        RING.scale_to_bits(np.zeros((3, 8), dtype=np.uint64), 65)
