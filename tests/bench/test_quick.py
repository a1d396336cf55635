"""CI runs the cost suite's --quick settings: JSON, markdown and plots, well-formed."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import NOTES_MARKER, PLOTS
from benchmarks.suite import QUICK
from secagg.bench_cli import main

PROTOCOLS = {"bonawitz", "secagg+", "threshold-paillier", "ckks"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    stdout = io.StringIO()
    assert main(["bench", "--quick", "--out", str(out), "--no-progress"], stdout) == 0
    document = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    return out, document, stdout.getvalue()


def test_every_protocol_is_measured_and_correct(
    quick_run: tuple[Path, dict[str, Any], str],
) -> None:
    _, document, _ = quick_run
    runs = list(document["runs"].values())
    assert {r["protocol"] for r in runs} == PROTOCOLS
    for run in runs:
        assert run["matches"], run["key"]
        assert run["bytes_check"] in ("exact", "expectation"), run["key"]
        assert run["rounds"], run["key"]
        for row in run["rounds"]:
            assert row["server_bytes_up"] > 0 and row["server_bytes_down"] > 0
            assert row["server_seconds"] >= 0 and row["client_seconds_mean"] >= 0
        assert run["floor"]["client_seconds"] > 0 and run["floor"]["server_seconds"] > 0
    # Without dropouts a byte gap could only be a model error: there is none.
    assert all(r["bytes_check"] == "exact" for r in runs if not r["dropouts"])


def test_studies_flower_and_scale_are_filled(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    _, document, _ = quick_run
    studies = document["studies"]
    assert len(studies["n"]) == 2 * len(QUICK.n_values)
    assert len(studies["m"]) == 2 * len(QUICK.m_values)
    assert all(key in document["runs"] for keys in studies.values() for key in keys)
    flowered = [r for r in document["runs"].values() if r["protocol"] in ("bonawitz", "secagg+")]
    assert all(r["flower"]["client_seconds"] > 0 for r in flowered)
    assert any(r["flower"]["server_seconds"] for r in flowered if r["degree"] == r["n"] - 1)
    assert any(r["flower"]["server_seconds"] for r in flowered if r["degree"] < r["n"] - 1)
    memory = document["scale"]["memory"][0]["memory"]
    assert memory["server_peak_bytes"] > 0 and memory["client_peak_bytes_max"] > 0
    assert document["scale"]["ladder"]
    assert document["meta"]["plan"] == "quick"
    assert document["floors"]["per_agreement_seconds"] > 0


def test_markdown_has_the_tables_and_plots(quick_run: tuple[Path, dict[str, Any], str]) -> None:
    out, _, stdout = quick_run
    text = (out / "BENCHMARKS.md").read_text(encoding="utf-8")
    for heading in (
        "# Benchmarks",
        "## Summary",
        "## Costs per round and party",
        "## Versus the number of clients n",
        "## Versus the vector length m",
        "## Versus the dropout rate",
        "## Against Bonawitz et al. 2017",
        "## Threshold HE",
        "## Scale study",
        "## Floors measured in this run",
        "at the start of the run and",  # the run's load average is stated
    ):
        assert heading in text
    assert text.rstrip().endswith(NOTES_MARKER)
    for name in PLOTS:
        assert f"(img/{name})" in text
        data = (out / "img" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert "bytes exact in" in stdout


def test_regeneration_keeps_hand_written_notes(
    quick_run: tuple[Path, dict[str, Any], str], tmp_path: Path
) -> None:
    out, _, _ = quick_run
    report = tmp_path / "BENCHMARKS.md"
    notes = "\nThe lead's paragraph: kept verbatim.\n"
    report.write_text("# stale\n" + NOTES_MARKER + notes, encoding="utf-8")
    argv = ["bench", "--from-json", str(out / "bench.json"), "--markdown", str(report)]
    assert main([*argv, "--plots", str(tmp_path / "img"), "--no-progress"], io.StringIO()) == 0
    text = report.read_text(encoding="utf-8")
    assert "# stale" not in text and "## Summary" in text
    assert text.endswith(NOTES_MARKER + notes)
    assert (tmp_path / "img" / "scale.png").read_bytes().startswith(PNG_MAGIC)
