"""The NTT prime table: primes (checked by trial division), 1 mod 2^16, roots of exact order."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.he.rlwe.primes import (
    MAX_PRIMES,
    TWO_ADICITY,
    is_prime,
    ntt_primes,
    primitive_root_of_unity,
)

# Every odd number up to 2^16 + 1 > sqrt(2^32): enough trial divisors for 32-bit numbers.
_DIVISORS = np.arange(3, (1 << 16) + 2, 2, dtype=np.uint64)


def _trial_division_prime(n: int) -> bool:
    if n % 2 == 0:
        return n == 2
    divisors = _DIVISORS[n >= _DIVISORS * _DIVISORS]
    return not bool(np.any(np.uint64(n) % divisors == 0))


def test_table_is_prime_by_trial_division_and_ntt_friendly() -> None:
    primes = ntt_primes(MAX_PRIMES)
    assert len(set(primes)) == MAX_PRIMES
    assert list(primes) == sorted(primes, reverse=True)
    for q in primes:
        assert 2**31 < q < 2**32
        assert (q - 1) % (1 << TWO_ADICITY) == 0
        assert _trial_division_prime(q)


def test_table_is_the_largest_such_primes() -> None:
    # Known answer, and no prime of the form k 2^16 + 1 was skipped between them.
    primes = ntt_primes(3)
    assert primes == (4293918721, 4292804609, 4292149249)
    step = 1 << TWO_ADICITY
    skipped = [
        c for c in range(primes[-1], 2**32, step) if c not in primes and _trial_division_prime(c)
    ]
    assert skipped == []


@pytest.mark.parametrize("log_order", [3, 8, 14, 16])
def test_roots_have_exact_order(log_order: int) -> None:
    order = 1 << log_order
    for q in ntt_primes(6):
        root = primitive_root_of_unity(q, order)
        assert pow(root, order, q) == 1
        assert pow(root, order // 2, q) == q - 1  # so no smaller power of two works
        assert primitive_root_of_unity(q, order) == root  # deterministic


def test_is_prime_known_answers() -> None:
    assert [n for n in range(40) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
    assert is_prime(2**61 - 1) and not is_prime(2**61 + 1)
    assert not is_prime(3215031751)  # a strong pseudoprime to bases 2, 3, 5, 7
    assert not is_prime(4294967297)  # 641 * 6700417


def test_refusals() -> None:
    with pytest.raises(ConfigurationError):
        ntt_primes(0)
    with pytest.raises(ConfigurationError):
        ntt_primes(MAX_PRIMES + 1)
    with pytest.raises(ConfigurationError):
        primitive_root_of_unity(ntt_primes(1)[0], 3)
    with pytest.raises(ConfigurationError):
        primitive_root_of_unity(ntt_primes(1)[0], 1 << 21)  # q - 1 = 2^20 * 4095
