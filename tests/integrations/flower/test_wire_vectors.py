"""Wire-format vectors of the Flower transport (``tests/vectors/wire/flower.json``): the
encoded :class:`SessionSetup` and the records :func:`write_envelope` adds to a Flower
``RecordDict`` (the envelope is not one byte string: Flower serializes the records).

Both directions: the fields encode to exactly the pinned bytes / records, and the pinned
bytes / records decode to an equal object.
"""

from __future__ import annotations

from typing import Any

import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from secagg.dp import DPPlan
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.flower.wire import (
    HEADER_KEY,
    PAYLOAD_KEY,
    WIRE_VERSION,
    Envelope,
    FixedPointParams,
    PrivacySetup,
    SessionSetup,
    read_envelope,
    write_envelope,
)
from tests.helpers.vectors import cases, load_vectors, unhex

VECTORS = load_vectors("wire/flower")


def test_vectors_are_of_the_current_version() -> None:
    assert VECTORS["wire_version"] == WIRE_VERSION


@pytest.mark.parametrize("vector", cases(VECTORS, "session_setup"))
def test_session_setup(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    layout = ArrayLayout.from_wire(fields["layout"], max_size=2**20)
    setup = SessionSetup(
        session_id=unhex(fields["session_id"]),
        protocol=fields["protocol"],
        n=fields["n"],
        client_id=fields["client_id"],
        bits=fields["bits"],
        fixed_point=FixedPointParams(*fields["fixed_point"]),
        layout=layout,
        weighted_by_key=fields["weighted_by_key"],
        weighted=fields["weighted"],
        params=unhex(fields["params"]),
        metric_scale=fields["metric_scale"],
        report_clipping=fields["report_clipping"],
        privacy=None
        if fields["privacy"] is None
        else PrivacySetup(
            DPPlan.from_dict(fields["privacy"]["plan"]), unhex(fields["privacy"]["round_seed"])
        ),
    )
    data = unhex(vector["encoding"])
    assert setup.to_bytes() == data
    assert SessionSetup.from_bytes(data, max_vector_length=setup.vector_length) == setup


def _records(content: RecordDict) -> dict[str, Any]:
    header, payload = content[HEADER_KEY], content[PAYLOAD_KEY]
    assert isinstance(header, ConfigRecord) and isinstance(payload, ArrayRecord)
    return {
        HEADER_KEY: {k: v.hex() if isinstance(v, bytes) else v for k, v in header.items()},
        PAYLOAD_KEY: [
            {
                "key": k,
                "dtype": a.dtype,
                "shape": list(a.shape),
                "stype": a.stype,
                "data": a.data.hex(),
            }
            for k, a in payload.items()
        ],
    }


@pytest.mark.parametrize("vector", cases(VECTORS, "envelope"))
def test_envelope(vector: dict[str, Any]) -> None:
    fields, records = vector["fields"], vector["records"]
    envelope = Envelope(
        stage=fields["stage"],
        session_id=unhex(fields["session_id"]),
        payloads=tuple(unhex(p) for p in fields["payloads"]),
        **{key: None if fields[key] is None else unhex(fields[key])
           for key in ("setup", "identify", "identity")},
    )
    assert _records(write_envelope(RecordDict(), envelope)) == records
    # The pinned records, built without write_envelope, read back to the envelope.
    header = {
        k: unhex(v) if k in ("session", "setup", "identify", "identity") else v
        for k, v in records[HEADER_KEY].items()
    }
    payload = {
        item["key"]: Array(
            dtype=item["dtype"],
            shape=tuple(item["shape"]),
            stype=item["stype"],
            data=unhex(item["data"]),
        )
        for item in records[PAYLOAD_KEY]
    }
    content = RecordDict({HEADER_KEY: ConfigRecord(header), PAYLOAD_KEY: ArrayRecord(payload)})
    assert read_envelope(content, party=0, max_bytes=2**20) == envelope
