"""Every flag is checked for the protocol it runs (issue 15.5, 16.4).

A flag the protocol does not take is refused with the reason and the protocols that take
it; a value out of range is refused naming the value and the range, in one style; exit 2
and one line on stderr, never a traceback, whatever the flags (property test).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.cli import main

ONE_STYLE = re.compile(
    r"^secagg: bad parameters: (--[a-z-]+) (\S+) is out of range: (\S+) takes "
    r"(-?[\d.e+]+ <= \1 <= -?[\d.e+]+|\1 >= -?[\d.]+)( \(.*\))?(, .*)?$"
)
REFUSED = re.compile(
    r"^secagg: bad parameters: (--[a-z-]+) does not apply to (\S+)[: ].*"
    r"\((\1 applies to .* only|no protocol takes it)\)$"
)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out)
    return code, out.getvalue(), capsys.readouterr().err


# -- the cases the issue names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        # issue 15.5: each of these used to exit 0 running something else
        (["simulate", "--protocol", "threshold-paillier", "--degree", "-3"], "--degree"),
        (["simulate", "--protocol", "ckks", "--threshold", "0"], "--threshold"),
        (["cost", "--protocol", "threshold-paillier", "--degree", "-3"], "--degree"),
        (["cost", "--protocol", "ckks", "--threshold", "0"], "--threshold"),
        # issue 16.4: three styles for --clients 0, 1, 2; two ranges for --dropout
        (["simulate", "--clients", "0"], "--clients"),
        (["simulate", "--clients", "1"], "--clients"),
        (["simulate", "--clients", "2"], "--clients"),
        (["simulate", "--protocol", "bonawitz", "--clients", "1"], "--clients"),
        (["cost", "--clients", "1"], "--clients"),
        (["simulate", "--dropout", "2"], "--dropout"),
        (["simulate", "--protocol", "bonawitz", "--dropout", "-0.1"], "--dropout"),
        (["simulate", "--protocol", "bonawitz", "--dropout", "nan"], "--dropout"),
        (["cost", "--protocol", "threshold-paillier", "--dropout", "1.5"], "--dropout"),
        (["simulate", "--protocol", "secagg+", "--dropout", "0.95"], "--dropout"),
        # every numeric flag
        (["simulate", "--dim", "0"], "--dim"),
        (["cost", "--dim", "-5"], "--dim"),
        (["simulate", "--bits", "65"], "--bits"),
        (["simulate", "--bits", "0"], "--bits"),
        (["simulate", "--protocol", "ckks", "--clients", "1000", "--bits", "40"], "--bits"),
        (["simulate", "--protocol", "bonawitz", "--clients", "10", "--threshold", "5"],
         "--threshold"),
        (["simulate", "--protocol", "bonawitz", "--clients", "10", "--threshold", "11"],
         "--threshold"),
        (["simulate", "--protocol", "secagg+", "--clients", "10", "--degree", "0"], "--degree"),
        (["simulate", "--protocol", "secagg+", "--clients", "10", "--degree", "10"], "--degree"),
        (["simulate", "--protocol", "secagg+", "--clients", "11", "--degree", "3"], "--degree"),
        (["simulate", "--protocol", "secagg+", "--clients", "10", "--degree", "4",
          "--threshold", "6"], "--threshold"),
        (["simulate", "--protocol", "secagg+", "--corrupt", "0.95"], "--corrupt"),
        (["simulate", "--protocol", "secagg+", "--corrupt", "-1"], "--corrupt"),
        (["simulate", "--protocol", "threshold-paillier", "--clients", "10", "--degree", "11"],
         "--degree"),
        (["simulate", "--protocol", "threshold-paillier", "--threshold", "6"], "--threshold"),
        (["simulate", "--protocol", "threshold-paillier", "--key-bits", "256"], "--key-bits"),
        (["simulate", "--protocol", "threshold-paillier", "--key-bits", "1025"], "--key-bits"),
        (["cost", "--protocol", "ckks", "--ciphertext-bytes", "5"], "--ciphertext-bytes"),
        (["simulate", "--seed", "-1"], "--seed"),
    ],
)  # fmt: skip
def test_a_value_out_of_range_names_the_value_and_the_range(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    match = ONE_STYLE.match(err.strip())
    assert match is not None, err
    assert match.group(1) == flag


@pytest.mark.parametrize(
    ("argv", "flag", "reason"),
    [
        (["simulate", "--protocol", "bonawitz", "--degree", "0"], "--degree", "complete graph"),
        (["simulate", "--protocol", "bonawitz", "--degree", "-1"], "--degree", "complete graph"),
        (["simulate", "--protocol", "bonawitz", "--degree", "5"], "--degree", "complete graph"),
        (["cost", "--protocol", "bonawitz", "--degree", "5"], "--degree", "complete graph"),
        (["simulate", "--protocol", "bonawitz", "--corrupt", "0.1"], "--corrupt", "finder"),
        (["simulate", "--protocol", "secagg+", "--decryption", "full"], "--decryption",
         "no decryption committee"),
        (["simulate", "--protocol", "ckks", "--decryption", "full"], "--decryption",
         "single key"),
        (["simulate", "--protocol", "ckks", "--active"], "--active", "no active"),
        (["simulate", "--protocol", "threshold-paillier", "--active"], "--active", "no active"),
        (["cost", "--protocol", "ckks", "--active"], "--active", "no active"),
        (["cost", "--protocol", "threshold-paillier", "--active"], "--active", "no active"),
        (["simulate", "--protocol", "secagg+", "--key-bits", "2048"], "--key-bits",
         "no Paillier key"),
        (["simulate", "--protocol", "ckks", "--key-bits", "2048"], "--key-bits", "no Paillier"),
        (["cost", "--protocol", "bonawitz", "--ciphertext-bytes", "70000"],
         "--ciphertext-bytes", "CKKS"),
        (["simulate", "--protocol", "secagg+", "--degree", "4", "--corrupt", "0.1"],
         "--corrupt", "when --degree is given"),
    ],
)  # fmt: skip
def test_a_flag_the_protocol_does_not_take_is_refused_with_the_reason(
    argv: list[str], flag: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"secagg: bad parameters: {flag} does not apply to "), err
    assert reason in err
    if "when --degree" not in reason:
        assert REFUSED.match(err.strip()), err


def test_the_refusal_names_the_protocols_that_take_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # (Test modules register toy protocols too: they may join the list, at its end.)
    _, _, err = _run(["simulate", "--protocol", "ckks", "--active"], capsys)
    assert "(--active applies to bonawitz and secagg+ only)" in err
    _, _, err = _run(["simulate", "--protocol", "bonawitz", "--degree", "3"], capsys)
    assert re.search(r"\(--degree applies to secagg\+, threshold-paillier(,| and) ckks", err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", "--clients", "x"], "--clients 'x' is not an integer"),
        (["simulate", "--dropout", "lots"], "--dropout 'lots' is not a number"),
        (["cost", "--degree", "2.5"], "--degree '2.5' is not an integer"),
        (["simulate", "--protocol", "nope"], "--protocol 'nope' is not a protocol: choose one"),
        (["simulate", "--protocol", "threshold-paillier", "--decryption", "half"],
         "--decryption 'half' is not one of full, balanced"),
        (["simulate", "--dropout-round", "later"], "--dropout-round 'later' is not a round of"),
        (["simulate", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["simulate", "--clients"], "--clients: expected one argument"),
        (["nothing"], "invalid choice"),
    ],
)  # fmt: skip
def test_parse_errors_are_one_line_in_the_same_voice(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("secagg: bad parameters: "), err
    assert expected in err


def test_valid_flags_still_run(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["simulate", "--protocol", "bonawitz", "--clients", "5", "--dim", "8", "--threshold", "3"],
        ["simulate", "--protocol", "secagg+", "--clients", "9", "--dim", "8", "--degree", "4"],
        ["simulate", "--protocol", "secagg+", "--clients", "20", "--dim", "8", "--corrupt", "0.2"],
        ["cost", "--protocol", "threshold-paillier", "--degree", "3", "--threshold", "2"],
        ["cost", "--protocol", "ckks", "--threshold", "1", "--ciphertext-bytes", "70000"],
    ):
        code, _, err = _run(argv, capsys)
        assert code == 0, (argv, err)


# -- random flags: never a traceback -------------------------------------------------------

_INTS = st.one_of(st.integers(-3, 40), st.integers(-(2**70), 2**70))
_FLOATS = st.one_of(
    st.floats(-0.5, 1.5), st.sampled_from([float("nan"), float("inf"), -0.0, 0.85, 1.0])
)
_JUNK = st.sampled_from(["x", "", "1e3", "0x10", "--", "½", "1_0"])


def _value(kind: st.SearchStrategy[object]) -> st.SearchStrategy[str]:
    return st.one_of(kind.map(str), _JUNK)


_FLAGS: dict[str, st.SearchStrategy[str]] = {
    "--clients": _value(st.integers(-2, 12)),
    "--dim": _value(st.integers(-2, 16)),
    "--bits": _value(st.integers(-1, 70)),
    "--dropout": _value(_FLOATS),
    "--threshold": _value(_INTS),
    "--degree": _value(_INTS),
    "--corrupt": _value(_FLOATS),
    "--key-bits": _value(st.sampled_from([512, 511, 0, -512, 10**6, 2**80])),
    "--decryption": st.sampled_from(["full", "balanced", "none"]),
    "--seed": _value(st.sampled_from([0, 1, -1, 2**64, 2**64 - 1])),
}
_SWITCHES = ["--active", "--json"]


@st.composite
def _command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(["simulate", "cost"]))
    argv = [command, "--protocol", draw(st.sampled_from(
        ["bonawitz", "secagg+", "threshold-paillier", "ckks", "threshold-ckks",
         "other"]))]  # fmt: skip
    argv += ["--clients", draw(st.integers(2, 8).map(str)), "--dim", "8"]
    if "threshold-paillier" in argv:
        argv += ["--key-bits", "512"]  # a real key of the default size takes seconds
    for flag in draw(st.lists(st.sampled_from(sorted(_FLAGS)), max_size=4, unique=True)):
        if flag == "--key-bits" and command == "simulate":
            continue
        argv += [flag, draw(_FLAGS[flag])]
    argv += [s for s in _SWITCHES if draw(st.booleans())]
    return argv


@settings(max_examples=25, deadline=None)
@given(argv=_command_lines())
def test_random_flags_never_give_a_traceback(argv: list[str]) -> None:
    """Whatever the flags: an exit code in {0, 1, 2, 3}, no exception escapes, at most one
    line on stderr, and with --json exactly one JSON document on stdout."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stderr
    sys.stderr = err
    try:
        code = main(argv, out)
    finally:
        sys.stderr = saved
    assert code in (0, 1, 2, 3), (argv, code)
    assert err.getvalue().count("\n") <= 1, (argv, err.getvalue())
    if code:
        assert err.getvalue().startswith("secagg: "), (argv, err.getvalue())
    if "--json" in argv:
        document = json.loads(out.getvalue())
        assert ("error" in document) == (code == 2 or code == 3), (argv, document)


def test_a_bad_flag_in_a_real_process_is_one_line_without_traceback() -> None:
    for argv in (
        ["simulate", "--protocol", "threshold-paillier", "--degree", "-3"],
        ["simulate", "--clients", "x"],
        ["cost", "--protocol", "ckks", "--active", "--json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "secagg", *argv],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
