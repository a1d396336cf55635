"""Wire encoding of the threshold-HE messages: fixed bytes, round trips, strict and bounded
decoding.

Review story (issue 12, drift bug A): the threshold-HE decoder had its own copy of the
header parsing and echoed a peer's value into the error (``unknown message type {x!r}``),
so a 100 KB field came back as a 100 KB DecodeError text, a bug already fixed in the
Bonawitz copy. It now decodes through the one wire decoder
(:func:`secagg.protocols.wire.decode_wire`); every error text stays short whatever the
peer sent, and a bool never passes as an int.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import DecodeError
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_he.messages import (
    MAX_BLOCKS,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
    decode_threshold_he_message,
)

MAX_ERROR_TEXT = 300
SID = bytes(range(16))

# Known answers: an accidental change of the wire format fails here.
WIRE_BYTES: list[tuple[Message, str]] = [
    (InputRequest(SERVER_ID, 3, SID), "9502650003c410000102030405060708090a0b0c0d0e0f"),
    (
        EncryptedInput(3, SERVER_ID, SID, b"ct"),
        "9602660300c410000102030405060708090a0b0c0d0e0fc4026374",
    ),
    (
        DecryptionRequest(SERVER_ID, 2, SID, (1, 5), b"agg"),
        "9702670002c410000102030405060708090a0b0c0d0e0f920105c403616767",
    ),
    (
        DecryptionRequest(SERVER_ID, 2, SID, (1, 2, 7), b"agg", (0, 2), 3),
        "9902670002c410000102030405060708090a0b0c0d0e0f93010207c40361676792000203",
    ),
    (
        DecryptionShare(2, SERVER_ID, SID, b"part"),
        "9602680200c410000102030405060708090a0b0c0d0e0fc40470617274",
    ),
]


@pytest.mark.parametrize(("message", "expected"), WIRE_BYTES)
def test_wire_bytes_are_fixed(message: Message, expected: str) -> None:
    assert message.to_bytes().hex() == expected
    assert decode_threshold_he_message(bytes.fromhex(expected), sender=message.sender) == message


def test_message_round_trips_and_rejections() -> None:
    sid = b"s" * 16
    messages: list[Message] = [
        InputRequest(SERVER_ID, 3, sid),
        EncryptedInput(3, SERVER_ID, sid, b"abc"),
        DecryptionRequest(SERVER_ID, 2, sid, (1, 5), b"xyz"),
        DecryptionShare(2, SERVER_ID, sid, b"p"),
    ]
    for message in messages:
        assert decode_threshold_he_message(message.to_bytes(), sender=message.sender) == message
        assert "xyz" not in repr(message)
    bad = [
        (b"\xc1", None),
        (messages[1].to_bytes(), 4),  # claims another sender
        (EncryptedInput(SERVER_ID, 3, sid, b"a").to_bytes(), None),  # wrong direction
        (EncryptedInput(3, SERVER_ID, sid, b"").to_bytes(), None),  # empty payload
        (EncryptedInput(3, SERVER_ID, b"short", b"a").to_bytes(), None),
        (DecryptionRequest(SERVER_ID, 2, sid, (1, 1), b"x").to_bytes(), None),
        (DecryptionRequest(SERVER_ID, 2, sid, (0,), b"x").to_bytes(), None),
        (messages[1].to_bytes()[:-1], None),
        (InputRequest(SERVER_ID, 3, sid).to_bytes().replace(b"\x65", b"\x01", 1), None),
    ]
    for data, sender in bad:
        with pytest.raises(DecodeError):
            decode_threshold_he_message(data, sender=sender)


def request(blocks: tuple[int, ...], count: int) -> DecryptionRequest:
    return DecryptionRequest(SERVER_ID, 2, SID, (1, 2), b"aggregate", blocks, count)


def test_balanced_request_round_trips_and_full_keeps_the_two_field_form() -> None:
    message = request((0, 3, 4), 5)
    assert decode_threshold_he_message(message.to_bytes(), sender=SERVER_ID) == message
    full = DecryptionRequest(SERVER_ID, 2, SID, (1, 2), b"aggregate")
    assert decode_threshold_he_message(full.to_bytes(), sender=SERVER_ID) == full
    assert len(request((0,), 2).to_bytes()) == len(full.to_bytes()) + 3


@pytest.mark.parametrize(
    ("blocks", "count"),
    [
        ([], 3),
        ([1, 0], 3),
        ([1, 1], 3),
        ([3], 3),
        ([-1], 3),
        ([0], 1),  # full mode must use the two-field form
        ([0], MAX_BLOCKS + 1),
        ([True], 3),
        ([0], True),
        (["0"], 3),
        (0, 3),
        ([0.0], 3),
        (list(range(4)), 3),
    ],
)
def test_decoder_refuses_bad_block_lists(blocks: Any, count: Any) -> None:
    raw = msgpack.unpackb(request((0,), 2).to_bytes(), raw=False)
    raw[-2:] = [blocks, count]
    with pytest.raises(DecodeError):
        decode_threshold_he_message(msgpack.packb(raw, use_bin_type=True), sender=SERVER_ID)
    with pytest.raises(DecodeError):
        decode_threshold_he_message(msgpack.packb(raw[:-1], use_bin_type=True))


# --- bounded, exact-typed refusals --------------------------------------------------------


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


HUGE = 100_000
NASTY: list[Any] = [
    b"\xff" * HUGE,
    "x" * HUGE,
    list(range(HUGE // 10)),
    {str(i): i for i in range(HUGE // 10)},
    nested(100),
    2**63 + 12345,  # beyond every id, still a msgpack int
    -(2**63),
    True,
    False,
    None,
    1.5,
]


def raw_fields(message: Message) -> list[Any]:
    decoded: list[Any] = msgpack.unpackb(message.to_bytes(), raw=False)
    return decoded


def check_bounded(raw: list[Any], sender: int | None) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_threshold_he_message(msgpack.packb(raw, use_bin_type=True), sender=sender)
    assert len(str(caught.value)) < MAX_ERROR_TEXT, str(caught.value)[:400]


@pytest.mark.parametrize("position", range(5))
@pytest.mark.parametrize("value", NASTY, ids=lambda v: type(v).__name__)
def test_a_nasty_header_field_gives_a_short_error(position: int, value: Any) -> None:
    raw = raw_fields(EncryptedInput(3, SERVER_ID, SID, b"ct"))
    raw[position] = value
    check_bounded(raw, None)
    check_bounded(raw, 3)


def refuse_or_accept(raw: list[Any], sender: int, *, may_decode: bool) -> None:
    data = msgpack.packb(raw, use_bin_type=True)
    try:
        decode_threshold_he_message(data, sender=sender)
    except DecodeError as exc:
        assert len(str(exc)) < MAX_ERROR_TEXT, str(exc)[:400]
    else:
        assert may_decode, "a malformed field was accepted"


PAYLOAD_POSITION = {EncryptedInput: 5, DecryptionShare: 5, DecryptionRequest: 6}


@pytest.mark.parametrize(
    "message",
    [
        EncryptedInput(3, SERVER_ID, SID, b"ct"),
        DecryptionShare(2, SERVER_ID, SID, b"part"),
        DecryptionRequest(SERVER_ID, 2, SID, (1, 5), b"agg"),
        DecryptionRequest(SERVER_ID, 2, SID, (1, 2, 7), b"agg", (0, 2), 3),
    ],
    ids=lambda m: f"{type(m).__name__}-{len(m.to_bytes())}",
)
@pytest.mark.parametrize("value", NASTY, ids=lambda v: type(v).__name__)
def test_a_nasty_body_field_gives_a_short_error(message: Message, value: Any) -> None:
    raw = raw_fields(message)
    payload = PAYLOAD_POSITION[type(message)]
    for position in range(5, len(raw)):
        changed = list(raw)
        changed[position] = value
        # A 100 KB payload is a valid (opaque) payload; nothing else here is valid.
        legit = position == payload and isinstance(value, bytes)
        refuse_or_accept(changed, message.sender, may_decode=legit)
        if isinstance(raw[position], list):  # inside the id and block lists too
            changed[position] = [*raw[position][:-1], value]
            refuse_or_accept(changed, message.sender, may_decode=False)
    check_bounded([*raw, value], message.sender)  # one field too many


@given(
    st.lists(
        st.one_of(
            st.integers(),
            st.booleans(),
            st.none(),
            st.binary(max_size=64),
            st.text(max_size=64),
            st.lists(st.integers(), max_size=8),
        ),
        min_size=0,
        max_size=9,
    )
)
def test_any_array_decodes_or_refuses_briefly(raw: list[Any]) -> None:
    try:
        data = msgpack.packb(raw, use_bin_type=True)
    except (OverflowError, ValueError):
        return  # msgpack cannot hold the int: nothing a peer could send
    try:
        decode_threshold_he_message(data)
    except DecodeError as exc:
        assert len(str(exc)) < MAX_ERROR_TEXT


@pytest.mark.parametrize(
    ("message", "index", "value"),
    [
        (InputRequest(SERVER_ID, 1, SID), 2, False),  # sender False == 0 (the server)
        (InputRequest(SERVER_ID, 1, SID), 3, True),  # recipient True == 1
        (EncryptedInput(1, SERVER_ID, SID, b"ct"), 2, True),  # sender True == 1
        (EncryptedInput(1, SERVER_ID, SID, b"ct"), 3, False),  # recipient False == 0
    ],
)
def test_bools_never_pass_as_ints_in_the_header(message: Message, index: int, value: bool) -> None:
    raw = raw_fields(message)
    assert raw[index] == value  # equal as ints: only the exact type check refuses it
    raw[index] = value
    for sender in (None, message.sender):
        with pytest.raises(DecodeError):
            decode_threshold_he_message(msgpack.packb(raw, use_bin_type=True), sender=sender)


def test_bools_never_pass_as_ints_in_the_body() -> None:
    for included in ([True, 2], [1, False]):
        raw = raw_fields(DecryptionRequest(SERVER_ID, 2, SID, (1, 2), b"agg"))
        raw[5] = included
        with pytest.raises(DecodeError):
            decode_threshold_he_message(msgpack.packb(raw, use_bin_type=True))
