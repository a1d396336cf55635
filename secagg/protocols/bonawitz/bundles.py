"""What travels inside a sealed share bundle, and the self-mask commitment.

Role: client, rounds 0-2 (commit in AdvertiseKeys, seal in ShareKeys, open in
MaskedInputCollection); server, round 4 (checks a reconstructed seed against the commitment).

A share bundle is the plaintext client u seals for neighbour v in ShareKeys: v's share of
u's X25519 mask key s_u^SK and v's share of u's self-mask seed b_u. Only what v cannot
derive travels (version :data:`BUNDLE_VERSION`, :data:`MAX_BUNDLE_BYTES` = 71 bytes): a
version byte, then the two shares in shamir's compact form (35 bytes of limb shares each,
:func:`secagg.shamir.pack_limb_shares`). The rest is implied:

* dealer and holder: the AES-GCM associated data binds the session, sender and recipient
  (:mod:`secagg.channel`), so a bundle cannot be re-labelled or replayed elsewhere;
* x is the holder, the threshold the session's;
* the sharing ids are derived (:func:`derive_sharing_id`: SHA-256 over a label, the
  session, the dealer and which secret), so every party names one sharing alike, and a
  share of another dealer, secret or session is foreign by construction.

The mask key s_u^SK is shared in its clamped form (:func:`clamp_scalar`). The commitment
to b_u (SHA-256 over a label, the session, the client id and b_u) is sent in AdvertiseKeys;
it lets the server verify a reconstructed b_u and find the shares that are off the
polynomial when a reconstruction fails (b_u has 256 bits of entropy, so the hash hides it).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

import numpy as np

from secagg.errors import ConfigurationError, DecodeError, ShareError
from secagg.secret import SecretHolder
from secagg.shamir import (
    LIMB_SHARE_BYTES,
    SHARING_ID_BYTES,
    Share,
    pack_limb_shares,
    unpack_limb_shares,
)

__all__ = [
    "BUNDLE_VERSION",
    "MAX_BUNDLE_BYTES",
    "SecretKind",
    "ShareBundle",
    "clamp_scalar",
    "decode_share_bundle",
    "derive_sharing_id",
    "encode_share_bundle",
    "make_share_bundle",
    "self_mask_commitment",
]

BUNDLE_VERSION = 2
"""Version 2: compact shares (limbs only). Version 1 carried two full 58-byte shares."""
_COMMITMENT_LABEL = b"secagg/v1/self-mask-commitment\x00"
_SHARING_ID_LABEL = b"secagg/v2/sharing-id\x00"
#: The encoded bundle: the version byte and two compact shares. Every bundle has this size.
MAX_BUNDLE_BYTES = 1 + 2 * LIMB_SHARE_BYTES


class SecretKind(enum.IntEnum):
    """Which of a dealer's two secrets a share belongs to (bound into its sharing id)."""

    MASK_KEY = 0
    SELF_MASK = 1


def derive_sharing_id(session_id: bytes, dealer: int, kind: SecretKind) -> bytes:
    """The 16-byte sharing id of ``dealer``'s secret ``kind`` in this session.

    Every party derives the same id (SHA-256 over a label, the session, the dealer and the
    kind, truncated), so it never travels; ids of different sessions, dealers or secrets
    differ (up to SHA-256 collisions), which keeps shares of different sharings apart in
    :func:`secagg.shamir.reconstruct_secrets`.
    """
    digest = hashlib.sha256()
    digest.update(_SHARING_ID_LABEL)
    digest.update(len(session_id).to_bytes(1, "big"))
    digest.update(session_id)
    digest.update(dealer.to_bytes(8, "big"))
    digest.update(bytes((int(kind),)))
    return digest.digest()[:SHARING_ID_BYTES]


def clamp_scalar(raw: bytes) -> bytes:
    """The canonical (RFC 7748 clamped) form of a 32-byte X25519 private key.

    X25519 ignores bits 0-2 and 255 of a private key and forces bit 254, so eight raw keys
    share one public key. Clients share the clamped form, which makes "the reconstruction
    equals its clamped form and matches the advertised public key" an exact check: a
    reconstruction off by a few low bits (a bad share weighted by a small Lagrange
    coefficient) cannot pass it. Same public key and agreements as ``raw``.
    """
    clamped = bytearray(raw)
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    return bytes(clamped)


def self_mask_commitment(session_id: bytes, client_id: int, self_seed: bytes) -> bytes:
    """SHA-256 commitment to ``self_seed`` bound to the session and the client (32 bytes)."""
    digest = hashlib.sha256()
    digest.update(_COMMITMENT_LABEL)
    digest.update(len(session_id).to_bytes(1, "big"))
    digest.update(session_id)
    digest.update(client_id.to_bytes(8, "big"))
    digest.update(self_seed)
    return digest.digest()


@dataclass(frozen=True, repr=False)
class ShareBundle(SecretHolder, export="encode_share_bundle() / decode_share_bundle()"):
    """Holder's shares of dealer's two secrets. Secret: never shown in a repr."""

    dealer: int
    holder: int
    key_share: Share
    self_mask_share: Share

    def __repr__(self) -> str:
        return f"ShareBundle(dealer={self.dealer}, holder={self.holder})"


def make_share_bundle(
    session_id: bytes,
    dealer: int,
    holder: int,
    threshold: int,
    key_limbs: np.ndarray,
    self_mask_limbs: np.ndarray,
) -> ShareBundle:
    """The bundle of these limb shares: Shares at x = ``holder`` with ``threshold`` and the
    derived sharing ids of ``dealer``'s two secrets (:func:`derive_sharing_id`).

    Raises the errors of :class:`secagg.shamir.Share` on limbs or ids out of range.
    """
    key_id = derive_sharing_id(session_id, dealer, SecretKind.MASK_KEY)
    mask_id = derive_sharing_id(session_id, dealer, SecretKind.SELF_MASK)
    return ShareBundle(
        dealer,
        holder,
        Share(holder, threshold, key_id, key_limbs),
        Share(holder, threshold, mask_id, self_mask_limbs),
    )


def encode_share_bundle(bundle: ShareBundle) -> bytes:
    """The plaintext to seal: the version byte, then the key share's and the self-mask
    share's limbs in compact form (:data:`MAX_BUNDLE_BYTES` bytes).

    Raises ConfigurationError when the two shares are not of two sharings, both at x =
    ``bundle.holder`` with one threshold (a dealer's own bug: the holder would reject it).
    """
    key, mask = bundle.key_share, bundle.self_mask_share
    if (
        key.x != bundle.holder
        or mask.x != bundle.holder
        or key.threshold != mask.threshold
        or key.sharing_id == mask.sharing_id
    ):
        raise ConfigurationError("a bundle holds two shares of two sharings for its holder")
    return b"".join(
        (bytes((BUNDLE_VERSION,)), pack_limb_shares(key.values), pack_limb_shares(mask.values))
    )


def decode_share_bundle(
    data: bytes, *, session_id: bytes, dealer: int, holder: int, threshold: int
) -> ShareBundle:
    """Parse an opened bundle of ``dealer`` for ``holder`` in session ``session_id``.

    Guarantees: exactly :data:`MAX_BUNDLE_BYTES` bytes of the current version whose two
    compact shares parse strictly (no stray padding bit, every limb below PRIME); the
    result's shares sit at x = ``holder`` with ``threshold`` and the derived sharing ids
    of ``dealer``'s mask key and self-mask seed. Raises DecodeError (``party=dealer``)
    otherwise.
    """
    if not isinstance(data, bytes) or len(data) != MAX_BUNDLE_BYTES:
        raise DecodeError(f"a share bundle is {MAX_BUNDLE_BYTES} bytes", party=dealer)
    if data[0] != BUNDLE_VERSION:
        raise DecodeError("share bundle of an unknown version", party=dealer)
    try:
        key_limbs = unpack_limb_shares(data[1 : 1 + LIMB_SHARE_BYTES])
        mask_limbs = unpack_limb_shares(data[1 + LIMB_SHARE_BYTES :])
        return make_share_bundle(session_id, dealer, holder, threshold, key_limbs, mask_limbs)
    except (DecodeError, ShareError):
        raise DecodeError("share bundle holds a malformed share", party=dealer) from None
