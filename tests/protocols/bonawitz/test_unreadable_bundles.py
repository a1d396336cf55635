"""Review: a client that deals unreadable share boxes, and where that leaves the round.

Each holder opens the boxes dealt to it in ShareCheck and complains, with a proof of the
X25519 secret it shares with the dealer, about those that do not open. The server opens
the stored boxes itself with that secret and, finding garbage, leaves the dealer out
before anyone masks: however many neighbours it sealed garbage to (one, or all of them),
a dealer of garbage only excludes itself, and it is blamed with a typed reason. (On wire
version 2, beyond h - t unreadable bundles the round aborted: the strict xfail this file
held is gone because it passes.)
"""

from __future__ import annotations

import dataclasses

import pytest

from secagg.errors import ExclusionReason
from secagg.protocols.bonawitz.messages import DealtBoxes, ShareKeys, decode_message
from tests.helpers.protocol import assert_correct, make_session, run_session


def garbage_dealer(dealer: int, victims: int) -> object:
    """Client ``dealer`` zeroes its boxes for its first ``victims`` other holders."""

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if sender != dealer or name != "share_keys":
            return [data]
        message = decode_message(data)
        assert isinstance(message, ShareKeys)
        others = [item.peer for item in message.boxes if item.peer != dealer][:victims]
        boxes = tuple(
            DealtBoxes(item.peer, bytes(len(item.self_mask_box)), item.mask_key_box, item.signature)
            if item.peer in others
            else item
            for item in message.boxes
        )
        return [dataclasses.replace(message, boxes=boxes).to_bytes()]

    return tamper


@pytest.mark.parametrize("victims", [1, 3])
def test_unreadable_boxes_to_a_few_holders_exclude_their_dealer(victims: int) -> None:
    session = make_session(8, 5, length=4)  # h = 8 holders, t = 5
    result = run_session(session, tamper=garbage_dealer(2, victims))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set - {2}
    assert result.excluded[2].reason is ExclusionReason.UNREADABLE_BUNDLE
    assert result.faults[2].reasons == {ExclusionReason.UNREADABLE_BUNDLE}
    assert "do not open" in result.faults[2]
    assert set(result.faults) == {2}  # the complainers are honest: not blamed


def test_a_dealer_of_garbage_to_every_neighbour_is_excluded_not_fatal() -> None:
    session = make_session(8, 5, length=4)
    result = run_session(session, tamper=garbage_dealer(2, 7))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set - {2}
    assert set(result.faults) == {2}
    assert result.faults[2].reasons == {ExclusionReason.UNREADABLE_BUNDLE}


def test_a_dealer_of_garbage_in_active_mode_is_blamed_for_its_unsigned_boxes() -> None:
    # The tamper changes the boxes after the dealer signed them: the holders only name the
    # dealer (no secret revealed: the server might have changed them), and the server
    # checks the signature on the boxes it stored.
    session = make_session(7, 5, length=4, mode="active")
    result = run_session(session, tamper=garbage_dealer(3, 6))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set - {3}
    assert set(result.faults) == {3}
    assert result.faults[3].reasons == {ExclusionReason.BAD_SIGNATURE}
