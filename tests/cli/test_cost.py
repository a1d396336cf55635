"""``secagg cost`` (and the wiring of ``secagg bench``): models from the command line."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.cli import build_parser, main
from secagg.cli import cost as cost_command
from secagg.cost import estimate as estimate_costs
from secagg.cost.estimate import cost_protocols
from secagg.errors import ConfigurationError
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.sim.simulator import DropoutSchedule, simulate


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


@pytest.mark.parametrize("protocol", ["bonawitz", "secagg+", "threshold-paillier", "ckks"])
def test_cost_prints_every_round(protocol: str) -> None:
    code, text = run("cost", "--protocol", protocol, "--clients", "20", "--dim", "5000")
    assert code == 0
    model = estimate_costs(protocol, clients=20, dim=5000)
    for name in model["rounds"]:
        assert name in text
    assert "operations" in text
    assert f"expansion {model['totals']['expansion']:.3f}x" in text


def test_cost_json_is_the_model() -> None:
    code, text = run(
        "cost", "--protocol", "secagg+", "--clients", "300", "--dim", "1000", "--dropout",
        "0.1", "--json",
    )  # fmt: skip
    assert code == 0
    document = json.loads(text)
    assert document == json.loads(
        json.dumps(estimate_costs("secagg+", clients=300, dim=1000, dropout=0.1))
    )
    assert document["parameters"]["dropouts"] == 30
    assert not document["parameters"]["complete"]


def inputs(m: int, bits: int) -> Any:
    def make(client: int) -> np.ndarray:
        return np.random.default_rng(client).integers(0, 1 << bits, m, dtype=np.uint64)

    return make


@settings(max_examples=8)
@given(
    protocol=st.sampled_from(["bonawitz", "secagg+"]),
    n=st.integers(5, 40),
    m=st.integers(1, 2000),
    bits=st.sampled_from([8, 16, 32]),
    dropout=st.sampled_from([0.0, 0.1, 0.2]),
)
def test_cost_defaults_are_the_simulators(
    protocol: str, n: int, m: int, bits: int, dropout: float
) -> None:
    """``secagg cost`` with the same flags as ``secagg simulate`` predicts that run's bytes
    exactly (ids below 128, so exact for every dropout set)."""
    spec = get_protocol(protocol)
    config = spec.make_config(
        SimulationParams(clients=n, dim=m, bits=bits, dropout_fraction=dropout)
    )
    schedule = DropoutSchedule.from_rate(config.clients, dropout, spec.dropout_round, 3)
    result = simulate(config, inputs(m, bits), dropouts=schedule, protocol=spec)
    model = estimate_costs(protocol, clients=n, dim=m, bits=bits, dropout=dropout)
    assert model["parameters"]["dropouts"] == len(result.dropped)
    for summary in result.costs.summaries():
        rounds = model["rounds"][summary.round_name]
        assert rounds["server_bytes_up"] == pytest.approx(summary.server.bytes_up, abs=1e-6)
        assert rounds["server_bytes_down"] == pytest.approx(summary.server.bytes_down, abs=1e-6)


def test_he_defaults_follow_the_simulation_specs() -> None:
    paillier = estimate_costs("threshold-paillier", clients=12, dim=100, bits=16)
    assert (paillier["parameters"]["committee"], paillier["parameters"]["threshold"]) == (5, 3)
    ckks = estimate_costs("ckks", clients=3, dim=100, bits=16, degree=2)
    assert (ckks["parameters"]["committee"], ckks["parameters"]["threshold"]) == (2, 1)


def test_calibrate_adds_predicted_seconds() -> None:
    code, text = run(
        "cost", "--protocol", "bonawitz", "--clients", "10", "--dim", "2000", "--calibrate",
        "--json",
    )  # fmt: skip
    assert code == 0
    predicted = json.loads(text)["predicted_seconds"]
    assert predicted["missing"] == []
    assert predicted["client"] > 0 and predicted["server"] > 0
    assert set(predicted["rounds"]) == set(json.loads(text)["rounds"])
    code, table = run("cost", "--protocol", "ckks", "--clients", "4", "--dim", "100", "--calibrate")
    assert code == 0 and "predicted seconds" in table


@pytest.mark.parametrize(
    "argv",
    [
        ["cost", "--clients", "1"],
        ["cost", "--dropout", "1.5"],
        ["cost", "--protocol", "bonawitz", "--clients", "10", "--threshold", "11"],
        ["cost", "--protocol", "secagg+", "--clients", "10", "--degree", "0", "--threshold", "2"],
        ["cost", "--protocol", "threshold-paillier", "--clients", "10", "--degree", "3",
         "--threshold", "4"],
        ["cost", "--protocol", "ckks", "--ciphertext-bytes", "5"],
        ["cost", "--dim", "0"],
    ],
)  # fmt: skip
def test_bad_parameters_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, io.StringIO()) == 2
    assert "bad parameters" in capsys.readouterr().err


def test_estimate_costs_refuses_unknown_protocols() -> None:
    with pytest.raises(ConfigurationError):
        estimate_costs("pickle", clients=10, dim=10)
    assert main(["cost", "--protocol", "pickle"], io.StringIO()) == 2


def test_every_builtin_protocol_has_a_cost_model() -> None:
    assert cost_protocols()[:4] == ("bonawitz", "secagg+", "threshold-paillier", "ckks")


def test_a_subcommand_wires_into_another_parser() -> None:
    """Each subcommand module adds itself to any subparsers object and sets its handler."""
    parser = argparse.ArgumentParser(prog="other")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("simulate")
    cost_command.add_parser(commands)
    args = parser.parse_args(["cost", "--clients", "30", "--json"])
    out = io.StringIO()
    assert args.handler(args, out) == 0
    assert json.loads(out.getvalue())["parameters"]["n"] == 30
    assert parser.parse_args(["simulate"]).command == "simulate"


def test_the_parser_shares_one_definition_of_the_common_flags() -> None:
    """simulate and cost take the same size and variant flags with the same defaults."""
    parser = build_parser()
    simulate = vars(parser.parse_args(["simulate"]))
    cost = vars(parser.parse_args(["cost"]))
    for flag in ("protocol", "clients", "dim", "bits", "dropout", "threshold", "degree"):
        assert simulate[flag] == cost[flag], flag
    assert simulate["active"] is cost["active"] is False
    assert simulate["decryption"] is cost["decryption"] is None
    bench = parser.parse_args(["bench", "--quick", "--out", "somewhere", "--no-progress"])
    assert bench.quick and bench.out == "somewhere" and bench.from_json is None
