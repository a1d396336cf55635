"""Typed messages of the Bonawitz et al. (CCS'17) protocol, as this library runs it, and
their wire encoding (version :data:`WIRE_VERSION` of this family).

Role: both sides, every round: what travels, and the round names.

Wire format: the conventions of :mod:`secagg.protocols.wire` (one versioned msgpack array
per message, byte strings as ``bin``, no pickle), with vectors bit-packed at exactly
``bits`` bits (:mod:`secagg.packing`, sized by :func:`secagg.ring.packed_size`).
:func:`decode_message` checks every field's type and size and raises :class:`DecodeError`
(with the claimed sender as ``party`` once the header parsed) on anything malformed; the
meaning of the ids (who is a neighbour, who survived) is checked by the state machines,
not here.

Version 3 (this one) adds the ShareCheck round and its dispute wave, the Unmasking
fallback wave, key proofs in AdvertiseKeys, two boxes per holder in ShareKeys and revealed
shares that carry their box key; version 2 had five rounds and one sealed bundle per pair.

Messages never show secrets in their repr: only the type, the parties and field sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from secagg.curve25519 import POINT_BYTES, PROOF_BYTES
from secagg.protocols.bonawitz.bundles import (
    BOX_KEY_BYTES,
    MASK_KEY_BOX_BYTES,
    SELF_MASK_BOX_BYTES,
)
from secagg.protocols.bonawitz.dealing import CHECK_BYTES, NONCE_BYTES
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH
from secagg.protocols.wire import (
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
from secagg.shamir import LIMB_SHARE_BYTES

__all__ = [
    "KEY_BYTES",
    "MAX_SHARE_BYTES",
    "ROUND_ADVERTISE_KEYS",
    "ROUND_CONSISTENCY_CHECK",
    "ROUND_MASKED_INPUT",
    "ROUND_NAMES",
    "ROUND_SHARE_CHECK",
    "ROUND_SHARE_KEYS",
    "ROUND_UNMASKING",
    "SIGNATURE_BYTES",
    "WIRE_VERSION",
    "AdvertiseKeys",
    "AdvertiseKeysRequest",
    "BonawitzMessage",
    "BoxKey",
    "Complaint",
    "ConsistencyCheck",
    "ConsistencyCheckRequest",
    "DealtBoxes",
    "DisputeRequest",
    "DisputeResponse",
    "FallbackRequest",
    "FallbackResponse",
    "MaskedInput",
    "MaskedInputRequest",
    "PairSecret",
    "PeerKeys",
    "PeerSignature",
    "ProtocolMessage",
    "RevealedShare",
    "ShareCheck",
    "ShareCheckRequest",
    "ShareKeys",
    "ShareKeysRequest",
    "UnmaskingRequest",
    "UnmaskingResponse",
    "advertise_signature_payload",
    "box_signature_payload",
    "consistency_signature_payload",
    "decode_message",
    "key_proof_payload",
    "proof_context",
]

WIRE_VERSION = 3
"""This family's message version (:attr:`BonawitzMessage.VERSION`)."""

# Round names, in protocol order. A transport (the simulator's dropout schedule) names
# rounds with these strings; ``Message.round_name`` tells which round a message belongs to
# (a wave inside a round carries the round's name).
ROUND_ADVERTISE_KEYS = "advertise_keys"
ROUND_SHARE_KEYS = "share_keys"
ROUND_SHARE_CHECK = "share_check"
ROUND_MASKED_INPUT = "masked_input"
ROUND_CONSISTENCY_CHECK = "consistency_check"
ROUND_UNMASKING = "unmasking"
ROUND_NAMES: tuple[str, ...] = (
    ROUND_ADVERTISE_KEYS,
    ROUND_SHARE_KEYS,
    ROUND_SHARE_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_CONSISTENCY_CHECK,
    ROUND_UNMASKING,
)

KEY_BYTES = 32  # Ed25519-encoded public keys, SHA-256 commitments
SIGNATURE_BYTES = 64  # Ed25519: identities and key proofs
MAX_SHARE_BYTES = LIMB_SHARE_BYTES
"""A revealed share is one compact share (35 bytes); anything else is refused at decoding."""
_MAX_CHECK_BYTES = CHECK_BYTES * (MAX_CLIENT_ID + 1)


def _framed(label: bytes, session_id: bytes, *parts: bytes) -> bytes:
    return b"".join((label, len(session_id).to_bytes(1, "big"), session_id, *parts))


def advertise_signature_payload(
    session_id: bytes,
    client_id: int,
    nonce_commitment: bytes,
    cipher_public_key: bytes,
    mask_public_key: bytes,
    self_mask_commitment: bytes,
) -> bytes:
    """The bytes an active-mode client signs in AdvertiseKeys (domain-separated, fixed
    size): its keys, its commitment, and the server's nonce commitment it was sent (so
    every neighbour can tell that all of them were sent the same one)."""
    return _framed(
        b"secagg/v3/advertise-keys\x00",
        session_id,
        client_id.to_bytes(8, "big"),
        nonce_commitment,
        cipher_public_key,
        mask_public_key,
        self_mask_commitment,
    )


def key_proof_payload(session_id: bytes, client_id: int, kind: str, public_key: bytes) -> bytes:
    """What a client signs with the key ``public_key`` itself (``kind`` "cipher" or
    "mask") to prove it holds that key, in this session, as this client."""
    return _framed(
        b"secagg/v3/key-proof\x00",
        session_id,
        kind.encode() + b"\x00",
        client_id.to_bytes(8, "big"),
        public_key,
    )


def box_signature_payload(
    session_id: bytes, dealer: int, holder: int, self_mask_box: bytes, mask_key_box: bytes
) -> bytes:
    """What an active-mode dealer signs for each holder: the two boxes it dealt to it."""
    return _framed(
        b"secagg/v3/boxes\x00",
        session_id,
        dealer.to_bytes(8, "big"),
        holder.to_bytes(8, "big"),
        self_mask_box,
        mask_key_box,
    )


def consistency_signature_payload(session_id: bytes, survivors: Sequence[int]) -> bytes:
    """The bytes an active-mode client signs in ConsistencyCheck: the session and the
    sorted survivor set U3 (the clients whose masked inputs the server announced)."""
    ids = sorted(survivors)
    return _framed(
        b"secagg/v1/consistency-check\x00",
        session_id,
        len(ids).to_bytes(8, "big"),
        b"".join(client.to_bytes(8, "big") for client in ids),
    )


def proof_context(session_id: bytes, kind: str, prover: int, peer: int) -> bytes:
    """The context a shared-secret proof is bound to (:mod:`secagg.curve25519`): a
    ``"complaint"`` of holder ``prover`` about dealer ``peer``, or a ``"pair"`` secret of
    survivor ``prover`` with dropped client ``peer``."""
    return _framed(
        b"secagg/v3/shared-secret\x00",
        session_id,
        kind.encode() + b"\x00",
        prover.to_bytes(8, "big"),
        peer.to_bytes(8, "big"),
    )


@dataclass(frozen=True, repr=False)
class BonawitzMessage(ProtocolMessage):
    """Every message of this family: wire version :data:`WIRE_VERSION`."""

    VERSION: ClassVar[int] = WIRE_VERSION


def _id(value: object, what: str, party: int | None) -> int:
    return check_int(value, 1, MAX_CLIENT_ID, what, party)


# --- round 0: AdvertiseKeys --------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class AdvertiseKeysRequest(BonawitzMessage):
    """Server -> client: start the session; answer with :class:`AdvertiseKeys`. Carries
    the commitment to the nonce the server reveals in ShareCheck."""

    TYPE: ClassVar[int] = 1
    round_name: ClassVar[str] = ROUND_ADVERTISE_KEYS

    nonce_commitment: bytes

    def _wire_fields(self) -> list[Any]:
        return [self.nonce_commitment]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("AdvertiseKeysRequest needs 1 field", sender)
        commitment = check_bytes(body[0], "nonce commitment", sender, size=KEY_BYTES)
        return cls(sender, recipient, session_id, commitment)  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class AdvertiseKeys(BonawitzMessage):
    """Client -> server: its two public keys in Ed25519 form (c_u for the boxes, s_u for
    pairwise masks; the X25519 keys follow, :func:`secagg.curve25519.x25519_public`), a
    SHA-256 commitment to its self-mask seed b_u, an Ed25519 signature under each key
    over :func:`key_proof_payload` (it holds the key), and (active mode) its identity's
    signature over :func:`advertise_signature_payload` (else empty)."""

    TYPE: ClassVar[int] = 2
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_ADVERTISE_KEYS

    cipher_public_key: bytes
    mask_public_key: bytes
    self_mask_commitment: bytes
    cipher_key_proof: bytes
    mask_key_proof: bytes
    signature: bytes = b""

    def _wire_fields(self) -> list[Any]:
        return [
            self.cipher_public_key,
            self.mask_public_key,
            self.self_mask_commitment,
            self.cipher_key_proof,
            self.mask_key_proof,
            self.signature,
        ]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 6:
            raise malformed("AdvertiseKeys needs 6 fields", sender)
        keys = [check_bytes(v, "a key", sender, size=KEY_BYTES) for v in body[:3]]
        proofs = [check_bytes(v, "a key proof", sender, size=SIGNATURE_BYTES) for v in body[3:5]]
        signature = check_bytes(body[5], "signature", sender)
        if len(signature) not in (0, SIGNATURE_BYTES):
            raise malformed("signature must be empty or 64 bytes", sender)
        return cls(sender, recipient, session_id, *keys, *proofs, signature)  # type: ignore[call-arg]

    def peer_keys(self, *, with_proofs: bool) -> PeerKeys:
        """The advertisement as the server forwards it (the key proofs only when the
        recipients check them themselves: active mode)."""
        return PeerKeys(
            self.sender,
            self.cipher_public_key,
            self.mask_public_key,
            self.self_mask_commitment,
            self.signature,
            self.cipher_key_proof if with_proofs else b"",
            self.mask_key_proof if with_proofs else b"",
        )


class PeerKeys(NamedTuple):
    """One neighbour's advertisement, forwarded by the server in ShareKeysRequest (the
    entries of messages are named tuples: n of them per message, so cheap to build)."""

    client_id: int
    cipher_public_key: bytes
    mask_public_key: bytes
    self_mask_commitment: bytes
    signature: bytes = b""
    cipher_key_proof: bytes = b""
    mask_key_proof: bytes = b""

    def to_wire(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_wire(cls, item: list[Any], party: int | None) -> PeerKeys:
        client = _id(item[0], "peer id", party)
        keys = [check_bytes(v, "a peer key", party, size=KEY_BYTES) for v in item[1:4]]
        rest = [check_bytes(v, "a peer signature", party) for v in item[4:7]]
        if any(len(v) not in (0, SIGNATURE_BYTES) for v in rest):
            raise malformed("peer signatures must be empty or 64 bytes", party)
        return cls(client, *keys, *rest)


# --- round 1: ShareKeys ------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ShareKeysRequest(BonawitzMessage):
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
        items = check_list(body[0], "peers", sender, arity=7)
        peers = tuple(PeerKeys.from_wire(item, sender) for item in items)
        check_unique([peer.client_id for peer in peers], "peers", sender)
        return cls(sender, recipient, session_id, peers)  # type: ignore[call-arg]


class DealtBoxes(NamedTuple):
    """The two boxes of one (dealer, holder) pair: ``peer`` is the holder in ShareKeys and
    the dealer in ShareCheckRequest (the server swaps the point of view); ``signature`` is
    the dealer's over :func:`box_signature_payload` (active mode, else empty)."""

    peer: int
    self_mask_box: bytes
    mask_key_box: bytes
    signature: bytes = b""

    def __repr__(self) -> str:
        return f"DealtBoxes(peer={self.peer})"


def _boxes_to_wire(items: tuple[DealtBoxes, ...]) -> list[Any]:
    return [list(item) for item in items]


def _boxes_from_wire(value: object, party: int | None) -> tuple[DealtBoxes, ...]:
    items = check_list(value, "boxes", party, arity=4)
    boxes = tuple(
        DealtBoxes(
            _id(peer, "box peer", party),
            check_bytes(b_box, "self-mask box", party, size=SELF_MASK_BOX_BYTES),
            check_bytes(s_box, "mask-key box", party, size=MASK_KEY_BOX_BYTES),
            check_bytes(signature, "box signature", party),
        )
        for peer, b_box, s_box, signature in items
    )
    if any(len(item.signature) not in (0, SIGNATURE_BYTES) for item in boxes):
        raise malformed("box signatures must be empty or 64 bytes", party)
    check_unique([item.peer for item in boxes], "boxes", party)
    return boxes


@dataclass(frozen=True, repr=False)
class ShareKeys(BonawitzMessage):
    """Client u -> server: its boxes for every holder of its secrets (its live neighbours
    and itself), one :class:`DealtBoxes` each."""

    TYPE: ClassVar[int] = 4
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_SHARE_KEYS

    boxes: tuple[DealtBoxes, ...]

    def _wire_fields(self) -> list[Any]:
        return [_boxes_to_wire(self.boxes)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("ShareKeys needs 1 field", sender)
        return cls(sender, recipient, session_id, _boxes_from_wire(body[0], sender))  # type: ignore[call-arg]


# --- round 2: ShareCheck -----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ShareCheckRequest(BonawitzMessage):
    """Server -> holder v: the nonce committed in round 0 and the boxes addressed to v
    (``peer`` = their dealer, v's own included), sorted by dealer."""

    TYPE: ClassVar[int] = 5
    round_name: ClassVar[str] = ROUND_SHARE_CHECK

    nonce: bytes
    boxes: tuple[DealtBoxes, ...]

    def _wire_fields(self) -> list[Any]:
        return [self.nonce, _boxes_to_wire(self.boxes)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 2:
            raise malformed("ShareCheckRequest needs 2 fields", sender)
        nonce = check_bytes(body[0], "nonce", sender, size=NONCE_BYTES)
        return cls(sender, recipient, session_id, nonce, _boxes_from_wire(body[1], sender))  # type: ignore[call-arg]


class Complaint(NamedTuple):
    """A holder's proof that a box of ``dealer`` does not open: the X25519 secret they
    share as a point and its proof (:func:`secagg.curve25519.prove_shared_secret`)."""

    dealer: int
    shared: bytes
    proof: bytes

    def __repr__(self) -> str:
        return f"Complaint(dealer={self.dealer})"


@dataclass(frozen=True, repr=False)
class ShareCheck(BonawitzMessage):
    """Holder -> server: ``checks``, :data:`~secagg.protocols.bonawitz.dealing.CHECK_BYTES`
    per box of the request, in its order (zeros for a dealer it complains about); the
    ``complaints`` about boxes that do not open; ``unsigned``: dealers whose box signature
    does not verify (active mode)."""

    TYPE: ClassVar[int] = 6
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_SHARE_CHECK

    checks: bytes
    complaints: tuple[Complaint, ...] = ()
    unsigned: tuple[int, ...] = ()

    def _wire_fields(self) -> list[Any]:
        return [self.checks, [list(item) for item in self.complaints], list(self.unsigned)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 3:
            raise malformed("ShareCheck needs 3 fields", sender)
        checks = check_bytes(body[0], "checks", sender, limit=_MAX_CHECK_BYTES)
        if len(checks) % CHECK_BYTES:
            raise malformed(f"checks must be a multiple of {CHECK_BYTES} bytes", sender)
        complaints = tuple(
            Complaint(
                _id(dealer, "complaint dealer", sender),
                check_bytes(shared, "shared secret", sender, size=POINT_BYTES),
                check_bytes(proof, "proof", sender, size=PROOF_BYTES),
            )
            for dealer, shared, proof in check_list(body[1], "complaints", sender, arity=3)
        )
        unsigned = check_ids(body[2], "unsigned", sender)
        check_unique([item.dealer for item in complaints] + list(unsigned), "complaints", sender)
        return cls(sender, recipient, session_id, checks, complaints, unsigned)  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class DisputeRequest(BonawitzMessage):
    """Server -> holder (second wave of ShareCheck, only when a dealing's check values do
    not agree): reveal your self-mask box key of each of ``dealers``."""

    TYPE: ClassVar[int] = 7
    round_name: ClassVar[str] = ROUND_SHARE_CHECK

    dealers: tuple[int, ...]

    def _wire_fields(self) -> list[Any]:
        return [list(self.dealers)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("DisputeRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, check_ids(body[0], "dealers", sender))  # type: ignore[call-arg]


class BoxKey(NamedTuple):
    """A revealed box key of ``owner``'s box for its sender. Never in a repr."""

    owner: int
    key: bytes

    def __repr__(self) -> str:
        return f"BoxKey(owner={self.owner})"


@dataclass(frozen=True, repr=False)
class DisputeResponse(BonawitzMessage):
    """Holder -> server: the self-mask box keys asked for."""

    TYPE: ClassVar[int] = 8
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_SHARE_CHECK

    keys: tuple[BoxKey, ...]

    def _wire_fields(self) -> list[Any]:
        return [[list(item) for item in self.keys]]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("DisputeResponse needs 1 field", sender)
        keys = tuple(
            BoxKey(
                _id(owner, "key owner", sender),
                check_bytes(key, "key", sender, size=BOX_KEY_BYTES),
            )
            for owner, key in check_list(body[0], "keys", sender, arity=2)
        )
        check_unique([item.owner for item in keys], "keys", sender)
        return cls(sender, recipient, session_id, keys)  # type: ignore[call-arg]


# --- round 3: MaskedInputCollection ------------------------------------------------------


@dataclass(frozen=True, repr=False)
class MaskedInputRequest(BonawitzMessage):
    """Server -> client v: the peers v masks with, exactly (the dealers that passed
    ShareCheck among v's neighbours, each also masking with v)."""

    TYPE: ClassVar[int] = 9
    round_name: ClassVar[str] = ROUND_MASKED_INPUT

    peers: tuple[int, ...]

    def _wire_fields(self) -> list[Any]:
        return [list(self.peers)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("MaskedInputRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, check_ids(body[0], "peers", sender))  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class MaskedInput(BonawitzMessage):
    """Client -> server: y_u bit-packed at exactly ``bits`` bits (``length`` values)."""

    TYPE: ClassVar[int] = 10
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


# --- round 4: ConsistencyCheck (active mode) ---------------------------------------------


@dataclass(frozen=True, repr=False)
class ConsistencyCheckRequest(BonawitzMessage):
    """Server -> client: the survivor set U3 (clients whose masked input arrived)."""

    TYPE: ClassVar[int] = 11
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
class ConsistencyCheck(BonawitzMessage):
    """Client -> server: its signature over :func:`consistency_signature_payload`."""

    TYPE: ClassVar[int] = 12
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


# --- round 5: Unmasking ------------------------------------------------------------------


class PeerSignature(NamedTuple):
    """A neighbour's consistency-check signature, forwarded in UnmaskingRequest."""

    client_id: int
    signature: bytes


@dataclass(frozen=True, repr=False)
class UnmaskingRequest(BonawitzMessage):
    """Server -> client u: within u's neighbourhood (u included), who survived (their
    masked input is in the sum: reveal shares of b_v) and who dropped after ShareCheck
    (reveal shares of s_v^SK); active mode adds the neighbours' consistency signatures."""

    TYPE: ClassVar[int] = 13
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
                _id(client, "signer id", sender),
                check_bytes(sig, "signature", sender, size=SIGNATURE_BYTES),
            )
            for client, sig in check_list(body[2], "signatures", sender, arity=2)
        )
        check_unique([item.client_id for item in signatures], "signatures", sender)
        return cls(sender, recipient, session_id, survivors, dropped, signatures)  # type: ignore[call-arg]


class RevealedShare(NamedTuple):
    """Holder's share of ``owner``'s secret in shamir's compact form (35 bytes: x is the
    sender, the threshold the session's, the sharing ``owner``'s secret of the list it is
    in) and the key of the box it came in, so that the server can tell whose fault a share
    off its polynomial is. Never in a repr."""

    owner: int
    share: bytes
    key: bytes

    def __repr__(self) -> str:
        return f"RevealedShare(owner={self.owner}, share=<{len(self.share)} bytes>)"


def _revealed_from_wire(value: object, what: str, party: int | None) -> tuple[RevealedShare, ...]:
    # One tight loop: a response holds up to n entries and the server decodes n responses.
    items = check_list(value, what, party, arity=3)
    for owner, share, key in items:
        if (
            type(owner) is not int
            or not 1 <= owner <= MAX_CLIENT_ID
            or type(share) is not bytes
            or len(share) != MAX_SHARE_BYTES
            or type(key) is not bytes
            or len(key) != BOX_KEY_BYTES
        ):
            raise malformed(f"an entry of {what} is not (client id, share, box key)", party)
    revealed = tuple(map(RevealedShare._make, items))
    if len({item[0] for item in items}) != len(items):
        raise malformed(f"duplicate ids in {what}", party)
    return revealed


@dataclass(frozen=True, repr=False)
class UnmaskingResponse(BonawitzMessage):
    """Client -> server: its shares of b_v for the survivors and of s_v^SK for the dropped
    neighbours, each with its box key."""

    TYPE: ClassVar[int] = 14
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_UNMASKING

    self_mask_shares: tuple[RevealedShare, ...]
    key_shares: tuple[RevealedShare, ...]

    def _wire_fields(self) -> list[Any]:
        return [
            [list(item) for item in self.self_mask_shares],
            [list(item) for item in self.key_shares],
        ]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 2:
            raise malformed("UnmaskingResponse needs 2 fields", sender)
        self_mask = _revealed_from_wire(body[0], "self-mask shares", sender)
        keys = _revealed_from_wire(body[1], "key shares", sender)
        return cls(sender, recipient, session_id, self_mask, keys)  # type: ignore[call-arg]


@dataclass(frozen=True, repr=False)
class FallbackRequest(BonawitzMessage):
    """Server -> survivor (second wave of Unmasking, only when a dropped client's mask key
    does not rebuild to its advertised key): reveal your pairwise secret with each of
    ``owners`` (dropped clients you masked with), with its proof."""

    TYPE: ClassVar[int] = 15
    round_name: ClassVar[str] = ROUND_UNMASKING

    owners: tuple[int, ...]

    def _wire_fields(self) -> list[Any]:
        return [list(self.owners)]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("FallbackRequest needs 1 field", sender)
        return cls(sender, recipient, session_id, check_ids(body[0], "owners", sender))  # type: ignore[call-arg]


class PairSecret(NamedTuple):
    """A survivor's X25519 mask-key secret with ``owner`` as a point, and its proof."""

    owner: int
    shared: bytes
    proof: bytes

    def __repr__(self) -> str:
        return f"PairSecret(owner={self.owner})"


@dataclass(frozen=True, repr=False)
class FallbackResponse(BonawitzMessage):
    """Survivor -> server: the pairwise secrets asked for."""

    TYPE: ClassVar[int] = 16
    FROM_SERVER: ClassVar[bool] = False
    round_name: ClassVar[str] = ROUND_UNMASKING

    secrets: tuple[PairSecret, ...]

    def _wire_fields(self) -> list[Any]:
        return [[list(item) for item in self.secrets]]

    @classmethod
    def _from_wire(
        cls: type[MessageT], sender: int, recipient: int, session_id: bytes, body: list[Any]
    ) -> MessageT:
        if len(body) != 1:
            raise malformed("FallbackResponse needs 1 field", sender)
        items = tuple(
            PairSecret(
                _id(owner, "secret owner", sender),
                check_bytes(shared, "shared secret", sender, size=POINT_BYTES),
                check_bytes(proof, "proof", sender, size=PROOF_BYTES),
            )
            for owner, shared, proof in check_list(body[0], "secrets", sender, arity=3)
        )
        check_unique([item.owner for item in items], "secrets", sender)
        return cls(sender, recipient, session_id, items)  # type: ignore[call-arg]


# --- decoding ----------------------------------------------------------------------------

_TYPES: dict[int, type[ProtocolMessage]] = {
    cls.TYPE: cls
    for cls in (
        AdvertiseKeysRequest,
        AdvertiseKeys,
        ShareKeysRequest,
        ShareKeys,
        ShareCheckRequest,
        ShareCheck,
        DisputeRequest,
        DisputeResponse,
        MaskedInputRequest,
        MaskedInput,
        ConsistencyCheckRequest,
        ConsistencyCheck,
        UnmaskingRequest,
        UnmaskingResponse,
        FallbackRequest,
        FallbackResponse,
    )
}


def decode_message(data: bytes, *, sender: int | None = None) -> ProtocolMessage:
    """Decode and structurally validate one Bonawitz wire message (version
    :data:`WIRE_VERSION`).

    ``sender``, when given, is the transport-authenticated sender: a header claiming
    another sender is refused. Guarantees: the result re-encodes to ``data``'s fields
    (same types and sizes); ids are ints in range; keys, commitments, boxes, box keys,
    points, proofs and signatures have their exact sizes; id lists hold no duplicates; a
    MaskedInput payload has exactly ``ceil(length * bits / 8)`` bytes.

    Raises DecodeError (``party`` = the claimed sender once known, else ``sender``) on
    anything else (see :func:`secagg.protocols.wire.decode_wire`).
    """
    return decode_wire(data, _TYPES, sender=sender, version=WIRE_VERSION)
