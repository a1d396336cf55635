"""``secagg simulate``: runs in-process via main([...]), JSON output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from secagg.cli import main
from secagg.protocols.registry import register_protocol
from secagg.sim.inputs import seeded_inputs
from tests.helpers.simulator_toy import broken_toy_spec, toy_spec

register_protocol(toy_spec(), replace=True)
register_protocol(broken_toy_spec(), replace=True)


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize(
    ("protocol", "extra"),
    [
        ("bonawitz", ["--threshold", "5"]),
        ("secagg+", ["--degree", "4", "--threshold", "3"]),
        ("secagg+", []),  # k and t from the parameter finder
    ],
)
def test_simulate_json(
    capsys: pytest.CaptureFixture[str], protocol: str, extra: list[str]
) -> None:
    argv = ["simulate", "--protocol", protocol, "--clients", "8", "--dim", "50"]
    argv += ["--dropout", "0.25", "--bits", "20", "--seed", "3", "--json", *extra]
    code, doc = _run_json(capsys, argv)
    assert code == 0
    assert doc["matches_plaintext_sum"] is True
    assert doc["clients"] == 8 and doc["vector_length"] == 50 and doc["bits"] == 20
    assert doc["included"] == 6
    assert len(doc["dropped_by_transport"]) == 2
    assert set(doc["excluded"]) == set(doc["dropped_by_transport"])
    rounds = [r["round"] for r in doc["costs"]["rounds"]]
    assert rounds[0] == "advertise_keys" and "masked_input" in rounds
    assert doc["costs"]["server_total"]["bytes_up"] > 6 * 50 * 20 // 8
    assert doc["parameters"]["protocol"] == protocol


def test_simulate_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "10"])
    out = capsys.readouterr().out
    assert code == 0
    assert "check against the plaintext sum of the included clients: OK" in out
    assert "advertise_keys" in out and "total" in out


def test_dropout_round_option(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--protocol", "bonawitz", "--clients", "6", "--dim", "10"]
    argv += ["--dropout", "0.34", "--dropout-round", "unmasking", "--json"]
    code, doc = _run_json(capsys, argv)
    assert code == 0
    # Dropped after masking: still included, their self masks removed through shares.
    assert doc["included"] == 6
    assert set(doc["dropped_by_transport"].values()) == {"unmasking"}


def test_mismatch_gives_nonzero_exit(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--protocol", "toy-broken", "--clients", "4", "--dim", "8"]
    assert main([*argv, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["matches_plaintext_sum"] is False
    assert main(argv) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert main(["simulate", "--protocol", "toy", "--clients", "4", "--dim", "8"]) == 0


def test_abort_and_bad_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    # Everyone drops before masking: fewer than t remain, the protocol must abort.
    argv = ["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "4"]
    assert main([*argv, "--dropout", "0.8"]) == 3
    assert "aborted" in capsys.readouterr().err
    assert main([*argv, "--bits", "65"]) == 2
    assert main([*argv, "--dropout", "2"]) == 2
    assert main([*argv, "--dropout-round", "no-such-round", "--dropout", "0.2"]) == 2
    assert main([*argv, "--threshold", "1"]) == 2
    assert main(["simulate", "--protocol", "no-such-protocol"]) == 2


def test_seeded_inputs_are_deterministic_and_in_range() -> None:
    make = seeded_inputs(5, 100, 12)
    a, b = make(3), make(3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint32 and int(a.max()) < 2**12
    assert not np.array_equal(make(3), make(4))
    assert seeded_inputs(5, 10, 64)(1).dtype == np.uint64


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "secagg", "simulate", "--protocol", "bonawitz", "--clients", "4",
         "--dim", "16", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["matches_plaintext_sum"] is True


def test_decryption_option_balances_the_committee(capsys: pytest.CaptureFixture[str]) -> None:
    """--decryption balanced: each of 5 members decrypts 3 of 5 blocks (full: all), so a
    member uploads less; the sum still checks; the option is refused elsewhere."""
    uploads = {}
    for mode in ("full", "balanced"):
        argv = ["simulate", "--protocol", "threshold-paillier", "--clients", "6", "--dim"]
        argv += ["300", "--decryption", mode, "--key-bits", "1024", "--json"]
        code, doc = _run_json(capsys, argv)
        assert code == 0 and doc["matches_plaintext_sum"] is True
        assert doc["parameters"]["decryption"] == mode
        rounds = {r["round"]: r for r in doc["costs"]["rounds"]}
        uploads[mode] = rounds["decryption"]["client_bytes_up_max"]
    assert uploads["balanced"] < uploads["full"]
    assert main(["simulate", "--protocol", "bonawitz", "--decryption", "full"]) == 2
    assert main(["cost", "--protocol", "ckks", "--decryption", "balanced"]) == 2
    capsys.readouterr()
    assert main(["cost", "--protocol", "threshold-paillier", "--decryption", "balanced"]) == 0
    assert "decryption = balanced" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("protocol", "clients", "extra"),
    [("bonawitz", "9", []), ("secagg+", "40", []), ("secagg+", "12", ["--degree", "6"])],
)
def test_active_option_adds_the_consistency_round(
    capsys: pytest.CaptureFixture[str], protocol: str, clients: str, extra: list[str]
) -> None:
    """--active: signed keys and the ConsistencyCheck round (absent in semi-honest runs),
    the sum still checks, and the default threshold is the active minimum."""
    rounds = {}
    for active in (False, True):
        argv = ["simulate", "--protocol", protocol, "--clients", clients, "--dim", "64"]
        argv += ["--dropout", "0.1", "--json", *extra, *(["--active"] if active else [])]
        code, doc = _run_json(capsys, argv)
        assert code == 0 and doc["matches_plaintext_sum"] is True
        assert doc["parameters"]["active"] is active
        rounds[active] = {r["round"]: r for r in doc["costs"]["rounds"]}
    assert "consistency_check" in rounds[True]
    assert rounds[True]["consistency_check"]["server"]["messages_up"] > 0
    assert "consistency_check" not in rounds[False] or (
        rounds[False]["consistency_check"]["server"]["messages_up"] == 0
    )
    # Ed25519 verify key + signature ride in every AdvertiseKeys upload.
    up = {a: rounds[a]["advertise_keys"]["server"]["bytes_up"] for a in (False, True)}
    assert up[True] >= up[False] + int(clients) * 64


def test_active_option_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    """Typed refusals (exit 2): a threshold the active mode forbids, a protocol without an
    active mode, and --active with --decryption."""
    base = ["simulate", "--clients", "12", "--dim", "8", "--active"]
    assert main([*base, "--protocol", "bonawitz", "--threshold", "7"]) == 2  # needs t > 8
    assert main([*base, "--protocol", "bonawitz", "--threshold", "9"]) == 0
    assert main([*base, "--protocol", "ckks"]) == 2
    assert main([*base, "--protocol", "threshold-paillier", "--decryption", "full"]) == 2
    err = capsys.readouterr().err
    assert "t > 2n/3" in err and "--active applies to bonawitz and secagg+ only" in err


@pytest.mark.parametrize(("protocol", "clients"), [("bonawitz", 9), ("secagg+", 30)])
def test_cost_predicts_the_active_simulation_bytes(
    capsys: pytest.CaptureFixture[str], protocol: str, clients: int
) -> None:
    """`secagg cost --active` and `secagg simulate --active` share their defaults (one
    source: graph_parameters), so without dropouts the model's bytes are the run's."""
    from secagg.cost import estimate

    argv = ["simulate", "--protocol", protocol, "--clients", str(clients), "--dim", "64"]
    code, doc = _run_json(capsys, [*argv, "--bits", "20", "--active", "--json"])
    assert code == 0
    model = estimate(protocol, clients=clients, dim=64, bits=20, active=True)
    measured = {r["round"]: r["server"]["bytes_up"] for r in doc["costs"]["rounds"]}
    predicted = {name: r["server_bytes_up"] for name, r in model["rounds"].items()}
    assert set(predicted) <= set(measured)
    for name, value in predicted.items():
        assert measured[name] == pytest.approx(value), name
