"""Review: the server's reconstruction survives lying holders at any n, at bounded cost.

Finding (before the fix): a secret whose first t shares did not verify went through an
enumeration of t-subsets that swapped the *last* member first and tried every spare for it;
a liar with a low id was reached only after about t * (h - t) reconstructions, beyond the
2048-attempt budget from h ~ 90 holders on, so one lying client aborted the whole round.
Each failed secret also re-tried every other share one reconstruction at a time to blame
(O(n^2) slow reconstructions for one liar). Now the shares are decoded as a Reed-Solomon
codeword (Gao), and once a liar is known the other secrets go back to the bulk path.
"""

from __future__ import annotations

import dataclasses
import secrets

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.protocols.bonawitz import server_unmasking
from secagg.protocols.bonawitz.bundles import self_mask_commitment
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    RevealedShare,
    UnmaskingResponse,
    decode_message,
)
from secagg.protocols.bonawitz.server_unmasking import RevealedShares, reconstruct_all
from secagg.shamir import LIMBS, PRIME, pack_limb_shares, share_secrets
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
            RevealedShare(s.owner, garble_share(s.share, shift=1 + s.owner % 7))
            for s in message.self_mask_shares
        )
        return [dataclasses.replace(message, self_mask_shares=shares).to_bytes()]

    return tamper


def test_one_liar_with_the_lowest_id_does_not_abort_a_large_round() -> None:
    # n = 100, t = 51: the old search needed ~51 * 49 attempts to drop holder 1 (> 2048).
    session = make_session(100, 51, length=4)
    result = run_session(session, tamper=lying_holders({1}))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert "off the polynomial" in result.faults[1]
    assert set(result.faults) == {1}


def test_a_liar_costs_one_decoding_not_one_per_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = locate_errors

    def counted(points, limbs, threshold):  # type: ignore[no-untyped-def]
        calls.append(len(points))
        return real(points, limbs, threshold)

    monkeypatch.setattr(server_unmasking, "locate_errors", counted)
    session = make_session(40, 21, length=4)
    result = run_session(session, tamper=lying_holders({3}))  # type: ignore[arg-type]
    assert_correct(session, result)
    # Holder 3 is among the first t of all 40 secrets; once caught, the other 39 secrets
    # are rebuilt in bulk without it.
    assert len(calls) == 1
    assert set(result.faults) == {3}


def test_several_liars_are_all_found() -> None:
    session = make_session(30, 16, length=4)
    liars = {1, 2, 5, 9, 11}
    result = run_session(session, tamper=lying_holders(liars))  # type: ignore[arg-type]
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert set(result.faults) == liars


def _direct_case(
    h: int, t: int
) -> tuple[ProtocolConfig, dict[int, AdvertiseKeys], dict[int, bytes]]:
    config = ProtocolConfig.create(list(range(1, h + 1)), threshold=t, bits=8, vector_length=1)
    seeds = {c: secrets.token_bytes(32) for c in config.clients}
    adverts = {
        c: AdvertiseKeys(
            c,
            0,
            config.session_id,
            bytes([c % 256]) * 32,
            bytes([(c + 1) % 256]) * 32,
            self_mask_commitment(config.session_id, c, seeds[c]),
        )
        for c in config.clients
    }
    return config, adverts, seeds


def _revealed(config: ProtocolConfig, seeds: dict[int, bytes], owners: list[int]) -> RevealedShares:
    revealed = RevealedShares()
    for owner in owners:
        shares = share_secrets([seeds[owner]], list(config.clients), config.threshold)
        revealed.self_mask[owner] = {x: pack_limb_shares(s[0].values) for x, s in shares.items()}
    return revealed


@pytest.mark.parametrize("h", [12, 60, 150])
def test_up_to_half_the_spares_may_lie(h: int) -> None:
    t = h // 2 + 1
    config, adverts, seeds = _direct_case(h, t)
    owners = [1, 2, h]
    revealed = _revealed(config, seeds, owners)
    liars = set(range(1, (h - t) // 2 + 1))  # the lowest ids: always in the first t
    for owner in owners:
        for liar in liars:
            revealed.self_mask[owner][liar] = garble_share(revealed.self_mask[owner][liar])
    self_seeds, _, faults = reconstruct_all(
        config, adverts, revealed, frozenset(owners), frozenset()
    )
    assert self_seeds == {owner: seeds[owner] for owner in owners}
    assert set(faults) == liars


def test_a_secret_without_a_verified_reconstruction_still_aborts() -> None:
    config, adverts, seeds = _direct_case(9, 5)
    revealed = _revealed(config, seeds, [4])
    for liar in (1, 2, 3, 6, 7):  # 5 of 9 holders: no 5 honest shares remain
        # Independent random errors (equal shifts could cancel at zero and still verify).
        shift = 1 + secrets.randbelow(PRIME - 1)
        revealed.self_mask[4][liar] = garble_share(revealed.self_mask[4][liar], shift=shift)
    with pytest.raises(ProtocolAbort):
        reconstruct_all(config, adverts, revealed, frozenset({4}), frozenset())


def test_liars_whose_errors_cancel_at_zero_frame_no_honest_holder() -> None:
    # Finding (before the fix): holders 1 and 2 add the same offset to their shares. Some
    # t-subset holding both reconstructs the right secret (their errors cancel at x = 0),
    # and the old search then "blamed" every honest share off that wrong polynomial:
    # faults named holders 3, 4, 5, 6 and 12 and not the liars.
    config, adverts, seeds = _direct_case(12, 7)
    revealed = _revealed(config, seeds, [5])
    for liar in (1, 2):
        revealed.self_mask[5][liar] = garble_share(revealed.self_mask[5][liar])
    self_seeds, _, faults = reconstruct_all(config, adverts, revealed, frozenset({5}), frozenset())
    assert self_seeds == {5: seeds[5]}
    assert set(faults) == {1, 2}


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
