"""A threshold-CKKS member refuses what an honest server never sends, and gives one
decryption share per session; a non-member takes only its input request."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg.errors import ConfigurationError, MaliciousRequestError, ProtocolViolation
from secagg.he.threshold_ckks import CiphertextMask, PublicKey
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_ckks import ThresholdCkksClient, ThresholdCkksConfig
from secagg.protocols.threshold_ckks.client import ClientState
from secagg.protocols.threshold_ckks.messages import (
    DecryptionRequest,
    InputRequest,
    KeyDealRequest,
    PeerKey,
)
from tests.protocols.threshold_ckks.driver import run

CONFIG = ThresholdCkksConfig.create(range(1, 6), bits=8, vector_length=20, committee=[1, 2, 3])


def _captured() -> tuple[dict[int, list[Message]], object]:
    seen: dict[int, list[Message]] = {}

    def hook(client: int, message: Message) -> Message:
        seen.setdefault(client, []).append(message)
        return message

    return seen, hook


def test_a_member_decrypts_once_and_refuses_a_second_request() -> None:
    seen, hook = _captured()
    session = run(CONFIG, client_hook=hook)  # type: ignore[arg-type]
    assert session.result is not None
    request = seen[1][-1]
    assert isinstance(request, DecryptionRequest)
    member = session.clients[1]
    with pytest.raises(MaliciousRequestError) as info:
        member.receive(request)
    assert info.value.party == SERVER_ID and member.state is ClientState.ABORTED


def _until_decryption(client: int) -> tuple[ThresholdCkksClient, DecryptionRequest]:
    """A fresh session run to the end, and ``client`` replaced by a copy that stopped at
    its decryption request (so that variations of it can be tried)."""
    seen, hook = _captured()
    session = run(CONFIG, client_hook=hook)  # type: ignore[arg-type]
    request = seen[client][-1]
    assert isinstance(request, DecryptionRequest)
    # Replay the member's history into a new client of the same session.
    fresh = ThresholdCkksClient(CONFIG, client, session.inputs[client])
    fresh._member = session.clients[client]._member  # the same key material
    fresh._state = ClientState.INPUT_SENT
    assert fresh._member is not None
    fresh._member._scheme._requests.clear()
    return fresh, request


@pytest.mark.parametrize(
    "change",
    [
        {"included": (1, 2)},  # a summand count that does not match the aggregate
        {"included": (1,)},  # fewer than min_clients
        {"included": (1, 9, 10, 11, 12)},  # strangers
        {"mask": b"\x80"},  # not a mask record
    ],
)
def test_a_bad_decryption_request_aborts_the_member(change: dict[str, object]) -> None:
    member, request = _until_decryption(2)
    bad = dataclasses.replace(request, **change)  # type: ignore[arg-type]
    with pytest.raises(ProtocolViolation) as info:
        member.receive(bad)
    assert info.value.party == SERVER_ID
    assert member.state is ClientState.ABORTED


def test_a_member_without_a_key_share_does_not_decrypt() -> None:
    member, request = _until_decryption(3)
    assert member._member is not None
    member._member.ready = False
    with pytest.raises(ProtocolViolation, match="without a key share"):
        member.receive(request)


def test_public_keys_of_another_session_or_non_members_are_refused() -> None:
    seen, hook = _captured()
    run(CONFIG, client_hook=hook)  # type: ignore[arg-type]
    request = next(m for m in seen[4] if isinstance(m, InputRequest))
    key = PublicKey.from_bytes(CONFIG.scheme, request.public_key)
    other_seed = PublicKey(CONFIG.scheme, bytes(32), key.contributors, key.value)
    strangers = PublicKey(CONFIG.scheme, key.seed, (1, 2, 4), key.value)
    for public in (other_seed, strangers):
        client = ThresholdCkksClient(CONFIG, 4, np.zeros(20, dtype=np.uint8))
        with pytest.raises(ProtocolViolation):
            client.receive(dataclasses.replace(request, public_key=public.to_bytes()))
    client = ThresholdCkksClient(CONFIG, 4, np.zeros(20, dtype=np.uint8))
    with pytest.raises(ProtocolViolation, match="unusable public key"):
        client.receive(dataclasses.replace(request, public_key=b"\x80"))


def test_peers_must_be_other_committee_members() -> None:
    client = ThresholdCkksClient(CONFIG, 1, np.zeros(20, dtype=np.uint8))
    sid = CONFIG.session_id
    from secagg.protocols.threshold_ckks.messages import KeyAdvertiseRequest

    (advert,) = client.receive(KeyAdvertiseRequest(SERVER_ID, 1, sid))
    key = advert.cipher_public_key  # type: ignore[attr-defined]
    for peers in ((PeerKey(1, key),), (PeerKey(4, key),)):
        fresh = ThresholdCkksClient(CONFIG, 1, np.zeros(20, dtype=np.uint8))
        fresh.receive(KeyAdvertiseRequest(SERVER_ID, 1, sid))
        with pytest.raises(ProtocolViolation, match="other committee members"):
            fresh.receive(KeyDealRequest(SERVER_ID, 1, sid, peers))


def test_non_members_take_only_the_input_request() -> None:
    client = ThresholdCkksClient(CONFIG, 5, np.zeros(20, dtype=np.uint8))
    mask = CiphertextMask(CONFIG.scheme, 20, 5, np.zeros((4, 1, 8192), dtype=np.uint64))
    request = DecryptionRequest(SERVER_ID, 5, CONFIG.session_id, (1, 2, 3, 4, 5), mask.to_bytes())
    with pytest.raises(ProtocolViolation, match="non-member"):
        client.receive(request)
    with pytest.raises(ConfigurationError):
        ThresholdCkksClient(CONFIG, 9, np.zeros(20, dtype=np.uint8))
    with pytest.raises(ConfigurationError):
        ThresholdCkksClient(CONFIG, 5, np.full(20, 256, dtype=np.uint16))
