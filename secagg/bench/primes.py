"""The committed 2048-bit benchmark key primes (package data, public test data).

Generating two 1024-bit safe primes takes seconds to minutes; the suite and the developer
benchmarks reuse this pair so that a threshold-Paillier run costs what the protocol costs.
Never use them outside benchmarks and tests: the factorization is public.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["SAFE_PRIMES_FILE", "safe_primes_2048"]

SAFE_PRIMES_FILE = "data/he_safe_primes_2048.txt"
"""Path of the primes inside the :mod:`secagg.bench` package: two hex lines, ``#`` comments."""


@cache
def safe_primes_2048() -> tuple[int, int]:
    """The two 1024-bit safe primes ``(p, q)`` of the benchmark key, read once.

    Raises OSError when the package data is missing (a broken install) and ValueError when
    the file does not hold two hex numbers.
    """
    text = resources.files("secagg.bench").joinpath(SAFE_PRIMES_FILE).read_text("utf-8")
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if len(lines) < 2:
        raise ValueError(f"{SAFE_PRIMES_FILE}: expected two hex primes")
    return int(lines[0], 16), int(lines[1], 16)
