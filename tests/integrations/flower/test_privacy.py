"""Distributed DP and compression over Flower, in process (real ClientApps behind the mod,
the in-process SuperLink): settings, run config keys, the setup's plan, the client's checks,
the epsilon in the reports."""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.serverapp.strategy import FedAvg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.dp import Compression, DistributedDP, DPPlan
from secagg.errors import ConfigurationError, DecodeError
from secagg.integrations.flower import ClientPolicy, SecAggGrid, SecAggSettings, run_secure_round
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.flower.settings import privacy_from_run_config
from secagg.integrations.flower.wire import FixedPointParams, PrivacySetup, SessionSetup
from secagg.integrations.privacy import PrivacyBudgetWarning, verify_plan
from tests.helpers.flower import make_app, make_grid, node_of, server_task_identity, train_messages

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "flower_app"))
from secagg_flower_app.task import client_update, initial_arrays

FAST = dict(protocol="bonawitz", train_timeout=0.02, stage_timeout=0.02, poll_interval=0.01)
COMPRESSION = Compression(bits=16, clip=8.0, expected_clients=4, wrap_probability=1e-9)
DP = DistributedDP(epsilon=20.0, delta=1e-5, rounds=3, sampling_rate=1.0, bits=16, clip=8.0,
                   expected_clients=4)


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


def _plain_mean(partitions: range, server_round: int) -> dict[str, np.ndarray]:
    updates = [client_update(p, server_round)[0] for p in partitions]
    return {name: np.mean([u[name] for u in updates], axis=0) for name in updates[0]}


def test_compressed_fedavg_is_the_unweighted_mean() -> None:
    grid = make_grid(range(4))
    secure = SecAggGrid(grid, SecAggSettings.with_privacy(COMPRESSION, **FAST))
    result = FedAvg(fraction_evaluate=0.0, min_available_nodes=4).start(
        grid=secure, initial_arrays=initial_arrays(), num_rounds=2)
    for server_round, report in enumerate(secure.reports, start=1):
        assert report.ok and report.included_nodes == {node_of(p) for p in range(4)}
        assert report.privacy is not None and report.privacy.mechanism == "none"
        assert report.total_weight == 4.0
        tolerance = 8 * report.privacy.error_std + 1e-6
        assert report.arrays is not None
        # global + mean(trained - global) = mean(trained): the example ignores the global.
        for name, values in _plain_mean(range(4), server_round).items():
            np.testing.assert_allclose(report.arrays[name].numpy(), values, atol=tolerance)
    last = secure.reports[-1].privacy
    assert last is not None and last.bytes_per_client == 16  # 8 values of 16 bits
    for name, values in _plain_mean(range(4), 2).items():  # what the strategy ends with
        np.testing.assert_allclose(result.arrays[name].numpy(), values,
                                   atol=8 * last.error_std + 1e-6)


def test_distributed_dp_reports_epsilon_and_a_dropout_spends_more() -> None:
    grid = make_grid(range(4))
    grid.drop_from[node_of(2)] = (2, 1)  # vanishes before its masked input of round 2
    secure = SecAggGrid(grid, SecAggSettings.with_privacy(DP, **FAST))
    with pytest.warns(PrivacyBudgetWarning, match="3 clients in the sum"):
        FedAvg(fraction_evaluate=0.0, min_available_nodes=4).start(
            grid=secure, initial_arrays=initial_arrays(), num_rounds=2)
    first, second = (r.privacy for r in secure.reports)
    assert first is not None and second is not None
    assert first.included == 4 and second.included == 3 and second.below_floor
    assert first.epsilon_spent is not None and second.epsilon_spent is not None
    assert 0 < first.epsilon_spent < second.epsilon_spent
    assert second.epsilon_round > first.epsilon_round  # type: ignore[operator]
    assert secure.privacy is not None and secure.privacy.epsilon_spent == second.epsilon_spent
    assert first.round_seed != second.round_seed
    assert "epsilon_spent" in repr(secure.reports[1])
    assert node_of(2) in secure.reports[1].excluded_nodes


def test_client_policy_bounds_the_plan() -> None:
    strict = make_app(ClientPolicy(min_clients=3, require_privacy=True))
    report = run_secure_round(make_grid(range(3), strict), train_messages(make_grid(range(3))),
                              SecAggSettings(**FAST))  # type: ignore[arg-type]
    assert report.aborted and all("requires distributed DP" in reason
                                  for reason in report.excluded_nodes.values())
    capped = make_app(ClientPolicy(min_clients=3, max_epsilon=5.0))
    settings = SecAggSettings.with_privacy(
        DistributedDP(epsilon=20.0, delta=1e-5, rounds=3, sampling_rate=1.0, bits=16,
                      clip=8.0, expected_clients=3), **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyBudgetWarning)
        grid = make_grid(range(3), capped)
        report = run_secure_round(grid, train_messages(grid), settings)
    assert report.aborted and all("policy allows 5" in reason
                                  for reason in report.excluded_nodes.values())


@pytest.fixture(scope="module")
def dp_plan() -> DPPlan:
    return DP.plan(8)


def test_verify_plan_recomputes_what_a_server_states(dp_plan: DPPlan) -> None:
    assert verify_plan(dp_plan) == pytest.approx(dp_plan.epsilon)
    assert verify_plan(COMPRESSION.plan(8)) is None
    assert dp_plan.l2_sensitivity is not None
    forged = dataclasses.replace(dp_plan, l2_sensitivity=dp_plan.l2_sensitivity / 2)
    with pytest.raises(ConfigurationError, match="understates"):
        verify_plan(forged)


def _setup(privacy: PrivacySetup | None) -> SessionSetup:
    layout = ArrayLayout.from_record(initial_arrays())
    return SessionSetup(
        session_id=bytes(16), protocol="bonawitz", n=4, client_id=1, bits=16,
        fixed_point=FixedPointParams(8.0, 1.0, 4, 1.0), layout=layout,
        weighted_by_key="num-examples", weighted=False, params=b"", privacy=privacy)


def test_setup_carries_the_plan_and_refuses_a_malformed_one(dp_plan: DPPlan) -> None:
    plain = _setup(None)
    private = _setup(PrivacySetup(dp_plan, bytes(range(32))))
    # A msgpack array of one more element: the same fields, then the privacy setup.
    assert plain.to_bytes()[0] == 0x9D and private.to_bytes()[0] == 0x9E
    assert private.to_bytes()[1:].startswith(plain.to_bytes()[1:])
    decoded = SessionSetup.from_bytes(private.to_bytes(), max_vector_length=1000)
    assert decoded == private and decoded.vector_length == dp_plan.padded_dim
    bad_fields = dict(dp_plan.to_dict(), bits=16.0)
    for bad in ([bad_fields, bytes(32)], [dp_plan.to_dict(), bytes(31)],
                [dict(dp_plan.to_dict(), scale="x"), bytes(32)]):
        with pytest.raises(DecodeError):
            PrivacySetup.from_wire(bad)
    with pytest.raises(DecodeError, match="other bits"):
        SessionSetup.from_bytes(dataclasses.replace(private, bits=17).to_bytes(),
                                max_vector_length=1000)


def test_settings_rules_and_run_config_keys() -> None:
    with pytest.raises(ConfigurationError, match="masking protocol"):
        SecAggSettings.with_privacy(COMPRESSION, protocol="threshold-paillier")
    with pytest.raises(ConfigurationError, match="weighted=False"):
        SecAggSettings(bits=16, privacy=COMPRESSION, report_clipping=False)
    with pytest.raises(ConfigurationError, match=r"privacy\.bits=16"):
        SecAggSettings(privacy=COMPRESSION, weighted=False, report_clipping=False)
    with pytest.raises(ConfigurationError, match="secure_metrics"):
        SecAggSettings.with_privacy(COMPRESSION, secure_metrics=("train_loss",))
    assert privacy_from_run_config({"num-server-rounds": 3}) is None
    config = {"dp-epsilon": 3.0, "dp-delta": 1e-5, "dp-rounds": 10, "dp-bits": 16,
              "dp-clip": 1.0, "dp-mechanism": "dgauss", "dp-sampling-rate": 0.5}
    assert privacy_from_run_config(config) == DistributedDP(
        epsilon=3.0, delta=1e-5, rounds=10, sampling_rate=0.5, bits=16, clip=1.0,
        mechanism="dgauss")
    assert privacy_from_run_config({"dp-bits": 12, "dp-clip": 2.0}) == Compression(
        bits=12, clip=2.0)
    for bad, needle in (({"dp-bits": 12, "dp-clip": 2.0, "dp-epslion": 1}, "unknown"),
                        ({"dp-epsilon": 1.0, "dp-bits": 16}, "dp-delta"),
                        ({"dp-bits": 12, "dp-clip": 1.0, "dp-rounds": 3}, "need dp-epsilon"),
                        ({"dp-bits": 12, "dp-clip": -1.0}, "clip must be > 0")):
        with pytest.raises(ConfigurationError, match=needle):
            privacy_from_run_config(bad)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(DPPlan.__dataclass_fields__)),
       value=st.one_of(st.none(), st.booleans(), st.integers(-2**64 + 1, 2**64 - 1),
                       st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=8)))
def test_a_hostile_plan_field_decodes_or_is_a_decode_error(dp_plan: DPPlan, field: str,
                                                            value: object) -> None:
    fields = dict(dp_plan.to_dict(), **{field: value})
    try:
        setup = PrivacySetup.from_wire([fields, bytes(32)])
    except DecodeError as exc:
        assert len(str(exc)) < 200  # bounded; names the field, never echoes the value
    else:
        assert isinstance(setup.plan, DPPlan)


def test_the_example_app_reads_the_dp_keys_of_its_run_config() -> None:
    """examples/flower_app: dp-* run config keys turn its settings into a private session
    (the plan owns bits and clip, the mean is unweighted); without them nothing changes."""
    from pathlib import Path

    import tomllib
    from secagg_flower_app.server_app import settings_of

    root = Path(__file__).resolve().parents[3]
    project = tomllib.loads((root / "examples/flower_app/pyproject.toml").read_text("utf-8"))
    base = dict(project["tool"]["flwr"]["app"]["config"])
    plain = settings_of(base)
    assert plain.privacy is None and plain.bits == base["bits"]
    private = settings_of({**base, "dp-epsilon": 10.0, "dp-delta": 1e-5, "dp-rounds": 2,
                           "dp-bits": 16, "dp-clip": 4.0, "dp-expected-clients": 3})
    assert isinstance(private.privacy, DistributedDP)
    assert private.bits == 16 and not private.weighted and private.secure_metrics == ()
    compressed = settings_of({**base, "dp-bits": 12, "dp-clip": 4.0})
    assert isinstance(compressed.privacy, Compression) and compressed.bits == 12
