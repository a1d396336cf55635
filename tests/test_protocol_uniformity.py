"""The server's view of one client's masked input is indistinguishable from uniform.

Chi-square tests with loose thresholds (many standard deviations): they catch a missing
or weak mask (a structured input shows through at once) without flaking.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_protocol_e2e import Session, make_session, run_session

from secagg.packing import unpack
from secagg.protocols.messages import MaskedInput, decode_message


def server_view(session: Session, client: int) -> np.ndarray:
    """The masked vector of ``client`` exactly as the server received it."""
    seen: list[bytes] = []

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if sender == client and name == "masked_input":
            seen.append(data)
        return [data]

    run_session(session, tamper=tamper)
    (data,) = seen
    message = decode_message(data)
    assert isinstance(message, MaskedInput)
    return unpack(message.payload, message.bits, message.length)


def byte_chi_square(values: np.ndarray) -> float:
    counts = np.bincount(values.astype(np.int64), minlength=256).astype(np.float64)
    expected = values.size / 256
    return float(((counts - expected) ** 2 / expected).sum())


def bit_z_scores(values: np.ndarray, bits: int) -> np.ndarray:
    v = values.astype(np.uint64)
    ones = np.array([((v >> np.uint64(b)) & np.uint64(1)).sum() for b in range(bits)], float)
    n = values.size
    return np.abs(ones - n / 2) / np.sqrt(n / 4)


# 255 degrees of freedom: mean 255, standard deviation 22.6; 460 is about 9 sigma.
CHI_SQUARE_LIMIT = 460.0


@pytest.mark.parametrize("n", [2, 5])
def test_masked_bytes_of_a_constant_input_look_uniform(n: int) -> None:
    length = 1 << 15
    session = make_session(n, n // 2 + 1, bits=8, length=length)
    session.inputs[1][:] = 7  # maximally structured (the client holds this very array)
    view = server_view(session, 1)
    assert byte_chi_square(view) < CHI_SQUARE_LIMIT
    # The same statistic on the input itself is enormous: the test can fail.
    assert byte_chi_square(session.inputs[1]) > 100 * CHI_SQUARE_LIMIT


@pytest.mark.parametrize("bits", [16, 33, 64])
def test_every_bit_of_the_masked_input_is_balanced(bits: int) -> None:
    length = 1 << 13
    session = make_session(3, 2, bits=bits, length=length)
    session.inputs[2][:] = 0
    view = server_view(session, 2)
    assert bit_z_scores(view, bits).max() < 6.0
    low_bytes = (view & 0xFF).astype(np.uint8)
    assert byte_chi_square(low_bytes) < CHI_SQUARE_LIMIT
    assert bit_z_scores(session.inputs[2], bits).max() > 50  # zero input: every bit is off


def test_two_sessions_mask_the_same_input_differently() -> None:
    views = []
    for _ in range(2):
        session = make_session(3, 2, bits=16, length=256)
        session.inputs[1][:] = 1
        views.append(server_view(session, 1))
    assert np.count_nonzero(views[0] == views[1]) < 16  # about 256 / 2^16 expected
