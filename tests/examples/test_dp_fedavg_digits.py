"""``examples/dp_fedavg_digits.py --quick``: the distributed-DP FedAvg runs end to end
through real SecAgg+ sessions, matches central FedAvg without noise, spends exactly its
budget, and uploads the byte counts of the packing rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from secagg.dp import RandomSource
from tests.examples.conftest import load_example


def test_quick_run_reports_accuracy_privacy_and_bytes(tmp_path: Path) -> None:
    example = load_example("dp_fedavg_digits")
    out, png = tmp_path / "dp.json", tmp_path / "dp.png"
    code = example.main(["--quick", "--epsilons", "inf", "10", "--bits", "16", "20",
                         "--json", str(out), "--png", str(png)])
    assert code == 0
    assert png.stat().st_size > 1000
    doc = json.loads(out.read_text())
    rows = {(r["epsilon"], r["bits"]): r for r in doc["results"]}
    assert set(rows) == {(e, b) for e in (None, 10.0) for b in (None, 16, 20)}
    # Without noise, 20-bit compression through SecAgg+ trains like float FedAvg with the
    # same clipping (a wrong or wrapped sum would not).
    assert rows[None, 20]["accuracy_mean"] == pytest.approx(rows[None, None]["accuracy_mean"],
                                                            abs=0.01)
    assert rows[None, 16]["accuracy_mean"] > 0.8
    for bits in (16, 20):
        private = rows[10.0, bits]
        assert private["epsilon_spent"] == pytest.approx(10.0, rel=1e-6)
        assert 1.0 <= private["noise_multiplier"] / private["central_noise_multiplier"] < 1.1
        assert private["accuracy_mean"] > 0.5
    assert rows[10.0, None]["noise_multiplier"] == pytest.approx(
        rows[10.0, 16]["central_noise_multiplier"])
    sizes = {b["bits"]: b for b in doc["bytes"]}
    assert sizes[32]["payload_bytes"] == 650 * 4
    assert sizes[16]["payload_bytes"] == 650 * 2 and sizes[16]["payload_ratio"] == 2.0
    assert sizes[20]["payload_bytes"] == math.ceil(650 * 20 / 8)
    for b in (16, 20):
        assert 1.0 < sizes[b]["session_ratio"] < sizes[b]["message_ratio"] <= sizes[b][
            "payload_ratio"]


def test_central_gaussian_is_standard_normal() -> None:
    example = load_example("dp_fedavg_digits")
    values = example.gaussian(RandomSource(), 200_000)
    assert values.shape == (200_000,) and np.isfinite(values).all()
    # 200K draws: the mean's sd is 0.0022, the variance's 0.0032; 5 sigma margins.
    assert abs(float(values.mean())) < 0.012
    assert abs(float(values.var()) - 1.0) < 0.016
    assert abs(float(np.mean(np.abs(values) > 1.96)) - 0.05) < 0.0025
