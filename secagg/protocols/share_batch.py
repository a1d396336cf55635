"""Many Shamir shares at once: vectorized parsing and interpolation for the server.

In Unmasking the server receives up to n shares from each of n clients (n = 500: 175 000
shares). Parsing them one :class:`secagg.shamir.Share` at a time costs seconds, so the fast
path reads the fixed-size wire records of :meth:`Share.to_bytes` straight into NumPy arrays
and interpolates every secret of one holder set with one Lagrange vector
(:func:`secagg.shamir.lagrange_coefficients_at_zero`, cached per holder set).

Nothing here decides what is trusted: a record that does not parse, a threshold or x that
is not the expected one, or sharing ids that differ between holders marks that secret as
failed, and the caller falls back to :mod:`secagg.shamir`'s per-share API (and verifies
every secret it reconstructs either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from secagg.shamir import (
    LIMB_BITS,
    LIMBS,
    PRIME,
    SECRET_BYTES,
    SHARE_BYTES,
    SHARING_ID_BYTES,
    lagrange_coefficients_at_zero,
)

__all__ = ["ShareRecords", "interpolate", "limbs_to_secrets", "parse_records"]

# Share.to_bytes layout: format byte, threshold (3 bytes LE), x (3 bytes LE), sharing id,
# then the LIMBS limb shares bit-packed little-endian at PRIME.bit_length() bits.
_FORMAT = 1
_SHARE_BITS = PRIME.bit_length()
_ID_START = 7
_LIMB_START = _ID_START + SHARING_ID_BYTES
_LIMB_BYTES = SHARE_BYTES - _LIMB_START
_WORDS = -(-_LIMB_BYTES // 8)
_USED_BITS = LIMBS * _SHARE_BITS
_TOP_LIMB_BITS = SECRET_BYTES * 8 - (LIMBS - 1) * LIMB_BITS
assert _LIMB_BYTES * 8 >= _USED_BITS > (_LIMB_BYTES - 1) * 8


@dataclass(frozen=True, repr=False)
class ShareRecords:
    """Parsed share records, one row per record (values are secret: no repr)."""

    valid: np.ndarray  # bool: format byte, padding bits and field ranges are right
    thresholds: np.ndarray  # int64
    xs: np.ndarray  # int64
    sharing_ids: np.ndarray  # uint8, (rows, SHARING_ID_BYTES)
    values: np.ndarray  # int64, (rows, LIMBS), each in [0, PRIME) where valid

    def __repr__(self) -> str:
        return f"ShareRecords(rows={self.valid.shape[0]})"


def _little_int(columns: np.ndarray) -> np.ndarray:
    out = np.zeros(columns.shape[0], dtype=np.int64)
    for i in range(columns.shape[1]):
        out |= columns[:, i].astype(np.int64) << (8 * i)
    return out


def parse_records(records: np.ndarray) -> ShareRecords:
    """Parse ``records`` (uint8, shape (rows, SHARE_BYTES)) laid out as Share.to_bytes.

    Guarantees: ``valid[i]`` is True exactly when :meth:`Share.from_bytes` would accept row
    ``i``; then its fields equal that Share's. Raises ValueError on a wrong array shape.
    """
    if records.ndim != 2 or records.shape[1] != SHARE_BYTES or records.dtype != np.uint8:
        raise ValueError(f"records must be uint8 of shape (rows, {SHARE_BYTES})")
    rows = records.shape[0]
    thresholds = _little_int(records[:, 1:4])
    xs = _little_int(records[:, 4:7])
    padded = np.zeros((rows, 8 * _WORDS), dtype=np.uint8)
    padded[:, :_LIMB_BYTES] = records[:, _LIMB_START:]
    words = padded.view("<u8")
    mask = np.uint64((1 << _SHARE_BITS) - 1)
    values = np.empty((rows, LIMBS), dtype=np.int64)
    for limb in range(LIMBS):
        word, shift = divmod(limb * _SHARE_BITS, 64)
        part = words[:, word] >> np.uint64(shift)
        if shift + _SHARE_BITS > 64:
            part = part | (words[:, word + 1] << np.uint64(64 - shift))
        values[:, limb] = (part & mask).astype(np.int64)
    last_word, used_in_last = divmod(_USED_BITS, 64)
    padding_clear = (words[:, last_word] >> np.uint64(used_in_last)) == 0
    valid = (
        (records[:, 0] == _FORMAT)
        & padding_clear
        & (values < PRIME).all(axis=1)
        & (thresholds >= 1)
        & (thresholds < PRIME)
        & (xs >= 1)
        & (xs < PRIME)
    )
    return ShareRecords(valid, thresholds, xs, records[:, _ID_START:_LIMB_START].copy(), values)


def interpolate(values: np.ndarray, holders: Sequence[int]) -> np.ndarray:
    """Limbs at zero of many secrets: ``values`` (t, secrets, LIMBS) are the shares of
    ``holders`` (length t, same order); returns (secrets, LIMBS) int64 limbs mod PRIME.

    Exact: every product is below 2^42 and t < 2^21 terms sum below 2^63.
    Raises the errors of :func:`lagrange_coefficients_at_zero` on bad holders.
    """
    coefficients = lagrange_coefficients_at_zero(holders)
    limbs: np.ndarray = np.tensordot(coefficients, values, axes=(0, 0)) % PRIME
    return limbs


def limbs_to_secrets(limbs: np.ndarray) -> list[bytes | None]:
    """32-byte secrets from (secrets, LIMBS) limbs; None where a limb is out of range (the
    shares were inconsistent)."""
    top_ok = limbs[:, -1] < (1 << _TOP_LIMB_BITS)
    ok = (limbs[:, :-1] < (1 << LIMB_BITS)).all(axis=1) & top_ok
    secrets: list[bytes | None] = []
    for row, good in zip(limbs.tolist(), ok.tolist(), strict=True):
        if not good:
            secrets.append(None)
            continue
        value = 0
        for i, limb in enumerate(row):
            value |= limb << (LIMB_BITS * i)
        secrets.append(value.to_bytes(SECRET_BYTES, "little"))
    return secrets
