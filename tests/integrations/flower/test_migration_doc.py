"""``docs/flower_migration.md`` says what it measures: the lines that change between the
Flower SecAgg+ app and the secagg app are counted here, and both apps run (in process, five
nodes, two rounds) to the same model."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

from secagg.errors import ConfigurationError
from secagg.integrations.flower import SecAggSettings, SecAggWorkflow
from secagg.integrations.flower.testing import InProcessGrid
from tests.helpers.flower import server_task_identity

DOC = Path(__file__).resolve().parents[3] / "docs" / "flower_migration.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = dict(re.findall(r"<!-- (\w+: \w+) -->\n```python\n(.*?)```", TEXT, flags=re.DOTALL))


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


def changed(before: str, after: str) -> tuple[int, int]:
    """(removed, added) non-blank lines between two versions."""
    removed = added = 0
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line[2:].strip():
            removed += line.startswith("- ")
            added += line.startswith("+ ")
    return removed, added


def test_the_stated_line_counts_are_measured() -> None:
    assert set(BLOCKS) == {"flower: client", "flower: server", "secagg: client",
                           "secagg: server"}
    client = changed(BLOCKS["flower: client"], BLOCKS["secagg: client"])
    server = changed(BLOCKS["flower: server"], BLOCKS["secagg: server"])
    removed, added = client[0] + server[0], client[1] + server[1]
    assert (removed, added) == (4, 5), (client, server)
    assert f"**{removed} lines removed, {added} added**" in TEXT
    assert f"Removed: {removed}. Added: {added}." in TEXT


def load(code: str, name: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)  # the documented code, as is
    return module


def run_app(kind: str) -> list[np.ndarray]:
    """Run the documented ServerApp and ClientApp of ``kind`` on five in-process nodes."""
    client = load(BLOCKS[f"{kind}: client"], f"{kind}_client_app")
    server = load(BLOCKS[f"{kind}: server"], f"{kind}_server_app")
    grid = InProcessGrid.create(client.app, {100 + p: {"partition-id": p} for p in range(5)})
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    server.app(grid, context)
    record = context.state.array_records[MAIN_PARAMS_RECORD]
    return [record[key].numpy() for key in record]


def test_both_documented_apps_run_to_the_same_model() -> None:
    # Each round adds the weighted mean partition (weights 10 + p) to every value.
    step = sum(p * (10 + p) for p in range(5)) / sum(10 + p for p in range(5))
    for kind in ("flower", "secagg"):
        (final,) = run_app(kind)
        np.testing.assert_allclose(final, np.full(4, 2 * step), atol=1e-4, err_msg=kind)


def test_from_secaggplus_maps_flowers_arguments() -> None:
    settings = SecAggSettings.from_secaggplus(5, 3, max_weight=50.0, clipping_range=2.0,
                                              modulus_range=2**24, timeout=None)
    assert (settings.degree, settings.threshold, settings.max_weight, settings.clip,
            settings.bits, settings.train_timeout, settings.stage_timeout) == (
        4, 3, 50.0, 2.0, 24, None, None)
    assert SecAggSettings.from_secaggplus(1, 1).degree == 1.0  # Flower: 1 means all
    fractions = SecAggSettings.from_secaggplus(0.6, 0.7, timeout=30.0, weighted=False)
    assert (fractions.degree, fractions.threshold, fractions.stage_timeout,
            fractions.weighted) == (0.6, 0.7, 30.0, False)
    for args in ((2, 1), (5, 5), (5, 3, {"modulus_range": 1000}), (True, 1)):
        kwargs = args[2] if len(args) == 3 else {}
        with pytest.raises(ConfigurationError):  # as Flower refuses them
            SecAggSettings.from_secaggplus(args[0], args[1], **kwargs)  # type: ignore[arg-type]
    assert isinstance(SecAggWorkflow.from_secaggplus(0.6, 0.7), SecAggWorkflow)
