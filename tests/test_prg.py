"""Tests of secagg.prg: known answers, stream consistency, range, statistics, no leaks."""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, SecAggError
from secagg.prg import Prg, derive_stream_key, domain, expand
from secagg.ring import dtype_for_bits, value_mask
from tests.helpers.vectors import cases, load_vectors, unhex

SESSION = b"session-0123456"
LABEL = domain(SESSION, "pairwise")
SEED = bytes(range(32))
PINNED = load_vectors("prg")


def reference_expand(seed: bytes, length: int, bits: int, label: bytes) -> np.ndarray:
    """The PRG spelled out with cryptography directly: HKDF key, AES-128-CTR from block 0."""
    key = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=label).derive(seed)
    itemsize = 4 if bits <= 32 else 8
    stream = (
        Cipher(algorithms.AES(key), modes.CTR(bytes(16)))
        .encryptor()
        .update(bytes(length * itemsize))
    )
    words = np.frombuffer(stream, dtype="<u4" if itemsize == 4 else "<u8")
    return (words & ((1 << bits) - 1)).astype(dtype_for_bits(bits))


@pytest.mark.parametrize("bits", [1, 2, 7, 8, 13, 16, 31, 32, 33, 48, 63, 64])
def test_known_answer_against_direct_keystream(bits: int) -> None:
    length = 1000
    assert np.array_equal(
        expand(SEED, length, bits=bits, domain=LABEL), reference_expand(SEED, length, bits, LABEL)
    )


@pytest.mark.parametrize("stream", cases(PINNED, "streams"))
def test_pinned_vector(stream: dict[str, Any]) -> None:
    # Computed once with this implementation (tests/vectors/prg.json); pins the format
    # (domain encoding, HKDF, CTR start, little-endian words) so any change of the stream
    # is a visible, deliberate break.
    label = domain(unhex(PINNED["session_id"]), PINNED["purpose"])
    assert label.hex() == PINNED["domain"]
    values = expand(unhex(PINNED["seed"]), len(stream["values"]), bits=stream["bits"], domain=label)
    assert [format(int(v), "x") for v in values] == stream["values"]


def test_pinned_vector_is_of_this_module() -> None:
    assert (unhex(PINNED["session_id"]), unhex(PINNED["seed"])) == (SESSION, SEED)
    assert domain(SESSION, PINNED["purpose"]) == LABEL


@given(
    bits=st.integers(1, 64),
    offset=st.integers(0, 5000),
    pieces=st.lists(st.integers(0, 3000), min_size=1, max_size=5),
)
def test_offset_and_chunked_fill_match_one_shot(bits: int, offset: int, pieces: list[int]) -> None:
    full = expand(SEED, offset + sum(pieces), bits=bits, domain=LABEL)
    prg = Prg(SEED, domain=LABEL, bits=bits, offset=offset)
    position = offset
    for size in pieces:
        out = np.empty(size, dtype=dtype_for_bits(bits))
        prg.fill(out)
        assert np.array_equal(out, full[position : position + size])
        position += size
    assert prg.position == position


def test_large_fill_crosses_internal_buffer() -> None:
    length = 300_000  # > 256 KiB of keystream per call for uint32 and uint64
    for bits in (32, 64):
        assert np.array_equal(
            expand(SEED, length, bits=bits, domain=LABEL),
            reference_expand(SEED, length, bits, LABEL),
        )


def test_fill_accepts_multidimensional_contiguous() -> None:
    out = np.empty((3, 5), dtype=np.uint32)
    Prg(SEED, domain=LABEL, bits=20).fill(out)
    assert np.array_equal(out.reshape(-1), expand(SEED, 15, bits=20, domain=LABEL))


@given(bits=st.integers(1, 64), seed=st.binary(min_size=32, max_size=32))
def test_output_below_modulus_and_dtype(bits: int, seed: bytes) -> None:
    values = expand(seed, 4096, bits=bits, domain=LABEL)
    assert values.dtype == dtype_for_bits(bits)
    assert int(values.max()) <= value_mask(bits)


def test_domains_and_seeds_separate_streams() -> None:
    base = expand(SEED, 64, bits=32, domain=LABEL)
    others = [
        expand(SEED, 64, bits=32, domain=domain(SESSION, "self")),
        expand(SEED, 64, bits=32, domain=domain(b"session-0123457", "pairwise")),
        expand(SEED, 64, bits=32, domain=domain(SESSION, "pairwise", 1)),
        expand(bytes(32), 64, bits=32, domain=LABEL),
    ]
    for other in others:
        assert not np.array_equal(base, other)


def test_domain_encoding_is_injective_on_ambiguous_splits() -> None:
    assert domain(b"ab", "c") != domain(b"a", "bc")
    assert domain(b"a", "b", 1) != domain(b"a", "b", 256)
    assert len({domain(b"s", p, r) for p in ("x", "y") for r in range(3)}) == 6


def test_stream_key_matches_hkdf() -> None:
    expected = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=LABEL).derive(SEED)
    assert derive_stream_key(SEED, LABEL) == expected


def test_statistics_one_bit_mean() -> None:
    n = 200_000
    bits = expand(os.urandom(32), n, bits=1, domain=LABEL)
    # Mean of n fair bits: standard deviation 0.5 / sqrt(n); 6 sigma never fails by chance.
    assert abs(bits.mean() - 0.5) < 6 * 0.5 / np.sqrt(n)


def test_statistics_chi_square_bytes() -> None:
    n = 256 * 1000
    values = expand(os.urandom(32), n, bits=8, domain=LABEL)
    counts = np.bincount(values, minlength=256)
    expected = n / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 255 degrees of freedom: mean 255, sd ~22.6; a loose bound far out in both tails.
    assert 255 - 8 * 22.6 < chi2 < 255 + 8 * 22.6


def test_statistics_every_bit_of_64_bit_words_fair() -> None:
    n = 50_000
    words = expand(os.urandom(32), n, bits=64, domain=LABEL)
    ones = np.unpackbits(words.view(np.uint8)).reshape(n, 64).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 6 * 0.5 / np.sqrt(n))


def test_repr_hides_seed_and_key() -> None:
    seed = os.urandom(32)
    prg = Prg(seed, domain=LABEL, bits=17)
    key = derive_stream_key(seed, LABEL)
    for text in (repr(prg), str(prg)):
        for secret in (seed, key):
            assert secret.hex() not in text
            assert secret.hex().upper() not in text
            assert repr(secret) not in text
            assert secret.decode("latin-1") not in text
    with pytest.raises(SecAggError):
        pickle.dumps(prg)


@pytest.mark.parametrize("bits", [0, 65, -1, True, 32.0, "32"])
def test_bad_bits_rejected(bits: object) -> None:
    with pytest.raises(ConfigurationError):
        dtype_for_bits(bits)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Prg(SEED, domain=LABEL, bits=bits)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "x" * 32, bytearray(32), None])
def test_bad_seed_rejected(seed: object) -> None:
    with pytest.raises(ConfigurationError):
        expand(seed, 4, bits=32, domain=LABEL)  # type: ignore[arg-type]


def test_bad_arguments_rejected() -> None:
    with pytest.raises(ConfigurationError):
        expand(SEED, -1, bits=32, domain=LABEL)
    with pytest.raises(ConfigurationError):
        expand(SEED, 4, bits=32, domain=b"")
    with pytest.raises(ConfigurationError):
        Prg(SEED, domain=LABEL, bits=32, offset=-1)
    with pytest.raises(ConfigurationError):
        domain(b"", "pairwise")
    with pytest.raises(ConfigurationError):
        domain(SESSION, "")
    with pytest.raises(ConfigurationError):
        domain(SESSION, "pairwise", -1)
    prg = Prg(SEED, domain=LABEL, bits=32)
    with pytest.raises(ConfigurationError):
        prg.fill(np.empty(4, dtype=np.uint64))  # wrong dtype for 32 bits
    with pytest.raises(ConfigurationError):
        prg.fill(np.empty(8, dtype=np.uint32)[::2])  # not contiguous
    read_only = np.empty(4, dtype=np.uint32)
    read_only.flags.writeable = False
    with pytest.raises(ConfigurationError):
        prg.fill(read_only)
    with pytest.raises(ConfigurationError):
        prg.fill([0, 0])  # type: ignore[arg-type]
    assert prg.position == 0


def test_empty_expand() -> None:
    assert expand(SEED, 0, bits=40, domain=LABEL).shape == (0,)
