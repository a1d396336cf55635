"""Tests of secagg.signing: RFC 8032 vector, sign/verify, tamper detection, bad keys, no leaks."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import AuthenticationError, DecodeError, SecAggError
from secagg.signing import SigningKey, verify_signature
from tests.helpers.vectors import cases, load_vectors, unhex

ED25519 = load_vectors("ed25519_rfc8032")

KEY = SigningKey.generate()


@pytest.mark.parametrize("vector", cases(ED25519, "vectors"))
def test_rfc8032_vector(vector: dict[str, Any]) -> None:
    secret, public = unhex(vector["secret_key"]), unhex(vector["public_key"])
    message, signature = unhex(vector["message"]), unhex(vector["signature"])
    key = SigningKey.from_private_bytes(secret)
    assert key.verify_key == public
    assert key.sign(message) == signature
    verify_signature(public, message, signature)
    assert key.private_bytes() == secret


@given(message=st.binary(max_size=512))
def test_sign_verify_round_trip(message: bytes) -> None:
    signature = KEY.sign(message)
    assert len(signature) == 64
    verify_signature(KEY.verify_key, message, signature, party=2)


@given(message=st.binary(min_size=1, max_size=256), data=st.data())
def test_tampered_message_is_rejected(message: bytes, data: st.DataObject) -> None:
    signature = KEY.sign(message)
    position = data.draw(st.integers(0, len(message) * 8 - 1))
    tampered = bytearray(message)
    tampered[position // 8] ^= 1 << (position % 8)
    with pytest.raises(AuthenticationError) as info:
        verify_signature(KEY.verify_key, bytes(tampered), signature, party=5)
    assert info.value.party == 5


@given(data=st.data())
def test_tampered_signature_is_rejected(data: st.DataObject) -> None:
    signature = bytearray(KEY.sign(b"advertised keys"))
    position = data.draw(st.integers(0, len(signature) * 8 - 1))
    signature[position // 8] ^= 1 << (position % 8)
    with pytest.raises(AuthenticationError):
        verify_signature(KEY.verify_key, b"advertised keys", bytes(signature), party=5)


def test_wrong_key_and_wrong_length_signature() -> None:
    signature = KEY.sign(b"m")
    with pytest.raises(AuthenticationError):
        verify_signature(SigningKey.generate().verify_key, b"m", signature)
    for bad in (signature[:63], signature + b"\x00", b""):
        with pytest.raises(AuthenticationError) as info:
            verify_signature(KEY.verify_key, b"m", bad, party=1)
        assert info.value.party == 1


@pytest.mark.parametrize("verify_key", [b"", bytes(31), bytes(33), "k" * 32, None])
def test_malformed_verify_key_is_a_decode_error(verify_key: object) -> None:
    with pytest.raises(DecodeError) as info:
        verify_signature(verify_key, b"m", KEY.sign(b"m"), party=7)  # type: ignore[arg-type]
    assert info.value.party == 7


def test_non_bytes_message_or_signature() -> None:
    with pytest.raises(DecodeError):
        verify_signature(KEY.verify_key, "m", KEY.sign(b"m"))  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        verify_signature(KEY.verify_key, b"m", None)  # type: ignore[arg-type]


def test_private_round_trip_and_bad_private_bytes() -> None:
    again = SigningKey.from_private_bytes(KEY.private_bytes())
    assert again.verify_key == KEY.verify_key
    with pytest.raises(DecodeError):
        SigningKey.from_private_bytes(bytes(16))


def test_repr_hides_private_key() -> None:
    secret = KEY.private_bytes()
    for text in (repr(KEY), str(KEY)):
        assert secret.hex() not in text
        assert secret.hex().upper() not in text
        assert secret.decode("latin-1") not in text
    assert KEY.fingerprint() in repr(KEY)
    with pytest.raises(SecAggError):
        pickle.dumps(KEY)
