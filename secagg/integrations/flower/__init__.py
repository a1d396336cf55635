"""Secure aggregation on Flower's Message API (ServerApp / ClientApp, flwr >= 1.20).

Server side, with any FedAvg-style Message-API strategy::

    grid = SecAggGrid(grid, SecAggSettings(clip=4.0, max_weight=10_000))
    FedAvg().start(grid=grid, initial_arrays=arrays, num_rounds=3)

Protocols (``SecAggSettings(protocol=...)``, :mod:`.protocols`): ``"secagg+"`` (default,
graph from the parameter finder), ``"bonawitz"`` (complete graph), both also in active
mode (``mode="active"`` with an :class:`IdentityRegistry`, :mod:`.identity`), and
``"threshold-paillier"`` (a committee of key-holding nodes, :mod:`.threshold_he`).

Legacy strategies (``flwr.server.strategy``), in place of Flower's ``SecAggPlusWorkflow``::

    DefaultWorkflow(fit_workflow=SecAggWorkflow(SecAggSettings(...)))

Client side: ``ClientApp(mods=[secagg_mod])`` (or ``make_secagg_mod(ClientPolicy(...))``).
``secagg.integrations.flower.testing.InProcessGrid`` runs ClientApps in process for tests.

Distributed DP and compression: ``SecAggSettings.with_privacy(DistributedDP(...))`` (or the
``dp-*`` keys of a run config, :func:`privacy_from_run_config`); every round report then
carries the epsilon spent (docs/privacy.md).

The Flower layer is transport only: it maps node ids to client ids ``1..n``, carries the
protocol's message bytes in ``ArrayRecord``s, keeps the client's protocol state in the
node's ``context.state`` between ClientApp processes, and calls ``close_round()`` when a
stage's deadline passes. All protocol logic lives in :mod:`secagg.protocols`. Its log
lines (round transitions, exclusions with reasons, timings) go to Flower's console
(:mod:`.logs`), so ``flwr run --stream`` shows them.
"""

from __future__ import annotations

from secagg.integrations.flower.client_mod import SECAGG_ERROR_CODE, make_secagg_mod, secagg_mod
from secagg.integrations.flower.client_state import BonawitzBackend, ClientBackend
from secagg.integrations.flower.grid import SecAggGrid
from secagg.integrations.flower.identity import IdentityRegistry, generate_identities
from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
from secagg.integrations.flower.legacy import SecAggWorkflow
from secagg.integrations.flower.logs import forward_to_flower
from secagg.integrations.flower.node_keys import NodeKeys, deal_committee_keys
from secagg.integrations.flower.protocols import (
    FlowerProtocol,
    flower_protocol_names,
    register_flower_protocol,
)
from secagg.integrations.flower.server import RoundReport, is_train_message, run_secure_round
from secagg.integrations.flower.settings import (
    ClientPolicy,
    SecAggSettings,
    default_threshold,
    privacy_from_run_config,
)

__all__ = [
    "SECAGG_ERROR_CODE",
    "ArrayLayout",
    "ArraySpec",
    "BonawitzBackend",
    "ClientBackend",
    "ClientPolicy",
    "FlowerProtocol",
    "IdentityRegistry",
    "NodeKeys",
    "RoundReport",
    "SecAggGrid",
    "SecAggSettings",
    "SecAggWorkflow",
    "deal_committee_keys",
    "default_threshold",
    "flower_protocol_names",
    "forward_to_flower",
    "generate_identities",
    "is_train_message",
    "make_secagg_mod",
    "privacy_from_run_config",
    "register_flower_protocol",
    "run_secure_round",
    "secagg_mod",
]
