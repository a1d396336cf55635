"""Threshold-HE client guards: late messages after an abort, input requests out of turn, and
the one input check at the client's edge.

A message that reaches a client after it aborted is the server's doing (a remote event):
ProtocolViolation naming the server, never a UsageError. An InputRequest when the client
is past WAITING names the state it is in.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import (
    ConfigurationError,
    MaliciousRequestError,
    ProtocolViolation,
    UsageError,
)
from secagg.he.paillier import encrypt_vector
from secagg.he.threshold_paillier import KeyShare
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_he import (
    ThresholdHEClient,
    ThresholdHEConfig,
    setup_threshold_paillier,
)
from secagg.protocols.threshold_he.messages import (
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.protocols.threshold_he.rounds import ClientState

BITS, DIM = 16, 8
CLIENTS = [1, 2, 3, 4, 5, 6]
COMMITTEE = [1, 2, 3]
MEMBER = 1


@functools.cache
def setup() -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    # Test-only 512-bit key; cached so hypothesis examples share it.
    return setup_threshold_paillier(
        CLIENTS, bits=BITS, vector_length=DIM, committee=COMMITTEE, threshold=2, key_bits=512
    )


def vector(client: int) -> np.ndarray:
    return np.full(DIM, client, dtype=np.uint32)  # non-secret test data


@functools.cache
def aggregates() -> tuple[bytes, bytes]:
    """(one client's ciphertext: too few summands, the sum of clients 4 and 5)."""
    config, _ = setup()
    assert config.public_key is not None
    key = config.public_key.paillier
    single = encrypt_vector(key, vector(4).astype(np.uint64), config.layout)
    pair = single + encrypt_vector(key, vector(5).astype(np.uint64), config.layout)
    return single.to_bytes(), pair.to_bytes()


def member() -> ThresholdHEClient:
    config, shares = setup()
    return ThresholdHEClient(config, MEMBER, vector(MEMBER), key_share=shares[MEMBER])


def aborted_member() -> ThresholdHEClient:
    """A member that refused a decryption request of one client's ciphertext."""
    client = member()
    single, _ = aggregates()
    with pytest.raises(MaliciousRequestError):
        client.receive(DecryptionRequest(SERVER_ID, MEMBER, setup()[0].session_id, (4,), single))
    assert client.state is ClientState.ABORTED
    return client


def late_message(kind: str) -> Message:
    sid = setup()[0].session_id
    _, pair = aggregates()
    if kind == "input":
        return InputRequest(SERVER_ID, MEMBER, sid)
    return DecryptionRequest(SERVER_ID, MEMBER, sid, (4, 5), pair)


@given(st.lists(st.sampled_from(["input", "decryption"]), min_size=1, max_size=4))
def test_late_messages_after_abort_blame_the_server(kinds: list[str]) -> None:
    client = aborted_member()
    for kind in kinds:
        message = late_message(kind)
        with pytest.raises(ProtocolViolation) as caught:
            client.receive(message)
        assert not isinstance(caught.value, UsageError)
        assert caught.value.party == SERVER_ID
        text = str(caught.value)
        assert "session ended for this client" in text
        assert type(message).__name__ in text
        # The client stays aborted and answers nothing, however many messages arrive.
        assert client.state is ClientState.ABORTED and not client.done


def test_input_request_after_input_names_the_state() -> None:
    client = member()
    sid = setup()[0].session_id
    (reply,) = client.receive(InputRequest(SERVER_ID, MEMBER, sid))
    assert isinstance(reply, EncryptedInput)
    with pytest.raises(ProtocolViolation, match="out of turn") as caught:
        client.receive(InputRequest(SERVER_ID, MEMBER, sid))
    assert caught.value.party == SERVER_ID
    assert "input_sent" in str(caught.value)
    assert "second" not in str(caught.value)
    assert client.state is ClientState.INPUT_SENT  # refused, not acted on


def test_input_request_after_decryption_names_the_state() -> None:
    client = member()
    sid = setup()[0].session_id
    _, pair = aggregates()
    (reply,) = client.receive(DecryptionRequest(SERVER_ID, MEMBER, sid, (4, 5), pair))
    assert isinstance(reply, DecryptionShare) and client.state is ClientState.DECRYPTED
    with pytest.raises(ProtocolViolation, match="out of turn") as caught:
        client.receive(InputRequest(SERVER_ID, MEMBER, sid))
    assert caught.value.party == SERVER_ID
    assert "decrypted" in str(caught.value)
    assert "second" not in str(caught.value)
    assert client.state is ClientState.DECRYPTED and client.done


def test_foreign_messages_are_still_refused_first_after_abort() -> None:
    # Routing checks come before the abort check: a foreign session is named as such.
    client = aborted_member()
    with pytest.raises(ProtocolViolation, match="another session") as caught:
        client.receive(InputRequest(SERVER_ID, MEMBER, b"x" * 16))
    assert caught.value.party == SERVER_ID


# --- the input is checked once, at the client's edge (secagg.ring.check_values) -------------


@pytest.mark.parametrize(
    "bad",
    [
        np.full(DIM, 1 << BITS, dtype=np.uint32),  # one past the range
        np.full(DIM, -1, dtype=np.int64),  # negative representatives are not in Z_(2^b)
        np.zeros(DIM + 1, dtype=np.uint32),
        np.zeros((2, DIM), dtype=np.uint32),
        np.zeros(DIM, dtype=np.float64),
        [0] * DIM,
    ],
    ids=["too-large", "negative", "too-long", "2-d", "float", "list"],
)
def test_a_bad_input_is_refused_where_the_client_takes_it(bad: object) -> None:
    config, shares = setup()
    for client_id in (MEMBER, 5):  # a committee member and a plain client
        with pytest.raises(ConfigurationError, match="the input"):
            ThresholdHEClient(config, client_id, bad, key_share=shares.get(client_id))  # type: ignore[arg-type]
        lazy = ThresholdHEClient(config, client_id, lambda: bad, key_share=shares.get(client_id))  # type: ignore[arg-type,return-value]
        with pytest.raises(ConfigurationError, match="the input"):
            lazy.receive(InputRequest(SERVER_ID, client_id, config.session_id))
        assert lazy.state is ClientState.WAITING and not lazy.done  # nothing was sent


def test_a_valid_input_of_any_integer_dtype_is_taken() -> None:
    config, _ = setup()
    for dtype in (np.uint8, np.int32, np.uint64):
        client = ThresholdHEClient(config, 5, np.full(DIM, 7, dtype=dtype))
        (upload,) = client.receive(InputRequest(SERVER_ID, 5, config.session_id))
        assert isinstance(upload, EncryptedInput) and client.done
