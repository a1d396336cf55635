"""Wire-format vectors of Shamir shares: :meth:`Share.to_bytes` (format byte 1) and the
compact limb form that travels inside the protocols (``tests/vectors/wire/shamir.json``).

Both directions: the fields encode to exactly the pinned bytes, and the pinned bytes decode
(one at a time and in bulk) to the same share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from secagg.shamir import (
    LIMB_SHARE_BYTES,
    Share,
    pack_limb_shares,
    parse_limb_shares,
    parse_shares,
    unpack_limb_shares,
)
from tests.helpers.vectors import cases, load_vectors, unhex

VECTORS = load_vectors("wire/shamir")


@pytest.mark.parametrize("vector", cases(VECTORS, "shares"))
def test_share_encoding(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    share = Share(
        fields["x"],
        fields["threshold"],
        unhex(fields["sharing_id"]),
        np.array(fields["values"], dtype=np.int64),
    )
    data = unhex(vector["encoding"])
    assert share.to_bytes() == data
    decoded = Share.from_bytes(data)
    assert decoded == share
    assert decoded.values.tolist() == fields["values"]
    bulk = parse_shares([data])
    assert bulk.valid.tolist() == [True]
    assert (int(bulk.xs[0]), int(bulk.thresholds[0])) == (fields["x"], fields["threshold"])
    assert bytes(bulk.sharing_ids[0]) == share.sharing_id
    assert bulk.values[0].tolist() == fields["values"]


@pytest.mark.parametrize("vector", cases(VECTORS, "compact"))
def test_compact_limb_shares(vector: dict[str, Any]) -> None:
    limbs = np.array(vector["limbs"], dtype=np.int64)
    data = unhex(vector["encoding"])
    assert pack_limb_shares(limbs) == data
    rows = limbs.reshape(-1, limbs.shape[-1])
    records = [data[i : i + LIMB_SHARE_BYTES] for i in range(0, len(data), LIMB_SHARE_BYTES)]
    assert [unpack_limb_shares(record).tolist() for record in records] == rows.tolist()
    valid, values = parse_limb_shares(records)
    assert valid.all() and values.tolist() == rows.tolist()
