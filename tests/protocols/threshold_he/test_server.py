"""The threshold-HE server: bounded, typed records of what peers did.

Review story (issue 12, drift bug B): the Bonawitz server capped its fault notes per party,
but the threshold-HE copy appended one note per bad message without bound, so a client
flooding the server with junk grew its memory and the result's ``faults`` text. It now
records through the shared :class:`~secagg.protocols.faults.FaultLog` (at most
``MAX_FAULT_NOTES`` notes per party, the rest counted) with typed
:class:`~secagg.errors.ExclusionReason` reasons, and its exclusions are typed
:class:`~secagg.protocols.faults.Exclusion` values with the texts they always had.
"""

from __future__ import annotations

import dataclasses
import functools

import msgpack
import numpy as np
import pytest

from secagg.errors import ExclusionReason, ProtocolAbort, UsageError
from secagg.he.threshold_paillier import KeyShare
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.faults import MAX_FAULT_NOTES, Exclusion, Faults
from secagg.protocols.threshold_he import (
    ThresholdHEClient,
    ThresholdHEConfig,
    ThresholdHEServer,
    decode_threshold_he_message,
    setup_threshold_paillier,
)
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.protocols.threshold_he.rounds import ServerState

BITS, DIM = 16, 6
CLIENTS = [1, 2, 3, 4, 5]
COMMITTEE = [1, 2, 3]
FLOODER = 4  # not on the committee
MAX_NOTE_TEXT = 300


@functools.cache
def setup() -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    # Test-only 512-bit key; cached so the tests share it.
    return setup_threshold_paillier(
        CLIENTS, bits=BITS, vector_length=DIM, committee=COMMITTEE, threshold=2, key_bits=512
    )


def vector(client: int) -> np.ndarray:
    return np.full(DIM, client, dtype=np.uint32)  # non-secret test data


def clients() -> dict[int, ThresholdHEClient]:
    config, shares = setup()
    return {c: ThresholdHEClient(config, c, vector(c), key_share=shares.get(c)) for c in CLIENTS}


def through_bytes(message: Message) -> Message:
    return decode_threshold_he_message(message.to_bytes(), sender=message.sender)


def answer(
    server: ThresholdHEServer,
    parties: dict[int, ThresholdHEClient],
    requests: list[Message],
    *,
    silent: frozenset[int] = frozenset(),
) -> list[Message]:
    """Deliver ``requests``, feed the replies back; the server's next messages."""
    outgoing: list[Message] = []
    for request in requests:
        if request.recipient in silent:
            continue
        for reply in parties[request.recipient].receive(through_bytes(request)):
            outgoing.extend(server.receive(through_bytes(reply)))
    return outgoing


def flood(server: ThresholdHEServer, sender: int, rounds: int) -> int:
    """``sender`` sends ``rounds`` batches of junk: a duplicate of a valid upload, a share
    out of round (or a second upload in decryption), a server-only message type and a
    message of another session. Returns how many bad messages it sent."""
    config, _ = setup()
    sid = config.session_id
    upload = EncryptedInput(sender, SERVER_ID, sid, b"\x90")
    junk: list[Message] = [
        upload,
        DecryptionShare(sender, SERVER_ID, sid, b"\x90" * 100_000),
        InputRequest(sender, SERVER_ID, sid),
        dataclasses.replace(upload, session_id=b"x" * 16),
    ]
    for _ in range(rounds):
        for message in junk:
            assert server.receive(message) == []
    return rounds * len(junk)


def check_notes(notes: list[str], sent: int) -> None:
    assert len(notes) == MAX_FAULT_NOTES + 1
    assert notes[-1] == f"and {sent - MAX_FAULT_NOTES} more faults not recorded"
    assert all(len(note) < MAX_NOTE_TEXT for note in notes)


def test_a_flooding_client_leaves_bounded_notes_and_a_count() -> None:
    config, _ = setup()
    parties = clients()
    server = ThresholdHEServer(config, simulation=True)
    requests = server.start()
    first = [r for r in requests if r.recipient == FLOODER]
    rest = [r for r in requests if r.recipient != FLOODER]
    assert answer(server, parties, first) == []  # its valid upload first
    sent = flood(server, FLOODER, 10 * MAX_FAULT_NOTES)
    check_notes(server.faults[FLOODER], sent)
    decryption = answer(server, parties, rest)
    assert server.state is ServerState.DECRYPTION and decryption
    sent += flood(server, FLOODER, 2 * MAX_FAULT_NOTES)  # and on in the next round
    check_notes(server.faults[FLOODER], sent)
    assert answer(server, parties, decryption) == []
    result = server.result
    assert result is not None and result.included == frozenset(CLIENTS)
    expected = sum(vector(c).astype(np.uint64) for c in CLIENTS) % 2**BITS
    np.testing.assert_array_equal(result.total, expected)
    faults = result.faults[FLOODER]
    assert isinstance(faults, Faults) and faults.unrecorded == sent - MAX_FAULT_NOTES
    assert len(faults.notes) == MAX_FAULT_NOTES
    assert faults.reasons == {
        ExclusionReason.DUPLICATE,
        ExclusionReason.OUT_OF_ROUND,
        ExclusionReason.MISROUTED,
    }
    assert len(faults) < MAX_FAULT_NOTES * MAX_NOTE_TEXT
    # The texts name the round and what happened, never the payload.
    assert faults.notes[0] == f"{ROUND_ENCRYPTED_INPUT}: unexpected or duplicate EncryptedInput"
    assert faults.notes[1] == f"{ROUND_ENCRYPTED_INPUT}: out-of-round DecryptionShare"
    assert faults.notes[3] == (f"{ROUND_ENCRYPTED_INPUT}: message of another session or recipient")
    # After the end, whatever arrives is dropped without a note.
    flood(server, FLOODER, 1)
    assert server.faults[FLOODER][-1] == f"and {sent - MAX_FAULT_NOTES} more faults not recorded"


def test_exclusions_are_typed_and_keep_their_texts() -> None:
    config, _ = setup()
    parties = clients()
    server = ThresholdHEServer(config, simulation=True)
    requests = server.start()
    bad = EncryptedInput(5, SERVER_ID, config.session_id, b"\x90")  # an empty msgpack array
    assert server.receive(bad) == []
    answer(server, parties, [r for r in requests if r.recipient != 5], silent=frozenset({4}))
    decryption = server.close_round()  # client 4 never answered
    assert answer(server, parties, decryption) == []
    result = server.result
    assert result is not None and result.included == frozenset({1, 2, 3})
    dropped, refused = result.excluded[4], result.excluded[5]
    assert isinstance(dropped, Exclusion) and isinstance(refused, Exclusion)
    assert dropped == f"dropped in {ROUND_ENCRYPTED_INPUT}"
    assert (dropped.reason, dropped.round_name) == (
        ExclusionReason.DROPPED,
        ROUND_ENCRYPTED_INPUT,
    )
    assert refused.startswith(f"bad message in {ROUND_ENCRYPTED_INPUT}: ")
    assert refused.reason is ExclusionReason.BAD_MESSAGE
    assert result.faults[5].reasons == {ExclusionReason.INVALID_CONTENT}


def test_an_upload_with_a_bool_version_is_refused() -> None:
    """HE records use exact types: ``"v": True`` is not version 1."""
    config, _ = setup()
    parties = clients()
    server = ThresholdHEServer(config, simulation=True)
    requests = server.start()

    def tampered(message: Message) -> Message:
        if isinstance(message, EncryptedInput) and message.sender == 5:
            record = msgpack.unpackb(message.payload, raw=False)
            assert record["v"] == 1
            record["v"] = True
            payload = msgpack.packb(record, use_bin_type=True)
            return dataclasses.replace(message, payload=payload)
        return message

    decryption: list[Message] = []
    for request in requests:
        for reply in parties[request.recipient].receive(request):
            decryption.extend(server.receive(through_bytes(tampered(reply))))
    assert answer(server, parties, decryption) == []
    result = server.result
    assert result is not None and result.included == frozenset(CLIENTS) - {5}
    assert result.excluded[5].reason is ExclusionReason.BAD_MESSAGE


def test_members_that_never_answer_are_noted_once_and_abort_below_t() -> None:
    config, _ = setup()
    parties = clients()
    server = ThresholdHEServer(config, simulation=True)
    decryption = answer(server, parties, server.start())
    assert server.state is ServerState.DECRYPTION
    answer(server, parties, decryption, silent=frozenset({1, 2}))
    with pytest.raises(ProtocolAbort):
        server.close_round()  # one valid share, t = 2, no live member left to ask
    assert server.state is ServerState.ABORTED
    for member in (1, 2):
        assert server.faults[member] == [
            f"{ROUND_DECRYPTION}: dropped before sending its decryption share"
        ]
    with pytest.raises(UsageError, match="no round to close"):
        server.close_round()
    assert server.receive(DecryptionShare(1, SERVER_ID, config.session_id, b"late")) == []
