"""Threshold CKKS keys: the common random polynomial, public key shares, Shamir key-share
deliveries and the collective public key (steps 1 and 2 of :mod:`secagg.he.threshold_ckks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from secagg.errors import ConfigurationError, DecodeError
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.rlwe.ntt import shoup_factor
from secagg.he.rlwe.sampling import Sampler
from secagg.he.rlwe.wire import pack_residues, residues_size, unpack_residues
from secagg.he.threshold_ckks.params import (
    LABEL,
    MAX_MEMBER_ID,
    VERSION,
    ThresholdCkksParameters,
    check_int,
    is_int,
    record_size,
)
from secagg.prg import SEED_BYTES
from secagg.secret import SecretHolder

__all__ = [
    "KeyShareDelivery",
    "PublicKey",
    "PublicKeyShare",
    "collective_public_key",
    "common_random_polynomial",
    "derive_crs_seed",
]


def derive_crs_seed(session_id: bytes) -> bytes:
    """The public seed of the common random polynomial of a session: SHA-256 of a label and
    ``session_id`` (every party derives the same one; nobody chooses ``a``). Raises
    ConfigurationError for a session id that is not 1..1024 bytes."""
    if not isinstance(session_id, bytes) or not 1 <= len(session_id) <= 1024:
        raise ConfigurationError("session_id must be 1..1024 bytes")
    return hashlib.sha256(LABEL + b"/crs-seed" + session_id).digest()


def common_random_polynomial(params: ThresholdCkksParameters, seed: bytes) -> np.ndarray:
    """The common random polynomial ``a`` (NTT form, ``(limbs, 1, N)``) of ``seed``."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ConfigurationError(f"the common random seed must be {SEED_BYTES} bytes")
    sampler = Sampler.public(seed, LABEL + b"/crs/" + params.digest)
    return sampler.uniform(params.moduli, (1, params.degree))


class PublicKeyShare:
    """Member ``member``'s ``p_i = -a s_i + e_i`` (NTT form, ``(limbs, 1, N)``). Public."""

    __slots__ = ("member", "params", "value")

    def __init__(self, params: ThresholdCkksParameters, member: int, value: np.ndarray) -> None:
        self.params = params
        self.member = check_int("member", member, 1, MAX_MEMBER_ID)
        self.value = value

    def __repr__(self) -> str:
        return f"PublicKeyShare(member={self.member})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, member: int) -> int:
        """Exact length of :meth:`to_bytes` of member ``member``'s share."""
        return record_size({"v": VERSION, "i": member}, {"p": residues_size(params.ring, 1)})

    def to_bytes(self) -> bytes:
        return encode_record(
            {"v": VERSION, "i": self.member, "p": pack_residues(self.params.ring, self.value)}
        )

    @classmethod
    def from_bytes(
        cls, params: ThresholdCkksParameters, data: bytes, *, party: int | None = None
    ) -> PublicKeyShare:
        """Inverse of :meth:`to_bytes`; DecodeError (naming ``party``) when malformed."""
        what = "public key share"
        obj = decode_record(data, {"v", "i", "p"}, what, party, version=VERSION)
        member = int_field(obj, "i", what, party)
        if not 1 <= member <= MAX_MEMBER_ID:
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(params.ring, bytes_field(obj, "p", what, party), 1, what, party)
        return cls(params, member, value)


class KeyShareDelivery(
    SecretHolder, export="KeyShareDelivery.to_bytes(), sealed for its recipient"
):
    """Member ``sender``'s Shamir share ``f_sender(x_recipient)`` for ``recipient``.

    SECRET: the protocol layer must seal :meth:`to_bytes` for the recipient. Never printed,
    never pickled.
    """

    __slots__ = ("params", "recipient", "sender", "value")

    def __init__(
        self, params: ThresholdCkksParameters, sender: int, recipient: int, value: np.ndarray
    ) -> None:
        self.params = params
        self.sender = check_int("sender", sender, 1, MAX_MEMBER_ID)
        self.recipient = check_int("recipient", recipient, 1, MAX_MEMBER_ID)
        self.value = value

    def __repr__(self) -> str:
        return f"KeyShareDelivery(sender={self.sender}, recipient={self.recipient})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, sender: int, recipient: int) -> int:
        """Exact length of :meth:`to_bytes` (before the protocol seals it)."""
        return record_size(
            {"v": VERSION, "f": sender, "t": recipient}, {"s": residues_size(params.ring, 1)}
        )

    def to_bytes(self) -> bytes:
        """The SECRET share as a versioned record (seal it before it leaves the member)."""
        return encode_record(
            {
                "v": VERSION,
                "f": self.sender,
                "t": self.recipient,
                "s": pack_residues(self.params.ring, self.value),
            }
        )

    @classmethod
    def from_bytes(
        cls, params: ThresholdCkksParameters, data: bytes, *, party: int | None = None
    ) -> KeyShareDelivery:
        """Inverse of :meth:`to_bytes`; DecodeError (naming ``party``) when malformed."""
        what = "key share delivery"
        obj = decode_record(data, {"v", "f", "t", "s"}, what, party, version=VERSION)
        sender = int_field(obj, "f", what, party)
        recipient = int_field(obj, "t", what, party)
        if not (1 <= sender <= MAX_MEMBER_ID and 1 <= recipient <= MAX_MEMBER_ID):
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(params.ring, bytes_field(obj, "s", what, party), 1, what, party)
        return cls(params, sender, recipient, value)


class PublicKey:
    """The collective public key ``(p, a)``: ``p`` the sum of the contributors' shares,
    ``a`` expanded from the public seed (sent as the seed). NTT form, with Shoup factors
    for fast encryption. Raises ConfigurationError for a bad seed or contributor list."""

    __slots__ = (
        "contributors",
        "crs",
        "crs_shoup",
        "params",
        "scale_column",
        "seed",
        "value",
        "value_shoup",
    )

    def __init__(
        self,
        params: ThresholdCkksParameters,
        seed: bytes,
        contributors: Sequence[int],
        value: np.ndarray,
    ) -> None:
        ids = tuple(contributors)
        if not ids or len(ids) > params.committee_size or list(ids) != sorted(set(ids)):
            raise ConfigurationError(
                f"contributors must be 1..{params.committee_size} sorted distinct ids"
            )
        for member in ids:
            check_int("a contributor id", member, 1, MAX_MEMBER_ID)
        self.params = params
        self.seed = seed
        self.contributors = ids
        self.value = value
        self.crs = common_random_polynomial(params, seed)
        q = params.ring.q
        self.crs_shoup = shoup_factor(self.crs, q)
        self.value_shoup = shoup_factor(value, q)
        scale = params.noise.scale  # gamma = Delta^2 mod each limb: see encrypt()
        self.scale_column = np.array([scale % m for m in params.moduli], dtype=np.uint64).reshape(
            params.ring.limbs, 1, 1
        )

    def __repr__(self) -> str:
        return f"PublicKey(contributors={list(self.contributors)}, fingerprint={self.fingerprint})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, contributors: Sequence[int]) -> int:
        """Exact length of :meth:`to_bytes` for these contributors."""
        return record_size(
            {"v": VERSION, "s": bytes(SEED_BYTES), "k": list(contributors)},
            {"p": residues_size(params.ring, 1)},
        )

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]

    def to_bytes(self) -> bytes:
        return encode_record(
            {
                "v": VERSION,
                "s": self.seed,
                "k": list(self.contributors),
                "p": pack_residues(self.params.ring, self.value),
            }
        )

    @classmethod
    def from_bytes(
        cls, params: ThresholdCkksParameters, data: bytes, *, party: int | None = None
    ) -> PublicKey:
        """Inverse of :meth:`to_bytes`; DecodeError (naming ``party``) when malformed."""
        what = "public key"
        obj = decode_record(data, {"v", "s", "k", "p"}, what, party, version=VERSION)
        seed = bytes_field(obj, "s", what, party)
        contributors = obj["k"]
        if (
            len(seed) != SEED_BYTES
            or not isinstance(contributors, list)
            or not all(is_int(i) for i in contributors)
        ):
            raise DecodeError(f"malformed {what}", party=party)
        value = unpack_residues(params.ring, bytes_field(obj, "p", what, party), 1, what, party)
        try:
            return cls(params, seed, contributors, value)
        except ConfigurationError as exc:
            raise DecodeError(f"malformed {what}: {exc}", party=party) from None


def collective_public_key(
    params: ThresholdCkksParameters, seed: bytes, shares: Iterable[PublicKeyShare]
) -> PublicKey:
    """The public key of the contributors whose shares are given: ``(sum p_i, a)``.

    Raises ConfigurationError for no share, two shares of one member, a share of other
    parameters, or more contributors than ``committee_size``.
    """
    by_member: dict[int, PublicKeyShare] = {}
    for share in shares:
        if share.params != params:
            raise ConfigurationError("a public key share of other parameters")
        if share.member in by_member:
            raise ConfigurationError(f"two public key shares of member {share.member}")
        by_member[share.member] = share
    if not by_member:
        raise ConfigurationError("no public key share")
    ring = params.ring
    total = ring.zeros(1)
    for share in by_member.values():
        ring.add(total, share.value, out=total)
    return PublicKey(params, seed, sorted(by_member), total)
