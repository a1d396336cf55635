"""The negacyclic NTT against schoolbook multiplication in Python integers (known answer)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.he.rlwe.ntt import bit_reverse, forward, inverse, ntt_tables
from secagg.he.rlwe.primes import MAX_PRIMES, ntt_primes, primitive_root_of_unity
from secagg.he.rlwe.ring import RnsRing

ALL_PRIMES = ntt_primes(MAX_PRIMES)


def schoolbook(x: list[int], y: list[int], q: int) -> list[int]:
    """x * y mod (X^n + 1, q) in Python integers."""
    n = len(x)
    out = [0] * n
    for i, xi in enumerate(x):
        for j, yj in enumerate(y):
            if i + j < n:
                out[i + j] += xi * yj
            else:
                out[i + j - n] -= xi * yj
    return [v % q for v in out]


def _random(moduli: tuple[int, ...], polys: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)  # not-secret: test data
    return np.stack([rng.integers(0, q, size=(polys, n), dtype=np.uint64) for q in moduli])


@pytest.mark.parametrize("degree", [4, 16, 64])
def test_product_matches_schoolbook_for_every_prime(degree: int) -> None:
    ring = RnsRing(degree, ALL_PRIMES)
    a = _random(ALL_PRIMES, 2, degree, degree)
    b = _random(ALL_PRIMES, 2, degree, degree + 1)
    product = ring.poly_mul(a, b)
    for limb, q in enumerate(ALL_PRIMES):
        for p in range(2):
            x = [int(v) for v in a[limb, p]]
            y = [int(v) for v in b[limb, p]]
            assert [int(v) for v in product[limb, p]] == schoolbook(x, y, q)


def test_forward_is_evaluation_at_odd_powers_of_psi() -> None:
    degree, moduli = 8, ntt_primes(2)
    a = _random(moduli, 1, degree, 3)
    transformed = a.copy()
    forward(ntt_tables(degree, moduli), transformed)
    brv = bit_reverse(degree)
    for limb, q in enumerate(moduli):
        psi = primitive_root_of_unity(q, 2 * degree)
        coefficients = [int(v) for v in a[limb, 0]]
        for i in range(degree):
            z = pow(psi, 2 * int(brv[i]) + 1, q)
            expected = sum(c * pow(z, k, q) for k, c in enumerate(coefficients)) % q
            assert int(transformed[limb, 0, i]) == expected


@given(
    degree_log=st.integers(2, 7),
    limbs=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_product_property(degree_log: int, limbs: int, seed: int) -> None:
    degree = 1 << degree_log
    moduli = ntt_primes(limbs)
    ring = RnsRing(degree, moduli)
    a = _random(moduli, 1, degree, seed)
    b = _random(moduli, 1, degree, seed + 1)
    product = ring.poly_mul(a, b)
    for limb, q in enumerate(moduli):
        x = [int(v) for v in a[limb, 0]]
        y = [int(v) for v in b[limb, 0]]
        assert [int(v) for v in product[limb, 0]] == schoolbook(x, y, q)


@pytest.mark.parametrize("degree", [4096, 8192])
def test_round_trip_at_full_size_every_limb(degree: int) -> None:
    moduli = ntt_primes(6)
    tables = ntt_tables(degree, moduli)
    a = _random(moduli, 5, degree, 7)  # 5 polys: blocks of the batch and a short last one
    a[:, 0, :] = 0
    a[:, 1, :] = np.array(moduli, dtype=np.uint64)[:, None] - 1  # q - 1 everywhere
    b = a.copy()
    forward(tables, b)
    assert (b < tables.q).all()
    assert not np.array_equal(a, b)
    inverse(tables, b)
    assert np.array_equal(a, b)


def test_x_times_x_to_the_n_minus_one_is_minus_one() -> None:
    degree = 8192
    ring = RnsRing(degree, ntt_primes(3))
    x = ring.zeros(1)
    x[:, 0, 1] = 1
    y = ring.zeros(1)
    y[:, 0, degree - 1] = 1
    product = ring.poly_mul(x, y)
    expected = ring.zeros(1)
    expected[:, 0, 0] = ring.q[:, 0, 0] - 1
    assert np.array_equal(product, expected)


def test_batched_equals_one_by_one() -> None:
    degree, moduli = 1024, ntt_primes(3)
    tables = ntt_tables(degree, moduli)
    a = _random(moduli, 9, degree, 11)
    batched = a.copy()
    forward(tables, batched)
    for p in range(9):
        single = np.ascontiguousarray(a[:, p : p + 1])
        forward(tables, single)
        assert np.array_equal(single[:, 0], batched[:, p])


def test_linearity_and_strided_views() -> None:
    degree, moduli = 256, ntt_primes(2)
    ring = RnsRing(degree, moduli)
    a = _random(moduli, 4, degree, 5)
    b = _random(moduli, 4, degree, 6)
    fa, fb, fs = a.copy(), b.copy(), ring.add(a, b)
    for array in (fa, fb, fs):
        ring.ntt(array)
    assert np.array_equal(ring.add(fa, fb), fs)
    view = a.copy()[:, 1:3]  # a strided view of a larger batch transforms in place
    ring.ntt(view)
    assert np.array_equal(view, fa[:, 1:3])


def test_refusals() -> None:
    moduli = ntt_primes(2)
    tables = ntt_tables(16, moduli)
    with pytest.raises(ConfigurationError):
        forward(tables, np.zeros((2, 1, 16), dtype=np.uint32))
    with pytest.raises(ConfigurationError):
        forward(tables, np.zeros((3, 1, 16), dtype=np.uint64))
    with pytest.raises(ConfigurationError):
        inverse(tables, np.zeros((2, 1, 8), dtype=np.uint64))
    with pytest.raises(ConfigurationError):
        ntt_tables(12, moduli)  # not a power of two
    with pytest.raises(ConfigurationError):
        ntt_tables(1 << 16, moduli)  # beyond the primes' 2-adicity
    with pytest.raises(ConfigurationError):
        ntt_tables(16, (moduli[0], moduli[0]))
    with pytest.raises(ConfigurationError):
        ntt_tables(16, (2**32 - 5,))  # prime, but not 1 mod 32
