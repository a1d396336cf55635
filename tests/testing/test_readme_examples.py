"""The README's examples of secagg.testing, run as tests (keep them in sync with the README).

1. A user's own transport (here a length-prefixed framing) around our Client and Server,
   property-tested with our strategies and harness: it passes.
2. The same test over a transport with a classic bug (one ``recv(1024)`` instead of a loop
   until the frame is complete): hypothesis finds it, shrinks it to the smallest session
   whose messages exceed 1 KiB, and the harness says what broke.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.testing import BonawitzTarget, InvariantViolation, harness
from secagg.testing import strategies as sst


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def unframe(stream: bytes) -> bytes:
    size = int.from_bytes(stream[:4], "big")
    return stream[4 : 4 + size]


# --- README: testing your own transport ------------------------------------------------


def my_transport(data: bytes, sender: int, recipient: int) -> list[bytes]:
    return [unframe(frame(data))]  # your framing, queue or socket pair goes here


@given(sst.bonawitz_targets(), st.data())
def test_my_transport(target: BonawitzTarget, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="dropouts")
    order = data.draw(sst.delivery_orders(), label="order")
    harness.run(target, inputs, schedule, transport=my_transport, order=order)


# --- README: a failing example ---------------------------------------------------------


def one_recv_transport(data: bytes, sender: int, recipient: int) -> list[bytes]:
    stream = frame(data)
    return [unframe(stream[:1024])]  # bug: one recv(1024), not a loop until complete


@settings(database=None, derandomize=True, max_examples=200, report_multiple_bugs=False)
@given(sst.bonawitz_targets(), st.data())
def check_one_recv_transport(target: BonawitzTarget, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="dropouts")
    harness.run(target, inputs, schedule, transport=one_recv_transport)


def test_the_harness_catches_a_transport_that_reads_one_chunk() -> None:
    with pytest.raises(InvariantViolation):
        check_one_recv_transport()
