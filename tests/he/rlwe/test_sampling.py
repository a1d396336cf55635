"""Samplers: deterministic per seed, exact supports, the right distributions, no pickling."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.he.rlwe.primes import ntt_primes
from secagg.he.rlwe.sampling import MAX_WIDE_BITS, Sampler, popcount

SEED = bytes(range(32))
LABEL = b"tests/sampling"
MODULI = ntt_primes(3)


def chi_square_limit(df: int, z: float = 4.75) -> float:
    """Wilson-Hilferty: the chi-square quantile at the normal quantile z (4.75: p ~ 1e-6)."""
    return float(df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3)


def test_same_seed_same_draws_and_streams_are_independent_of_order() -> None:
    a, b = Sampler(SEED, LABEL), Sampler(SEED, LABEL)
    assert np.array_equal(a.uniform(MODULI, (2, 16)), b.uniform(MODULI, (2, 16)))
    # Interleaving another kind of draw does not shift a stream.
    a.ternary((100,))
    assert np.array_equal(a.binomial((50,), 21), b.binomial((50,), 21))
    assert not np.array_equal(
        Sampler(SEED, b"other").uniform(MODULI, (16,)), Sampler(SEED, LABEL).uniform(MODULI, (16,))
    )
    assert not np.array_equal(
        Sampler.fresh(LABEL).uniform(MODULI, (16,)), Sampler.fresh(LABEL).uniform(MODULI, (16,))
    )


def test_uniform_is_in_range_and_uniform() -> None:
    draws = Sampler(SEED, LABEL).uniform(MODULI, (64, 1024))
    assert draws.shape == (3, 64, 1024) and draws.dtype == np.uint64
    bins = 256
    for limb, q in enumerate(MODULI):
        row = draws[limb].reshape(-1)
        assert int(row.max()) < q
        counts = np.bincount(
            (row * np.uint64(bins) // np.uint64(q)).astype(np.int64), minlength=bins
        )
        expected = row.size / bins
        assert float(((counts - expected) ** 2 / expected).sum()) < chi_square_limit(bins - 1)


def test_uniform_rejects_instead_of_reducing() -> None:
    # A word >= q is dropped, not reduced: with a 1-word look at the stream, the kept values
    # are exactly the words below q, in order.
    sampler = Sampler(SEED, LABEL)
    q = MODULI[0]
    values = sampler.uniform((q,), (4096,))[0]
    words = np.empty(4096 + 4096 // 16 + 64, dtype=np.uint32)
    from secagg.prg import Prg

    Prg(SEED, domain=LABEL + b"/uniform", bits=32).fill(words)
    kept = words[words < q][:4096]
    assert np.array_equal(values, kept.astype(np.uint64))


def test_ternary_distribution() -> None:
    draws = Sampler(SEED, LABEL).ternary((30000,))
    assert set(np.unique(draws).tolist()) == {-1, 0, 1}
    counts = np.bincount(draws + 1, minlength=3)
    expected = draws.size / 3
    assert float(((counts - expected) ** 2 / expected).sum()) < chi_square_limit(2)


@pytest.mark.parametrize("eta", [1, 2, 21, 32])
def test_binomial_distribution(eta: int) -> None:
    draws = Sampler(SEED, LABEL).binomial((40000,), eta)
    assert int(draws.min()) >= -eta and int(draws.max()) <= eta
    assert abs(float(draws.mean())) < 5 * math.sqrt(eta / 2 / draws.size)
    assert abs(float(draws.var()) / (eta / 2) - 1) < 0.05


def test_popcount_matches_python() -> None:
    words = np.array([0, 1, 2**64 - 1, 0x5555555555555555, 12345678901234567], dtype=np.uint64)
    assert popcount(words).tolist() == [bin(int(w)).count("1") for w in words]


@pytest.mark.parametrize("bits", [1, 20, 62, 63, 64, 70, 100, MAX_WIDE_BITS])
def test_wide_values_are_in_range_and_cover_it(bits: int) -> None:
    # Small moduli would be too small for a CRT view: rebuild the integers from residues.
    moduli = ntt_primes(5)  # Q > 2^155 > 2^127: the integers are recoverable
    residues = Sampler(SEED, LABEL).wide(moduli, (2000,), bits)
    modulus = math.prod(moduli)
    values = []
    for k in range(2000):
        x = (
            sum(
                int(residues[limb, k]) * (modulus // q) * pow(modulus // q, -1, q)
                for limb, q in enumerate(moduli)
            )
            % modulus
        )
        values.append(x - modulus if x > modulus // 2 else x)
    assert min(values) >= -(2**bits) and max(values) < 2**bits
    # Both halves and the extreme bins are hit (a missing high word would confine them).
    assert (min(values) < -(2 ** (bits - 1)) and max(values) >= 2 ** (bits - 1) - 1) or bits == 1
    if bits == 1:
        assert set(values) == {-2, -1, 0, 1}


def test_refusals_and_no_pickle() -> None:
    with pytest.raises(ConfigurationError):
        Sampler(b"short", LABEL)
    with pytest.raises(ConfigurationError):
        Sampler(SEED, b"")
    sampler = Sampler(SEED, LABEL)
    with pytest.raises(ConfigurationError):
        sampler.binomial((4,), 33)
    with pytest.raises(ConfigurationError):
        sampler.wide(MODULI, (4,), MAX_WIDE_BITS + 1)
    with pytest.raises(ConfigurationError):
        sampler.uniform((97,), (4,))  # not a 32-bit limb prime
    with pytest.raises(TypeError):
        pickle.dumps(sampler)
    assert SEED.hex() not in repr(sampler) and "Sampler" in repr(sampler)
