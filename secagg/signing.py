"""Ed25519 identities and signatures for the active-adversary mode.

In the malicious-server variant of Bonawitz et al. each client signs its advertised keys and
its consistency-check message with a long-term Ed25519 key, so a server cannot impersonate
clients (Sybil attack) or show different clients different views of who is alive.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from secagg.errors import AuthenticationError, ConfigurationError, DecodeError
from secagg.secret import SecretHolder

__all__ = ["SIGNATURE_BYTES", "VERIFY_KEY_BYTES", "SigningKey", "verify_signature"]

VERIFY_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_PRIVATE_BYTES = 32


class SigningKey(
    SecretHolder, export="SigningKey.private_bytes() / SigningKey.from_private_bytes()"
):
    """An Ed25519 signing key. ``repr`` shows only a fingerprint of the verify key."""

    __slots__ = ("_private", "_verify_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ConfigurationError("SigningKey needs an Ed25519PrivateKey")
        self._private = private_key
        self._verify_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from the operating system's CSPRNG (via ``cryptography``)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> SigningKey:
        """The key of a 32-byte raw Ed25519 seed. Raises :class:`DecodeError` otherwise."""
        if not isinstance(data, bytes) or len(data) != _PRIVATE_BYTES:
            raise DecodeError("an Ed25519 private key must be 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(data))

    @property
    def verify_key(self) -> bytes:
        """The 32-byte raw public verify key."""
        return self._verify_key

    def private_bytes(self) -> bytes:
        """The 32-byte raw private seed. Secret: store it, never log it."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, message: bytes) -> bytes:
        """A 64-byte deterministic Ed25519 signature of ``message``."""
        if not isinstance(message, bytes):
            raise ConfigurationError("message must be bytes")
        return self._private.sign(message)

    def fingerprint(self) -> str:
        """First 8 bytes of SHA-256 of the verify key, hex."""
        return hashlib.sha256(self._verify_key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SigningKey(verify_fingerprint={self.fingerprint()})"

    __str__ = __repr__


def verify_signature(
    verify_key: bytes, message: bytes, signature: bytes, *, party: int | None = None
) -> None:
    """Return if ``signature`` is a valid Ed25519 signature of ``message`` under ``verify_key``.

    Raises :class:`DecodeError` (with ``party``) if ``verify_key`` is not a well-formed 32-byte
    key or an argument is not bytes, and :class:`AuthenticationError` (with ``party``) if the
    signature does not verify (including a wrong length).
    """
    if not isinstance(verify_key, bytes) or len(verify_key) != VERIFY_KEY_BYTES:
        raise DecodeError("an Ed25519 verify key must be 32 bytes", party=party)
    if not isinstance(message, bytes) or not isinstance(signature, bytes):
        raise DecodeError("message and signature must be bytes", party=party)
    try:
        public = Ed25519PublicKey.from_public_bytes(verify_key)
    except ValueError as exc:
        raise DecodeError("malformed Ed25519 verify key", party=party) from exc
    if len(signature) != SIGNATURE_BYTES:
        raise AuthenticationError("Ed25519 signature must be 64 bytes", party=party)
    try:
        public.verify(signature, message)
    except InvalidSignature as exc:
        raise AuthenticationError("signature does not verify", party=party) from exc
