"""``make demo`` (examples/fedavg_digits.py) runs, agrees with plain FedAvg, reports clipping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("clip", [None, "0.5"])
def test_the_demo_runs_and_reports_clipped_clients(clip: str | None, tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    args = ["--rounds", "2", "--clients", "4", "--epochs", "1", "--no-progress",
            "--json", str(out)] + (["--clip", clip] if clip else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "fedavg_digits.py"), *args],
                         capture_output=True, text=True, timeout=300, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK" in run.stdout and "clipped" in run.stdout
    rounds = json.loads(out.read_text())["rounds"]
    assert len(rounds) == 2
    clipped = [len(r["clipped"]) for r in rounds]
    if clip is None:
        assert clipped == [0, 0] and "clip" not in run.stderr
    else:
        assert all(c > 0 for c in clipped)
        assert "clients were clipped" in run.stderr  # the library's logging warning
    for r in rounds:
        assert isinstance(r["total_examples"], int) and r["max_resolution"] < 1e-5
