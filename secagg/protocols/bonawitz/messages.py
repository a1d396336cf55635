"""Typed messages of the Bonawitz et al. (CCS'17) protocol and their wire encoding.

Role: both sides, every round (0-4): what travels, and the round names.

Wire format: the conventions of :mod:`secagg.protocols.wire` (one versioned msgpack array
per message, byte strings as ``bin``, no pickle), with vectors bit-packed at exactly
``bits`` bits (:mod:`secagg.packing`, sized by :func:`secagg.ring.packed_size`).
:func:`decode_message` checks every field's type and size and raises :class:`DecodeError`
(with the claimed sender as ``party`` once the header parsed) on anything malformed; the
meaning of the ids (who is a neighbour, who survived) is checked by the state machines,
not here.

Messages never show secrets in their repr: only the type, the parties and field sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from secagg.channel import OVERHEAD_BYTES
from secagg.protocols.bonawitz.bundles import MAX_BUNDLE_BYTES
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH
from secagg.protocols.wire import (
    WIRE_VERSION,
    MessageT,
    ProtocolMessage,
    check_bytes,
    check_ids,
    check_int,
    check_list,
    check_unique,
    decode_wire,
    malformed,
)
from secagg.ring import MAX_BITS, packed_size

__all__ = [
    "KEY_BYTES",
    "MAX_CIPHERTEXT_BYTES",
    "MAX_SHARE_BYTES",
    "ROUND_ADVERTISE_KEYS",
    "ROUND_CONSISTENCY_CHECK",
    "ROUND_MASKED_INPUT",
    "ROUND_NAMES",
    "ROUND_SHARE_KEYS",
    "ROUND_UNMASKING",
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
]

# Round names of Bonawitz et al. (CCS'17), in protocol order. A transport (the simulator's
# dropout schedule) names rounds with these strings; ``Message.round_name`` tells which round
# a message belongs to.
ROUND_ADVERTISE_KEYS = "advertise_keys"
ROUND_SHARE_KEYS = "share_keys"
ROUND_MASKED_INPUT = "masked_input"
ROUND_CONSISTENCY_CHECK = "consistency_check"
ROUND_UNMASKING = "unmasking"
ROUND_NAMES: tuple[str, ...] = (
    ROUND_ADVERTISE_KEYS,
    ROUND_SHARE_KEYS,
    ROUND_MASKED_INPUT,
    ROUND_CONSISTENCY_CHECK,
    ROUND_UNMASKING,
)

KEY_BYTES = 32  # X25519 public keys, SHA-256 commitments
SIGNATURE_BYTES = 64  # Ed25519
# The server keeps one sealed bundle per (client, neighbour) pair until round 2: its cap is
# the honest bundle (MAX_BUNDLE_BYTES + AES-GCM overhead, 99 bytes) rounded up, so a
# client cannot make it store much more than an honest one does. A revealed share is only
# decoded, then dropped unless it has the exact compact share size: a looser cap.
MAX_CIPHERTEXT_BYTES = 128
MAX_SHARE_BYTES = 2048
assert MAX_BUNDLE_BYTES + OVERHEAD_BYTES <= MAX_CIPHERTEXT_BYTES


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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 4:
            raise malformed("AdvertiseKeys needs 4 fields", sender)
        keys = [check_bytes(v, "a key", sender, size=KEY_BYTES) for v in body[:3]]
        signature = check_bytes(body[3], "signature", sender)
        if len(signature) not in (0, SIGNATURE_BYTES):
            raise malformed("signature must be empty or 64 bytes", sender)
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
        client = check_int(item[0], 1, MAX_CLIENT_ID, "peer id", party)
        keys = [check_bytes(v, "a peer key", party, size=KEY_BYTES) for v in item[1:4]]
        signature = check_bytes(item[4], "peer signature", party)
        if len(signature) not in (0, SIGNATURE_BYTES):
            raise malformed("peer signature must be empty or 64 bytes", party)
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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("ShareKeysRequest needs 1 field", sender)
        items = check_list(body[0], "peers", sender, arity=5)
        peers = tuple(PeerKeys.from_wire(item, sender) for item in items)
        check_unique([peer.client_id for peer in peers], "peers", sender)
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
    items = check_list(value, "sealed shares", party, arity=2)
    sealed = tuple(
        SealedShares(
            check_int(peer, 1, MAX_CLIENT_ID, "sealed share peer", party),
            check_bytes(ct, "ciphertext", party, limit=MAX_CIPHERTEXT_BYTES),
        )
        for peer, ct in items
    )
    check_unique([item.peer for item in sealed], "sealed shares", party)
    return sealed


@dataclass(frozen=True, repr=False)
class _SealedSharesMessage(ProtocolMessage):
    """A message whose one field is a list of sealed bundles (ShareKeys, MaskedInputRequest:
    the same bundles, before and after the server swaps the point of view)."""

    sealed_shares: tuple[SealedShares, ...]

    def _wire_fields(self) -> list[Any]:
        return [_sealed_to_wire(self.sealed_shares)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed(f"{cls.__name__} needs 1 field", sender)
        return cls(sender, recipient, session_id, _sealed_from_wire(body[0], sender))  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class ShareKeys(_SealedSharesMessage):
    """Client u -> server: one sealed share bundle per neighbour v (``peer`` = v)."""

    TYPE: ClassVar[int] = 4
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_SHARE_KEYS


# --- round 2: MaskedInputCollection ------------------------------------------------------


@dataclass(frozen=True, repr=False)
class MaskedInputRequest(_SealedSharesMessage):
    """Server -> client v: the bundles addressed to v (``peer`` = their sender u, every
    u of U2 among v's neighbours). v masks pairwise with exactly those senders."""

    TYPE: ClassVar[int] = 5
    round_name: ClassVar[str] = ROUND_MASKED_INPUT


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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 3:
            raise malformed("MaskedInput needs 3 fields", sender)
        bits = check_int(body[0], 1, MAX_BITS, "bits", sender)
        length = check_int(body[1], 1, MAX_VECTOR_LENGTH, "length", sender)
        payload = check_bytes(body[2], "payload", sender, size=packed_size(length, bits))
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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("ConsistencyCheckRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, check_ids(body[0], "survivors", sender))  # type: ignore[call-arg]


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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("ConsistencyCheck needs 1 field", sender)
        signature = check_bytes(body[0], "signature", sender, size=SIGNATURE_BYTES)
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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 3:
            raise malformed("UnmaskingRequest needs 3 fields", sender)
        survivors = check_ids(body[0], "survivors", sender)
        dropped = check_ids(body[1], "dropped", sender)
        signatures = tuple(
            PeerSignature(
                check_int(client, 1, MAX_CLIENT_ID, "signer id", sender),
                check_bytes(sig, "signature", sender, size=SIGNATURE_BYTES),
            )
            for client, sig in check_list(body[2], "signatures", sender, arity=2)
        )
        check_unique([item.client_id for item in signatures], "signatures", sender)
        return cls(sender, recipient, session_id, survivors, dropped, signatures)  # type: ignore[call-arg]


class RevealedShare(NamedTuple):
    """Holder's share of ``owner``'s secret in shamir's compact form (the
    ``LIMB_SHARE_BYTES`` = 35 bytes of :func:`secagg.shamir.pack_limb_shares`: x is the
    sender, the threshold the session's, the sharing ``owner``'s secret of the list it
    is in). Never in a repr."""

    owner: int
    share: bytes

    def __repr__(self) -> str:
        return f"RevealedShare(owner={self.owner}, share=<{len(self.share)} bytes>)"


def _revealed_from_wire(value: object, what: str, party: int | None) -> tuple[RevealedShare, ...]:
    # One tight loop: a response holds up to n entries and the server decodes n responses.
    items = check_list(value, what, party, arity=2)
    for owner, share in items:
        if (
            type(owner) is not int
            or not 1 <= owner <= MAX_CLIENT_ID
            or type(share) is not bytes
            or len(share) > MAX_SHARE_BYTES
        ):
            raise malformed(f"an entry of {what} is not (client id, share bytes)", party)
    revealed = tuple(map(RevealedShare._make, items))
    if len({item[0] for item in items}) != len(items):
        raise malformed(f"duplicate ids in {what}", party)
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
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 3:
            raise malformed("UnmaskingResponse needs 3 fields", sender)
        self_mask = _revealed_from_wire(body[0], "self-mask shares", sender)
        keys = _revealed_from_wire(body[1], "key shares", sender)
        unreadable = check_ids(body[2], "unreadable", sender)
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


def decode_message(data: bytes, *, sender: int | None = None) -> ProtocolMessage:
    """Decode and structurally validate one Bonawitz wire message.

    ``sender``, when given, is the transport-authenticated sender: a header claiming
    another sender is refused. Guarantees: the result re-encodes to ``data``'s fields
    (same types and sizes); ids are ints in range; keys, commitments and signatures have
    their exact sizes; id lists hold no duplicates; a MaskedInput payload has exactly
    ``ceil(length * bits / 8)`` bytes.

    Raises DecodeError (``party`` = the claimed sender once known, else ``sender``) on
    anything else (see :func:`secagg.protocols.wire.decode_wire`).
    """
    return decode_wire(data, _TYPES, sender=sender)
