"""The wire conventions shared by every sans-I/O protocol of :mod:`secagg.protocols`.

One message is one msgpack array ``[version, type, sender, recipient, session_id,
*fields]``; byte strings travel as msgpack ``bin``; no pickle. Each family versions its own
messages (``ProtocolMessage.VERSION``, default :data:`WIRE_VERSION`) and decodes with that
version, so a change of one family's wire leaves the others' bytes alone. A protocol
subclasses :class:`ProtocolMessage` (a frozen dataclass with a type
code, a direction and a round name), writes ``_wire_fields``/``_from_wire`` with the field
checks below, and decodes with :func:`decode_wire` over its own table of type codes. Every
check raises :class:`DecodeError` naming the claimed sender once the header parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import msgpack

from secagg.errors import DecodeError
from secagg.protocols.base import SERVER_ID
from secagg.protocols.limits import MAX_CLIENT_ID, SESSION_ID_BYTES

__all__ = [
    "WIRE_VERSION",
    "MessageT",
    "ProtocolMessage",
    "check_bytes",
    "check_ids",
    "check_int",
    "check_list",
    "check_route",
    "check_unique",
    "decode_wire",
    "malformed",
    "shown",
    "unpack_message",
]

WIRE_VERSION = 2
"""The default message version (the threshold-HE family's). Version 2: Bonawitz share
bundles and revealed shares carried compact shares; the Bonawitz family has since moved on
(its ``VERSION``, :mod:`secagg.protocols.bonawitz.messages`)."""

# --- field checks (shared by every decoder) ---------------------------------------------


_MAX_DETAIL = 80


def shown(value: object) -> str:
    """A peer-chosen value as it may appear in an error: short ints as themselves, anything
    else as its type and size (error texts end up in results and logs: never echo a peer's
    bytes whole)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**64:
        return str(value)
    if isinstance(value, (bytes, str, list, dict)):
        return f"<{type(value).__name__} of {len(value)}>"
    return f"<{type(value).__name__}>"


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."


def malformed(what: str, party: int | None) -> DecodeError:
    return DecodeError(f"malformed message: {what}", party=party)


def check_int(value: object, low: int, high: int, what: str, party: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise malformed(f"{what} must be an int in [{low}, {high}]", party)
    return value


def check_bytes(
    value: object, what: str, party: int | None, *, size: int | None = None, limit: int = 0
) -> bytes:
    if not isinstance(value, bytes):
        raise malformed(f"{what} must be bytes", party)
    if size is not None and len(value) != size:
        raise malformed(f"{what} must be {size} bytes, got {len(value)}", party)
    if limit and len(value) > limit:
        raise malformed(f"{what} exceeds {limit} bytes", party)
    return value


def check_list(value: object, what: str, party: int | None, *, arity: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise malformed(f"{what} must be an array", party)
    if arity and any(not isinstance(item, list) or len(item) != arity for item in value):
        raise malformed(f"every entry of {what} must be an array of {arity}", party)
    return value


def check_ids(value: object, what: str, party: int | None) -> tuple[int, ...]:
    ids = tuple(
        check_int(item, 1, MAX_CLIENT_ID, f"an id in {what}", party)
        for item in check_list(value, what, party)
    )
    if len(set(ids)) != len(ids):
        raise malformed(f"duplicate ids in {what}", party)
    return ids


def check_unique(ids: Sequence[int], what: str, party: int | None) -> None:
    if len(set(ids)) != len(ids):
        raise malformed(f"duplicate ids in {what}", party)


# --- message base -------------------------------------------------------------------------

MessageT = TypeVar("MessageT", bound="ProtocolMessage")
"""The type of ``cls`` in a ``_from_wire`` classmethod."""


@dataclass(frozen=True, repr=False)
class ProtocolMessage:
    """Fields and encoding shared by every Bonawitz message (see module docstring)."""

    TYPE: ClassVar[int] = 0
    VERSION: ClassVar[int] = WIRE_VERSION
    FROM_SERVER: ClassVar[bool] = True
    round_name: ClassVar[str] = ""

    sender: int
    recipient: int
    session_id: bytes

    def _wire_fields(self) -> list[Any]:
        return []

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if body:
            raise malformed(f"{cls.__name__} carries no fields", sender)
        return cls(sender, recipient, session_id)

    def to_bytes(self) -> bytes:
        """The versioned wire encoding (msgpack array, byte strings as bin)."""
        header: list[Any] = [self.VERSION, self.TYPE, self.sender, self.recipient, self.session_id]
        packed: bytes = msgpack.packb(header + self._wire_fields(), use_bin_type=True)
        return packed

    def __repr__(self) -> str:
        parts = [f"sender={self.sender}", f"recipient={self.recipient}"]
        for item in fields(self)[3:]:
            value = getattr(self, item.name)
            if isinstance(value, (bytes, tuple)):
                parts.append(f"{item.name}=<{len(value)}>")
            else:
                parts.append(f"{item.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


_Decoder = Callable[[int, int, bytes, list[Any]], ProtocolMessage]


def unpack_message(data: object, sender: int | None) -> list[Any]:
    """The msgpack array of one message, header not yet checked (at least 5 items).

    Raises DecodeError (``party`` = ``sender``) when ``data`` is not bytes, not msgpack
    (with trailing bytes), or not an array with a 5-field header.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("message must be bytes", party=sender)
    try:
        decoded = msgpack.unpackb(bytes(data), raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise DecodeError(f"not a msgpack message: {type(exc).__name__}", party=sender) from None
    if not isinstance(decoded, list) or len(decoded) < 5:
        raise DecodeError("message must be an array with a 5-field header", party=sender)
    return decoded


def check_route(
    cls: type[ProtocolMessage], claimed: int, recipient: int, session_id: object
) -> None:
    """Check that ``cls`` may go from ``claimed`` to ``recipient`` (server to client or
    client to server, as its ``FROM_SERVER`` says) and that the session id is 16 to 64
    bytes. Raises DecodeError (``party`` = ``claimed``) otherwise."""
    from_server, to_server = claimed == SERVER_ID, recipient == SERVER_ID
    if from_server != cls.FROM_SERVER or to_server == cls.FROM_SERVER:
        raise DecodeError(f"{cls.__name__} cannot go from {claimed} to {recipient}", party=claimed)
    low, high = SESSION_ID_BYTES
    if not isinstance(session_id, bytes) or not low <= len(session_id) <= high:
        raise DecodeError("session id must be 16 to 64 bytes", party=claimed)


def decode_wire(
    data: bytes,
    types: Mapping[int, type[ProtocolMessage]],
    *,
    sender: int | None = None,
    version: int = WIRE_VERSION,
) -> ProtocolMessage:
    """Decode one message of wire ``version`` whose type code is in ``types``; check its
    header and fields.

    ``sender``, when given, is the transport-authenticated sender: a header claiming
    another sender is refused. Raises DecodeError (``party`` = the claimed sender once
    known, else ``sender``) on anything malformed: not bytes, not msgpack, trailing bytes,
    an unknown version or type, a sender/recipient pair that does not fit the message's
    direction, a session id outside 16..64 bytes, a bad field. Error texts never echo a
    peer's field whole (:func:`shown`): they stay under a few hundred characters.
    """
    decoded = unpack_message(data, sender)
    type_code, claimed, recipient, session_id = decoded[1:5]
    claimed_version = decoded[0]
    # exact: not True, not 2.0
    if type(claimed_version) is not int or claimed_version != version:
        raise DecodeError(f"unsupported wire version {shown(claimed_version)}", party=sender)
    party = sender
    claimed = check_int(claimed, 0, MAX_CLIENT_ID, "sender", party)
    if sender is not None and claimed != sender:
        raise DecodeError(f"message claims sender {claimed}, transport says {sender}", party=sender)
    party = claimed
    cls = types.get(type_code) if isinstance(type_code, int) else None
    if cls is None or isinstance(type_code, bool):
        raise DecodeError(f"unknown message type {shown(type_code)}", party=party)
    recipient = check_int(recipient, 0, MAX_CLIENT_ID, "recipient", party)
    check_route(cls, claimed, recipient, session_id)
    decoder: _Decoder = cls._from_wire
    try:
        return decoder(claimed, recipient, session_id, decoded[5:])
    except DecodeError:
        raise
    except (TypeError, ValueError, IndexError) as exc:
        raise DecodeError(f"malformed {cls.__name__}: {_bounded(str(exc))}", party=party) from None
