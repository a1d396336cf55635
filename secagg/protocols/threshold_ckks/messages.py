"""Typed messages of the threshold-CKKS aggregation protocol and their wire encoding.

Same wire format and conventions as the other families (:mod:`secagg.protocols.wire`):
one msgpack array ``[version, type, sender, recipient, session_id, *fields]``, byte
strings as ``bin``, no pickle, decoded by the one wire decoder
:func:`secagg.protocols.wire.decode_wire` with this module's table of type codes (201 to
210, apart from the Bonawitz and threshold-HE ones). Fields are checked with exact types
and bounded sizes; the scheme's records inside them (public key shares, keys, ciphertexts,
shares: :mod:`secagg.he.threshold_ckks`) are opaque bytes here, decoded and checked
against the session's parameters by the state machines. This module imports no HE code.

Rounds, in order (the table of :mod:`secagg.protocols.threshold_ckks.rounds` says who
takes what when):

1. :data:`ROUND_KEY_ADVERTISE`: the server asks the committee for their X25519 keys;
2. :data:`ROUND_KEY_DEAL`: each member gets its peers' keys and answers with its public
   key share and one sealed key-share delivery per peer (AES-GCM, :mod:`secagg.channel`);
3. :data:`ROUND_KEY_CHECK`: each member gets the boxes addressed to it and answers with
   the dealers whose box it could not open (complaints);
4. :data:`ROUND_ENCRYPTED_INPUT`: every client gets the collective public key and uploads
   its encrypted input;
5. :data:`ROUND_DECRYPTION`: the key holders get the aggregate's mask and answer with their
   decryption shares.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from secagg.keys import KEY_BYTES
from secagg.protocols.limits import MAX_CLIENT_ID
from secagg.protocols.wire import (
    ProtocolMessage,
    check_bytes,
    check_ids,
    check_int,
    check_list,
    decode_wire,
    malformed,
)

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "MAX_BOX_BYTES",
    "MAX_MEMBERS",
    "MAX_PAYLOAD_BYTES",
    "ROUND_DECRYPTION",
    "ROUND_ENCRYPTED_INPUT",
    "ROUND_KEY_ADVERTISE",
    "ROUND_KEY_CHECK",
    "ROUND_KEY_DEAL",
    "THRESHOLD_CKKS_ROUNDS",
    "DecryptionRequest",
    "DecryptionShare",
    "EncryptedInput",
    "InputRequest",
    "KeyAdvertise",
    "KeyAdvertiseRequest",
    "KeyCheck",
    "KeyCheckRequest",
    "KeyDeal",
    "KeyDealRequest",
    "PeerKey",
    "Sealed",
    "decode_threshold_ckks_message",
]

ROUND_KEY_ADVERTISE = "key_advertise"
ROUND_KEY_DEAL = "key_deal"
ROUND_KEY_CHECK = "key_check"
ROUND_ENCRYPTED_INPUT = "encrypted_input"
ROUND_DECRYPTION = "decryption"
THRESHOLD_CKKS_ROUNDS: tuple[str, ...] = (
    ROUND_KEY_ADVERTISE,
    ROUND_KEY_DEAL,
    ROUND_KEY_CHECK,
    ROUND_ENCRYPTED_INPUT,
    ROUND_DECRYPTION,
)

MAX_PAYLOAD_BYTES = 2**31
"""Upper bound on one record (key, ciphertext, share) inside a message."""
MAX_BOX_BYTES = 1 << 24
"""Upper bound on one sealed key-share delivery (a polynomial of at most 2^15 x 64 limbs
of 4 bytes would be 8 MiB; real ones are a few hundred KiB)."""
MAX_MEMBERS = 256
"""The most entries of a peer or box list: the scheme's largest committee
(``secagg.he.threshold_ckks.MAX_COMMITTEE``, not imported: this module stays light)."""


def _record(value: object, what: str, party: int | None) -> bytes:
    if not isinstance(value, bytes) or not value or len(value) > MAX_PAYLOAD_BYTES:
        raise malformed(f"{what} must be non-empty bytes", party)
    return value


def _entries(value: object, what: str, party: int | None) -> list[Any]:
    items = check_list(value, what, party, arity=2)
    if len(items) > MAX_MEMBERS:
        raise malformed(f"{what} has more than {MAX_MEMBERS} entries", party)
    ids = [check_int(item[0], 1, MAX_CLIENT_ID, f"an id in {what}", party) for item in items]
    if any(b <= a for a, b in itertools.pairwise(ids)):
        raise malformed(f"{what} must be sorted by id, without repeats", party)
    return items


class PeerKey(NamedTuple):
    """A committee member's X25519 public key, as the server forwards it (KeyDealRequest)."""

    member: int
    cipher_public_key: bytes

    def to_wire(self) -> list[Any]:
        return [self.member, self.cipher_public_key]


class Sealed(NamedTuple):
    """One sealed key-share delivery: ``peer`` is its recipient in a KeyDeal and its sender
    (the dealer) in a KeyCheckRequest; ``box`` is the AES-GCM box (:mod:`secagg.channel`)."""

    peer: int
    box: bytes

    def to_wire(self) -> list[Any]:
        return [self.peer, self.box]


def _peer_keys(value: object, party: int | None) -> tuple[PeerKey, ...]:
    return tuple(
        PeerKey(item[0], check_bytes(item[1], "a peer key", party, size=KEY_BYTES))
        for item in _entries(value, "peers", party)
    )


def _sealed(value: object, party: int | None) -> tuple[Sealed, ...]:
    out = []
    for item in _entries(value, "boxes", party):
        box = check_bytes(item[1], "a sealed box", party, limit=MAX_BOX_BYTES)
        if not box:
            raise malformed("a sealed box must not be empty", party)
        out.append(Sealed(item[0], box))
    return tuple(out)


@dataclass(frozen=True, repr=False)
class KeyAdvertiseRequest(ProtocolMessage):
    """Server -> committee member: send your X25519 public key for this session."""

    TYPE: ClassVar[int] = 201
    round_name: ClassVar[str] = ROUND_KEY_ADVERTISE


@dataclass(frozen=True, repr=False)
class KeyAdvertise(ProtocolMessage):
    """Member -> server: its fresh X25519 public key (the sealing key of this session)."""

    TYPE: ClassVar[int] = 202
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_KEY_ADVERTISE

    cipher_public_key: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.cipher_public_key]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("KeyAdvertise needs 1 field", sender)
        key = check_bytes(body[0], "the public key", sender, size=KEY_BYTES)
        return cls(sender, recipient, session_id, key)


@dataclass(frozen=True, repr=False)
class KeyDealRequest(ProtocolMessage):
    """Server -> member: the other members that advertised, with their keys (sorted by id):
    deal your key shares to exactly these."""

    TYPE: ClassVar[int] = 203
    round_name: ClassVar[str] = ROUND_KEY_DEAL

    peers: tuple[PeerKey, ...]

    def _wire_fields(self) -> list[Any]:
        return [[peer.to_wire() for peer in self.peers]]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("KeyDealRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, _peer_keys(body[0], sender))


@dataclass(frozen=True, repr=False)
class KeyDeal(ProtocolMessage):
    """Member -> server: its public key share (a ``PublicKeyShare`` record) and one sealed
    ``KeyShareDelivery`` per peer of its KeyDealRequest (sorted by recipient)."""

    TYPE: ClassVar[int] = 204
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_KEY_DEAL

    public_key_share: bytes
    boxes: tuple[Sealed, ...]

    def _wire_fields(self) -> list[Any]:
        return [self.public_key_share, [box.to_wire() for box in self.boxes]]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 2:
            raise malformed("KeyDeal needs 2 fields", sender)
        share = _record(body[0], "the public key share", sender)
        return cls(sender, recipient, session_id, share, _sealed(body[1], sender))


@dataclass(frozen=True, repr=False)
class KeyCheckRequest(ProtocolMessage):
    """Server -> member: the sealed deliveries addressed to it, one per dealer (sorted by
    dealer id)."""

    TYPE: ClassVar[int] = 205
    round_name: ClassVar[str] = ROUND_KEY_CHECK

    boxes: tuple[Sealed, ...]

    def _wire_fields(self) -> list[Any]:
        return [[box.to_wire() for box in self.boxes]]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("KeyCheckRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, _sealed(body[0], sender))


@dataclass(frozen=True, repr=False)
class KeyCheck(ProtocolMessage):
    """Member -> server: the dealers whose delivery it could not open or decode (sorted);
    empty when every box was good."""

    TYPE: ClassVar[int] = 206
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_KEY_CHECK

    complaints: tuple[int, ...]

    def _wire_fields(self) -> list[Any]:
        return [list(self.complaints)]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("KeyCheck needs 1 field", sender)
        ids = check_ids(body[0], "complaints", sender)
        if len(ids) > MAX_MEMBERS or list(ids) != sorted(ids):
            raise malformed("complaints must be sorted member ids", sender)
        return cls(sender, recipient, session_id, ids)


@dataclass(frozen=True, repr=False)
class InputRequest(ProtocolMessage):
    """Server -> client: the collective public key (a ``PublicKey`` record naming its
    contributors); encrypt your input under it."""

    TYPE: ClassVar[int] = 207
    round_name: ClassVar[str] = ROUND_ENCRYPTED_INPUT

    public_key: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.public_key]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("InputRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, _record(body[0], "the public key", sender))


@dataclass(frozen=True, repr=False)
class EncryptedInput(ProtocolMessage):
    """Client -> server: its input, encrypted (a ``Ciphertext`` record of one summand)."""

    TYPE: ClassVar[int] = 208
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_ENCRYPTED_INPUT

    ciphertext: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.ciphertext]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("EncryptedInput needs 1 field", sender)
        return cls(sender, recipient, session_id, _record(body[0], "the ciphertext", sender))


@dataclass(frozen=True, repr=False)
class DecryptionRequest(ProtocolMessage):
    """Server -> key holder: decrypt the aggregate of exactly ``included`` (sorted ids);
    ``mask`` is its ``CiphertextMask`` record (the summand count inside must equal
    ``len(included)``)."""

    TYPE: ClassVar[int] = 209
    round_name: ClassVar[str] = ROUND_DECRYPTION

    included: tuple[int, ...]
    mask: bytes

    def _wire_fields(self) -> list[Any]:
        return [list(self.included), self.mask]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 2:
            raise malformed("DecryptionRequest needs 2 fields", sender)
        included = check_ids(body[0], "included", sender)
        if list(included) != sorted(included):
            raise malformed("included must be sorted", sender)
        mask = _record(body[1], "the aggregate mask", sender)
        return cls(sender, recipient, session_id, included, mask)


@dataclass(frozen=True, repr=False)
class DecryptionShare(ProtocolMessage):
    """Key holder -> server: its decryption share of the aggregate (a ``DecryptionShare``
    record)."""

    TYPE: ClassVar[int] = 210
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_DECRYPTION

    share: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.share]

    @classmethod
    def _from_wire(cls, sender: int, recipient: int, session_id: bytes, body: list[Any]) -> Self:
        if len(body) != 1:
            raise malformed("DecryptionShare needs 1 field", sender)
        return cls(sender, recipient, session_id, _record(body[0], "the share", sender))


_TYPES: dict[int, type[ProtocolMessage]] = {
    cls.TYPE: cls
    for cls in (
        KeyAdvertiseRequest,
        KeyAdvertise,
        KeyDealRequest,
        KeyDeal,
        KeyCheckRequest,
        KeyCheck,
        InputRequest,
        EncryptedInput,
        DecryptionRequest,
        DecryptionShare,
    )
}


def decode_threshold_ckks_message(data: bytes, *, sender: int | None = None) -> ProtocolMessage:
    """Decode and structurally validate one threshold-CKKS message.

    ``sender``, when given, is the transport-authenticated sender; a header claiming another
    is refused. Raises DecodeError (``party`` = the claimed sender once known) on anything
    malformed: not msgpack, unknown version or type, a direction that does not fit the
    type, a session id outside 16..64 bytes, bad fields (a public key that is not 32 bytes,
    an unsorted or repeated id list, an empty or oversized record or box). Its text stays
    short whatever the peer sent (:func:`secagg.protocols.wire.decode_wire`).
    """
    return decode_wire(data, _TYPES, sender=sender)
