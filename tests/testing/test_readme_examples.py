"""The README's examples of secagg.testing, run as tests (keep them in sync with the README;
tests/test_readme.py also runs the README's own copies).

1. A user's own transport (here a length-prefixed framing) around our Client and Server,
   property-tested with our strategies and harness: it passes.
2. The same test over a transport with a classic bug (one ``recv(1024)`` instead of a loop
   until the frame is complete): every session drawn sends a masked input of 1000 16-bit
   values (2000 bytes), so the bug shows in the first example whatever hypothesis draws,
   under any load (no deadline, no too-slow health check), and the harness says what broke.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from secagg.testing import BonawitzTarget, InvariantViolation, harness
from secagg.testing import strategies as sst

UNDER_LOAD = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def unframe(stream: bytes) -> bytes:
    size = int.from_bytes(stream[:4], "big")
    return stream[4 : 4 + size]


# --- README: testing your own transport ------------------------------------------------


def my_transport(data: bytes, sender: int, recipient: int) -> list[bytes]:
    return [unframe(frame(data))]  # your framing, queue or socket pair goes here


@UNDER_LOAD
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


LARGE = sst.bonawitz_targets(
    max_clients=5, min_vector_length=1000, max_vector_length=1000, bits=st.just(16)
)


# No shrinking here (the README's copy shrinks; tests/test_readme.py runs it): the point is
# that it fails.
@settings(UNDER_LOAD, database=None, max_examples=10, phases=(Phase.generate,))
@given(LARGE, st.data())
def check_one_recv_transport(target: BonawitzTarget, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    harness.run(target, inputs, transport=one_recv_transport)


@settings(UNDER_LOAD, database=None, max_examples=5)
@given(LARGE, st.data())
def check_every_large_session_fails(target: BonawitzTarget, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    with pytest.raises(InvariantViolation):
        harness.run(target, inputs, transport=one_recv_transport)


def test_the_harness_catches_a_transport_that_reads_one_chunk() -> None:
    with pytest.raises(InvariantViolation, match="the session aborted"):
        check_one_recv_transport()


def test_the_failure_does_not_depend_on_the_draw() -> None:
    """Not one lucky example: every session the README's strategy draws fails."""
    check_every_large_session_fails()
