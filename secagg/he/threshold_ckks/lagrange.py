"""Integer Lagrange coefficients (Shoup's trick) and the bounds the noise budget needs.

Theory of operation. Key shares are Shamir shares at the points ``x = 1..n`` (a member's
position in the sorted committee). Over the rationals, the Lagrange coefficient of
``x_j`` for interpolating at ``y`` from the point set ``S`` is
``L_j^S(y) = prod_(k in S, k != j) (y - x_k) / (x_j - x_k)``. With ``Delta = c!`` for any
``c >= n`` (:func:`delta`), every ``Delta * L_j^S(y)`` with ``y`` in ``0..c`` is an
integer: the denominator is a sub-product of ``prod_(k != j) |x_j - x_k| =
(x_j - 1)! (n - x_j)!``, which divides ``(n - 1)!``. Likewise ``Delta / L_j^S(0)`` is an
integer: ``L_j^S(0)``'s numerator ``prod x_k`` is a product of distinct integers of
``1..c``. Both facts are what lets a decryption share be independent of the set of
members that answer (:mod:`secagg.he.threshold_ckks`): the combiner scales shares by small
integers instead of field elements, and a simulator can scale the key out of one share.

:func:`lagrange_bounds` gives the two worst cases over every set the noise analysis
quantifies over (every ``t`` and every ``S`` within ``1..c``):

* ``amplification``: ``max_S sum_(j in S) |Delta L_j^S(0)|``, the factor by which
  combining ``|S|`` shares multiplies their smudging noise;
* ``simulation``: ``max_(S, j) |Delta / L_j^S(0)|``, the integer by which one honest
  share carries the encryption noise in the security argument.

Exact (by enumerating every subset) for ``c <= EXACT_LIMIT``; beyond it, closed forms.
``simulation`` is exact: ``|Delta / L_j^S(0)| = Delta prod_(k in S\\j) |k - j| / k`` is
largest when ``S`` holds ``j`` and every ``k < j / 2`` (the only factors above 1), which
gives ``Delta C(j - 1, floor((j - 1) / 2))``, largest at ``j = c``. ``amplification`` is
bounded by ``|L_j^S(0)| <= prod_(k in S\\j) k / prod |k - j|``: the numerator is at most the
product of the ``t - 1`` largest of ``1..c``, ``c! / (c - t + 1)!``, and the distances
``|k - j|`` are distinct up to sign, so their product is at least
``floor((t - 1) / 2)! ceil((t - 1) / 2)!``; times ``t`` coefficients, the worst ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from secagg.errors import ConfigurationError

__all__ = [
    "EXACT_LIMIT",
    "LagrangeBounds",
    "delta",
    "integer_lagrange",
    "lagrange_bounds",
]

EXACT_LIMIT = 12
"""Committee sizes up to this get exact bounds (4095 subsets at most)."""


def delta(committee_size: int) -> int:
    """``Delta = committee_size!`` (ConfigurationError unless ``committee_size >= 1``)."""
    if (
        not isinstance(committee_size, int)
        or isinstance(committee_size, bool)
        or committee_size < 1
    ):
        raise ConfigurationError("committee_size must be a positive int")
    return math.factorial(committee_size)


def integer_lagrange(points: Sequence[int], at: int, scale: int) -> list[int]:
    """``scale * L_j(at)`` for every point ``j`` of ``points`` (distinct ints), exact.

    Raises ConfigurationError for duplicate points, or when a coefficient is not an
    integer (``scale`` too small for these points: never for ``scale = c!`` with points
    and ``at`` in ``0..c``).
    """
    xs = list(points)
    if len(set(xs)) != len(xs):
        raise ConfigurationError("interpolation points must be distinct")
    out = []
    for j, xj in enumerate(xs):
        numerator, denominator = scale, 1
        for k, xk in enumerate(xs):
            if k != j:
                numerator *= at - xk
                denominator *= xj - xk
        quotient, remainder = divmod(numerator, denominator)
        if remainder:
            raise ConfigurationError("a scaled Lagrange coefficient is not an integer")
        out.append(quotient)
    return out


@dataclass(frozen=True)
class LagrangeBounds:
    """The worst cases of :mod:`secagg.he.threshold_ckks.lagrange` for committees of at
    most ``committee_size`` members (``exact``: by enumeration)."""

    committee_size: int
    amplification: int
    simulation: int
    exact: bool


@lru_cache(maxsize=64)
def lagrange_bounds(committee_size: int) -> LagrangeBounds:
    """The bounds for ``Delta = committee_size!`` over every non-empty ``S`` within
    ``1..committee_size`` (module docstring). ConfigurationError for a size below 1."""
    scale = delta(committee_size)
    if committee_size > EXACT_LIMIT:
        size = committee_size
        middle = size - 1
        amplification = max(
            t
            * scale
            * (scale // math.factorial(size - t + 1))
            // (math.factorial((t - 1) // 2) * math.factorial(t // 2))
            for t in range(1, size + 1)
        )
        return LagrangeBounds(
            size,
            amplification=amplification,
            simulation=scale * math.comb(middle, middle // 2),
            exact=False,
        )
    amplification = simulation = 1
    for mask in range(1, 1 << committee_size):
        points = [x + 1 for x in range(committee_size) if mask >> x & 1]
        total = 0
        for j in points:
            numerator = denominator = 1
            for k in points:
                if k != j:
                    numerator *= k
                    denominator *= abs(k - j)
            total += scale * numerator // denominator  # |Delta L_j(0)|, exact
            simulation = max(simulation, scale * denominator // numerator)
        amplification = max(amplification, total)
    return LagrangeBounds(committee_size, amplification, simulation, exact=True)
