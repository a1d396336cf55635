"""The server's bulk share path agrees with secagg.shamir's per-share API."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import DecodeError
from secagg.protocols.share_batch import interpolate, limbs_to_secrets, parse_records
from secagg.shamir import SHARE_BYTES, Share, reconstruct_secret, share_secrets


def as_records(blobs: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), SHARE_BYTES)


@given(st.integers(1, 6), st.integers(2, 9), st.data())
def test_parse_matches_share_from_bytes(t: int, n: int, data: st.DataObject) -> None:
    t = min(t, n)
    holders = sorted(data.draw(st.sets(st.integers(1, 1_048_582), min_size=n, max_size=n)))
    shares = share_secrets([os.urandom(32) for _ in range(3)], holders, t)
    flat = [s for x in holders for s in shares[x]]
    parsed = parse_records(as_records([s.to_bytes() for s in flat]))
    assert parsed.valid.all()
    for i, share in enumerate(flat):
        assert parsed.xs[i] == share.x and parsed.thresholds[i] == share.threshold
        assert parsed.sharing_ids[i].tobytes() == share.sharing_id
        np.testing.assert_array_equal(parsed.values[i], share.values)
    assert repr(parsed) == f"ShareRecords(rows={len(flat)})"


@given(st.data())
def test_validity_matches_from_bytes_on_damaged_records(data: st.DataObject) -> None:
    share = share_secrets([os.urandom(32)], [1, 2, 3], 2)[2][0]
    raw = bytearray(share.to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, SHARE_BYTES - 1))
        raw[position] = data.draw(st.integers(0, 255))
    try:
        expected = Share.from_bytes(bytes(raw))
    except DecodeError:
        expected = None
    parsed = parse_records(as_records([bytes(raw)]))
    assert bool(parsed.valid[0]) == (expected is not None)
    if expected is not None:
        np.testing.assert_array_equal(parsed.values[0], expected.values)


@given(st.integers(2, 12), st.data())
def test_bulk_interpolation_matches_reconstruct_secret(n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n))
    secrets = [os.urandom(32) for _ in range(data.draw(st.integers(1, 5)))]
    secrets[0] = b"\xff" * 32  # the largest secret: every limb at its top value
    holders = list(range(1, n + 1))
    shares = share_secrets(secrets, holders, t)
    chosen = sorted(data.draw(st.permutations(holders))[:t])
    values = np.stack([np.stack([s.values for s in shares[x]]).astype(np.int64) for x in chosen])
    recovered = limbs_to_secrets(interpolate(values, chosen))
    assert recovered == secrets
    assert recovered[0] == reconstruct_secret([shares[x][0] for x in chosen])


def test_inconsistent_limbs_give_none() -> None:
    limbs = np.zeros((2, 13), dtype=np.int64)
    limbs[1, 0] = 1 << 20  # a limb above 20 bits: not a secret
    assert limbs_to_secrets(limbs) == [bytes(32), None]
    limbs[1, 0] = 0
    limbs[1, 12] = 1 << 16  # the top limb holds only 16 bits
    assert limbs_to_secrets(limbs)[1] is None


def test_wrong_record_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_records(np.zeros((2, SHARE_BYTES + 1), dtype=np.uint8))
    with pytest.raises(ValueError):
        parse_records(np.zeros((2, SHARE_BYTES), dtype=np.int64))
