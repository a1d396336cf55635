"""The public parameters of one threshold-HE session: :class:`ThresholdHEConfig`.

Every party (server, clients, committee members) holds the same copy; nothing in it is
secret. It names the backend (threshold Paillier: the dealer's public key; CKKS: the
public TenSEAL context), the clients, the decryption committee and its threshold, and the
committee's decryption mode (``"full"`` or ``"balanced"``, see
:mod:`secagg.protocols.threshold_he.blocks`).

This module loads neither TenSEAL nor gmpy2: the key types appear only in annotations,
so a config can be checked (and messages decoded) on an install without the ``he`` extra.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from secagg.errors import ConfigurationError, UsageError
from secagg.he.slots import SlotLayout
from secagg.protocols.limits import (
    MAX_VECTOR_LENGTH,
    check_client_ids,
    check_session_id,
    is_int,
)
from secagg.protocols.threshold_he.blocks import assigned_blocks
from secagg.ring import check_bits

if TYPE_CHECKING:
    from secagg.he.ckks import CkksContext
    from secagg.he.threshold_paillier import ThresholdPublicKey

__all__ = [
    "BALANCED",
    "CKKS",
    "CKKS_MAX_SUM_BITS",
    "DECRYPTION_MODES",
    "DEFAULT_COMMITTEE",
    "DEFAULT_DECRYPTION",
    "FULL",
    "THRESHOLD_PAILLIER",
    "Backend",
    "ThresholdHEConfig",
]

Backend = Literal["threshold-paillier", "ckks"]
THRESHOLD_PAILLIER: Final = "threshold-paillier"
CKKS: Final = "ckks"

CKKS_MAX_SUM_BITS = 44
"""CKKS sums integers exactly only while they stay far below float64's 53-bit mantissa:
bits + ceil(log2(clients)) must not exceed this (measured error at 2^44: < 0.01)."""
DEFAULT_COMMITTEE = 5
"""Default committee size: the first min(5, n) clients."""
FULL: Final = "full"
BALANCED: Final = "balanced"
DECRYPTION_MODES: tuple[str, ...] = (FULL, BALANCED)
DEFAULT_DECRYPTION: str = FULL
"""Threshold Paillier's default decryption mode (see :class:`ThresholdHEConfig`)."""


@dataclass(frozen=True)
class ThresholdHEConfig:
    """Public parameters of one session; every party holds the same copy. No secret in it.

    ``committee`` lists the decryption committee's client ids; with threshold Paillier the
    member at position i holds key share i + 1. ``threshold`` is t (CKKS: how many identical
    decryptions the server needs). ``min_clients`` is the fewest summands a member agrees
    to decrypt. ``decryption`` (threshold Paillier only) is ``"full"`` (every member
    partially decrypts every ciphertext of the aggregate) or ``"balanced"`` (the
    ciphertexts are cut into one block per member and each block goes to t members, see
    :mod:`secagg.protocols.threshold_he.blocks`: a member decrypts t/l of the aggregate).
    CKKS ignores ``decryption``: its members decrypt the whole aggregate with the single
    key and the server compares whole answers. Raises ConfigurationError on anything
    inconsistent, HeadroomError when the packing slots cannot hold a sum over all clients.
    """

    session_id: bytes
    clients: tuple[int, ...]
    bits: int
    vector_length: int
    committee: tuple[int, ...]
    threshold: int
    min_clients: int = 2
    public_key: ThresholdPublicKey | None = None
    guard_bits: int = 1
    ckks: CkksContext | None = None
    decryption: str = DEFAULT_DECRYPTION

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        clients = tuple(sorted(check_client_ids(self.clients, "clients")))
        if len(clients) < 2:
            raise ConfigurationError("an aggregation needs at least two clients")
        object.__setattr__(self, "clients", clients)
        committee = tuple(check_client_ids(self.committee, "committee"))
        if not committee or not set(committee) <= set(clients):
            raise ConfigurationError("the committee must be a non-empty subset of the clients")
        object.__setattr__(self, "committee", committee)
        check_bits(self.bits)  # the one bit-width rule (secagg.ring)
        for name, value, low, high in (
            ("vector_length", self.vector_length, 1, MAX_VECTOR_LENGTH),
            ("threshold", self.threshold, 1, len(committee)),
            ("min_clients", self.min_clients, 2, len(clients)),
        ):
            if not is_int(value) or not low <= value <= high:
                raise ConfigurationError(f"{name} must be an int in [{low}, {high}]")
        if (self.public_key is None) == (self.ckks is None):
            raise ConfigurationError("give exactly one of public_key (Paillier) and ckks")
        if not isinstance(self.decryption, str) or self.decryption not in DECRYPTION_MODES:
            raise ConfigurationError(f"decryption must be one of {DECRYPTION_MODES}")
        if self.public_key is not None:
            from secagg.he.threshold_paillier import ThresholdPublicKey  # gmpy2: only here

            key = self.public_key
            if not isinstance(key, ThresholdPublicKey):
                raise ConfigurationError(
                    "public_key must be the dealer's ThresholdPublicKey (the shared config "
                    "never holds a key share)"
                )
            if key.holders != len(committee) or key.threshold != self.threshold:
                raise ConfigurationError("the key's (t, l) must match (threshold, committee)")
            _ = self.layout  # raises HeadroomError if the slots cannot hold the sum
        else:
            assert self.ckks is not None
            if self.ckks.has_secret_key:
                raise ConfigurationError("the shared config must hold the PUBLIC CKKS context")
            if self.bits + (len(clients) - 1).bit_length() > CKKS_MAX_SUM_BITS:
                raise ConfigurationError(
                    f"CKKS sums are exact only up to {CKKS_MAX_SUM_BITS} bits: lower bits"
                )

    @property
    def backend(self) -> Backend:
        return THRESHOLD_PAILLIER if self.public_key is not None else CKKS

    @property
    def mode(self) -> str:
        """How the committee decrypts: ``"full"`` or ``"balanced"`` (threshold Paillier),
        ``"ckks"`` (CKKS, always the whole aggregate). The transition table's mode column
        (:mod:`secagg.protocols.threshold_he.rounds`) is keyed by it."""
        return self.decryption if self.public_key is not None else CKKS

    @property
    def n(self) -> int:
        return len(self.clients)

    @property
    def layout(self) -> SlotLayout:
        """Paillier slot layout: ``bits``-bit values, a sum over every client never carries."""
        if self.public_key is None:
            raise UsageError("only threshold Paillier packs slots")
        return SlotLayout.for_modulus(
            self.public_key.paillier.n,
            value_bits=self.bits,
            max_summands=self.n,
            guard_bits=self.guard_bits,
        )

    @property
    def block_count(self) -> int:
        """How many blocks a decryption request cuts the aggregate into: 1 in full mode,
        one per committee member in balanced mode (CKKS: always 1)."""
        return len(self.committee) if self.mode == BALANCED else 1

    def assigned_blocks(self, client_id: int) -> tuple[int, ...]:
        """The blocks member ``client_id`` decrypts when nobody drops: members are taken in
        sorted id order (ConfigurationError for a non-member)."""
        if client_id not in self.committee:
            raise ConfigurationError(f"client {client_id} is not on the committee")
        ordered = sorted(self.committee)
        return assigned_blocks(
            ordered.index(client_id), len(ordered), self.threshold, self.block_count
        )

    def holder_index(self, client_id: int) -> int:
        """The key-share index of committee member ``client_id`` (ConfigurationError if none)."""
        if client_id not in self.committee:
            raise ConfigurationError(f"client {client_id} is not on the committee")
        return self.committee.index(client_id) + 1

    def decryption_context(self, included: Sequence[int]) -> bytes:
        """What the decryption proofs are bound to: session and the included clients."""
        h = hashlib.sha256(b"secagg/threshold-he/decryption\x00" + self.session_id)
        for client in sorted(included):
            h.update(client.to_bytes(8, "big"))
        return h.digest()

    def __repr__(self) -> str:
        return (
            f"ThresholdHEConfig(backend={self.backend!r}, session_id="
            f"{self.session_id.hex()[:16]}..., n={self.n}, bits={self.bits}, "
            f"vector_length={self.vector_length}, committee={len(self.committee)}, "
            f"threshold={self.threshold}, decryption={self.decryption!r})"
        )
