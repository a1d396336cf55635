"""The shipped suite: ``secagg bench --quick`` from an installed wheel, and a complete sdist.

The wheel is built from a copy of the source tree (setuptools' PEP 517 hooks: offline, no
build isolation), installed with ``pip install --no-deps --target`` (this interpreter's
environment has the dependencies) and run from a directory outside the checkout with only
the install on PYTHONPATH: secagg must come from the wheel, and the default output
directory is ``./secagg-bench`` of that directory. The same run is CI's run of the quick
plan, so its document, tables and plots are checked here too, and so is re-rendering the
report from its JSON (the hand-written notes survive).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from secagg.bench.report import NOTES_MARKER, PLOTS
from secagg.bench.suite import QUICK
from secagg.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = {"bonawitz", "secagg+", "threshold-paillier", "ckks", "threshold-ckks"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CACHES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "secagg-bench",
)


def _not_source(directory: str, names: list[str]) -> set[str]:
    """What a copy of the source tree leaves out: caches, builds and benchmark results."""
    skipped = set(CACHES(directory, names))
    if Path(directory).name == "benchmarks":
        skipped.add("results")
    return skipped


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def _build(kind: str, tmp_path: Path) -> Path:
    """Build the ``sdist`` or the ``wheel`` from a copy of the source tree (the checkout
    stays clean: setuptools writes build/ and *.egg-info beside the sources)."""
    source = tmp_path / "source"
    if not source.exists():
        shutil.copytree(ROOT, source, ignore=_not_source)
    out = tmp_path / "dist"
    hook = "import sys; from setuptools import build_meta as b; print(b.build_%s(sys.argv[1]))"
    hook %= kind
    name = _run([sys.executable, "-c", hook, str(out)], cwd=source).strip().splitlines()[-1]
    return out / name


def _tracked(path: str) -> list[str]:
    """Files git tracks under ``path`` that exist in the working tree; skips outside a git
    checkout (an unpacked sdist has nothing to compare with)."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", path], cwd=ROOT, capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        pytest.skip("git is not installed: no list of tracked files to compare with")
    if proc.returncode != 0:
        pytest.skip("not a git checkout (e.g. an unpacked sdist): no tracked files to compare")
    names = [n for n in proc.stdout.decode().split("\0") if n]
    return [n for n in names if (ROOT / n).is_file()]


def test_the_sdist_holds_every_tracked_test_file_and_the_docs(tmp_path: Path) -> None:
    """pytest must pass from an unpacked sdist: it needs every test, helper, conftest,
    ``__init__.py`` and data file, plus what the tests read (README, docs, examples)."""
    tracked = _tracked("tests")
    sdist = _build("sdist", tmp_path)
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert not sorted(set(tracked) - names)
    for required in ("README.md", "BENCHMARKS.md", "LICENSE", "Makefile", "pyproject.toml"):
        assert required in names
    for tree in ("docs", "examples", "benchmarks", "secagg/bench/data"):
        assert any(name.startswith(tree + "/") for name in names), tree
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_bench_quick_runs_from_the_installed_wheel(tmp_path: Path) -> None:
    wheel = _build("wheel", tmp_path)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
    _run([*pip, "--target", str(site), str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    origin = _run([sys.executable, "-c", "import secagg; print(secagg.__file__)"], elsewhere, env)
    assert Path(origin.strip()).resolve().is_relative_to(site.resolve())
    stdout = _run(
        [sys.executable, "-m", "secagg", "bench", "--quick", "--no-progress"], elsewhere, env
    )
    out = elsewhere / "secagg-bench"
    document = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    _check_every_protocol_is_measured_and_correct(document)
    _check_studies_flower_and_scale(document)
    _check_markdown_and_plots(out, stdout)
    _check_regeneration_keeps_hand_written_notes(out, tmp_path)


def _check_every_protocol_is_measured_and_correct(document: dict[str, Any]) -> None:
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
    ckks = [r for r in runs if r["protocol"] == "ckks"]
    assert all(r["ckks_ciphertext_bytes"]["uploads_mean"] > 0 for r in ckks)


def _check_studies_flower_and_scale(document: dict[str, Any]) -> None:
    studies = document["studies"]
    assert len(studies["n"]) == 2 * len(QUICK.n_values)
    assert len(studies["m"]) == 2 * len(QUICK.m_values)
    assert all(key in document["runs"] for keys in studies.values() for key in keys)
    flowered = [r for r in document["runs"].values() if r["protocol"] in ("bonawitz", "secagg+")]
    assert all(r["flower"]["client_seconds"] > 0 for r in flowered)
    assert any(r["flower"]["server_seconds"] for r in flowered if r["degree"] == r["n"] - 1)
    assert any(r["flower"]["server_seconds"] for r in flowered if r["degree"] < r["n"] - 1)
    assert not [
        r
        for r in document["runs"].values()
        if r["protocol"] in ("threshold-paillier", "ckks") and "flower" in r
    ]
    memory = document["scale"]["memory"][0]["memory"]
    assert memory["server_peak_bytes"] > 0 and memory["client_peak_bytes_max"] > 0
    assert document["scale"]["ladder"]
    assert document["meta"]["plan"] == "quick"
    assert document["meta"]["command"] == "secagg bench --quick"
    assert document["floors"]["per_agreement_seconds"] > 0


def _check_markdown_and_plots(out: Path, stdout: str) -> None:
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


def _check_regeneration_keeps_hand_written_notes(out: Path, tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    notes = "\nThe lead's paragraph: kept verbatim.\n"
    report.write_text("# stale\n" + NOTES_MARKER + notes, encoding="utf-8")
    argv = ["bench", "--from-json", str(out / "bench.json"), "--markdown", str(report)]
    assert main([*argv, "--plots", str(tmp_path / "img"), "--no-progress"], io.StringIO()) == 0
    text = report.read_text(encoding="utf-8")
    assert "# stale" not in text and "## Summary" in text
    assert text.endswith(NOTES_MARKER + notes)
    assert (tmp_path / "img" / "scale.png").read_bytes().startswith(PNG_MAGIC)
