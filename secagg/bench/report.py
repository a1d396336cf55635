"""Reports of a cost-suite run: JSON for machines, BENCHMARKS.md and console tables.

:func:`render_markdown` turns the suite's document into the tables of BENCHMARKS.md;
:func:`write_markdown` writes it and keeps whatever follows :data:`NOTES_MARKER` in the
existing file (the lead's hand-written notes survive regeneration).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secagg.cost.timing import TOLERANCE
from secagg.sim.ledger import format_bytes

__all__ = [
    "NOTES_MARKER",
    "PLOTS",
    "console_summary",
    "he_protocols",
    "render_markdown",
    "summarize",
    "swept_protocols",
    "write_json",
    "write_markdown",
]

NOTES_MARKER = "<!-- hand-written notes below -->"
PLOTS = {
    "cost_vs_n.png": "Cost versus the number of clients n",
    "cost_vs_m.png": "Cost versus the vector length m",
    "cost_vs_dropout.png": "Cost versus the dropout rate",
    "he.png": "Threshold HE beside SecAgg+",
    "scale.png": "SecAgg+ scale study",
}
DOMINANT_SECONDS = 0.01
DOMINANT_SHARE = 0.25
"""A party's round enters the time-model check when it takes at least 10 ms and a quarter
of that party's run: below that, message encoding and bookkeeping (not modelled) dominate.
Runs under tracemalloc (the memory study) are left out: tracing slows every allocation."""


def _s(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def _x(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _time_checks(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """(run, round, party, measured, predicted) for every dominant round."""
    checks = []
    for run in runs:
        if "memory" in run:
            continue
        totals = {
            "server": sum(r["server_seconds"] for r in run["rounds"]),
            "client": sum(r["client_seconds_mean"] for r in run["rounds"]),
        }
        for row in run["rounds"]:
            for party in ("server", "client"):
                measured = row["server_seconds" if party == "server" else "client_seconds_mean"]
                predicted = row[f"predicted_{party}_seconds"]
                dominant = measured >= max(DOMINANT_SECONDS, DOMINANT_SHARE * totals[party])
                if dominant and predicted:
                    checks.append(
                        {
                            "run": run["key"],
                            "round": row["round"],
                            "party": party,
                            "measured": measured,
                            "predicted": predicted,
                            "ratio": measured / predicted,
                        }
                    )
    return checks


def swept_protocols(document: dict[str, Any]) -> list[str]:
    """The protocols of the sweeps over n, m and the dropout rate (the masking protocols,
    each beside Flower's SecAgg+), in the order the suite ran them."""
    runs = document["runs"]
    return list(dict.fromkeys(runs[key]["protocol"] for key in document["studies"].get("n", [])))


def he_protocols(document: dict[str, Any]) -> list[str]:
    """The protocols of the threshold-HE grid (the keys of the plan's ``he_base``)."""
    return list(document["plan"]["he_base"])


def _all_runs(document: dict[str, Any]) -> list[dict[str, Any]]:
    runs = list(document["runs"].values())
    runs += document["scale"]["memory"]
    runs += [r for r in document["scale"]["ladder"] if not r.get("skipped")]
    return runs


def summarize(document: dict[str, Any]) -> dict[str, Any]:
    """Headline figures of a run: model agreement, ratios to the floor and to Flower."""
    runs = _all_runs(document)
    checks = _time_checks(runs)
    within = [c for c in checks if 1 / TOLERANCE <= c["ratio"] <= TOLERANCE]
    flower_client, flower_server, floor_client, floor_server = [], [], [], []
    swept = swept_protocols(document)
    for run in document["runs"].values():
        flower = run.get("flower")
        if flower:
            client = _masking_client_seconds(run)
            flower_client.append(flower["client_seconds"] / client)
            if flower.get("server_seconds"):
                flower_server.append(flower["server_seconds"] / _unmasking_seconds(run))
        if run["protocol"] in swept:
            floor_client.append(_masking_client_seconds(run) / run["floor"]["client_seconds"])
            floor_server.append(_unmasking_seconds(run) / run["floor"]["server_seconds"])

    def span(values: list[float]) -> list[float] | None:
        return [min(values), statistics.median(values), max(values)] if values else None

    completed = [r for r in document["scale"]["ladder"] if not r.get("skipped")]
    largest = max(completed, key=lambda r: r["n"] * r["m"], default=None)
    return {
        "runs": len(runs),
        "bytes_exact": sum(1 for r in runs if r["bytes_check"] == "exact"),
        "bytes_expectation": sum(1 for r in runs if r["bytes_check"] == "expectation"),
        "bytes_mismatch": [r["key"] for r in runs if r["bytes_check"] == "mismatch"],
        "bytes_max_relative_error": max((r["bytes_max_relative_error"] for r in runs), default=0),
        "time_checks": len(checks),
        "time_within_tolerance": len(within),
        "time_ratio_span": span([c["ratio"] for c in checks]),
        "time_outliers": [c for c in checks if c not in within],
        "flower_client_speedup": span(flower_client),
        "flower_server_speedup": span(flower_server),
        "client_over_floor": span(floor_client),
        "server_over_floor": span(floor_server),
        "largest_completed": None
        if largest is None
        else {"n": largest["n"], "m": largest["m"], "wall_seconds": largest["wall_seconds"]},
    }


def _masking_client_seconds(run: dict[str, Any]) -> float:
    """A client's masked-input round (mean): what Flower's client masking step does."""
    for row in run["rounds"]:
        if row["round"] == "masked_input":
            return float(row["client_seconds_mean"])
    return float(run["client_seconds_mean"])


def _unmasking_seconds(run: dict[str, Any]) -> float:
    """The server's unmasking round: what Flower's server unmasking does."""
    for row in run["rounds"]:
        if row["round"] == "unmasking":
            return float(row["server_seconds"])
    return float(run["server_seconds"])


# --- markdown -------------------------------------------------------------------------------


def _header(document: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    meta = document["meta"]
    load = ", ".join(f"{v:.2f}" for v in meta["load_average_start"])
    load_end = ", ".join(f"{v:.2f}" for v in meta.get("load_average_end", ()))
    return [
        "# Benchmarks",
        "",
        f"Generated from one run of `{meta['command']}` (plan `{meta['plan']}`, "
        f"{meta.get('seconds', 0) / 60:.1f} minutes) on {meta['started']}: {meta['cpu']}, "
        f"{meta['cpus']} CPUs, Python {meta['python']}, numpy {meta['numpy']}, "
        f"cryptography {meta['cryptography']}, flwr {meta['flwr']}.",
        "",
        f"Load average {load} at the start of the run and {load_end} at the end "
        f"({meta['cpus']} CPUs). Absolute seconds depend on whatever else runs on the "
        "machine, so every comparison below is a ratio against a figure measured side by "
        "side in the same run "
        "(the floor, Flower's SecAgg+, the model's prediction calibrated in the run), or a "
        "constant cited as such. Regenerate with `make bench` (`secagg bench`); "
        "`make bench-quick` runs the CI sizes (under a minute) into `benchmarks/results/`.",
        "",
        "How to read the tables:",
        "",
        "* **floor**: the least any PRG-mask scheme can do for the same work, measured in "
        "this run: per mask vector one AES-128-CTR keystream `update_into` a reused buffer "
        "plus one numpy uint32 add, per key agreement one X25519 + HKDF (for the HE rows, "
        "one such mask per vector the party handles, i.e. a one-time pad). The floor uses "
        "full-length buffers, as the anchors define it: from m = 1M on they leave the caches, "
        "while secagg accumulates masks in 256 KiB chunks, so ours can run below it (ratios "
        "under 1x).",
        "* **Flower**: flwr's own SecAgg+ code with the same n, k, t, m and dropouts, on the "
        "same core: the client's `_collect_masked_vectors` and the server's unmasking "
        "(flwr's primitives in flwr's order; a k-regular ring for sparse graphs).",
        "* **model**: the analytic cost model (`secagg cost`, `bonawitz_costs`, "
        "`threshold_paillier_costs`, `ckks_costs`, `threshold_ckks_costs`) with the run's "
        "dropouts. Bytes: "
        "*exact* means every round's bytes up and down equal the model's (CKKS: given the "
        "mean size of SEAL's compressed ciphertexts, read from the run); *E ±x*: with dropouts "
        "among ids of 128 and more the model gives the expectation over random dropout sets "
        "(id sizes differ), x the largest relative gap of a round. Seconds: op counts "
        "times unit costs calibrated just before each run on the same cores "
        f"(`secagg.cost.timing`); the stated tolerance is a factor of "
        f"{TOLERANCE:g} either way for every round of a party that takes at least "
        f"{DOMINANT_SECONDS * 1e3:.0f} ms and a quarter of that party's run (below that, "
        "message encoding, which the model leaves out, dominates).",
        "* The sweeps run pinned to **one core** (as the 2017 paper's single-threaded Java); "
        "the scale study uses both cores. Dropouts vanish after ShareKeys (masking "
        "protocols: the costliest case for the server) or before the input (HE).",
        "",
        "## Summary",
        "",
        *_summary_lines(document, summary),
    ]


def _span_text(span: list[float] | None) -> str:
    if span is None:
        return "not measured"
    return f"{_x(span[0])} to {_x(span[2])} (median {_x(span[1])})"


def _flower_line(document: dict[str, Any], summary: dict[str, Any]) -> str:
    if document["meta"].get("flwr") == "not installed":
        return (
            "* Flower's SecAgg+: not measured (flwr was not installed; add it with "
            "`pip install 'secagg[flower]'`)."
        )
    return (
        f"* Flower's SecAgg+ over ours, same setting: client masking "
        f"{_span_text(summary['flower_client_speedup'])}; server unmasking "
        f"{_span_text(summary['flower_server_speedup'])}."
    )


def _summary_lines(document: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    lines = [
        f"* Bytes: {summary['bytes_exact']} of {summary['runs']} runs match the model exactly "
        f"in every round and direction; {summary['bytes_expectation']} (dropouts among ids of "
        f"128 and more, where the model is an expectation over the random dropout set) agree "
        f"within a relative {summary['bytes_max_relative_error']:.1e}; "
        f"{len(summary['bytes_mismatch'])} mismatches"
        + (f" ({', '.join(summary['bytes_mismatch'])})." if summary["bytes_mismatch"] else "."),
        f"* Seconds: {summary['time_within_tolerance']} of {summary['time_checks']} dominant "
        f"rounds (each at least {DOMINANT_SECONDS * 1e3:.0f} ms and a quarter of its party's "
        f"run) within a factor {TOLERANCE:g} of the prediction; measured/predicted "
        f"{_span_text(summary['time_ratio_span'])}.",
        _flower_line(document, summary),
        f"* Ours over the floor (1 = the floor): client masked input "
        f"{_span_text(summary['client_over_floor'])}; server unmasking "
        f"{_span_text(summary['server_over_floor'])}.",
    ]
    paper = _paper_rows(document)
    if paper:
        best = [r for r in paper if r["ours_server"] is not None]
        lines.append(
            "* Against Bonawitz et al. 2017 (cited): server "
            + ", ".join(
                f"n={r['n']} {r['dropout']:.0%}: {_s(r['ours_server'])} vs {_s(r['paper_server'])}"
                for r in best
                if r["paper_server"] is not None
            )
            + "."
        )
    largest = summary["largest_completed"]
    if largest:
        lines.append(
            f"* Scale: the largest SecAgg+ setting completed is n = {largest['n']:,}, "
            f"m = {largest['m']:,} in {_s(largest['wall_seconds'])} (whole simulation, every "
            "party in one process on 2 cores); see the scale study."
        )
    return lines


def _round_table(run: dict[str, Any]) -> list[str]:
    rows = []
    for row in run["rounds"]:
        rows.append(
            [
                row["round"],
                _s(row["server_seconds"]),
                _s(row["predicted_server_seconds"]),
                _s(row["client_seconds_mean"]),
                _s(row["predicted_client_seconds"]),
                _s(row["client_seconds_max"]),
                format_bytes(row["client_bytes_up_mean"]),
                format_bytes(row["client_bytes_down_mean"]),
                f"{row['server_bytes_up']:,} ({_exact(row, 'up')})",
                f"{row['server_bytes_down']:,} ({_exact(row, 'down')})",
            ]
        )
    header = [
        "round",
        "server",
        "predicted",
        "client mean",
        "predicted",
        "client max",
        "up/client",
        "down/client",
        "bytes up, all (model)",
        "bytes down, all (model)",
    ]
    return _table(header, rows)


def _exact(row: dict[str, Any], side: str) -> str:
    model = row[f"model_bytes_{side}"]
    if model is None:
        return "no model"
    if abs(model - row[f"server_bytes_{side}"]) < 1e-6:
        return "= model"
    return f"model {model:,.0f}"


def _setting(run: dict[str, Any]) -> str:
    extra = (
        f"committee {run['committee']}, t = {run['threshold']}"
        if run.get("committee")
        else f"k = {run['degree']}, t = {run['threshold']}"
    )
    return (
        f"{run['protocol']}, n = {run['n']:,}, m = {run['m']:,}, {run['bits']} bits, "
        f"{extra}, {run['dropouts']} dropouts"
    )


def _sweep_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for run in runs:
        flower = run.get("flower") or {}
        client = _masking_client_seconds(run)
        unmask = _unmasking_seconds(run)
        rows.append(
            [
                run["protocol"],
                f"{run['n']:,}",
                f"{run['m']:,}",
                f"{run['degree']}/{run['threshold']}",
                str(run["dropouts"]),
                _s(client),
                _x(_ratio(client, run["floor"]["client_seconds"])),
                _s(flower.get("client_seconds")),
                _s(unmask),
                _x(_ratio(unmask, run["floor"]["server_seconds"])),
                _s(flower.get("server_seconds")),
                _s(run["server_seconds"]),
                format_bytes(run["client_bytes_up_mean"] + run["client_bytes_down_mean"]),
                _bytes_cell(run),
                f"{run['model_totals']['expansion']:.2f}x",
            ]
        )
    header = [
        "protocol",
        "n",
        "m",
        "k/t",
        "drop",
        "client mask",
        "/floor",
        "Flower client",
        "server unmask",
        "/floor",
        "Flower server",
        "server total",
        "bytes/client",
        "model bytes",
        "expansion",
    ]
    return _table(header, rows)


def _bytes_cell(run: dict[str, Any]) -> str:
    if run["bytes_check"] == "exact":
        return "exact"
    gap = f"{run['bytes_max_relative_error']:.0e}"
    return f"E ±{gap}" if run["bytes_check"] == "expectation" else f"MISMATCH {gap}"


def _expansion_lines(document: dict[str, Any]) -> list[str]:
    """The paper's communication expansion for 16-bit inputs beside the cost model's
    (exact bytes, no dropouts): a client's upload, and its traffic up and down, over 2 m
    bytes, with sums of 16 + log2(n) bits so that nothing wraps."""
    from secagg.cost.bonawitz import bonawitz_costs
    from secagg.protocols.bonawitz.params import find_parameters

    rows = []
    for label, paper in document["paper_2017"]["expansion_16bit"].items():
        log_n, log_m = (int(part.split("^")[1]) for part in label.split(", "))
        n, m, bits = 2**log_n, 2**log_m, 16 + log_n
        cells = [label, f"{paper:.2f}x"]
        for degree in (None, find_parameters(n).degree):
            threshold = (n // 2 + 1) if degree is None else find_parameters(n).threshold
            totals = bonawitz_costs(n, m, bits, threshold, degree)["totals"]
            up = totals["client_bytes_up"]
            both = up + totals["client_bytes_down"]
            cells.append(f"{up / (2 * m):.3f}x / {both / (2 * m):.2f}x")
        rows.append(cells)
    return [
        "Communication expansion for 16-bit inputs (a client's bytes uploaded / up and down, "
        "over 2 m bytes, with 16 + log2(n)-bit sums; ours from the cost model the runs above "
        "are checked against byte for byte):",
        "",
        *_table(
            [
                "setting",
                "2017 (cited)",
                "ours, complete graph: up / up+down",
                "ours, SecAgg+: up / up+down",
            ],
            rows,
        ),
    ]


def _paper_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    paper = document["paper_2017"]
    out = []
    for key in document["studies"].get("paper", []):
        run = document["runs"][key]
        n, rate = str(run["n"]), f"{run['dropout_rate']:g}"
        out.append(
            {
                "n": run["n"],
                "dropout": run["dropout_rate"],
                "ours_client": run["client_seconds_mean"],
                "paper_client": paper["client_seconds"].get(n),
                "ours_server": run["server_seconds"],
                "paper_server": paper["server_seconds"].get(n, {}).get(rate),
            }
        )
    return out


def _he_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for run in runs:
        enc = next(r for r in run["rounds"] if r["round"] == "encrypted_input")
        dec = next((r for r in run["rounds"] if r["round"] == "decryption"), None)
        rows.append(
            [
                run["protocol"],
                f"{run['n']}",
                f"{run['m']:,}",
                f"{run['committee']}/{run['threshold']}",
                str(run["dropouts"]),
                _s(enc["client_seconds_mean"]),
                _x(_ratio(enc["client_seconds_mean"], run["floor"]["client_seconds"])),
                _s(dec["client_seconds_mean"] if dec else None),
                _s(run["server_seconds"]),
                format_bytes(enc["client_bytes_up_mean"]),
                f"{run['model_totals']['upload_expansion']:.1f}x",
                _bytes_cell(run),
                _s(run["predicted_client_seconds"]),
            ]
        )
    header = [
        "protocol",
        "n",
        "m",
        "committee/t",
        "drop",
        "client encrypt",
        "/floor",
        "member decrypt",
        "server total",
        "upload/client",
        "upload expansion",
        "model bytes",
        "predicted client",
    ]
    return _table(header, rows)


def _scale_lines(document: dict[str, Any]) -> list[str]:
    scale = document["scale"]
    lines = [
        "## Scale study (SecAgg+, 5 % dropouts, both cores)",
        "",
        "Peak memory per party, measured with tracemalloc around each party's own calls "
        "(what it holds from earlier calls plus the transient peak of the current one; the "
        "message it sent counts until the transport drops it). Seconds here are under "
        "tracemalloc and so inflated; the ladder below has clean seconds.",
        "",
    ]
    rows = []
    for run in scale["memory"]:
        memory = run["memory"]
        rows.append(
            [
                f"{run['n']:,}",
                f"{run['m']:,}",
                f"{run['degree']}/{run['threshold']}",
                _s(run["server_seconds"]),
                _s(run["client_seconds_mean"]),
                format_bytes(memory["server_peak_bytes"]),
                format_bytes(memory["client_peak_bytes_median"]),
                format_bytes(memory["client_peak_bytes_max"]),
                format_bytes(4 * run["m"]),
            ]
        )
    lines += _table(
        [
            "n",
            "m",
            "k/t",
            "server s",
            "client s (mean)",
            "server peak",
            "client peak (median)",
            "client peak (max)",
            "one vector",
        ],
        rows,
    )
    lines += [
        "",
        f"Ladder: larger settings, each run only if its predicted wall time (the last one's "
        f"scaled by n m (k + 1)) fits the budget left ({_s(scale['budget_seconds'])} for "
        "this run).",
        "",
    ]
    rows = []
    for step in scale["ladder"]:
        if step.get("error"):
            cells = [f"{step['n']:,}", f"{step['m']:,}", "-", "failed", "-", "-", "-", "-"]
            rows.append([*cells, step["error"][:60]])
            continue
        if step.get("skipped"):
            rows.append(
                [
                    f"{step['n']:,}",
                    f"{step['m']:,}",
                    "-",
                    "skipped",
                    "-",
                    "-",
                    "-",
                    "-",
                    f"predicted {_s(step['predicted_seconds'])}",
                ]
            )
            continue
        rows.append(
            [
                f"{step['n']:,}",
                f"{step['m']:,}",
                f"{step['degree']}/{step['threshold']}",
                _s(step["wall_seconds"]),
                _s(step["server_seconds"]),
                _s(step["client_seconds_mean"]),
                _s(step["client_seconds_max"]),
                format_bytes(step["client_bytes_up_mean"]),
                "completed" if step["wall_seconds"] <= 600 else "over 10 minutes",
            ]
        )
    lines += _table(
        [
            "n",
            "m",
            "k/t",
            "wall (all parties)",
            "server",
            "client mean",
            "client max",
            "upload/client",
            "",
        ],
        rows,
    )
    lines += ["", *_limit_lines(scale["ladder"])]
    return lines


def _limit_lines(ladder: list[dict[str, Any]]) -> list[str]:
    done = [r for r in ladder if not r.get("skipped")]
    if not done:
        return []
    largest = max(done, key=lambda r: r["n"] * r["m"])
    # The whole simulation is about linear in n m (k + 1) at fixed k: extrapolate.
    factor = 600 / largest["wall_seconds"]
    return [
        f"Largest setting completed in this run: n = {largest['n']:,}, m = {largest['m']:,} "
        f"in {_s(largest['wall_seconds'])} of wall time for the whole simulation (server and "
        f"every client in one process). Extrapolating linearly in n m, a 10-minute run "
        f"would reach about {factor:.0f}x that work (e.g. n = {largest['n'] * factor:,.0f} at "
        f"m = {largest['m']:,}); an estimate, not a measurement.",
    ]


def render_markdown(document: dict[str, Any], plots_dir: str | None = None) -> str:
    """The markdown body of BENCHMARKS.md (without the hand-written notes)."""
    summary = summarize(document)
    runs = document["runs"]
    studies = document["studies"]
    lines = _header(document, summary)
    lines += ["", "## Costs per round and party", ""]
    reference = _reference_runs(document)
    for run in reference:
        lines += [f"**{_setting(run)}**", "", *_round_table(run), ""]
    titles = {
        "n": "Versus the number of clients n",
        "m": "Versus the vector length m",
        "dropout": "Versus the dropout rate",
    }
    for study, title in titles.items():
        group = [runs[k] for k in studies.get(study, [])]
        if group:
            lines += [f"## {title}", "", *_sweep_table(group), ""]
    paper = _paper_rows(document)
    lines += ["## Against Bonawitz et al. 2017", ""]
    lines += [
        f"Figures of the paper cited from ANCHORS.md ({document['paper_2017']['source']}); "
        "ours measured here, complete graph, m = 100K, one core. Client = a client's whole "
        "run; server = the server's whole run.",
        "",
    ]
    if paper:
        lines += _table(
            ["n", "dropout", "client (2017)", "client (ours)", "server (2017)", "server (ours)"],
            [
                [
                    f"{r['n']:,}",
                    f"{r['dropout']:.0%}",
                    _s(r["paper_client"]),
                    _s(r["ours_client"]),
                    _s(r["paper_server"]),
                    _s(r["ours_server"]),
                ]
                for r in paper
            ],
        )
    else:
        lines.append("Not run in this plan (the quick plan skips n = 500 and 1000).")
    lines += ["", *_expansion_lines(document)]
    he = [runs[k] for k in studies.get("he", [])]
    if he:
        lines += [
            "",
            "## Threshold HE (threshold Paillier, 2048-bit key; CKKS, N = 8192; threshold "
            "CKKS, N = 8192, committee-generated key)",
            "",
            *_he_table(he),
        ]
    lines += ["", *_scale_lines(document), ""]
    if plots_dir is not None:
        lines += ["## Plots", ""]
        for name, title in PLOTS.items():
            lines += [f"![{title}]({plots_dir}/{name})", ""]
    lines += ["## Floors measured in this run", ""]
    floors = document["floors"]
    lines += _table(
        ["work", "seconds"],
        [[f"one mask, m = {int(m):,}", _s(s)] for m, s in floors["per_mask_seconds"].items()]
        + [["one X25519 + HKDF", _s(floors["per_agreement_seconds"])]],
    )
    outliers = summary["time_outliers"]
    if outliers:
        lines += ["", "Rounds outside the stated time tolerance:", ""]
        lines += [
            f"* {c['run']}, {c['round']}, {c['party']}: measured {_s(c['measured'])}, "
            f"predicted {_s(c['predicted'])} ({_x(c['ratio'])})"
            for c in outliers
        ]
    return "\n".join(lines) + "\n"


def _reference_runs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One run per protocol for the per-round tables: the n-study's largest common size
    for the masking protocols, the HE base setting."""
    runs = document["runs"]
    picked: dict[str, dict[str, Any]] = {}
    plan = document["plan"]
    swept = swept_protocols(document)
    for run in runs.values():
        protocol = run["protocol"]
        if protocol in swept:
            wanted = (plan["dropout_n"], plan["dropout_m"], plan["sweep_dropout"])
        else:
            base_n, base_m = plan["he_base"][protocol]
            wanted = (base_n, base_m, 0.0)
        if (run["n"], run["m"], run["dropout_rate"]) == wanted:
            picked.setdefault(protocol, run)
    return [picked[p] for p in (*swept, *he_protocols(document)) if p in picked]


def write_markdown(document: dict[str, Any], path: str, plots_dir: str | None) -> None:
    """Write the report to ``path``, keeping any notes after :data:`NOTES_MARKER`."""
    target = Path(path)
    notes = ""
    if target.exists():
        old = target.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1]
    relative = None
    if plots_dir is not None:
        relative = os.path.relpath(plots_dir, target.parent or Path("."))
    body = render_markdown(document, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body + "\n" + NOTES_MARKER + (notes or "\n"), encoding="utf-8")


def write_json(document: dict[str, Any], path: str) -> None:
    """The whole document as JSON (floats as JSON numbers, tuples as arrays)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, sort_keys=False, default=_jsonable)
        handle.write("\n")


def _jsonable(value: object) -> object:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def console_summary(document: dict[str, Any]) -> str:
    """A short plain-text table for the terminal: one line per run."""
    lines = [
        f"{'run':<44} {'wall':>8} {'server':>9} {'client':>9} {'unmask/floor':>12} "
        f"{'Flower x':>9} {'model bytes':>11}"
    ]
    for run in _all_runs(document):
        flower = run.get("flower") or {}
        speed = _ratio(flower.get("server_seconds"), _unmasking_seconds(run))
        floor = _ratio(_unmasking_seconds(run), run["floor"]["server_seconds"])
        lines.append(
            f"{run['key']:<44} {_s(run['wall_seconds']):>8} {_s(run['server_seconds']):>9} "
            f"{_s(run['client_seconds_mean']):>9} {_x(floor):>12} {_x(speed):>9} "
            f"{run['bytes_check']:>11}"
        )
    summary = summarize(document)
    lines.append(
        f"bytes exact in {summary['bytes_exact']}/{summary['runs']} runs; time model within "
        f"{TOLERANCE:g}x in {summary['time_within_tolerance']}/{summary['time_checks']} "
        f"dominant rounds; load average {document['meta']['load_average_start'][0]:.2f} "
        "at the start"
    )
    return "\n".join(lines)
