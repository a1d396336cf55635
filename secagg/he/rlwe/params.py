"""RLWE parameter sets, refused unless the HE security standard rates them 128-bit secure.

The bound. Albrecht, Chase, Chen, Ding, Goldwasser, Gorbunov, Halevi, Hoffstein, Laine,
Lauter, Lokam, Micciancio, Moody, Morrison, Sahai, Vaikuntanathan: "Homomorphic Encryption
Security Standard", HomomorphicEncryption.org, Toronto, November 2018, Table 1 (uniform
ternary secret, error standard deviation 8/sqrt(2 pi) ~ 3.19, 128-bit classical security):
the largest ``log2 Q`` per ring degree ``N`` is 27 / 54 / 109 / 218 / 438 / 881 for
``N`` = 2^10 ... 2^15 (:data:`HE_STANDARD_MAX_LOG_Q`). SEAL, OpenFHE and Lattigo enforce the
same table.

How our distributions relate to it: each key holder's secret is uniform ternary and every
error is centered binomial with ``eta = 21`` (standard deviation sqrt(10.5) ~ 3.24 >= 3.19).
A threshold key's secret is a sum of several ternary secrets and its public-key error a sum
of several errors: both only get wider, which does not make RLWE easier at a fixed ``Q``.
:class:`RlweParameters` accepts ``Q`` with ``Q.bit_length() <= HE_STANDARD_MAX_LOG_Q[N]``
and raises ConfigurationError otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from secagg.errors import ConfigurationError
from secagg.he.rlwe.ntt import check_ring
from secagg.he.rlwe.primes import ntt_primes

if TYPE_CHECKING:
    from secagg.he.rlwe.ring import RnsRing

__all__ = [
    "ERROR_ETA",
    "HE_STANDARD_MAX_LOG_Q",
    "HE_STANDARD_SIGMA",
    "RlweParameters",
]

HE_STANDARD_MAX_LOG_Q: dict[int, int] = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
}
"""HE security standard (2018), Table 1, 128-bit classical security, ternary secret."""
HE_STANDARD_SIGMA = 8 / math.sqrt(2 * math.pi)
"""The error standard deviation the table assumes (~3.19)."""
ERROR_ETA = 21
"""Centered binomial errors B(2 eta, 1/2) - eta: variance eta / 2 = 10.5 (sigma ~ 3.24)."""


@dataclass(frozen=True)
class RlweParameters:
    """A ring degree and RNS modulus chain that the HE standard rates 128-bit secure.

    ``moduli`` are NTT primes of :mod:`secagg.he.rlwe.primes` (distinct primes in
    (2^31, 2^32), 1 mod 2N). Raises ConfigurationError for a degree outside the table, a
    modulus that is not such a prime, or ``Q = prod(moduli)`` beyond the table's bound.
    """

    degree: int
    moduli: tuple[int, ...]

    def __post_init__(self) -> None:
        limit = HE_STANDARD_MAX_LOG_Q.get(self.degree) if isinstance(self.degree, int) else None
        if limit is None or isinstance(self.degree, bool):
            raise ConfigurationError(
                f"ring degree must be one of {sorted(HE_STANDARD_MAX_LOG_Q)} (HE standard)"
            )
        if not isinstance(self.moduli, tuple) or not self.moduli:
            raise ConfigurationError("moduli must be a non-empty tuple")
        check_ring(self.degree, self.moduli)  # primality, size and 1 mod 2N
        bits = math.prod(self.moduli).bit_length()
        if bits > limit:
            raise ConfigurationError(
                f"log2 Q = {bits} exceeds {limit}, the HE standard's 128-bit bound at "
                f"N = {self.degree}"
            )

    @classmethod
    def standard(cls, degree: int, limbs: int) -> RlweParameters:
        """The ``limbs`` largest NTT primes at ``degree``; ConfigurationError if insecure."""
        return cls(degree, ntt_primes(limbs))

    @classmethod
    def max_limbs(cls, degree: int) -> int:
        """The most limbs of :func:`ntt_primes` the standard allows at ``degree``."""
        limit = HE_STANDARD_MAX_LOG_Q.get(degree)
        if limit is None:
            raise ConfigurationError(f"ring degree must be one of {sorted(HE_STANDARD_MAX_LOG_Q)}")
        count = 0
        while count < limit and math.prod(ntt_primes(count + 1)).bit_length() <= limit:
            count += 1
        return count

    @property
    def limbs(self) -> int:
        return len(self.moduli)

    @property
    def modulus(self) -> int:
        """Q, the product of the moduli."""
        return math.prod(self.moduli)

    @property
    def log_modulus(self) -> float:
        """log2 Q."""
        return sum(math.log2(q) for q in self.moduli)

    @cached_property
    def ring(self) -> RnsRing:
        """The ring Z_Q[X]/(X^N + 1) in RNS form (shared tables)."""
        from secagg.he.rlwe.ring import RnsRing

        return RnsRing(self.degree, self.moduli)

    def to_dict(self) -> dict[str, object]:
        return {"n": self.degree, "q": list(self.moduli)}
