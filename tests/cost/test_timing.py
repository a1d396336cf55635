"""Predicted seconds (op counts times unit costs calibrated here) against measured rounds.

The stated tolerance (:data:`secagg.cost.timing.TOLERANCE`): for the rounds that
dominate a run, measured and predicted seconds agree within a factor of 3 either way, when
unit costs and the run are measured side by side. Nothing here asserts an absolute time:
only the ratio of two measurements taken moments apart on the same machine. The machine is
shared, so each comparison keeps its best of up to five attempts (calibrate, run, compare),
as the unit costs keep their best of three; a model off by more than the tolerance fails
every attempt.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from secagg.bench.primes import safe_primes_2048
from secagg.cost.bonawitz import bonawitz_costs
from secagg.cost.threshold_he import ckks_costs, threshold_paillier_costs
from secagg.cost.timing import (
    TOLERANCE,
    UnitCosts,
    calibrate,
    calibrate_ckks,
    calibrate_paillier,
    operations,
    predict_seconds,
)
from secagg.errors import ConfigurationError
from secagg.he.threshold_paillier import deal_threshold_keys
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_SHARE_KEYS, ROUND_UNMASKING
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.protocols.threshold_he import setup_threshold_paillier
from secagg.protocols.threshold_he.messages import ROUND_DECRYPTION, ROUND_ENCRYPTED_INPUT
from secagg.protocols.threshold_he.spec import (
    ThresholdHESimulation,
    ckks_spec,
    threshold_paillier_spec,
)
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

ATTEMPTS = 5


def inputs(m: int, bits: int) -> Callable[[int], np.ndarray]:
    def make(client: int) -> np.ndarray:
        rng = np.random.default_rng(client)
        return rng.integers(0, 1 << bits, size=m, dtype=np.uint64)

    return make


def measured(result: SimulationResult, round_name: str, party: str) -> float:
    """The server's seconds in the round, or the median client's (robust to a client the
    shared machine happened to preempt)."""
    if party == "server":
        return result.costs.cost(round_name, SERVER_ID).seconds
    clients = [
        result.costs.cost(round_name, c).seconds
        for c in result.costs.parties() - {SERVER_ID}
        if result.costs.cost(round_name, c).messages_down
    ]
    return statistics.median(clients)


def within_tolerance(
    attempt: Callable[[], tuple[SimulationResult, dict[str, Any]]],
    checks: list[tuple[str, str]],
) -> None:
    """Each (round, party)'s measured/predicted ratio, best of up to ATTEMPTS runs (as the
    unit costs are best of three), must fall within TOLERANCE either way. Stops as soon as
    every check has passed once; a model off by more than the tolerance fails every run."""
    best: dict[tuple[str, str], float] = {}
    for _ in range(ATTEMPTS):
        result, predicted = attempt()
        assert result.matches
        for r, p in checks:
            ratio = measured(result, r, p) / predicted["rounds"][r][p]
            # Keep the ratio closest to 1 on a log scale: load only ever slows a run down.
            if (r, p) not in best or abs(math.log(ratio)) < abs(math.log(best[(r, p)])):
                best[(r, p)] = ratio
        if all(1 / TOLERANCE <= x <= TOLERANCE for x in best.values()):
            return
    pytest.fail(f"measured/predicted outside {TOLERANCE}x in every attempt: {best}")


@pytest.mark.parametrize(
    ("protocol", "n", "m", "dropped"), [("bonawitz", 40, 200_000, 4), ("secagg+", 80, 200_000, 6)]
)
def test_masking_rounds_match_their_prediction(protocol: str, n: int, m: int, dropped: int) -> None:
    spec = get_protocol(protocol)
    config = spec.make_config(SimulationParams(clients=n, dim=m, bits=32))
    k = n - 1 if config.is_complete else config.degree
    model = bonawitz_costs(n, m, 32, config.threshold, None if config.is_complete else k, dropped)

    def attempt() -> tuple[SimulationResult, dict[str, Any]]:
        units = calibrate(
            m=m, bits=32, holders=k + 1, threshold=config.threshold, reconstructions=n
        )
        schedule = DropoutSchedule.from_rate(config.clients, dropped / n, ROUND_MASKED_INPUT, 1)
        result = simulate(config, inputs(m, 32), dropouts=schedule, protocol=spec)
        assert len(result.dropped) == dropped
        return result, predict_seconds(model, units)

    checks = [(ROUND_MASKED_INPUT, "client"), (ROUND_UNMASKING, "server")]
    if protocol == "bonawitz":  # k = 39 agreements and 80 Shamir evaluations per client
        checks.append((ROUND_SHARE_KEYS, "client"))
    within_tolerance(attempt, checks)


def test_threshold_paillier_rounds_match_their_prediction() -> None:
    """2048-bit key (the committed benchmark primes), 4 clients, 500 16-bit values."""
    n, m, bits = 4, 500, 16
    config, shares = setup_threshold_paillier(
        list(range(1, n + 1)),
        bits=bits,
        vector_length=m,
        committee=[1, 2, 3],
        threshold=2,
        safe_primes=safe_primes_2048(),
    )
    simulation = ThresholdHESimulation(config, shares)
    assert config.public_key is not None
    model = threshold_paillier_costs(
        n, m, bits, 3, 2, nsquare_bits=int(config.public_key.paillier.nsquare.bit_length())
    )

    def attempt() -> tuple[SimulationResult, dict[str, Any]]:
        assert config.public_key is not None
        units = calibrate_paillier(
            config.public_key, ciphertexts=model["parameters"]["ciphertexts"]
        )
        result = simulate(simulation, inputs(m, bits), protocol=threshold_paillier_spec())
        return result, predict_seconds(model, units)

    within_tolerance(
        attempt,
        [
            (ROUND_ENCRYPTED_INPUT, "client"),
            (ROUND_DECRYPTION, "client"),
            (ROUND_DECRYPTION, "server"),
        ],
    )


def test_ckks_rounds_match_their_prediction() -> None:
    n, m, bits = 4, 20_000, 16
    simulation = ThresholdHESimulation.ckks(SimulationParams(clients=n, dim=m, bits=bits, degree=2))
    model = ckks_costs(n, m, bits, 2, 1)
    assert simulation.config.ckks is not None
    parameters = simulation.config.ckks.parameters

    def attempt() -> tuple[SimulationResult, dict[str, Any]]:
        units = calibrate_ckks(parameters, m=m, bits=bits)
        result = simulate(simulation, inputs(m, bits), protocol=ckks_spec())
        return result, predict_seconds(model, units)

    within_tolerance(
        attempt,
        [
            (ROUND_ENCRYPTED_INPUT, "client"),
            (ROUND_ENCRYPTED_INPUT, "server"),
            (ROUND_DECRYPTION, "client"),
        ],
    )


def test_prediction_is_counts_times_unit_costs() -> None:
    """With every unit cost 1 s the prediction is the op count (per-element units scaled)."""
    n, m = 20, 1000
    model = bonawitz_costs(n, m, 16, 11, None, 2)
    units = UnitCosts(dict.fromkeys(operations([model]) | {"vector_packs"}, 1.0))
    predicted = predict_seconds(model, units)
    assert predicted["missing"] == []
    for name, data in model["rounds"].items():
        server_ops = dict(data["server_ops"])
        server_ops["vector_additions"] = server_ops.get("vector_additions", 0) * m
        assert predicted["rounds"][name]["server"] == pytest.approx(sum(server_ops.values()))
        client = sum(data["client_ops"].values()) + (m if name == ROUND_MASKED_INPUT else 0)
        assert predicted["rounds"][name]["client"] == pytest.approx(client)
    assert predicted["server"] == pytest.approx(
        sum(r["server"] for r in predicted["rounds"].values())
    )


def test_missing_unit_costs_are_reported_not_guessed() -> None:
    model = threshold_paillier_costs(10, 100, 16)
    predicted = predict_seconds(model, UnitCosts({"paillier_encryptions": 2.0}))
    assert predicted["rounds"][ROUND_ENCRYPTED_INPUT]["client"] == pytest.approx(
        2.0 * model["parameters"]["ciphertexts"]
    )
    assert "partial_exponentiations" in predicted["missing"]
    assert "paillier_encryptions" not in predicted["missing"]


def test_calibration_covers_every_operation_of_the_models() -> None:
    masking = calibrate(m=4096, holders=5, threshold=3, reconstructions=4)
    models = [bonawitz_costs(10, 100, 16, 3, 4, 1, active=True)]
    assert operations(models) <= set(masking.seconds)
    assert all(v >= 0 for v in masking.seconds.values())
    public, _ = deal_threshold_keys(512, threshold=2, holders=3)
    paillier = calibrate_paillier(public, ciphertexts=3)
    assert operations([threshold_paillier_costs(10, 100, 16)]) <= set(paillier.seconds)
    ckks = calibrate_ckks(m=1000)
    assert operations([ckks_costs(10, 100, 16)]) <= set(ckks.seconds)
    merged = masking.merged(ckks)
    assert set(merged.seconds) == set(masking.seconds) | set(ckks.seconds)
    assert merged.to_dict()["context"]["m"] == 4096


@pytest.mark.parametrize(
    "kwargs",
    [{"m": 0}, {"bits": 65}, {"holders": 3, "threshold": 4}, {"threshold": 0}, {"m": 1.5}],
)
def test_calibrate_refuses_bad_shapes(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        calibrate(**kwargs)
