"""Review: the server's reconstruction checks every share, blames exactly the liars (and
the dealers of bad shares), and survives lying holders at any n, at bounded cost.

Findings (wire version 2): a secret whose first t shares did not verify went through an
enumeration of t-subsets, beyond its budget from h ~ 90 holders on; and a share off its
polynomial could be the holder's lie or its dealer's bad dealing, which the server could not
tell apart, so it blamed the holder. Now every share comes with the key of the box it came
in: the server checks every share against its polynomial, reads the box of each share in
doubt (the dealer's own words), blames the holders whose share or key differs and the
dealers whose boxes are inconsistent, and once a liar is known reads its boxes first in
every other secret.
"""

from __future__ import annotations

import dataclasses
import os
import secrets

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, ExclusionReason, ProtocolAbort
from secagg.keys import KeyPair
from secagg.protocols.bonawitz import server_unmasking
from secagg.protocols.bonawitz.bundles import (
    SecretKind,
    clamp_scalar,
    deal,
    seal_box,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    DealtBoxes,
    UnmaskingResponse,
    decode_message,
)
from secagg.protocols.bonawitz.server_check import BoxStore
from secagg.protocols.bonawitz.server_unmasking import RevealedShares, reconstruct_all
from secagg.shamir import LIMB_SHARE_BYTES, LIMBS, PRIME, share_secrets
from secagg.shamir.decoding import evaluate_at, locate_errors, rs_decode
from tests.helpers.protocol import assert_correct, make_session, run_session
from tests.helpers.tamper import garble_share


def lying_holders(liars: set[int]) -> object:
    """A tamper hook: every liar garbles every self-mask share it reveals."""

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name != "unmasking" or sender not in liars:
            return [data]
        message = decode_message(data)
        assert isinstance(message, UnmaskingResponse)
        shares = tuple(
            s._replace(share=garble_share(s.share, shift=1 + s.owner % 7))
            for s in message.self_mask_shares
        )
        return [dataclasses.replace(message, self_mask_shares=shares).to_bytes()]

    return tamper


def test_one_liar_with_the_lowest_id_does_not_abort_a_large_round() -> None:
    session = make_session(100, 51, length=4)
    result = run_session(session, tamper=lying_holders({1}))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert "other than its box's" in result.faults[1]
    assert result.faults[1].reasons == {ExclusionReason.BAD_SHARE}
    assert set(result.faults) == {1}


def test_a_liar_costs_one_box_per_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[int] = []
    real = server_unmasking.open_box

    def counted(key, box, kind):  # type: ignore[no-untyped-def]
        opened.append(1)
        return real(key, box, kind)

    monkeypatch.setattr(server_unmasking, "open_box", counted)
    n = 40
    session = make_session(n, 21, length=4)
    result = run_session(session, tamper=lying_holders({3}))  # type: ignore[arg-type]
    assert_correct(session, result)
    # The first secret that fails has all its n boxes read; holder 3 is then a suspect
    # whose box is read first in each of the other n - 1 secrets.
    assert len(opened) == n + (n - 1)
    assert set(result.faults) == {3}


def test_several_liars_are_all_found() -> None:
    session = make_session(30, 16, length=4)
    liars = {1, 2, 5, 9, 11}
    result = run_session(session, tamper=lying_holders(liars))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert set(result.faults) == liars


class Direct:
    """Dealings of ``h`` clients, their boxes in a BoxStore, the shares each holder reveals
    (with its key): what reconstruct_all reads, without running the rounds before."""

    def __init__(self, h: int, t: int, owners: list[int], *, kind: SecretKind) -> None:
        self.config = ProtocolConfig.create(
            list(range(1, h + 1)), threshold=t, bits=8, vector_length=1
        )
        self.kind, self.owners = kind, owners
        self.seeds = {c: secrets.token_bytes(32) for c in self.config.clients}
        self.mask_keys = {c: clamp_scalar(os.urandom(32)) for c in self.config.clients}
        self.mask_publics = {
            c: KeyPair.from_private_bytes(k).public_bytes for c, k in self.mask_keys.items()
        }
        sid = self.config.session_id
        self.adverts = {
            c: AdvertiseKeys(
                c, 0, sid, bytes(32), bytes(32),
                self_mask_commitment(sid, c, self.seeds[c]), bytes(64), bytes(64),
            )
            for c in self.config.clients
        }
        self.store = BoxStore()
        self.revealed = RevealedShares()
        self.plaintexts: dict[tuple[int, int], bytes] = {}
        for owner in owners:
            self.deal(owner, self.mask_keys[owner], self.seeds[owner])

    def deal(self, owner: int, mask_key: bytes, seed: bytes) -> None:
        holders = list(self.config.clients)
        dealt = deal(mask_key, seed, holders, self.config.threshold)
        boxes, records = [], {}
        for holder in holders:
            b_key, s_key = os.urandom(16), os.urandom(16)
            b_box = seal_box(b_key, dealt[holder].self_mask, SecretKind.SELF_MASK)
            s_box = seal_box(s_key, dealt[holder].mask_key, SecretKind.MASK_KEY)
            boxes.append(DealtBoxes(holder, b_box, s_box))
            if self.kind is SecretKind.SELF_MASK:
                records[holder] = (dealt[holder].self_mask[:LIMB_SHARE_BYTES], b_key)
            else:
                records[holder] = (dealt[holder].mask_key, s_key)
        self.store.discard(owner)
        self.store.add(owner, boxes)
        self.revealed.records[self.kind][owner] = records

    def lie(self, owner: int, holder: int, *, shift: int = 1, key: bool = False) -> None:
        share, box_key = self.revealed.records[self.kind][owner][holder]
        share = garble_share(share, shift=shift)
        if key:
            box_key = bytes(16)
        self.revealed.records[self.kind][owner][holder] = (share, box_key)

    def run(self) -> server_unmasking.Reconstruction:
        owners = frozenset(self.owners)
        survivors = owners if self.kind is SecretKind.SELF_MASK else frozenset()
        dropped = owners if self.kind is SecretKind.MASK_KEY else frozenset()
        return reconstruct_all(
            self.config, self.adverts, self.mask_publics, self.revealed, self.store,
            survivors, dropped,
        )


@pytest.mark.parametrize("h", [12, 60])
def test_every_liar_is_found_as_long_as_t_holders_tell_the_truth(h: int) -> None:
    t = h // 2 + 1
    case = Direct(h, t, [1, 2, h], kind=SecretKind.SELF_MASK)
    liars = set(range(1, h - t + 1))  # h - t liars, the lowest ids: always in the first t
    for owner in case.owners:
        for liar in liars:
            case.lie(owner, liar, shift=1 + liar % 5, key=liar % 3 == 0)
    rebuilt = case.run()
    assert rebuilt.self_seeds == {owner: case.seeds[owner] for owner in case.owners}
    assert set(rebuilt.faults) == liars
    assert all(
        {note.reason for note in rebuilt.faults[liar]} == {ExclusionReason.BAD_SHARE}
        for liar in liars
    )


def test_a_share_that_is_not_used_is_checked_too() -> None:
    # Holder 9 is not among the first t: its bad share is caught all the same (issue 15.2).
    case = Direct(9, 5, [4], kind=SecretKind.MASK_KEY)
    case.lie(4, 9)
    rebuilt = case.run()
    assert rebuilt.mask_keys == {4: case.mask_keys[4]} and not rebuilt.fallback
    assert set(rebuilt.faults) == {9}


def test_fewer_than_t_usable_self_mask_shares_abort() -> None:
    case = Direct(9, 5, [4], kind=SecretKind.SELF_MASK)
    for liar in (1, 2, 3, 6, 7):  # bad shares, keys that open nothing: 4 usable remain
        case.lie(4, liar, key=True)
    with pytest.raises(ProtocolAbort):
        case.run()


def test_liars_whose_errors_cancel_at_zero_frame_no_honest_holder() -> None:
    # Holders 1 and 2 add the same offset: some t-subset holding both rebuilds the right
    # secret (their errors cancel at x = 0). The checks of every share and the boxes still
    # name exactly the two liars.
    case = Direct(12, 7, [5], kind=SecretKind.SELF_MASK)
    for liar in (1, 2):
        case.lie(5, liar)
    rebuilt = case.run()
    assert rebuilt.self_seeds == {5: case.seeds[5]}
    assert set(rebuilt.faults) == {1, 2}


def test_a_dealers_inconsistent_shares_are_blamed_on_the_dealer_never_a_holder() -> None:
    # Dealer 3's box for holder 6 holds a share off its polynomial: holder 6 reveals it
    # faithfully. The server reads the box: the share is the dealer's.
    case = Direct(9, 5, [3], kind=SecretKind.SELF_MASK)
    share, key = case.revealed.records[SecretKind.SELF_MASK][3][6]
    moved = garble_share(share)
    # Re-seal holder 6's box around the moved share (the blinding values unchanged).
    box = case.store.box(3, 6, SecretKind.SELF_MASK)
    opened = server_unmasking.open_box(key, box, SecretKind.SELF_MASK)
    assert opened is not None
    new_key = os.urandom(16)
    items = [case.store.dealt(3, h)._replace(peer=h) for h in case.config.clients]
    items[5] = items[5]._replace(
        self_mask_box=seal_box(new_key, moved + opened[LIMB_SHARE_BYTES:], SecretKind.SELF_MASK)
    )
    case.store.add(3, items)
    case.revealed.records[SecretKind.SELF_MASK][3][6] = (moved, new_key)
    rebuilt = case.run()
    assert rebuilt.self_seeds == {3: case.seeds[3]}  # the eight others rebuild it
    assert set(rebuilt.faults) == {3}
    assert {note.reason for note in rebuilt.faults[3]} == {ExclusionReason.INCONSISTENT_DEALING}


def test_a_wrong_commitment_is_blamed_and_the_dealt_seed_used() -> None:
    case = Direct(7, 4, [2], kind=SecretKind.SELF_MASK)
    sid = case.config.session_id
    case.adverts[2] = dataclasses.replace(
        case.adverts[2], self_mask_commitment=self_mask_commitment(sid, 2, os.urandom(32))
    )
    rebuilt = case.run()
    assert rebuilt.self_seeds == {2: case.seeds[2]}  # what its holders hold
    assert {note.reason for note in rebuilt.faults[2]} == {ExclusionReason.WRONG_COMMITMENT}
    assert set(rebuilt.faults) == {2}


def test_a_wrong_dealt_mask_key_goes_to_the_fallback_wave() -> None:
    case = Direct(7, 4, [2], kind=SecretKind.MASK_KEY)
    case.deal(2, clamp_scalar(os.urandom(32)), case.seeds[2])  # not the advertised key
    rebuilt = case.run()
    assert rebuilt.fallback == {2} and not rebuilt.mask_keys
    assert {note.reason for note in rebuilt.faults[2]} == {ExclusionReason.WRONG_DEALT_KEY}
    assert set(rebuilt.faults) == {2}


# --- the decoder ------------------------------------------------------------------------


@st.composite
def codewords(draw: st.DrawFn) -> tuple[list[int], np.ndarray, int, set[int], np.ndarray]:
    g = draw(st.integers(2, 40))
    t = draw(st.integers(1, g))
    points = draw(st.lists(st.integers(1, PRIME - 1), min_size=g, max_size=g, unique=True))
    shares = share_secrets([secrets.token_bytes(32)], points, t)
    limbs = np.array([shares[x][0].values for x in points], dtype=np.int64)
    errors = draw(st.sets(st.integers(0, g - 1), max_size=(g - t) // 2))
    corrupted = limbs.copy()
    for row in errors:
        limb = draw(st.integers(0, LIMBS - 1))
        corrupted[row, limb] = (corrupted[row, limb] + draw(st.integers(1, PRIME - 1))) % PRIME
    return points, corrupted, t, errors, limbs


@given(codewords())
def test_locate_errors_finds_exactly_the_wrong_rows(
    case: tuple[list[int], np.ndarray, int, set[int], np.ndarray],
) -> None:
    points, corrupted, t, errors, limbs = case
    off = locate_errors(points, corrupted, t)
    assert off is not None
    assert set(np.flatnonzero(off).tolist()) == errors
    good = [i for i in range(len(points)) if i not in errors]
    base, rest = good[:t], [i for i in range(len(points)) if i not in good[:t]]
    evaluated = evaluate_at([points[i] for i in base], limbs[base], [points[i] for i in rest])
    np.testing.assert_array_equal(evaluated, limbs[rest])


def test_rs_decode_known_answer_and_refusals() -> None:
    # f(X) = 3 + 2X over GF(p) at 1..6, two values wrong: decoded back to [3, 2].
    points = [1, 2, 3, 4, 5, 6]
    values = [(3 + 2 * x) % PRIME for x in points]
    values[1] = 0
    values[4] = 77
    decoded = rs_decode(points, np.array(values), 2)
    assert decoded is not None and decoded.tolist() == [3, 2]
    for bad_points in ([1, 1, 2], [0, 1, 2], [1, 2, PRIME]):
        with pytest.raises(ConfigurationError):
            rs_decode(bad_points, np.array([1, 2, 3]), 2)
    with pytest.raises(ConfigurationError):
        rs_decode([1, 2, 3], np.array([1, 2]), 2)
    with pytest.raises(ConfigurationError):
        rs_decode([1, 2, 3], np.array([1, 2, 3]), 4)
    with pytest.raises(ConfigurationError):
        evaluate_at([1, 2], np.ones((2, LIMBS), dtype=np.int64), [2])
