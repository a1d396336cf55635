"""Wire encoding of the Bonawitz messages: round trips and strict, crash-free decoding."""

from __future__ import annotations

import contextlib
import dataclasses

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import DecodeError, IncompatibleSharesError
from secagg.protocols.bonawitz.bundles import (
    MASK_KEY_BOX_BYTES,
    SELF_MASK_BOX_BYTES,
    SecretKind,
    deal,
    decode_mask_key_box,
    decode_self_mask_box,
    derive_sharing_id,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.messages import (
    WIRE_VERSION,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    BoxKey,
    Complaint,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DealtBoxes,
    DisputeRequest,
    DisputeResponse,
    FallbackRequest,
    FallbackResponse,
    MaskedInput,
    MaskedInputRequest,
    PairSecret,
    PeerKeys,
    PeerSignature,
    RevealedShare,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    consistency_signature_payload,
    decode_message,
)
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import packed_size
from secagg.shamir import LIMB_SHARE_BYTES, PRIME, reconstruct_secret

SID = bytes(range(16))
ids = st.integers(1, 1_048_582)
keys = st.binary(min_size=32, max_size=32)
signatures = st.one_of(st.just(b""), st.binary(min_size=64, max_size=64))
id_tuples = st.lists(ids, unique=True, max_size=8).map(tuple)


def _boxes(draw: st.DrawFn) -> tuple[DealtBoxes, ...]:
    return tuple(
        DealtBoxes(
            p,
            draw(st.binary(min_size=SELF_MASK_BOX_BYTES, max_size=SELF_MASK_BOX_BYTES)),
            draw(st.binary(min_size=MASK_KEY_BOX_BYTES, max_size=MASK_KEY_BOX_BYTES)),
            draw(signatures),
        )
        for p in draw(st.lists(ids, unique=True, max_size=4))
    )


def _proven(draw: st.DrawFn, kind: type) -> tuple[object, ...]:
    return tuple(
        kind(p, draw(keys), draw(signatures.filter(bool)))
        for p in draw(st.lists(ids, unique=True, max_size=3))
    )


@st.composite
def messages(draw: st.DrawFn) -> ProtocolMessage:
    """Any message of the 16 types (fields of their decoded sizes)."""
    client = draw(ids)
    session = draw(st.binary(min_size=16, max_size=64))
    kind = draw(st.integers(1, 16))
    if kind == 1:
        return AdvertiseKeysRequest(0, client, session, draw(keys))
    if kind == 2:
        return AdvertiseKeys(
            client, 0, session, draw(keys), draw(keys), draw(keys),
            draw(signatures.filter(bool)), draw(signatures.filter(bool)), draw(signatures),
        )
    if kind == 3:
        peers = draw(st.lists(ids, unique=True, max_size=5))
        return ShareKeysRequest(
            0,
            client,
            session,
            tuple(
                PeerKeys(p, draw(keys), draw(keys), draw(keys), draw(signatures),
                         draw(signatures), draw(signatures))
                for p in peers
            ),
        )
    if kind == 4:
        return ShareKeys(client, 0, session, _boxes(draw))
    if kind == 5:
        return ShareCheckRequest(0, client, session, draw(keys), _boxes(draw))
    if kind == 6:
        complaints = _proven(draw, Complaint)
        taken = {item.dealer for item in complaints}  # type: ignore[attr-defined]
        unsigned = tuple(p for p in draw(id_tuples) if p not in taken)
        checks = draw(st.binary(max_size=30).map(lambda b: b[: len(b) // 6 * 6]))
        return ShareCheck(client, 0, session, checks, complaints, unsigned)  # type: ignore[arg-type]
    if kind == 7:
        return DisputeRequest(0, client, session, draw(id_tuples))
    if kind == 8:
        owners = draw(st.lists(ids, unique=True, max_size=3))
        return DisputeResponse(
            client, 0, session,
            tuple(BoxKey(o, draw(st.binary(min_size=16, max_size=16))) for o in owners),
        )
    if kind == 9:
        return MaskedInputRequest(0, client, session, draw(id_tuples))
    if kind == 10:
        bits = draw(st.integers(1, 64))
        length = draw(st.integers(1, 40))
        return MaskedInput(
            client,
            0,
            session,
            bits,
            length,
            draw(st.binary(min_size=packed_size(length, bits), max_size=packed_size(length, bits))),
        )
    if kind == 11:
        return ConsistencyCheckRequest(0, client, session, draw(id_tuples))
    if kind == 12:
        return ConsistencyCheck(client, 0, session, draw(st.binary(min_size=64, max_size=64)))
    if kind == 13:
        sigs = tuple(
            PeerSignature(p, draw(st.binary(min_size=64, max_size=64)))
            for p in draw(st.lists(ids, unique=True, max_size=4))
        )
        return UnmaskingRequest(0, client, session, draw(id_tuples), draw(id_tuples), sigs)
    if kind == 15:
        return FallbackRequest(0, client, session, draw(id_tuples))
    if kind == 16:
        return FallbackResponse(client, 0, session, _proven(draw, PairSecret))  # type: ignore[arg-type]
    revealed = st.lists(ids, unique=True, max_size=4).map(
        lambda owners: tuple(
            RevealedShare(o, bytes(LIMB_SHARE_BYTES), bytes(16)) for o in owners
        )
    )
    return UnmaskingResponse(client, 0, session, draw(revealed), draw(revealed))


@given(messages())
def test_round_trip(message: ProtocolMessage) -> None:
    data = message.to_bytes()
    decoded = decode_message(data, sender=message.sender)
    assert decoded == message
    assert type(decoded) is type(message)
    assert decoded.to_bytes() == data


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    # Anything but DecodeError (or a crash) fails the test.
    with contextlib.suppress(DecodeError):
        decode_message(data)


@given(messages(), st.data())
def test_mutated_encodings_never_crash(message: ProtocolMessage, data: st.DataObject) -> None:
    raw = bytearray(message.to_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if how == "flip":
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=8))
    try:
        decoded = decode_message(bytes(raw))
    except DecodeError:
        return
    assert isinstance(decoded, ProtocolMessage)  # a flip may still give a well-formed message


def encode(fields: list[object]) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def test_header_checks_name_the_party() -> None:
    good = AdvertiseKeys(7, 0, SID, bytes(32), b"\x01" * 32, bytes(32), bytes(64), bytes(64))
    with pytest.raises(DecodeError) as caught:
        decode_message(good.to_bytes(), sender=8)  # claims to be 7, transport says 8
    assert caught.value.party == 8
    with pytest.raises(DecodeError) as caught:
        decode_message(
            encode([WIRE_VERSION, 2, 7, 0, SID, bytes(31), bytes(32), bytes(32), bytes(64),
                    bytes(64), b""])
        )
    assert caught.value.party == 7
    with pytest.raises(DecodeError):
        decode_message(encode([WIRE_VERSION + 1, *good_fields(good)]))
    with pytest.raises(DecodeError):  # a client message addressed to a client
        decode_message(
            encode([WIRE_VERSION, 2, 7, 3, SID, bytes(32), bytes(32), bytes(32), bytes(64),
                    bytes(64), b""])
        )
    with pytest.raises(DecodeError):  # version 2 (five rounds, sealed bundles) is gone
        decode_message(encode([2, *good_fields(good)]))
    with pytest.raises(DecodeError):  # exact types: 3.0 is not version 3
        decode_message(encode([float(WIRE_VERSION), *good_fields(good)]))
    with pytest.raises(DecodeError):  # a server message sent by a client
        decode_message(encode([WIRE_VERSION, 1, 7, 3, SID, bytes(32)]))
    with pytest.raises(DecodeError):  # unknown type
        decode_message(encode([WIRE_VERSION, 99, 7, 0, SID]))
    with pytest.raises(DecodeError):  # short session id
        decode_message(encode([WIRE_VERSION, 1, 0, 3, b"short"]))
    with pytest.raises(DecodeError):  # bool is not an id
        decode_message(encode([WIRE_VERSION, 1, 0, True, SID, bytes(32)]))
    with pytest.raises(DecodeError):
        decode_message("not bytes")  # type: ignore[arg-type]


def good_fields(message: AdvertiseKeys) -> list[object]:
    return msgpack.unpackb(message.to_bytes())[1:]


_B, _S = bytes(SELF_MASK_BOX_BYTES), bytes(MASK_KEY_BOX_BYTES)


@pytest.mark.parametrize(
    "fields",
    [
        [10, 7, 0, SID, 16, 3, bytes(5)],  # payload of the wrong size
        [10, 7, 0, SID, 0, 3, b""],  # zero bits
        [10, 7, 0, SID, 16, 0, b""],  # empty vector
        [4, 7, 0, SID, [[1, _B, _S, b""], [1, _B, _S, b""]]],  # duplicate holder
        [4, 7, 0, SID, [[1, _B + b"x", _S, b""]]],  # oversized box
        [4, 7, 0, SID, [[1, _B, _S, bytes(63)]]],  # short box signature
        [5, 0, 7, SID, bytes(31), []],  # short nonce
        [6, 7, 0, SID, bytes(7), [], []],  # check values not a multiple of 6 bytes
        [6, 7, 0, SID, b"", [[2, bytes(32), bytes(64)]], [2]],  # complaint and unsigned
        [6, 7, 0, SID, b"", [[2, bytes(32), bytes(63)]], []],  # short proof
        [8, 7, 0, SID, [[2, bytes(15)]]],  # short box key
        [9, 0, 7, SID, [1, 1]],  # duplicate peer
        [13, 0, 7, SID, [1, 1], [], []],  # duplicate survivor
        [13, 0, 7, SID, [1], [2], [[1, bytes(63)]]],  # short signature
        [14, 7, 0, SID, [[1, bytes(35), bytes(16)], [1, bytes(35), bytes(16)]], []],  # twice
        [14, 7, 0, SID, [[1, bytes(35), bytes(15)]], []],  # short revealed box key
        [14, 7, 0, SID, [[0, bytes(35), bytes(16)]], []],  # id 0 is not a client
        [12, 7, 0, SID, bytes(64), b"extra"],  # extra field
        [16, 7, 0, SID, [[2, bytes(32), bytes(64)], [2, bytes(32), bytes(64)]]],  # twice
        [3, 0, 7, SID, [[1, bytes(32), bytes(32), bytes(32)]]],  # peer entry too short
    ],
)
def test_field_checks(fields: list[object]) -> None:
    with pytest.raises(DecodeError):
        decode_message(encode([WIRE_VERSION, *fields]))


def test_reprs_show_no_secret_material() -> None:
    share = bytes(range(LIMB_SHARE_BYTES))
    key = bytes(range(100, 116))
    response = UnmaskingResponse(3, 0, SID, (RevealedShare(1, share, key),), ())
    dispute = DisputeResponse(3, 0, SID, (BoxKey(1, key),))
    for text in (repr(response), repr(response.self_mask_shares[0]), repr(dispute),
                 repr(dispute.keys[0])):
        assert share.hex() not in text and repr(share) not in text
        assert key.hex() not in text and repr(key) not in text
    masked = MaskedInput(3, 0, SID, 8, 4, b"\xaa\xbb\xcc\xdd")
    assert "aabbccdd" not in repr(masked) and "\\xaa" not in repr(masked)


def test_signature_payloads_bind_session_and_sets() -> None:
    a = consistency_signature_payload(SID, [1, 2, 3])
    assert a == consistency_signature_payload(SID, [3, 2, 1])
    assert a != consistency_signature_payload(SID, [1, 2])
    assert a != consistency_signature_payload(bytes(16), [1, 2, 3])
    b = advertise_signature_payload(SID, 1, bytes(32), bytes(32), b"\x01" * 32, bytes(32))
    assert b != advertise_signature_payload(SID, 2, bytes(32), bytes(32), b"\x01" * 32, bytes(32))
    # The nonce commitment each client was sent is signed: a split view shows.
    assert b != advertise_signature_payload(SID, 1, b"\x02" * 32, bytes(32), b"\x01" * 32,
                                            bytes(32))


def test_box_plaintexts_carry_limbs_only_and_imply_the_rest() -> None:
    dealt = deal(bytes(32), b"\x01" * 32, [1, 2, 3], 2)
    where = {"session_id": SID, "dealer": 1, "holder": 2, "threshold": 2}
    self_mask, blinding = decode_self_mask_box(dealt[2].self_mask, **where)  # type: ignore[arg-type]
    key_share = decode_mask_key_box(dealt[2].mask_key, **where)  # type: ignore[arg-type]
    assert len(dealt[2].self_mask) == LIMB_SHARE_BYTES + 6 and len(blinding) == 2
    assert len(dealt[2].mask_key) == LIMB_SHARE_BYTES
    assert (key_share.x, key_share.threshold) == (2, 2)
    assert key_share.sharing_id == derive_sharing_id(SID, 1, SecretKind.MASK_KEY)
    assert self_mask.sharing_id == derive_sharing_id(SID, 1, SecretKind.SELF_MASK)
    assert repr(dealt[2]) == "DealtShares(<secret>)"
    # Another dealer or session names other sharings: a mixed share is foreign.
    other = decode_mask_key_box(dealt[2].mask_key, **{**where, "dealer": 3})  # type: ignore[arg-type]
    replayed = decode_mask_key_box(dealt[2].mask_key, **{**where, "session_id": bytes(16)})  # type: ignore[arg-type]
    for foreign in (other, replayed, self_mask):
        assert foreign.sharing_id != key_share.sharing_id
        with pytest.raises(IncompatibleSharesError):
            reconstruct_secret([key_share, dataclasses.replace(foreign, x=3)])
    data = dealt[2].mask_key
    bad_limb = bytearray(data)
    bad_limb[0:3] = (PRIME).to_bytes(3, "little")  # first limb = PRIME (21 bits)
    for broken in (data[:-3], data + b"\x00", bytes(bad_limb)):
        with pytest.raises(DecodeError):
            decode_mask_key_box(broken, **where)  # type: ignore[arg-type]
    blind = bytearray(dealt[2].self_mask)
    blind[LIMB_SHARE_BYTES : LIMB_SHARE_BYTES + 3] = (PRIME).to_bytes(3, "little")
    for broken in (dealt[2].self_mask[:-1], bytes(blind)):
        with pytest.raises(DecodeError):
            decode_self_mask_box(broken, **where)  # type: ignore[arg-type]
    assert self_mask_commitment(SID, 1, bytes(32)) != self_mask_commitment(SID, 2, bytes(32))
