"""The timing model: predicted seconds are operation counts times calibrated unit costs.

What is checked here is deterministic: the prediction is exactly counts times units, every
operation a model counts has a unit cost, bad calibration shapes are refused. How close the
prediction comes to a measured run (:data:`secagg.cost.timing.TOLERANCE`, a factor of 3
either way for the rounds that dominate) is a speed property: the benchmark suite measures
and reports it side by side in one run (``secagg bench``, "seconds within 3x" in
BENCHMARKS.md), and no test asserts it, since a timed assertion fails on a loaded machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from secagg.cost.bonawitz import bonawitz_costs
from secagg.cost.threshold_he import ckks_costs, threshold_paillier_costs
from secagg.cost.timing import (
    UnitCosts,
    calibrate,
    calibrate_ckks,
    calibrate_paillier,
    operations,
    predict_seconds,
)
from secagg.errors import ConfigurationError
from secagg.he.threshold_paillier import deal_threshold_keys
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT
from secagg.protocols.threshold_he.messages import ROUND_ENCRYPTED_INPUT


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
