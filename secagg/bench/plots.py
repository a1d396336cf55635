"""PNG plots of a cost-suite run (matplotlib, Agg backend: no display needed).

Each figure puts seconds (left) beside bytes (right): ours measured (markers), the model
(lines, from the analytic cost model on a dense grid), the floor and Flower's SecAgg+
measured in the same run, and the 2017 paper's figures cited from ANCHORS.md (stars).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from secagg.bench.report import PLOTS, he_protocols, swept_protocols
from secagg.cost.estimate import estimate

__all__ = ["write_plots"]

COLORS = {
    "bonawitz": "tab:blue",
    "secagg+": "tab:green",
    "threshold-paillier": "tab:purple",
    "ckks": "tab:orange",
    "threshold-ckks": "tab:brown",
    "flower": "tab:red",
    "floor": "0.5",
    "paper": "black",
}
PAPER_LABEL = "Bonawitz et al. 2017 (cited, Java 1 thread)"
MARKERS = ("^", "v", "<", ">")  # Flower's series beside each swept protocol, in turn
REFERENCE = "secagg+"
"""The masking protocol the threshold-HE figure shows beside, and whose server floor the
sweeps draw."""


def _legend(ax: Axes) -> None:
    """Below the axes, so that no curve hides behind it."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)


def _two_panels() -> tuple[Figure, tuple[Axes, Axes]]:
    """The layout of every figure: seconds on the left, bytes (or memory) on the right."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 7))
    return fig, (left, right)


def _log_x(ax: Axes, xlabel: str) -> None:
    """A log x axis with its label, and the legend below."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    _legend(ax)


def _log_log(ax: Axes, xlabel: str, ylabel: str) -> None:
    """Log scales on both axes, the labels, a light grid and the legend below."""
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    _log_x(ax, xlabel)


def _save(fig: Figure, path: Path) -> None:
    """Lay out, write the PNG at the one resolution every figure uses, and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _runs(document: dict[str, Any], study: str, protocol: str | None) -> list[dict[str, Any]]:
    """The runs of ``study`` (of ``protocol`` only, unless None)."""
    return [
        document["runs"][k]
        for k in document["studies"].get(study, [])
        if protocol is None or document["runs"][k]["protocol"] == protocol
    ]


def _color(protocol: str) -> str:
    return COLORS.get(protocol, "tab:gray")


def _graph_label(runs: list[dict[str, Any]]) -> str:
    """How Flower's graph matches ours: the complete graph, or a ring with our degree."""
    return "complete" if all(r["degree"] == r["n"] - 1 for r in runs) else "same k"


def _round(run: dict[str, Any], name: str, field: str) -> float:
    for row in run["rounds"]:
        if row["round"] == name:
            return float(row[field])
    return float("nan")


def _model_bytes(protocol: str, n: int, m: int, bits: int, rate: float) -> float:
    """Model bytes per surviving client (up + down) with the suite's parameter choices
    (the simulator's defaults, as the runs)."""
    model = estimate(protocol, clients=n, dim=m, bits=bits, dropout=rate)
    return float(model["totals"]["client_bytes_up"] + model["totals"]["client_bytes_down"])


def _time_panel(
    ax: Axes,
    document: dict[str, Any],
    study: str,
    x_of: Callable[[dict[str, Any]], float],
) -> None:
    for index, protocol in enumerate(swept_protocols(document)):
        runs = sorted(_runs(document, study, protocol), key=x_of)
        if not runs:
            continue
        xs = [x_of(r) for r in runs]
        color = _color(protocol)
        ax.plot(
            xs,
            [_round(r, "unmasking", "server_seconds") for r in runs],
            "o-",
            color=color,
            label=f"{protocol}: server unmasking",
        )
        ax.plot(
            xs,
            [_round(r, "masked_input", "client_seconds_mean") for r in runs],
            "s--",
            color=color,
            label=f"{protocol}: client masking",
        )
        if protocol == REFERENCE:
            ax.plot(
                xs,
                [r["floor"]["server_seconds"] for r in runs],
                ":",
                color=COLORS["floor"],
                label=f"floor (keystream + add), {protocol} server",
            )
        flower = [(x_of(r), r["flower"]) for r in runs if r.get("flower")]
        server = [(x, f["server_seconds"]) for x, f in flower if f.get("server_seconds")]
        marker = MARKERS[index % len(MARKERS)]
        graph = _graph_label(runs)
        if server:
            ax.plot(
                *zip(*server, strict=True),
                marker + "-",
                color=COLORS["flower"],
                alpha=0.8,
                label=f"Flower server ({graph})",
            )
        if flower:
            ax.plot(
                [x for x, _ in flower],
                [f["client_seconds"] for _, f in flower],
                marker + ":",
                color=COLORS["flower"],
                alpha=0.6,
                label=f"Flower client ({graph})",
            )
    ax.set_yscale("log")
    ax.set_ylabel("seconds (one core)")
    ax.grid(True, which="both", alpha=0.3)


def _bytes_panel(
    ax: Axes,
    document: dict[str, Any],
    study: str,
    x_of: Callable[[dict[str, Any]], float],
    model_grid: Sequence[float],
    model_at: Callable[[str, float], float],
) -> None:
    for protocol in swept_protocols(document):
        runs = sorted(_runs(document, study, protocol), key=x_of)
        if not runs:
            continue
        color = _color(protocol)
        ax.plot(
            [x_of(r) for r in runs],
            [r["client_bytes_up_mean"] + r["client_bytes_down_mean"] for r in runs],
            "o",
            color=color,
            label=f"{protocol}: measured",
        )
        ax.plot(
            model_grid,
            [model_at(protocol, x) for x in model_grid],
            "-",
            color=color,
            alpha=0.6,
            label=f"{protocol}: model",
        )
    ax.set_yscale("log")
    ax.set_ylabel("bytes per client, up + down")
    ax.grid(True, which="both", alpha=0.3)


def _grid(low: float, high: float, points: int = 12) -> list[float]:
    if high <= low:
        return [low]
    step = (high / low) ** (1 / (points - 1))
    return [low * step**i for i in range(points)]


def _plot_n(document: dict[str, Any], path: Path) -> None:
    plan = document["plan"]
    fig, (left, right) = _two_panels()
    _time_panel(left, document, "n", lambda r: r["n"])
    paper = document["paper_2017"]
    if plan["n_m"] == paper["m"]:
        ns = [int(n) for n in paper["client_seconds"]]
        left.plot(
            ns,
            list(paper["client_seconds"].values()),
            "*",
            color=COLORS["paper"],
            markersize=11,
            label=PAPER_LABEL + ": client",
        )
        at = f"{plan['sweep_dropout']:g}"
        server = [(int(n), v[at]) for n, v in paper["server_seconds"].items() if at in v]
        if server:
            left.plot(
                *zip(*server, strict=True),
                "P",
                color=COLORS["paper"],
                markersize=10,
                label=PAPER_LABEL + f": server, {float(at):.0%} dropout",
            )
    _log_x(left, f"clients n (m = {plan['n_m']:,}, {plan['sweep_dropout']:.0%} dropout)")
    ns = [r["n"] for r in document["runs"].values() if r["key"] in document["studies"]["n"]]
    _bytes_panel(
        right,
        document,
        "n",
        lambda r: r["n"],
        [int(x) for x in _grid(min(ns), max(ns))],
        lambda p, x: _model_bytes(p, int(x), plan["n_m"], 32, plan["sweep_dropout"]),
    )
    _log_x(right, "clients n")
    fig.suptitle(PLOTS["cost_vs_n.png"])
    _save(fig, path)


def _plot_m(document: dict[str, Any], path: Path) -> None:
    plan = document["plan"]
    fig, (left, right) = _two_panels()
    _time_panel(left, document, "m", lambda r: r["m"])
    paper = document["paper_2017"]
    n = str(plan["m_n"])
    if n in paper["client_seconds"]:
        left.plot(
            [paper["m"]],
            [paper["client_seconds"][n]],
            "*",
            color=COLORS["paper"],
            markersize=11,
            label=PAPER_LABEL,
        )
    _log_x(left, f"vector length m (n = {plan['m_n']}, {plan['sweep_dropout']:.0%} dropout)")
    ms = plan["m_values"]
    _bytes_panel(
        right,
        document,
        "m",
        lambda r: r["m"],
        _grid(min(ms), max(ms)),
        lambda p, x: _model_bytes(p, plan["m_n"], int(x), 32, plan["sweep_dropout"]),
    )
    _log_x(right, "vector length m")
    fig.suptitle(PLOTS["cost_vs_m.png"])
    _save(fig, path)


def _plot_dropout(document: dict[str, Any], path: Path) -> None:
    plan = document["plan"]
    fig, (left, right) = _two_panels()
    _time_panel(left, document, "dropout", lambda r: r["dropout_rate"])
    paper_runs = sorted(_runs(document, "paper", None), key=lambda r: r["dropout_rate"])
    paper = document["paper_2017"]
    for n, marker in (("500", "*"), ("1000", "P")):
        cited = paper["server_seconds"].get(n, {})
        if cited:
            left.plot(
                [float(d) for d in cited],
                list(cited.values()),
                marker + "--",
                color=COLORS["paper"],
                markersize=10,
                label=PAPER_LABEL + f": server, n = {n}",
            )
        ours = [r for r in paper_runs if str(r["n"]) == n]
        if ours:
            left.plot(
                [r["dropout_rate"] for r in ours],
                [r["server_seconds"] for r in ours],
                marker + "-",
                color=_color(ours[0]["protocol"]),
                alpha=0.6,
                markersize=9,
                label=f"{ours[0]['protocol']} (ours): server total, n = {n}",
            )
    left.set_xlabel(
        f"dropout rate (n = {plan['dropout_n']}, m = {plan['dropout_m']:,}; paper: m = 100,000)"
    )
    _legend(left)
    rates = plan["dropout_values"]
    _bytes_panel(
        right,
        document,
        "dropout",
        lambda r: r["dropout_rate"],
        [min(rates) + (max(rates) - min(rates)) * i / 10 for i in range(11)],
        lambda p, x: _model_bytes(p, plan["dropout_n"], plan["dropout_m"], 32, x),
    )
    right.set_yscale("linear")
    right.set_xlabel("dropout rate")
    _legend(right)
    fig.suptitle(PLOTS["cost_vs_dropout.png"])
    _save(fig, path)


def _plot_he(document: dict[str, Any], path: Path) -> None:
    plan = document["plan"]
    fig, (left, right) = _two_panels()
    for protocol in he_protocols(document):
        base_n = plan["he_base"][protocol][0]
        runs = sorted(
            (r for r in _runs(document, "he", protocol) if r["n"] == base_n and not r["dropouts"]),
            key=lambda r: r["m"],
        )
        if not runs:
            continue
        color = _color(protocol)
        ms = [r["m"] for r in runs]
        left.plot(
            ms,
            [_round(r, "encrypted_input", "client_seconds_mean") for r in runs],
            "s-",
            color=color,
            label=f"{protocol}: client encryption",
        )
        left.plot(
            ms,
            [_round(r, "decryption", "client_seconds_mean") for r in runs],
            "d--",
            color=color,
            label=f"{protocol}: member decryption",
        )
        left.plot(ms, [r["floor"]["client_seconds"] for r in runs], ":", color=COLORS["floor"])
        right.plot(
            ms,
            [_round(r, "encrypted_input", "client_bytes_up_mean") for r in runs],
            "o",
            color=color,
            label=f"{protocol}: upload measured",
        )
        grid = _grid(min(ms), max(ms))
        model = [
            estimate(protocol, clients=base_n, dim=int(m), bits=32)["rounds"]["encrypted_input"][
                "client_bytes_up"
            ]
            for m in grid
        ]
        right.plot(grid, model, "-", color=color, alpha=0.6, label=f"{protocol}: model")
    masking = sorted(_runs(document, "m", REFERENCE), key=lambda r: r["m"])
    if masking:
        ms = [r["m"] for r in masking]
        left.plot(
            ms,
            [_round(r, "masked_input", "client_seconds_mean") for r in masking],
            "o-",
            color=_color(REFERENCE),
            label=f"{REFERENCE} (n = {plan['m_n']}): client masking",
        )
        right.plot(
            ms,
            [_round(r, "masked_input", "client_bytes_up_mean") for r in masking],
            "o-",
            color=_color(REFERENCE),
            label=f"{REFERENCE}: masked upload",
        )
    left.plot([], [], ":", color=COLORS["floor"], label="floor: one keystream + add")
    for ax, label in ((left, "seconds (one core)"), (right, "bytes uploaded per client")):
        _log_log(ax, "vector length m (32-bit values)", label)
    fig.suptitle(PLOTS["he.png"])
    _save(fig, path)


def _plot_scale(document: dict[str, Any], path: Path) -> None:
    scale = document["scale"]
    fig, (left, right) = _two_panels()
    done = [r for r in scale["ladder"] if not r.get("skipped")] + scale["memory"]
    done.sort(key=lambda r: r["n"] * r["m"])
    if done:
        work = [r["n"] * r["m"] for r in done]
        left.plot(
            work,
            [r["wall_seconds"] for r in done],
            "o",
            color="black",
            label="wall, whole simulation",
        )
        left.plot(
            work, [r["server_seconds"] for r in done], "s", color=COLORS["secagg+"], label="server"
        )
        left.plot(
            work,
            [r["client_seconds_max"] for r in done],
            "^",
            color=COLORS["bonawitz"],
            label="slowest client",
        )
        for r in done:
            left.annotate(
                f"n={r['n']:,}\nm={r['m']:,}",
                (r["n"] * r["m"], r["wall_seconds"]),
                fontsize=6,
                alpha=0.7,
            )
        left.axhline(600, color=COLORS["flower"], linestyle="--", label="10 minutes")
    _log_log(left, "n m (values aggregated)", "seconds (2 cores; memory runs under tracemalloc)")
    memory = scale["memory"]
    if memory:
        labels = [f"n={r['n']:,}\nm={r['m']:,}" for r in memory]
        xs = range(len(memory))
        mib = 2**20
        right.bar(
            [x - 0.2 for x in xs],
            [r["memory"]["server_peak_bytes"] / mib for r in memory],
            0.4,
            color=COLORS["secagg+"],
            label="server peak",
        )
        right.bar(
            [x + 0.2 for x in xs],
            [r["memory"]["client_peak_bytes_max"] / mib for r in memory],
            0.4,
            color=COLORS["bonawitz"],
            label="client peak (max)",
        )
        right.set_xticks(list(xs), labels, fontsize=7)
    right.set_ylabel("MiB (tracemalloc)")
    _legend(right)
    right.grid(True, axis="y", alpha=0.3)
    fig.suptitle(PLOTS["scale.png"] + " (5 % dropout)")
    _save(fig, path)


def write_plots(document: dict[str, Any], directory: str) -> list[Path]:
    """Write every plot of :data:`secagg.bench.report.PLOTS` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    makers = {
        "cost_vs_n.png": _plot_n,
        "cost_vs_m.png": _plot_m,
        "cost_vs_dropout.png": _plot_dropout,
        "he.png": _plot_he,
        "scale.png": _plot_scale,
    }
    written = []
    for name, make in makers.items():
        make(document, out / name)
        written.append(out / name)
    return written
