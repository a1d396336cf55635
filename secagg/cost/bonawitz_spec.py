"""The cost side of the ``bonawitz`` and ``secagg+`` registry entries.

:data:`BONAWITZ` and :data:`SECAGG_PLUS` are the :class:`~secagg.cost.model.CostModel` the
specs of :mod:`secagg.protocols.bonawitz.spec` name. They differ only by the graph their
estimate assumes (complete, or SecAgg+'s from the parameter finder), which
:func:`~secagg.protocols.bonawitz.spec.graph_parameters` chooses as ``secagg simulate`` does;
the model of a run reads the graph from the run's configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from secagg.cost.bonawitz import bonawitz_costs
from secagg.cost.model import CostModel, CostParams, FloorWork, RunFacts
from secagg.cost.timing import UnitCosts, calibrate
from secagg.protocols.bonawitz.config import ACTIVE, SEMI_HONEST, ProtocolConfig
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_UNMASKING
from secagg.protocols.bonawitz.spec import ActiveSimulation, graph_parameters

__all__ = ["BONAWITZ", "QUICK_MAX_LENGTH", "SECAGG_PLUS"]

QUICK_MAX_LENGTH = 1 << 22
"""Longest vector a calibration without a run measures (``secagg cost --calibrate`` answers
in about a second; per-element unit costs barely change beyond it)."""

_MAX_RECONSTRUCTIONS = 256


def _estimate(params: CostParams, *, sparse: bool) -> dict[str, Any]:
    """The model of ``params`` with ``secagg simulate``'s graph and threshold (one source:
    :func:`graph_parameters`, mode-aware)."""
    mode = ACTIVE if params.active else SEMI_HONEST
    degree, threshold = graph_parameters(params.simulation_params(), sparse=sparse, mode=mode)
    return bonawitz_costs(
        params.clients,
        params.dim,
        params.bits,
        threshold,
        degree,
        params.dropouts,
        active=params.active,
    )


def _public(config: ProtocolConfig | ActiveSimulation) -> ProtocolConfig:
    return config.config if isinstance(config, ActiveSimulation) else config


def _of_run(config: ProtocolConfig | ActiveSimulation, facts: RunFacts) -> dict[str, Any]:
    """The model of a run of ``config`` with the clients it really lost."""
    public = _public(config)
    return bonawitz_costs(
        public.n,
        public.vector_length,
        public.bits,
        public.threshold,
        None if public.is_complete else public.degree,
        len(facts.dropped),
        active=public.mode == ACTIVE,
    )


def _calibrate(model: Mapping[str, Any], config: object) -> UnitCosts:
    """Unit costs for the model's vector shape and one client's Shamir shape (k + 1
    holders, its threshold); the vector length capped when no run is at hand."""
    params = model["parameters"]
    m = int(params["m"]) if config is not None else min(int(params["m"]), QUICK_MAX_LENGTH)
    return calibrate(
        m=m,
        bits=params["bits"],
        holders=params["degree"] + 1,
        threshold=params["threshold"],
        reconstructions=min(params["n"], _MAX_RECONSTRUCTIONS),
    )


def _floor_work(model: Mapping[str, Any]) -> dict[str, FloorWork]:
    """The rounds Flower's steps also do: a client's masked input (its masks and key
    agreements) and the server's unmasking."""
    client = model["rounds"][ROUND_MASKED_INPUT]["client_ops"]
    server = model["rounds"][ROUND_UNMASKING]["server_ops"]
    return {
        side: FloorWork(ops.get("prg_expansions", 0), ops.get("key_agreements", 0))
        for side, ops in (("client", client), ("server", server))
    }


BONAWITZ = CostModel(
    estimate=partial(_estimate, sparse=False),
    of_run=_of_run,
    calibrate=_calibrate,
    floor_work=_floor_work,
)
"""Plain SecAgg: the complete graph, threshold the mode's minimum by default."""

SECAGG_PLUS = CostModel(
    estimate=partial(_estimate, sparse=True),
    of_run=_of_run,
    calibrate=_calibrate,
    floor_work=_floor_work,
)
"""SecAgg+: (k, t) from the parameter finder by default."""
