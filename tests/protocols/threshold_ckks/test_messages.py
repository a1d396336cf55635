"""Wire encoding of the threshold-CKKS messages: round trips, strict and bounded decoding
(the pinned bytes are the wire vectors, ``tests/vectors/wire/threshold_ckks.json``)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import DecodeError
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_ckks.messages import (
    MAX_MEMBERS,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
    KeyAdvertise,
    KeyAdvertiseRequest,
    KeyCheck,
    KeyCheckRequest,
    KeyDeal,
    KeyDealRequest,
    PeerKey,
    Sealed,
    decode_threshold_ckks_message,
)
from secagg.protocols.wire import WIRE_VERSION

SID = bytes(range(16))
KEY = bytes(range(32))
MAX_ERROR_TEXT = 300

EXAMPLES: list[Message] = [
    KeyAdvertiseRequest(SERVER_ID, 3, SID),
    KeyAdvertise(3, SERVER_ID, SID, KEY),
    KeyDealRequest(SERVER_ID, 3, SID, (PeerKey(1, KEY), PeerKey(200, KEY))),
    KeyDealRequest(SERVER_ID, 3, SID, ()),
    KeyDeal(3, SERVER_ID, SID, b"pk-share", (Sealed(1, b"box1"), Sealed(4, b"box4"))),
    KeyCheckRequest(SERVER_ID, 4, SID, (Sealed(1, b"box"), Sealed(3, b"box"))),
    KeyCheck(4, SERVER_ID, SID, ()),
    KeyCheck(4, SERVER_ID, SID, (1, 3)),
    InputRequest(SERVER_ID, 7, SID, b"public key"),
    EncryptedInput(7, SERVER_ID, SID, b"ciphertext"),
    DecryptionRequest(SERVER_ID, 2, SID, (1, 2, 7), b"mask"),
    DecryptionShare(2, SERVER_ID, SID, b"share"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    data = message.to_bytes()
    assert decode_threshold_ckks_message(data, sender=message.sender) == message
    assert repr(message).startswith(type(message).__name__ + "(")
    text = repr(message)
    for payload in (b"box", b"pk-share", b"public key", b"ciphertext", b"mask", b"share"):
        assert repr(payload) not in text and payload.decode() + "'" not in text


def _encode(type_code: int, sender: int, recipient: int, *fields: Any) -> bytes:
    data: bytes = msgpack.packb(
        [WIRE_VERSION, type_code, sender, recipient, SID, *fields], use_bin_type=True
    )
    return data


BAD: list[tuple[str, bytes]] = [
    ("short key", _encode(202, 3, 0, KEY[:31])),
    ("key as str", _encode(202, 3, 0, "k" * 32)),
    ("two fields", _encode(202, 3, 0, KEY, KEY)),
    ("unsorted peers", _encode(203, 0, 3, [[2, KEY], [1, KEY]])),
    ("repeated peer", _encode(203, 0, 3, [[1, KEY], [1, KEY]])),
    ("peer id 0", _encode(203, 0, 3, [[0, KEY]])),
    ("peer id bool", _encode(203, 0, 3, [[True, KEY]])),
    ("peer triple", _encode(203, 0, 3, [[1, KEY, KEY]])),
    ("too many peers", _encode(203, 0, 3, [[i, KEY] for i in range(1, MAX_MEMBERS + 2)])),
    ("empty share", _encode(204, 3, 0, b"", [])),
    ("empty box", _encode(204, 3, 0, b"pk", [[1, b""]])),
    ("box as str", _encode(204, 3, 0, b"pk", [[1, "box"]])),
    ("unsorted complaints", _encode(206, 4, 0, [3, 1])),
    ("complaint 0", _encode(206, 4, 0, [0])),
    ("empty public key", _encode(207, 0, 7, b"")),
    ("no ciphertext", _encode(208, 7, 0)),
    ("unsorted included", _encode(209, 0, 2, [7, 1], b"mask")),
    ("included bool", _encode(209, 0, 2, [True], b"mask")),
    ("share as list", _encode(210, 2, 0, [1, 2])),
    ("wrong direction", _encode(210, 0, 2, b"share")),
    ("unknown type", _encode(299, 2, 0, b"x")),
]


@pytest.mark.parametrize(("name", "data"), BAD, ids=[name for name, _ in BAD])
def test_malformed_messages_are_refused_briefly(name: str, data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_threshold_ckks_message(data)
    assert len(str(info.value)) < MAX_ERROR_TEXT


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        decode_threshold_ckks_message(data)
    except DecodeError as exc:
        assert len(str(exc)) < MAX_ERROR_TEXT


def test_a_huge_field_is_not_echoed() -> None:
    data = _encode(202, 3, 0, b"x" * 100_000)
    with pytest.raises(DecodeError) as info:
        decode_threshold_ckks_message(data)
    assert len(str(info.value)) < MAX_ERROR_TEXT
    with pytest.raises(DecodeError, match="transport says"):
        decode_threshold_ckks_message(KeyAdvertise(3, 0, SID, KEY).to_bytes(), sender=4)
