"""The threshold-CKKS cost model: its bytes equal real runs' byte for byte, and its unit
costs cover every operation it counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.cost.estimate import cost_model_of, estimate
from secagg.cost.model import RunFacts
from secagg.cost.threshold_ckks import threshold_ckks_costs
from secagg.cost.threshold_ckks_spec import THRESHOLD_CKKS, calibrate_threshold_ckks
from secagg.cost.timing import operations, predict_seconds
from secagg.errors import ConfigurationError
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.protocols.threshold_ckks.messages import ROUND_ENCRYPTED_INPUT
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

SPEC = get_protocol("threshold-ckks")


def _run(
    n: int, m: int, bits: int, committee: int, t: int, dropped: frozenset[int]
) -> tuple[object, SimulationResult]:
    config = SPEC.make_config(
        SimulationParams(clients=n, dim=m, bits=bits, threshold=t, degree=committee)
    )
    rng = np.random.default_rng(n)  # not-secret: test data
    high = 1 << bits if bits < 64 else 2**63
    inputs = {c: rng.integers(0, high, m, dtype=np.uint64) for c in config.clients}
    schedule = DropoutSchedule({ROUND_ENCRYPTED_INPUT: dropped})
    result = simulate(config, inputs, dropouts=schedule)
    assert result.matches
    return config, result


def assert_exact(model: dict[str, object], result: SimulationResult) -> None:
    rounds = model["rounds"]
    assert isinstance(rounds, dict)
    assert set(rounds) == set(result.costs.rounds)
    for name in result.costs.rounds:
        summary = result.costs.round_summary(name)
        assert rounds[name]["server_bytes_up"] == pytest.approx(summary.server.bytes_up, abs=1e-6)
        assert rounds[name]["server_bytes_down"] == pytest.approx(
            summary.server.bytes_down, abs=1e-6
        )


@settings(max_examples=6, deadline=None)
@given(st.data())
def test_model_of_a_run_matches_its_bytes(data: st.DataObject) -> None:
    n = data.draw(st.integers(3, 7), label="n")
    committee = data.draw(st.integers(1, min(4, n)), label="committee")
    t = data.draw(st.integers(1, committee), label="t")
    m = data.draw(st.sampled_from([1, 300, 8192, 8193]), label="m")
    bits = data.draw(st.sampled_from([1, 16, 32]), label="bits")
    # Dropped clients: keep t members and two inputs.
    pool = data.draw(st.permutations(range(1, n + 1)), label="order")
    dropped: set[int] = set()
    for client in pool:
        members_left = committee - len(dropped & set(range(1, committee + 1)))
        if client <= committee and members_left <= t:
            continue
        if n - len(dropped) <= 2:
            break
        if data.draw(st.booleans(), label=f"drop {client}"):
            dropped.add(client)
    config, result = _run(n, m, bits, committee, t, frozenset(dropped))
    model = THRESHOLD_CKKS.of_run(config, RunFacts(frozenset(result.dropped)))
    assert_exact(model, result)
    if not dropped:  # the estimate is the same model, exact without dropouts
        assert_exact(
            estimate("threshold-ckks", clients=n, dim=m, bits=bits, degree=committee, threshold=t),
            result,
        )


def test_multi_byte_ids_and_dropped_members() -> None:
    # Ids from 128 up take 2 msgpack bytes; two members drop before their upload.
    n = 130
    config, result = _run(n, 5, 8, 5, 3, frozenset({1, 4, 128, 129}))
    assert_exact(THRESHOLD_CKKS.of_run(config, RunFacts(frozenset(result.dropped))), result)


def test_the_expectation_averages_over_dropout_sets() -> None:
    # With a count only, the model is the mean over every dropped set of that size.
    n, m, committee, t = 5, 10, 3, 1
    exact = []
    for first in range(1, n + 1):
        for second in range(first + 1, n + 1):
            exact.append(threshold_ckks_costs(n, m, 8, committee, t, dropped={first, second}))
    expected = threshold_ckks_costs(n, m, 8, committee, t, 2)
    for name, entry in expected["rounds"].items():
        for side in ("server_bytes_up", "server_bytes_down"):
            mean = sum(model["rounds"][name][side] for model in exact) / len(exact)
            assert entry[side] == pytest.approx(mean), (name, side)


def test_refusals_and_defaults() -> None:
    model = estimate("threshold-ckks", clients=10, dim=100_000)
    p = model["parameters"]
    assert (p["committee"], p["threshold"], p["degree"], p["limbs"]) == (5, 3, 8192, 4)
    assert model["totals"]["upload_expansion"] < 20.7  # below TenSEAL's
    for kwargs in (
        {"committee": 4, "threshold": 5},
        {"dropouts": 9},
        {"committee": 3, "threshold": 3, "dropped": {1}},
        {"dropped": {0}},
        {"bits": 61},
    ):
        with pytest.raises(ConfigurationError):
            threshold_ckks_costs(10, 5, **{"bits": 8, **kwargs})  # type: ignore[arg-type]


def test_unit_costs_cover_every_counted_operation() -> None:
    units = calibrate_threshold_ckks(committee=3, threshold=2, clients=4, bits=8)
    model = threshold_ckks_costs(4, 20_000, 8, 3, 2)
    assert operations([model]) <= set(units.seconds)
    prediction = predict_seconds(model, units)
    assert not prediction["missing"] and prediction["client"] > 0 and prediction["server"] > 0
    assert cost_model_of(SPEC) is THRESHOLD_CKKS
    assert THRESHOLD_CKKS.floor_work(model)["server"].masks == 4
