"""The cost front door dispatches through the registry: adding a protocol is adding a spec.

A toy protocol registered with a spec that names a cost model (as a string, resolved by
the cost layer) gets ``estimate``, ``predict`` and ``secagg cost`` with no other change; a
spec without one, or naming something that is not a CostModel, is refused with a
ConfigurationError (exit code 2 on the command line).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from typing import Any

import pytest

from secagg.cli import main
from secagg.cost import estimate, predict
from secagg.cost.estimate import cost_model_of, cost_protocols
from secagg.cost.model import CostModel, CostParams, FloorWork, RunFacts
from secagg.cost.timing import UnitCosts
from secagg.errors import ConfigurationError
from secagg.protocols.registry import get_protocol, protocols_taking, register_protocol
from tests.helpers.simulator_toy import toy_spec


def _toy_estimate(params: CostParams) -> dict[str, Any]:
    up = float(params.clients * params.dim * 8)
    round_ = {
        "clients": params.clients,
        "client_bytes_up": up / params.clients,
        "client_bytes_down": 0.0,
        "server_bytes_up": up,
        "server_bytes_down": 0.0,
        "client_ops": {"vector_additions": 1},
        "server_ops": {"vector_additions": params.clients},
    }
    return {
        "parameters": {"n": params.clients, "m": params.dim, "bits": params.bits},
        "rounds": {"upload": round_},
        "totals": {
            "client_bytes_up": up / params.clients,
            "client_bytes_down": 0.0,
            "server_bytes_up": up,
            "server_bytes_down": 0.0,
            "expansion": 8.0,
        },
        "operations": {"client": {"vector_additions": 1}, "server": {}},
    }


def _toy_of_run(config: Any, facts: RunFacts) -> dict[str, Any]:
    return _toy_estimate(CostParams(clients=config.clients, dim=config.dim, bits=config.bits))


def _toy_calibrate(model: Mapping[str, Any], config: object) -> UnitCosts:
    return UnitCosts({"vector_additions": 1e-9})


def _toy_floor(model: Mapping[str, Any]) -> dict[str, FloorWork]:
    return {"client": FloorWork(0), "server": FloorWork(0)}


TOY_COST = CostModel(
    estimate=_toy_estimate,
    of_run=_toy_of_run,
    calibrate=_toy_calibrate,
    floor_work=_toy_floor,
)
NOT_A_MODEL = object()

COSTED = dataclasses.replace(
    toy_spec(), name="toy-costed", cost_model="tests.cost.test_estimate:TOY_COST"
)
register_protocol(COSTED, replace=True)
register_protocol(toy_spec(), replace=True)


def test_a_new_spec_brings_its_cost_model_to_estimate_predict_and_the_cli() -> None:
    model = estimate("toy-costed", clients=3, dim=10)
    assert model["protocol"] == "toy-costed"
    assert model["rounds"]["upload"]["server_bytes_up"] == 240
    prediction = predict(model)
    assert prediction["server"] == pytest.approx(3 * 10 * 1e-9)
    assert prediction["unit_costs"]["seconds"] == {"vector_additions": 1e-9}
    out = io.StringIO()
    assert (
        main(["cost", "--protocol", "toy-costed", "--clients", "3", "--dim", "10", "--json"], out)
        == 0
    )
    assert json.loads(out.getvalue())["totals"]["server_bytes_up"] == 240
    assert "toy-costed" in cost_protocols()


def test_a_spec_without_a_usable_cost_model_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigurationError, match="has no cost model"):
        estimate("toy", clients=3, dim=10)
    assert main(["cost", "--protocol", "toy", "--clients", "3"], io.StringIO()) == 2
    assert "has no cost model" in capsys.readouterr().err
    broken = dataclasses.replace(COSTED, cost_model="tests.cost.test_estimate:NOT_A_MODEL")
    with pytest.raises(ConfigurationError, match="is not a CostModel"):
        cost_model_of(broken)
    with pytest.raises(ConfigurationError, match="unknown protocol"):
        estimate("no-such-protocol", clients=3, dim=10)


def test_every_builtin_spec_names_its_cost_model_and_its_variants() -> None:
    builtins = ("bonawitz", "secagg+", "threshold-paillier", "ckks")
    assert cost_protocols()[:4] == builtins
    for name in builtins:
        assert isinstance(cost_model_of(get_protocol(name)), CostModel)
    assert protocols_taking("active") == ("bonawitz", "secagg+")
    assert protocols_taking("decryption") == ("threshold-paillier",)


def test_a_variant_refusal_names_who_takes_it() -> None:
    with pytest.raises(ConfigurationError, match="--decryption applies to threshold-paillier"):
        estimate("ckks", clients=5, dim=10, decryption="balanced")
