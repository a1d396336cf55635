"""Residue arrays on the wire: exact sizes, round trips, strict decoding."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import DecodeError
from secagg.he.rlwe.primes import ntt_primes
from secagg.he.rlwe.ring import RnsRing
from secagg.he.rlwe.sampling import Sampler
from secagg.he.rlwe.wire import pack_residues, residues_size, unpack_residues

RING = RnsRing(64, ntt_primes(3))


def test_round_trip_and_size() -> None:
    a = Sampler(bytes(32), b"tests/wire").uniform(RING.moduli, (5, 64))
    data = pack_residues(RING, a)
    assert len(data) == residues_size(RING, 5) == 3 * 5 * 64 * 4
    assert np.array_equal(unpack_residues(RING, data, 5, "test"), a)
    # Limb-major, little-endian 32-bit words.
    assert int.from_bytes(data[:4], "little") == int(a[0, 0, 0])
    assert int.from_bytes(data[-4:], "little") == int(a[2, 4, 63])


def test_strict_decoding() -> None:
    a = RING.zeros(2)
    data = pack_residues(RING, a)
    with pytest.raises(DecodeError, match="wrong size"):
        unpack_residues(RING, data[:-1], 2, "test", party=7)
    with pytest.raises(DecodeError, match="wrong size"):
        unpack_residues(RING, data, 3, "test")
    with pytest.raises(DecodeError):
        unpack_residues(RING, bytearray(data), 2, "test")  # type: ignore[arg-type]
    bad = bytearray(data)
    bad[0:4] = RING.moduli[0].to_bytes(4, "little")  # a residue equal to q
    with pytest.raises(DecodeError, match="out of range") as info:
        unpack_residues(RING, bytes(bad), 2, "test", party=7)
    assert info.value.party == 7
    bad = bytearray(data)
    bad[-4:] = (2**32 - 1).to_bytes(4, "little")  # in the last limb
    with pytest.raises(DecodeError, match="out of range"):
        unpack_residues(RING, bytes(bad), 2, "test")
