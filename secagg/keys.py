"""X25519 key agreement and HKDF-SHA256 derivation of per-pair keys.

Two clients ``u`` and ``v`` agree on one raw X25519 secret and derive from it several
independent keys, one per :class:`Purpose` (the pairwise mask seed, the key that encrypts the
Shamir shares they send each other, ...). Every derived key is bound to the session id and to
the *unordered* pair ``{u, v}`` (encoded as ``(min, max)``), so both ends derive the same key
and no key can be replayed in another session, for another pair or for another purpose.

Nothing secret appears in a ``repr``: a :class:`KeyPair` shows a fingerprint of its public key.
"""

from __future__ import annotations

import enum
import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from secagg.errors import ConfigurationError, DecodeError
from secagg.secret import SecretHolder

__all__ = [
    "KEY_BYTES",
    "KeyPair",
    "Purpose",
    "agree",
    "derive_pair_key",
]

KEY_BYTES = 32
"""Length of X25519 private keys, public keys and raw shared secrets."""

_MAX_ID = 2**64 - 1
_MAX_SESSION_BYTES = 1024
# RFC 5869: HKDF-SHA256 output is limited to 255 hash blocks.
_MAX_DERIVED_BYTES = 255 * 32
_INFO_PREFIX = b"secagg/pair-key/v1"


def _check_party_id(value: object, name: str) -> int:
    # bool is an int subclass; a True/False id is always a caller bug.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_ID:
        raise ConfigurationError(f"{name} must be an int in [0, 2^64), got {value!r}")
    return value


def _check_session_id(session_id: object) -> bytes:
    if not isinstance(session_id, bytes) or not 1 <= len(session_id) <= _MAX_SESSION_BYTES:
        raise ConfigurationError(
            f"session_id must be 1..{_MAX_SESSION_BYTES} bytes, got {type(session_id).__name__}"
        )
    return session_id


class Purpose(enum.Enum):
    """What a derived pair key is for; the value is the HKDF label.

    Distinct labels make keys of different purposes independent even though they come from
    the same X25519 secret.
    """

    MASK_SEED = b"mask-seed"
    """Seed of the pairwise mask PRG s_uv."""
    SHARE_KEY = b"share-key"
    """AES-GCM key of the share bundles u and v send each other through the server."""
    CONFIRMATION = b"confirmation"
    """Key for any key-confirmation tag a protocol may add."""


class KeyPair(SecretHolder, export="KeyPair.private_bytes() / KeyPair.from_private_bytes()"):
    """An X25519 key pair.

    ``repr`` shows only a short fingerprint of the public key; the private key leaves the
    object only through an explicit :meth:`private_bytes` call (needed to Shamir-share it).
    """

    __slots__ = ("_private", "_public_bytes")

    def __init__(self, private_key: X25519PrivateKey) -> None:
        if not isinstance(private_key, X25519PrivateKey):
            raise ConfigurationError("KeyPair needs an X25519PrivateKey")
        self._private = private_key
        self._public_bytes = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh key pair from the operating system's CSPRNG (via ``cryptography``)."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes, *, party: int | None = None) -> KeyPair:
        """The key pair of a 32-byte raw private key (e.g. one reconstructed from shares).

        Raises :class:`DecodeError` (with ``party``) if ``data`` is not 32 bytes.
        """
        if not isinstance(data, bytes) or len(data) != KEY_BYTES:
            raise DecodeError("an X25519 private key must be 32 bytes", party=party)
        return cls(X25519PrivateKey.from_private_bytes(data))

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw public key (safe to publish)."""
        return self._public_bytes

    def private_bytes(self) -> bytes:
        """The 32-byte raw private key. Secret: share it, never log it."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def exchange(self, peer_public: bytes, *, party: int | None = None) -> bytes:
        """The raw 32-byte X25519 shared secret with ``peer_public``.

        Raises :class:`DecodeError` (with ``party``) if ``peer_public`` is not 32 bytes or is a
        low-order point (the shared secret would be all zero, known to anyone).
        """
        if not isinstance(peer_public, bytes) or len(peer_public) != KEY_BYTES:
            raise DecodeError("an X25519 public key must be 32 bytes", party=party)
        try:
            return self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:
            # cryptography refuses an all-zero result: the peer sent a small-order point.
            raise DecodeError("invalid X25519 public key (small order)", party=party) from exc

    def fingerprint(self) -> str:
        """First 8 bytes of SHA-256 of the public key, hex (for logs and reprs)."""
        return hashlib.sha256(self._public_bytes).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"KeyPair(public_fingerprint={self.fingerprint()})"

    __str__ = __repr__


def _pair_info(purpose: Purpose, session_id: bytes, client_a: int, client_b: int) -> bytes:
    label = purpose.value
    low, high = min(client_a, client_b), max(client_a, client_b)
    # Length prefixes make the encoding injective (no two inputs share an info string).
    return b"".join(
        (
            _INFO_PREFIX,
            struct.pack(">H", len(label)),
            label,
            struct.pack(">H", len(session_id)),
            session_id,
            struct.pack(">QQ", low, high),
        )
    )


def derive_pair_key(
    shared_secret: bytes,
    *,
    purpose: Purpose,
    session_id: bytes,
    client_a: int,
    client_b: int,
    length: int = 32,
) -> bytes:
    """HKDF-SHA256 of ``shared_secret`` for one purpose, session and unordered client pair.

    Guarantees: ``(a, b)`` and ``(b, a)`` give the same key; any change of purpose, session or
    pair gives an independent key. Raises :class:`ConfigurationError` on a secret that is not
    32 bytes, a non-:class:`Purpose`, a bad session id, ids outside [0, 2^64), equal ids, or a
    length outside 1..8160.
    """
    if not isinstance(shared_secret, bytes) or len(shared_secret) != KEY_BYTES:
        raise ConfigurationError("shared_secret must be 32 bytes")
    if not isinstance(purpose, Purpose):
        raise ConfigurationError(f"purpose must be a Purpose, got {type(purpose).__name__}")
    session_id = _check_session_id(session_id)
    client_a = _check_party_id(client_a, "client_a")
    client_b = _check_party_id(client_b, "client_b")
    if client_a == client_b:
        raise ConfigurationError("a pair key needs two distinct client ids")
    if not isinstance(length, int) or isinstance(length, bool):
        raise ConfigurationError("length must be an int")
    if not 1 <= length <= _MAX_DERIVED_BYTES:
        raise ConfigurationError(f"length must be in 1..{_MAX_DERIVED_BYTES}")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=None,
        info=_pair_info(purpose, session_id, client_a, client_b),
    )
    return hkdf.derive(shared_secret)


def agree(
    own: KeyPair,
    peer_public: bytes,
    *,
    purpose: Purpose,
    session_id: bytes,
    own_id: int,
    peer_id: int,
) -> bytes:
    """X25519 with ``peer_public`` then :func:`derive_pair_key` (32 bytes).

    Both ends (own_id, peer_id) and (peer_id, own_id) obtain the same key. Raises
    :class:`DecodeError` with ``party=peer_id`` on a bad peer key, and
    :class:`ConfigurationError` on bad local parameters.
    """
    if not isinstance(own, KeyPair):
        raise ConfigurationError("own must be a KeyPair")
    own_id = _check_party_id(own_id, "own_id")
    peer_id = _check_party_id(peer_id, "peer_id")
    shared = own.exchange(peer_public, party=peer_id)
    return derive_pair_key(
        shared,
        purpose=purpose,
        session_id=session_id,
        client_a=own_id,
        client_b=peer_id,
    )
