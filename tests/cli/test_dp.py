"""``secagg dp plan``: the plan's figures, as text and JSON, and one-line errors."""

from __future__ import annotations

import io
import json

import pytest

from secagg.cli import main
from secagg.dp import Compression, DistributedDP

NOISY = ("dp", "plan", "--clients", "20", "--dim", "1000", "--epsilon", "4", "--delta",
         "1e-5", "--rounds", "10", "--sampling-rate", "0.5", "--bits", "16", "--clip", "0.5")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def noisy_json() -> dict[str, object]:
    code, text = run(*NOISY, "--mechanism", "dgauss", "--json")
    assert code == 0
    document: dict[str, object] = json.loads(text)
    return document


def test_json_is_the_plan_with_its_comparisons(noisy_json: dict[str, object]) -> None:
    plan = DistributedDP(epsilon=4, delta=1e-5, rounds=10, sampling_rate=0.5, bits=16,
                         clip=0.5, mechanism="dgauss", expected_clients=20).plan(1000)
    for key, value in plan.to_dict().items():
        assert noisy_json[key] == pytest.approx(value, rel=1e-9) if isinstance(
            value, float) else noisy_json[key] == value
    central = plan.central_gaussian_noise_multiplier
    assert plan.noise_multiplier is not None and central is not None
    assert noisy_json["noise_multiplier_ratio"] == pytest.approx(plan.noise_multiplier / central)
    assert noisy_json["upload_ratio_vs_32bit"] == pytest.approx(4000 / 2048)
    assert plan.epsilon is not None and plan.epsilon <= 4 * (1 + 1e-6)
    assert noisy_json["wrap_probability"] <= 1e-4  # type: ignore[operator]


def test_text_names_every_figure() -> None:
    code, text = run(*NOISY)
    assert code == 0
    for label in ("noise_multiplier", "central_gaussian_noise_multiplier",
                  "ratio (distributed / central)", "epsilon", "scale", "wrap_probability",
                  "bytes per client upload", "32-bit SecAgg+: 4000 B", "1.95x smaller"):
        assert label in text


def test_without_epsilon_the_plan_is_compression_only() -> None:
    code, text = run("dp", "plan", "--clients", "10", "--dim", "100", "--bits", "12",
                     "--json")
    assert code == 0
    document = json.loads(text)
    assert document == json.loads(json.dumps(
        {**Compression(bits=12, clip=1.0, expected_clients=10).plan(100).to_dict(),
         "noise_multiplier_ratio": None, "upload_ratio_vs_32bit": 400 / 192,
         "mean_error_rms": document["mean_error_rms"]}))
    assert "compression only" in run("dp", "plan", "--clients", "10", "--dim", "100")[1]


@pytest.mark.parametrize(("flags", "needle"), [
    (("--epsilon", "0"), "--epsilon must be > 0, got 0.0"),
    (("--delta", "1.5"), "--delta must be in (0, 1), got 1.5"),
    (("--sampling-rate", "0"), "--sampling-rate must be in (0, 1]"),
    (("--bits", "4"), "--bits=4 is too few for 20 clients: the rule is bits >= log2(clients)"),
    (("--clip", "-1"), "--clip must be > 0"),
    (("--min-clients", "30"), "--min-clients=30 must be <= --clients=20"),
    (("--mechanism", "laplace"), "--mechanism: invalid choice: 'laplace'"),
    (("--rounds", "x"), "--rounds 'x' is not an integer"),
])
def test_bad_values_exit_2_with_one_line(flags: tuple[str, ...], needle: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(NOISY)
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, text = run(*argv, "--json")
    assert code == 2
    error = json.loads(text)
    assert error["exit_code"] == 2 and needle in error["error"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("secagg: ") and needle in lines[0]


@pytest.mark.parametrize(("argv", "needle"), [
    (("--clients", "1", "--dim", "10"), "--clients 1 is out of range"),
    (("--clients", "5", "--dim", "0"), "--dim 0 is out of range"),
    (("--clients", "5", "--dim", "10", "--delta", "1e-5"), "--delta needs --epsilon"),
    (("--clients", "5", "--dim", "10", "--epsilon", "1"), "--delta is required with --epsilon"),
    (("--dim", "10",), "the following arguments are required: --clients"),
])
def test_missing_or_inconsistent_flags(argv: tuple[str, ...], needle: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run("dp", "plan", *argv)
    assert code == 2 and text == ""
    assert needle in capsys.readouterr().err
