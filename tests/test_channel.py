"""Tests of secagg.channel: AES-GCM round trip and every way a relayed box can be tampered."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from secagg.channel import OVERHEAD_BYTES, open_sealed, seal
from secagg.errors import AuthenticationError, ConfigurationError, DecodeError
from tests.helpers.vectors import cases, load_vectors, unhex

SESSION = b"channel-session1"
KEY = bytes(range(32))
IDS = dict(session_id=SESSION, sender=3, recipient=8)
PINNED = load_vectors("channel")


@given(plaintext=st.binary(max_size=2048))
def test_round_trip(plaintext: bytes) -> None:
    box = seal(KEY, plaintext, **IDS)  # type: ignore[arg-type]
    assert len(box) == len(plaintext) + OVERHEAD_BYTES
    assert open_sealed(KEY, box, **IDS) == plaintext  # type: ignore[arg-type]


def test_nonces_are_fresh() -> None:
    boxes = {seal(KEY, b"same", **IDS) for _ in range(50)}  # type: ignore[arg-type]
    assert len(boxes) == 50


def test_associated_data_layout() -> None:
    # The box opens with the documented AD (prefix, version 1, session, sender, recipient;
    # pinned in tests/vectors/channel.json) and not without it: the ids are bound
    # cryptographically, not just checked.
    box = seal(KEY, b"shares", **IDS)  # type: ignore[arg-type]
    ad = unhex(PINNED["associated_data"])
    assert ad == (
        b"secagg/channel\x01" + struct.pack(">H", len(SESSION)) + SESSION + struct.pack(">QQ", 3, 8)
    )
    assert AESGCM(KEY).decrypt(box[:12], box[12:], ad) == b"shares"
    with pytest.raises(InvalidTag):
        AESGCM(KEY).decrypt(box[:12], box[12:], None)
    version_2 = b"secagg/channel\x02" + ad[len(b"secagg/channel\x01") :]
    with pytest.raises(InvalidTag):
        AESGCM(KEY).decrypt(box[:12], box[12:], version_2)


@pytest.mark.parametrize("vector", cases(PINNED, "boxes"))
def test_pinned_box(vector: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A box sealed once (tests/vectors/channel.json) opens forever, and sealing the same
    plaintext with the same nonce gives the same bytes: the box format is pinned."""
    sealed, plaintext, nonce = unhex(vector["sealed"]), unhex(vector["plaintext"]), vector["nonce"]
    assert open_sealed(KEY, sealed, **IDS) == plaintext  # type: ignore[arg-type]
    monkeypatch.setattr("secagg.channel.os.urandom", lambda size: unhex(nonce)[:size])
    assert seal(KEY, plaintext, **IDS) == sealed  # type: ignore[arg-type]


def test_pinned_vectors_are_of_this_module() -> None:
    assert unhex(PINNED["key"]) == KEY
    assert unhex(PINNED["session_id"]) == SESSION
    assert (PINNED["sender"], PINNED["recipient"]) == (IDS["sender"], IDS["recipient"])


@given(plaintext=st.binary(max_size=256), data=st.data())
def test_any_flipped_bit_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    box = bytearray(seal(KEY, plaintext, **IDS))  # type: ignore[arg-type]
    position = data.draw(st.integers(0, len(box) * 8 - 1))
    box[position // 8] ^= 1 << (position % 8)
    with pytest.raises(AuthenticationError) as info:
        open_sealed(KEY, bytes(box), **IDS)  # type: ignore[arg-type]
    assert info.value.party == 3


@given(plaintext=st.binary(max_size=256), data=st.data())
def test_truncation_is_rejected(plaintext: bytes, data: st.DataObject) -> None:
    box = seal(KEY, plaintext, **IDS)  # type: ignore[arg-type]
    cut = data.draw(st.integers(0, len(box) - 1))
    for truncated in (box[:cut], box[len(box) - cut :]):
        with pytest.raises(AuthenticationError) as info:
            open_sealed(KEY, truncated, **IDS)  # type: ignore[arg-type]
        assert info.value.party == 3


def test_appended_bytes_are_rejected() -> None:
    box = seal(KEY, b"bundle", **IDS)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError):
        open_sealed(KEY, box + b"\x00", **IDS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"sender": 4},
        {"recipient": 9},
        {"sender": 8, "recipient": 3},  # reflected back to the sender
        {"session_id": b"channel-session2"},
        {"session_id": SESSION + b"\x00"},
    ],
)
def test_wrong_ids_or_session_are_rejected(change: dict[str, object]) -> None:
    box = seal(KEY, b"bundle of shares", **IDS)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as info:
        open_sealed(KEY, box, **{**IDS, **change})  # type: ignore[arg-type]
    assert info.value.party == change.get("sender", 3)


def test_wrong_key_is_rejected() -> None:
    box = seal(KEY, b"bundle", **IDS)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError):
        open_sealed(os.urandom(32), box, **IDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("sealed", ["text", bytearray(40), None, 12])
def test_non_bytes_box_is_a_decode_error(sealed: object) -> None:
    with pytest.raises(DecodeError) as info:
        open_sealed(KEY, sealed, **IDS)  # type: ignore[arg-type]
    assert info.value.party == 3


def test_local_parameter_errors() -> None:
    for key in (b"", bytes(15), bytes(33), "k" * 32):
        with pytest.raises(ConfigurationError):
            seal(key, b"x", **IDS)  # type: ignore[arg-type]
    for change in ({"sender": -1}, {"recipient": 2**64}, {"session_id": b""}, {"sender": True}):
        with pytest.raises(ConfigurationError):
            seal(KEY, b"x", **{**IDS, **change})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        seal(KEY, "text", **IDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("key_length", [16, 24, 32])
def test_all_aes_key_sizes(key_length: int) -> None:
    key = os.urandom(key_length)
    assert open_sealed(key, seal(key, b"m", **IDS), **IDS) == b"m"  # type: ignore[arg-type]
