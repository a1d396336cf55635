"""Shamir shares as a Reed-Solomon codeword: find the shares that are off the polynomial.

Theory of operation. The ``g`` shares of one secret with threshold ``t`` are, limb by limb,
the evaluations at ``x_1 .. x_g`` of one polynomial of degree ``< t`` over GF(PRIME): a
Reed-Solomon codeword of length ``g`` and dimension ``t``. When the first ``t`` shares the
server tries do not reconstruct a verified secret, trying other ``t``-subsets one by one
costs up to C(g, t) reconstructions (a single liar among 100 holders already exhausts any
sane budget). Gao's decoder (S. Gao, "A new algorithm for decoding Reed-Solomon codes",
2003) recovers the polynomial with O(g^2) field operations whenever at most
``(g - t) // 2`` shares are wrong, whatever the wrong shares hold.

A secret has ``LIMBS`` polynomials, but a lying holder's share is one row: the decoder runs
once, on a random linear combination of the limbs. The weights come from :mod:`secrets`,
drawn after the shares arrived, so a wrong row stays wrong in the combination except with
probability 1/PRIME. Nothing here is trusted: the caller verifies the secret it rebuilds
from the rows the decoder keeps.

Arithmetic: int64 NumPy arrays of field elements (< 2^21), so a product is < 2^42 and a
dot product of up to 2^21 terms stays exact. Polynomials are 1-D arrays of coefficients,
lowest degree first, with no trailing zeros (the zero polynomial is empty).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from secagg.errors import ConfigurationError
from secagg.shamir.sharing import PRIME, inv_mod, prod_mod_rows

__all__ = ["evaluate_at", "locate_errors", "rs_decode"]

_P = PRIME
# Field inversion and row products are the sharing module's (inv_mod, prod_mod_rows):
# one implementation.


def _trim(poly: np.ndarray) -> np.ndarray:
    nonzero = np.flatnonzero(poly)
    return poly[: nonzero[-1] + 1] if nonzero.size else poly[:0]


def _sub(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    size = max(left.shape[0], right.shape[0])
    out = np.zeros(size, dtype=np.int64)
    out[: left.shape[0]] += left
    out[: right.shape[0]] -= right
    return _trim(out % _P)


def _mul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    if not left.size or not right.size:
        return left[:0]
    # Each output coefficient sums at most min(len) products < 2^42: exact below 2^21 terms.
    return _trim(np.convolve(left, right) % _P)


def _divmod(numerator: np.ndarray, denominator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quotient and remainder of polynomial long division (``denominator`` non-zero)."""
    remainder = numerator.copy()
    width = denominator.shape[0]
    steps = remainder.shape[0] - width + 1
    if steps <= 0:
        return remainder[:0], remainder
    inverse_lead = pow(int(denominator[-1]), _P - 2, _P)
    quotient = np.zeros(steps, dtype=np.int64)
    for k in range(steps - 1, -1, -1):
        coefficient = int(remainder[k + width - 1]) * inverse_lead % _P
        if coefficient:
            quotient[k] = coefficient
            window = remainder[k : k + width]
            window -= coefficient * denominator
            window %= _P
    return _trim(quotient), _trim(remainder[: width - 1])


def _horner(poly: np.ndarray, points: np.ndarray) -> np.ndarray:
    out = np.zeros_like(points)
    for coefficient in poly[::-1].tolist():
        out = (out * points + coefficient) % _P
    return out


def _from_roots(points: np.ndarray) -> np.ndarray:
    """The monic polynomial prod (X - x_i)."""
    poly = np.ones(1, dtype=np.int64)
    for x in points.tolist():
        shifted = np.zeros(poly.shape[0] + 1, dtype=np.int64)
        shifted[1:] = poly
        shifted[:-1] -= x * poly
        poly = shifted % _P
    return poly


def _interpolate(points: np.ndarray, values: np.ndarray, vanishing: np.ndarray) -> np.ndarray:
    """The polynomial of degree < g through the g points: sum_i c_i * vanishing / (X - x_i)
    with c_i = y_i / vanishing'(x_i); the g synthetic divisions run side by side."""
    size = points.shape[0]
    derivative = vanishing[1:] * np.arange(1, size + 1, dtype=np.int64) % _P
    weights = values * inv_mod(_horner(derivative, points)) % _P
    coefficients = np.zeros(size, dtype=np.int64)
    quotients = np.full(size, vanishing[size], dtype=np.int64)
    coefficients[size - 1] = int(weights @ quotients % _P)
    for k in range(size - 1, 0, -1):
        quotients = (vanishing[k] + points * quotients) % _P
        coefficients[k - 1] = int(weights @ quotients % _P)
    return _trim(coefficients)


def _checked_points(points: Sequence[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=np.int64).reshape(-1)
    if array.size and (int(array.min()) < 1 or int(array.max()) >= _P):
        raise ConfigurationError(f"points must be in 1..{_P - 1}")
    if np.unique(array).size != array.size:
        raise ConfigurationError("points must be distinct")
    return array


def rs_decode(
    points: Sequence[int] | np.ndarray, values: np.ndarray, threshold: int
) -> np.ndarray | None:
    """The polynomial of degree < ``threshold`` through all but at most
    ``(g - threshold) // 2`` of the ``g`` points ``(points[i], values[i])`` (Gao's decoder).

    Returns its coefficients (lowest degree first, int64, possibly empty for zero), or None
    when no such polynomial is found (too many wrong values). Raises ConfigurationError on
    points that are not distinct field elements in 1..PRIME-1, values of another length or
    out of [0, PRIME), or a threshold outside 1..g.
    """
    xs = _checked_points(points)
    ys = np.asarray(values, dtype=np.int64).reshape(-1)
    size = xs.shape[0]
    if ys.shape[0] != size or (size and (int(ys.min()) < 0 or int(ys.max()) >= _P)):
        raise ConfigurationError("values must be one field element per point")
    if not isinstance(threshold, int) or not 1 <= threshold <= size:
        raise ConfigurationError(f"threshold must be in 1..{size}")
    vanishing = _from_roots(xs)
    previous, current = vanishing, _interpolate(xs, ys, vanishing)
    before, after = np.zeros(0, dtype=np.int64), np.ones(1, dtype=np.int64)
    # Partial extended Euclid: stop at the first remainder of degree < (g + t) / 2.
    while 2 * (current.shape[0] - 1) >= size + threshold:
        quotient, remainder = _divmod(previous, current)
        previous, current = current, remainder
        before, after = after, _sub(before, _mul(quotient, after))
    if not after.size:
        return None
    message, remainder = _divmod(current, after)
    if remainder.size or message.shape[0] > threshold:
        return None
    return message


def locate_errors(
    points: Sequence[int] | np.ndarray, limbs: np.ndarray, threshold: int
) -> np.ndarray | None:
    """Which of ``g`` shares are off the polynomials the others agree on.

    ``limbs`` is (g, L): row i holds the L limb shares at ``points[i]``. Decodes a random
    combination of the limbs (see the module docstring) and returns a bool mask of the rows
    off the decoded polynomial, or None when more than ``(g - threshold) // 2`` rows are
    wrong (no decoding) or fewer than ``threshold`` rows would be kept. Raises
    ConfigurationError as :func:`rs_decode`.
    """
    rows = np.asarray(limbs, dtype=np.int64)
    if rows.ndim != 2:
        raise ConfigurationError("limbs must be a (shares, limbs) array")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= _P):
        raise ConfigurationError("limb shares must be field elements")
    weights = np.array([1 + secrets.randbelow(_P - 1) for _ in range(rows.shape[1])])
    combined = rows @ weights % _P
    message = rs_decode(points, combined, threshold)
    if message is None:
        return None
    off: np.ndarray = _horner(message, _checked_points(points)) != combined
    if int((~off).sum()) < threshold:
        return None
    return off


def evaluate_at(
    base_points: Sequence[int] | np.ndarray,
    base_limbs: np.ndarray,
    points: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Limb shares at ``points`` of the polynomials through ``base_limbs`` (t, L) at the t
    ``base_points`` (barycentric Lagrange form); returns (len(points), L) int64.

    Raises ConfigurationError on base points that are not distinct field elements, or a
    point equal to a base point (its value is then simply the base row).
    """
    base = _checked_points(base_points)
    at = _checked_points(points)
    values = np.asarray(base_limbs, dtype=np.int64)
    if values.ndim != 2 or values.shape[0] != base.shape[0]:
        raise ConfigurationError("base_limbs must hold one row per base point")
    if not at.size:
        return np.zeros((0, values.shape[1]), dtype=np.int64)
    if np.isin(at, base).any():
        raise ConfigurationError("an evaluation point is a base point")
    spread = (base[:, None] - base[None, :]) % _P
    np.fill_diagonal(spread, 1)
    barycentric = inv_mod(prod_mod_rows(spread))
    gaps = (at[:, None] - base[None, :]) % _P
    vanishing = prod_mod_rows(gaps)
    coefficients = inv_mod(gaps) * barycentric[None, :] % _P * vanishing[:, None] % _P
    # t products < 2^42 per entry: exact for t < 2^21.
    evaluated: np.ndarray = coefficients @ values % _P
    return evaluated
