"""The blinded consistency check of a dealing: are a dealer's self-mask shares one polynomial?

Role: client, ShareCheck (compute the check values); server, ShareCheck (check them).

Theory of operation. Dealer u gave holder v the limbs ``f_0(x_v) .. f_12(x_v)`` of its
share of b_u and two blinding values ``g_1(x_v), g_2(x_v)`` (:mod:`.bundles`), all
evaluations of polynomials of degree < t over GF(p), p = 2^20 + 7, if u is honest. In
ShareCheck the server reveals a nonce N it committed to in round 0 (AdvertiseKeysRequest
carries ``H(N)``, active clients sign it, so every holder of u uses the same N), and holder v
answers, per dealer, the two check values

    w_c(x_v) = g_c(x_v) + sum_i gamma_c^(i + 1) f_i(x_v)    (c = 1, 2)

with ``gamma_c = H(session, N, u, c)`` (:func:`challenges`).

Privacy: ``g_c`` is a uniform polynomial of degree < t unknown to the server, so the values
``w_c(x_v)`` of all holders are the evaluations of a uniform polynomial, whatever the
``f_i``: they say nothing about b_u, for any challenge, provided every holder of u uses the
same one (hence N committed and signed).

Soundness: u fixes the ``f_i`` and ``g_c`` before N is revealed. If some limb's shares are
off every polynomial of degree < t, then ``w_c`` is too, except for at most 13 values of
``gamma_c`` (a non-zero polynomial of degree 13 in gamma over the quotient space): the
check misses with probability at most ``(13 / p)^2 < 2^-33`` over the two challenges. The
server tests the ``w`` of the holders that answered against a random element of the dual
code (:func:`inconsistent`: ``sum_j lambda_j w(x_j) = 0`` for every codeword,
``lambda_j = q(x_j) / prod_(i != j) (x_j - x_i)`` with q random of degree < r - t), twice,
O(r) per dealer once the multipliers of a holder set are known; a flagged dealer's values
are decoded (:func:`locate_off`) to name the holders whose values are off, which the server
then resolves by opening their boxes (the dispute wave of ShareCheck). With r <= t holders
answering there is nothing to check; with r = t + 1 an inconsistency shows but cannot be
located (Reed-Solomon decoding corrects (r - t) // 2 errors).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from secagg.errors import DecodeError
from secagg.protocols.bonawitz.bundles import BLINDING_VALUES, ShareBundle
from secagg.shamir import LIMBS, PRIME
from secagg.shamir.decoding import locate_errors
from secagg.shamir.sharing import inv_mod, prod_mod_rows

__all__ = [
    "CHECK_BYTES",
    "NONCE_BYTES",
    "challenges",
    "check_values",
    "inconsistent",
    "locate_off",
    "nonce_commitment",
    "pack_checks",
    "unpack_checks",
]

NONCE_BYTES = 32
_VALUE_BYTES = 3
CHECK_BYTES = BLINDING_VALUES * _VALUE_BYTES
"""6: the two check values of one dealer, 3 bytes little-endian each."""
_COMMITMENT_LABEL = b"secagg/v3/check-nonce\x00"
_CHALLENGE_LABEL = b"secagg/v3/check-challenge\x00"
_ROUNDS = 2  # independent dual-code tests per check
K = TypeVar("K")


def nonce_commitment(session_id: bytes, nonce: bytes) -> bytes:
    """The 32-byte commitment to the ShareCheck nonce the server sends in round 0."""
    digest = hashlib.sha256(_COMMITMENT_LABEL)
    digest.update(len(session_id).to_bytes(1, "big"))
    digest.update(session_id)
    digest.update(nonce)
    return digest.digest()


def challenges(session_id: bytes, nonce: bytes, dealer: int) -> tuple[int, ...]:
    """The :data:`BLINDING_VALUES` challenges of ``dealer``'s check, in 1..p-1."""
    out = []
    for index in range(BLINDING_VALUES):
        digest = hashlib.sha256(_CHALLENGE_LABEL)
        digest.update(len(session_id).to_bytes(1, "big"))
        digest.update(session_id)
        digest.update(nonce)
        digest.update(dealer.to_bytes(8, "big"))
        digest.update(bytes((index,)))
        out.append(1 + int.from_bytes(digest.digest(), "big") % (PRIME - 1))
    return tuple(out)


def _powers(gammas: np.ndarray) -> np.ndarray:
    """(..., LIMBS): gamma^1 .. gamma^LIMBS mod p, for an int64 array of gammas."""
    powers = np.empty((*gammas.shape, LIMBS), dtype=np.int64)
    current = gammas % PRIME
    for limb in range(LIMBS):
        powers[..., limb] = current
        current = current * gammas % PRIME
    return powers


def check_values(
    session_id: bytes, nonce: bytes, bundles: Sequence[ShareBundle]
) -> np.ndarray:
    """(len(bundles), BLINDING_VALUES) int64: a holder's check values, one row per bundle."""
    if not bundles:
        return np.zeros((0, BLINDING_VALUES), dtype=np.int64)
    limbs = np.stack([np.asarray(b.self_mask_share.values, dtype=np.int64) for b in bundles])
    gammas = np.array(
        [challenges(session_id, nonce, b.dealer) for b in bundles], dtype=np.int64
    )
    blinding = np.array([b.blinding for b in bundles], dtype=np.int64)
    weighted = _powers(gammas) * limbs[:, None, :] % PRIME  # (bundles, values, limbs)
    result: np.ndarray = (weighted.sum(axis=2) + blinding) % PRIME
    return result


def pack_checks(values: np.ndarray) -> bytes:
    """Check values (rows, BLINDING_VALUES) in [0, p) as 3-byte little-endian words."""
    words = np.ascontiguousarray(values, dtype="<u4").reshape(-1)
    return words.view(np.uint8).reshape(-1, 4)[:, :_VALUE_BYTES].tobytes()


def unpack_checks(data: bytes, rows: int) -> np.ndarray:
    """(rows, BLINDING_VALUES) int64 of :func:`pack_checks` bytes. Raises DecodeError on a
    wrong size or a value that is not a field element."""
    if len(data) != rows * CHECK_BYTES:
        raise DecodeError(f"check values must be {rows * CHECK_BYTES} bytes")
    padded = np.zeros((rows * BLINDING_VALUES, 4), dtype=np.uint8)
    padded[:, :_VALUE_BYTES] = np.frombuffer(data, dtype=np.uint8).reshape(-1, _VALUE_BYTES)
    values = padded.view("<u4").reshape(rows, BLINDING_VALUES).astype(np.int64)
    if values.size and int(values.max()) >= PRIME:
        raise DecodeError("a check value outside the field")
    return values


def _multipliers(points: np.ndarray) -> np.ndarray:
    """(groups, r): 1 / prod_(i != j) (x_j - x_i) mod p, row by row."""
    spread = (points[:, :, None] - points[:, None, :]) % PRIME
    rows = points.shape[1]
    spread[:, np.arange(rows), np.arange(rows)] = 1
    products = prod_mod_rows(spread.reshape(-1, rows)).reshape(points.shape)
    return inv_mod(products)


def _random_duals(points: np.ndarray, threshold: int) -> np.ndarray:
    """(_ROUNDS, groups, r): random elements of the dual of the code of each point row."""
    groups, rows = points.shape
    multipliers = _multipliers(points)
    degree = rows - threshold  # q has degree < r - t
    duals = np.empty((_ROUNDS, groups, rows), dtype=np.int64)
    for index in range(_ROUNDS):
        # 64-bit words mod p: a bias below 2^-43, irrelevant for a soundness challenge.
        words = np.frombuffer(secrets.token_bytes(8 * groups * degree), dtype="<u8")
        coefficients = (words % np.uint64(PRIME)).astype(np.int64).reshape(groups, degree)
        values = np.zeros((groups, rows), dtype=np.int64)
        for power in range(degree - 1, -1, -1):  # Horner, products < 2^42
            values = (values * points + coefficients[:, power : power + 1]) % PRIME
        duals[index] = values * multipliers % PRIME
    return duals


def inconsistent(
    records: Mapping[K, tuple[Sequence[int], np.ndarray]], threshold: int
) -> set[K]:
    """The keys whose values are not one polynomial of degree < ``threshold``.

    ``records``: key -> (distinct points, (r, columns) values mod p), each column checked.
    Keys with at most ``threshold`` points pass (nothing to test). The random duals come
    from :mod:`secrets`, drawn after the values arrived, once per distinct point set
    (vectorized over point sets of one size and over the keys that share a point set). A
    consistent key always passes; an inconsistent column passes with probability at most
    ``p^-2``.
    """
    by_points: dict[tuple[int, ...], list[K]] = {}
    for key, (points, _) in records.items():
        if len(points) > threshold:
            by_points.setdefault(tuple(points), []).append(key)
    by_size: dict[int, list[tuple[int, ...]]] = {}
    for points in by_points:
        by_size.setdefault(len(points), []).append(points)
    flagged: set[K] = set()
    for point_sets in by_size.values():
        duals = _random_duals(np.array(point_sets, dtype=np.int64), threshold)  # (R, g, r)
        for index, points in enumerate(point_sets):
            keys = by_points[points]
            values = np.stack([records[k][1] for k in keys]).astype(np.int64) % PRIME
            # (R, r) x (keys, r, columns): products < 2^42, r < 2^21 terms: exact in int64.
            sums = np.einsum("kr,nrc->knc", duals[:, index, :], values) % PRIME
            bad = (sums != 0).any(axis=(0, 2))
            flagged.update(k for k, off in zip(keys, bad.tolist(), strict=True) if off)
    return flagged


def locate_off(
    points: Sequence[int], values: np.ndarray, threshold: int
) -> list[int] | None:
    """The holders whose check values are off the polynomial the others agree on, or None
    when they cannot be located (more than (r - t) // 2 off, or r <= t + 1)."""
    if len(points) < threshold + 2:
        return None
    off = locate_errors(points, np.asarray(values, dtype=np.int64), threshold)
    if off is None:
        return None
    return [x for x, bad in zip(points, off.tolist(), strict=True) if bad]
