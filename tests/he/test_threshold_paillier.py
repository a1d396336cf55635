"""Threshold Paillier: any t of l decrypt, t - 1 cannot, proofs catch tampering."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import gmpy2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
    UsageError,
)
from secagg.he import bigint as big
from secagg.he.paillier import PaillierPublicKey, ciphertext_from_phe, encrypt_vector
from secagg.he.slots import SlotLayout
from secagg.he.threshold_paillier import (
    KeyShare,
    PartialDecryption,
    ThresholdPublicKey,
    _combine,
    combine_partials,
    deal_threshold_keys,
    decrypt_vector,
    verify_partial,
)

# Test-only 512-bit keys (256-bit safe primes generate in milliseconds); never used elsewhere.
PUBLIC, SHARES = deal_threshold_keys(512, threshold=3, holders=5)
N = int(PUBLIC.paillier.n)
CONTEXT = b"session-1/decrypt"


def _encrypt(*plaintexts: int) -> list[object]:
    return [PUBLIC.paillier.encrypt(m) for m in plaintexts]


PLAINTEXTS = (0, 1, 123456789, N - 1, 2**300)
CIPHERTEXTS = _encrypt(*PLAINTEXTS)
PARTIALS = {s.index: s.partial_decrypt(CIPHERTEXTS, context=CONTEXT) for s in SHARES}


def test_any_t_subset_decrypts() -> None:
    for subset in itertools.combinations(sorted(PARTIALS), PUBLIC.threshold):
        result = combine_partials(
            PUBLIC, CIPHERTEXTS, [PARTIALS[i] for i in subset], context=CONTEXT
        )
        assert result.plaintexts == PLAINTEXTS
        assert result.used == subset and not result.rejected


def test_t_minus_one_cannot_decrypt() -> None:
    for subset in itertools.combinations(sorted(PARTIALS), PUBLIC.threshold - 1):
        with pytest.raises(InsufficientSharesError):
            combine_partials(PUBLIC, CIPHERTEXTS, [PARTIALS[i] for i in subset], context=CONTEXT)
        # Forcing the interpolation with t - 1 points does not give the plaintexts either.
        try:
            forced = _combine(PUBLIC, list(subset), [PARTIALS[i].values for i in subset])
        except DecodeError:
            continue
        assert tuple(forced) != PLAINTEXTS


@functools.cache
def _keys(threshold: int, holders: int) -> tuple[ThresholdPublicKey, list[KeyShare]]:
    # Cached so that hypothesis replays an example under the same key.
    return deal_threshold_keys(512, threshold=threshold, holders=holders)


@given(st.integers(1, 5), st.data())
def test_random_thresholds_and_subsets(holders: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(1, holders))
    public, shares = _keys(threshold, holders)
    plaintext = data.draw(st.integers(0, int(public.paillier.n) - 1))
    ciphertext = public.paillier.encrypt(plaintext)
    subset = data.draw(st.permutations(shares)).copy()[: data.draw(st.integers(threshold, holders))]
    partials = [s.partial_decrypt([ciphertext]) for s in subset]
    assert combine_partials(public, [ciphertext], partials).plaintexts == (plaintext,)


def _replace_value(partial: PartialDecryption, index: int, value: object) -> PartialDecryption:
    values = list(partial.values)
    values[index] = value
    return dataclasses.replace(partial, values=tuple(values))


def test_tampered_partials_fail_their_proofs_and_are_excluded() -> None:
    nsquare = PUBLIC.paillier.nsquare
    honest = PARTIALS[2]
    other = SHARES[1].partial_decrypt(_encrypt(*PLAINTEXTS), context=CONTEXT)
    tampered = [
        _replace_value(honest, 3, honest.values[3] * 4 % nsquare),
        _replace_value(honest, 0, other.values[0]),
        _replace_value(honest, 4, gmpy2.powmod(honest.values[4], 3, nsquare)),
        dataclasses.replace(honest, challenge=honest.challenge ^ 1),
        dataclasses.replace(honest, response=honest.response + 1),
        dataclasses.replace(honest, index=4),  # claims to be another holder
        other,  # a valid proof about other ciphertexts
    ]
    for bad in tampered:
        with pytest.raises(AuthenticationError) as info:
            verify_partial(PUBLIC, CIPHERTEXTS, bad, context=CONTEXT)
        assert info.value.party == bad.index
        partials = [bad] + [PARTIALS[i] for i in (1, 3, 5) if i != bad.index]
        result = combine_partials(PUBLIC, CIPHERTEXTS, partials, context=CONTEXT)
        assert result.plaintexts == PLAINTEXTS
        assert bad.index in result.rejected and bad.index not in result.used
    # Exactly t - 1 honest partials remain beside a tampered one: refused, not wrong.
    with pytest.raises(InsufficientSharesError, match="rejected"):
        combine_partials(
            PUBLIC, CIPHERTEXTS, [tampered[0], PARTIALS[1], PARTIALS[3]], context=CONTEXT
        )


def test_proof_is_bound_to_context() -> None:
    verify_partial(PUBLIC, CIPHERTEXTS, PARTIALS[1], context=CONTEXT)
    with pytest.raises(AuthenticationError):
        verify_partial(PUBLIC, CIPHERTEXTS, PARTIALS[1], context=b"session-2/decrypt")


def test_sign_flip_is_caught() -> None:
    # Shoup's relation is about squares, so -c_i satisfies it too; the Fiat-Shamir statement
    # hashes the exact values, so a flipped sign still fails the proof.
    flipped = _replace_value(PARTIALS[1], 2, PUBLIC.paillier.nsquare - PARTIALS[1].values[2])
    with pytest.raises(AuthenticationError):
        verify_partial(PUBLIC, CIPHERTEXTS, flipped, context=CONTEXT)
    # Combination squares partials, so even unverified it would give the right plaintexts.
    result = combine_partials(
        PUBLIC, CIPHERTEXTS, [flipped, PARTIALS[2], PARTIALS[3]], context=CONTEXT, verify=False
    )
    assert result.plaintexts == PLAINTEXTS


def test_combine_misuse() -> None:
    with pytest.raises(DuplicateShareError):
        combine_partials(PUBLIC, CIPHERTEXTS, [PARTIALS[1], PARTIALS[1], PARTIALS[2]])
    short = dataclasses.replace(PARTIALS[1], values=PARTIALS[1].values[:2])
    with pytest.raises(IncompatibleSharesError):
        combine_partials(PUBLIC, CIPHERTEXTS, [short, PARTIALS[2], PARTIALS[3]])
    with pytest.raises(AuthenticationError):
        verify_partial(PUBLIC, CIPHERTEXTS, short)
    with pytest.raises(AuthenticationError):
        verify_partial(PUBLIC, CIPHERTEXTS, _replace_value(PARTIALS[1], 0, 0))
    with pytest.raises(AuthenticationError):
        verify_partial(PUBLIC, CIPHERTEXTS, dataclasses.replace(PARTIALS[1], response=-1))
    with pytest.raises(DecodeError):
        SHARES[0].partial_decrypt([0])


def test_packed_vector_threshold_decryption_and_phe_interop() -> None:
    layout = SlotLayout.for_modulus(PUBLIC.paillier.n, value_bits=20, max_summands=4)
    rng = np.random.default_rng(5)
    xs = [rng.integers(0, 2**20, size=97, dtype=np.uint64) for _ in range(3)]
    total = encrypt_vector(PUBLIC.paillier, xs[0], layout)
    for x in xs[1:]:
        total = total + encrypt_vector(PUBLIC.paillier, x, layout)
    partials = [s.partial_decrypt(total.ciphertexts, context=CONTEXT) for s in SHARES[2:]]
    values, rejected = decrypt_vector(PUBLIC, total, partials, context=CONTEXT)
    np.testing.assert_array_equal(values, sum(xs) % 2**20)
    assert rejected == {}
    # phe encrypts under the threshold key; the committee decrypts.
    phe_number = PUBLIC.paillier.to_phe().encrypt(31337)
    key, c = ciphertext_from_phe(phe_number)
    assert key == PUBLIC.paillier
    partials = [s.partial_decrypt([c]) for s in SHARES[:3]]
    assert combine_partials(PUBLIC, [c], partials).plaintexts == (31337,)
    other, _ = deal_threshold_keys(512, threshold=1, holders=1)
    with pytest.raises(UsageError):
        decrypt_vector(other, total, partials)


def test_serialization_round_trips_and_rejections() -> None:
    assert ThresholdPublicKey.from_bytes(PUBLIC.to_bytes()) == PUBLIC
    share = KeyShare.from_bytes(SHARES[1].to_bytes(), PUBLIC)
    assert share.index == 2
    assert share.partial_decrypt(CIPHERTEXTS[:1]).values == PARTIALS[2].values[:1]
    wrong = KeyShare(PUBLIC, 3, 12345).to_bytes()
    with pytest.raises(DecodeError):
        KeyShare.from_bytes(wrong, PUBLIC)  # does not match verification key 3
    data = PARTIALS[4].to_bytes(PUBLIC)
    back = PartialDecryption.from_bytes(data, PUBLIC, len(CIPHERTEXTS), party=9)
    assert back == PARTIALS[4]
    for bad, count in ((data, 4), (data[:-1], 5), (b"\x00", 5)):
        with pytest.raises(DecodeError) as info:
            PartialDecryption.from_bytes(bad, PUBLIC, count, party=9)
        assert info.value.party == 9
    forged = dataclasses.replace(PARTIALS[4], index=6).to_bytes(PUBLIC)
    with pytest.raises(DecodeError):
        PartialDecryption.from_bytes(forged, PUBLIC, len(CIPHERTEXTS))
    for bad_key in (b"", PUBLIC.to_bytes()[:-3]):
        with pytest.raises(DecodeError):
            ThresholdPublicKey.from_bytes(bad_key)


def test_dealer_parameters_and_supplied_primes() -> None:
    p, q = big.random_safe_prime(256), big.random_safe_prime(256)
    public, shares = deal_threshold_keys(512, threshold=2, holders=2, safe_primes=(int(p), int(q)))
    assert public.paillier == PaillierPublicKey(int(p * q))
    c = public.paillier.encrypt(77)
    assert combine_partials(public, [c], [s.partial_decrypt([c]) for s in shares]).plaintexts == (
        77,
    )
    not_safe = big.random_prime(256)
    while gmpy2.is_prime((not_safe - 1) // 2):
        not_safe = big.random_prime(256)
    for bad in ((int(p), int(not_safe)), (int(p), int(p))):
        with pytest.raises(ConfigurationError):
            deal_threshold_keys(512, threshold=1, holders=2, safe_primes=bad)
    for kwargs in (
        {"threshold": 0, "holders": 2},
        {"threshold": 3, "holders": 2},
        {"threshold": 1, "holders": 257},
    ):
        with pytest.raises(ConfigurationError):
            deal_threshold_keys(512, **kwargs)
    with pytest.raises(ConfigurationError):
        deal_threshold_keys(510, threshold=1, holders=1)


def test_no_secret_in_repr() -> None:
    text = " ".join(repr(x) for x in (*SHARES, PUBLIC, PARTIALS[1]))
    for share in SHARES:
        assert str(int(share._secret)) not in text
        assert format(int(share._secret), "x")[:20] not in text
