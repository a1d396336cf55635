"""Threshold-CKKS sessions end to end: exact sums from any t key holders, dropouts in every
round, faulty members and clients contained and blamed, the server never sees a key share.

Review story (issue 14, protocol phase): with set-bound decryption shares one dropped
member of the active set ended the decryption; shares are now independent of who answers,
so up to n - t key holders may drop, and a faulty share is named instead of aborting the
round (issue 15: no single party aborts a round while t honest members remain).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from secagg.errors import ConfigurationError, ExclusionReason
from secagg.he.threshold_ckks import KeyShareDelivery
from secagg.protocols.base import Message
from secagg.protocols.threshold_ckks import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    ROUND_KEY_ADVERTISE,
    ROUND_KEY_CHECK,
    ROUND_KEY_DEAL,
    DecryptionShare,
    KeyAdvertise,
    KeyCheck,
    KeyDeal,
    Sealed,
)
from secagg.ring import dtype_for_bits
from tests.protocols.threshold_ckks.driver import run

CONFIG = ThresholdCkksConfig.create(range(1, 8), bits=16, vector_length=300)  # 3-of-5


def assert_exact(session: object) -> None:
    result = session.result  # type: ignore[attr-defined]
    assert result is not None, session.abort  # type: ignore[attr-defined]
    expected = session.expected(result.included)  # type: ignore[attr-defined]
    assert result.total.dtype == dtype_for_bits(16)
    assert np.array_equal(result.total.astype(np.uint64), expected)


def test_a_session_without_dropouts() -> None:
    session = run(CONFIG)
    assert_exact(session)
    assert session.result is not None
    assert session.result.included == frozenset(CONFIG.clients)
    assert not session.result.faults and not session.result.excluded
    assert session.server.key_holders == CONFIG.committee
    assert all(session.clients[m].holds_key_share for m in CONFIG.committee)
    assert all(client.done for client in session.clients.values())


@pytest.mark.parametrize(
    ("drop", "included", "holders"),
    [
        # n - t = 2 key holders drop in the decryption round: t = 3 still decrypt.
        ({ROUND_DECRYPTION: {1, 4}}, set(range(1, 8)), (1, 2, 3, 4, 5)),
        # Two members and a client drop before their upload (their shares never come).
        ({ROUND_ENCRYPTED_INPUT: {2, 5, 7}}, {1, 3, 4, 6}, (1, 2, 3, 4, 5)),
        # Members drop during the setup: fewer key holders, the same sum.
        ({ROUND_KEY_ADVERTISE: {1}, ROUND_KEY_DEAL: {5}}, {2, 3, 4, 6, 7}, (2, 3, 4)),
        ({ROUND_KEY_CHECK: {3, 4}}, {1, 2, 5, 6, 7}, (1, 2, 5)),
    ],
)
def test_dropouts_in_every_round(
    drop: dict[str, set[int]], included: set[int], holders: tuple[int, ...]
) -> None:
    session = run(CONFIG, drop=drop)
    assert_exact(session)
    assert session.result is not None
    assert session.result.included == frozenset(included)
    assert session.server.key_holders == holders
    for member in {m for ids in drop.values() for m in ids} & set(CONFIG.committee):
        reasons = session.result.faults[member].reasons
        assert reasons == {ExclusionReason.MEMBER_DROPPED}


@pytest.mark.parametrize(
    "drop",
    [
        {ROUND_KEY_ADVERTISE: {1, 2, 3}},
        {ROUND_KEY_DEAL: {1, 2, 3}},
        {ROUND_KEY_CHECK: {1, 2}, ROUND_DECRYPTION: {3}},
        {ROUND_DECRYPTION: {1, 2, 3}},
        {ROUND_ENCRYPTED_INPUT: {1, 2, 3, 4, 5, 6}},
    ],
)
def test_too_few_left_aborts(drop: dict[str, set[int]]) -> None:
    session = run(CONFIG, drop=drop)
    assert session.abort is not None and session.result is None


def test_a_garbage_decryption_share_is_blamed_and_the_sum_is_exact() -> None:
    def tamper(sender: int, message: Message) -> list[Message]:
        if isinstance(message, DecryptionShare) and sender == 2:
            data = bytearray(message.share)
            data[-4:] = bytes(4)  # the last residue zeroed: still decodes
            for k in range(40, len(data) - 4, 4):
                data[k] = 0
            return [DecryptionShare(sender, 0, message.session_id, bytes(data))]
        return [message]

    session = run(CONFIG, tamper=tamper)
    assert_exact(session)
    assert session.result is not None
    assert session.result.faults[2].reasons == {ExclusionReason.BAD_DECRYPTION}
    assert set(session.result.faults) == {2}


def test_a_dealer_of_garbage_to_everyone_is_left_out_of_the_key() -> None:
    def tamper(sender: int, message: Message) -> list[Message]:
        if isinstance(message, KeyDeal) and sender == 3:
            boxes = tuple(Sealed(b.peer, bytes(len(b.box))) for b in message.boxes)
            return [KeyDeal(sender, 0, message.session_id, message.public_key_share, boxes)]
        return [message]

    session = run(CONFIG, tamper=tamper)
    assert_exact(session)
    assert session.result is not None
    assert session.result.faults[3].reasons == {ExclusionReason.UNREADABLE_BUNDLE}
    assert session.server.key_holders == (1, 2, 4, 5)  # 3 holds a key share of nothing
    assert session.result.included == frozenset(CONFIG.clients)  # its input still counts


def test_a_lone_complaint_costs_the_complainer_its_key_share_only() -> None:
    # Member 4 complains about dealer 1 (falsely, or 1 really sent it garbage): nobody can
    # tell, so nobody is blamed; 4 holds no key share, the others decrypt.
    def tamper(sender: int, message: Message) -> list[Message]:
        if isinstance(message, KeyCheck) and sender == 4:
            return [KeyCheck(sender, 0, message.session_id, (1,))]
        return [message]

    session = run(CONFIG, tamper=tamper)
    assert_exact(session)
    assert session.server.key_holders == (1, 2, 3, 5)
    assert session.result is not None and not session.result.faults


def test_a_bad_advertised_key_or_deal_removes_only_its_sender() -> None:
    low_order = bytes(32)  # the all-zero point: every pair key with it would be public

    def tamper(sender: int, message: Message) -> list[Message]:
        if isinstance(message, KeyAdvertise) and sender == 1:
            return [KeyAdvertise(sender, 0, message.session_id, low_order)]
        if isinstance(message, KeyDeal) and sender == 2:
            return [KeyDeal(sender, 0, message.session_id, message.public_key_share, ())]
        return [message]

    session = run(CONFIG, tamper=tamper)
    assert_exact(session)
    assert session.result is not None
    assert session.server.key_holders == (3, 4, 5)
    assert set(session.result.faults) == {1, 2}
    assert all(
        session.result.faults[m].reasons == {ExclusionReason.INVALID_CONTENT} for m in (1, 2)
    )


def test_the_server_relays_sealed_boxes_it_cannot_open() -> None:
    seen: list[bytes] = []

    def tamper(sender: int, message: Message) -> list[Message]:
        if isinstance(message, KeyDeal):
            seen.extend(box.box for box in message.boxes)
        return [message]

    session = run(CONFIG, tamper=tamper)
    assert_exact(session)
    params = CONFIG.scheme
    assert len(seen) == 5 * 4
    for box in seen:
        # A sealed box is nonce || ciphertext || tag: no record the server could decode.
        with pytest.raises(Exception):
            KeyShareDelivery.from_bytes(params, box)
        assert len(box) == KeyShareDelivery.encoded_size(params, 1, 2) + 28
    # The server keeps public data only.
    assert "KeyShareDelivery" not in repr(vars(session.server))


def test_redirected_boxes_are_complained_about() -> None:
    # A server that hands member 1's box for 2 to member 3: 3 cannot open it.
    def hook(client: int, message: Message) -> Message:
        from secagg.protocols.threshold_ckks.messages import KeyCheckRequest

        if isinstance(message, KeyCheckRequest) and client == 3:
            boxes = tuple(
                Sealed(b.peer, message.boxes[0].box) if b.peer == 2 else b for b in message.boxes
            )
            return KeyCheckRequest(0, client, message.session_id, boxes)
        return message

    session = run(CONFIG, client_hook=hook)
    assert_exact(session)
    assert 3 not in session.server.key_holders


def test_clients_refuse_pickling_and_keep_secrets_out_of_reprs() -> None:
    session = run(CONFIG)
    member = session.clients[1]
    with pytest.raises(TypeError):
        pickle.dumps(member)
    with pytest.raises(TypeError):
        pickle.dumps(member._member)  # the member role: sealing keys, key share
    assert repr(member._member) == "MemberRole(id=1, ready=True)"
    assert repr(member) == "ThresholdCkksClient(id=1, state=DECRYPTED)"
    assert "session_id" in repr(CONFIG) and "N=8192" in repr(CONFIG)


def test_config_choices_and_refusals() -> None:
    config = ThresholdCkksConfig.create(
        range(1, 21), bits=32, vector_length=10, committee=range(1, 11)
    )
    assert config.threshold == 6 and config.scheme.committee_size == 10
    assert config.scheme.max_summands == 20 and config.scheme.plaintext_bits == 32
    big = ThresholdCkksConfig.create(
        range(1, 1001), bits=32, vector_length=3, committee=range(1, 15)
    )
    assert big.scheme.degree == 16384  # 14 members need the larger ring (Delta = 14!)
    with pytest.raises(ConfigurationError, match="no threshold CKKS parameters fit"):
        ThresholdCkksConfig.create(range(1, 101), bits=32, vector_length=3, committee=range(1, 19))
    for kwargs in (
        {"bits": 61},
        {"threshold": 6},
        {"committee": [9]},
        {"min_clients": 1},
        {"vector_length": 0},
        {"session_id": b"short"},
        {"committee": [1, 1]},
    ):
        arguments = {"bits": 16, "vector_length": 3, **kwargs}
        with pytest.raises(ConfigurationError):
            ThresholdCkksConfig.create(range(1, 8), **arguments)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ThresholdCkksConfig.create([1], bits=16, vector_length=3)
    with pytest.raises(ConfigurationError):
        ThresholdCkksConfig.create(range(1, 8), bits=16, vector_length=3, params=big.scheme)
