"""What a dealer deals: two sealed boxes per holder, and the self-mask commitment.

Role: client, rounds 0-2 (commit in AdvertiseKeys, deal in ShareKeys, open in ShareCheck);
server, ShareCheck and Unmasking (it opens a stored box with a key a holder reveals).

Theory of operation. Dealer u Shamir-shares two secrets among its holders (its
neighbourhood and itself): its X25519 mask key s_u^SK and its self-mask seed b_u. Holder v's
shares travel in two AES-GCM boxes, one per secret, each under its own 16-byte key:

* the keys come from the X25519 secret of u's and v's channel keys (HKDF-SHA256 over a
  label, the version, the session, the dealer and the holder, in that order: the keys of
  u -> v and v -> u differ), so only u and v can derive them, and a key opens exactly one
  box: revealing the self-mask box key of u -> v discloses v's share of b_u and nothing of
  s_u^SK (the rule "never both secrets of one owner" holds key by key);
* each key seals one plaintext once, so the nonce is fixed (zero); the associated data
  names the box kind and :data:`BUNDLE_VERSION`;
* the self-mask box also carries two blinding values ``g_1(x_v), g_2(x_v)`` of two random
  polynomials of degree < t over GF(PRIME) (uniform coefficients, fresh per dealing): they
  let the holders check in ShareCheck that the dealing is consistent without revealing a
  share (:mod:`secagg.protocols.bonawitz.dealing`).

Plaintexts: the mask-key box holds one compact share (35 bytes,
:func:`secagg.shamir.pack_limb_shares`); the self-mask box one compact share and the two
blinding values, 3 bytes little-endian each. x is the holder, the threshold the
session's, the sharing ids are derived (:func:`derive_sharing_id`): nothing else travels.

The server stores every box it relays until Unmasking (O(n k) records of 108 bytes). A box
it opens with a key a holder revealed is the dealer's own: AES-GCM under a key only u and v
can derive, which v cannot re-open to other content (finding a second key for a box an
honest dealer sealed means forging a GCM tag). So a share that comes out of a box is the
dealer's, and a share that is off its polynomial is the dealer's fault, never the holder's.

The self-mask commitment (SHA-256 over a label, the session, the client and b_u) is
published in AdvertiseKeys; the server checks the b_u it rebuilds against it (b_u has 256
bits of entropy, so the hash hides it). The mask key is shared in its clamped form
(:func:`clamp_scalar`), which makes "the reconstruction matches the advertised key" exact.
"""

from __future__ import annotations

import enum
import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secagg.errors import ConfigurationError, DecodeError, ShareError
from secagg.secret import SecretHolder
from secagg.shamir import (
    LIMB_SHARE_BYTES,
    PRIME,
    SHARING_ID_BYTES,
    Share,
    pack_limb_shares,
    share_secrets,
    unpack_limb_shares,
)

__all__ = [
    "BLINDING_VALUES",
    "BOX_KEY_BYTES",
    "BUNDLE_VERSION",
    "MASK_KEY_BOX_BYTES",
    "SELF_MASK_BOX_BYTES",
    "BoxKeys",
    "DealtShares",
    "SecretKind",
    "ShareBundle",
    "clamp_scalar",
    "deal",
    "decode_mask_key_box",
    "decode_self_mask_box",
    "derive_box_keys",
    "derive_sharing_id",
    "mask_key_plaintext",
    "open_box",
    "seal_box",
    "self_mask_commitment",
    "self_mask_plaintext",
]

BUNDLE_VERSION = 3
"""Version 3: two boxes per holder under derived one-time keys, blinding values in the
self-mask box. Version 2 sealed one bundle of both shares under the pair's channel key."""
BOX_KEY_BYTES = 16
"""AES-128-GCM: one key per box, used once."""
BLINDING_VALUES = 2
_BLINDING_VALUE_BYTES = 3  # a value of GF(2^20 + 7) fits in 21 bits
_TAG_BYTES = 16
_NONCE = bytes(12)  # every key seals exactly one plaintext
SELF_MASK_PLAINTEXT_BYTES = LIMB_SHARE_BYTES + BLINDING_VALUES * _BLINDING_VALUE_BYTES
MASK_KEY_PLAINTEXT_BYTES = LIMB_SHARE_BYTES
SELF_MASK_BOX_BYTES = SELF_MASK_PLAINTEXT_BYTES + _TAG_BYTES
"""57: a sealed self-mask box (share of b_u and two blinding values, plus the tag)."""
MASK_KEY_BOX_BYTES = MASK_KEY_PLAINTEXT_BYTES + _TAG_BYTES
"""51: a sealed mask-key box (share of s_u^SK, plus the tag)."""

_COMMITMENT_LABEL = b"secagg/v1/self-mask-commitment\x00"
_SHARING_ID_LABEL = b"secagg/v2/sharing-id\x00"
_BOX_KEY_LABEL = b"secagg/v3/box-keys\x00"
_BOX_AD = b"secagg/v3/box\x00"
_REJECTION_LIMIT = (2**32 // PRIME) * PRIME


class SecretKind(enum.IntEnum):
    """Which of a dealer's two secrets a share or box belongs to."""

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
    equals its clamped form and matches the advertised public key" an exact check.
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
class BoxKeys(SecretHolder, export="none: derive them again (derive_box_keys)"):
    """The two box keys of one (dealer, holder) pair. Secret: no repr of values, no pickle."""

    self_mask: bytes
    mask_key: bytes

    def of(self, kind: SecretKind) -> bytes:
        return self.self_mask if kind is SecretKind.SELF_MASK else self.mask_key

    def __repr__(self) -> str:
        return "BoxKeys(<secret>)"



def derive_box_keys(raw_secret: bytes, session_id: bytes, dealer: int, holder: int) -> BoxKeys:
    """The box keys of ``dealer`` -> ``holder`` from their raw X25519 secret (HKDF-SHA256:
    directional, bound to the session; see the module docstring). ``dealer == holder`` is
    the dealer's box to itself. Raises ConfigurationError on a secret that is not 32 bytes."""
    if not isinstance(raw_secret, bytes) or len(raw_secret) != 32:
        raise ConfigurationError("a raw X25519 secret is 32 bytes")
    info = b"".join(
        (
            _BOX_KEY_LABEL,
            bytes((BUNDLE_VERSION,)),
            struct.pack(">H", len(session_id)),
            session_id,
            struct.pack(">QQ", dealer, holder),
        )
    )
    material = HKDF(hashes.SHA256(), 2 * BOX_KEY_BYTES, None, info).derive(raw_secret)
    return BoxKeys(material[:BOX_KEY_BYTES], material[BOX_KEY_BYTES:])


def seal_box(key: bytes, plaintext: bytes, kind: SecretKind) -> bytes:
    """The box of ``plaintext`` under a one-time ``key`` (AES-128-GCM, fixed nonce)."""
    return AESGCM(key).encrypt(_NONCE, plaintext, _BOX_AD + bytes((int(kind),)))


def open_box(key: object, box: object, kind: SecretKind) -> bytes | None:
    """The plaintext of ``box`` under ``key``, or None when it does not open (wrong key,
    wrong kind, any changed bit, or not bytes of the right sizes). Never raises."""
    if not isinstance(key, bytes) or len(key) != BOX_KEY_BYTES or not isinstance(box, bytes):
        return None
    try:
        return AESGCM(key).decrypt(_NONCE, box, _BOX_AD + bytes((int(kind),)))
    except InvalidTag:
        return None


@dataclass(frozen=True, repr=False)
class ShareBundle(SecretHolder, export="Client.to_state_bytes() (held shares)"):
    """Holder's shares of dealer's two secrets (and the self-mask box's blinding values).
    Secret: never shown in a repr, never pickled."""

    dealer: int
    holder: int
    key_share: Share
    self_mask_share: Share
    blinding: tuple[int, ...] = (0,) * BLINDING_VALUES

    def __repr__(self) -> str:
        return f"ShareBundle(dealer={self.dealer}, holder={self.holder})"



def _share(session_id: bytes, dealer: int, holder: int, threshold: int, kind: SecretKind,
           limbs: np.ndarray) -> Share:
    return Share(holder, threshold, derive_sharing_id(session_id, dealer, kind), limbs)


def decode_self_mask_box(
    plaintext: bytes, *, session_id: bytes, dealer: int, holder: int, threshold: int
) -> tuple[Share, tuple[int, ...]]:
    """The self-mask share and blinding values of an opened self-mask box. Raises
    DecodeError (``party=dealer``) unless it is exactly a strict compact share and
    :data:`BLINDING_VALUES` field elements."""
    if not isinstance(plaintext, bytes) or len(plaintext) != SELF_MASK_PLAINTEXT_BYTES:
        raise DecodeError("a self-mask box holds a share and two blinding values", party=dealer)
    blinding = tuple(
        int.from_bytes(plaintext[at : at + _BLINDING_VALUE_BYTES], "little")
        for at in range(LIMB_SHARE_BYTES, SELF_MASK_PLAINTEXT_BYTES, _BLINDING_VALUE_BYTES)
    )
    if any(value >= PRIME for value in blinding):
        raise DecodeError("a blinding value outside the field", party=dealer)
    try:
        limbs = unpack_limb_shares(plaintext[:LIMB_SHARE_BYTES])
        share = _share(session_id, dealer, holder, threshold, SecretKind.SELF_MASK, limbs)
    except (DecodeError, ShareError):
        raise DecodeError("a self-mask box holds a malformed share", party=dealer) from None
    return share, blinding


def decode_mask_key_box(
    plaintext: bytes, *, session_id: bytes, dealer: int, holder: int, threshold: int
) -> Share:
    """The mask-key share of an opened mask-key box; DecodeError (``party=dealer``) unless
    it is exactly one strict compact share."""
    if not isinstance(plaintext, bytes) or len(plaintext) != MASK_KEY_PLAINTEXT_BYTES:
        raise DecodeError("a mask-key box holds one compact share", party=dealer)
    try:
        limbs = unpack_limb_shares(plaintext)
        return _share(session_id, dealer, holder, threshold, SecretKind.MASK_KEY, limbs)
    except (DecodeError, ShareError):
        raise DecodeError("a mask-key box holds a malformed share", party=dealer) from None


def _uniform_mod_prime(count: int) -> np.ndarray:
    """``count`` values uniform in [0, PRIME) from os.urandom (rejection sampling)."""
    out = np.empty(0, dtype=np.int64)
    while out.size < count:
        words = np.frombuffer(os.urandom(4 * (count - out.size + 8)), dtype="<u4")
        kept = words[words < _REJECTION_LIMIT].astype(np.int64) % PRIME
        out = np.concatenate((out, kept))
    return out[:count]


def _blinding_values(holders: Sequence[int], threshold: int) -> np.ndarray:
    """(BLINDING_VALUES, holders) evaluations of fresh uniform polynomials of degree < t."""
    coefficients = _uniform_mod_prime(BLINDING_VALUES * threshold).reshape(
        BLINDING_VALUES, threshold
    )
    xs = np.asarray(holders, dtype=np.int64)
    values = np.zeros((BLINDING_VALUES, xs.size), dtype=np.int64)
    for degree in range(threshold - 1, -1, -1):  # Horner: products < 2^42
        values = (values * xs + coefficients[:, degree : degree + 1]) % PRIME
    return values


@dataclass(frozen=True, repr=False)
class DealtShares(SecretHolder, export="none: deal again (deal)"):
    """One holder's two plaintexts of a dealing. Secret: no repr, no pickle."""

    self_mask: bytes
    mask_key: bytes

    def __repr__(self) -> str:
        return "DealtShares(<secret>)"



def deal(
    mask_key: bytes, self_seed: bytes, holders: Sequence[int], threshold: int
) -> dict[int, DealtShares]:
    """Share ``mask_key`` and ``self_seed`` t-of-h among ``holders``: holder -> its two box
    plaintexts (module docstring). Raises the errors of :func:`secagg.shamir.share_secrets`.
    """
    shares = share_secrets([mask_key, self_seed], holders, threshold)
    blinding = _blinding_values(holders, threshold)
    dealt: dict[int, DealtShares] = {}
    for column, holder in enumerate(holders):
        key_share, self_mask_share = shares[holder]
        dealt[holder] = DealtShares(
            self_mask_plaintext(self_mask_share.values, blinding[:, column].tolist()),
            mask_key_plaintext(key_share.values),
        )
    return dealt


def self_mask_plaintext(limbs: np.ndarray, blinding: Sequence[int]) -> bytes:
    """The self-mask box plaintext: the compact share of ``limbs`` and the
    :data:`BLINDING_VALUES` blinding values, 3 bytes little-endian each. Raises
    ConfigurationError on a limb or value outside GF(PRIME) or a wrong count."""
    values = [int(value) for value in blinding]
    if len(values) != BLINDING_VALUES or any(not 0 <= v < PRIME for v in values):
        raise ConfigurationError(f"{BLINDING_VALUES} blinding values in [0, {PRIME}) needed")
    return pack_limb_shares(limbs) + b"".join(
        value.to_bytes(_BLINDING_VALUE_BYTES, "little") for value in values
    )


def mask_key_plaintext(limbs: np.ndarray) -> bytes:
    """The mask-key box plaintext: the compact share of ``limbs``."""
    return pack_limb_shares(limbs)
