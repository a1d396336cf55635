"""What travels inside a sealed share bundle, and the self-mask commitment.

A share bundle is the plaintext client u seals for neighbour v in ShareKeys: v's share of
u's X25519 mask key s_u^SK and v's share of u's self-mask seed b_u. The bundle names its
dealer and holder again inside the AES-GCM box, so a bundle that the channel's associated
data would accept can still not be re-labelled.

The mask key s_u^SK is shared in its clamped form (:func:`clamp_scalar`). The commitment
to b_u (SHA-256 over a label, the session, the client id and b_u) is sent in AdvertiseKeys;
it lets the server verify a reconstructed b_u and find the shares that are off the
polynomial when a reconstruction fails (b_u has 256 bits of entropy, so the hash hides it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack

from secagg.errors import DecodeError
from secagg.shamir import SHARE_BYTES, Share

__all__ = [
    "BUNDLE_VERSION",
    "MAX_BUNDLE_BYTES",
    "ShareBundle",
    "clamp_scalar",
    "decode_share_bundle",
    "encode_share_bundle",
    "self_mask_commitment",
]

BUNDLE_VERSION = 1
_COMMITMENT_LABEL = b"secagg/v1/self-mask-commitment\x00"
_MAX_SHARE_BYTES = 1024
#: The largest encoded bundle: a fixarray header, the version, two uint32 ids (client ids
#: stay below 2^21) and two bin8 shares. Bounds what a sealed bundle may weigh on the wire.
MAX_BUNDLE_BYTES = 1 + 1 + 2 * 5 + 2 * (2 + SHARE_BYTES)


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
class ShareBundle:
    """Holder's shares of dealer's two secrets. Secret: never shown in a repr."""

    dealer: int
    holder: int
    key_share: Share
    self_mask_share: Share

    def __repr__(self) -> str:
        return f"ShareBundle(dealer={self.dealer}, holder={self.holder})"


def encode_share_bundle(bundle: ShareBundle) -> bytes:
    """The plaintext to seal: msgpack ``[version, dealer, holder, key share, mask share]``."""
    packed: bytes = msgpack.packb(
        [
            BUNDLE_VERSION,
            bundle.dealer,
            bundle.holder,
            bundle.key_share.to_bytes(),
            bundle.self_mask_share.to_bytes(),
        ],
        use_bin_type=True,
    )
    return packed


def decode_share_bundle(data: bytes, *, dealer: int, holder: int, threshold: int) -> ShareBundle:
    """Parse an opened bundle and check it is ``dealer``'s bundle for ``holder``.

    Guarantees: both shares parse, sit at x = ``holder``, have threshold ``threshold`` and
    belong to two different sharings. Raises DecodeError (``party=dealer``) otherwise.
    """
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception:  # msgpack raises several unrelated types on bad input
        raise DecodeError("share bundle is not msgpack", party=dealer) from None
    if (
        not isinstance(fields, list)
        or len(fields) != 5
        or fields[0] != BUNDLE_VERSION
        or fields[1] != dealer
        or fields[2] != holder
        or not all(isinstance(v, bytes) and len(v) <= _MAX_SHARE_BYTES for v in fields[3:])
    ):
        raise DecodeError("share bundle has a wrong header or fields", party=dealer)
    try:
        key_share = Share.from_bytes(fields[3])
        mask_share = Share.from_bytes(fields[4])
    except DecodeError:
        raise DecodeError("share bundle holds a malformed share", party=dealer) from None
    for share in (key_share, mask_share):
        if share.x != holder or share.threshold != threshold:
            raise DecodeError("share bundle holds a share for another holder", party=dealer)
    if key_share.sharing_id == mask_share.sharing_id:
        raise DecodeError("share bundle holds two shares of one sharing", party=dealer)
    return ShareBundle(dealer, holder, key_share, mask_share)
