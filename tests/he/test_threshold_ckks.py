"""Threshold CKKS: t-of-n round trips from any t answers, the noise model, t - 1 shares
reveal nothing, the one-share-per-ciphertext rule, faulty shares found and named, strict
decoding, no pickling of secrets."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import pickle
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
    MaliciousRequestError,
    UsageError,
)
from secagg.he.rlwe.noise import noise_tail_bound, noise_variance
from secagg.he.rlwe.params import ERROR_ETA
from secagg.he.rlwe.ring import lagrange_at_zero
from secagg.he.rlwe.sampling import Sampler
from secagg.he.threshold_ckks import (
    MAX_REQUEST_ID_BYTES,
    Ciphertext,
    CiphertextMask,
    Committee,
    CommitteeMember,
    DecryptionShare,
    KeyShareDelivery,
    MemberState,
    PublicKey,
    PublicKeyShare,
    ThresholdCkksParameters,
    collective_public_key,
    combine,
    combine_verified,
    derive_crs_seed,
    encrypt,
    encrypt_floats,
    float_codec,
    sum_ciphertexts,
)
from secagg.he.threshold_ckks.ciphertext import encrypt_zero
from secagg.he.threshold_ckks.lagrange import integer_lagrange
from secagg.he.threshold_ckks.params import VERSION
from tests.helpers.threshold_ckks_records import PARAMS as VECTOR_PARAMS
from tests.helpers.threshold_ckks_records import build_record
from tests.helpers.vectors import cases, load_vectors

PARAMS = ThresholdCkksParameters()  # N = 8192, 4 limbs, 32-bit plaintexts, 5 members, 1000
SMALL = ThresholdCkksParameters(
    degree=4096, limbs=3, plaintext_bits=16, committee_size=4, max_summands=64
)
SEED = bytes(range(32))


def setup(
    params: ThresholdCkksParameters,
    members: Sequence[int],
    threshold: int,
    contributors: Sequence[int] | None = None,
    *,
    min_summands: int = 2,
) -> tuple[Committee, dict[int, CommitteeMember], PublicKey]:
    """A committee whose key is over ``contributors`` (default: every member)."""
    committee = Committee(tuple(members), threshold)
    people = {
        i: CommitteeMember(params, committee, i, SEED, min_summands=min_summands)
        for i in committee.members
    }
    contributors = list(committee.members if contributors is None else contributors)
    messages = {i: people[i].setup_message() for i in contributors}
    for j, member in people.items():
        member.finish_setup(contributors, {i: messages[i][1][j] for i in contributors if i != j})
    public = collective_public_key(params, SEED, [messages[i][0] for i in contributors])
    return committee, people, public


def shares_of(
    people: dict[int, CommitteeMember],
    aggregate: Ciphertext,
    answering: Sequence[int],
    request_id: bytes = b"round-1",
) -> list[DecryptionShare]:
    mask = aggregate.mask_part()
    return [people[j].decryption_share(mask, request_id=request_id) for j in answering]


def decrypt(
    committee: Committee,
    people: dict[int, CommitteeMember],
    aggregate: Ciphertext,
    answering: Sequence[int],
    request_id: bytes = b"round-1",
) -> np.ndarray:
    """Decrypt from the shares of exactly ``answering`` (combine uses the t lowest ids)."""
    return combine(committee, aggregate, shares_of(people, aggregate, answering, request_id))


def random_inputs(
    params: ThresholdCkksParameters, clients: int, length: int, seed: int
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)  # not-secret: test data
    dtype = np.uint32 if params.plaintext_bits <= 32 else np.uint64
    return [
        rng.integers(0, 2**params.plaintext_bits, size=length, dtype=np.uint64).astype(dtype)
        for _ in range(clients)
    ]


def exact_sum(params: ThresholdCkksParameters, inputs: Sequence[np.ndarray]) -> np.ndarray:
    total = np.zeros(inputs[0].shape, dtype=object)
    for x in inputs:
        total = total + x.astype(object)
    return np.array([int(v) % 2**params.plaintext_bits for v in total], dtype=np.uint64)


COMMITTEE, PEOPLE, PUBLIC = setup(PARAMS, [1, 2, 3, 4, 5], 3)


# ---------------------------------------------------------------------------------------
# Round trips


def test_every_t_subset_decrypts_the_exact_sum_from_the_same_shares() -> None:
    length = 10_000  # two chunks, the second one partly padding
    inputs = random_inputs(PARAMS, 4, length, 0)
    inputs[0][:3] = [0, 2**32 - 1, 2**31]
    aggregate = sum_ciphertexts(encrypt(PUBLIC, x) for x in inputs)
    assert aggregate.summands == 4
    # Every member answers once; any t of the five answers decrypt.
    shares = {s.member: s for s in shares_of(PEOPLE, aggregate, COMMITTEE.members)}
    expected = exact_sum(PARAMS, inputs)
    for subset in itertools.combinations(COMMITTEE.members, 3):
        result = combine(COMMITTEE, aggregate, [shares[j] for j in subset])
        assert result.dtype == np.uint32 and result.shape == (length,)
        assert np.array_equal(result.astype(np.uint64), expected)


def test_more_shares_than_t_and_a_single_client() -> None:
    committee, people, public = setup(PARAMS, [1, 2, 3, 4, 5], 3, min_summands=1)
    (x,) = random_inputs(PARAMS, 1, 100, 99)
    ciphertext = encrypt(public, x)
    assert np.array_equal(decrypt(committee, people, ciphertext, [5, 4, 3, 2, 1]), x)


@settings(max_examples=15)
@given(data=st.data())
def test_round_trip_property(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, SMALL.committee_size), label="committee size")
    members = data.draw(
        st.lists(st.integers(1, 2**31 - 1), min_size=size, max_size=size, unique=True),
        label="member ids",
    )
    threshold = data.draw(st.integers(1, size), label="threshold")
    contributors = data.draw(
        st.lists(st.sampled_from(members), min_size=threshold, unique=True), label="K"
    )
    answering = data.draw(
        st.lists(st.sampled_from(members), min_size=threshold, unique=True), label="answering"
    )
    clients = data.draw(st.integers(1, 6), label="clients")
    length = data.draw(st.integers(1, 2 * SMALL.degree), label="length")
    committee, people, public = setup(SMALL, members, threshold, contributors, min_summands=1)
    inputs = random_inputs(SMALL, clients, length, data.draw(st.integers(0, 2**32)))
    aggregate = sum_ciphertexts(encrypt(public, x) for x in inputs)
    shares = shares_of(people, aggregate, answering)
    verified = combine_verified(committee, aggregate, shares)
    assert np.array_equal(verified.values.astype(np.uint64), exact_sum(SMALL, inputs))
    assert not verified.faulty
    assert set(verified.reference) | set(verified.confirmed) == set(answering)


def test_setup_with_a_dropped_member() -> None:
    # Member 4 drops before its setup message: the key is over {1, 2, 3, 5}. It still gets
    # the others' deliveries, so it holds a valid key share and may decrypt.
    committee, people, public = setup(PARAMS, [1, 2, 3, 4, 5], 3, contributors=[1, 2, 3, 5])
    assert public.contributors == (1, 2, 3, 5)
    inputs = random_inputs(PARAMS, 3, 500, 7)
    aggregate = sum_ciphertexts(encrypt(public, x) for x in inputs)
    result = decrypt(committee, people, aggregate, [2, 4, 5])
    assert np.array_equal(result.astype(np.uint64), exact_sum(PARAMS, inputs))


def test_setup_with_a_late_member() -> None:
    # Member 3's setup message arrives after the server fixed K = {1, 2}: its polynomial is
    # left out everywhere (its own share too), and its key share is still valid.
    committee = Committee((1, 2, 3), 2)
    people = {i: CommitteeMember(PARAMS, committee, i, SEED) for i in (1, 2, 3)}
    messages = {i: people[i].setup_message() for i in (1, 2, 3)}
    for j in (1, 2, 3):
        people[j].finish_setup([1, 2], {i: messages[i][1][j] for i in (1, 2) if i != j})
    public = collective_public_key(PARAMS, SEED, [messages[1][0], messages[2][0]])
    inputs = random_inputs(PARAMS, 2, 100, 11)
    aggregate = sum_ciphertexts(encrypt(public, x) for x in inputs)
    shares = {s.member: s for s in shares_of(people, aggregate, [1, 2, 3], b"late")}
    for subset in ([1, 3], [2, 3], [1, 2]):
        result = combine(committee, aggregate, [shares[j] for j in subset])
        assert np.array_equal(result.astype(np.uint64), exact_sum(PARAMS, inputs))


def test_floats_mean_error_at_100_clients() -> None:
    params = ThresholdCkksParameters(committee_size=3, max_summands=100)
    committee, people, public = setup(params, [1, 2, 3], 2)
    clip = 0.5
    codec = float_codec(params, clip)
    rng = np.random.default_rng(5)  # not-secret: test data
    xs = [rng.uniform(-clip, clip, size=3000) for _ in range(100)]
    aggregate = sum_ciphertexts(encrypt_floats(public, x, codec) for x in xs)
    mean = codec.decode(decrypt(committee, people, aggregate, [1, 3])) / 100
    error = float(np.max(np.abs(mean - np.mean(xs, axis=0))))
    assert error <= 1 / codec.scale  # the stated precision: rounding only
    assert error <= 1e-5 * clip


# ---------------------------------------------------------------------------------------
# Noise


def _secret_key_ntt(
    committee: Committee, people: dict[int, CommitteeMember], ids: Sequence[int]
) -> np.ndarray:
    """s (NTT form), reconstructed from t members' stored Delta sk_j (test only)."""
    ring = PARAMS.ring
    positions = [committee.position(j) for j in ids]
    total = ring.zeros(1)
    for index, j in enumerate(ids):
        lam = lagrange_at_zero(positions, index, PARAMS.moduli)
        key = people[j]._key
        assert key is not None
        ring.add(total, ring.mul_scalars(key, lam), out=total)
    inverse = [pow(PARAMS.noise.delta, -1, q) for q in PARAMS.moduli]
    return ring.mul_scalars(total, inverse)


def test_real_noise_matches_the_model_and_its_bound() -> None:
    ring = PARAMS.ring
    s_hat = _secret_key_ntt(COMMITTEE, PEOPLE, [1, 2, 3])
    s = s_hat.copy()
    ring.intt(s)
    s_int = np.array(ring.to_int_lists(s)[0])
    assert np.abs(s_int).max() <= 5  # a sum of 5 ternary secrets
    # e_pk = p + a s is small: the public key is an RLWE sample of s.
    e_pk = ring.add(PUBLIC.value, ring.mul(PUBLIC.crs, s_hat))
    ring.intt(e_pk)
    e_int = np.array(ring.to_int_lists(e_pk)[0])
    assert np.abs(e_int).max() <= 5 * ERROR_ETA
    assert abs(e_int.var() / (5 * ERROR_ETA / 2) - 1) < 0.1
    # The noise of a sum of n fresh encryptions of zero.
    n = 30
    body, mask = encrypt_zero(PUBLIC, Sampler.fresh(b"tests/noise"), n)
    body_sum = body[:, :1].copy()
    mask_sum = mask[:, :1].copy()
    for k in range(1, n):
        ring.add(body_sum, body[:, k : k + 1], out=body_sum)
        ring.add(mask_sum, mask[:, k : k + 1], out=mask_sum)
    product = ring.mul(mask_sum, s_hat)
    ring.intt(product)
    noise = np.array(ring.to_int_lists(ring.add(body_sum, product))[0], dtype=np.float64)
    variance = noise_variance(degree=PARAMS.degree, holders=5, summands=n, eta=ERROR_ETA)
    assert abs(noise.var() / variance - 1) < 0.1
    bound = noise_tail_bound(
        degree=PARAMS.degree, holders=5, summands=n, eta=ERROR_ETA, tail_bits=64
    )
    assert np.abs(noise).max() < bound / 2  # 2^-64 tails: never near the bound


def test_noise_budget_is_consistent() -> None:
    budget = PARAMS.noise
    assert budget.delta == math.factorial(5) and budget.scale == budget.delta**2
    assert budget.statistical_distance <= 2.0**-40
    size = PARAMS.committee_size
    assert budget.smudging_bits == (
        math.ceil(math.log2(size * budget.simulation * budget.fresh_bound)) + 40
    )
    assert budget.total_bound == (
        budget.scale * budget.fresh_bound + budget.amplification * 2.0**budget.smudging_bits
    )
    assert budget.max_offset <= 3 / 8
    assert budget.required_log_modulus <= PARAMS.rlwe.log_modulus
    assert budget.body_bits == 32 + 10 + 3
    t = 2.0**32
    assert t * budget.total_bound / PARAMS.rlwe.modulus <= 1 / 4


@pytest.mark.parametrize("size", [60, 200, 256])
def test_a_committee_too_large_for_any_modulus_is_refused_not_a_crash(size: int) -> None:
    """(size!)^2 overflows a float: a typed refusal, also when a peer's record claims it."""
    with pytest.raises(ConfigurationError):
        ThresholdCkksParameters(committee_size=size)
    record = {"n": 8192, "l": 4, "b": 32, "m": size, "s": 1000}
    with pytest.raises(DecodeError, match="refused threshold CKKS parameters"):
        ThresholdCkksParameters.from_dict(record)


def test_combined_smudging_noise_stays_within_the_amplified_bound() -> None:
    # The combination's noise, measured: sum lambda'_j e_j + gamma e_ct, with the worst
    # active set of this committee, against the budget's A 2^b.
    inputs = random_inputs(PARAMS, 3, PARAMS.degree, 4)
    aggregate = sum_ciphertexts(encrypt(PUBLIC, x) for x in inputs)
    shares = {s.member: s for s in shares_of(PEOPLE, aggregate, COMMITTEE.members, b"amp")}
    ring = PARAMS.ring
    s_hat = _secret_key_ntt(COMMITTEE, PEOPLE, [1, 2, 3])
    budget = PARAMS.noise
    for subset in ((1, 2, 3), (3, 4, 5), (1, 3, 5)):
        factors = integer_lagrange([COMMITTEE.position(j) for j in subset], 0, budget.delta)
        total = ring.zeros(1)
        for j, factor in zip(subset, factors, strict=True):
            ring.add(total, ring.mul_scalars(shares[j].value[:, :1], [factor] * 4), out=total)
        exact = ring.mul(aggregate.mask[:, :1], s_hat)
        ring.intt(exact)
        exact = ring.mul_scalars(exact, [budget.scale] * 4)
        noise = np.array(ring.to_int_lists(ring.sub(total, exact))[0], dtype=np.float64)
        bound = sum(abs(f) for f in factors) * 2.0**budget.smudging_bits
        assert np.abs(noise).max() <= bound <= budget.amplification * 2.0**budget.smudging_bits
        assert np.abs(noise).max() > bound / 8  # and the noise really is that wide


# ---------------------------------------------------------------------------------------
# t - 1 shares reveal nothing


def _partial_decode(
    params: ThresholdCkksParameters,
    committee: Committee,
    aggregate: Ciphertext,
    shares: Sequence[DecryptionShare],
    active: Sequence[int],
) -> np.ndarray:
    """What a server would decode from the given shares with the integer Lagrange
    coefficients of ``active`` (no checks): m' in Z_t."""
    ring = params.ring
    factors = integer_lagrange([committee.position(j) for j in active], 0, params.noise.delta)
    by_member = dict(zip(active, factors, strict=True))
    total = np.zeros_like(aggregate.mask)
    for share in shares:
        term = ring.mul_scalars(share.value, [by_member[share.member]] * ring.limbs)
        ring.add(total, term, out=total)
    integer, fraction = ring.scale_to_bits(total, params.plaintext_bits)
    shift = params.body_bits - params.plaintext_bits
    integer += aggregate.body >> np.uint64(shift)
    fraction += (aggregate.body & np.uint64((1 << shift) - 1)) / float(1 << shift)
    integer += np.floor(fraction + 0.5).astype(np.uint64)
    return integer & np.uint64(2**params.plaintext_bits - 1)


def _chi_square_uniform(values: np.ndarray, bins: int) -> float:
    counts = np.bincount(values.astype(np.int64), minlength=bins)
    expected = values.size / bins
    return float(((counts - expected) ** 2 / expected).sum())


def test_t_minus_one_shares_look_uniform() -> None:
    zeros = np.zeros(PARAMS.degree, dtype=np.uint32)
    aggregate = sum_ciphertexts(encrypt(PUBLIC, zeros) for _ in range(3))
    active = [1, 3, 5]
    shares = shares_of(PEOPLE, aggregate, active, b"t-1")
    bins = 256
    # Wilson-Hilferty chi-square quantile at p ~ 1e-6 for 255 degrees of freedom.
    df = bins - 1
    limit = df * (1 - 2 / (9 * df) + 4.75 * math.sqrt(2 / (9 * df))) ** 3
    for subset in itertools.combinations(shares, 2):
        decoded = _partial_decode(PARAMS, COMMITTEE, aggregate, subset, active).reshape(-1)
        top = decoded >> np.uint64(24)  # top 8 bits of the "plaintext"
        assert _chi_square_uniform(top, bins) < limit
        # The partial sum of shares itself is uniform mod q_0 (Kolmogorov-Smirnov).
        partial = sum(share.value[0, 0].astype(np.float64) for share in subset) % PARAMS.moduli[0]
        ecdf = np.sort(partial / PARAMS.moduli[0])
        grid = np.arange(1, ecdf.size + 1) / ecdf.size
        distance = float(np.max(np.maximum(grid - ecdf, ecdf - (grid - 1 / ecdf.size))))
        assert distance * math.sqrt(ecdf.size) < 2.7  # p ~ 1e-6
    # Control: all t shares decode to the zeros, which the same test rejects.
    full = _partial_decode(PARAMS, COMMITTEE, aggregate, shares, active).reshape(-1)
    assert not full.any()
    assert _chi_square_uniform(full >> np.uint64(24), bins) > limit


# ---------------------------------------------------------------------------------------
# The one rule


def fresh_aggregate(public: PublicKey, clients: int = 2, length: int = 300) -> Ciphertext:
    return sum_ciphertexts(
        encrypt(public, x) for x in random_inputs(public.params, clients, length, 1)
    )


def test_one_share_per_ciphertext_ever() -> None:
    committee, people, public = setup(PARAMS, [1, 2, 3, 4], 2)
    first, second = fresh_aggregate(public), fresh_aggregate(public)
    member = people[1]
    share = member.decryption_share(first.mask_part(), request_id=b"r1")
    # Retransmission of the identical request: identical bytes (nothing new revealed).
    again = member.decryption_share(first.mask_part(), request_id=b"r1")
    assert again.to_bytes() == share.to_bytes()
    # Another aggregate under the same request id: refused.
    with pytest.raises(MaliciousRequestError, match="another aggregate"):
        member.decryption_share(second.mask_part(), request_id=b"r1")
    # The same ciphertext under another request id: the same share, bit for bit (its
    # noise is a function of the chunk: there is no second share to average with).
    same = member.decryption_share(first.mask_part(), request_id=b"r2")
    assert same.to_bytes() == share.to_bytes()
    # An aggregate that reuses one decrypted chunk next to a new one: the reused chunk
    # gets its old share, the new one a fresh share.
    mixed = Ciphertext(
        PARAMS,
        2 * PARAMS.degree,
        2,
        np.concatenate([first.body, second.body]),
        np.concatenate([first.mask, second.mask], axis=1),
    )
    both = member.decryption_share(mixed.mask_part(), request_id=b"r3")
    assert np.array_equal(both.value[:, :1], share.value)
    other = member.decryption_share(second.mask_part(), request_id=b"r4")
    assert np.array_equal(both.value[:, 1:], other.value)
    # Shares of every member still combine.
    result = combine(
        committee, first, [share, people[4].decryption_share(first.mask_part(), request_id=b"r")]
    )
    assert np.array_equal(
        result.astype(np.uint64), exact_sum(PARAMS, random_inputs(PARAMS, 2, 300, 1))
    )


def test_requests_that_are_refused_outright() -> None:
    committee, people, public = setup(PARAMS, [1, 2, 3, 4], 2, min_summands=3)
    member = people[1]
    two = fresh_aggregate(public, clients=2)
    with pytest.raises(MaliciousRequestError, match="summand count"):
        member.decryption_share(two.mask_part(), request_id=b"x")
    three = fresh_aggregate(public, clients=3)
    mask = three.mask_part()
    too_many = CiphertextMask(PARAMS, mask.length, PARAMS.max_summands + 1, mask.value)
    with pytest.raises(MaliciousRequestError, match="summand count"):
        member.decryption_share(too_many, request_id=b"x")
    for bad_id in (b"", bytes(MAX_REQUEST_ID_BYTES + 1), "x"):
        with pytest.raises(ConfigurationError):
            member.decryption_share(mask, request_id=bad_id)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        member.decryption_share(
            fresh_aggregate(setup(SMALL, [1, 2], 2)[2], clients=3).mask_part(),
            request_id=b"x",
        )
    # None of it counted: the legitimate request goes through.
    member.decryption_share(mask, request_id=b"x")
    fresh = CommitteeMember(PARAMS, committee, 1, SEED)
    with pytest.raises(UsageError):
        fresh.decryption_share(mask, request_id=b"x")


def _garbage(params: ThresholdCkksParameters, member: int, chunks: int) -> DecryptionShare:
    return DecryptionShare(
        params,
        member,
        Sampler.fresh(b"tests/garbage").uniform(params.moduli, (chunks, params.degree)),
    )


def _crafted(
    params: ThresholdCkksParameters,
    committee: Committee,
    share: DecryptionShare,
    used: Sequence[int],
) -> DecryptionShare:
    """``share`` moved so that combining ``used`` (sorted, t members) adds 1 to the first
    value: delta = lambda'^-1 Q / 2^bits."""
    factors = integer_lagrange([committee.position(j) for j in used], 0, params.noise.delta)
    factor = factors[list(used).index(share.member)]
    scale = params.rlwe.modulus >> params.plaintext_bits
    shift = [scale * pow(factor, -1, q) % q for q in params.moduli]
    value = share.value.copy()
    ring = params.ring
    column = np.array(shift, dtype=np.uint64)
    value[:, 0, 0] = (value[:, 0, 0] + column) % ring.q.reshape(-1)
    return DecryptionShare(params, share.member, value)


def test_corrupted_shares_are_detected_unless_crafted() -> None:
    committee, people, public = setup(PARAMS, [1, 2, 3], 2)
    inputs = random_inputs(PARAMS, 2, 1000, 3)
    aggregate = sum_ciphertexts(encrypt(public, x) for x in inputs)
    shares = shares_of(people, aggregate, [1, 2], b"c")
    with pytest.raises(DecodeError, match="do not combine"):
        combine(committee, aggregate, [shares[0], _garbage(PARAMS, 2, 1)])
    # A share of another ciphertext does not combine either.
    other = shares_of(people, fresh_aggregate(public), [2], b"other")[0]
    with pytest.raises(DecodeError):
        combine(committee, aggregate, [shares[0], other])
    # The trust model's caveat: a share shifted by lambda'^-1 times the scale shifts the
    # sum, undetected with t shares (a malicious member corrupts; it cannot read).
    tampered = _crafted(PARAMS, committee, shares[1], [1, 2])
    result = combine(committee, aggregate, [shares[0], tampered])
    expected = exact_sum(PARAMS, inputs)
    assert int(result[0]) == (int(expected[0]) + 1) % 2**32
    assert np.array_equal(result[1:].astype(np.uint64), expected[1:])


def test_combine_refusals() -> None:
    aggregate = fresh_aggregate(PUBLIC)
    shares = {s.member: s for s in shares_of(PEOPLE, aggregate, [2, 3, 4], b"cr")}
    with pytest.raises(DuplicateShareError):
        combine(COMMITTEE, aggregate, [shares[2], shares[2], shares[3]])
    with pytest.raises(InsufficientSharesError):
        combine(COMMITTEE, aggregate, [shares[2], shares[3]])
    with pytest.raises(IncompatibleSharesError):
        combine(
            COMMITTEE, aggregate, [*shares.values(), DecryptionShare(PARAMS, 9, shares[2].value)]
        )
    short = DecryptionShare(PARAMS, 4, shares[4].value[:, :0])
    with pytest.raises(IncompatibleSharesError):
        combine(COMMITTEE, aggregate, [shares[2], shares[3], short])
    with pytest.raises(InsufficientSharesError):
        combine_verified(COMMITTEE, aggregate, [shares[2]])
    assert combine(COMMITTEE, aggregate, list(shares.values())).shape == (300,)


# ---------------------------------------------------------------------------------------
# Faulty members are found and named


def test_verified_combination_confirms_every_honest_share() -> None:
    inputs = random_inputs(PARAMS, 3, 9000, 21)
    aggregate = sum_ciphertexts(encrypt(PUBLIC, x) for x in inputs)
    shares = shares_of(PEOPLE, aggregate, [5, 1, 4, 2], b"v")
    verified = combine_verified(COMMITTEE, aggregate, shares)
    assert np.array_equal(verified.values.astype(np.uint64), exact_sum(PARAMS, inputs))
    assert verified.reference == (1, 2, 4) and verified.confirmed == (5,)
    assert verified.faulty == ()
    # Exactly t shares: nothing to cross-check, the plain combination.
    exact = combine_verified(COMMITTEE, aggregate, shares[:3])
    assert exact.confirmed == () and exact.faulty == () and exact.reference == (1, 4, 5)


@pytest.mark.parametrize("bad", [1, 3, 5])
def test_one_garbage_share_is_named_and_does_not_stop_the_decryption(bad: int) -> None:
    inputs = random_inputs(PARAMS, 2, 2000, bad)
    aggregate = sum_ciphertexts(encrypt(PUBLIC, x) for x in inputs)
    honest = shares_of(PEOPLE, aggregate, [j for j in COMMITTEE.members if j != bad], b"g%d" % bad)
    expected = exact_sum(PARAMS, inputs)
    everyone = [*honest, _garbage(PARAMS, bad, 1)]
    verified = combine_verified(COMMITTEE, aggregate, everyone)
    assert np.array_equal(verified.values.astype(np.uint64), expected)
    assert verified.faulty == (bad,) and bad not in verified.reference
    # t + 1 shares with one bad: no t + 1 agree, but only one t-subset decrypts.
    few = [*honest[:3], _garbage(PARAMS, bad, 1)]
    verified = combine_verified(COMMITTEE, aggregate, few)
    assert np.array_equal(verified.values.astype(np.uint64), expected)
    assert verified.faulty == (bad,)
    # Exactly t shares, one of them bad: no decryption, and no wrong sum.
    with pytest.raises(DecodeError, match="no t decryption shares"):
        combine_verified(COMMITTEE, aggregate, [*honest[:2], _garbage(PARAMS, bad, 1)])


def test_a_crafted_share_is_caught_by_a_further_share() -> None:
    committee, people, public = setup(PARAMS, [1, 2, 3, 4], 2)
    inputs = random_inputs(PARAMS, 2, 100, 8)
    aggregate = sum_ciphertexts(encrypt(public, x) for x in inputs)
    shares = {s.member: s for s in shares_of(people, aggregate, [1, 2, 3, 4], b"k")}
    crafted = _crafted(PARAMS, committee, shares[2], [1, 2])
    # With t + 1 = 3 shares, two subsets decrypt to different sums: refused, never wrong.
    with pytest.raises(DecodeError, match="disagree"):
        combine_verified(committee, aggregate, [shares[1], crafted, shares[3]])
    # With a fourth share, the honest subsets confirm each other and name member 2.
    verified = combine_verified(committee, aggregate, [shares[1], crafted, shares[3], shares[4]])
    assert np.array_equal(verified.values.astype(np.uint64), exact_sum(PARAMS, inputs))
    assert verified.faulty == (2,) and verified.reference == (1, 3)


# ---------------------------------------------------------------------------------------
# Setup refusals


def test_setup_refusals() -> None:
    committee = Committee((1, 2, 3), 2)
    people = {i: CommitteeMember(PARAMS, committee, i, SEED) for i in (1, 2, 3)}
    messages = {i: people[i].setup_message() for i in (1, 2)}
    with pytest.raises(UsageError):
        people[1].setup_message()
    with pytest.raises(ConfigurationError):
        people[3].finish_setup([1], {1: messages[1][1][3]})  # fewer than t contributors
    with pytest.raises(InsufficientSharesError):
        people[3].finish_setup([1, 2], {1: messages[1][1][3]})
    with pytest.raises(IncompatibleSharesError):
        people[3].finish_setup([1, 2], {1: messages[1][1][3], 2: messages[2][1][1]})
    with pytest.raises(UsageError):
        people[3].finish_setup([1, 2, 3], {1: messages[1][1][3], 2: messages[2][1][3]})
    with pytest.raises(IncompatibleSharesError):
        people[1].finish_setup([1, 2], {2: messages[2][1][1], 3: messages[2][1][3]})
    people[3].finish_setup([1, 2], {1: messages[1][1][3], 2: messages[2][1][3]})
    assert people[3].state is MemberState.READY
    with pytest.raises(UsageError):
        people[3].finish_setup([1, 2], {1: messages[1][1][3], 2: messages[2][1][3]})
    with pytest.raises(ConfigurationError):
        CommitteeMember(PARAMS, committee, 4, SEED)
    with pytest.raises(ConfigurationError):
        CommitteeMember(PARAMS, committee, 1, b"short")
    with pytest.raises(ConfigurationError):
        CommitteeMember(PARAMS, committee, 1, SEED, min_summands=0)
    with pytest.raises(ConfigurationError):
        CommitteeMember(PARAMS, Committee(tuple(range(1, 7)), 2), 1, SEED)  # > committee_size
    with pytest.raises(ConfigurationError):
        collective_public_key(PARAMS, SEED, [messages[1][0], messages[1][0]])
    with pytest.raises(ConfigurationError):
        collective_public_key(PARAMS, SEED, [])


def test_committee_validation() -> None:
    assert Committee((5, 1, 3), 2).members == (1, 3, 5)
    for members, threshold in (((), 1), ((1, 1), 1), ((0, 1), 1), ((1, 2), 3), ((1, 2), 0)):
        with pytest.raises(ConfigurationError):
            Committee(members, threshold)
    with pytest.raises(ConfigurationError):
        Committee((1, True), 1)
    with pytest.raises(ConfigurationError):
        Committee((1, 2**31), 1)


# ---------------------------------------------------------------------------------------
# Parameters


def test_parameter_choice_and_refusals() -> None:
    assert ThresholdCkksParameters.choose(committee_size=5, max_summands=1000).limbs == 4
    assert ThresholdCkksParameters.choose(committee_size=3, max_summands=1000).limbs == 4
    assert ThresholdCkksParameters.choose(committee_size=10, max_summands=1000).limbs == 5
    assert ThresholdCkksParameters.choose(committee_size=12, max_summands=1000).limbs == 6
    assert (
        ThresholdCkksParameters.choose(
            committee_size=3, max_summands=100, plaintext_bits=16, degree=4096
        ).limbs
        == 3
    )
    # Delta = c! grows fast: 16 members need a larger ring.
    with pytest.raises(ConfigurationError, match="no modulus"):
        ThresholdCkksParameters.choose(committee_size=16, max_summands=1000)
    assert (
        ThresholdCkksParameters.choose(committee_size=16, max_summands=1000, degree=16384).limbs
        == 7
    )
    with pytest.raises(ConfigurationError, match="smudging needs"):
        ThresholdCkksParameters.choose(committee_size=18, max_summands=1000, degree=32768)
    with pytest.raises(ConfigurationError, match="noise needs"):
        ThresholdCkksParameters(limbs=3)
    with pytest.raises(ConfigurationError, match="HE standard"):
        ThresholdCkksParameters(limbs=7)  # 224 bits > 218 at N = 8192
    with pytest.raises(ConfigurationError):
        ThresholdCkksParameters(degree=2048, limbs=1)
    with pytest.raises(ConfigurationError):
        ThresholdCkksParameters(plaintext_bits=60, max_summands=1000, limbs=6)  # body > 64
    with pytest.raises(ConfigurationError):
        ThresholdCkksParameters(committee_size=True)
    with pytest.raises(ConfigurationError):
        ThresholdCkksParameters.choose(committee_size=16, max_summands=10**6, degree=4096)
    assert ThresholdCkksParameters.from_dict(PARAMS.to_dict()) == PARAMS
    bads: list[object] = [
        {"n": 8192},
        {**PARAMS.to_dict(), "l": True},
        {**PARAMS.to_dict(), "l": 2},
        [],
    ]
    for bad in bads:
        with pytest.raises(DecodeError):
            ThresholdCkksParameters.from_dict(bad, party=4)


# ---------------------------------------------------------------------------------------
# Ciphertexts


def test_ciphertext_arithmetic_and_refusals() -> None:
    params = ThresholdCkksParameters(max_summands=3)
    committee, people, public = setup(params, [1, 2], 2)
    x = np.arange(10, dtype=np.uint32)
    a, b = encrypt(public, x), encrypt(public, x)
    total = a + b
    assert (a.summands, total.summands) == (1, 2)
    total.add_(a)
    with pytest.raises(UsageError, match="max_summands"):
        total.add_(b)
    with pytest.raises(UsageError):
        _ = a + encrypt(public, np.arange(11, dtype=np.uint32))
    with pytest.raises(UsageError):
        sum_ciphertexts([])
    assert np.array_equal(decrypt(committee, people, total, [1, 2]), 3 * x)
    for bad in (
        np.array([2**32], dtype=np.uint64),
        np.array([-1], dtype=np.int64),
        np.zeros((2, 2), dtype=np.uint32),
        np.zeros(3, dtype=np.float64),
        [1, 2, 3],
        np.zeros(0, dtype=np.uint32),
    ):
        with pytest.raises(ConfigurationError):
            encrypt(public, bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        encrypt_floats(public, np.zeros(3), float_codec(SMALL, 1.0))


# ---------------------------------------------------------------------------------------
# Wire formats


def _fixed(params: ThresholdCkksParameters, label: bytes, polys: int) -> np.ndarray:
    return Sampler(SEED, label).uniform(params.moduli, (polys, params.degree))


def test_every_message_round_trips_with_exact_sizes() -> None:
    params, ring = SMALL, SMALL.ring
    committee, people, public = setup(params, [1, 2, 3], 2, min_summands=1)
    pk_share = PublicKeyShare(params, 3, _fixed(params, b"pk", 1))
    data = pk_share.to_bytes()
    assert len(data) == PublicKeyShare.encoded_size(params, 3)
    assert np.array_equal(PublicKeyShare.from_bytes(params, data).value, pk_share.value)
    delivery = KeyShareDelivery(params, 1, 2, _fixed(params, b"ks", 1))
    assert len(delivery.to_bytes()) == KeyShareDelivery.encoded_size(params, 1, 2)
    decoded = KeyShareDelivery.from_bytes(params, delivery.to_bytes())
    assert (decoded.sender, decoded.recipient) == (1, 2)
    assert decoded.to_bytes() == delivery.to_bytes()
    key = PublicKey.from_bytes(params, public.to_bytes())
    assert key.to_bytes() == public.to_bytes() and key.contributors == (1, 2, 3)
    assert len(key.to_bytes()) == PublicKey.encoded_size(params, [1, 2, 3])
    assert len(public.to_bytes()) < ring.limbs * params.degree * 4 + 100  # a is a seed
    for length, summands in ((params.degree + 5, 1), (70_000, 64), (1, 3)):
        ciphertext = encrypt(public, np.arange(length, dtype=np.uint64).astype(np.uint16))
        ciphertext.summands = summands  # sizes only
        data = ciphertext.to_bytes()
        assert len(data) == Ciphertext.encoded_size(params, length, summands)
        mask_data = ciphertext.mask_part().to_bytes()
        assert len(mask_data) == CiphertextMask.encoded_size(params, length, summands)
        share = DecryptionShare(params, 300, ciphertext.mask)
        assert len(share.to_bytes()) == DecryptionShare.encoded_size(params, length, 300)
    length = params.degree + 5
    ciphertext = encrypt(public, np.arange(length, dtype=np.uint64).astype(np.uint16))
    data = ciphertext.to_bytes()
    again = Ciphertext.from_bytes(params, data, length=length, summands=1)
    assert again.to_bytes() == data
    with pytest.raises(DecodeError, match="summand"):
        Ciphertext.from_bytes(
            params, (ciphertext + ciphertext).to_bytes(), length=length, summands=1
        )
    mask = CiphertextMask.from_bytes(params, ciphertext.mask_part().to_bytes(), length=length)
    share = people[1].decryption_share(mask, request_id=b"w")
    share_again = DecryptionShare.from_bytes(params, share.to_bytes(), length=length)
    assert share_again.to_bytes() == share.to_bytes()
    other = people[3].decryption_share(mask, request_id=b"w")
    result = combine(committee, again, [share_again, other])
    assert np.array_equal(result, np.arange(length, dtype=np.uint64).astype(np.uint16))


def test_crs_seed_is_derived_from_the_session() -> None:
    assert derive_crs_seed(b"session-1") == derive_crs_seed(b"session-1")
    assert derive_crs_seed(b"session-1") != derive_crs_seed(b"session-2")
    assert len(derive_crs_seed(b"s")) == 32
    with pytest.raises(ConfigurationError):
        derive_crs_seed(b"")


WIRE = load_vectors("wire/threshold_ckks")


@pytest.mark.parametrize("vector", cases(WIRE, "records"))
def test_record_vectors(vector: dict[str, Any]) -> None:
    """Pinned encodings of fixed records (the format and the seeded sampler together)."""
    assert WIRE["record_version"] == VERSION
    assert vector["parameters"] == VECTOR_PARAMS.to_dict()
    data = build_record(vector["name"])
    assert len(data) == vector["length"]
    assert hashlib.sha256(data).hexdigest() == vector["sha256"]


def test_record_layouts() -> None:
    record = msgpack.unpackb(build_record("ciphertext (5000 values, 7 summands)"))
    assert set(record) == {"v", "m", "n", "b", "a"} and record["v"] == VERSION
    record = msgpack.unpackb(build_record("public key (contributors 1, 2, 4)"))
    assert record["v"] == VERSION and record["k"] == [1, 2, 4] and len(record["s"]) == 32
    decoded = PublicKey.from_bytes(VECTOR_PARAMS, build_record("public key (contributors 1, 2, 4)"))
    assert decoded.contributors == (1, 2, 4)


def _record(**fields: object) -> bytes:
    data: bytes = msgpack.packb(fields, use_bin_type=True)
    return data


def test_strict_decoders() -> None:
    params = SMALL
    residues = _fixed(params, b"x", 1)
    good = PublicKeyShare(params, 1, residues).to_bytes()
    packed = msgpack.unpackb(good)["p"]
    q0 = params.moduli[0]
    over = bytearray(packed)
    over[:4] = q0.to_bytes(4, "little")
    cases = [
        b"\xc1",  # not msgpack
        _record(v=1, i=1, p=packed),  # version 1 (shares bound to the active set)
        _record(v=True, i=1, p=packed),  # a bool as the version
        _record(v=2, i=1),  # missing field
        _record(v=2, i=1, p=packed, x=0),  # extra field
        _record(v=2, i=True, p=packed),  # a bool as an int
        _record(v=2, i=0, p=packed),  # id out of range
        _record(v=2, i=1, p=packed[:-4]),  # wrong size
        _record(v=2, i=1, p=bytes(over)),  # residue >= q
        _record(v=2, i=1, p="text"),  # str for bytes
    ]
    for data in cases:
        with pytest.raises(DecodeError) as info:
            PublicKeyShare.from_bytes(params, data, party=9)
        assert info.value.party == 9 and len(str(info.value)) < 120
    body = np.zeros(2 * params.degree, dtype=np.uint64)
    ct = Ciphertext(params, 5000, 2, body.reshape(2, -1), _fixed(params, b"c", 2)).to_bytes()
    fields = msgpack.unpackb(ct)
    with pytest.raises(DecodeError, match="length"):
        Ciphertext.from_bytes(params, ct, length=5001)
    for change in ({"n": 0}, {"n": params.max_summands + 1}, {"n": True}, {"m": 5001}):
        with pytest.raises(DecodeError):
            Ciphertext.from_bytes(params, _record(**{**fields, **change}), length=5000)
    with pytest.raises(DecodeError, match="body"):
        Ciphertext.from_bytes(params, _record(**{**fields, "b": fields["b"][:-1]}), length=5000)
    with pytest.raises(DecodeError):
        CiphertextMask.from_bytes(params, ct, length=5000)  # a full ciphertext is not a mask
    with pytest.raises(DecodeError):
        DecryptionShare.from_bytes(params, ct, length=5000)
    with pytest.raises(DecodeError):
        PublicKey.from_bytes(params, _record(v=2, s=SEED[:31], k=[1], p=packed))
    with pytest.raises(DecodeError):
        PublicKey.from_bytes(params, _record(v=2, s=SEED, k=[2, 1], p=packed))
    with pytest.raises(DecodeError):
        KeyShareDelivery.from_bytes(params, _record(v=2, f=1, t=0, s=packed))


# ---------------------------------------------------------------------------------------
# Secrets stay put


def test_secret_holders_refuse_pickling_and_hide_secrets_in_repr() -> None:
    committee = Committee((1, 2), 2)
    member = CommitteeMember(PARAMS, committee, 1, SEED)
    _, deliveries = member.setup_message()
    for obj in (member, deliveries[2], Sampler.fresh(b"tests")):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    assert repr(member) == "CommitteeMember(id=1, state=setup sent)"
    assert repr(deliveries[2]) == "KeyShareDelivery(sender=1, recipient=2)"
    assert "PublicKey(contributors=[1, 2, 3, 4, 5]" in repr(PUBLIC)
    assert repr(PARAMS.ring) == "RnsRing(degree=8192, limbs=4)"
    assert os.urandom(0) == b""
