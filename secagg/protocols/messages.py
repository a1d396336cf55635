"""Typed messages of the Bonawitz et al. (CCS'17) protocol and their wire encoding.

Wire format (version :data:`WIRE_VERSION`): one msgpack array
``[version, type, sender, recipient, session_id, *fields]``; byte strings travel as
msgpack ``bin``, vectors bit-packed at exactly ``bits`` bits (:mod:`secagg.packing`).
No pickle. :func:`decode_message` checks every field's type and size and raises
:class:`DecodeError` (with the claimed sender as ``party`` once the header parsed) on
anything malformed; the meaning of the ids (who is a neighbour, who survived) is checked
by the state machines, not here.

Messages never show secrets in their repr: only the type, the parties and field sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple, TypeVar

import msgpack

from secagg.errors import DecodeError
from secagg.protocols.base import (
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
    SERVER_ID,
)
from secagg.protocols.config import MAX_CLIENT_ID, MAX_VECTOR_LENGTH, SESSION_ID_BYTES

__all__ = [
    "KEY_BYTES",
    "SIGNATURE_BYTES",
    "WIRE_VERSION",
    "AdvertiseKeys",
    "AdvertiseKeysRequest",
    "ConsistencyCheck",
    "ConsistencyCheckRequest",
    "MaskedInput",
    "MaskedInputRequest",
    "PeerKeys",
    "PeerSignature",
    "ProtocolMessage",
    "RevealedShare",
    "SealedShares",
    "ShareKeys",
    "ShareKeysRequest",
    "UnmaskingRequest",
    "UnmaskingResponse",
    "advertise_signature_payload",
    "consistency_signature_payload",
    "decode_message",
    "packed_size",
]

WIRE_VERSION = 1
KEY_BYTES = 32  # X25519 public keys, SHA-256 commitments
SIGNATURE_BYTES = 64  # Ed25519
# Generous caps: a sealed share bundle or a revealed share is a few hundred bytes; the
# caps only stop a peer from making the other side allocate without bound.
MAX_CIPHERTEXT_BYTES = 4096
MAX_SHARE_BYTES = 2048


def packed_size(length: int, bits: int) -> int:
    """Bytes of ``length`` values bit-packed at ``bits`` bits (as :func:`secagg.packing.pack`)."""
    return (length * bits + 7) // 8


def advertise_signature_payload(
    session_id: bytes,
    client_id: int,
    cipher_public_key: bytes,
    mask_public_key: bytes,
    self_mask_commitment: bytes,
) -> bytes:
    """The bytes an active-mode client signs in AdvertiseKeys (domain-separated, fixed size)."""
    return b"".join(
        (
            b"secagg/v1/advertise-keys\x00",
            len(session_id).to_bytes(1, "big"),
            session_id,
            client_id.to_bytes(8, "big"),
            cipher_public_key,
            mask_public_key,
            self_mask_commitment,
        )
    )


def consistency_signature_payload(session_id: bytes, survivors: Sequence[int]) -> bytes:
    """The bytes an active-mode client signs in ConsistencyCheck: the session and the
    sorted survivor set U3 (the clients whose masked inputs the server announced)."""
    ids = sorted(survivors)
    return b"".join(
        (
            b"secagg/v1/consistency-check\x00",
            len(session_id).to_bytes(1, "big"),
            session_id,
            len(ids).to_bytes(8, "big"),
            b"".join(client.to_bytes(8, "big") for client in ids),
        )
    )


# --- field checks (shared by every decoder) ---------------------------------------------


def _fail(what: str, party: int | None) -> DecodeError:
    return DecodeError(f"malformed message: {what}", party=party)


def _check_int(value: object, low: int, high: int, what: str, party: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(f"{what} must be an int in [{low}, {high}]", party)
    return value


def _check_bytes(
    value: object, what: str, party: int | None, *, size: int | None = None, limit: int = 0
) -> bytes:
    if not isinstance(value, bytes):
        raise _fail(f"{what} must be bytes", party)
    if size is not None and len(value) != size:
        raise _fail(f"{what} must be {size} bytes, got {len(value)}", party)
    if limit and len(value) > limit:
        raise _fail(f"{what} exceeds {limit} bytes", party)
    return value


def _check_list(value: object, what: str, party: int | None, *, arity: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{what} must be an array", party)
    if arity and any(not isinstance(item, list) or len(item) != arity for item in value):
        raise _fail(f"every entry of {what} must be an array of {arity}", party)
    return value


def _check_ids(value: object, what: str, party: int | None) -> tuple[int, ...]:
    ids = tuple(
        _check_int(item, 1, MAX_CLIENT_ID, f"an id in {what}", party)
        for item in _check_list(value, what, party)
    )
    if len(set(ids)) != len(ids):
        raise _fail(f"duplicate ids in {what}", party)
    return ids


def _unique(ids: Sequence[int], what: str, party: int | None) -> None:
    if len(set(ids)) != len(ids):
        raise _fail(f"duplicate ids in {what}", party)


# --- message base -------------------------------------------------------------------------

_M = TypeVar("_M", bound="ProtocolMessage")


@dataclass(frozen=True, repr=False)
class ProtocolMessage:
    """Fields and encoding shared by every Bonawitz message (see module docstring)."""

    TYPE: ClassVar[int] = 0
    FROM_SERVER: ClassVar[bool] = True
    round_name: ClassVar[str] = ""

    sender: int
    recipient: int
    session_id: bytes

    def _wire_fields(self) -> list[Any]:
        return []

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if body:
            raise _fail(f"{cls.__name__} carries no fields", sender)
        return cls(sender, recipient, session_id)

    def to_bytes(self) -> bytes:
        """The version-1 wire encoding (msgpack array, byte strings as bin)."""
        header: list[Any] = [WIRE_VERSION, self.TYPE, self.sender, self.recipient, self.session_id]
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


# --- round 0: AdvertiseKeys --------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class AdvertiseKeysRequest(ProtocolMessage):
    """Server -> client: start the session; answer with :class:`AdvertiseKeys`."""

    TYPE: ClassVar[int] = 1
    round_name: ClassVar[str] = ROUND_ADVERTISE_KEYS


@dataclass(frozen=True, repr=False)
class AdvertiseKeys(ProtocolMessage):
    """Client -> server: its two X25519 public keys (c_u for the share channel, s_u for
    pairwise masks), a SHA-256 commitment to its self-mask seed b_u, and (active mode)
    an Ed25519 signature over :func:`advertise_signature_payload` (else empty)."""

    TYPE: ClassVar[int] = 2
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_ADVERTISE_KEYS

    cipher_public_key: bytes
    mask_public_key: bytes
    self_mask_commitment: bytes
    signature: bytes = b""

    def _wire_fields(self) -> list[Any]:
        return [
            self.cipher_public_key,
            self.mask_public_key,
            self.self_mask_commitment,
            self.signature,
        ]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 4:
            raise _fail("AdvertiseKeys needs 4 fields", sender)
        keys = [_check_bytes(v, "a key", sender, size=KEY_BYTES) for v in body[:3]]
        signature = _check_bytes(body[3], "signature", sender)
        if len(signature) not in (0, SIGNATURE_BYTES):
            raise _fail("signature must be empty or 64 bytes", sender)
        return cls(sender, recipient, session_id, *keys, signature)  # type: ignore[call-arg]

    def peer_keys(self) -> PeerKeys:
        """The advertisement as the server forwards it to the neighbours."""
        return PeerKeys(
            self.sender,
            self.cipher_public_key,
            self.mask_public_key,
            self.self_mask_commitment,
            self.signature,
        )


class PeerKeys(NamedTuple):
    """One neighbour's advertisement, forwarded by the server in ShareKeysRequest.

    The entries of messages are named tuples: n of them per message, so cheap to build.
    """

    client_id: int
    cipher_public_key: bytes
    mask_public_key: bytes
    self_mask_commitment: bytes
    signature: bytes = b""

    def to_wire(self) -> list[Any]:
        return [
            self.client_id,
            self.cipher_public_key,
            self.mask_public_key,
            self.self_mask_commitment,
            self.signature,
        ]

    @classmethod
    def from_wire(cls, item: list[Any], party: int | None) -> PeerKeys:
        client = _check_int(item[0], 1, MAX_CLIENT_ID, "peer id", party)
        keys = [_check_bytes(v, "a peer key", party, size=KEY_BYTES) for v in item[1:4]]
        signature = _check_bytes(item[4], "peer signature", party)
        if len(signature) not in (0, SIGNATURE_BYTES):
            raise _fail("peer signature must be empty or 64 bytes", party)
        return cls(client, keys[0], keys[1], keys[2], signature)


# --- round 1: ShareKeys ------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ShareKeysRequest(ProtocolMessage):
    """Server -> client u: the advertisements of u's neighbours that survived round 0."""

    TYPE: ClassVar[int] = 3
    round_name: ClassVar[str] = ROUND_SHARE_KEYS

    peers: tuple[PeerKeys, ...]

    def _wire_fields(self) -> list[Any]:
        return [[peer.to_wire() for peer in self.peers]]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("ShareKeysRequest needs 1 field", sender)
        items = _check_list(body[0], "peers", sender, arity=5)
        peers = tuple(PeerKeys.from_wire(item, sender) for item in items)
        _unique([peer.client_id for peer in peers], "peers", sender)
        return cls(sender, recipient, session_id, peers)  # type: ignore[call-arg]


class SealedShares(NamedTuple):
    """An AES-GCM sealed share bundle; ``peer`` is the recipient in ShareKeys and the
    original sender in MaskedInputRequest (the server swaps the point of view)."""

    peer: int
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedShares(peer={self.peer}, ciphertext=<{len(self.ciphertext)}>)"


def _sealed_to_wire(items: tuple[SealedShares, ...]) -> list[Any]:
    return [[item.peer, item.ciphertext] for item in items]


def _sealed_from_wire(value: object, party: int | None) -> tuple[SealedShares, ...]:
    items = _check_list(value, "sealed shares", party, arity=2)
    sealed = tuple(
        SealedShares(
            _check_int(peer, 1, MAX_CLIENT_ID, "sealed share peer", party),
            _check_bytes(ct, "ciphertext", party, limit=MAX_CIPHERTEXT_BYTES),
        )
        for peer, ct in items
    )
    _unique([item.peer for item in sealed], "sealed shares", party)
    return sealed


@dataclass(frozen=True, repr=False)
class ShareKeys(ProtocolMessage):
    """Client u -> server: one sealed share bundle per neighbour v (``peer`` = v)."""

    TYPE: ClassVar[int] = 4
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_SHARE_KEYS

    sealed_shares: tuple[SealedShares, ...]

    def _wire_fields(self) -> list[Any]:
        return [_sealed_to_wire(self.sealed_shares)]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("ShareKeys needs 1 field", sender)
        return cls(sender, recipient, session_id, _sealed_from_wire(body[0], sender))  # type: ignore[call-arg]


# --- round 2: MaskedInputCollection ------------------------------------------------------


@dataclass(frozen=True, repr=False)
class MaskedInputRequest(ProtocolMessage):
    """Server -> client v: the bundles addressed to v (``peer`` = their sender u, every
    u of U2 among v's neighbours). v masks pairwise with exactly those senders."""

    TYPE: ClassVar[int] = 5
    round_name: ClassVar[str] = ROUND_MASKED_INPUT

    sealed_shares: tuple[SealedShares, ...]

    def _wire_fields(self) -> list[Any]:
        return [_sealed_to_wire(self.sealed_shares)]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("MaskedInputRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, _sealed_from_wire(body[0], sender))  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class MaskedInput(ProtocolMessage):
    """Client -> server: y_u bit-packed at exactly ``bits`` bits (``length`` values)."""

    TYPE: ClassVar[int] = 6
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_MASKED_INPUT

    bits: int
    length: int
    payload: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.bits, self.length, self.payload]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 3:
            raise _fail("MaskedInput needs 3 fields", sender)
        bits = _check_int(body[0], 1, 64, "bits", sender)
        length = _check_int(body[1], 1, MAX_VECTOR_LENGTH, "length", sender)
        payload = _check_bytes(body[2], "payload", sender, size=packed_size(length, bits))
        return cls(sender, recipient, session_id, bits, length, payload)  # type: ignore[call-arg]


# --- round 3: ConsistencyCheck (active mode) ---------------------------------------------


@dataclass(frozen=True, repr=False)
class ConsistencyCheckRequest(ProtocolMessage):
    """Server -> client: the survivor set U3 (clients whose masked input arrived)."""

    TYPE: ClassVar[int] = 7
    round_name: ClassVar[str] = ROUND_CONSISTENCY_CHECK

    survivors: tuple[int, ...]

    def _wire_fields(self) -> list[Any]:
        return [list(self.survivors)]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("ConsistencyCheckRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, _check_ids(body[0], "survivors", sender))  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class ConsistencyCheck(ProtocolMessage):
    """Client -> server: its signature over :func:`consistency_signature_payload`."""

    TYPE: ClassVar[int] = 8
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_CONSISTENCY_CHECK

    signature: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.signature]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 1:
            raise _fail("ConsistencyCheck needs 1 field", sender)
        signature = _check_bytes(body[0], "signature", sender, size=SIGNATURE_BYTES)
        return cls(sender, recipient, session_id, signature)  # type: ignore[call-arg]


# --- round 4: Unmasking ------------------------------------------------------------------


class PeerSignature(NamedTuple):
    """A neighbour's consistency-check signature, forwarded in UnmaskingRequest."""

    client_id: int
    signature: bytes


@dataclass(frozen=True, repr=False)
class UnmaskingRequest(ProtocolMessage):
    """Server -> client u: within u's neighbourhood (u included), who survived (their
    masked input is in the sum: reveal shares of b_v) and who dropped after sharing
    (reveal shares of s_v^SK); active mode adds the neighbours' consistency signatures."""

    TYPE: ClassVar[int] = 9
    round_name: ClassVar[str] = ROUND_UNMASKING

    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    signatures: tuple[PeerSignature, ...] = ()

    def _wire_fields(self) -> list[Any]:
        return [
            list(self.survivors),
            list(self.dropped),
            [[item.client_id, item.signature] for item in self.signatures],
        ]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 3:
            raise _fail("UnmaskingRequest needs 3 fields", sender)
        survivors = _check_ids(body[0], "survivors", sender)
        dropped = _check_ids(body[1], "dropped", sender)
        signatures = tuple(
            PeerSignature(
                _check_int(client, 1, MAX_CLIENT_ID, "signer id", sender),
                _check_bytes(sig, "signature", sender, size=SIGNATURE_BYTES),
            )
            for client, sig in _check_list(body[2], "signatures", sender, arity=2)
        )
        _unique([item.client_id for item in signatures], "signatures", sender)
        return cls(sender, recipient, session_id, survivors, dropped, signatures)  # type: ignore[call-arg]


class RevealedShare(NamedTuple):
    """Holder's share of ``owner``'s secret (secagg.shamir.Share bytes). Never in a repr."""

    owner: int
    share: bytes

    def __repr__(self) -> str:
        return f"RevealedShare(owner={self.owner}, share=<{len(self.share)} bytes>)"


def _revealed_from_wire(value: object, what: str, party: int | None) -> tuple[RevealedShare, ...]:
    # One tight loop: a response holds up to n entries and the server decodes n responses.
    items = _check_list(value, what, party, arity=2)
    for owner, share in items:
        if (
            type(owner) is not int
            or not 1 <= owner <= MAX_CLIENT_ID
            or type(share) is not bytes
            or len(share) > MAX_SHARE_BYTES
        ):
            raise _fail(f"an entry of {what} is not (client id, share bytes)", party)
    revealed = tuple(map(RevealedShare._make, items))
    if len({item[0] for item in items}) != len(items):
        raise _fail(f"duplicate ids in {what}", party)
    return revealed


@dataclass(frozen=True, repr=False)
class UnmaskingResponse(ProtocolMessage):
    """Client -> server: shares of b_v for survivors, of s_v^SK for dropped neighbours,
    and the neighbours whose sealed bundle it could not open (``unreadable``)."""

    TYPE: ClassVar[int] = 10
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_UNMASKING

    self_mask_shares: tuple[RevealedShare, ...]
    key_shares: tuple[RevealedShare, ...]
    unreadable: tuple[int, ...] = ()

    def _wire_fields(self) -> list[Any]:
        return [
            [[item.owner, item.share] for item in self.self_mask_shares],
            [[item.owner, item.share] for item in self.key_shares],
            list(self.unreadable),
        ]

    @classmethod
    def _from_wire(
        cls: type[_M], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> _M:
        if len(body) != 3:
            raise _fail("UnmaskingResponse needs 3 fields", sender)
        self_mask = _revealed_from_wire(body[0], "self-mask shares", sender)
        keys = _revealed_from_wire(body[1], "key shares", sender)
        unreadable = _check_ids(body[2], "unreadable", sender)
        return cls(sender, recipient, session_id, self_mask, keys, unreadable)  # type: ignore[call-arg]


# --- decoding ----------------------------------------------------------------------------

_TYPES: dict[int, type[ProtocolMessage]] = {
    cls.TYPE: cls
    for cls in (
        AdvertiseKeysRequest,
        AdvertiseKeys,
        ShareKeysRequest,
        ShareKeys,
        MaskedInputRequest,
        MaskedInput,
        ConsistencyCheckRequest,
        ConsistencyCheck,
        UnmaskingRequest,
        UnmaskingResponse,
    )
}

_Decoder = Callable[[int, int, bytes, list[Any]], ProtocolMessage]


def decode_message(data: bytes, *, sender: int | None = None) -> ProtocolMessage:
    """Decode and structurally validate one wire message.

    ``sender``, when given, is the transport-authenticated sender: a header claiming
    another sender is refused. Guarantees: the result re-encodes to ``data``'s fields
    (same types and sizes); ids are ints in range; keys, commitments and signatures have
    their exact sizes; id lists hold no duplicates; a MaskedInput payload has exactly
    ``ceil(length * bits / 8)`` bytes.

    Raises DecodeError (``party`` = the claimed sender once known, else ``sender``) on
    anything else: not bytes, not msgpack, trailing bytes, an unknown version or type, a
    sender/recipient pair that does not fit the message's direction, a bad field.
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
    if version != WIRE_VERSION or isinstance(version, bool):
        raise DecodeError(f"unsupported wire version {version!r}", party=sender)
    party = sender
    claimed = _check_int(claimed, 0, MAX_CLIENT_ID, "sender", party)
    if sender is not None and claimed != sender:
        raise DecodeError(f"message claims sender {claimed}, transport says {sender}", party=sender)
    party = claimed
    cls = _TYPES.get(type_code) if isinstance(type_code, int) else None
    if cls is None or isinstance(type_code, bool):
        raise DecodeError(f"unknown message type {type_code!r}", party=party)
    recipient = _check_int(recipient, 0, MAX_CLIENT_ID, "recipient", party)
    from_server, to_server = claimed == SERVER_ID, recipient == SERVER_ID
    if from_server != cls.FROM_SERVER or to_server == cls.FROM_SERVER:
        raise DecodeError(f"{cls.__name__} cannot go from {claimed} to {recipient}", party=party)
    low, high = SESSION_ID_BYTES
    if not isinstance(session_id, bytes) or not low <= len(session_id) <= high:
        raise DecodeError("session id must be 16 to 64 bytes", party=party)
    decoder: _Decoder = cls._from_wire
    try:
        return decoder(claimed, recipient, session_id, decoded[5:])
    except DecodeError:
        raise
    except (TypeError, ValueError, IndexError) as exc:
        raise DecodeError(f"malformed {cls.__name__}: {exc}", party=party) from None
