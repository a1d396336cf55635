"""Tests of secagg.keys: X25519 agreement, HKDF pair keys, bad peer keys, no leaks."""

from __future__ import annotations

import copy
import hashlib
import hmac
import pickle
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError, SecAggError
from secagg.keys import KeyPair, Purpose, agree, derive_pair_key
from tests.helpers.vectors import cases, load_vectors, unhex

SESSION = b"keys-session-001"

X25519 = load_vectors("x25519_rfc7748")
HKDF = load_vectors("hkdf_rfc5869")
DH = X25519["diffie_hellman"]
SHARED = unhex(DH["shared"])


def hkdf_extract(ikm: bytes, salt: bytes = bytes(32)) -> bytes:
    """RFC 5869 extract written out with hmac (salt absent: HashLen zero bytes)."""
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_sha256(ikm: bytes, info: bytes, length: int, salt: bytes = bytes(32)) -> bytes:
    """RFC 5869 written out with hmac, salt absent (HashLen zero bytes) unless given."""
    prk = hkdf_extract(ikm, salt)
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


@pytest.mark.parametrize("vector", cases(HKDF, "vectors"))
def test_hkdf_reference_matches_rfc5869(vector: dict[str, Any]) -> None:
    # The reference the pair-key known answer below is checked against, checked itself.
    ikm, salt, info = unhex(vector["ikm"]), unhex(vector["salt"]), unhex(vector["info"])
    assert hkdf_extract(ikm, salt) == unhex(vector["prk"])
    assert hkdf_sha256(ikm, info, vector["length"], salt) == unhex(vector["okm"])


def test_rfc7748_vector() -> None:
    alice = KeyPair.from_private_bytes(unhex(DH["alice_private"]))
    bob = KeyPair.from_private_bytes(unhex(DH["bob_private"]))
    assert alice.public_bytes == unhex(DH["alice_public"])
    assert bob.public_bytes == unhex(DH["bob_public"])
    assert alice.exchange(unhex(DH["bob_public"])) == SHARED
    assert bob.exchange(unhex(DH["alice_public"])) == SHARED
    assert alice.private_bytes() == unhex(DH["alice_private"])


@pytest.mark.parametrize("vector", cases(X25519, "scalar_multiplication"))
def test_rfc7748_scalar_multiplication(vector: dict[str, Any]) -> None:
    pair = KeyPair.from_private_bytes(unhex(vector["scalar"]))
    assert pair.exchange(unhex(vector["u"])) == unhex(vector["output"])


def test_derive_pair_key_known_answer() -> None:
    # The documented info layout: prefix, labelled purpose, labelled session, (min, max) ids.
    info = (
        b"secagg/pair-key/v1"
        + struct.pack(">H", 9)
        + b"mask-seed"
        + struct.pack(">H", len(SESSION))
        + SESSION
        + struct.pack(">QQ", 3, 7)
    )
    got = derive_pair_key(
        SHARED, purpose=Purpose.MASK_SEED, session_id=SESSION, client_a=7, client_b=3
    )
    assert got == hkdf_sha256(SHARED, info, 32)
    long = derive_pair_key(
        SHARED, purpose=Purpose.MASK_SEED, session_id=SESSION, client_a=3, client_b=7, length=80
    )
    assert long == hkdf_sha256(SHARED, info, 80)


@given(u=st.integers(1, 2**20), v=st.integers(1, 2**20))
def test_both_ends_agree_on_every_purpose(u: int, v: int) -> None:
    if u == v:
        return
    a, b = KeyPair.generate(), KeyPair.generate()
    for purpose in Purpose:
        key_ab = agree(a, b.public_bytes, purpose=purpose, session_id=SESSION, own_id=u, peer_id=v)
        key_ba = agree(b, a.public_bytes, purpose=purpose, session_id=SESSION, own_id=v, peer_id=u)
        assert key_ab == key_ba
        assert len(key_ab) == 32


def test_keys_differ_across_purposes_sessions_and_pairs() -> None:
    secret = KeyPair.generate().exchange(KeyPair.generate().public_bytes)

    def key(
        purpose: Purpose = Purpose.MASK_SEED, session: bytes = SESSION, a: int = 1, b: int = 2
    ) -> bytes:
        return derive_pair_key(secret, purpose=purpose, session_id=session, client_a=a, client_b=b)

    keys = [
        key(),
        key(purpose=Purpose.SHARE_KEY),
        key(purpose=Purpose.CONFIRMATION),
        key(session=b"keys-session-002"),
        key(a=1, b=3),
        key(a=3, b=2),
        key(a=2**64 - 1, b=0),
    ]
    assert len(set(keys)) == len(keys)
    assert key(a=2, b=1) == key(a=1, b=2)
    other_secret = KeyPair.generate().exchange(KeyPair.generate().public_bytes)
    assert (
        derive_pair_key(
            other_secret, purpose=Purpose.MASK_SEED, session_id=SESSION, client_a=1, client_b=2
        )
        != key()
    )


@given(data=st.binary(max_size=64).filter(lambda b: len(b) != 32))
def test_bad_public_key_length_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        agree(
            KeyPair.generate(),
            data,
            purpose=Purpose.MASK_SEED,
            session_id=SESSION,
            own_id=1,
            peer_id=9,
        )
    assert info.value.party == 9


@pytest.mark.parametrize("vector", cases(X25519, "small_order_points"))
def test_small_order_public_key_raises_decode_error(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as info:
        KeyPair.generate().exchange(unhex(vector["point"]), party=4)
    assert info.value.party == 4


@pytest.mark.parametrize("value", ["x" * 32, bytearray(32), None, 5])
def test_non_bytes_public_key_raises_decode_error(value: object) -> None:
    with pytest.raises(DecodeError):
        KeyPair.generate().exchange(value)  # type: ignore[arg-type]


def test_private_key_round_trip_and_bad_length() -> None:
    pair = KeyPair.generate()
    again = KeyPair.from_private_bytes(pair.private_bytes())
    assert again.public_bytes == pair.public_bytes
    with pytest.raises(DecodeError) as info:
        KeyPair.from_private_bytes(bytes(31), party=6)
    assert info.value.party == 6


def test_repr_shows_no_private_key() -> None:
    pair = KeyPair.generate()
    secret = pair.private_bytes()
    for text in (repr(pair), str(pair), f"{pair}"):
        assert secret.hex() not in text
        assert secret.hex().upper() not in text
        assert repr(secret) not in text
        assert secret.decode("latin-1") not in text
    assert pair.fingerprint() in repr(pair)
    with pytest.raises(SecAggError):
        pickle.dumps(pair)
    with pytest.raises(SecAggError):
        copy.deepcopy(pair)


def test_derive_pair_key_validation() -> None:
    good = dict(purpose=Purpose.MASK_SEED, session_id=SESSION, client_a=1, client_b=2)
    bad: list[tuple[bytes, dict[str, object]]] = [
        (SHARED[:16], {}),
        (SHARED, {"purpose": b"mask-seed"}),
        (SHARED, {"session_id": b""}),
        (SHARED, {"session_id": "text"}),
        (SHARED, {"client_b": 1}),
        (SHARED, {"client_a": -1}),
        (SHARED, {"client_a": 2**64}),
        (SHARED, {"client_a": True}),
        (SHARED, {"length": 0}),
        (SHARED, {"length": 255 * 32 + 1}),
    ]
    for secret, change in bad:
        with pytest.raises(ConfigurationError):
            derive_pair_key(secret, **{**good, **change})  # type: ignore[arg-type]


def test_agree_rejects_equal_ids_and_bad_own_key() -> None:
    a, b = KeyPair.generate(), KeyPair.generate()
    with pytest.raises(ConfigurationError):
        agree(a, b.public_bytes, purpose=Purpose.SHARE_KEY, session_id=SESSION, own_id=3, peer_id=3)
    with pytest.raises(ConfigurationError):
        agree(
            b"not a key",  # type: ignore[arg-type]
            b.public_bytes,
            purpose=Purpose.SHARE_KEY,
            session_id=SESSION,
            own_id=1,
            peer_id=2,
        )
