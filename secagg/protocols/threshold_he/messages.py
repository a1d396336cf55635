"""Typed messages of the threshold-HE aggregation protocol and their wire encoding.

Same wire format and conventions as the Bonawitz messages
(:mod:`secagg.protocols.bonawitz.messages`): one msgpack array
``[version, type, sender, recipient, session_id, *fields]``, byte strings
as ``bin``, no pickle. Type codes 101-104 keep them apart from the Bonawitz ones. The
ciphertext payloads are opaque bytes here; the state machines decode them against the
session's key (:mod:`secagg.he`), where their sizes and values are checked.

Decoding goes through the one wire decoder of every family,
:func:`secagg.protocols.wire.decode_wire`, with this module's table of type codes: header
checks, refusal texts and their bounds are the same as for the Bonawitz messages (a peer's
value reaches an error text only through :func:`secagg.protocols.wire.shown`). Fields are
checked with exact types: a bool never passes as an int. This module imports no HE backend.

Rounds: :data:`ROUND_ENCRYPTED_INPUT` (clients upload ciphertexts), then
:data:`ROUND_DECRYPTION` (the committee partially decrypts the aggregate); which party
takes which message in which state is the table of
:mod:`secagg.protocols.threshold_he.rounds`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from secagg.protocols.wire import (
    ProtocolMessage,
    check_ids,
    check_int,
    check_list,
    decode_wire,
    malformed,
)

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "MAX_BLOCKS",
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
MAX_BLOCKS = 256
"""Upper bound on a decryption request's block count: one block per committee member, at
most ``secagg.he.threshold_paillier.MAX_HOLDERS`` (not imported: this module stays light)."""


def _payload(value: object, party: int | None) -> bytes:
    if not isinstance(value, bytes) or not value or len(value) > MAX_PAYLOAD_BYTES:
        raise malformed("payload must be non-empty bytes", party)
    return value


@dataclass(frozen=True, repr=False)
class InputRequest(ProtocolMessage):
    """Server -> client: send your encrypted input."""

    TYPE: ClassVar[int] = 101
    round_name: ClassVar[str] = ROUND_ENCRYPTED_INPUT


@dataclass(frozen=True, repr=False)
class _PayloadMessage(ProtocolMessage):
    """A message whose one field is an opaque ciphertext ``payload`` (EncryptedInput,
    DecryptionShare)."""

    payload: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.payload]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed(f"{cls.__name__} needs 1 field", sender)
        return cls(sender, recipient, session_id, _payload(body[0], sender))


@dataclass(frozen=True, repr=False)
class EncryptedInput(_PayloadMessage):
    """Client -> server: its input vector, encrypted under the session key (``payload``)."""

    TYPE: ClassVar[int] = 102
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_ENCRYPTED_INPUT


@dataclass(frozen=True, repr=False)
class DecryptionRequest(ProtocolMessage):
    """Server -> committee member: decrypt the aggregate of exactly ``included``.

    ``payload`` is always the whole aggregate (the member checks its summand count).
    ``block_count`` cuts its ciphertexts into that many contiguous blocks of sizes differing
    by at most one (:func:`secagg.protocols.threshold_he.blocks.block_bounds`); the member
    decrypts exactly the sorted ``blocks``. Full mode is ``block_count = 1, blocks = (0,)``
    and travels in the original two-field form; balanced requests carry two more fields
    ``[blocks, block_count]`` (same wire version: a peer that does not know them refuses
    the message as malformed instead of decrypting the wrong ciphertexts).
    """

    TYPE: ClassVar[int] = 103
    round_name: ClassVar[str] = ROUND_DECRYPTION

    included: tuple[int, ...]
    payload: bytes
    blocks: tuple[int, ...] = (0,)
    block_count: int = 1

    def _wire_fields(self) -> list[Any]:
        fields: list[Any] = [list(self.included), self.payload]
        if self.block_count != 1:
            fields += [list(self.blocks), self.block_count]
        return fields

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) not in (2, 4) or not isinstance(body[0], list):
            raise malformed("DecryptionRequest needs an id list and a payload", sender)
        ids = check_ids(body[0], "included", sender)
        blocks, count = ((0,), 1) if len(body) == 2 else _blocks(body[2], body[3], sender)
        payload = _payload(body[1], sender)
        return cls(sender, recipient, session_id, ids, payload, blocks, count)


def _blocks(blocks: object, count: object, party: int) -> tuple[tuple[int, ...], int]:
    """A balanced request's (blocks, block_count): 2 <= count <= MAX_BLOCKS (one block per
    committee member), blocks a non-empty strictly increasing list of ints in [0, count)."""
    count = check_int(count, 2, MAX_BLOCKS, "block count", party)
    items = check_list(blocks, "blocks", party)
    if not items or len(items) > count:
        raise malformed("blocks must list 1 to block_count blocks", party)
    values = tuple(check_int(item, 0, count - 1, "a block index", party) for item in items)
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise malformed("blocks must be sorted and unique", party)
    return values, count


@dataclass(frozen=True, repr=False)
class DecryptionShare(_PayloadMessage):
    """Committee member -> server: its partial decryption with proof (threshold Paillier)
    or the decrypted aggregate (CKKS, single key), as ``payload``."""

    TYPE: ClassVar[int] = 104
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_DECRYPTION


_TYPES: dict[int, type[ProtocolMessage]] = {
    cls.TYPE: cls for cls in (InputRequest, EncryptedInput, DecryptionRequest, DecryptionShare)
}


def decode_threshold_he_message(data: bytes, *, sender: int | None = None) -> ProtocolMessage:
    """Decode and structurally validate one threshold-HE message.

    ``sender``, when given, is the transport-authenticated sender; a header claiming another
    is refused. Raises DecodeError (``party`` = the claimed sender once known) on anything
    malformed: not msgpack, unknown version or type, a direction that does not fit the
    type, a session id outside 16..64 bytes, bad fields. Its text stays short whatever the
    peer sent (:func:`secagg.protocols.wire.decode_wire`).
    """
    return decode_wire(data, _TYPES, sender=sender)
