"""``secagg simulate`` and ``secagg cost`` run threshold CKKS through its registry spec."""

from __future__ import annotations

import io
import json

from secagg.cli import main
from secagg.cost import estimate


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def test_simulate_with_dropouts_and_a_chosen_committee() -> None:
    code, text = run(
        "simulate",
        "--protocol",
        "threshold-ckks",
        "--clients",
        "7",
        "--dim",
        "500",
        "--dropout",
        "0.3",
        "--degree",
        "4",
        "--threshold",
        "2",
        "--json",
    )
    assert code == 0, text
    summary = json.loads(text)
    assert summary["matches_plaintext_sum"]
    assert summary["included"] == 5
    assert {row["round"] for row in summary["costs"]["rounds"]} == {
        "key_advertise",
        "key_deal",
        "key_check",
        "encrypted_input",
        "decryption",
    }


def test_cost_names_the_scheme_parameters() -> None:
    code, text = run(
        "cost", "--protocol", "threshold-ckks", "--clients", "100", "--dim", "100000", "--json"
    )
    assert code == 0
    model = json.loads(text)
    assert model == json.loads(json.dumps(estimate("threshold-ckks", clients=100, dim=100_000)))
    p = model["parameters"]
    assert (p["committee"], p["threshold"], p["degree"], p["limbs"], p["chunks"]) == (
        5,
        3,
        8192,
        4,
        13,
    )
    assert model["totals"]["upload_expansion"] < 20.7


def test_a_refused_setting_exits_2() -> None:
    code, _ = run("simulate", "--protocol", "threshold-ckks", "--clients", "5", "--bits", "62")
    assert code == 2
