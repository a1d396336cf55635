"""Many Shamir shares at once: vectorized interpolation for the server.

In Unmasking the server receives up to n shares from each of n clients (n = 500: 175 000
shares). Parsing them one :class:`secagg.shamir.Share` at a time costs seconds, so the fast
path parses the compact records in bulk with :func:`secagg.shamir.parse_limb_shares` (the
share layout lives there only) and interpolates every secret of one holder set with one
Lagrange vector (:func:`secagg.shamir.lagrange_coefficients_at_zero`, cached per holder
set).

Nothing here decides what is trusted: a record that does not parse marks that secret as
failed, and the caller falls back to a per-secret search (and verifies every secret it
reconstructs either way). ``parse_records`` (full 58-byte Share records) stays for
standalone callers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from secagg.shamir.sharing import (
    PRIME,
    lagrange_coefficients_at_zero,
    limbs_to_secrets,
    parse_shares,
)

__all__ = ["interpolate", "limbs_to_secrets", "parse_records"]

parse_records = parse_shares
"""The server's name for :func:`secagg.shamir.parse_shares` (kept for its callers);
``limbs_to_secrets`` is :func:`secagg.shamir.limbs_to_secrets`, re-exported likewise."""


def interpolate(values: np.ndarray, holders: Sequence[int]) -> np.ndarray:
    """Limbs at zero of many secrets: ``values`` (t, secrets, LIMBS) are the shares of
    ``holders`` (length t, same order); returns (secrets, LIMBS) int64 limbs mod PRIME.

    Exact: every product is below 2^42 and t < 2^21 terms sum below 2^63.
    Raises the errors of :func:`lagrange_coefficients_at_zero` on bad holders.
    """
    coefficients = lagrange_coefficients_at_zero(holders)
    limbs: np.ndarray = np.tensordot(coefficients, values, axes=(0, 0)) % PRIME
    return limbs
