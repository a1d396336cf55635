"""Typed messages of the threshold-HE aggregation protocol and their wire encoding.

Same wire format and conventions as the Bonawitz messages (:mod:`secagg.protocols.messages`):
one msgpack array ``[version, type, sender, recipient, session_id, *fields]``, byte strings
as ``bin``, no pickle. Type codes 101-104 keep them apart from the Bonawitz ones. The
ciphertext payloads are opaque bytes here; the state machines decode them against the
session's key (:mod:`secagg.he`), where their sizes and values are checked.

Rounds: :data:`ROUND_ENCRYPTED_INPUT` (clients upload ciphertexts), then
:data:`ROUND_DECRYPTION` (the committee partially decrypts the aggregate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import msgpack

from secagg.errors import DecodeError
from secagg.protocols.base import SERVER_ID
from secagg.protocols.config import MAX_CLIENT_ID, SESSION_ID_BYTES
from secagg.protocols.messages import WIRE_VERSION, ProtocolMessage

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "ROUND_DECRYPTION",
    "ROUND_ENCRYPTED_INPUT",
    "THRESHOLD_HE_ROUNDS",
    "DecryptionRequest",
    "DecryptionShare",
    "EncryptedInput",
    "InputRequest",
    "decode_threshold_he_message",
]

ROUND_ENCRYPTED_INPUT = "encrypted_input"
ROUND_DECRYPTION = "decryption"
THRESHOLD_HE_ROUNDS: tuple[str, ...] = (ROUND_ENCRYPTED_INPUT, ROUND_DECRYPTION)

MAX_PAYLOAD_BYTES = 2**31
"""Upper bound on one ciphertext payload (msgpack's bin32 limit is 4 GiB)."""

_M = TypeVar("_M", bound="ProtocolMessage")


def _fail(what: str, party: int | None) -> DecodeError:
    return DecodeError(f"malformed message: {what}", party=party)


def _payload(value: object, party: int | None) -> bytes:
    if not isinstance(value, bytes) or not value or len(value) > MAX_PAYLOAD_BYTES:
        raise _fail("payload must be non-empty bytes", party)
    return value


@dataclass(frozen=True, repr=False)
class InputRequest(ProtocolMessage):
    """Server -> client: send your encrypted input."""

    TYPE: ClassVar[int] = 101
    round_name: ClassVar[str] = ROUND_ENCRYPTED_INPUT


@dataclass(frozen=True, repr=False)
class EncryptedInput(ProtocolMessage):
    """Client -> server: its input vector, encrypted under the session key (``payload``)."""

    TYPE: ClassVar[int] = 102
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_ENCRYPTED_INPUT

    payload: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.payload]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("EncryptedInput needs 1 field", sender)
        return cls(sender, recipient, session_id, _payload(body[0], sender))  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class DecryptionRequest(ProtocolMessage):
    """Server -> committee member: decrypt the aggregate of exactly ``included``."""

    TYPE: ClassVar[int] = 103
    round_name: ClassVar[str] = ROUND_DECRYPTION

    included: tuple[int, ...]
    payload: bytes

    def _wire_fields(self) -> list[Any]:
        return [list(self.included), self.payload]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 2 or not isinstance(body[0], list):
            raise _fail("DecryptionRequest needs an id list and a payload", sender)
        ids = body[0]
        for item in ids:
            if (
                not isinstance(item, int)
                or isinstance(item, bool)
                or not (1 <= item <= MAX_CLIENT_ID)
            ):
                raise _fail("included ids must be client ids", sender)
        if len(set(ids)) != len(ids):
            raise _fail("duplicate included ids", sender)
        return cls(sender, recipient, session_id, tuple(ids), _payload(body[1], sender))  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class DecryptionShare(ProtocolMessage):
    """Committee member -> server: its partial decryption with proof (threshold Paillier)
    or the decrypted aggregate (CKKS, single key), as ``payload``."""

    TYPE: ClassVar[int] = 104
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_DECRYPTION

    payload: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.payload]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("DecryptionShare needs 1 field", sender)
        return cls(sender, recipient, session_id, _payload(body[0], sender))  # type: ignore[call-arg]


_TYPES: dict[int, type[ProtocolMessage]] = {
    cls.TYPE: cls for cls in (InputRequest, EncryptedInput, DecryptionRequest, DecryptionShare)
}
_Decoder = Callable[[int, int, bytes, list[Any]], ProtocolMessage]


def decode_threshold_he_message(data: bytes, *, sender: int | None = None) -> ProtocolMessage:
    """Decode and structurally validate one threshold-HE message.

    ``sender``, when given, is the transport-authenticated sender; a header claiming another
    is refused. Raises DecodeError (``party`` = the claimed sender once known) on anything
    malformed: not msgpack, unknown version or type, a direction that does not fit the
    type, a session id outside 16..64 bytes, bad fields.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("message must be bytes", party=sender)
    try:
        decoded = msgpack.unpackb(bytes(data), raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise DecodeError(f"not a msgpack message: {type(exc).__name__}", party=sender) from None
    if not isinstance(decoded, list) or len(decoded) < 5:
        raise DecodeError("message must be an array with a 5-field header", party=sender)
    version, type_code, claimed, recipient, session_id = decoded[:5]
    if isinstance(version, bool) or version != WIRE_VERSION:
        raise DecodeError(f"unsupported wire version {version!r}", party=sender)
    for value in (claimed, recipient):
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not (0 <= value <= MAX_CLIENT_ID)
        ):
            raise DecodeError("sender and recipient must be party ids", party=sender)
    if sender is not None and claimed != sender:
        raise DecodeError(f"message claims sender {claimed}, transport says {sender}", party=sender)
    cls = (
        _TYPES.get(type_code)
        if isinstance(type_code, int) and not isinstance(type_code, bool)
        else None
    )
    if cls is None:
        raise DecodeError(f"unknown message type {type_code!r}", party=claimed)
    if (claimed == SERVER_ID) != cls.FROM_SERVER or (recipient == SERVER_ID) == cls.FROM_SERVER:
        raise DecodeError(f"{cls.__name__} cannot go from {claimed} to {recipient}", party=claimed)
    low, high = SESSION_ID_BYTES
    if not isinstance(session_id, bytes) or not low <= len(session_id) <= high:
        raise DecodeError("session id must be 16 to 64 bytes", party=claimed)
    decoder: _Decoder = cls._from_wire
    return decoder(claimed, recipient, session_id, decoded[5:])
