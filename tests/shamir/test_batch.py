"""The server's bulk interpolation agrees with secagg.shamir's per-share API."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from secagg.shamir import batch as share_batch
from secagg.shamir import reconstruct_secret, share_secrets
from secagg.shamir import sharing as shamir
from secagg.shamir.batch import interpolate, limbs_to_secrets


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


def test_the_server_names_are_shamir_s() -> None:
    """The share layout lives in secagg.shamir only: share_batch re-exports its parser."""
    assert share_batch.parse_records is shamir.parse_shares
    assert share_batch.limbs_to_secrets is shamir.limbs_to_secrets
