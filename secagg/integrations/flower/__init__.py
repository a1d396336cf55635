"""Secure aggregation on Flower's Message API (ServerApp / ClientApp, flwr >= 1.20).

Server side, with any FedAvg-style Message-API strategy::

    grid = SecAggGrid(grid, SecAggSettings(clip=4.0, max_weight=10_000))
    FedAvg().start(grid=grid, initial_arrays=arrays, num_rounds=3)

Legacy strategies (``flwr.server.strategy``), in place of Flower's ``SecAggPlusWorkflow``::

    DefaultWorkflow(fit_workflow=SecAggWorkflow(SecAggSettings(...)))

Client side: ``ClientApp(mods=[secagg_mod])`` (or ``make_secagg_mod(ClientPolicy(...))``).
``secagg.integrations.flower.testing.InProcessGrid`` runs ClientApps in process for tests.

The Flower layer is transport only: it maps node ids to client ids ``1..n``, carries the
protocol's message bytes in ``ArrayRecord``s, keeps the client's protocol state in the
node's ``context.state`` between ClientApp processes, and calls ``close_round()`` when a
stage's deadline passes. All protocol logic lives in :mod:`secagg.protocols`.
"""

from __future__ import annotations

from secagg.integrations.flower.client_mod import SECAGG_ERROR_CODE, make_secagg_mod, secagg_mod
from secagg.integrations.flower.client_state import BonawitzBackend, ClientBackend
from secagg.integrations.flower.grid import SecAggGrid
from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
from secagg.integrations.flower.legacy import SecAggWorkflow
from secagg.integrations.flower.server import RoundReport, is_train_message, run_secure_round
from secagg.integrations.flower.settings import ClientPolicy, SecAggSettings, default_threshold

__all__ = [
    "SECAGG_ERROR_CODE",
    "ArrayLayout",
    "ArraySpec",
    "BonawitzBackend",
    "ClientBackend",
    "ClientPolicy",
    "RoundReport",
    "SecAggGrid",
    "SecAggSettings",
    "SecAggWorkflow",
    "default_threshold",
    "is_train_message",
    "make_secagg_mod",
    "run_secure_round",
    "secagg_mod",
]
