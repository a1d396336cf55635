"""The server's view of one client's masked input is indistinguishable from uniform.

The statistic is :func:`secagg.testing.uniformity_score` (bit balance and a low-bits
chi-square as z-scores, limit :data:`~secagg.testing.uniformity.Z_LIMIT`, many standard
deviations): it catches a missing or weak mask (a structured input shows through at once)
without flaking. The server's view is what :func:`secagg.testing.harness.run` recorded from
the MaskedInput bytes it moved.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.testing import BonawitzTarget, run, uniformity_score
from secagg.testing.strategies import bonawitz_targets, client_inputs
from secagg.testing.uniformity import MIN_SAMPLES, Z_LIMIT
from tests.helpers.protocol import Session, make_session


def server_view(session: Session, client: int) -> np.ndarray:
    """The masked vector of ``client`` exactly as the server received it."""
    report = run(BonawitzTarget(session.config, session.identities), session.inputs)
    return report.log.views[client]


@pytest.mark.parametrize("n", [2, 5])
def test_masked_bytes_of_a_constant_input_look_uniform(n: int) -> None:
    length = 1 << 15
    session = make_session(n, n // 2 + 1, bits=8, length=length)
    session.inputs[1][:] = 7  # maximally structured
    assert uniformity_score(server_view(session, 1), 8) < Z_LIMIT
    # The same statistic on the input itself is enormous: the test can fail.
    assert uniformity_score(session.inputs[1], 8) > 100 * Z_LIMIT


@pytest.mark.parametrize("bits", [16, 33, 64])
def test_every_bit_of_the_masked_input_is_balanced(bits: int) -> None:
    length = 1 << 13
    session = make_session(3, 2, bits=bits, length=length)
    session.inputs[2][:] = 0
    assert uniformity_score(server_view(session, 2), bits) < Z_LIMIT
    assert uniformity_score(session.inputs[2], bits) > 50  # zero input: every bit is off


@given(st.data())
def test_every_masked_input_looks_uniform(data: st.DataObject) -> None:
    """Any mode, graph and bit width, inputs that respect headroom (their top bit is always
    off, so an unmasked one scores far above the limit): the harness checks the score of
    every masked input the server saw."""
    target = data.draw(
        bonawitz_targets(max_clients=4, min_vector_length=MIN_SAMPLES, max_vector_length=256),
        label="target",
    )
    inputs = data.draw(client_inputs(target), label="inputs")
    report = run(target, inputs)
    assert set(report.log.views) == set(target.clients)


def test_two_sessions_mask_the_same_input_differently() -> None:
    views = []
    for _ in range(2):
        session = make_session(3, 2, bits=16, length=256)
        session.inputs[1][:] = 1
        views.append(server_view(session, 1))
    assert np.count_nonzero(views[0] == views[1]) < 16  # about 256 / 2^16 expected
