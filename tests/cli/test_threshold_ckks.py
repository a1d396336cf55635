"""``secagg simulate`` and ``secagg cost`` run threshold CKKS through its registry spec,
and check every flag against its option table (issue 15.5): ranges from the config itself,
the other protocols' flags refused with the reason, exit 2 and one line."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.cli import main
from secagg.cost import estimate
from secagg.errors import ConfigurationError
from secagg.protocols.options import OptionError, flag_of
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.protocols.threshold_ckks.config import choose_parameters
from secagg.protocols.threshold_ckks.spec import make_config
from secagg.protocols.threshold_ckks.spec_options import max_bits, max_committee
from tests.cli.test_flags import ONE_STYLE, REFUSED


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


# -- every flag checked (issue 15.5) -------------------------------------------------------

_SIM = ["simulate", "--protocol", "threshold-ckks"]
_COST = ["cost", "--protocol", "threshold-ckks"]


@pytest.mark.parametrize(
    ("argv", "flag", "range_text"),
    [
        ([*_SIM, "--degree", "-3"], "--degree", "1 <= --degree <= 17 (the largest committee"),
        ([*_SIM, "--degree", "0"], "--degree", "1 <= --degree <= 17"),
        ([*_COST, "--degree", "18"], "--degree", "1 <= --degree <= 17"),
        ([*_SIM, "--clients", "4", "--degree", "5"], "--degree",
         "1 <= --degree <= 4 (the committee is drawn from the --clients clients)"),
        ([*_COST, "--clients", "100000", "--degree", "17"], "--degree", "1 <= --degree <= 16"),
        ([*_SIM, "--threshold", "0"], "--threshold",
         "1 <= --threshold <= 5 (at most the committee size, 5 = min(5, --clients))"),
        ([*_COST, "--threshold", "-1"], "--threshold", "1 <= --threshold <= 5"),
        ([*_SIM, "--clients", "3", "--threshold", "4"], "--threshold",
         "1 <= --threshold <= 3 (at most the committee size, 3 = min(5, --clients))"),
        ([*_SIM, "--degree", "3", "--threshold", "4"], "--threshold",
         "1 <= --threshold <= 3 (at most the committee size, 3)"),
        ([*_SIM, "--bits", "0"], "--bits", "1 <= --bits <= 54"),
        ([*_SIM, "--clients", "5", "--bits", "62"], "--bits", "1 <= --bits <= 58"),
        ([*_COST, "--clients", "1000", "--bits", "52"], "--bits", "1 <= --bits <= 51"),
        ([*_COST, "--clients", "1000000", "--degree", "16", "--bits", "42"], "--bits",
         "1 <= --bits <= 41 (the widest that fits a committee of 16 and 1000000 summands"),
        ([*_SIM, "--clients", "1"], "--clients", "2 <= --clients <="),
        ([*_COST, "--clients", "10000000"], "--clients", "2 <= --clients <= "),
        ([*_SIM, "--dim", "0"], "--dim", "1 <= --dim <="),
        ([*_SIM, "--dropout", "1.5"], "--dropout", "0 <= --dropout <= 1"),
        ([*_COST, "--dropout", "nan"], "--dropout", "0 <= --dropout <= 1"),
    ],
)  # fmt: skip
def test_a_value_out_of_range_names_the_value_and_the_range(
    argv: list[str], flag: str, range_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main(argv, out) == 2 and out.getvalue() == ""
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    match = ONE_STYLE.match(err.strip())
    assert match is not None and match.group(1) == flag, err
    assert f"threshold-ckks takes {range_text}" in err, err


@pytest.mark.parametrize(
    ("flags", "flag", "reason"),
    [
        (["--active"], "--active", "has no active (malicious-server) mode"),
        (["--corrupt", "0.1"], "--corrupt", "SecAgg+ parameter finder"),
        (["--key-bits", "2048"], "--key-bits", "no Paillier key"),
        (["--decryption", "full"], "--decryption", "one decryption share per ciphertext"),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "cost"])
def test_a_flag_threshold_ckks_does_not_take_is_refused_with_the_reason(
    command: str, flags: list[str], flag: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main([command, "--protocol", "threshold-ckks", *flags], out) == 2
    err = capsys.readouterr().err
    assert out.getvalue() == "" and err.count("\n") == 1, err
    assert err.startswith(f"secagg: bad parameters: {flag} does not apply to threshold-ckks: ")
    assert reason in err and REFUSED.match(err.strip()), err


def test_ciphertext_bytes_is_refused_by_cost_and_errors_are_json_under_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    assert main([*_COST, "--ciphertext-bytes", "70000"], out) == 2
    assert "follow exactly from the chosen parameters" in capsys.readouterr().err
    for argv in ([*_COST, "--active", "--json"], [*_SIM, "--degree", "-3", "--json"]):
        out = io.StringIO()
        assert main(argv, out) == 2
        document = json.loads(out.getvalue())
        assert "error" in document and "threshold-ckks" in json.dumps(document), document


def test_simulate_reports_what_it_used(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(*_SIM, "--clients", "4", "--dim", "16", "--json")
    assert code == 0, text
    used = json.loads(text)["parameters"]
    assert (used["degree"], used["threshold"], used["committee"]) == (4, 3, [1, 2, 3, 4])
    assert used["poly_modulus_degree"] == 8192 and used["limbs"] >= 1


def test_the_limits_are_the_configs_own() -> None:
    """The table's bounds are exactly where the parameter choice starts to fail."""
    for clients in (2, 7, 1000):
        m = max_committee(clients)
        assert 1 <= m <= clients
        choose_parameters(m, clients, 1)
        if m < clients:
            with pytest.raises(ConfigurationError):
                choose_parameters(m + 1, clients, 1)
        b = max_bits(m, clients)
        choose_parameters(m, clients, b)
        with pytest.raises(ConfigurationError):
            choose_parameters(m, clients, b + 1)


_VALUES = st.one_of(st.integers(-2, 64), st.sampled_from([2**31, -(2**40)]))


@given(
    clients=st.one_of(st.integers(-1, 40), st.sampled_from([300, 5000])),
    degree=st.none() | _VALUES,
    threshold=st.none() | _VALUES,
    bits=_VALUES,
)
def test_the_table_accepts_exactly_what_the_config_accepts(
    clients: int, degree: int | None, threshold: int | None, bits: int
) -> None:
    """A checked option set builds a config; a refused one is refused by the config too (or
    by the registry's client numbering) - never a crash, never the other way round."""
    spec = get_protocol("threshold-ckks")
    values = {"clients": clients, "dim": 4, "bits": bits, "degree": degree,
              "threshold": threshold}  # fmt: skip
    try:
        spec.check_options(values, spell=flag_of)
    except OptionError:
        accepted = False
    else:
        accepted = True
    params = SimulationParams(clients=clients, dim=4, bits=bits, threshold=threshold,
                              degree=degree)  # fmt: skip
    try:
        make_config(params)
    except ConfigurationError:
        built = False
    else:
        built = True
    assert accepted == built, (values, accepted, built)
