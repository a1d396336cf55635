"""ShareCheck on the server: store the dealt boxes, judge complaints and disputes.

Role: server, ShareKeys (store), ShareCheck and its dispute wave (judge), Unmasking (open
a box with a revealed key).

Theory of operation. The server keeps every box a dealer sent (:class:`BoxStore`, one
byte string per dealer and kind: O(n k) records of 108 bytes, no object per box) until
the session ends. In ShareCheck a holder that could not open a box proves the X25519
secret it shares with the dealer (:func:`secagg.curve25519.verify_shared_secret`); the
server derives the box keys from it and opens the stored boxes itself
(:func:`judge_complaint`): they do not open, or hold no well-formed shares -> the dealer
dealt garbage; they open fine -> the holder lied; the proof fails -> the holder lied. A
holder that finds an active-mode box unsigned only names the dealer; the server checks
the signature on the box it stored (:func:`judge_unsigned`). When a dealer's check values
disagree, the holders whose values are off reveal that box's self-mask key in a dispute
wave and :func:`judge_dispute` recomputes their values from the box: the same values ->
the dealer's share to them is off; other values -> the holder lied.

Every judgement names exactly one faulty party, on evidence only the dealer (a box it
sealed, a signature it made) or the holder (a proof, a value, a key it sent) could have
produced: an honest party is never judged faulty.

Why a complaint reveals nothing extra: the revealed secret is the X25519 secret of the
holder's and the dealer's channel keys. Both keys come with a key proof (the owner holds
the key: it is not related to an honest client's key), so the secret opens the boxes of
that one pair only: the dealer's shares dealt to the complainer and the complainer's
shares dealt to the dealer. Whichever of the two is faulty already knew both.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from secagg.curve25519 import verify_shared_secret
from secagg.errors import AuthenticationError, DecodeError, ExclusionReason
from secagg.protocols.bonawitz.bundles import (
    MASK_KEY_BOX_BYTES,
    SELF_MASK_BOX_BYTES,
    SecretKind,
    ShareBundle,
    decode_mask_key_box,
    decode_self_mask_box,
    derive_box_keys,
    open_box,
)
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.dealing import check_values
from secagg.protocols.bonawitz.messages import (
    SIGNATURE_BYTES,
    AdvertiseKeys,
    Complaint,
    DealtBoxes,
    box_signature_payload,
    proof_context,
)
from secagg.signing import verify_signature

__all__ = ["BoxStore", "Verdict", "judge_complaint", "judge_dispute", "judge_unsigned"]

_SIZES = {SecretKind.SELF_MASK: SELF_MASK_BOX_BYTES, SecretKind.MASK_KEY: MASK_KEY_BOX_BYTES}


class BoxStore:
    """Every box the server relayed, by dealer: one byte string per kind (and one of
    signatures in active mode), sliced by the holder's position."""

    def __init__(self) -> None:
        self._index: dict[int, dict[int, int]] = {}
        self._blobs: dict[int, dict[SecretKind, bytes]] = {}
        self._signatures: dict[int, bytes] = {}

    def add(self, dealer: int, boxes: Sequence[DealtBoxes]) -> None:
        """Store ``dealer``'s boxes (one :class:`DealtBoxes` per holder, sizes checked by
        the decoder; signatures all present or all empty)."""
        self._index[dealer] = {item.peer: at for at, item in enumerate(boxes)}
        self._blobs[dealer] = {
            SecretKind.SELF_MASK: b"".join(item.self_mask_box for item in boxes),
            SecretKind.MASK_KEY: b"".join(item.mask_key_box for item in boxes),
        }
        if boxes and boxes[0].signature:
            self._signatures[dealer] = b"".join(item.signature for item in boxes)

    def discard(self, dealer: int) -> None:
        self._index.pop(dealer, None)
        self._blobs.pop(dealer, None)
        self._signatures.pop(dealer, None)

    def holds(self, dealer: int, holder: int) -> bool:
        return holder in self._index.get(dealer, {})

    def box(self, dealer: int, holder: int, kind: SecretKind) -> bytes:
        """The ``kind`` box ``dealer`` sealed for ``holder`` (KeyError if none)."""
        at, size = self._index[dealer][holder], _SIZES[kind]
        return self._blobs[dealer][kind][at * size : (at + 1) * size]

    def signature(self, dealer: int, holder: int) -> bytes:
        blob = self._signatures.get(dealer)
        if blob is None:
            return b""
        at = self._index[dealer][holder]
        return blob[at * SIGNATURE_BYTES : (at + 1) * SIGNATURE_BYTES]

    def dealt(self, dealer: int, holder: int) -> DealtBoxes:
        """The boxes of ``dealer`` for ``holder``, as the server forwards them (``peer`` =
        the dealer)."""
        return DealtBoxes(
            dealer,
            self.box(dealer, holder, SecretKind.SELF_MASK),
            self.box(dealer, holder, SecretKind.MASK_KEY),
            self.signature(dealer, holder),
        )


@dataclass(frozen=True)
class Verdict:
    """Who is at fault, why (typed) and what happened (a short text, no peer bytes)."""

    party: int
    reason: ExclusionReason
    detail: str


def open_shares(
    config: ProtocolConfig, store: BoxStore, dealer: int, holder: int, self_mask_key: bytes,
    mask_key: bytes,
) -> ShareBundle | None:
    """The shares in ``dealer``'s boxes for ``holder`` under these keys, or None if a box
    does not open or does not hold well-formed shares."""
    self_mask = open_box(self_mask_key, store.box(dealer, holder, SecretKind.SELF_MASK),
                         SecretKind.SELF_MASK)
    key = open_box(mask_key, store.box(dealer, holder, SecretKind.MASK_KEY), SecretKind.MASK_KEY)
    if self_mask is None or key is None:
        return None
    where = {"session_id": config.session_id, "dealer": dealer, "holder": holder,
             "threshold": config.threshold}
    try:
        self_mask_share, blinding = decode_self_mask_box(self_mask, **where)  # type: ignore[arg-type]
        key_share = decode_mask_key_box(key, **where)  # type: ignore[arg-type]
    except DecodeError:
        return None
    return ShareBundle(dealer, holder, key_share, self_mask_share, blinding)


def judge_complaint(
    config: ProtocolConfig,
    adverts: Mapping[int, AdvertiseKeys],
    store: BoxStore,
    holder: int,
    complaint: Complaint,
) -> Verdict:
    """Holder ``holder`` says ``complaint.dealer``'s boxes for it do not open."""
    dealer = complaint.dealer
    raw = verify_shared_secret(
        adverts[holder].cipher_public_key,
        adverts[dealer].cipher_public_key,
        complaint.shared,
        complaint.proof,
        context=proof_context(config.session_id, "complaint", holder, dealer),
    )
    if raw is None:
        return Verdict(
            holder,
            ExclusionReason.FALSE_COMPLAINT,
            f"a complaint about client {dealer} whose proof does not verify",
        )
    keys = derive_box_keys(raw, config.session_id, dealer, holder)
    if open_shares(config, store, dealer, holder, keys.self_mask, keys.mask_key) is None:
        return Verdict(
            dealer,
            ExclusionReason.UNREADABLE_BUNDLE,
            f"dealt boxes to client {holder} that do not open to shares",
        )
    return Verdict(
        holder,
        ExclusionReason.FALSE_COMPLAINT,
        f"complained about the boxes of client {dealer}, which open",
    )


def judge_unsigned(
    config: ProtocolConfig, store: BoxStore, holder: int, dealer: int
) -> Verdict:
    """Active mode: holder ``holder`` says ``dealer``'s signature on its boxes fails."""
    assert config.identities is not None
    payload = box_signature_payload(
        config.session_id,
        dealer,
        holder,
        store.box(dealer, holder, SecretKind.SELF_MASK),
        store.box(dealer, holder, SecretKind.MASK_KEY),
    )
    try:
        verify_signature(config.identities[dealer], payload, store.signature(dealer, holder))
    except (AuthenticationError, DecodeError):
        return Verdict(
            dealer,
            ExclusionReason.BAD_SIGNATURE,
            f"dealt boxes to client {holder} without a valid signature",
        )
    return Verdict(
        holder,
        ExclusionReason.FALSE_COMPLAINT,
        f"said the signed boxes of client {dealer} are unsigned",
    )


def judge_dispute(
    config: ProtocolConfig,
    nonce: bytes,
    store: BoxStore,
    holder: int,
    dealer: int,
    key: bytes,
    sent: np.ndarray,
) -> Verdict:
    """The check values ``sent`` by ``holder`` for ``dealer`` were off the others'; it
    revealed ``key``, the self-mask box key: open the box and recompute them."""
    box = open_box(key, store.box(dealer, holder, SecretKind.SELF_MASK), SecretKind.SELF_MASK)
    if box is None:
        return Verdict(
            holder,
            ExclusionReason.BAD_CHECK,
            f"revealed a key that does not open the box of client {dealer}",
        )
    try:
        share, blinding = decode_self_mask_box(
            box, session_id=config.session_id, dealer=dealer, holder=holder,
            threshold=config.threshold,
        )
    except DecodeError:
        # It opened the box in ShareCheck and sent values instead of complaining.
        return Verdict(
            holder,
            ExclusionReason.BAD_CHECK,
            f"sent check values for the malformed box of client {dealer}",
        )
    bundle = ShareBundle(dealer, holder, share, share, blinding)
    recomputed = check_values(config.session_id, nonce, [bundle])[0]
    if hmac.compare_digest(recomputed.astype("<i8").tobytes(), sent.astype("<i8").tobytes()):
        return Verdict(
            dealer,
            ExclusionReason.INCONSISTENT_DEALING,
            f"dealt client {holder} a self-mask share off the others' polynomial",
        )
    return Verdict(
        holder,
        ExclusionReason.BAD_CHECK,
        f"sent check values for client {dealer} that its box does not give",
    )
