"""The ServerApp: Flower's FedAvg, unchanged, on a SecAggGrid."""

from __future__ import annotations

import json
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from secagg.integrations.flower import RoundReport, SecAggGrid, SecAggSettings
from secagg_flower_app.task import as_float, as_int, initial_arrays

app = ServerApp()


def _report_json(round_index: int, report: RoundReport) -> dict[str, object]:
    arrays = report.arrays
    return {
        "round": round_index,
        "included_nodes": sorted(report.included_nodes),
        "excluded_nodes": {str(k): v for k, v in sorted(report.excluded_nodes.items())},
        "total_weight": report.total_weight,
        "metrics": dict(report.metrics),
        "arrays": None if arrays is None else
        {name: arrays[name].numpy().tolist() for name in arrays},
        "aborted": report.aborted,
        "stages": report.stages,
        "seconds": report.seconds,
        "bytes_sent": report.bytes_sent,
        "bytes_received": report.bytes_received,
    }


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FedAvg with secure aggregation; write the rounds' reports as JSON if asked."""
    cfg = context.run_config
    nodes = as_int(cfg["min-nodes"])
    degree = as_int(cfg["degree"])
    settings = SecAggSettings(
        bits=as_int(cfg["bits"]),
        clip=as_float(cfg["clip"]),
        max_weight=as_float(cfg["max-weight"]),
        degree=degree or None,
        min_clients=nodes,
        train_timeout=as_float(cfg["train-timeout"]),
        stage_timeout=as_float(cfg["stage-timeout"]),
        secure_metrics=("train_loss",),
    )
    secure_grid = SecAggGrid(grid, settings)
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=nodes,
                      min_available_nodes=nodes)
    result = strategy.start(grid=secure_grid, initial_arrays=initial_arrays(),
                            num_rounds=as_int(cfg["num-server-rounds"]))
    path = str(cfg.get("result-path", ""))
    if path:
        rounds = [_report_json(i + 1, r) for i, r in enumerate(secure_grid.reports)]
        final = {name: result.arrays[name].numpy().tolist() for name in result.arrays}
        tmp = Path(path + ".tmp")
        tmp.write_text(json.dumps({"rounds": rounds, "final_arrays": final}), encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a file
