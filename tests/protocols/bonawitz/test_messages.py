"""Wire encoding of the Bonawitz messages: round trips and strict, crash-free decoding."""

from __future__ import annotations

import contextlib
import dataclasses

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError, IncompatibleSharesError
from secagg.protocols.bonawitz.bundles import (
    BUNDLE_VERSION,
    MAX_BUNDLE_BYTES,
    SecretKind,
    ShareBundle,
    decode_share_bundle,
    derive_sharing_id,
    encode_share_bundle,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    MaskedInput,
    MaskedInputRequest,
    PeerKeys,
    PeerSignature,
    RevealedShare,
    SealedShares,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    consistency_signature_payload,
    decode_message,
)
from secagg.protocols.wire import WIRE_VERSION, ProtocolMessage
from secagg.ring import packed_size
from secagg.shamir import LIMB_SHARE_BYTES, PRIME, reconstruct_secret, share_secrets

SID = bytes(range(16))
ids = st.integers(1, 1_048_582)
keys = st.binary(min_size=32, max_size=32)
signatures = st.one_of(st.just(b""), st.binary(min_size=64, max_size=64))
id_tuples = st.lists(ids, unique=True, max_size=8).map(tuple)


@st.composite
def messages(draw: st.DrawFn) -> ProtocolMessage:
    client = draw(ids)
    session = draw(st.binary(min_size=16, max_size=64))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return AdvertiseKeysRequest(0, client, session)
    if kind == 1:
        return AdvertiseKeys(
            client, 0, session, draw(keys), draw(keys), draw(keys), draw(signatures)
        )
    if kind == 2:
        peers = draw(st.lists(ids, unique=True, max_size=5))
        return ShareKeysRequest(
            0,
            client,
            session,
            tuple(PeerKeys(p, draw(keys), draw(keys), draw(keys), draw(signatures)) for p in peers),
        )
    if kind in (3, 4):
        sealed = tuple(
            SealedShares(p, draw(st.binary(max_size=200)))
            for p in draw(st.lists(ids, unique=True, max_size=5))
        )
        if kind == 3:
            return ShareKeys(client, 0, session, sealed)
        return MaskedInputRequest(0, client, session, sealed)
    if kind == 5:
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
    if kind == 6:
        return ConsistencyCheckRequest(0, client, session, draw(id_tuples))
    if kind == 7:
        return ConsistencyCheck(client, 0, session, draw(st.binary(min_size=64, max_size=64)))
    if kind == 8:
        sigs = tuple(
            PeerSignature(p, draw(st.binary(min_size=64, max_size=64)))
            for p in draw(st.lists(ids, unique=True, max_size=4))
        )
        return UnmaskingRequest(0, client, session, draw(id_tuples), draw(id_tuples), sigs)
    revealed = st.lists(ids, unique=True, max_size=4).map(
        lambda owners: tuple(RevealedShare(o, bytes(LIMB_SHARE_BYTES)) for o in owners)
    )
    return UnmaskingResponse(client, 0, session, draw(revealed), draw(revealed), draw(id_tuples))


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
    good = AdvertiseKeys(7, 0, SID, bytes(32), b"\x01" * 32, bytes(32))
    with pytest.raises(DecodeError) as caught:
        decode_message(good.to_bytes(), sender=8)  # claims to be 7, transport says 8
    assert caught.value.party == 8
    with pytest.raises(DecodeError) as caught:
        decode_message(encode([WIRE_VERSION, 2, 7, 0, SID, bytes(31), bytes(32), bytes(32), b""]))
    assert caught.value.party == 7
    with pytest.raises(DecodeError):
        decode_message(encode([WIRE_VERSION + 1, *good_fields(good)]))
    with pytest.raises(DecodeError):  # a client message addressed to a client
        decode_message(encode([WIRE_VERSION, 2, 7, 3, SID, bytes(32), bytes(32), bytes(32), b""]))
    with pytest.raises(DecodeError):  # a server message sent by a client
        decode_message(encode([WIRE_VERSION, 1, 7, 3, SID]))
    with pytest.raises(DecodeError):  # unknown type
        decode_message(encode([WIRE_VERSION, 99, 7, 0, SID]))
    with pytest.raises(DecodeError):  # short session id
        decode_message(encode([WIRE_VERSION, 1, 0, 3, b"short"]))
    with pytest.raises(DecodeError):  # bool is not an id
        decode_message(encode([WIRE_VERSION, 1, 0, True, SID]))
    with pytest.raises(DecodeError):
        decode_message("not bytes")  # type: ignore[arg-type]


def good_fields(message: AdvertiseKeys) -> list[object]:
    return msgpack.unpackb(message.to_bytes())[1:]


@pytest.mark.parametrize(
    "fields",
    [
        [6, 7, 0, SID, 16, 3, bytes(5)],  # payload of the wrong size
        [6, 7, 0, SID, 0, 3, b""],  # zero bits
        [6, 7, 0, SID, 16, 0, b""],  # empty vector
        [4, 7, 0, SID, [[1, b"x"], [1, b"y"]]],  # duplicate recipient
        [4, 7, 0, SID, [[1, b"x" * 5000]]],  # oversized ciphertext
        [9, 0, 7, SID, [1, 1], [], []],  # duplicate survivor
        [9, 0, 7, SID, [1], [2], [[1, bytes(63)]]],  # short signature
        [10, 7, 0, SID, [[1, b"s"]], [], [0]],  # id 0 is not a client
        [8, 7, 0, SID, bytes(64), b"extra"],  # extra field
        [3, 0, 7, SID, [[1, bytes(32), bytes(32), bytes(32)]]],  # peer entry too short
    ],
)
def test_field_checks(fields: list[object]) -> None:
    with pytest.raises(DecodeError):
        decode_message(encode([WIRE_VERSION, *fields]))


def test_reprs_show_no_secret_material() -> None:
    share = bytes(range(LIMB_SHARE_BYTES))
    response = UnmaskingResponse(3, 0, SID, (RevealedShare(1, share),), (), ())
    for text in (repr(response), repr(response.self_mask_shares[0])):
        assert share.hex() not in text and repr(share) not in text
    masked = MaskedInput(3, 0, SID, 8, 4, b"\xaa\xbb\xcc\xdd")
    assert "aabbccdd" not in repr(masked) and "\\xaa" not in repr(masked)


def test_signature_payloads_bind_session_and_sets() -> None:
    a = consistency_signature_payload(SID, [1, 2, 3])
    assert a == consistency_signature_payload(SID, [3, 2, 1])
    assert a != consistency_signature_payload(SID, [1, 2])
    assert a != consistency_signature_payload(bytes(16), [1, 2, 3])
    b = advertise_signature_payload(SID, 1, bytes(32), b"\x01" * 32, bytes(32))
    assert b != advertise_signature_payload(SID, 2, bytes(32), b"\x01" * 32, bytes(32))


def test_share_bundle_carries_limbs_only_and_implies_the_rest() -> None:
    shares = share_secrets([bytes(32), b"\x01" * 32], [1, 2, 3], 2)
    bundle = ShareBundle(1, 2, shares[2][0], shares[2][1])
    data = encode_share_bundle(bundle)
    assert len(data) == MAX_BUNDLE_BYTES == 71
    assert data[0] == BUNDLE_VERSION
    assert repr(bundle) == "ShareBundle(dealer=1, holder=2)"
    decoded = decode_share_bundle(data, session_id=SID, dealer=1, holder=2, threshold=2)
    for got, sent, kind in (
        (decoded.key_share, bundle.key_share, SecretKind.MASK_KEY),
        (decoded.self_mask_share, bundle.self_mask_share, SecretKind.SELF_MASK),
    ):
        assert (got.x, got.threshold) == (2, 2)
        assert (got.values == sent.values).all()
        assert got.sharing_id == derive_sharing_id(SID, 1, kind)
    # Another dealer or session names other sharings: a mixed share is foreign.
    other = decode_share_bundle(data, session_id=SID, dealer=3, holder=2, threshold=2)
    replayed = decode_share_bundle(data, session_id=bytes(16), dealer=1, holder=2, threshold=2)
    for foreign in (other.key_share, replayed.key_share, decoded.self_mask_share):
        assert foreign.sharing_id != decoded.key_share.sharing_id
        with pytest.raises(IncompatibleSharesError):
            reconstruct_secret([decoded.key_share, dataclasses.replace(foreign, x=3)])
    bad_limb = bytearray(data)
    bad_limb[1:4] = (PRIME).to_bytes(3, "little")  # first limb = PRIME (21 bits)
    padding = bytearray(data)
    padding[LIMB_SHARE_BYTES] |= 0x80  # a stray padding bit after the key share's limbs
    version = bytes((BUNDLE_VERSION + 1,)) + data[1:]
    for broken in (data[:-3], data + b"\x00", version, bytes(bad_limb), bytes(padding)):
        with pytest.raises(DecodeError):
            decode_share_bundle(broken, session_id=SID, dealer=1, holder=2, threshold=2)
    for wrong in (
        ShareBundle(1, 2, shares[2][0], shares[2][0]),  # two shares of one sharing
        ShareBundle(1, 3, shares[2][0], shares[2][1]),  # shares of another holder
    ):
        with pytest.raises(ConfigurationError):
            encode_share_bundle(wrong)
    assert self_mask_commitment(SID, 1, bytes(32)) != self_mask_commitment(SID, 2, bytes(32))
