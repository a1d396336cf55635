"""Tests of secagg.shamir: correctness, privacy structure, errors and the wire format."""

from __future__ import annotations

import itertools
import os
from typing import Any

import gmpy2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
    ShareError,
)
from secagg.packing import pack
from secagg.shamir import (
    LIMB_BITS,
    LIMBS,
    PRIME,
    SECRET_BYTES,
    SHARE_BYTES,
    Share,
    lagrange_coefficients_at_zero,
    limbs_to_secrets,
    parse_shares,
    reconstruct_secret,
    reconstruct_secrets,
    share_secrets,
)
from secagg.shamir import sharing as shamir
from tests.helpers.vectors import cases, load_vectors

KNOWN = load_vectors("shamir")
secret_bytes = st.binary(min_size=SECRET_BYTES, max_size=SECRET_BYTES)


def reference_limbs(secret: bytes) -> list[int]:
    """Independent limb split: 20-bit digits of the little-endian integer."""
    value = int.from_bytes(secret, "little")
    return [(value >> (LIMB_BITS * i)) & ((1 << LIMB_BITS) - 1) for i in range(LIMBS)]


def interpolate(points: list[tuple[int, int]], at: int) -> int:
    """Pure-Python Lagrange interpolation over GF(PRIME), evaluated at ``at``."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * (at - xj) % PRIME
                den = den * (xi - xj) % PRIME
        total = (total + yi * num * pow(den, -1, PRIME)) % PRIME
    return total


# --- the field ---


def test_prime_is_the_smallest_prime_above_2_to_the_20() -> None:
    assert gmpy2.is_prime(PRIME)
    assert gmpy2.next_prime(2**20) == PRIME
    assert PRIME.bit_length() == 21


def test_block_products_stay_exact_in_float64() -> None:
    assert shamir._BLOCK * (PRIME - 1) ** 2 < 2**53
    assert (1 << LIMB_BITS) < PRIME  # every limb is a field element
    assert LIMBS * LIMB_BITS >= 8 * SECRET_BYTES


def test_blocked_matmul_is_exact() -> None:
    rng = np.random.default_rng(3)
    inner = 2 * shamir._BLOCK + 17  # three blocks
    left = rng.integers(PRIME - 50, PRIME, size=(3, inner))
    right = rng.integers(PRIME - 50, PRIME, size=(inner, 4))
    expected = (left @ right) % PRIME  # int64: < 2^42 * 2^14, exact
    got = shamir._matmul_mod(left.astype(np.float64), right.astype(np.float64))
    np.testing.assert_array_equal(got.astype(np.int64), expected)


def test_float_reduction_is_exact_up_to_2_to_the_53() -> None:
    rng = np.random.default_rng(4)
    edges = [0, 1, PRIME - 1, PRIME, PRIME + 1, 2**53 - 1, 2**53 - PRIME, (2**53 // PRIME) * PRIME]
    edges += [k * PRIME + d for k in (1, 2**20, 2**32 - 1) for d in (-1, 0, 1)]
    values = np.array(edges + rng.integers(0, 2**53, 100_000).tolist(), dtype=np.int64)
    reduced = shamir._reduce(values.astype(np.float64))
    np.testing.assert_array_equal(reduced.astype(np.int64), values % PRIME)


def test_uniform_mod_p_is_in_range_and_unbiased() -> None:
    samples = shamir._uniform_mod_p(200_000)
    assert samples.min() >= 0 and samples.max() < PRIME
    # Uniform on [0, p): mean p/2, standard error p / sqrt(12 n).
    standard_error = PRIME / np.sqrt(12 * samples.size)
    assert abs(samples.mean() - (PRIME - 1) / 2) < 5 * standard_error
    # The top and bottom tenths are equally likely (no modulo bias towards small values).
    low = np.count_nonzero(samples < PRIME // 10)
    high = np.count_nonzero(samples >= PRIME - PRIME // 10)
    assert abs(low - high) < 5 * np.sqrt(low + high)


def test_uniform_mod_p_rejects_words_above_the_last_multiple_of_p(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = (2**32 // PRIME) * PRIME
    pattern = np.array([limit - 1, 2**32 - 1, 5, limit], dtype="<u4").tobytes()

    def fake_urandom(size: int) -> bytes:
        return (pattern * (size // len(pattern) + 1))[:size]

    monkeypatch.setattr("secagg.shamir.sharing.os.urandom", fake_urandom)
    # Only limit - 1 (= p - 1 mod p) and 5 are accepted; the two words >= limit are skipped.
    assert shamir._uniform_mod_p(6).tolist() == [PRIME - 1, 5] * 3


# --- correctness ---


def test_every_t_subset_reconstructs() -> None:
    secrets = [os.urandom(SECRET_BYTES) for _ in range(3)]
    holders = [3, 5, 8, 13, 21, 34]
    shares = share_secrets(secrets, holders, 3)
    for size in range(3, len(holders) + 1):
        for subset in itertools.combinations(holders, size):
            for index, secret in enumerate(secrets):
                assert reconstruct_secret([shares[x][index] for x in subset]) == secret
            assert reconstruct_secrets({x: shares[x] for x in subset}) == secrets


def test_threshold_one_shares_are_the_limbs() -> None:
    secret = bytes(range(SECRET_BYTES))
    shares = share_secrets([secret], [1, 2], 1)
    for x in (1, 2):
        assert shares[x][0].values.tolist() == reference_limbs(secret)
        assert reconstruct_secret([shares[x][0]]) == secret


def test_shares_lie_on_a_polynomial_of_degree_t_minus_1() -> None:
    secret = os.urandom(SECRET_BYTES)
    holders = list(range(1, 9))
    t = 4
    (share_list,) = zip(*share_secrets([secret], holders, t).values(), strict=True)
    for limb in range(LIMBS):
        points = [(s.x, int(s.values[limb])) for s in share_list]
        # t points fix the polynomial: it predicts every other share and the secret limb.
        for x, y in points[t:]:
            assert interpolate(points[:t], x) == y
        assert interpolate(points[:t], 0) == reference_limbs(secret)[limb]


@given(
    secrets=st.lists(secret_bytes, min_size=1, max_size=4),
    n=st.integers(1, 25),
    data=st.data(),
)
def test_reconstruction_from_random_subsets(
    secrets: list[bytes], n: int, data: st.DataObject
) -> None:
    t = data.draw(st.integers(1, n), label="t")
    holders = data.draw(
        st.lists(st.integers(1, PRIME - 1), min_size=n, max_size=n, unique=True), label="holders"
    )
    shares = share_secrets(secrets, holders, t)
    subset = data.draw(st.lists(st.sampled_from(holders), min_size=t, unique=True), label="subset")
    assert reconstruct_secrets({x: shares[x] for x in subset}) == secrets
    for index, secret in enumerate(secrets):
        assert reconstruct_secret([shares[x][index] for x in reversed(subset)]) == secret


def test_large_threshold_reconstruction() -> None:
    holders = list(range(1, 301))
    secrets = [os.urandom(SECRET_BYTES) for _ in range(5)]
    shares = share_secrets(secrets, holders, 200)
    assert reconstruct_secrets({x: shares[x] for x in holders[50:250]}) == secrets
    assert reconstruct_secrets({x: shares[x] for x in holders[100:]}) == secrets


def test_sharings_are_randomized() -> None:
    secret = os.urandom(SECRET_BYTES)
    first = share_secrets([secret], [1, 2, 3], 2)
    second = share_secrets([secret], [1, 2, 3], 2)
    assert first[1][0].sharing_id != second[1][0].sharing_id
    assert first[1][0].values.tolist() != second[1][0].values.tolist()
    # With t >= 2 a single share is not the secret's limbs.
    assert first[1][0].values.tolist() != reference_limbs(secret)


def test_shares_are_read_only() -> None:
    share = share_secrets([os.urandom(SECRET_BYTES)], [1, 2], 2)[1][0]
    with pytest.raises(ValueError):
        share.values[0] = 1
    rebuilt = Share(share.x, share.threshold, share.sharing_id, share.values.copy())
    assert not rebuilt.values.flags.writeable
    assert rebuilt == share and hash(rebuilt) == hash(share)


# --- privacy structure ---


@given(
    secret=secret_bytes,
    candidate=secret_bytes,
    n=st.integers(2, 12),
    data=st.data(),
)
def test_t_minus_1_shares_are_consistent_with_any_secret(
    secret: bytes, candidate: bytes, n: int, data: st.DataObject
) -> None:
    t = data.draw(st.integers(2, n), label="t")
    holders = list(range(1, n + 1))
    shares = share_secrets([secret], holders, t)
    seen = data.draw(
        st.lists(st.sampled_from(holders), min_size=t - 1, max_size=t - 1, unique=True)
    )
    others = [x for x in holders if x not in seen]
    forged_x = others[0]
    # Interpolate the candidate (at x = 0) with the t - 1 seen shares: t points always fit a
    # polynomial of degree t - 1, which gives a full sharing of the candidate.
    forged_values = []
    for limb in range(LIMBS):
        points = [(0, reference_limbs(candidate)[limb])]
        points += [(x, int(shares[x][0].values[limb])) for x in seen]
        forged_values.append(interpolate(points, forged_x))
    reference = shares[seen[0]][0]
    forged = Share(forged_x, t, reference.sharing_id, np.array(forged_values, dtype=np.uint32))
    assert reconstruct_secret([shares[x][0] for x in seen] + [forged]) == candidate


# --- errors ---


def test_fewer_than_t_shares_raise() -> None:
    shares = share_secrets([os.urandom(SECRET_BYTES)] * 2, [1, 2, 3, 4, 5], 3)
    with pytest.raises(InsufficientSharesError):
        reconstruct_secret([shares[1][0], shares[2][0]])
    with pytest.raises(InsufficientSharesError):
        reconstruct_secrets({1: shares[1], 4: shares[4]})
    with pytest.raises(InsufficientSharesError):
        reconstruct_secret([])
    with pytest.raises(InsufficientSharesError):
        reconstruct_secrets({})
    with pytest.raises(InsufficientSharesError):
        lagrange_coefficients_at_zero([])


def test_duplicate_and_zero_x_raise() -> None:
    shares = share_secrets([os.urandom(SECRET_BYTES)], [1, 2, 3], 2)
    with pytest.raises(DuplicateShareError):
        reconstruct_secret([shares[1][0], shares[1][0], shares[2][0]])
    with pytest.raises(DuplicateShareError):
        Share(0, 2, shares[1][0].sharing_id, shares[1][0].values)
    with pytest.raises(DuplicateShareError):
        reconstruct_secrets({0: shares[1], 2: shares[2]})
    with pytest.raises(DuplicateShareError):
        share_secrets([os.urandom(SECRET_BYTES)], [1, 2, 2], 2)
    with pytest.raises(DuplicateShareError):
        share_secrets([os.urandom(SECRET_BYTES)], [0, 1, 2], 2)
    with pytest.raises(DuplicateShareError):
        lagrange_coefficients_at_zero([4, 5, 4])


def test_foreign_and_mixed_shares_raise() -> None:
    a = share_secrets([os.urandom(SECRET_BYTES)] * 2, [1, 2, 3], 2)
    b = share_secrets([os.urandom(SECRET_BYTES)], [1, 2, 3], 2)
    c = share_secrets([os.urandom(SECRET_BYTES)], [1, 2, 3], 3)
    with pytest.raises(IncompatibleSharesError):  # another sharing
        reconstruct_secret([a[1][0], b[2][0]])
    with pytest.raises(IncompatibleSharesError):  # another threshold
        reconstruct_secret([a[1][0], a[2][0], c[3][0]])
    with pytest.raises(IncompatibleSharesError):  # secrets listed in another order
        reconstruct_secrets({1: a[1], 2: a[2][::-1]})
    with pytest.raises(IncompatibleSharesError):  # a foreign share among them
        reconstruct_secrets({1: a[1], 2: [a[2][0], b[2][0]]})
    with pytest.raises(IncompatibleSharesError):  # lists of different lengths
        reconstruct_secrets({1: a[1], 2: a[2][:1]})
    with pytest.raises(IncompatibleSharesError):  # a share filed under another holder
        reconstruct_secrets({1: a[1], 3: a[2]})
    with pytest.raises(IncompatibleSharesError):  # mixed thresholds across secrets
        reconstruct_secrets({x: [a[x][0], c[x][0]] for x in (1, 2, 3)})
    with pytest.raises(IncompatibleSharesError):
        reconstruct_secret([a[1][0], "not a share"])  # type: ignore[list-item]


def test_shares_of_another_field_are_refused() -> None:
    share = share_secrets([os.urandom(SECRET_BYTES)], [1, 2], 2)[1][0]
    with pytest.raises(IncompatibleSharesError):
        Share(1, 2, share.sharing_id, np.zeros(LIMBS + 1, dtype=np.uint32))
    with pytest.raises(IncompatibleSharesError):
        Share(1, 2, share.sharing_id, np.full(LIMBS, PRIME, dtype=np.uint64))
    with pytest.raises(IncompatibleSharesError):
        Share(PRIME, 2, share.sharing_id, share.values)
    with pytest.raises(IncompatibleSharesError):
        Share(1, 2, share.sharing_id[:8], share.values)
    with pytest.raises(IncompatibleSharesError):
        Share(1, 0, share.sharing_id, share.values)
    with pytest.raises(IncompatibleSharesError):
        Share(1, 2, share.sharing_id, share.values.astype(np.float64))
    other_field = bytearray(share.to_bytes())
    other_field[0] = 0x02
    with pytest.raises(DecodeError):
        Share.from_bytes(bytes(other_field))


def test_bad_parameters_raise_configuration_error() -> None:
    secret = os.urandom(SECRET_BYTES)
    for threshold in (0, 4, -1, True, 2.0):
        with pytest.raises(ConfigurationError):
            share_secrets([secret], [1, 2, 3], threshold)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        share_secrets([secret[:31]], [1, 2, 3], 2)
    with pytest.raises(ConfigurationError):
        share_secrets([secret + b"\x00"], [1, 2, 3], 2)
    with pytest.raises(ConfigurationError):
        share_secrets(secret, [1, 2, 3], 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        share_secrets([secret], [], 1)
    with pytest.raises(IncompatibleSharesError):
        share_secrets([secret], [1, PRIME], 1)
    assert share_secrets([], [1, 2], 2) == {1: [], 2: []}


def test_corrupt_shares_that_do_not_decode_to_a_secret_raise_share_error() -> None:
    secret = b"\xff" * SECRET_BYTES  # top limb at its maximum, 2^16 - 1
    shares = share_secrets([secret], [1, 2], 1)
    values = shares[1][0].values.copy()
    values[-1] += 1  # top limb 2^16: no 32-byte secret has it
    bad = Share(1, 1, shares[1][0].sharing_id, values)
    with pytest.raises(ShareError):
        reconstruct_secret([bad])


# --- Lagrange coefficients ---


@pytest.mark.parametrize("vector", cases(KNOWN, "lagrange_at_zero"))
def test_lagrange_known_answer(vector: dict[str, Any]) -> None:
    # tests/vectors/shamir.json, e.g. for x = 1, 2, 3: l = (3, -3, 1).
    assert KNOWN["prime"] == PRIME
    assert lagrange_coefficients_at_zero(vector["xs"]).tolist() == vector["coefficients"]


def test_lagrange_cache() -> None:
    first = lagrange_coefficients_at_zero((7, 11, 13))
    assert lagrange_coefficients_at_zero([7, 11, 13]) is first
    assert not first.flags.writeable


@given(st.lists(st.integers(1, PRIME - 1), min_size=1, max_size=40, unique=True))
def test_lagrange_coefficients_interpolate_at_zero(xs: list[int]) -> None:
    coefficients = [int(c) for c in lagrange_coefficients_at_zero(xs)]
    # sum l_i x_i^k is 1 for k = 0 and 0 for 1 <= k < t: exact interpolation of degree < t.
    for k in range(len(xs)):
        total = sum(c * pow(x, k, PRIME) for c, x in zip(coefficients, xs, strict=True)) % PRIME
        assert total == (1 if k == 0 else 0)


# --- wire format and repr ---


def test_to_bytes_round_trip_and_size() -> None:
    shares = share_secrets([os.urandom(SECRET_BYTES)], [1, 77, PRIME - 1], 3)
    for share_list in shares.values():
        data = share_list[0].to_bytes()
        assert len(data) == SHARE_BYTES == 58
        decoded = Share.from_bytes(data)
        assert decoded == share_list[0]
        assert decoded.values.dtype == np.uint32 and not decoded.values.flags.writeable
    rebuilt = [Share.from_bytes(s[0].to_bytes()) for s in shares.values()]
    assert reconstruct_secret(rebuilt) == reconstruct_secret([s[0] for s in shares.values()])


def test_limbs_use_the_packing_layout() -> None:
    share = share_secrets([os.urandom(SECRET_BYTES)], [1, 2], 2)[1][0]
    assert share.to_bytes()[-35:] == pack(share.values, PRIME.bit_length())


def test_from_bytes_refuses_bad_fields() -> None:
    share = share_secrets([os.urandom(SECRET_BYTES)], [1, 2], 2)[2][0]
    good = share.to_bytes()
    cases = {
        "short": good[:-1],
        "long": good + b"\x00",
        "version": b"\x00" + good[1:],
        "threshold 0": good[:1] + b"\x00\x00\x00" + good[4:],
        "x 0": good[:4] + b"\x00\x00\x00" + good[7:],
        "x >= p": good[:4] + PRIME.to_bytes(3, "little") + good[7:],
        "limb >= p": good[:23] + b"\xff" * 34 + b"\x01",
        "padding bit": good[:-1] + bytes([good[-1] | 0x80]),
    }
    for name, data in cases.items():
        with pytest.raises(DecodeError):
            Share.from_bytes(data)
        assert name
    with pytest.raises(DecodeError):
        Share.from_bytes("text")  # type: ignore[arg-type]


@given(st.binary(min_size=0, max_size=2 * SHARE_BYTES))
def test_fuzzed_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        share = Share.from_bytes(data)
    except DecodeError:
        return
    assert share.to_bytes() == data


@given(position=st.integers(0, SHARE_BYTES - 1), mask=st.integers(1, 255))
def test_flipped_bits_only_raise_decode_error(position: int, mask: int) -> None:
    good = bytearray(share_secrets([os.urandom(SECRET_BYTES)], [5, 6], 2)[5][0].to_bytes())
    good[position] ^= mask
    try:
        share = Share.from_bytes(bytes(good))
    except DecodeError:
        return
    assert share.to_bytes() == bytes(good)


def test_repr_never_shows_values() -> None:
    share = share_secrets([os.urandom(SECRET_BYTES)], [9, 10], 2)[9][0]
    expected = (
        f"Share(x=9, threshold=2, field=GF({PRIME}), sharing_id={share.sharing_id[:4].hex()}...)"
    )
    assert repr(share) == expected
    assert str(share) == expected


# --- many shares at once: parse_shares agrees with Share.from_bytes ---


def as_records(blobs: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), SHARE_BYTES)


def assert_row_is(parsed: shamir.ShareArrays, row: int, share: Share) -> None:
    assert parsed.valid[row]
    assert parsed.xs[row] == share.x and parsed.thresholds[row] == share.threshold
    assert parsed.sharing_ids[row].tobytes() == share.sharing_id
    np.testing.assert_array_equal(parsed.values[row], share.values)


@given(st.integers(1, 6), st.integers(2, 9), st.data())
def test_parse_shares_matches_from_bytes(t: int, n: int, data: st.DataObject) -> None:
    t = min(t, n)
    holders = sorted(data.draw(st.sets(st.integers(1, PRIME - 1), min_size=n, max_size=n)))
    shares = share_secrets([os.urandom(SECRET_BYTES) for _ in range(3)], holders, t)
    flat = [s for x in holders for s in shares[x]]
    blobs = [s.to_bytes() for s in flat]
    for parsed in (parse_shares(as_records(blobs)), parse_shares(blobs)):
        assert parsed.valid.all() and parsed.values.shape == (len(flat), LIMBS)
        for i, share in enumerate(flat):
            assert_row_is(parsed, i, share)
        assert repr(parsed) == f"ShareArrays(rows={len(flat)})"


@given(st.lists(st.binary(min_size=SHARE_BYTES - 2, max_size=SHARE_BYTES + 1), max_size=6),
       st.data())
def test_parse_shares_validity_is_from_bytes_validity(blobs: list[bytes],
                                                      data: st.DataObject) -> None:
    """Damaged, random and wrongly sized records: valid exactly where from_bytes accepts."""
    share = share_secrets([os.urandom(SECRET_BYTES)], [1, 2, 3], 2)[2][0]
    damaged = bytearray(share.to_bytes())
    for _ in range(data.draw(st.integers(0, 3))):
        damaged[data.draw(st.integers(0, SHARE_BYTES - 1))] = data.draw(st.integers(0, 255))
    blobs = [*blobs, bytes(damaged), share.to_bytes()]
    parsed = parse_shares(blobs)
    for i, blob in enumerate(blobs):
        try:
            expected = Share.from_bytes(blob)
        except DecodeError:
            assert not parsed.valid[i]
            continue
        assert_row_is(parsed, i, expected)


def test_parse_shares_inputs_and_refusals() -> None:
    share = share_secrets([os.urandom(SECRET_BYTES)], [1, 2], 2)[1][0]
    good = share.to_bytes()
    mixed = parse_shares([good, bytearray(good), memoryview(good), "text", 7, good[:-1]])  # type: ignore[list-item]
    assert mixed.valid.tolist() == [True, True, True, False, False, False]
    assert parse_shares([]).valid.shape == (0,)
    for bad in (np.zeros((2, SHARE_BYTES + 1), dtype=np.uint8),
                np.zeros((2, SHARE_BYTES), dtype=np.int64), np.zeros(SHARE_BYTES, np.uint8)):
        with pytest.raises(ConfigurationError):
            parse_shares(bad)
    with pytest.raises(ConfigurationError):
        parse_shares(good)  # type: ignore[arg-type]  # one bytes object, not a list


def test_limbs_to_secrets_marks_inconsistent_rows() -> None:
    secrets = [os.urandom(SECRET_BYTES), b"\xff" * SECRET_BYTES]
    limbs = np.array([reference_limbs(s) for s in secrets], dtype=np.int64)
    assert limbs_to_secrets(limbs) == secrets
    broken = np.repeat(limbs[:1], 4, axis=0)
    broken[1, 0] = 1 << LIMB_BITS  # a limb above 20 bits
    broken[2, -1] = 1 << 16  # the top limb holds only 16 bits
    broken[3, 5] = -1
    assert limbs_to_secrets(broken) == [secrets[0], None, None, None]
