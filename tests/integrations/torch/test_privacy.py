"""Distributed DP and compression through SecureFedAvg and secure_weighted_mean
(integrations.torch.privacy): the decoded mean, the epsilon reported, the rules."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from secagg.dp import Compression, DistributedDP, DPPlan
from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.integrations.torch import SecureFedAvg, secure_weighted_mean
from secagg.integrations.torch.backends import ClientId
from secagg.integrations.torch.privacy import (
    ROUND_SEED_BYTES,
    DPAggregation,
    PrivacyBudgetWarning,
)
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT

DIM = 8
CLIENTS = 4
DP = DistributedDP(epsilon=8.0, delta=1e-5, rounds=4, sampling_rate=1.0, bits=16, clip=1.0,
                   expected_clients=CLIENTS)
# A tiny wrap bound: the properties below must never meet a wrapped coordinate.
COMPRESSION = Compression(bits=16, clip=1.0, expected_clients=5, wrap_probability=1e-9)


@pytest.fixture(scope="module")
def dp_plan() -> DPPlan:
    return DP.plan(DIM)  # about a second: made once


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(DIM - 2, 1)  # 6 weights + 1 bias = 7 values


def _states(model: nn.Module, deltas: list[np.ndarray]) -> dict[int, tuple[dict[str,
                                                                            torch.Tensor], int]]:
    base = model.state_dict()
    results = {}
    for cid, delta in enumerate(deltas, start=1):
        state = {k: v.clone() for k, v in base.items()}
        state["weight"] += torch.as_tensor(delta[:6].reshape(1, 6), dtype=torch.float32)
        state["bias"] += float(delta[6])
        results[cid] = (state, 10 * cid)
    return results


def _flat(state: dict[str, torch.Tensor]) -> np.ndarray:
    return np.concatenate([state["weight"].numpy().reshape(-1),
                           state["bias"].numpy().reshape(-1)]).astype(np.float64)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.lists(st.floats(-0.3, 0.3), min_size=7, max_size=7), min_size=2,
                max_size=5))
def test_compressed_fedavg_mean_is_within_the_stated_error(rows: list[list[float]]) -> None:
    model = _model()
    start = _flat(model.state_dict())
    deltas = [np.array(r, dtype=np.float64) for r in rows]
    agg = SecureFedAvg(model, weighted=False, privacy=COMPRESSION)
    state, report = agg.round(_states(model, deltas))
    assert report.privacy is not None and report.privacy.mechanism == "none"
    assert report.privacy.epsilon_spent is None
    assert report.total_examples == len(deltas) and report.included == set(
        range(1, len(deltas) + 1))
    # Every update's norm is at most sqrt(7) * 0.3 < 1 = clip: nothing clipped.
    assert not report.clipped
    truth = np.mean(deltas, axis=0)
    error = np.abs(_flat(state) - start - truth)
    # Rounding error (std report.resolution) plus float32 storage of the new state.
    assert np.all(error <= 8 * report.max_resolution + 1e-6)
    assert report.privacy.to_dict()["bytes_per_client"] == 2 * 8  # 16 bits, padded to 8


def test_secure_weighted_mean_with_compression_and_clipping() -> None:
    big = np.full(DIM, 3.0)  # norm 8.5 > clip 1: clipped to norm 1
    small = np.full(DIM, 0.1)
    mean, report = secure_weighted_mean({"a": big, "b": small}, protocol="bonawitz",
                                        privacy=Compression(bits=20, clip=1.0,
                                                            wrap_probability=1e-9))
    expected = (big / np.linalg.norm(big) + small) / 2
    np.testing.assert_allclose(mean, expected, atol=1e-3)
    assert set(report.clipped) == {"a"} and report.clipped["a"].norm == pytest.approx(
        np.linalg.norm(big))
    assert report.privacy is not None and report.privacy.bits == 20


@settings(max_examples=5, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=2, max_size=3))
def test_epsilon_grows_every_round_and_dropouts_spend_more(dp_plan: DPPlan,
                                                            drops: list[int]) -> None:
    private = DPAggregation(DP, protocol="bonawitz", plan=dp_plan)
    updates: dict[ClientId, np.ndarray] = {c: np.full(DIM, 0.1 * c)
                                           for c in range(1, CLIENTS + 1)}
    full_round = private.ledger.round_rdp(CLIENTS)  # type: ignore[union-attr]
    assert full_round is not None
    spent = [0.0]
    for dropped in drops:
        dropouts = {ROUND_MASKED_INPUT: [1]} if dropped else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyBudgetWarning)
            _, outcome = private.aggregate(updates, dropouts=dropouts)
        report = outcome.privacy
        assert report.included == CLIENTS - dropped
        assert report.below_floor == bool(dropped)
        assert report.epsilon_spent is not None and report.epsilon_round is not None
        assert report.epsilon_spent > spent[-1]
        spent.append(report.epsilon_spent)
        assert report.epsilon_spent == private.epsilon_spent
        if dropped:
            assert 1 in outcome.excluded
    rounds = private.ledger.history  # type: ignore[union-attr]
    by_count = {r.included: r.epsilon_round for r in rounds}
    if len(by_count) == 2:
        assert by_count[CLIENTS - 1] > by_count[CLIENTS]


def test_fedavg_with_distributed_dp_reports_epsilon_and_excludes_non_finite(
        dp_plan: DPPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds: list[bytes] = []
    real: Callable[[int], bytes] = os.urandom

    def spy(count: int) -> bytes:
        out = real(count)
        if count == ROUND_SEED_BYTES:
            seeds.append(out)
        return out

    monkeypatch.setattr(os, "urandom", spy)
    model = _model()
    agg = SecureFedAvg(model, weighted=False, protocol="secagg+", privacy=DP)
    assert agg.dp is not None and agg.dp.plan is not None  # planned at once
    deltas = [np.full(7, 0.05 * c) for c in range(1, CLIENTS + 1)]
    _, first = agg.round(_states(model, deltas))
    results = _states(model, deltas)
    results[2][0]["bias"] += float("nan")
    with pytest.warns(PrivacyBudgetWarning, match="fewer than the 4"):
        _, second = agg.round(results)
    assert first.privacy is not None and second.privacy is not None
    assert second.excluded == {2: "non-finite update"} and second.included == {1, 3, 4}
    assert second.privacy.included == 3 and second.privacy.below_floor
    assert 0 < first.privacy.epsilon_spent < second.privacy.epsilon_spent  # type: ignore[operator]
    assert second.privacy.epsilon_round > first.privacy.epsilon_round  # type: ignore[operator]
    assert agg.epsilon_spent == second.privacy.epsilon_spent
    # One fresh CSPRNG seed per round (os.urandom), public in the report.
    drawn = {s.hex() for s in seeds}
    assert first.privacy.round_seed in drawn and second.privacy.round_seed in drawn
    assert first.privacy.round_seed != second.privacy.round_seed
    assert math.isfinite(second.to_dict()["privacy"]["epsilon_spent"])  # type: ignore[index]


@pytest.mark.parametrize("protocol", ["threshold-paillier", "ckks", "plain"])
def test_privacy_refuses_non_masking_protocols(protocol: str) -> None:
    with pytest.raises(ConfigurationError, match="masking protocol"):
        SecureFedAvg(_model(), weighted=False, protocol=protocol, privacy=COMPRESSION)
    with pytest.raises(ConfigurationError, match="masking protocol"):
        secure_weighted_mean([np.ones(3), np.ones(3)], protocol=protocol,
                             privacy=COMPRESSION)


def test_privacy_rules_are_enforced() -> None:
    model = _model()
    with pytest.raises(ConfigurationError, match="weighted=False"):
        SecureFedAvg(model, privacy=COMPRESSION)
    with pytest.raises(ConfigurationError, match="clip"):
        SecureFedAvg(model, weighted=False, clip=1.0, privacy=COMPRESSION)
    with pytest.raises(ConfigurationError, match="bits"):
        SecureFedAvg(model, weighted=False, bits=16, privacy=COMPRESSION)
    with pytest.raises(ConfigurationError, match="integer_buffers='keep'"):
        SecureFedAvg(nn.BatchNorm1d(3), weighted=False, privacy=COMPRESSION)
    SecureFedAvg(nn.BatchNorm1d(3), weighted=False, integer_buffers="keep",
                 privacy=COMPRESSION)
    with pytest.raises(ConfigurationError, match="uniform weights"):
        secure_weighted_mean([np.ones(3), np.ones(3)], [1, 2], privacy=COMPRESSION)
    with pytest.raises(ConfigurationError, match="DistributedDP or a Compression"):
        secure_weighted_mean([np.ones(3), np.ones(3)], privacy=0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="integer entries"):
        secure_weighted_mean([np.ones(3, dtype=np.int64)] * 2, privacy=COMPRESSION)
    sampled = DistributedDP(epsilon=5.0, delta=1e-5, rounds=10, sampling_rate=0.5, bits=16,
                            clip=1.0)
    agg = SecureFedAvg(model, weighted=False, privacy=sampled)
    with pytest.raises(ConfigurationError, match="sampling_rate must be 1"):
        agg.run(model, [1, 2, 3], lambda m, c, r: 1, rounds=1)


def test_a_round_beyond_the_planned_clients_or_length_is_refused() -> None:
    private = DPAggregation(Compression(bits=16, clip=1.0, expected_clients=2))
    with pytest.raises(ConfigurationError, match="clients <= expected_clients"):
        private.aggregate({c: np.zeros(4) for c in range(3)})
    private.aggregate({c: np.zeros(4) for c in range(2)})
    with pytest.raises(ConfigurationError, match="updates have 5 values"):
        private.aggregate({c: np.zeros(5) for c in range(2)})
    with pytest.raises(ProtocolAbort, match="only 1 client"):
        private.aggregate({0: np.zeros(4), 1: np.full(4, np.inf)})
    with pytest.raises(ConfigurationError, match="does not match"):
        DPAggregation(Compression(bits=12, clip=1.0),
                      plan=Compression(bits=16, clip=1.0).plan(4, 2))
