"""secagg.curve25519: Edwards25519 arithmetic pinned to ``cryptography``, and the
shared-secret proof a Bonawitz complaint (and the fallback wave) carries."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.curve25519 import (
    BASE,
    IDENTITY,
    L,
    decode_point,
    prove_dleq,
    prove_shared_secret,
    secret_scalar,
    verify_dleq,
    verify_shared_secret,
    x25519_public,
    x25519_publics,
)
from secagg.errors import ConfigurationError, DecodeError
from secagg.keys import KeyPair
from secagg.signing import SigningKey

CONTEXT = b"secagg/test/complaint"
# RFC 8032: the base point's encoding; a point of order 8 (y = 0 is of order 4: x^2 = -1).
BASE_ENCODING = "58" + "66" * 31
ORDER_4 = bytes(32)  # y = 0


def _pair() -> tuple[bytes, bytes, bytes]:
    """seed, Ed25519 public key, X25519 private scalar of one key pair."""
    seed = os.urandom(32)
    return seed, SigningKey.from_private_bytes(seed).verify_key, secret_scalar(seed)


def test_base_point_and_group_order() -> None:
    assert BASE.encode().hex() == BASE_ENCODING
    assert (L * BASE).is_identity() and not BASE.is_identity()
    assert BASE + IDENTITY == BASE and BASE - BASE == IDENTITY
    assert 3 * BASE == BASE + BASE + BASE == BASE.double() + BASE
    assert decode_point(BASE.encode()) == BASE


@settings(max_examples=5)
@given(st.binary(min_size=32, max_size=32))
def test_edwards_keys_are_the_x25519_keys_of_cryptography(seed: bytes) -> None:
    edwards = SigningKey.from_private_bytes(seed).verify_key
    scalar = secret_scalar(seed)
    assert x25519_public(edwards) == KeyPair.from_private_bytes(scalar).public_bytes
    assert decode_point(edwards) == int.from_bytes(scalar, "little") * BASE


def test_the_shared_secret_proof_reveals_exactly_the_x25519_secret() -> None:
    _, own, a = _pair()
    _, peer, b = _pair()
    shared, proof = prove_shared_secret(a, peer, context=CONTEXT)
    raw = KeyPair.from_private_bytes(a).exchange(KeyPair.from_private_bytes(b).public_bytes)
    assert verify_shared_secret(own, peer, shared, proof, context=CONTEXT) == raw
    # The dealer's side derives the same secret: a complaint lets the server open the
    # boxes of exactly this pair.
    assert KeyPair.from_private_bytes(b).exchange(x25519_public(own)) == raw


def test_a_proof_binds_its_context_keys_secret_and_bytes() -> None:
    _, own, a = _pair()
    _, peer, _ = _pair()
    _, other, _ = _pair()
    shared, proof = prove_shared_secret(a, peer, context=CONTEXT)
    flipped = bytes([proof[0] ^ 1]) + proof[1:]
    big = (L).to_bytes(32, "little") + proof[32:]  # a scalar not below L
    for args in (
        (own, peer, shared, proof, b"another context"),
        (other, peer, shared, proof, CONTEXT),  # someone else's key
        (own, other, shared, proof, CONTEXT),  # another peer
        (own, peer, (2 * decode_point(shared)).encode(), proof, CONTEXT),  # another secret
        (own, peer, shared, flipped, CONTEXT),
        (own, peer, shared, big, CONTEXT),
        (own, peer, shared, proof[:63], CONTEXT),
        (own, peer, shared, "proof", CONTEXT),
    ):
        assert verify_shared_secret(*args[:4], context=args[4]) is None


def test_small_order_and_malformed_points_never_verify() -> None:
    _, own, a = _pair()
    _, peer, _ = _pair()
    shared, proof = prove_shared_secret(a, peer, context=CONTEXT)
    torsion = decode_point(ORDER_4)
    shifted = (decode_point(shared) + torsion).encode()  # the secret plus a small-order part
    for bad in (shifted, ORDER_4, IDENTITY.encode(), b"\xff" * 32, b"\x00" * 31, None):
        assert verify_shared_secret(own, peer, bad, proof, context=CONTEXT) is None
        assert verify_shared_secret(own, bad, shared, proof, context=CONTEXT) is None  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        decode_point(b"\xff" * 32)  # y >= P
    with pytest.raises(DecodeError):
        x25519_publics([b"\x01" + bytes(31)])  # y = 1: no u
    with pytest.raises(DecodeError):
        x25519_public(b"short")


def test_dleq_proofs_verify_and_refuse_unequal_logs() -> None:
    base2 = 7 * BASE
    image1, image2, proof = prove_dleq(12345, BASE, base2, context=CONTEXT)
    assert verify_dleq(BASE, image1, base2, image2, proof, context=CONTEXT)
    assert not verify_dleq(BASE, image1, base2, image2 + BASE, proof, context=CONTEXT)
    assert not verify_dleq(BASE, image1, base2, image2, proof, context=b"other")
    with pytest.raises(ConfigurationError):
        prove_dleq(0, BASE, base2, context=CONTEXT)
    with pytest.raises(ConfigurationError):
        prove_shared_secret(b"\x07" + bytes(31), BASE.encode(), context=CONTEXT)  # unclamped
    with pytest.raises(ConfigurationError):
        secret_scalar(b"short")
