"""Big-integer helpers shared by the Paillier backends and their cost calibration.

All randomness comes from :mod:`secrets`. gmpy2 has no type stubs, so its integers are typed
as :data:`Mpz` (an alias of ``Any``); the public API converts to ``int`` where it matters.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import gmpy2
import numpy as np

from secagg.errors import ConfigurationError, DecodeError

Mpz = Any
"""A ``gmpy2.mpz`` (gmpy2 ships no type stubs)."""

T = TypeVar("T")
R = TypeVar("R")

# Sieve primes for the safe-prime search: candidates q with q or 2q + 1 divisible by one of
# them are struck out before any Miller-Rabin test.
_SMALL_PRIMES: tuple[int, ...] = tuple(
    p for p in range(3, 20000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))
)

MILLER_RABIN_ROUNDS = 40
"""Error probability at most 4^-40 per composite (and far less for random candidates)."""


def mpz(value: int) -> Mpz:
    return gmpy2.mpz(value)


def random_bits(bits: int) -> Mpz:
    """A uniform integer in [0, 2^bits) from the OS CSPRNG."""
    return gmpy2.mpz(secrets.randbits(bits))


def random_below(bound: int) -> Mpz:
    """A uniform integer in [0, bound) from the OS CSPRNG."""
    return gmpy2.mpz(secrets.randbelow(int(bound)))


def random_unit(modulus: Mpz) -> Mpz:
    """A uniform element of Z*_modulus (rejection sampling; a miss means we found a factor)."""
    while True:
        r = random_below(modulus)
        if r > 0 and gmpy2.gcd(r, modulus) == 1:
            return r


def random_prime(bits: int) -> Mpz:
    """A random prime of exactly ``bits`` bits with its two top bits set.

    The two top bits make the product of two such primes exactly ``2 * bits`` bits long.
    """
    if bits < 16:
        raise ConfigurationError("prime too small")
    while True:
        candidate = random_bits(bits) | (3 << (bits - 2)) | 1
        if gmpy2.is_prime(candidate, MILLER_RABIN_ROUNDS):
            return candidate


def random_safe_prime(bits: int) -> Mpz:
    """A random safe prime p = 2p' + 1 of exactly ``bits`` bits (top two bits set), p' prime.

    Slow for large sizes (a minute or more for 1024 bits in CPython). A window of candidates
    q = q0 + 2k is sieved at once (NumPy strides) by every small prime dividing q or 2q + 1,
    and only survivors get Miller-Rabin tests, q before 2q + 1.
    """
    if bits < 16:
        raise ConfigurationError("safe prime too small")
    window = 1 << 15
    while True:
        # q = p' has bits - 1 bits with its top two bits set, so p = 2q + 1 has them too.
        q0 = random_bits(bits - 1) | (3 << (bits - 3)) | 1
        alive = np.ones(window, dtype=bool)
        for prime in _SMALL_PRIMES:
            if prime >= q0:
                break
            r = int(q0 % prime)
            inv2 = (prime + 1) // 2  # 2^-1 mod prime
            # q0 + 2k = 0 (mod prime)  and  2 q0 + 4k + 1 = 0 (mod prime)
            alive[(-r * inv2) % prime :: prime] = False
            alive[(-(2 * r + 1) * inv2 * inv2) % prime :: prime] = False
        for k in np.flatnonzero(alive):
            q = q0 + 2 * int(k)
            if q.bit_length() != bits - 1:
                break
            p = 2 * q + 1
            # One Miller-Rabin round filters composites cheaply before the full test.
            if (
                gmpy2.is_prime(q, 1)
                and gmpy2.is_prime(p, 1)
                and gmpy2.is_prime(q, MILLER_RABIN_ROUNDS)
                and gmpy2.is_prime(p, MILLER_RABIN_ROUNDS)
            ):
                return p


def int_to_bytes(value: Mpz, width: int) -> bytes:
    """Fixed-width big-endian encoding; ConfigurationError if it does not fit."""
    try:
        return int(value).to_bytes(width, "big")
    except OverflowError:
        raise ConfigurationError("integer does not fit its encoding width") from None


def bytes_to_int(data: bytes) -> Mpz:
    return gmpy2.mpz(int.from_bytes(data, "big"))


def split_fixed(data: bytes, width: int, count: int, what: str, party: int | None) -> list[Mpz]:
    """``count`` big-endian integers of ``width`` bytes each; DecodeError on a size mismatch."""
    if not isinstance(data, bytes) or len(data) != width * count:
        raise DecodeError(f"{what}: expected {count} x {width} bytes", party=party)
    return [bytes_to_int(data[i * width : (i + 1) * width]) for i in range(count)]


def join_fixed(values: Iterable[Mpz], width: int) -> bytes:
    return b"".join(int_to_bytes(v, width) for v in values)


def check_units(values: Sequence[Mpz], n: Mpz, nsquare: Mpz, what: str, party: int | None) -> None:
    """Every value must be in Z*_(n^2): 0 < v < n^2 and gcd(v, n) = 1, else DecodeError.

    A value sharing a factor with n is not a valid ciphertext (and would reveal the factor).
    """
    for index, value in enumerate(values):
        if not 0 < value < nsquare or gmpy2.gcd(value, n) != 1:
            raise DecodeError(f"{what} {index} is not a unit mod n^2", party=party)


def parallel_map(function: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[function(x) for x in items]`` on ``workers`` threads with gmpy2 releasing the GIL.

    gmpy2 releases the GIL inside powmod only when its context allows it, so every worker
    runs under such a context; results keep the input order.
    """
    if workers < 1:
        raise ConfigurationError("workers must be at least 1")

    def run(chunk: Sequence[T]) -> list[R]:
        with gmpy2.context(gmpy2.get_context(), allow_release_gil=True):
            return [function(x) for x in chunk]

    if workers == 1 or len(items) < 2:
        return run(items)
    size = -(-len(items) // workers)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [r for part in pool.map(run, chunks) for r in part]


def multi_powmod(bases: Sequence[Mpz], exponents: Sequence[int], modulus: Mpz) -> Mpz:
    """prod bases[i]^exponents[i] mod modulus for non-negative short exponents.

    Bucket (Pippenger) method with 8-bit windows: about (bits / 8) * (len + 512) modular
    multiplications instead of one full exponentiation per base.
    """
    if len(bases) != len(exponents):
        raise ConfigurationError("bases and exponents differ in length")
    if not bases:
        return gmpy2.mpz(1)
    window = 8 if len(bases) >= 64 else 4
    mask = (1 << window) - 1
    top = max(int(e) for e in exponents).bit_length()
    result = gmpy2.mpz(1)
    for shift in range(((top + window - 1) // window - 1) * window, -1, -window):
        for _ in range(window):
            result = result * result % modulus
        buckets: list[Mpz | None] = [None] * (mask + 1)
        for base, exponent in zip(bases, exponents, strict=True):
            digit = (int(exponent) >> shift) & mask
            if digit:
                bucket = buckets[digit]
                buckets[digit] = base if bucket is None else bucket * base % modulus
        # sum_d d * bucket[d] (multiplicatively) by running products from the top digit.
        running = gmpy2.mpz(1)
        total = gmpy2.mpz(1)
        for digit in range(mask, 0, -1):
            bucket = buckets[digit]
            if bucket is not None:
                running = running * bucket % modulus
            total = total * running % modulus
        result = result * total % modulus
    return result
