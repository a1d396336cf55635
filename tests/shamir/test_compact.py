"""The compact form of a Shamir share (limbs only): packing, strict parsing, bulk parsing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secagg.errors import ConfigurationError, DecodeError
from secagg.shamir import (
    LIMB_SHARE_BYTES,
    LIMBS,
    PRIME,
    SHARE_BYTES,
    Share,
    pack_limb_shares,
    parse_limb_shares,
    share_secrets,
    unpack_limb_shares,
)

limb_rows = hnp.arrays(
    np.int64,
    st.tuples(st.integers(0, 6), st.just(LIMBS)),
    elements=st.integers(0, PRIME - 1),
)


def test_the_compact_form_is_the_tail_of_a_full_share() -> None:
    shares = share_secrets([bytes(range(32)), b"\xff" * 32], [3, 9, 1_000_000], 2)
    for share in shares[9]:
        compact = pack_limb_shares(share.values)
        assert len(compact) == LIMB_SHARE_BYTES == 35
        assert share.to_bytes()[SHARE_BYTES - LIMB_SHARE_BYTES :] == compact
        assert np.array_equal(unpack_limb_shares(compact), share.values)
        assert Share.from_bytes(share.to_bytes()[:-LIMB_SHARE_BYTES] + compact) == share


@given(limb_rows)
def test_rows_round_trip_one_by_one_and_in_bulk(rows: np.ndarray) -> None:
    packed = pack_limb_shares(rows)
    assert len(packed) == rows.shape[0] * LIMB_SHARE_BYTES
    singles = [pack_limb_shares(row) for row in rows]
    assert packed == b"".join(singles)
    valid, values = parse_limb_shares(singles)
    assert valid.all() and np.array_equal(values, rows)
    for row, single in zip(rows, singles, strict=True):
        assert np.array_equal(unpack_limb_shares(single), row)
    as_array = np.frombuffer(packed, dtype=np.uint8).reshape(-1, LIMB_SHARE_BYTES)
    valid, values = parse_limb_shares(as_array)
    assert valid.all() and np.array_equal(values, rows)


def _accepted(record: object) -> bool:
    try:
        unpack_limb_shares(record)  # type: ignore[arg-type]
    except DecodeError:
        return False
    return True


@given(
    st.lists(
        st.one_of(
            st.binary(min_size=LIMB_SHARE_BYTES, max_size=LIMB_SHARE_BYTES),
            st.binary(max_size=2 * LIMB_SHARE_BYTES),
            st.integers(),
        ),
        max_size=8,
    )
)
def test_bulk_validity_is_exactly_what_the_strict_parser_accepts(records: list[object]) -> None:
    valid, values = parse_limb_shares(records)  # type: ignore[arg-type]
    assert valid.tolist() == [_accepted(r) for r in records]
    for row in np.flatnonzero(valid).tolist():
        assert np.array_equal(values[row], unpack_limb_shares(records[row]))  # type: ignore[arg-type]


def test_stray_padding_bits_and_limbs_outside_the_field_are_refused() -> None:
    good = pack_limb_shares(np.arange(LIMBS, dtype=np.int64))
    padding = good[:-1] + bytes((good[-1] | 0x02,))  # bit 273: just past the 13th limb
    top = np.zeros(LIMBS, dtype=np.int64)
    outside = bytearray(pack_limb_shares(top))
    outside[0:3] = PRIME.to_bytes(3, "little")  # first limb = PRIME
    for bad in (padding, bytes(outside), good[:-1], good + b"\x00", b""):
        with pytest.raises(DecodeError):
            unpack_limb_shares(bad)
    valid, _ = parse_limb_shares([good, padding, bytes(outside), good[:-1]])
    assert valid.tolist() == [True, False, False, False]
    with pytest.raises(DecodeError):
        unpack_limb_shares("text")  # type: ignore[arg-type]


def test_bad_arguments_are_configuration_errors() -> None:
    for values in (
        np.zeros(LIMBS - 1, dtype=np.int64),
        np.zeros((2, 2, LIMBS), dtype=np.int64),
        np.full(LIMBS, PRIME, dtype=np.int64),
        np.full(LIMBS, -1, dtype=np.int64),
        np.zeros(LIMBS, dtype=np.float64),
        [0] * LIMBS,
    ):
        with pytest.raises(ConfigurationError):
            pack_limb_shares(values)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        parse_limb_shares(bytes(LIMB_SHARE_BYTES))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        parse_limb_shares(np.zeros((2, LIMB_SHARE_BYTES + 1), dtype=np.uint8))
    assert pack_limb_shares(np.zeros((0, LIMBS), dtype=np.int64)) == b""
