"""Review: bounded decoding and bounded bookkeeping of what peers send.

Findings (before the fixes):
* a peer-chosen header field (version, type code) was echoed whole, with ``repr``, into the
  DecodeError text, and the server stores that text in ``result.faults``: one 1 MB message
  put a 1 MB string into the result (and into any log of it);
* every junk, duplicate or out-of-round message appended one note to the sender's faults,
  without bound: a client could grow the server's state for as long as a round lasts;
* a sealed share bundle could be 4096 bytes where an honest one is at most 160: the server
  stores one per (client, neighbour) pair, so a client could make it hold 25x more (wire
  version 3: every box has its one exact size).
"""

from __future__ import annotations

import msgpack
import pytest

from secagg.errors import DecodeError, ExclusionReason
from secagg.protocols.bonawitz.bundles import (
    MASK_KEY_BOX_BYTES,
    SELF_MASK_BOX_BYTES,
    SecretKind,
    deal,
    seal_box,
)
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    DealtBoxes,
    ShareKeys,
    decode_message,
)
from secagg.protocols.faults import MAX_FAULT_NOTES, Fault
from secagg.protocols.limits import MAX_CLIENT_ID
from tests.helpers.protocol import make_session

SID = bytes(range(16))
MAX_ERROR_TEXT = 300


def _error_text(data: bytes) -> str:
    with pytest.raises(DecodeError) as caught:
        decode_message(data, sender=1)
    return str(caught.value)


@pytest.mark.parametrize(
    "header",
    [
        [b"v" * 1_000_000, 2, 1, 0, SID],  # version
        [1, "t" * 1_000_000, 1, 0, SID],  # type code
        [1, 2**63, 1, 0, SID],
        [10**300 % 2**64, 2, 1, 0, SID],
        [1, [list(range(100_000))], 1, 0, SID],
    ],
)
def test_error_text_of_a_huge_header_field_is_bounded(header: list[object]) -> None:
    assert len(_error_text(msgpack.packb(header, use_bin_type=True))) < MAX_ERROR_TEXT


def test_server_faults_from_huge_junk_stay_small() -> None:
    session = make_session(3, 2)
    server = session.server
    server.start()
    junk = msgpack.packb(["x" * 200_000, 2, 1, 0, SID], use_bin_type=True)
    server.receive_bytes(junk, 1)
    assert sum(len(note) for note in server.faults[1]) < MAX_ERROR_TEXT


def test_faults_recorded_per_party_are_capped() -> None:
    session = make_session(3, 2)
    server = session.server
    server.start()
    stray = AdvertiseKeys(
        1, 0, bytes(16), bytes(32), b"\x01" * 32, bytes(32), bytes(64), bytes(64)
    ).to_bytes()
    for _ in range(10 * MAX_FAULT_NOTES):
        server.receive_bytes(stray, 1)  # another session: a fault each time
    notes = server.faults[1]
    assert len(notes) <= MAX_FAULT_NOTES + 1
    assert str(10 * MAX_FAULT_NOTES - MAX_FAULT_NOTES) in notes[-1]
    kept = notes[:-1]
    assert len(kept) == MAX_FAULT_NOTES
    assert all(isinstance(n, Fault) and n.reason is ExclusionReason.MISROUTED for n in kept)
    assert all(n == "advertise_keys: message of another session or recipient" for n in kept)


def test_honest_boxes_have_their_exact_sizes_and_nothing_else_decodes() -> None:
    dealt = deal(bytes(32), bytes(range(32)), [MAX_CLIENT_ID - 1, MAX_CLIENT_ID], 2)
    plain = dealt[MAX_CLIENT_ID]
    self_mask = seal_box(bytes(16), plain.self_mask, SecretKind.SELF_MASK)
    mask_key = seal_box(bytes(16), plain.mask_key, SecretKind.MASK_KEY)
    assert (len(self_mask), len(mask_key)) == (SELF_MASK_BOX_BYTES, MASK_KEY_BOX_BYTES)
    ok = ShareKeys(1, 0, SID, (DealtBoxes(2, self_mask, mask_key),))
    assert decode_message(ok.to_bytes()) == ok
    for boxes in (
        DealtBoxes(2, self_mask + b"\x00", mask_key),
        DealtBoxes(2, self_mask, mask_key[:-1]),
        DealtBoxes(2, self_mask, mask_key, bytes(65)),
    ):
        with pytest.raises(DecodeError):
            decode_message(ShareKeys(1, 0, SID, (boxes,)).to_bytes())


@pytest.mark.parametrize(
    "data",
    [
        b"\x91" * 200_000,  # arrays nested 200 000 deep
        b"\xdd\xff\xff\xff\xff",  # an array declaring 2^32 - 1 entries, none present
        b"\xc6\xff\xff\xff\xff",  # a bin declaring 4 GiB
        b"\xdb\xff\xff\xff\xff",  # a str declaring 4 GiB
        b"\xdf\xff\xff\xff\xff",  # a map declaring 2^32 - 1 pairs
        b"\x95\x01\x02\x01\x00\xc4\x10" + SID + b"\xdd\xff\xff\xff\xff",  # inside a message
    ],
)
def test_declared_sizes_and_depth_cannot_make_the_decoder_allocate_or_recurse(
    data: bytes,
) -> None:
    # A decoder that believed these sizes would allocate gigabytes or overflow the stack.
    with pytest.raises(DecodeError):
        decode_message(data, sender=1)
