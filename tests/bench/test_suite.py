"""The suite without flwr, its dispatch through the registry, the command's hint.

Without flwr the suite runs everything else, leaves the Flower side-by-side out and says
once how to add it; a tiny plan keeps this fast. Every protocol-specific step of a run
(configuration, model, calibration, floor, observer) comes from the spec and its cost
model, so each built-in protocol's record carries what its cost model says.
"""

from __future__ import annotations

import io
import sys
from dataclasses import replace

import pytest

from secagg.bench import flower
from secagg.bench.report import console_summary, render_markdown
from secagg.bench.suite import QUICK, run_suite
from secagg.cli import main

# Vectors of 1000 values: the floor of a mask is timed on a batch of 20M / m masks.
TINY = replace(
    QUICK,
    name="tiny",
    n_values=(5,),
    m_values=(1000,),
    m_n=5,
    dropout_values=(0.2,),
    dropout_n=5,
    dropout_m=1000,
    n_m=1000,
    he_n=(3,),
    he_m={"threshold-paillier": (1000,), "ckks": (1000,), "threshold-ckks": (1000,)},
    he_base={"threshold-paillier": (3, 1000), "ckks": (3, 1000), "threshold-ckks": (3, 1000)},
    he_dropouts=(0.0,),
    scale_memory=(),
    scale_ladder=(),
    scale_budget_seconds=0.0,
    budget_seconds=10.0,
)


@pytest.fixture
def no_flwr(monkeypatch: pytest.MonkeyPatch) -> None:
    """flwr (and its submodules) cannot be imported."""
    for name in [m for m in sys.modules if m == "flwr" or m.startswith("flwr.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flwr", None)


def test_flower_is_detected() -> None:
    assert flower.flower_available()
    assert flower.flower_hint() is None


@pytest.mark.usefixtures("no_flwr")
def test_without_flwr_the_suite_runs_the_rest_and_says_how_to_add_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert not flower.flower_available()
    assert "pip install 'secagg[flower]'" in (flower.flower_hint() or "")
    document = run_suite(TINY, progress=False, argv=["test"])
    runs = document["runs"].values()
    assert {r["protocol"] for r in runs} == {
        "bonawitz",
        "secagg+",
        "threshold-paillier",
        "ckks",
        "threshold-ckks",
    }
    assert all(r["matches"] and "flower" not in r for r in runs)
    # What each protocol's cost model adds to its record: floors, predictions, observations.
    assert all(r["floor"]["client_seconds"] > 0 and r["predicted_server_seconds"] > 0 for r in runs)
    assert all(
        r["ckks_ciphertext_bytes"]["uploads_mean"] > 0 for r in runs if r["protocol"] == "ckks"
    )
    assert {r["bytes_check"] for r in runs} <= {"exact", "expectation"}
    assert all(r["bytes_exact"] for r in runs if r["protocol"] == "threshold-ckks")
    assert document["meta"]["flwr"] == "not installed"
    assert "flwr was not installed; add it with `pip install 'secagg[flower]'`" in (
        render_markdown(document)
    )
    assert "bytes exact in" in console_summary(document)


@pytest.mark.usefixtures("no_flwr")
def test_the_command_says_once_how_to_add_flower(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """The hint goes to stderr once, before the run (the suite itself is stubbed here)."""
    import secagg.bench.suite as suite

    def stub(plan: object, **kwargs: object) -> dict[str, object]:
        raise SystemExit("stub: the suite would run here")

    monkeypatch.setattr(suite, "run_suite", stub)
    with pytest.raises(SystemExit, match="stub"):
        main(["bench", "--quick", "--out", str(tmp_path)], io.StringIO())
    err = capsys.readouterr().err
    assert err.count("pip install 'secagg[flower]'") == 1
