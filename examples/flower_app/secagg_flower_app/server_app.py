"""The ServerApp: Flower's FedAvg, unchanged, on a SecAggGrid."""

from __future__ import annotations

import json
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from secagg.integrations.flower import (
    IdentityRegistry,
    RoundReport,
    SecAggGrid,
    SecAggSettings,
    privacy_from_run_config,
)
from secagg.integrations.flower.node_keys import load_he_public_key
from secagg_flower_app.task import as_count_or_fraction, as_float, as_int, initial_arrays

app = ServerApp()


def _report_json(round_index: int, report: RoundReport) -> dict[str, object]:
    arrays = report.arrays
    return {
        "round": round_index,
        "protocol": report.protocol,
        "summary": report.summary,
        "included_nodes": sorted(report.included_nodes),
        "excluded_nodes": {str(k): v for k, v in sorted(report.excluded_nodes.items())},
        "stage_failures": {str(k): list(v) for k, v in sorted(report.stage_failures.items())},
        "identities": {str(k): v for k, v in sorted(report.identities.items())},
        "total_weight": report.total_weight,
        "metrics": dict(report.metrics),
        "clipped": dict(report.clipped),
        "arrays": None if arrays is None else
        {name: arrays[name].numpy().tolist() for name in arrays},
        "aborted": report.aborted,
        "stages": report.stages,
        "stage_seconds": list(report.stage_seconds),
        "seconds": report.seconds,
        "bytes_sent": report.bytes_sent,
        "bytes_received": report.bytes_received,
    }


def settings_of(cfg: dict[str, object]) -> SecAggSettings:
    """The SecAggSettings the run config asks for (0 = "not set": the protocol's default,
    or no deadline for the timeouts)."""
    protocol = str(cfg.get("protocol", "secagg+"))
    mode = str(cfg.get("mode", "semi-honest"))
    registry = str(cfg.get("registry", ""))
    public_key = str(cfg.get("he-public-key", ""))
    metric_clip = as_float(cfg.get("metric-clip", 0.0))
    train_timeout = as_float(cfg["train-timeout"])
    stage_timeout = as_float(cfg["stage-timeout"])
    common = dict(
        protocol=protocol,
        mode=mode,
        identities=IdentityRegistry.load(registry) if registry else None,
        protocol_options={"public_key": load_he_public_key(public_key)} if public_key else {},
        degree=as_count_or_fraction(cfg.get("degree", 0)),
        threshold=as_count_or_fraction(cfg.get("threshold", 0)),
        min_clients=as_int(cfg["min-nodes"]),
        train_timeout=train_timeout or None,
        stage_timeout=stage_timeout or None,
        deadline=str(cfg.get("deadline", "fixed")),
    )
    privacy = privacy_from_run_config(cfg)  # the dp-* keys, if any (docs/privacy.md)
    if privacy is not None:
        # The plan owns bits and the clip; the mean is unweighted; metrics stay home.
        return SecAggSettings.with_privacy(privacy, **common)
    return SecAggSettings(
        bits=as_int(cfg["bits"]),
        clip=as_float(cfg["clip"]),
        metric_clip=metric_clip or None,
        max_weight=as_float(cfg["max-weight"]),
        secure_metrics=("train_loss",),
        **common,  # type: ignore[arg-type]
    )


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FedAvg with secure aggregation; write the rounds' reports as JSON if asked."""
    cfg = context.run_config
    nodes = as_int(cfg["min-nodes"])
    secure_grid = SecAggGrid(grid, settings_of(dict(cfg)))
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
