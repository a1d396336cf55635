"""Review: binding and hygiene of what travels, pinned end to end.

Domain separation between sessions, a server that forges or reorders routed ciphertexts,
malformed masked inputs, ids outside the session, size fields, constant-time checks of
secrets, no secret in any repr or error text, separate keys per purpose, unique nonces.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from collections.abc import Callable

import msgpack
import pytest

from secagg.errors import AuthenticationError, DecodeError, ExclusionReason, ProtocolViolation
from secagg.keys import KeyPair, Purpose, agree
from secagg.protocols.base import AggregationResult, Message
from secagg.protocols.bonawitz.bundles import (
    SecretKind,
    derive_box_keys,
    open_box,
    seal_box,
)
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    ConsistencyCheck,
    MaskedInput,
    MaskedInputRequest,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    decode_message,
)
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH
from secagg.ring import packed_size
from tests.helpers.protocol import Session, advance_to, assert_correct, make_session, run_session

Rewrite = Callable[[Message], Message]


def drive(
    session: Session, rewrite: Rewrite, tap: list[Message] | None = None
) -> AggregationResult:
    """Run the session; ``rewrite`` sees every server -> client message (the malicious or
    curious server's move) and ``tap`` collects every message of both directions."""
    server = session.server
    outgoing = server.start()
    while True:
        replies: list[Message] = []
        for message in outgoing:
            message = rewrite(message)
            if tap is not None:
                tap.append(message)
            client = session.clients[message.recipient]
            replies += client.receive(decode_message(message.to_bytes()))
        outgoing = []
        for reply in replies:
            if tap is not None:
                tap.append(reply)
            outgoing += server.receive_bytes(reply.to_bytes(), reply.sender)
        if outgoing:
            continue
        if server.done:
            break
        outgoing = server.close_round()
    assert server.result is not None
    return server.result


# --- sessions are separate domains ------------------------------------------------------


def test_round_1_material_of_session_a_is_useless_in_session_b() -> None:
    session_a = make_session(6, 4, length=4, seed=1)
    stolen = advance_to(session_a, "share_check")[1]
    assert isinstance(stolen, ShareCheckRequest)
    session_b = make_session(6, 4, length=4, seed=2)

    def replay(message: Message) -> Message:
        # Client 1 of session B gets session A's boxes for client 1 (same dealer ids; its
        # own boxes stay: a client refuses its own boxes changed).
        if isinstance(message, ShareCheckRequest) and message.recipient == 1:
            boxes = tuple(item for item in stolen.boxes if item.peer != 1)
            own = tuple(item for item in message.boxes if item.peer == 1)
            return dataclasses.replace(message, boxes=tuple(sorted(own + boxes)))
        return message

    tap: list[Message] = []
    result = drive(session_b, replay, tap)
    assert_correct(session_b, result)
    (check,) = [m for m in tap if isinstance(m, ShareCheck) and m.sender == 1]
    # Opened nothing: the box keys and the associated data bind the session.
    assert {item.dealer for item in check.complaints} == {2, 3, 4, 5, 6}


def _active_session(identities_from: Session, seed: int) -> Session:
    """A fresh active session (new session id) with the same long-term identities."""
    config = ProtocolConfig.create(
        list(identities_from.config.clients),
        threshold=identities_from.config.threshold,
        bits=16,
        vector_length=8,
        mode="active",
        identities=identities_from.config.identities,
    )
    inputs = make_session(config.n, config.threshold, seed=seed).inputs
    return Session(config, inputs, identities_from.identities)


def test_signed_messages_of_session_a_are_refused_in_session_b() -> None:
    session_a = make_session(5, 4, mode="active", seed=1)
    adverts_a = advance_to(session_a, "share_keys")[1]
    assert isinstance(adverts_a, ShareKeysRequest)
    # A client of session B shown session A's (validly signed) advertisements.
    session_b = _active_session(session_a, seed=2)
    request_b = advance_to(session_b, "share_keys")[1]
    assert isinstance(request_b, ShareKeysRequest)
    replayed = dataclasses.replace(request_b, peers=adverts_a.peers)
    with pytest.raises(AuthenticationError):
        session_b.clients[1].receive(decode_message(replayed.to_bytes()))
    # The server of session C given session A's advertisement of client 2, re-labelled.
    session_c = _active_session(session_a, seed=3)
    session_c.server.start()
    peer = adverts_a.peers[0]
    advert = AdvertiseKeys(
        peer.client_id, 0, session_c.config.session_id, *peer[1:4], peer[5], peer[6], peer[4]
    )
    session_c.server.receive_bytes(advert.to_bytes(), peer.client_id)
    assert "bad signature" in " ".join(session_c.server.faults[peer.client_id])
    notes = session_c.server.faults[peer.client_id]
    assert [note.reason for note in notes] == [ExclusionReason.BAD_SIGNATURE]


# --- a server that forges or reorders routed ciphertexts ----------------------------------


@pytest.mark.parametrize("attack", ["swap_labels", "flip_bit", "swap_kinds", "reorder"])
def test_forged_or_reordered_boxes_are_never_opened(attack: str) -> None:
    session = make_session(7, 4, length=6)

    def forge(message: Message) -> Message:
        if not isinstance(message, ShareCheckRequest) or message.recipient != 3:
            return message
        a, b, *rest = message.boxes  # dealers 1 and 2
        if attack == "swap_labels":
            forged = (b._replace(peer=a.peer), a._replace(peer=b.peer))
        elif attack == "flip_bit":
            box = a.mask_key_box
            forged = (a._replace(mask_key_box=box[:-1] + bytes([box[-1] ^ 0x80])), b)
        elif attack == "swap_kinds":  # the self-mask box's first bytes as a mask-key box
            cut = len(a.mask_key_box)
            forged = (a._replace(mask_key_box=a.self_mask_box[:cut]), b)
        else:
            return dataclasses.replace(message, boxes=(*reversed(message.boxes),))
        return dataclasses.replace(message, boxes=(*forged, *rest))

    tap: list[Message] = []
    result = drive(session, forge, tap)
    assert_correct(session, result)
    (check,) = [m for m in tap if isinstance(m, ShareCheck) and m.sender == 3]
    expected = {"swap_labels": {1, 2}, "flip_bit": {1}, "swap_kinds": {1}, "reorder": set()}
    assert {item.dealer for item in check.complaints} == expected[attack]
    # The server opens the boxes it stored: they open, so (outside the semi-honest server
    # model: the server itself forged them) the complainer is the one left out.
    assert result.included == session.config.client_set - ({3} if expected[attack] else set())


def test_a_box_reflected_back_to_its_sender_does_not_open() -> None:
    # One X25519 secret per pair serves both directions: the box keys are directional and
    # name their kind, so u's box for v cannot be replayed to u as if v had dealt it.
    u, v, sid = KeyPair.generate(), KeyPair.generate(), os.urandom(16)
    raw = u.exchange(v.public_bytes)
    forward = derive_box_keys(raw, sid, 1, 2)
    backward = derive_box_keys(raw, sid, 2, 1)
    box = seal_box(forward.self_mask, b"share", SecretKind.SELF_MASK)
    assert open_box(forward.self_mask, box, SecretKind.SELF_MASK) == b"share"
    assert open_box(backward.self_mask, box, SecretKind.SELF_MASK) is None
    assert open_box(forward.self_mask, box, SecretKind.MASK_KEY) is None
    assert open_box(forward.mask_key, box, SecretKind.SELF_MASK) is None
    assert derive_box_keys(raw, os.urandom(16), 1, 2).self_mask != forward.self_mask


# --- malformed masked inputs and ids -----------------------------------------------------


@pytest.mark.parametrize("defect", ["stray_bits", "wrong_bits", "short", "huge_length"])
def test_a_malformed_masked_input_excludes_only_its_sender(defect: str) -> None:
    session = make_session(6, 4, length=3, bits=7)  # 21 bits in 3 bytes: 3 padding bits

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if sender != 2 or name != "masked_input":
            return [data]
        message = decode_message(data)
        assert isinstance(message, MaskedInput)
        if defect == "stray_bits":  # a value >= 2^7 would need these bits
            payload = message.payload[:-1] + bytes([message.payload[-1] | 0x80])
            return [dataclasses.replace(message, payload=payload).to_bytes()]
        if defect == "wrong_bits":
            payload = bytes(packed_size(3, 8))
            return [dataclasses.replace(message, bits=8, payload=payload).to_bytes()]
        if defect == "short":
            return [dataclasses.replace(message, length=2, payload=bytes(3)).to_bytes()]
        fields = msgpack.unpackb(data, raw=False)
        fields[6] = MAX_VECTOR_LENGTH  # claims 2^31 values, carries 3 bytes
        return [msgpack.packb(fields, use_bin_type=True)]

    result = run_session(session, tamper=tamper)
    assert_correct(session, result)
    assert result.included == session.config.client_set - {2}
    assert "bad message" in result.excluded[2]
    assert result.excluded[2].reason is ExclusionReason.BAD_MESSAGE


@pytest.mark.parametrize("sender", [0, 7, MAX_CLIENT_ID])
def test_messages_from_ids_outside_the_session_change_nothing(sender: int) -> None:
    session = make_session(6, 4)
    server = session.server
    stray = ConsistencyCheck(sender, 0, session.config.session_id, bytes(64))
    injected: list[bool] = []

    def inject(message: Message) -> Message:
        if not injected:
            injected.append(True)
            if sender == 0:
                with pytest.raises(DecodeError):  # a "client" message from the server id
                    decode_message(stray.to_bytes())
                assert server.receive_bytes(stray.to_bytes(), 0) == []
            else:
                assert server.receive(decode_message(stray.to_bytes())) == []
        return message

    result = drive(session, inject)
    assert sender in result.faults
    expected = ExclusionReason.UNDECODABLE if sender == 0 else ExclusionReason.UNKNOWN_SENDER
    assert result.faults[sender].reasons == {expected}
    assert result.included == session.config.client_set
    assert_correct(session, result)


def test_huge_integers_in_size_and_id_fields_are_refused() -> None:
    sid = bytes(16)
    for fields in (
        [1, 6, 1, 0, sid, 64, MAX_VECTOR_LENGTH + 1, b""],  # length beyond the cap
        [1, 6, 1, 0, sid, 2**64 - 1, 3, b"\x00"],  # bits
        [1, 6, 2**64 - 1, 0, sid, 8, 1, b"\x00"],  # sender
        [1, 6, 1, 0, sid, 8, -(2**63), b"\x00"],  # negative length
    ):
        with pytest.raises(DecodeError):
            decode_message(msgpack.packb(fields, use_bin_type=True))


# --- secrets: constant-time checks, nothing in reprs or errors ----------------------------


def test_reconstructed_secrets_are_checked_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counted(a: bytes, b: bytes) -> bool:
        calls.append(len(a))
        return real(a, b)

    # server_unmasking calls hmac.compare_digest through the module: patch it there.
    monkeypatch.setattr(hmac, "compare_digest", counted)
    session = make_session(6, 4)
    result = run_session(session, drops={"masked_input": {5}})
    assert_correct(session, result)
    # One check per survivor's b_u (commitment) and one per dropped s_u^SK (public key).
    assert calls == [32] * 6


def test_no_secret_in_any_repr_message_or_error(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[bytes] = []
    real = os.urandom

    def recording(size: int) -> bytes:
        value = real(size)
        if size == 32:  # self-mask seeds, mask keys, Shamir coefficient words
            drawn.append(value)
        return value

    monkeypatch.setattr(os, "urandom", recording)
    session = make_session(5, 3, length=4)
    tap: list[Message] = []
    texts: list[str] = []

    def curious(message: Message) -> Message:
        return message

    result = drive(session, curious, tap)
    texts += [repr(m) for m in tap] + [str(m) for m in tap]
    texts += [repr(result), repr(session.server), repr(session.config)]
    texts += [repr(c) for c in session.clients.values()]
    # Errors of refused requests and faults of tampered answers.
    evil = make_session(5, 3, length=4)
    requests = advance_to(evil, "masked_input")
    for client_id, request in requests.items():
        assert isinstance(request, MaskedInputRequest)
        broken = dataclasses.replace(request, peers=request.peers[:1])
        try:
            evil.clients[client_id].receive(broken)
        except ProtocolViolation as exc:
            texts.append(str(exc))
    secrets = [s for s in drawn] + [
        bytes(KeyPair.from_private_bytes(s).private_bytes()) for s in drawn
    ]
    assert len(drawn) >= 2 * 10  # at least a seed and a mask key per client and session
    for text in texts:
        for secret in secrets:
            for shown in (secret.hex(), repr(secret)[2:-1], secret[:8].hex()):
                assert shown not in text


# --- keys and nonces ----------------------------------------------------------------------


def test_each_purpose_has_its_own_key_and_every_nonce_is_fresh() -> None:
    session = make_session(6, 4, length=4)
    tap: list[Message] = []
    drive(session, lambda m: m, tap)
    adverts = [m for m in tap if isinstance(m, AdvertiseKeys)]
    keys = [k for m in adverts for k in (m.cipher_public_key, m.mask_public_key)]
    assert len(set(keys)) == len(keys)  # share channel and masks never share a key
    # Every box is sealed once under its own key (fixed nonce): no two boxes are equal.
    boxes = [
        box
        for m in tap
        if isinstance(m, ShareKeys)
        for item in m.boxes
        for box in (item.self_mask_box, item.mask_key_box)
    ]
    assert len(boxes) == 2 * 6 * 6 and len(set(boxes)) == len(boxes)
    u, v, sid = KeyPair.generate(), KeyPair.generate(), os.urandom(16)
    derived = {
        purpose: agree(u, v.public_bytes, purpose=purpose, session_id=sid, own_id=1, peer_id=2)
        for purpose in Purpose
    }
    assert len(set(derived.values())) == len(Purpose)
