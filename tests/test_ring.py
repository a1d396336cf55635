"""secagg.ring: the one definition of Z_(2^bits) bit widths, storage dtypes, sizes, ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.packing import pack
from secagg.ring import MAX_BITS, check_bits, check_values, dtype_for_bits, packed_size, value_mask

BITS = st.integers(1, MAX_BITS)
BAD_BITS = [0, 65, -1, True, False, 32.0, "32", None, np.float64(8), np.int64(0), np.int8(65)]


@given(bits=BITS)
def test_check_bits_accepts_1_to_64_as_int(bits: int) -> None:
    assert check_bits(bits) == bits and type(check_bits(bits)) is int
    assert check_bits(np.int64(bits)) == bits and type(check_bits(np.uint8(bits))) is int


@pytest.mark.parametrize("bits", BAD_BITS)
def test_check_bits_refuses_the_rest(bits: object) -> None:
    for rule in (check_bits, dtype_for_bits, value_mask, lambda b: packed_size(1, b)):
        with pytest.raises(ConfigurationError, match=r"bits must be an int in 1\.\.64"):
            rule(bits)  # type: ignore[operator]


@given(bits=BITS)
def test_dtype_is_the_smallest_of_uint32_and_uint64_that_holds_every_value(bits: int) -> None:
    dtype = dtype_for_bits(bits)
    assert dtype == (np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64))
    assert np.iinfo(dtype).max >= value_mask(bits) == 2**bits - 1
    assert dtype.kind == "u" and dtype.isnative


@given(
    bits=BITS,
    values=st.lists(st.integers(0, 2**MAX_BITS - 1), max_size=300),
)
def test_packed_size_is_the_length_pack_writes(bits: int, values: list[int]) -> None:
    vector = np.array([v & value_mask(bits) for v in values], dtype=np.uint64)
    assert packed_size(len(values), bits) == len(pack(vector, bits))
    assert packed_size(len(values), bits) == -(-len(values) * bits // 8)
    assert packed_size(np.int64(len(values)), bits) == packed_size(len(values), bits)


@pytest.mark.parametrize("length", [-1, True, 1.0, "3", None])
def test_packed_size_refuses_a_length_that_is_not_a_count(length: object) -> None:
    with pytest.raises(ConfigurationError, match="length"):
        packed_size(length, 8)  # type: ignore[arg-type]


SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]


@given(
    bits=BITS,
    dtype=st.sampled_from(SIGNED + UNSIGNED),
    length=st.integers(1, 40),
    position=st.integers(0, 39),
)
def test_check_values_boundaries(bits: int, dtype: type, length: int, position: int) -> None:
    info = np.iinfo(dtype)
    top = min(value_mask(bits), int(info.max))
    vector = np.zeros(length, dtype=dtype)
    vector[position % length] = top
    assert check_values(vector, bits, length) is vector  # the top value: in, no copy
    if top < int(info.max):  # 2^bits fits the dtype: one past the top is out
        vector[position % length] = top + 1
        with pytest.raises(ConfigurationError, match=rf"in \[0, 2\^{bits}\)"):
            check_values(vector, bits, length)
    if info.min < 0:  # -1 is out for every width
        vector[position % length] = -1
        with pytest.raises(ConfigurationError, match=rf"in \[0, 2\^{bits}\)"):
            check_values(vector, bits)


@given(bits=BITS, length=st.integers(0, 20))
def test_check_values_shape_rules(bits: int, length: int) -> None:
    vector = np.zeros(length, dtype=dtype_for_bits(bits))
    assert check_values(vector, bits) is vector
    assert check_values(vector, bits, length) is vector
    with pytest.raises(ConfigurationError, match=rf"shape \({length + 1},\)"):
        check_values(vector, bits, length + 1)
    with pytest.raises(ConfigurationError, match="1-D"):
        check_values(vector.reshape(1, length), bits)


@pytest.mark.parametrize(
    "vector",
    [
        [1, 2, 3],
        (1, 2),
        np.zeros(3, dtype=np.float64),
        np.zeros(3, dtype=np.bool_),
        np.zeros(3, dtype=object),
        "abc",
        None,
    ],
)
def test_check_values_refuses_what_is_not_an_integer_array(vector: object) -> None:
    with pytest.raises(ConfigurationError, match="the update must be a numpy array"):
        check_values(vector, 8, what="the update")


def test_check_values_checks_bits_first() -> None:
    with pytest.raises(ConfigurationError, match="bits"):
        check_values(np.zeros(3, dtype=np.uint8), 0)


def test_a_narrow_unsigned_vector_is_in_range_without_a_scan() -> None:
    # uint8 values are < 2^8 <= 2^bits whatever they are; below 8 bits they are scanned.
    vector = np.full(5, 255, dtype=np.uint8)
    for bits in (8, 9, 64):
        assert check_values(vector, bits) is vector
    with pytest.raises(ConfigurationError):
        check_values(vector, 7)
