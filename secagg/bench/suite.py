"""The protocol cost suite: what ``secagg bench`` / ``make bench`` measure.

For each protocol (Bonawitz, SecAgg+, threshold Paillier, CKKS, threshold CKKS), round and
party: the
compute seconds and the bytes up and down, as n, m and the dropout rate grow, each beside
its analytic model (bytes, exactly), its predicted seconds (op counts times unit costs
calibrated in the same run), the floor (keystream plus add) and Flower's SecAgg+ with the
same n, k, t, m and dropouts (when flwr is installed: extra ``flower``), all measured in
the same run. Then a scale study of SecAgg+:
peak memory per party up to n = 1000 and m = 1M, and a ladder of larger settings run while
a time budget lasts.

The sweeps run pinned to one core (as the 2017 paper's single-threaded Java, and to share
the machine); the scale study uses every core this process may use. ``--quick`` sizes
finish in seconds (CI runs them); the full plan is bounded to about half an hour.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from tqdm import tqdm

from secagg.bench.flower import flower_available, flower_client, flower_server
from secagg.bench.runs import Floors, Setting, run_setting
from secagg.cost.timing import TOLERANCE

__all__ = ["FULL", "PAPER_2017", "QUICK", "SWEPT", "Plan", "run_suite"]

SWEPT = ("bonawitz", "secagg+")
"""The protocols of the n, m and dropout sweeps, each run beside Flower's SecAgg+ (the HE
protocols are the keys of :attr:`Plan.he_base`)."""
PAPER_PROTOCOL = "bonawitz"  # Bonawitz et al. 2017 measured the complete graph
SCALE_PROTOCOL = "secagg+"  # the scale study: the protocol meant for large n
SCALE_DROPOUT = 0.05
FLOWER_STUDIES = ("n", "m", "dropout", "paper")
"""The studies whose runs are measured beside Flower's SecAgg+ (when flwr is installed)."""

# Bonawitz et al., CCS'17 (single-threaded Java, Xeon E5-1650 v3), m = 100K: figures cited
# from /work/shared/ANCHORS.md, not measured here.
PAPER_2017: dict[str, Any] = {
    "source": "Bonawitz et al., CCS'17 (Java, one thread, Xeon E5-1650 v3), via ANCHORS.md",
    "m": 100_000,
    "client_seconds": {"500": 0.849, "1000": 1.699},
    "server_seconds": {
        "500": {"0": 2.0, "0.1": 62.0, "0.3": 143.0},
        "1000": {"0.1": 180.0, "0.3": 414.0},
    },
    "expansion_16bit": {"n=2^10, m=2^20": 1.73, "n=2^14, m=2^24": 1.98},
}
# Flower SecAgg+ (flwr 1.41) figures from ANCHORS.md, for reference beside our own measures.
FLOWER_ANCHORS: dict[str, Any] = {
    "server_unmasking_n100_m100K_k99_seconds": {"0": 57.0, "5": 69.0},
    "client_masking_k99_seconds": {"100000": 0.083, "1000000": 0.324},
}


@dataclass(frozen=True)
class Plan:
    """Which settings one suite run measures."""

    name: str
    n_values: tuple[int, ...]
    n_m: int
    sweep_dropout: float
    m_values: tuple[int, ...]
    m_n: int
    dropout_values: tuple[float, ...]
    dropout_n: int
    dropout_m: int
    paper: tuple[tuple[int, float], ...]
    flower_complete_max_n: int
    flower_complete_m: int
    flower_sparse_max_n: int
    he_n: tuple[int, ...]
    he_m: dict[str, tuple[int, ...]]
    he_base: dict[str, tuple[int, int]]
    he_dropouts: tuple[float, ...]
    scale_memory: tuple[tuple[int, int], ...]
    scale_ladder: tuple[tuple[int, int], ...]
    scale_budget_seconds: float
    budget_seconds: float
    big_run: int = 10**9  # n * m above which a run shows its own progress bar
    notes: list[str] = field(default_factory=list)


QUICK = Plan(
    name="quick",
    n_values=(10, 30),
    n_m=10_000,
    sweep_dropout=0.1,
    m_values=(2_000, 10_000, 40_000),
    m_n=10,
    dropout_values=(0.0, 0.1, 0.3),
    dropout_n=10,
    dropout_m=10_000,
    paper=(),
    flower_complete_max_n=10,
    flower_complete_m=10_000,
    flower_sparse_max_n=100,
    he_n=(3, 5),
    he_m={
        "threshold-paillier": (100, 300),
        "ckks": (1_000, 10_000),
        "threshold-ckks": (1_000, 10_000),
    },
    he_base={"threshold-paillier": (3, 100), "ckks": (3, 1_000), "threshold-ckks": (3, 1_000)},
    he_dropouts=(0.0, 0.34),
    scale_memory=((50, 10_000),),
    scale_ladder=((100, 10_000), (200, 10_000), (200, 100_000)),
    scale_budget_seconds=3.0,
    budget_seconds=60.0,
)

FULL = Plan(
    name="full",
    n_values=(100, 200, 500, 1000),
    n_m=100_000,
    sweep_dropout=0.1,
    m_values=(10_000, 100_000, 1_000_000),
    m_n=100,
    dropout_values=(0.0, 0.1, 0.3),
    dropout_n=100,
    dropout_m=100_000,
    paper=((500, 0.0), (500, 0.1), (500, 0.3), (1000, 0.1), (1000, 0.3)),
    flower_complete_max_n=100,
    flower_complete_m=100_000,
    flower_sparse_max_n=500,
    he_n=(5, 10, 20),
    he_m={
        "threshold-paillier": (1_000, 10_000),
        "ckks": (10_000, 100_000),
        "threshold-ckks": (10_000, 100_000, 1_000_000),
    },
    he_base={
        "threshold-paillier": (10, 1_000),
        "ckks": (10, 10_000),
        "threshold-ckks": (10, 10_000),
    },
    he_dropouts=(0.0, 0.1, 0.3),
    scale_memory=((100, 100_000), (100, 1_000_000), (1000, 100_000), (1000, 1_000_000)),
    scale_ladder=(
        (2000, 1_000_000),
        (1000, 4_000_000),
        (5000, 1_000_000),
        (1000, 10_000_000),
        (10_000, 1_000_000),
    ),
    scale_budget_seconds=480.0,
    budget_seconds=1800.0,
    big_run=50_000_000,
)


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Pin this process (and the mask threads it starts) to one core while inside."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def _studies(plan: Plan) -> dict[str, list[Setting]]:
    """The settings of every sweep (a setting shared by two studies runs once)."""
    studies: dict[str, list[Setting]] = {"n": [], "m": [], "dropout": [], "paper": [], "he": []}
    for protocol in SWEPT:
        studies["n"] += [Setting(protocol, n, plan.n_m, plan.sweep_dropout) for n in plan.n_values]
        studies["m"] += [Setting(protocol, plan.m_n, m, plan.sweep_dropout) for m in plan.m_values]
        studies["dropout"] += [
            Setting(protocol, plan.dropout_n, plan.dropout_m, d) for d in plan.dropout_values
        ]
    studies["paper"] = [Setting(PAPER_PROTOCOL, n, PAPER_2017["m"], d) for n, d in plan.paper]
    for protocol in plan.he_base:
        base_n, base_m = plan.he_base[protocol]
        grid = [Setting(protocol, n, base_m) for n in plan.he_n]
        grid += [Setting(protocol, base_n, m) for m in plan.he_m[protocol]]
        grid += [Setting(protocol, base_n, base_m, d) for d in plan.he_dropouts]
        studies["he"] += grid
    # A base setting shared by two sweeps of one study is listed once.
    return {name: list({s.key: s for s in group}.values()) for name, group in studies.items()}


def _flower(record: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Flower's client masking and server unmasking at the record's n, k, t, m, dropouts
    (the server only when affordable: sparse graphs, or complete up to a plan's n)."""
    n, k, t, m = record["n"], record["degree"], record["threshold"], record["m"]
    complete = k >= n - 1
    out: dict[str, Any] = {"graph": "complete" if complete else f"{k}-regular ring"}
    out["client_seconds"] = flower_client(k, m)
    out["server_seconds"] = None
    if complete and (n > plan.flower_complete_max_n or m != plan.flower_complete_m):
        # About 90 s per run at n = 100: measured at the plan's one vector length only.
        out["server_note"] = f"not run: Flower's complete-graph Shamir is O(n^3) (n = {n})"
        return out
    if not complete and n > plan.flower_sparse_max_n:
        out["server_note"] = f"not run: over 2 minutes for Flower at n = {n}"
        return out
    try:
        out["server_seconds"] = flower_server(n, k, t, m, record["dropouts"])
    except ValueError as exc:  # flwr refuses (e.g. too few shares): say so, go on
        out["server_note"] = f"Flower failed: {exc}"
    return out


def _ladder(
    plan: Plan, floors: Floors, budget: float, bar: Callable[[str], None]
) -> list[dict[str, Any]]:
    """SecAgg+ at growing sizes on every core, while the next one's predicted wall time
    (the last one's, scaled by n * m * (k + 1)) fits what is left of ``budget``."""
    from secagg.protocols.bonawitz.params import find_parameters

    steps: list[dict[str, Any]] = []
    spent, last = 0.0, None
    for n, m in plan.scale_ladder:
        degree = find_parameters(n).degree
        if last is not None:
            scale = (n * m * (degree + 1)) / (last["n"] * last["m"] * (last["degree"] + 1))
            predicted = last["wall_seconds"] * scale
            if predicted > budget - spent:
                steps.append({"n": n, "m": m, "skipped": True, "predicted_seconds": predicted})
                bar(f"scale {SCALE_PROTOCOL} n={n} m={m}: skipped")
                continue
        setting = Setting(SCALE_PROTOCOL, n, m, SCALE_DROPOUT)
        record = run_setting(setting, floors, progress=n * m >= plan.big_run)
        bar(f"scale {SCALE_PROTOCOL} n={n} m={m}")
        spent += record["wall_seconds"]
        steps.append(record)
        last = record
    return steps


def _meta(plan: Plan, argv: list[str]) -> dict[str, Any]:
    import cryptography
    import numpy

    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        import flwr

        flower_version = str(flwr.__version__)
    except ImportError:  # the extra 'flower' is optional: the suite runs without it
        flower_version = "not installed"
    return {
        "plan": plan.name,
        "command": " ".join(argv) or "secagg bench",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "cryptography": cryptography.__version__,
        "flwr": flower_version,
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "shared_machine": "2 cores shared with ~7 other engineers' jobs: compare ratios "
        "measured side by side in this run, not absolute seconds",
        "time_tolerance": TOLERANCE,
    }


def run_suite(
    plan: Plan, *, progress: bool = True, argv: list[str] | None = None
) -> dict[str, Any]:
    """Measure ``plan`` and return one JSON-ready document (runs, studies, floors, Flower,
    scale, meta). Raises SystemExit if any protocol run returns a wrong sum."""
    started = time.perf_counter()
    document: dict[str, Any] = {
        "meta": _meta(plan, argv if argv is not None else sys.argv),
        "plan": asdict(plan),
        "paper_2017": PAPER_2017,
        "flower_anchors": FLOWER_ANCHORS,
    }
    floors = Floors()
    studies = _studies(plan)
    unique = list({s.key: s for group in studies.values() for s in group}.values())
    with_flower = flower_available()
    compared = {s.key for name in FLOWER_STUDIES for s in studies[name]} if with_flower else set()
    runs: dict[str, dict[str, Any]] = {}
    total = len(unique) + len(plan.scale_memory) + len(plan.scale_ladder)
    with tqdm(total=total, disable=not progress, unit="run", file=sys.stderr) as bar:
        with one_core():
            for setting in unique:
                bar.set_description(setting.key)
                record = run_setting(
                    setting, floors, progress=progress and setting.n * setting.m >= plan.big_run
                )
                if setting.key in compared:
                    record["flower"] = _flower(record, plan)
                runs[setting.key] = record
                bar.update(1)
        memory = []
        for n, m in plan.scale_memory:
            bar.set_description(f"memory {SCALE_PROTOCOL} n={n} m={m}")
            setting = Setting(SCALE_PROTOCOL, n, m, SCALE_DROPOUT)
            memory.append(run_setting(setting, floors, memory=True))
            bar.update(1)
        left = plan.budget_seconds - (time.perf_counter() - started)
        budget = max(0.0, min(plan.scale_budget_seconds, left - 0.1 * plan.budget_seconds))

        def describe(text: str) -> None:
            bar.set_description(text)
            bar.update(1)

        ladder = _ladder(plan, floors, budget, describe)
    document["runs"] = runs
    document["studies"] = {name: [s.key for s in group] for name, group in studies.items()}
    document["scale"] = {"memory": memory, "ladder": ladder, "budget_seconds": budget}
    document["floors"] = floors.to_dict()
    document["meta"]["load_average_end"] = os.getloadavg()
    document["meta"]["seconds"] = time.perf_counter() - started
    return document
