"""Tests of secagg.packing: exact layout, round trips for every width, strict decoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg import packing
from secagg.errors import ConfigurationError, DecodeError
from secagg.packing import pack, unpack
from secagg.ring import dtype_for_bits, packed_size

ALL_BITS = list(range(1, 65))


def reference_pack(values: np.ndarray, bits: int) -> bytes:
    """Independent definition: the little-endian bytes of sum(v_i << (i * bits))."""
    total = 0
    for i, v in enumerate(values.tolist()):
        total |= int(v) << (i * bits)
    return total.to_bytes((len(values) * bits + 7) // 8, "little")


def random_values(rng: np.random.Generator, length: int, bits: int) -> np.ndarray:
    words = rng.integers(0, 2**63, size=length, dtype=np.uint64) * np.uint64(2)
    words |= rng.integers(0, 2, size=length, dtype=np.uint64)
    if bits < 64:
        words &= np.uint64((1 << bits) - 1)
    return words.astype(dtype_for_bits(bits))


def test_known_answer() -> None:
    # 1 | 2 << 3 | 3 << 6 = 0xd1, then the ninth bit (zero) in a second byte.
    assert pack(np.array([1, 2, 3], dtype=np.uint32), 3) == b"\xd1\x00"
    assert pack(np.array([0xABC], dtype=np.uint32), 12) == b"\xbc\x0a"
    assert pack(np.array([1, 1], dtype=np.uint32), 1) == b"\x03"
    assert pack(np.array([0x0102], dtype=np.uint32), 16) == b"\x02\x01"
    value = np.array([2**64 - 2], dtype=np.uint64)
    assert pack(value, 64) == (2**64 - 2).to_bytes(8, "little")


@pytest.mark.parametrize("bits", ALL_BITS)
def test_round_trip_every_width_short_and_long(bits: int) -> None:
    rng = np.random.default_rng(bits)
    # Short vectors take the bit-matrix path, long ones the phase path.
    for length in (0, 1, 7, 8, 63, 65, 301, 200 * 64 + 77):
        values = random_values(rng, length, bits)
        data = pack(values, bits)
        assert len(data) == packed_size(length, bits) == -(-length * bits // 8)
        if length <= 301:
            assert data == reference_pack(values, bits)
        out = unpack(data, bits, length)
        assert out.dtype == dtype_for_bits(bits)
        np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("bits", [1, 3, 12, 20, 31, 33, 57, 63])
def test_long_path_matches_bit_matrix_path_across_chunks(bits: int) -> None:
    # Several chunks and a short last group: compared with the independent small path.
    length = 2 * packing._CHUNK + 200 * 64 + 13
    values = random_values(np.random.default_rng(bits), length, bits)
    data = packing._pack_long(values, bits)[: packed_size(length, bits)]
    assert data == packing._pack_small(values, bits) == pack(values, bits)
    raw = np.frombuffer(data, dtype=np.uint8)
    np.testing.assert_array_equal(packing._unpack_long(raw, bits, length), values)
    np.testing.assert_array_equal(packing._unpack_small(raw, bits, length), values)
    signed = values.astype(np.int64) if bits < 64 else values
    assert pack(signed, bits) == data


@given(
    bits=st.integers(1, 64),
    length=st.integers(0, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_property(bits: int, length: int, seed: int) -> None:
    values = random_values(np.random.default_rng(seed), length, bits)
    data = pack(values, bits)
    assert len(data) == -(-length * bits // 8)
    np.testing.assert_array_equal(unpack(data, bits, length), values)


def test_accepts_any_integer_dtype_in_range() -> None:
    for dtype in (np.uint8, np.int16, np.int64, np.uint64):
        values = np.array([0, 1, 5, 7], dtype=dtype)
        assert unpack(pack(values, 3), 3, 4).tolist() == [0, 1, 5, 7]


def test_unpack_returns_writeable_copy() -> None:
    data = pack(np.arange(10, dtype=np.uint32), 32)
    out = unpack(data, 32, 10)
    out += 1
    assert out.tolist() == list(range(1, 11))


@pytest.mark.parametrize("bits", [1, 7, 8, 16, 31, 32, 63])
def test_pack_refuses_values_out_of_range(bits: int) -> None:
    with pytest.raises(ConfigurationError):
        pack(np.array([0, 2**bits], dtype=np.uint64), bits)
    with pytest.raises(ValueError):  # a ConfigurationError is a ValueError
        pack(np.array([1, -1], dtype=np.int64), bits)


def test_pack_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigurationError):
        pack(np.array([1.0]), 8)
    with pytest.raises(ConfigurationError):
        pack(np.zeros((2, 2), dtype=np.uint32), 8)
    with pytest.raises(ConfigurationError):
        pack([1, 2], 8)  # type: ignore[arg-type]
    for bits in (0, 65, True, 8.0):
        with pytest.raises(ConfigurationError):
            pack(np.array([1], dtype=np.uint32), bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [3, 8, 20, 32, 64])
def test_unpack_checks_length_exactly(bits: int) -> None:
    data = pack(np.ones(10, dtype=np.uint64), bits)
    with pytest.raises(DecodeError):
        unpack(data[:-1], bits, 10)
    with pytest.raises(DecodeError):
        unpack(data + b"\x00", bits, 10)
    with pytest.raises(DecodeError):
        unpack(b"", bits, 1)


def test_unpack_refuses_padding_bits() -> None:
    data = bytearray(pack(np.array([5, 6, 3], dtype=np.uint32), 3))  # 9 bits: 7 padding bits
    assert len(data) == 2
    for bit in range(1, 8):
        corrupted = bytearray(data)
        corrupted[-1] |= 1 << bit
        with pytest.raises(DecodeError):
            unpack(bytes(corrupted), 3, 3)
    # Bit 0 of the last byte is stream bit 8, the top bit of element 2: data, not padding.
    data[-1] |= 1
    assert unpack(bytes(data), 3, 3).tolist() == [5, 6, 7]


def test_unpack_refuses_bad_arguments() -> None:
    with pytest.raises(DecodeError):
        unpack("abc", 8, 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        unpack(b"abc", 8, -1)
    with pytest.raises(ConfigurationError):
        unpack(b"abc", 0, 3)


@given(data=st.binary(max_size=200), bits=st.integers(1, 64), length=st.integers(0, 200))
def test_fuzzed_bytes_decode_or_raise_decode_error(data: bytes, bits: int, length: int) -> None:
    try:
        values = unpack(data, bits, length)
    except DecodeError:
        return
    # Whatever decodes is canonical: it packs back to exactly the same bytes.
    assert pack(values, bits) == data


@given(bits=st.integers(1, 64), length=st.integers(1, 100), seed=st.integers(0, 2**32 - 1))
def test_accepts_memoryview_and_bytearray(bits: int, length: int, seed: int) -> None:
    values = random_values(np.random.default_rng(seed), length, bits)
    data = pack(values, bits)
    np.testing.assert_array_equal(unpack(bytearray(data), bits, length), values)
    np.testing.assert_array_equal(unpack(memoryview(data), bits, length), values)
