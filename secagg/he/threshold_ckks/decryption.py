"""Threshold CKKS decryption: decryption shares and their combination (step 4 of
:mod:`secagg.he.threshold_ckks`; the member that computes shares is
:mod:`secagg.he.threshold_ckks.member`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
)
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.rlwe.wire import pack_residues, unpack_residues
from secagg.he.threshold_ckks.ciphertext import Ciphertext
from secagg.he.threshold_ckks.params import (
    MAX_MEMBER_ID,
    VERSION,
    Committee,
    ThresholdCkksParameters,
    check_int,
    record_size,
)
from secagg.ring import dtype_for_bits

__all__ = ["DecryptionShare", "combine"]

_U64 = np.uint64
_OFFSET_LIMIT = 3 / 8
"""Honest decryptions stay within 3/8 of an integer (NoiseBudget.max_offset)."""


class DecryptionShare:
    """Member ``member``'s ``c1 lambda_j sk_j + e_j`` (coefficient form, ``(limbs, chunks,
    N)``). Meant for the server; computationally hides the key share."""

    __slots__ = ("member", "params", "value")

    def __init__(self, params: ThresholdCkksParameters, member: int, value: np.ndarray) -> None:
        self.params = params
        self.member = check_int("member", member, 1, MAX_MEMBER_ID)
        self.value = value

    def __repr__(self) -> str:
        return f"DecryptionShare(member={self.member}, chunks={self.value.shape[1]})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, length: int, member: int) -> int:
        """Exact length of :meth:`to_bytes` for a vector of ``length`` values."""
        return record_size({"v": VERSION, "i": member}, {"d": params.mask_bytes(length)})

    def to_bytes(self) -> bytes:
        return encode_record(
            {"v": VERSION, "i": self.member, "d": pack_residues(self.params.ring, self.value)}
        )

    @classmethod
    def from_bytes(
        cls,
        params: ThresholdCkksParameters,
        data: bytes,
        *,
        length: int,
        party: int | None = None,
    ) -> DecryptionShare:
        """Inverse of :meth:`to_bytes` for a vector of ``length`` values; DecodeError
        (naming ``party``) when malformed."""
        what = "decryption share"
        obj = decode_record(data, {"v", "i", "d"}, what, party, version=VERSION)
        member = int_field(obj, "i", what, party)
        if not 1 <= member <= MAX_MEMBER_ID:
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(
            params.ring, bytes_field(obj, "d", what, party), params.chunks(length), what, party
        )
        return cls(params, member, value)


def combine(
    committee: Committee,
    ciphertext: Ciphertext,
    shares: Sequence[DecryptionShare],
    active: Sequence[int],
) -> np.ndarray:
    """Decrypt ``ciphertext`` from the shares of exactly the active set ``active``.

    Returns the sum over ``Z_(2^plaintext_bits)`` (1-D, the ciphertext's length, dtype
    ``uint32`` up to 32 bits else ``uint64``). Raises ConfigurationError for an active set
    that is not ``>= threshold`` distinct members; DuplicateShareError for two shares of one
    member; InsufficientSharesError when a member of the set has no share;
    IncompatibleSharesError for a share of a non-member of the set, of other parameters or
    another chunk count; DecodeError when the result is not a valid decryption (a
    coefficient's offset beyond 3/8: a corrupted or mismatched share) -- never a wrong sum
    presented as right by accident.
    """
    params = ciphertext.params
    ids = committee.check_subset(active, "the active set")
    if len(ids) < committee.threshold:
        raise ConfigurationError("the active set is smaller than the threshold")
    by_member: dict[int, DecryptionShare] = {}
    for share in shares:
        if share.member in by_member:
            raise DuplicateShareError(f"two decryption shares of member {share.member}")
        by_member[share.member] = share
    if set(by_member) - set(ids):
        raise IncompatibleSharesError("a decryption share of a member outside the active set")
    if set(ids) - set(by_member):
        raise InsufficientSharesError(
            f"{len(set(ids) - set(by_member))} member(s) of the active set sent no share"
        )
    ring = params.ring
    total = np.zeros_like(ciphertext.mask)
    for member in ids:
        share = by_member[member]
        if share.params != params or share.value.shape != total.shape:
            raise IncompatibleSharesError(f"the share of member {member} does not match")
        ring.add(total, share.value, out=total)
    bits, body_bits = params.plaintext_bits, params.body_bits
    integer, fraction = ring.scale_to_bits(total, bits)
    shift = body_bits - bits
    body = ciphertext.body
    np.add(integer, body >> _U64(shift), out=integer)
    fraction += (body & _U64((1 << shift) - 1)).astype(np.float64) / float(1 << shift)
    rounded = np.floor(fraction + 0.5)
    offset = np.abs(fraction - rounded)
    if offset.size and float(offset.max()) > _OFFSET_LIMIT:
        raise DecodeError(
            "decryption shares do not combine to a valid decryption (a corrupted share, or "
            "one of another ciphertext, key or active set)"
        )
    np.add(integer, rounded.astype(_U64), out=integer)
    if bits < 64:
        np.bitwise_and(integer, _U64((1 << bits) - 1), out=integer)
    return integer.reshape(-1)[: ciphertext.length].astype(dtype_for_bits(bits))
