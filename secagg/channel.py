"""AES-GCM authenticated encryption of the share bundles clients send each other.

In Bonawitz et al. the server relays client-to-client ciphertexts, so a ciphertext must be
useless anywhere but where it was meant to go: the associated data binds a format version,
the session id, the sender and the recipient. A server that redirects, replays across
sessions, truncates or flips any bit gets :class:`AuthenticationError` naming the sender.

Wire format: ``nonce (12 random bytes) || ciphertext || tag (16 bytes)``. The nonce is random
(96 bits); a share key is used for a handful of messages per session, far below the 2^32
messages per key at which random GCM nonces start to risk a collision.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secagg.errors import AuthenticationError, ConfigurationError, DecodeError

__all__ = ["CHANNEL_VERSION", "NONCE_BYTES", "OVERHEAD_BYTES", "TAG_BYTES", "open_sealed", "seal"]

CHANNEL_VERSION = 1
"""Format version, bound into the associated data."""
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES
"""Bytes a sealed box adds to its plaintext."""

_AD_PREFIX = b"secagg/channel"
_MAX_ID = 2**64 - 1
_MAX_SESSION_BYTES = 1024


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) not in (16, 24, 32):
        raise ConfigurationError("an AES-GCM key must be 16, 24 or 32 bytes")
    return key


def _check_id(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_ID:
        raise ConfigurationError(f"{name} must be an int in [0, 2^64), got {value!r}")
    return value


def _associated_data(session_id: object, sender: object, recipient: object) -> bytes:
    if not isinstance(session_id, bytes) or not 1 <= len(session_id) <= _MAX_SESSION_BYTES:
        raise ConfigurationError(f"session_id must be 1..{_MAX_SESSION_BYTES} bytes")
    sender_id = _check_id(sender, "sender")
    recipient_id = _check_id(recipient, "recipient")
    return b"".join(
        (
            _AD_PREFIX,
            bytes((CHANNEL_VERSION,)),
            struct.pack(">H", len(session_id)),
            session_id,
            struct.pack(">QQ", sender_id, recipient_id),
        )
    )


def seal(key: bytes, plaintext: bytes, *, session_id: bytes, sender: int, recipient: int) -> bytes:
    """Encrypt and authenticate ``plaintext`` from ``sender`` to ``recipient``.

    Returns ``nonce || ciphertext || tag`` (``len(plaintext) + 28`` bytes). Raises
    :class:`ConfigurationError` on a bad key, session id or party id.
    """
    aead = AESGCM(_check_key(key))
    if not isinstance(plaintext, bytes):
        raise ConfigurationError("plaintext must be bytes")
    associated = _associated_data(session_id, sender, recipient)
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, associated)


def open_sealed(
    key: bytes, sealed: bytes, *, session_id: bytes, sender: int, recipient: int
) -> bytes:
    """Decrypt a box made by :func:`seal` with the same key, session, sender and recipient.

    Raises :class:`AuthenticationError` (``party=sender``) if the box is too short, any bit
    was changed, or the key, session, sender or recipient differ; :class:`DecodeError`
    (``party=sender``) if ``sealed`` is not bytes; :class:`ConfigurationError` on bad local
    parameters.
    """
    aead = AESGCM(_check_key(key))
    associated = _associated_data(session_id, sender, recipient)
    if not isinstance(sealed, bytes):
        raise DecodeError("a sealed box must be bytes", party=sender)
    if len(sealed) < OVERHEAD_BYTES:
        raise AuthenticationError("sealed box too short", party=sender)
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except InvalidTag as exc:
        raise AuthenticationError("sealed box failed authentication", party=sender) from exc
