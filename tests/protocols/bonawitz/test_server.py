"""Server robustness: one bad client never breaks the round nor corrupts the others' sum."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ExclusionReason, UsageError
from secagg.protocols.bonawitz.bundles import DealtShares
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.dealing import CHECK_BYTES, pack_checks, unpack_checks
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    ConsistencyCheck,
    MaskedInput,
    ShareCheck,
    ShareKeys,
    UnmaskingResponse,
    decode_message,
    key_proof_payload,
)
from secagg.protocols.bonawitz.server import Server
from secagg.protocols.faults import Exclusion, Faults
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import packed_size
from secagg.shamir import LIMB_SHARE_BYTES, PRIME
from secagg.signing import SigningKey
from secagg.testing import run
from secagg.testing.model import CLIENT_FAULT_KINDS
from secagg.testing.strategies import (
    bonawitz_targets,
    client_faults,
    client_inputs,
    dropout_schedules,
)
from tests.helpers.protocol import Session, assert_correct, make_session, run_session
from tests.helpers.tamper import garble_share

# Tampering kinds: what the bad client's message becomes on its way to the server, and
# whether the client must end up excluded from the sum (else: included, with a fault).
EXCLUDING = {"truncate", "junk", "impersonate", "wrong_length", "missing_bundle", "bad_signature"}
CONTAINED = {"replay", "duplicate", "foreign_session", "bad_share", "junk_share"}
CAUGHT_IN_SHARE_CHECK = {"bad_tag"}  # a holder complains: the dealer is left out before masking


def tampered(kind: str, message: ProtocolMessage, data: bytes, other: bytes) -> list[bytes]:
    """The byte strings delivered instead of ``data`` (``other``: another client's bytes)."""
    if kind == "truncate":
        return [data[: len(data) // 2]]
    if kind == "junk":
        return [b"\x93\x01\xff" + data[:5]]
    if kind == "impersonate":
        return [other]
    if kind == "duplicate":
        return [data, data]
    if kind == "foreign_session":
        return [dataclasses.replace(message, session_id=bytes(16)).to_bytes(), data]
    if kind == "wrong_length" and isinstance(message, MaskedInput):
        # A well-formed vector one element too long: zero bytes keep the padding bits clear.
        length = message.length + 1
        payload = message.payload + bytes(packed_size(length, message.bits) - len(message.payload))
        return [dataclasses.replace(message, length=length, payload=payload).to_bytes()]
    if kind == "missing_bundle" and isinstance(message, ShareKeys):
        return [dataclasses.replace(message, boxes=message.boxes[1:]).to_bytes()]
    if kind == "bad_tag" and isinstance(message, ShareKeys):
        # The first box for another holder: the dealer's own comes back to it unchanged.
        at = next(i for i, item in enumerate(message.boxes) if item.peer != message.sender)
        item = message.boxes[at]
        box = item.mask_key_box
        broken = item._replace(mask_key_box=box[:-1] + bytes([box[-1] ^ 1]))
        boxes = (*message.boxes[:at], broken, *message.boxes[at + 1 :])
        return [dataclasses.replace(message, boxes=boxes).to_bytes()]
    if kind == "bad_signature" and isinstance(message, (AdvertiseKeys, ConsistencyCheck)):
        return [dataclasses.replace(message, signature=bytes(64)).to_bytes()]
    if kind in ("bad_share", "junk_share") and isinstance(message, UnmaskingResponse):
        shares = message.key_shares or message.self_mask_shares
        first = shares[0]
        new = garble_share(first.share) if kind == "bad_share" else bytes(len(first.share))
        replaced = (first._replace(share=new), *shares[1:])
        field = "key_shares" if message.key_shares else "self_mask_shares"
        return [dataclasses.replace(message, **{field: replaced}).to_bytes()]
    return [data]


def kinds_for(round_name: str, active: bool) -> list[str]:
    common = ["truncate", "junk", "impersonate", "duplicate", "foreign_session", "replay"]
    extra = {
        "advertise_keys": ["bad_signature"] if active else [],
        "share_keys": ["missing_bundle", "bad_tag"],
        "share_check": [],
        "masked_input": ["wrong_length"],
        "consistency_check": ["bad_signature"],
        "unmasking": ["bad_share", "junk_share"],
    }[round_name]
    return common + extra


@given(st.data())
def test_bad_clients_never_break_the_round(data: st.DataObject) -> None:
    """One or two clients misbehave (every kind of :data:`CLIENT_FAULT_KINDS`, in any
    round), maybe beside random dropouts: the harness checks that the sum is exact over the
    included clients, that the outcome is the oracle's (a refused answer counts as a
    dropout), and that every bad message is blamed on its sender and no honest client."""
    target = data.draw(
        bonawitz_targets(min_clients=6, max_clients=12, bits=st.sampled_from([8, 16, 32])),
        label="target",
    )
    inputs = data.draw(client_inputs(target), label="inputs")
    faults = data.draw(client_faults(target, min_faulty=1), label="faults")
    schedule = data.draw(st.none() | dropout_schedules(target, kinds=("random",)), label="drops")
    run(target, inputs, schedule, client_faults=faults)


def test_the_strategy_draws_every_kind_of_this_file() -> None:
    # The property above covers the kinds of the example table below.
    covered = {"bad_share": "garbled_share"}
    kinds = {covered.get(k, k) for k in EXCLUDING | CONTAINED | CAUGHT_IN_SHARE_CHECK}
    assert kinds <= set(CLIENT_FAULT_KINDS)


EVERY_ATTACK = [
    (round_name, kind, active)
    for active in (False, True)
    for round_name in (
        "advertise_keys",
        "share_keys",
        "share_check",
        "masked_input",
        "consistency_check",
        "unmasking",
    )
    if active or round_name != "consistency_check"
    for kind in kinds_for(round_name, active)
]


@pytest.mark.parametrize(("round_name", "kind", "active"), EVERY_ATTACK)
def test_every_attack_kind_in_every_round(round_name: str, kind: str, active: bool) -> None:
    session = make_session(9, 7 if active else 5, mode="active" if active else "semi-honest")
    check_attack(session, 4, round_name, kind, 6)


def check_attack(
    session: Session, bad: int, round_name: str, kind: str, dropper: int | None
) -> None:
    history: dict[int, bytes] = {}
    last_seen: dict[str, bytes] = {}

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        other = last_seen.get(name, data)
        last_seen[name] = data
        previous = history.get(sender)
        history[sender] = data
        if sender != bad or name != round_name:
            return [data]
        if kind == "replay":
            return [data] + ([previous] if previous else [])
        message = decode_message(data)
        if kind == "impersonate" and other == data:
            return [b"\x00"]  # first sender of the round: no one else to impersonate yet
        return tampered(kind, message, data, other)

    drops = {"masked_input": {dropper}} if dropper else None
    result = run_session(session, drops=drops, tamper=tamper)
    assert_correct(session, result)
    if dropper:
        assert dropper not in result.included
    before_masking = ("advertise_keys", "share_keys", "share_check", "masked_input")
    if kind in EXCLUDING and round_name in before_masking:
        assert bad not in result.included
        assert "bad message" in result.excluded[bad]
        assert result.excluded[bad].reason is ExclusionReason.BAD_MESSAGE
        assert result.excluded[bad].round_name == round_name
    elif kind in CAUGHT_IN_SHARE_CHECK:
        assert bad not in result.included
        # Active mode: the dealer's signature no longer matches the changed box, and the
        # holder only names the dealer (the server might have changed it).
        active = session.config.mode == "active"
        expected = ExclusionReason.BAD_SIGNATURE if active else ExclusionReason.UNREADABLE_BUNDLE
        assert result.excluded[bad].reason is expected
        assert result.excluded[bad].round_name == "share_check"
    elif round_name in before_masking:
        assert bad in result.included or bad == dropper
    if kind in ("bad_share", "junk_share") and round_name == "unmasking":
        assert bad in result.included
        # Every share is checked, not only the t used: a bad one is always caught.
        assert result.faults[bad].reasons == {ExclusionReason.BAD_SHARE}
    if kind == "foreign_session" or (kind == "duplicate" and round_name != "unmasking"):
        # (A duplicate of the very last answer arrives after the end: nothing to record.)
        assert bad in result.faults


def test_replayed_and_out_of_round_messages_are_recorded_not_fatal() -> None:
    session = make_session(6, 4)
    first: dict[int, bytes] = {}

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "advertise_keys":
            first[sender] = data
        if sender == 2 and name == "masked_input":
            return [first[2], data]  # a round-0 message replayed in round 2
        return [data]

    result = run_session(session, tamper=tamper)
    assert result.included == session.config.client_set
    assert "out-of-round" in result.faults[2]
    assert result.faults[2].reasons == {ExclusionReason.OUT_OF_ROUND}
    assert_correct(session, result)


class BadDealer(Client):
    """Deals ``victim``'s self-mask share off the polynomial of the others (in one limb)."""

    victim = 4

    def _deal(
        self, mask_key: bytes, self_seed: bytes, holders: Sequence[int]
    ) -> dict[int, DealtShares]:
        dealt = super()._deal(mask_key, self_seed, holders)
        plaintext, mask_key_box = dealt[self.victim].self_mask, dealt[self.victim].mask_key
        moved = garble_share(plaintext[:LIMB_SHARE_BYTES], shift=5)
        dealt[self.victim] = DealtShares(moved + plaintext[LIMB_SHARE_BYTES:], mask_key_box)
        return dealt


@pytest.mark.parametrize("dealer_drops", [False, True])
def test_a_bad_dealt_share_is_found_before_masking_and_blamed_on_its_dealer(
    dealer_drops: bool,
) -> None:
    session = make_session(7, 4, length=16)
    session.clients[1] = BadDealer(session.config, 1, session.inputs[1])
    # The blinded check of ShareCheck sees holder 4's values off the others', the dispute
    # wave opens holder 4's box: the share in it is the dealer's, so the dealer is out.
    drops = {"masked_input": {1}} if dealer_drops else None
    result = run_session(session, drops=drops)
    assert_correct(session, result)
    assert result.included == session.config.client_set - {1}
    assert set(result.faults) == {1}
    assert result.faults[1].reasons == {ExclusionReason.INCONSISTENT_DEALING}
    assert result.excluded[1].reason is ExclusionReason.INCONSISTENT_DEALING
    assert result.excluded[1].round_name == "share_check"


def test_a_bad_dealt_share_that_share_check_cannot_locate_is_blamed_at_unmasking() -> None:
    # Only t + 1 of the dealer's holders answer ShareCheck: an inconsistency shows but
    # cannot be located. The dealer stays; at Unmasking its shares, read from the boxes it
    # sealed, rebuild its committed seed without holder 4's: the dealer is blamed, holder 4
    # is not, and the sum is exact.
    session = make_session(6, 4, length=16)
    session.clients[1] = BadDealer(session.config, 1, session.inputs[1])
    result = run_session(session, drops={"share_check": {6}})
    assert_correct(session, result)
    assert result.included == session.config.client_set - {6}
    assert set(result.faults) == {1}
    assert result.faults[1].reasons == {ExclusionReason.INCONSISTENT_DEALING}


def test_a_false_check_value_is_blamed_on_its_holder_not_the_dealer() -> None:
    session = make_session(7, 4, length=8)

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        message = decode_message(data)
        if sender != 5 or not isinstance(message, ShareCheck):
            return [data]  # (holder 5's dispute answer, the wave's, passes)
        values = unpack_checks(message.checks, len(message.checks) // CHECK_BYTES)
        values[0, 1] = (values[0, 1] + 1) % PRIME  # dealer 1's values, as holder 5 sends them
        return [dataclasses.replace(message, checks=pack_checks(values)).to_bytes()]

    result = run_session(session, tamper=tamper)
    assert_correct(session, result)
    assert result.included == session.config.client_set - {5}
    assert set(result.faults) == {5}
    assert result.faults[5].reasons == {ExclusionReason.BAD_CHECK}


def test_two_liars_among_the_holders_are_both_found() -> None:
    session = make_session(9, 5, length=8)

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "unmasking" and sender in (1, 3):
            message = decode_message(data)
            assert isinstance(message, UnmaskingResponse)
            shares = tuple(
                s._replace(share=garble_share(s.share, shift=sender))
                for s in message.self_mask_shares
            )
            return [dataclasses.replace(message, self_mask_shares=shares).to_bytes()]
        return [data]

    result = run_session(session, tamper=tamper)
    assert_correct(session, result)
    assert {1, 3} <= set(result.faults)
    assert all(result.faults[liar].reasons == {ExclusionReason.BAD_SHARE} for liar in (1, 3))
    assert result.included == session.config.client_set


def test_server_intake_never_raises_for_peer_garbage() -> None:
    session = make_session(4, 3)
    server = session.server
    with pytest.raises(UsageError):
        server.receive_bytes(b"junk", 1)  # before start(): local misuse
    server.start()
    assert server.receive_bytes(b"", 1) == []
    assert server.receive_bytes(b"\xc1", 99) == []  # unknown sender
    stranger = AdvertiseKeys(
        99, 0, session.config.session_id, bytes(32), b"\x01" * 32, bytes(32), bytes(64), bytes(64)
    )
    assert server.receive(stranger) == []
    assert 99 in server.faults and 1 in server.faults
    assert [note.reason for note in server.faults[99]] == [
        ExclusionReason.UNDECODABLE,
        ExclusionReason.UNKNOWN_SENDER,
    ]
    assert [note.reason for note in server.faults[1]] == [ExclusionReason.UNDECODABLE]
    with pytest.raises(UsageError):
        server.receive("not a message")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        server.start()


def test_invalid_unproven_and_copied_public_keys_exclude_only_their_sender() -> None:
    session = make_session(6, 4)
    seen: dict[str, AdvertiseKeys] = {}

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name != "advertise_keys":
            return [data]
        message = decode_message(data)
        assert isinstance(message, AdvertiseKeys)
        if sender == 1:
            seen["advert"] = message
        if sender == 2:  # the all-zero point: of small order, and not proven
            return [dataclasses.replace(message, cipher_public_key=bytes(32)).to_bytes()]
        if sender == 3:  # copies client 1's mask key with its proof (bound to client 1)
            other = seen["advert"]
            copied = dataclasses.replace(
                message, mask_public_key=other.mask_public_key, mask_key_proof=other.mask_key_proof
            )
            return [copied.to_bytes()]
        return [data]

    result = run_session(session, tamper=tamper)
    assert result.included == session.config.client_set - {2, 3}
    for client in (2, 3):
        assert result.excluded[client].reason is ExclusionReason.BAD_MESSAGE
        assert result.faults[client].reasons == {ExclusionReason.BAD_KEY_PROOF}
    assert set(result.faults) == {2, 3}
    assert_correct(session, result)


@pytest.mark.parametrize("copy_first", [True, False])
def test_a_client_copying_another_clients_keys_is_refused_whoever_comes_first(
    copy_first: bool,
) -> None:
    # Client 5 advertises client 3's keys with client 3's proofs: the proofs name client 3,
    # so the copy is refused on arrival, before or after the original.
    session = make_session(6, 4)
    server, clients = session.server, session.clients
    adverts = {m.recipient: clients[m.recipient].receive(m)[0] for m in server.start()}
    original, mine = adverts[3], adverts[5]
    assert isinstance(original, AdvertiseKeys) and isinstance(mine, AdvertiseKeys)
    adverts[5] = dataclasses.replace(
        mine,
        cipher_public_key=original.cipher_public_key,
        mask_public_key=original.mask_public_key,
        cipher_key_proof=original.cipher_key_proof,
        mask_key_proof=original.mask_key_proof,
    )
    order = sorted(adverts, key=lambda c: (c != (5 if copy_first else 3), c))
    outgoing = [m for c in order for m in server.receive(adverts[c])]
    while not server.done:
        replies = [r for m in outgoing for r in clients[m.recipient].receive(m)]
        outgoing = [m for r in replies for m in server.receive(r)]
        if not outgoing and not server.done:
            outgoing = server.close_round()
    result = server.result
    assert result is not None
    assert result.included == session.config.client_set - {5}
    assert set(result.faults) == {5}
    assert result.faults[5].reasons == {ExclusionReason.BAD_KEY_PROOF}
    assert_correct(session, result)


def test_keys_a_client_advertises_but_does_not_use_exclude_only_it() -> None:
    # Fresh key pairs, proven, that the client does not use: nobody can open its boxes,
    # and it cannot open anyone's. Holders complain with proofs; so does it, with proofs
    # that fail. It is left out in ShareCheck, blamed, and no honest client is.
    session = make_session(6, 4)

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if sender != 2 or name != "advertise_keys":
            return [data]
        message = decode_message(data)
        assert isinstance(message, AdvertiseKeys)
        sid = session.config.session_id
        cipher, mask = SigningKey.generate(), SigningKey.generate()
        fake = dataclasses.replace(
            message,
            cipher_public_key=cipher.verify_key,
            mask_public_key=mask.verify_key,
            cipher_key_proof=cipher.sign(key_proof_payload(sid, 2, "cipher", cipher.verify_key)),
            mask_key_proof=mask.sign(key_proof_payload(sid, 2, "mask", mask.verify_key)),
        )
        return [fake.to_bytes()]

    result = run_session(session, tamper=tamper)
    assert_correct(session, result)
    assert result.included == session.config.client_set - {2}
    assert set(result.faults) == {2}
    assert result.faults[2].reasons == {
        ExclusionReason.UNREADABLE_BUNDLE,
        ExclusionReason.FALSE_COMPLAINT,
    }


def test_messages_after_the_end_change_nothing() -> None:
    session = make_session(3, 2)
    result = run_session(session)
    late = MaskedInput(1, 0, session.config.session_id, 16, 8, bytes(16))
    assert session.server.receive(late) == []
    assert session.server.result is result
    with pytest.raises(UsageError):
        session.server.close_round()


def test_server_repr_and_result_repr_hide_vectors() -> None:
    session = make_session(3, 2, length=4)
    result = run_session(session)
    assert "length=4" in repr(result)
    assert "Server(n=3" in repr(session.server)


def test_server_rejects_a_foreign_config() -> None:
    with pytest.raises(Exception, match="ProtocolConfig"):
        Server("config")  # type: ignore[arg-type]


def test_a_key_share_off_by_a_small_amount_is_blamed_on_its_holder() -> None:
    # Holder 1's bad share enters some reconstructions with a Lagrange coefficient of 2:
    # the key is then off in bits X25519 ignores. Shared keys are clamped, so the check
    # is exact and the search blames holder 1, not an honest holder.
    session = make_session(6, 4)

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "unmasking" and sender == 1:
            message = decode_message(data)
            assert isinstance(message, UnmaskingResponse)
            first = message.key_shares[0]
            replaced = (first._replace(share=garble_share(first.share)), *message.key_shares[1:])
            return [dataclasses.replace(message, key_shares=replaced).to_bytes()]
        return [data]

    result = run_session(session, drops={"masked_input": {2}}, tamper=tamper)
    assert_correct(session, result)
    assert set(result.faults) == {1}
    assert result.faults[1].reasons == {ExclusionReason.BAD_SHARE}
    assert result.excluded[2].reason is ExclusionReason.DROPPED


def test_excluded_and_faults_are_typed_and_read_as_before() -> None:
    """AggregationResult.excluded values are Exclusions, faults values Faults: str texts
    as before, with the reason and round a caller can branch on."""
    session = make_session(6, 4)
    first: dict[int, bytes] = {}

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "advertise_keys":
            first[sender] = data
        if sender == 5 and name == "unmasking":
            return [first[5], data]  # late: a fault, not an exclusion
        return [data]

    result = run_session(session, drops={"share_keys": {3}, "masked_input": {4}}, tamper=tamper)
    assert_correct(session, result)
    assert set(result.excluded) == {3, 4}
    for client, round_name in ((3, "share_keys"), (4, "masked_input")):
        exclusion = result.excluded[client]
        assert isinstance(exclusion, Exclusion) and isinstance(exclusion, str)
        assert exclusion.reason is ExclusionReason.DROPPED and exclusion.round_name == round_name
        assert exclusion == f"dropped in {round_name}"
    faults = result.faults[5]
    assert isinstance(faults, Faults) and faults.reasons == {ExclusionReason.OUT_OF_ROUND}
    assert faults == "unmasking: out-of-round AdvertiseKeys (late or replayed)"
    assert [note.round_name for note in faults.notes] == ["unmasking"]
