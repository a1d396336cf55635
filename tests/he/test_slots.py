"""Slot packing: round trips, carry-proof sums, refused layouts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError, HeadroomError
from secagg.he.slots import SlotLayout, pack, unpack


@st.composite
def layouts(draw: st.DrawFn) -> SlotLayout:
    value_bits = draw(st.integers(1, 64))
    max_summands = draw(st.integers(1, 5000))
    guard_bits = draw(st.integers(0, 3))
    slot = value_bits + (max_summands - 1).bit_length() + guard_bits
    capacity = draw(st.integers(slot, 700))
    return SlotLayout(value_bits, max_summands, capacity, guard_bits)


def _values(seed: int, layout: SlotLayout, length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 2**layout.value_bits, size=length, dtype=np.uint64, endpoint=False)
        if layout.value_bits < 64
        else rng.integers(0, 2**64 - 1, size=length, dtype=np.uint64)
    )


def test_anchor_layout_known_answer() -> None:
    # 16-bit values summed over 1000 clients in a 2048-bit modulus: 26-bit slots, 78 per
    # plaintext (the figure of the threshold-Paillier anchor).
    layout = SlotLayout.for_modulus(2**2047 + 1, value_bits=16, max_summands=1000, guard_bits=0)
    assert (layout.slot_bits, layout.slots, layout.capacity_bits) == (26, 78, 2047)
    assert layout.plaintexts_for(100_000) == 1283
    assert SlotLayout(16, 1024, 2047, 1).slot_bits == 27
    assert SlotLayout(16, 1025, 2047, 1).slot_bits == 28


@given(layouts(), st.integers(0, 400), st.integers(0, 2**32))
def test_round_trip(layout: SlotLayout, length: int, seed: int) -> None:
    values = _values(seed, layout, length)
    plaintexts = pack(values, layout)
    assert len(plaintexts) == layout.plaintexts_for(length)
    assert all(0 <= p < 2**layout.used_bits for p in plaintexts)
    np.testing.assert_array_equal(unpack(plaintexts, layout, length), values)


@given(layouts(), st.integers(1, 200), st.integers(0, 2**32))
def test_worst_case_sum_never_carries(layout: SlotLayout, length: int, seed: int) -> None:
    # Every value at its maximum, summed max_summands times: the worst case for carries.
    top = np.full(length, 2**layout.value_bits - 1, dtype=np.uint64)
    plaintexts = pack(top, layout)
    total = [p * layout.max_summands for p in plaintexts]
    assert all(t < 2**layout.used_bits for t in total)
    expected = (layout.max_summands * (2**layout.value_bits - 1)) % 2**layout.value_bits
    np.testing.assert_array_equal(unpack(total, layout, length), np.full(length, expected))
    if layout.slot_bits <= 64:
        # Read whole slots: each holds the exact integer sum, so nothing spilled over.
        raw = SlotLayout(layout.slot_bits, 1, layout.capacity_bits, 0)
        assert (raw.slot_bits, raw.slots) == (layout.slot_bits, layout.slots)
        exact = unpack(total, raw, length)
        assert np.all(exact == np.uint64(layout.max_summands * (2**layout.value_bits - 1)))


@given(layouts(), st.integers(1, 150), st.integers(0, 2**32), st.data())
def test_random_sums_are_sums_mod_2b(
    layout: SlotLayout, length: int, seed: int, data: st.DataObject
) -> None:
    summands = data.draw(st.integers(1, min(layout.max_summands, 20)))
    vectors = [_values(seed + i, layout, length) for i in range(summands)]
    total = [sum(ps) for ps in zip(*(pack(v, layout) for v in vectors))]
    expected = np.zeros(length, dtype=np.uint64)
    for v in vectors:
        expected += v  # uint64 wraps mod 2^64; reduce to value_bits below
    if layout.value_bits < 64:
        expected &= np.uint64(2**layout.value_bits - 1)
    np.testing.assert_array_equal(unpack(total, layout, length), expected)


def test_refuses_layouts_that_could_overflow() -> None:
    with pytest.raises(HeadroomError):
        SlotLayout(value_bits=60, max_summands=2**20, capacity_bits=64, guard_bits=1)
    with pytest.raises(HeadroomError):
        SlotLayout.for_modulus(2**39, value_bits=32, max_summands=256, guard_bits=0)
    # The same with one bit to spare fits.
    assert SlotLayout.for_modulus(2**40, value_bits=32, max_summands=256, guard_bits=0).slots == 1
    for bad in (
        {"value_bits": 0, "max_summands": 1, "capacity_bits": 64},
        {"value_bits": 65, "max_summands": 1, "capacity_bits": 640},
        {"value_bits": 8, "max_summands": 0, "capacity_bits": 64},
        {"value_bits": 8, "max_summands": 1, "capacity_bits": 64, "guard_bits": -1},
        {"value_bits": 8.0, "max_summands": 1, "capacity_bits": 64},
    ):
        with pytest.raises(ConfigurationError):
            SlotLayout(**bad)  # type: ignore[arg-type]


def test_rejects_bad_values() -> None:
    layout = SlotLayout(8, 4, 64)
    for bad in (
        np.array([256], dtype=np.uint64),
        np.array([-1], dtype=np.int64),
        np.array([1.0]),
        np.zeros((2, 2), dtype=np.uint8),
    ):
        with pytest.raises(ConfigurationError):
            pack(bad, layout)
    assert pack(np.zeros(0, dtype=np.uint8), layout) == []


def test_unpack_detects_overflow_and_mismatch() -> None:
    layout = SlotLayout(8, 4, 64)  # 11-bit slots, 5 per plaintext, 55 bits used
    with pytest.raises(DecodeError):
        unpack([2**layout.used_bits], layout, 5)
    with pytest.raises(DecodeError):
        unpack([-1], layout, 5)
    with pytest.raises(ConfigurationError):
        unpack([0, 0], layout, 5)
    np.testing.assert_array_equal(unpack([0], layout, 3), np.zeros(3, dtype=np.uint64))


def test_layout_dict_round_trip_and_validation() -> None:
    layout = SlotLayout(20, 1000, 2047, 2)
    assert SlotLayout.from_dict(layout.to_dict()) == layout
    for bad in (
        None,
        {},
        {**layout.to_dict(), "extra": 1},
        {**layout.to_dict(), "guard_bits": "1"},
        {**layout.to_dict(), "value_bits": 0},
        {**layout.to_dict(), "max_summands": True},
    ):
        with pytest.raises(DecodeError):
            SlotLayout.from_dict(bad)
