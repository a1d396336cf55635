"""Compact shares in the Bonawitz messages: only the limbs travel, the rest is implied."""

from __future__ import annotations

from secagg.errors import ExclusionReason
from secagg.protocols.bonawitz.bundles import (
    BOX_KEY_BYTES,
    MASK_KEY_BOX_BYTES,
    SELF_MASK_BOX_BYTES,
    SecretKind,
    derive_sharing_id,
)
from secagg.protocols.bonawitz.messages import (
    WIRE_VERSION,
    RevealedShare,
    ShareKeys,
    UnmaskingResponse,
    decode_message,
)
from secagg.shamir import LIMB_SHARE_BYTES, SHARING_ID_BYTES
from tests.helpers.protocol import assert_correct, make_session, run_session
from tests.helpers.tamper import rewrite_self_mask_shares

SID = bytes(range(16))


def test_boxes_and_revealed_shares_carry_only_limbs() -> None:
    session = make_session(7, 4, length=5)
    seen: dict[str, list[int]] = {"boxes": [], "revealed": [], "keys": []}

    def inspect(sender: int, name: str, data: bytes) -> list[bytes]:
        message = decode_message(data, sender=sender)
        if isinstance(message, ShareKeys):
            seen["boxes"] += [
                len(item.self_mask_box) + len(item.mask_key_box) for item in message.boxes
            ]
        if isinstance(message, UnmaskingResponse):
            for item in (*message.self_mask_shares, *message.key_shares):
                seen["revealed"].append(len(item.share))
                seen["keys"].append(len(item.key))
        return [data]

    result = run_session(session, drops={"masked_input": {3}}, tamper=inspect)
    assert_correct(session, result)
    # Two AES-GCM boxes: a share and two blinding values, a share; 16-byte tags.
    assert set(seen["boxes"]) == {SELF_MASK_BOX_BYTES + MASK_KEY_BOX_BYTES} == {57 + 51}
    assert len(seen["boxes"]) == 7 * 7  # every holder, the dealer itself included
    assert set(seen["revealed"]) == {LIMB_SHARE_BYTES}
    assert set(seen["keys"]) == {BOX_KEY_BYTES}
    assert WIRE_VERSION == 3


def test_sharing_ids_are_derived_alike_and_differ_per_session_dealer_and_secret() -> None:
    ids = {
        derive_sharing_id(session, dealer, kind)
        for session in (SID, bytes(16), SID + b"\x00")
        for dealer in (1, 2, 2**20)
        for kind in SecretKind
    }
    assert len(ids) == 3 * 3 * 2
    assert all(len(i) == SHARING_ID_BYTES for i in ids)
    assert derive_sharing_id(SID, 5, SecretKind.SELF_MASK) == derive_sharing_id(
        SID, 5, SecretKind.SELF_MASK
    )


def test_a_share_of_another_secret_passed_off_as_this_one_is_caught_and_blamed() -> None:
    # Holder 2 swaps the shares it reveals for two owners: each is a valid compact share,
    # but of another sharing. Nothing on the wire can say so; the reconstruction check
    # finds it off the owner's polynomial, the box it came in names the liar, and the sum
    # is still right.
    session = make_session(8, 5, length=6)

    def swap(shares: tuple[RevealedShare, ...]) -> tuple[RevealedShare, ...]:
        first, second, *rest = shares
        return (first._replace(share=second.share), second._replace(share=first.share), *rest)

    result = run_session(session, tamper=rewrite_self_mask_shares(2, swap))
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert "other than its box's" in result.faults[2]
    assert result.faults[2].reasons == {ExclusionReason.BAD_SHARE}
    assert set(result.faults) == {2}


def test_a_revealed_share_of_the_old_full_size_costs_only_its_answer() -> None:
    session = make_session(8, 5, length=6)

    def pad(shares: tuple[RevealedShare, ...]) -> tuple[RevealedShare, ...]:
        first, *rest = shares
        return (first._replace(share=bytes(23) + first.share), *rest)  # 58 bytes, as v1

    result = run_session(session, tamper=rewrite_self_mask_shares(4, pad))
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert result.faults[4].reasons == {ExclusionReason.UNDECODABLE}
