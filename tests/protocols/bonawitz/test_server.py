"""Server robustness: one bad client never breaks the round nor corrupts the others' sum."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ExclusionReason, UsageError
from secagg.protocols.bonawitz import client as client_module
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    ConsistencyCheck,
    MaskedInput,
    RevealedShare,
    SealedShares,
    ShareKeys,
    UnmaskingResponse,
    decode_message,
)
from secagg.protocols.bonawitz.server import Server
from secagg.protocols.faults import Exclusion, Faults
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import packed_size
from secagg.shamir import Share, pack_limb_shares, unpack_limb_shares
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
CONTAINED = {"replay", "duplicate", "foreign_session", "bad_tag", "bad_share", "junk_share"}


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
        return [dataclasses.replace(message, sealed_shares=message.sealed_shares[1:]).to_bytes()]
    if kind == "bad_tag" and isinstance(message, ShareKeys):
        first = message.sealed_shares[0]
        flipped = bytes([first.ciphertext[-1] ^ 1])
        broken = SealedShares(first.peer, first.ciphertext[:-1] + flipped)
        sealed = (broken, *message.sealed_shares[1:])
        return [dataclasses.replace(message, sealed_shares=sealed).to_bytes()]
    if kind == "bad_signature" and isinstance(message, (AdvertiseKeys, ConsistencyCheck)):
        return [dataclasses.replace(message, signature=bytes(64)).to_bytes()]
    if kind in ("bad_share", "junk_share") and isinstance(message, UnmaskingResponse):
        shares = message.key_shares or message.self_mask_shares
        first = shares[0]
        new = garble_share(first.share) if kind == "bad_share" else bytes(len(first.share))
        replaced = (RevealedShare(first.owner, new), *shares[1:])
        field = "key_shares" if message.key_shares else "self_mask_shares"
        return [dataclasses.replace(message, **{field: replaced}).to_bytes()]
    return [data]


def kinds_for(round_name: str, active: bool) -> list[str]:
    common = ["truncate", "junk", "impersonate", "duplicate", "foreign_session", "replay"]
    extra = {
        "advertise_keys": ["bad_signature"] if active else [],
        "share_keys": ["missing_bundle", "bad_tag"],
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
    kinds = {covered.get(k, k) for k in EXCLUDING | CONTAINED}
    assert kinds <= set(CLIENT_FAULT_KINDS)


EVERY_ATTACK = [
    (round_name, kind, active)
    for active in (False, True)
    for round_name in (
        "advertise_keys",
        "share_keys",
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
    if kind in EXCLUDING and round_name in ("advertise_keys", "share_keys", "masked_input"):
        assert bad not in result.included
        assert "bad message" in result.excluded[bad]
        assert result.excluded[bad].reason is ExclusionReason.BAD_MESSAGE
        assert result.excluded[bad].round_name == round_name
    elif round_name in ("advertise_keys", "share_keys", "masked_input"):
        assert bad in result.included or bad == dropper
    if kind in ("bad_share", "junk_share") and round_name == "unmasking":
        assert bad in result.included
        # A bad share is caught when it is used: the fast path takes the first t holders.
        if bad in sorted(result.included)[: session.config.threshold]:
            assert bad in result.faults
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


def dealing_one_bad_share(monkeypatch: pytest.MonkeyPatch, victim_holder: int) -> None:
    """Make the first client that deals give ``victim_holder`` off-polynomial shares."""
    real = client_module.share_secrets
    done: list[bool] = []

    def corrupt(secrets: list[bytes], holders: list[int], threshold: int) -> dict[int, list[Share]]:
        shares = real(secrets, holders, threshold)
        if not done and victim_holder in shares and holders[0] != victim_holder:
            done.append(True)
            shares[victim_holder] = [
                dataclasses.replace(
                    s, values=unpack_limb_shares(garble_share(pack_limb_shares(s.values), shift=5))
                )
                for s in shares[victim_holder]
            ]
        return shares

    monkeypatch.setattr(client_module, "share_secrets", corrupt)


@pytest.mark.parametrize("dealer_drops", [False, True])
def test_a_bad_dealt_share_is_found_and_attributed(
    monkeypatch: pytest.MonkeyPatch, dealer_drops: bool
) -> None:
    dealing_one_bad_share(monkeypatch, victim_holder=4)
    session = make_session(7, 4, length=16)
    # Client 1 deals first (the driver serves clients in id order): holder 4's shares of
    # client 1's secrets are off the polynomial.
    drops = {"masked_input": {1}} if dealer_drops else None
    result = run_session(session, drops=drops)
    assert_correct(session, result)
    assert (1 in result.included) is not dealer_drops
    assert 4 in result.included
    assert "off the polynomial" in result.faults[4]
    assert result.faults[4].reasons == {ExclusionReason.BAD_SHARE}
    if dealer_drops:
        assert result.excluded[1].reason is ExclusionReason.DROPPED
        assert result.excluded[1] == "dropped in masked_input"


def test_two_liars_among_the_holders_are_both_found() -> None:
    session = make_session(9, 5, length=8)

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "unmasking" and sender in (1, 3):
            message = decode_message(data)
            assert isinstance(message, UnmaskingResponse)
            shares = tuple(
                RevealedShare(s.owner, garble_share(s.share, shift=sender))
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
    stranger = AdvertiseKeys(99, 0, session.config.session_id, bytes(32), b"\x01" * 32, bytes(32))
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


def test_invalid_and_repeated_public_keys_exclude_the_client() -> None:
    session = make_session(6, 4)
    seen: dict[str, bytes] = {}

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name != "advertise_keys":
            return [data]
        message = decode_message(data)
        assert isinstance(message, AdvertiseKeys)
        if sender == 1:
            seen["key"] = message.mask_public_key
        if sender == 2:  # the all-zero point is of small order: no valid agreement
            return [dataclasses.replace(message, cipher_public_key=bytes(32)).to_bytes()]
        if sender == 3:  # copies client 1's key
            return [dataclasses.replace(message, mask_public_key=seen["key"]).to_bytes()]
        return [data]

    result = run_session(session, tamper=tamper)
    assert 2 not in result.included and 3 not in result.included
    for client in (2, 3):
        assert result.excluded[client].reason is ExclusionReason.BAD_MESSAGE
        assert result.faults[client].reasons == {ExclusionReason.INVALID_CONTENT}
    assert_correct(session, result)


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
            owner, share = message.key_shares[0]
            replaced = (RevealedShare(owner, garble_share(share)), *message.key_shares[1:])
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
