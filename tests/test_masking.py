"""Tests of secagg.masking: cancellation, unmasking, thread/chunk invariance, validation."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.masking import apply_masks, mask_checked_input, mask_input, pairwise_sign
from secagg.prg import domain, expand
from secagg.ring import dtype_for_bits, value_mask

SESSION = b"masking-session!"
PAIR = domain(SESSION, "pairwise")
SELF = domain(SESSION, "self")


def pair_seed_table(ids: list[int]) -> dict[tuple[int, int], bytes]:
    """One random seed per unordered pair, as X25519 + HKDF would give both ends."""
    return {(u, v): os.urandom(32) for u in ids for v in ids if u < v}


def seeds_of(u: int, ids: list[int], table: dict[tuple[int, int], bytes]) -> dict[int, bytes]:
    return {v: table[(min(u, v), max(u, v))] for v in ids if v != u}


def reference_apply(
    acc: np.ndarray, bits: int, label: bytes, add: list[bytes], sub: list[bytes]
) -> np.ndarray:
    """apply_masks computed naively with Python ints, one full mask vector per seed."""
    total = [int(v) for v in acc.reshape(-1)]
    for seed, sign in [(s, 1) for s in add] + [(s, -1) for s in sub]:
        mask = expand(seed, acc.size, bits=bits, domain=label)
        total = [t + sign * int(m) for t, m in zip(total, mask)]
    modulus = 1 << bits
    return np.array([t % modulus for t in total], dtype=dtype_for_bits(bits)).reshape(acc.shape)


@pytest.mark.parametrize("bits", range(1, 65))
@settings(max_examples=3)
@given(n=st.integers(2, 7), m=st.integers(1, 300), data=st.data())
def test_pairwise_masks_cancel_for_every_bit_width(
    bits: int, n: int, m: int, data: st.DataObject
) -> None:
    ids = sorted(data.draw(st.sets(st.integers(1, 10_000), min_size=n, max_size=n)))
    table = pair_seed_table(ids)
    self_seeds = {u: os.urandom(32) for u in ids}
    values = st.lists(st.integers(0, value_mask(bits)), min_size=m, max_size=m)
    inputs = {u: np.array(data.draw(values), dtype=dtype_for_bits(bits)) for u in ids}
    total = np.zeros(m, dtype=dtype_for_bits(bits))
    for u in ids:
        total += mask_input(
            inputs[u],
            bits=bits,
            own_id=u,
            self_seed=self_seeds[u],
            pair_seeds=seeds_of(u, ids, table),
            session_id=SESSION,
        )
    apply_masks(total, bits=bits, domain=SELF, sub_seeds=list(self_seeds.values()))
    expected = np.sum([inputs[u].astype(object) for u in ids], axis=0)
    assert [int(v) for v in total] == [int(v) % (1 << bits) for v in expected]


@given(bits=st.integers(1, 64), n=st.integers(2, 12), m=st.integers(0, 2000))
def test_pairwise_masks_alone_cancel_to_zero(bits: int, n: int, m: int) -> None:
    ids = list(range(1, n + 1))
    table = pair_seed_table(ids)
    total = np.zeros(m, dtype=dtype_for_bits(bits))
    for u in ids:
        peers = seeds_of(u, ids, table)
        apply_masks(
            total,
            bits=bits,
            domain=PAIR,
            add_seeds=[s for v, s in peers.items() if pairwise_sign(u, v) > 0],
            sub_seeds=[s for v, s in peers.items() if pairwise_sign(u, v) < 0],
        )
    assert not total.any()


@given(bits=st.integers(1, 64), n_peers=st.integers(0, 10), m=st.integers(0, 3000), data=st.data())
def test_masked_input_minus_its_masks_is_input(
    bits: int, n_peers: int, m: int, data: st.DataObject
) -> None:
    own = data.draw(st.integers(1, 50))
    peers = data.draw(
        st.sets(st.integers(1, 50).filter(lambda v: v != own), min_size=0, max_size=n_peers)
    )
    pair_seeds = {v: os.urandom(32) for v in peers}
    self_seed = os.urandom(32)
    x = (np.arange(m, dtype=np.uint64) * 0x9E3779B97F4A7C15) & np.uint64(value_mask(bits))
    x = x.astype(dtype_for_bits(bits))
    y = mask_input(
        x, bits=bits, own_id=own, self_seed=self_seed, pair_seeds=pair_seeds, session_id=SESSION
    )
    if m * bits >= 64:  # it is masked (a short mask is all zero with probability 2^-(m*bits))
        assert not np.array_equal(x, y)
    # Undo: the self mask, then each pairwise mask with the opposite sign.
    apply_masks(y, bits=bits, domain=SELF, sub_seeds=[self_seed])
    apply_masks(
        y,
        bits=bits,
        domain=PAIR,
        add_seeds=[s for v, s in pair_seeds.items() if pairwise_sign(own, v) < 0],
        sub_seeds=[s for v, s in pair_seeds.items() if pairwise_sign(own, v) > 0],
    )
    assert np.array_equal(x, y)


@given(
    bits=st.integers(1, 64),
    m=st.integers(0, 400),
    n_add=st.integers(0, 4),
    n_sub=st.integers(0, 4),
)
def test_apply_masks_matches_naive_reference(bits: int, m: int, n_add: int, n_sub: int) -> None:
    start = (np.arange(m, dtype=np.uint64) * 7919) & np.uint64(value_mask(bits))
    acc = start.astype(dtype_for_bits(bits))
    add = [os.urandom(32) for _ in range(n_add)]
    sub = [os.urandom(32) for _ in range(n_sub)]
    expected = reference_apply(acc, bits, PAIR, add, sub)
    apply_masks(acc, bits=bits, domain=PAIR, add_seeds=add, sub_seeds=sub)
    assert np.array_equal(acc, expected)


@pytest.mark.parametrize("bits", [5, 32, 40, 64])
def test_threads_and_chunking_do_not_change_the_result(bits: int) -> None:
    # Several 256 KiB chunks plus a ragged tail, so threads split mid-chunk and mid-block.
    m = 3 * 65536 + 4099
    add = [os.urandom(32) for _ in range(3)]
    sub = [os.urandom(32) for _ in range(2)]
    results = []
    for threads in (1, 2, 3, 7, None):
        acc = np.zeros(m, dtype=dtype_for_bits(bits))
        apply_masks(acc, bits=bits, domain=PAIR, add_seeds=add, sub_seeds=sub, threads=threads)
        results.append(acc)
    one_shot = np.zeros(m, dtype=object)
    for seed in add:
        one_shot += expand(seed, m, bits=bits, domain=PAIR).astype(object)
    for seed in sub:
        one_shot -= expand(seed, m, bits=bits, domain=PAIR).astype(object)
    expected = np.array([int(v) % (1 << bits) for v in one_shot], dtype=dtype_for_bits(bits))
    for result in results:
        assert np.array_equal(result, expected)


def test_mask_input_thread_invariance_and_shape() -> None:
    x = np.arange(2 * 70_000, dtype=np.uint32).reshape(2, 70_000) & np.uint32(0xFFFFF)
    kwargs = dict(
        bits=20,
        own_id=5,
        self_seed=os.urandom(32),
        pair_seeds={v: os.urandom(32) for v in (1, 2, 9)},
        session_id=SESSION,
    )
    before = x.copy()
    outs = [mask_input(x, threads=t, **kwargs) for t in (1, 2, None)]  # type: ignore[arg-type]
    assert np.array_equal(x, before)  # x untouched
    for out in outs:
        assert out.shape == x.shape and out.dtype == np.uint32
        assert int(out.max()) < 2**20
        assert np.array_equal(out, outs[0])


def test_mask_input_accepts_any_integer_dtype_in_range() -> None:
    seed = os.urandom(32)
    common = dict(bits=12, own_id=1, self_seed=seed, pair_seeds={}, session_id=SESSION)
    values = [0, 1, 4095, 17]
    ref = mask_input(np.array(values, dtype=np.uint32), **common)  # type: ignore[arg-type]
    for dtype in (np.uint8, np.int16, np.int64, np.uint64):
        if np.iinfo(dtype).max < 4095:
            continue
        assert np.array_equal(mask_input(np.array(values, dtype=dtype), **common), ref)  # type: ignore[arg-type]


@given(
    bits=st.integers(1, 64),
    values=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
    dtype=st.sampled_from([np.uint8, np.int16, np.int64, np.uint64]),
    peers=st.lists(st.integers(2, 9), unique=True, max_size=3),
)
def test_mask_checked_input_is_mask_input_without_the_range_scan(
    bits: int, values: list[int], dtype: type, peers: list[int]
) -> None:
    info = np.iinfo(dtype)
    top = min((1 << bits) - 1, int(info.max))
    x = np.array([v % (top + 1) for v in values], dtype=dtype)
    common = dict(
        bits=bits,
        own_id=1,
        self_seed=bytes(32),
        pair_seeds={p: bytes([p]) * 32 for p in peers},
        session_id=SESSION,
    )
    expected = mask_input(x, **common)  # type: ignore[arg-type]
    assert np.array_equal(mask_checked_input(x, **common), expected)  # type: ignore[arg-type]


def test_mask_checked_input_trusts_its_caller_and_mask_input_does_not() -> None:
    common = dict(bits=8, own_id=1, self_seed=bytes(32), pair_seeds={}, session_id=SESSION)
    out_of_range = np.array([256 + 3, -1], dtype=np.int64)
    with pytest.raises(ConfigurationError, match=r"x must hold values in \[0, 2\^8\)"):
        mask_input(out_of_range, **common)  # type: ignore[arg-type]
    # Unchecked: reduced from the storage word (what a caller that skipped its check gets).
    reduced = np.array([3, 255], dtype=np.uint32)
    assert np.array_equal(
        mask_checked_input(out_of_range, **common),  # type: ignore[arg-type]
        mask_input(reduced, **common),  # type: ignore[arg-type]
    )
    for not_an_array in ([1, 2], np.zeros(2, dtype=np.float64)):
        with pytest.raises(ConfigurationError, match="integer dtype"):
            mask_checked_input(not_an_array, **common)  # type: ignore[arg-type]


def test_round_index_changes_masks() -> None:
    seed = os.urandom(32)
    x = np.zeros(16, dtype=np.uint32)
    common = dict(bits=32, own_id=1, self_seed=seed, pair_seeds={2: seed}, session_id=SESSION)
    r0 = mask_input(x, **common)  # type: ignore[arg-type]
    r1 = mask_input(x, round_index=1, **common)  # type: ignore[arg-type]
    assert not np.array_equal(r0, r1)


def test_pairwise_sign() -> None:
    assert pairwise_sign(1, 2) == 1
    assert pairwise_sign(2, 1) == -1
    with pytest.raises(ConfigurationError):
        pairwise_sign(3, 3)
    with pytest.raises(ConfigurationError):
        pairwise_sign(True, 2)


@given(u=st.integers(0, 2**64 - 1), v=st.integers(0, 2**64 - 1))
def test_pairwise_sign_antisymmetric(u: int, v: int) -> None:
    if u == v:
        return
    assert pairwise_sign(u, v) == -pairwise_sign(v, u)


def test_apply_masks_validation_leaves_acc_untouched() -> None:
    seed = os.urandom(32)
    acc = np.arange(10, dtype=np.uint32)
    bad_calls = [
        dict(bits=0, domain=PAIR, add_seeds=[seed]),
        dict(bits=65, domain=PAIR, add_seeds=[seed]),
        dict(bits=40, domain=PAIR, add_seeds=[seed]),  # uint32 acc but bits > 32
        dict(bits=32, domain=b"", add_seeds=[seed]),
        dict(bits=32, domain=PAIR, add_seeds=[seed[:31]]),
        dict(bits=32, domain=PAIR, add_seeds=[seed, "x" * 32]),
        dict(bits=32, domain=PAIR, add_seeds=seed),  # a bare seed, not a list of seeds
        dict(bits=32, domain=PAIR, sub_seeds=[bytes(33)]),
        dict(bits=32, domain=PAIR, add_seeds=[seed], threads=0),
        dict(bits=32, domain=PAIR, add_seeds=[seed], threads=True),
        dict(bits=32, domain=PAIR, add_seeds=[seed], threads=1.5),
    ]
    for kwargs in bad_calls:
        with pytest.raises(ConfigurationError):
            apply_masks(acc, **kwargs)  # type: ignore[arg-type]
        assert np.array_equal(acc, np.arange(10, dtype=np.uint32)), kwargs


def test_apply_masks_rejects_bad_accumulators() -> None:
    seed = os.urandom(32)
    read_only = np.zeros(8, dtype=np.uint32)
    read_only.flags.writeable = False
    for acc in (
        np.zeros(8, dtype=np.int32),
        np.zeros(8, dtype=np.uint64),
        np.zeros(16, dtype=np.uint32)[::2],
        np.zeros((4, 4), dtype=np.uint32).T,
        read_only,
        [0, 0, 0],
    ):
        with pytest.raises(ConfigurationError):
            apply_masks(acc, bits=32, domain=PAIR, add_seeds=[seed])  # type: ignore[arg-type]


def test_apply_masks_multidimensional_and_empty() -> None:
    seed = os.urandom(32)
    acc = np.zeros((3, 7), dtype=np.uint64)
    apply_masks(acc, bits=50, domain=PAIR, add_seeds=[seed])
    assert np.array_equal(acc.reshape(-1), expand(seed, 21, bits=50, domain=PAIR))
    empty = np.zeros(0, dtype=np.uint32)
    apply_masks(empty, bits=32, domain=PAIR, add_seeds=[seed], threads=4)
    no_seeds = np.full(4, 0xFFFF, dtype=np.uint32)
    apply_masks(no_seeds, bits=8, domain=PAIR)  # no masks: only the reduction mod 2^8
    assert np.array_equal(no_seeds, np.full(4, 0xFF, dtype=np.uint32))


def test_mask_input_validation() -> None:
    seed = os.urandom(32)
    good = dict(bits=16, own_id=3, self_seed=seed, pair_seeds={1: seed}, session_id=SESSION)
    x = np.zeros(4, dtype=np.uint32)
    mask_input(x, **good)  # type: ignore[arg-type]
    bad: list[tuple[object, dict[str, object]]] = [
        (x, {"own_id": 1}),  # own id among the peers
        (x, {"self_seed": seed[:16]}),
        (x, {"pair_seeds": {2: b"short"}}),
        (x, {"pair_seeds": {"2": seed}}),
        (x, {"pair_seeds": [(2, seed)]}),
        (x, {"session_id": b""}),
        (x, {"bits": 0}),
        (x, {"threads": -1}),
        (x, {"own_id": -5}),
        (np.array([2**16], dtype=np.uint32), {}),  # value out of range
        (np.array([-1], dtype=np.int32), {}),
        (np.zeros(4, dtype=np.float32), {}),
        ([0, 1], {}),
    ]
    for value, change in bad:
        with pytest.raises(ConfigurationError):
            mask_input(value, **{**good, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [1, 2])
def test_many_seeds_cross_encryptor_batches(threads: int) -> None:
    # More seeds than one batch of live encryptors (256), adds and subtracts interleaved.
    m = 5000
    add = [os.urandom(32) for _ in range(300)]
    sub = [os.urandom(32) for _ in range(20)]
    acc = np.zeros(m, dtype=np.uint32)
    apply_masks(acc, bits=32, domain=PAIR, add_seeds=add, sub_seeds=sub, threads=threads)
    expected = np.zeros(m, dtype=np.uint32)
    for seed in add:
        expected += expand(seed, m, bits=32, domain=PAIR)  # uint32 wrap = mod 2^32
    for seed in sub:
        expected -= expand(seed, m, bits=32, domain=PAIR)
    assert np.array_equal(acc, expected)
