"""The command line says what it ran and fails clearly (issue 16.4): --version, help with
defaults and no reST, the parameters actually used, JSON errors, a closed pipe, logging."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys

import pytest

import secagg
from secagg.cli import build_parser, main


def _json(argv: list[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = io.StringIO()
    code = main([*argv, "--json"], out)
    return code, json.loads(out.getvalue())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"secagg {secagg.__version__}"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_help_shows_defaults_and_no_rest_markup() -> None:
    parsers = _parsers(build_parser())
    assert len(parsers) == 6  # secagg, simulate, cost, bench, dp, dp plan
    for parser in parsers:
        text = parser.format_help()
        assert "``" not in text, parser.prog
        assert not re.search(r":(mod|func|class|meth|attr|data):", text), parser.prog
        assert "default: None" not in text and "default: False" not in text
    simulate = " ".join(parsers[1].format_help().split())
    for shown in ("--clients CLIENTS", "(default: 100)", "(default: secagg+)", "(default: 0)",
                  "(default: 0.05)", "(default: 2048)", "(default: full)", "(default: warning)",
                  "--corrupt", "--key-bits", "--log-level"):  # fmt: skip
        assert shown in simulate, shown
    assert "bonawitz, secagg+: Shamir threshold t" in simulate
    assert "--ciphertext-bytes" not in simulate and "--ciphertext-bytes" in parsers[2].format_help()


def test_main_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--help"]) == 0
    assert "usage: secagg simulate" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--protocol", "bonawitz", "--clients", "7"], {"threshold": 4, "degree": 6,
                                                       "graph": "complete"}),
        (["--protocol", "bonawitz", "--clients", "9", "--active"], {"threshold": 7,
                                                                   "active": True}),
        (["--protocol", "secagg+", "--clients", "10", "--degree", "4"], {"threshold": 3,
                                                                        "graph": "harary"}),
        (["--protocol", "threshold-paillier", "--clients", "7", "--key-bits", "512"],
         {"threshold": 3, "degree": 5, "key_bits": 512, "decryption": "full"}),
    ],
)  # fmt: skip
def test_the_json_states_the_parameters_actually_used(
    argv: list[str], expected: dict[str, object]
) -> None:
    code, doc = _json(["simulate", "--dim", "8", *argv])
    assert code == 0
    parameters = doc["parameters"]
    for key, value in expected.items():
        assert parameters[key] == value, key
    for key in ("protocol", "clients", "dim", "bits", "threshold", "degree", "dropout",
                "dropout_round", "seed", "notes"):  # fmt: skip
        assert parameters[key] is not None, key


def test_the_parameter_finder_choice_is_reported_and_corrupt_moves_it() -> None:
    _, low = _json(["simulate", "--clients", "60", "--dim", "4", "--corrupt", "0.0"])
    _, high = _json(["simulate", "--clients", "60", "--dim", "4", "--corrupt", "0.3"])
    for doc, corrupt in ((low, 0.0), (high, 0.3)):
        parameters = doc["parameters"]
        assert parameters["corrupt"] == corrupt
        assert 1 <= parameters["degree"] < 59 and parameters["threshold"] >= 2
    assert high["parameters"]["degree"] > low["parameters"]["degree"]
    _, default = _json(["simulate", "--clients", "60", "--dim", "4"])
    assert default["parameters"]["corrupt"] == 0.05
    _, fixed = _json(["simulate", "--clients", "60", "--dim", "4", "--degree", "10"])
    assert "corrupt" not in fixed["parameters"]  # it feeds the finder, which did not run


def test_a_complete_secagg_plus_graph_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _json(["simulate", "--protocol", "secagg+", "--clients", "8", "--dim", "4",
                       "--degree", "7"])  # fmt: skip
    assert code == 0 and doc["parameters"]["graph"] == "complete"
    assert any("complete graph" in note for note in doc["parameters"]["notes"])
    assert main(["simulate", "--clients", "8", "--dim", "4", "--degree", "7"]) == 0
    assert "note: degree k = n - 1 = 7: the complete graph" in capsys.readouterr().out
    _, sparse = _json(["simulate", "--clients", "8", "--dim", "4", "--degree", "4"])
    assert sparse["parameters"]["notes"] == []


def test_the_table_names_the_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "8"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("bonawitz: clients 5, dim 8, bits 32")
    assert "threshold 3" in first and "degree 4" in first and "seed 0" in first


@pytest.mark.parametrize(
    ("argv", "code", "kind"),
    [
        (["simulate", "--clients", "0"], 2, "bad_parameters"),
        (["cost", "--protocol", "ckks", "--active"], 2, "bad_parameters"),
        (["simulate", "--clients", "x"], 2, "usage"),
        (["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "4",
          "--dropout", "0.8"], 3, "aborted"),
    ],
)  # fmt: skip
def test_with_json_errors_are_json_too(
    argv: list[str], code: int, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, doc = _json(argv)
    assert got == code
    assert doc["exit_code"] == code and doc["kind"] == kind and doc["error"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("secagg: ")
    if kind == "bad_parameters":
        assert doc["option"] in err


def test_simulate_takes_key_bits(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _json(["simulate", "--protocol", "threshold-paillier", "--clients", "4",
                       "--dim", "8", "--key-bits", "768"])  # fmt: skip
    assert code == 0 and doc["parameters"]["key_bits"] == 768


def test_log_level_debug_shows_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "4"]
    assert main([*argv, "--log-level", "debug"]) == 0
    err = capsys.readouterr().err
    assert "DEBUG secagg.sim.simulator: bonawitz: round masked_input begins" in err
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # default: warnings only
    assert main([*argv, "--log-level", "DEBUG"]) == 0  # any case


def _python(*argv: str) -> list[str]:
    return [sys.executable, "-m", "secagg", *argv]


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "8"],
        ["cost", "--protocol", "secagg+"],
        ["simulate", "--help"],
    ],
)
def test_a_reader_that_closes_the_pipe_is_not_an_error(argv: list[str]) -> None:
    """The reader closes its end before secagg writes: EPIPE on the first write. No
    traceback, and the exit code is the command's own (0)."""
    proc = subprocess.Popen(
        _python(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


def test_head_dash_1() -> None:
    """``secagg simulate ... | head -1`` in a shell (pipefail): the first line, exit 0,
    nothing on stderr. (Whether the write meets EPIPE here depends on timing and sizes;
    the test above closes the pipe first, so that it always does.)"""
    command = " ".join(_python("simulate", "--protocol", "bonawitz", "--clients", "5", "--dim",
                               "8"))  # fmt: skip
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -1"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("bonawitz: clients 5"), proc.stderr
    assert proc.stderr == ""


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from secagg.cli import simulate as simulate_command

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate_command, "simulate", interrupted)
    assert main(["simulate", "--protocol", "bonawitz", "--clients", "4", "--dim", "4"]) == 130
    assert capsys.readouterr().err == "secagg: interrupted\n"
