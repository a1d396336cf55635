"""NTT-friendly primes below 2^32 and their roots of unity, generated deterministically.

Theory of operation. Every RNS limb of :mod:`secagg.he.rlwe` is a prime ``q`` with
``2^31 < q < 2^32`` and ``q = 1 (mod 2^16)``. The first bound makes one residue fill a 32-bit
word (bit-packing at 32 bits is a plain little-endian copy) while the product of two residues
stays below 2^64, exact in NumPy's uint64; the second gives a primitive ``2N``-th root of
unity for every ring degree ``N <= 2^15``, which the negacyclic NTT needs.

:func:`ntt_primes` lists such primes from the largest down (candidates ``k * 2^16 + 1``,
tested with a Miller-Rabin test that is deterministic below 3.3 * 10^24 by its choice of
bases), so the table is the same on every machine and needs no committed data. The tests
check every prime again by trial division and every root's exact order.
"""

from __future__ import annotations

from functools import lru_cache

from secagg.errors import ConfigurationError

__all__ = [
    "MAX_PRIMES",
    "PRIME_BITS",
    "TWO_ADICITY",
    "is_prime",
    "ntt_primes",
    "primitive_root_of_unity",
]

PRIME_BITS = 32
"""Every limb prime is in (2^31, 2^32)."""
TWO_ADICITY = 16
"""Every limb prime is 1 mod 2^16: NTTs of degree up to 2^15."""
MAX_PRIMES = 64
"""Far more limbs than the largest standard ring allows (881 bits at N = 2^15: 27 limbs)."""

# Miller-Rabin with these bases is exact for n < 3.3 * 10^24 (Sorenson and Webster, 2015).
_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime: exact for every ``n < 3.3 * 10^24`` (all 64-bit integers)."""
    if n < 2:
        return False
    for p in _WITNESSES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in _WITNESSES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@lru_cache(maxsize=MAX_PRIMES)  # every count: max_limbs asks for 1, 2, 3, ...
def ntt_primes(count: int) -> tuple[int, ...]:
    """The ``count`` largest primes ``q < 2^32`` with ``q = 1 (mod 2^16)``, largest first.

    Raises ConfigurationError for ``count`` outside 1..:data:`MAX_PRIMES`.
    """
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PRIMES:
        raise ConfigurationError(f"count must be an int in 1..{MAX_PRIMES}")
    step = 1 << TWO_ADICITY
    found: list[int] = []
    k = ((1 << PRIME_BITS) - 1) // step
    while len(found) < count:
        candidate = k * step + 1
        if candidate < 1 << (PRIME_BITS - 1):  # pragma: no cover - thousands exist
            raise ConfigurationError("ran out of NTT primes")
        if candidate < 1 << PRIME_BITS and is_prime(candidate):
            found.append(candidate)
        k -= 1
    return tuple(found)


@lru_cache(maxsize=256)
def primitive_root_of_unity(q: int, order: int) -> int:
    """The root ``g^((q - 1) / order) mod q`` of exact order ``order`` (a power of two) for
    the smallest base ``g >= 2`` that gives one: deterministic, so every party agrees.

    Raises ConfigurationError when ``order`` is not a power of two dividing ``q - 1`` or
    ``q`` is not prime.
    """
    if order < 2 or order & (order - 1) or (q - 1) % order or not is_prime(q):
        raise ConfigurationError("order must be a power of two dividing q - 1, q prime")
    for g in range(2, q):
        root = pow(g, (q - 1) // order, q)
        # For a power-of-two order, exact order <=> root^(order/2) = -1.
        if pow(root, order // 2, q) == q - 1:
            return root
    raise ConfigurationError("no root of unity found")  # pragma: no cover - q is prime
