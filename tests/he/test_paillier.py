"""Paillier on gmpy2: correctness, phe interoperability both ways, packed vectors."""

from __future__ import annotations

import gmpy2
import msgpack
import numpy as np
import phe
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError, HeadroomError, UsageError
from secagg.he.paillier import (
    EncryptedVector,
    FreshRandomness,
    PaillierPrivateKey,
    PaillierPublicKey,
    PrecomputedBaseRandomness,
    RandomnessPool,
    ciphertext_from_phe,
    ciphertext_to_phe,
    decrypt_vector,
    encrypt_vector,
    generate_paillier_keypair,
    sum_vectors,
)
from secagg.he.slots import SlotLayout

# Test-only keys: 512-bit moduli keep the suite fast; never use such sizes elsewhere.
PUBLIC, PRIVATE = generate_paillier_keypair(512)
PHE_PUBLIC, PHE_PRIVATE = phe.generate_paillier_keypair(n_length=512)
LAYOUT = SlotLayout.for_modulus(PUBLIC.n, value_bits=16, max_summands=8)


def test_key_generation_sizes_and_repr() -> None:
    public, private = generate_paillier_keypair(768)
    assert public.bits == 768
    text = repr(private) + str(private) + repr(public)
    for secret in (private._p, private._q):
        assert str(int(secret)) not in text and format(int(secret), "x") not in text
    assert public.fingerprint in repr(private)
    with pytest.raises(ConfigurationError):
        generate_paillier_keypair(511)
    with pytest.raises(ConfigurationError):
        PaillierPublicKey(2**600)  # even
    with pytest.raises(ConfigurationError):
        PaillierPublicKey(2**300 + 1)  # too small
    with pytest.raises(ConfigurationError):
        PaillierPrivateKey(PUBLIC, 3, 5)


@given(st.integers(0, 2**511))
def test_encrypt_decrypt_add(m: int) -> None:
    m %= int(PUBLIC.n)
    c = PUBLIC.encrypt(m)
    assert PRIVATE.decrypt(c) == m
    assert PRIVATE.decrypt(PUBLIC.add(c, PUBLIC.encrypt(12345))) == (m + 12345) % int(PUBLIC.n)


def test_encryption_is_randomized_and_range_checked() -> None:
    assert PUBLIC.encrypt(7) != PUBLIC.encrypt(7)
    with pytest.raises(ConfigurationError):
        PUBLIC.encrypt(int(PUBLIC.n))
    with pytest.raises(ConfigurationError):
        PUBLIC.encrypt(-1)


def test_ours_decrypted_by_phe() -> None:
    m = 2**200 + 17
    c = PUBLIC.encrypt(m)
    number = ciphertext_to_phe(PUBLIC, c)
    phe_private = PRIVATE.to_phe()
    assert phe_private.raw_decrypt(int(c)) == m
    assert phe_private.decrypt(number) == m  # below phe's max_int: decodes as itself
    # A phe-side sum of our ciphertext and a phe encryption.
    assert phe_private.decrypt(number + phe_private.public_key.encrypt(5)) == m + 5


def test_phe_decrypted_by_ours() -> None:
    public = PaillierPublicKey.from_phe(PHE_PUBLIC)
    private = PaillierPrivateKey.from_phe(PHE_PRIVATE)
    number = PHE_PUBLIC.encrypt(987654321)
    key, c = ciphertext_from_phe(number)
    assert key == public
    assert private.decrypt(c) == 987654321
    assert private.decrypt(public.add(c, public.encrypt(9))) == 987654330
    # Keys convert back to equal phe keys.
    assert public.to_phe() == PHE_PUBLIC
    assert private.to_phe() == PHE_PRIVATE
    with pytest.raises(ConfigurationError):
        ciphertext_from_phe(PHE_PUBLIC.encrypt(0.5))  # float encoding: refused


def test_public_key_bytes_round_trip() -> None:
    assert PaillierPublicKey.from_bytes(PUBLIC.to_bytes()) == PUBLIC
    assert hash(PaillierPublicKey.from_bytes(PUBLIC.to_bytes())) == hash(PUBLIC)
    for bad in (b"", b"\x00" + PUBLIC.to_bytes(), b"\x02" * 64, b"\x01" * 8):
        with pytest.raises(DecodeError):
            PaillierPublicKey.from_bytes(bad, party=3)


def test_randomness_pool_uses_each_value_once() -> None:
    pool = RandomnessPool(PUBLIC)
    pool.precompute(6, workers=2)
    assert len(pool) == 6
    values = [pool.take() for _ in range(6)]
    assert len({int(v) for v in values}) == 6
    assert len(pool) == 0 and pool.fallbacks == 0
    c = PUBLIC.encrypt(42, randomness=pool)  # dry pool: falls back to fresh randomness
    assert pool.fallbacks == 1 and PRIVATE.decrypt(c) == 42
    for v in values:  # every value is an n-th residue: decrypts as a zero
        assert PRIVATE.decrypt(PUBLIC.raw_encrypt(0, v)) == 0


def test_precomputed_base_randomness() -> None:
    source = PrecomputedBaseRandomness(PUBLIC)
    assert "exponent_bits=256" in repr(source)
    c1, c2 = (PUBLIC.encrypt(99, randomness=source) for _ in range(2))
    assert c1 != c2 and PRIVATE.decrypt(c1) == PRIVATE.decrypt(c2) == 99
    with pytest.raises(ConfigurationError):
        PrecomputedBaseRandomness(PUBLIC, exponent_bits=128)


def _vectors(seed: int, count: int, length: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2**16, size=length, dtype=np.uint64) for _ in range(count)]


@given(st.integers(0, 200), st.integers(1, 8), st.integers(0, 2**32))
def test_vector_sum(length: int, count: int, seed: int) -> None:
    vectors = _vectors(seed, count, length)
    pool = RandomnessPool(PUBLIC, source=PrecomputedBaseRandomness(PUBLIC))
    pool.precompute(LAYOUT.plaintexts_for(length))
    encrypted = [encrypt_vector(PUBLIC, v, LAYOUT, randomness=pool) for v in vectors]
    total = sum_vectors(encrypted)
    assert total.summands == count
    expected = np.sum(vectors, axis=0, dtype=np.uint64) % 2**16 if length else np.zeros(0)
    np.testing.assert_array_equal(decrypt_vector(PRIVATE, total), expected)


def test_vector_sum_refuses_overflowing_summands() -> None:
    x = np.full(30, 2**16 - 1, dtype=np.uint64)
    one = encrypt_vector(PUBLIC, x, LAYOUT)
    total = sum_vectors([one] * LAYOUT.max_summands)
    np.testing.assert_array_equal(decrypt_vector(PRIVATE, total), (x * LAYOUT.max_summands) % 2**16)
    with pytest.raises(HeadroomError):
        total + one
    with pytest.raises(UsageError):
        sum_vectors([])


def test_vector_serialization_and_validation() -> None:
    x = _vectors(1, 1, 50)[0]
    vector = encrypt_vector(PUBLIC, x, LAYOUT)
    data = vector.to_bytes()
    back = EncryptedVector.from_bytes(data, PUBLIC, LAYOUT, length=50, max_summands=1, party=4)
    np.testing.assert_array_equal(decrypt_vector(PRIVATE, back), x)
    assert len(data) < vector.nbytes + 200

    obj = msgpack.unpackb(data)
    width = PUBLIC.ciphertext_bytes

    def tampered(**changes: object) -> bytes:
        return msgpack.packb({**obj, **changes}, use_bin_type=True)

    p = PRIVATE._p
    bad_cases = [
        b"\xc1garbage",
        tampered(v=2),
        tampered(length=51),
        tampered(summands=2),
        tampered(summands=0),
        tampered(c=obj["c"][:-1]),
        tampered(c=b"\x00" * width + obj["c"][width:]),  # zero is not a unit
        tampered(c=int(p).to_bytes(width, "big") + obj["c"][width:]),  # shares a factor
        tampered(c=b"\xff" * width + obj["c"][width:]),  # >= n^2
        tampered(layout={**obj["layout"], "guard_bits": 2}),
        tampered(key="0" * 16),
        tampered(extra=1),
    ]
    for bad in bad_cases:
        with pytest.raises(DecodeError) as info:
            EncryptedVector.from_bytes(bad, PUBLIC, LAYOUT, length=50, max_summands=1, party=4)
        assert info.value.party == 4


def test_vector_misuse() -> None:
    other_public, other_private = generate_paillier_keypair(512)
    x = np.arange(10, dtype=np.uint64)
    vector = encrypt_vector(PUBLIC, x, LAYOUT)
    with pytest.raises(UsageError):
        decrypt_vector(other_private, vector)
    other_layout = SlotLayout.for_modulus(other_public.n, value_bits=16, max_summands=8)
    with pytest.raises(UsageError):
        vector + encrypt_vector(other_public, x, other_layout)
    with pytest.raises(UsageError):
        vector + encrypt_vector(PUBLIC, x[:5], LAYOUT)
    with pytest.raises(ConfigurationError):
        encrypt_vector(PUBLIC, x, SlotLayout(16, 8, 4096))
    with pytest.raises(ConfigurationError):
        encrypt_vector(PUBLIC, np.array([2**16], dtype=np.uint64), LAYOUT)
    assert str(int(vector.ciphertexts[0])) not in repr(vector)


def test_tampered_plaintext_overflow_is_detected() -> None:
    # A dishonest encryptor puts a value into the unused top bits: decryption refuses.
    honest = encrypt_vector(PUBLIC, np.arange(5, dtype=np.uint64), LAYOUT)
    evil = PUBLIC.encrypt(2**LAYOUT.used_bits)
    forged = EncryptedVector(PUBLIC, LAYOUT, 5, (PUBLIC.add(honest.ciphertexts[0], evil),))
    with pytest.raises(DecodeError):
        decrypt_vector(PRIVATE, forged)


def test_fresh_randomness_is_an_nth_residue() -> None:
    rn = FreshRandomness(PUBLIC).take()
    assert gmpy2.gcd(rn, PUBLIC.n) == 1
    assert PRIVATE.decrypt(rn) == 0
