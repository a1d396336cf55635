"""What a Flower user sets and what the round report and the logs tell them: fractions
for degree and threshold, the finder's graph by default, deadlines (none, fixed, from the
latest reply), every stage failure recorded, clipping reported, Flower's view of the
single aggregate reply, and log lines without a secret."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator

import pytest
from flwr.app import Error, Message
from flwr.serverapp.strategy import FedAvg

from secagg.errors import ConfigurationError
from secagg.integrations.flower import (
    RoundReport,
    SecAggGrid,
    SecAggSettings,
    forward_to_flower,
    run_secure_round,
)
from secagg.integrations.flower.bonawitz import graph_for
from secagg.integrations.flower.client_mod import STATE_KEY
from secagg.integrations.flower.settings import resolve_degree, resolve_threshold
from secagg.integrations.flower.testing import InProcessGrid
from tests.helpers.flower import (
    assert_no_secret_in,
    check_report,
    initial_arrays,
    make_app,
    make_grid,
    node_of,
    server_task_identity,
    train_messages,
)


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with server_task_identity():
        yield


FAST = SecAggSettings(clip=4.0, max_weight=100.0, secure_metrics=("train_loss",),
                      train_timeout=0.05, stage_timeout=0.05, poll_interval=0.005)


# -- degree and threshold as Flower's num_shares / reconstruction_threshold ---------------


def test_fractions_resolve_as_flower_does() -> None:
    # num_shares = 0.5 of 10 nodes: 5 holders (the node and 4 neighbours).
    assert resolve_degree(0.5, 10) == 4
    # 0.4 of 10 = 4 holders: raised to 5 (an even degree exists on any n).
    assert resolve_degree(0.4, 10) == 4
    assert resolve_degree(1.0, 10) is None and resolve_degree(0.1, 10) is None  # complete
    assert resolve_degree(3, 10) == 3 and resolve_degree(9, 10) is None
    assert resolve_threshold(0.6, 5, "semi-honest", complete=False) == 3  # ceil(3.0)
    assert resolve_threshold(0.5, 5, "semi-honest", complete=False) == 3  # ceil(2.5)
    assert resolve_threshold(0.1, 5, "semi-honest", complete=False) == 2  # at least 2
    assert resolve_threshold(None, 5, "semi-honest", complete=True) == 3
    for bad in (0.0, 1.5, -1, float("nan"), True, "0.5", 0):
        with pytest.raises(ConfigurationError):
            SecAggSettings(degree=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            SecAggSettings(threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="complete graph"):
        SecAggSettings(protocol="bonawitz", degree=4)


def test_the_default_graph_comes_from_the_parameter_finder() -> None:
    settings = SecAggSettings()
    assert graph_for(settings, 3, sparse=True) == (None, 2)  # too few nodes for sparsity
    assert graph_for(settings, 100, sparse=True) == (12, 6)  # fcp's (k, t) for 5 % / 5 %
    assert graph_for(settings, 100, sparse=False) == (None, 51)  # "bonawitz": complete
    fraction = dataclasses.replace(settings, degree=0.2, threshold=0.7)
    assert graph_for(fraction, 100, sparse=True) == (20, 15)  # 21 holders, ceil(14.7)


def test_a_fractional_graph_over_flower() -> None:
    grid = make_grid(range(10))
    grid.drop_from[node_of(7)] = (1, 3)
    report = run_secure_round(grid, train_messages(grid),
                              dataclasses.replace(FAST, degree=0.5, threshold=0.6))
    check_report(report, [p for p in range(10) if p != 7], 1)
    assert report.summary == "secagg+, SecAgg+ graph k=4, t=3, semi-honest"


# -- deadlines ----------------------------------------------------------------------------


def sequential(step: float) -> InProcessGrid:
    """Five nodes whose replies come one after another, ``step`` seconds apart: what an
    engine that runs one ClientApp at a time (Ray on a 2-core machine) looks like."""
    grid = make_grid(range(5))
    grid.reply_delay = lambda node, stage, position: step * (position + 1)
    return grid


def test_fixed_deadlines_drop_queued_nodes_progress_and_none_do_not() -> None:
    # Replies at 0.1, 0.2, ... 0.5 s. A fixed deadline of 0.35 s keeps the first three
    # (t = 3: the round completes) and drops at least the last one, which only a stall of
    # 0.15 s of this process could let in. From the latest reply, no reply is late.
    fixed = dataclasses.replace(FAST, protocol="bonawitz", train_timeout=0.35,
                                stage_timeout=0.35)
    grid = sequential(0.1)
    report = run_secure_round(grid, train_messages(grid), fixed)
    assert report.ok and node_of(4) in report.excluded_nodes
    assert "no reply within 0.35 s" in report.excluded_nodes[node_of(4)]
    for settings in (dataclasses.replace(fixed, deadline="progress"),
                     dataclasses.replace(fixed, train_timeout=None, stage_timeout=None)):
        grid = sequential(0.1)
        report = run_secure_round(grid, train_messages(grid), settings)
        check_report(report, range(5), 1)
        assert not report.stage_failures


def test_no_deadline_still_ends_on_the_engines_error_reply() -> None:
    grid = make_grid(range(4))
    # What the SuperLink writes for a node it lost: an error reply (Flower's
    # ErrorCode.NODE_UNAVAILABLE), so that no deadline is needed to go on without it.
    grid.tamper = lambda node, stage, reply: (
        Message(metadata=reply.metadata, error=Error(5, "node unavailable"))
        if node == node_of(3) and stage == 1 else reply)
    settings = dataclasses.replace(FAST, protocol="bonawitz", train_timeout=None,
                                   stage_timeout=None)
    report = run_secure_round(grid, train_messages(grid), settings)
    check_report(report, [0, 1, 2], 1)
    assert "node unavailable" in report.excluded_nodes[node_of(3)]


# -- every failure of every stage is in the report ---------------------------------------


def test_a_late_reply_is_refused_and_recorded() -> None:
    grid = make_grid(range(5))
    grid.held[(node_of(2), 1)] = 1  # its share-keys reply arrives during the next stage
    report = run_secure_round(grid, train_messages(grid),
                              dataclasses.replace(FAST, protocol="bonawitz"))
    check_report(report, [0, 1, 3, 4], 1)
    failures = report.stage_failures[node_of(2)]
    assert failures[0] == "stage 1 (share_keys): no reply within 0.05 s"
    assert failures[1] == ("stage 1 (share_keys): late reply refused: the stage had closed")
    assert report.excluded_nodes[node_of(2)].startswith("dropped")


def test_a_failure_after_the_masked_input_is_recorded_though_in_the_sum() -> None:
    # The case: a node's unmasking reply is an error (its ClientApp refused a stale
    # state). Its masked input is in the sum (the others' shares unmask it), so it is not
    # "excluded", but the report names its failure.
    grid = make_grid(range(5))
    grid.tamper = lambda node, stage, reply: (
        Message(metadata=reply.metadata,
                error=Error(6, "secagg refused: stage 4 out of order (expected 5)"))
        if node == node_of(1) and stage == 4 else reply)
    report = run_secure_round(grid, train_messages(grid),
                              dataclasses.replace(FAST, protocol="bonawitz"))
    check_report(report, range(5), 1)
    assert not report.excluded_nodes
    assert report.stage_failures == {node_of(1): (
        "stage 4 (unmasking): error reply: secagg refused: stage 4 out of order "
        "(expected 5)",)}
    assert "failed_in_a_stage=[1017]" in repr(report)


# -- clipping -----------------------------------------------------------------------------


def test_a_clipped_metric_is_reported_and_a_metric_bound_avoids_it(
        caplog: pytest.LogCaptureFixture) -> None:
    losses = {0: 3.0, 1: 5.0, 2: 6.5}  # beyond clip = 4.0 for two of three nodes
    grid = make_grid(range(3), make_app(loss_of=losses))
    with caplog.at_level(logging.WARNING, logger="secagg"):
        report = run_secure_round(grid, train_messages(grid), FAST)
    assert report.ok and report.clipped["arrays"] == 0.0
    weights = {0: 5, 1: 8, 2: 11}  # the example's weights
    assert report.clipped["metrics"] == pytest.approx(19 / 24, abs=1e-5)
    true_loss = sum(weights[p] * losses[p] for p in losses) / 24
    assert report.metrics["train_loss"] < true_loss - 0.5  # silently wrong without a bound
    assert "of the aggregated weight had metrics clipped" in caplog.text
    assert "metrics ['train_loss'] of this node lie beyond their bound" in caplog.text
    grid = make_grid(range(3), make_app(loss_of=losses))
    report = run_secure_round(grid, train_messages(grid),
                              dataclasses.replace(FAST, metric_clip=10.0))
    assert report.clipped == {"arrays": 0.0, "metrics": 0.0}
    assert report.metrics["train_loss"] == pytest.approx(true_loss, abs=1e-4)


# -- what Flower's strategy sees, and the logs -------------------------------------------


def test_the_strategy_gets_one_aggregate_and_one_error_per_excluded_node(
        caplog: pytest.LogCaptureFixture) -> None:
    grid = make_grid(range(4))
    grid.drop_from[node_of(3)] = (1, 1)
    secure = SecAggGrid(grid, dataclasses.replace(FAST, protocol="bonawitz"))
    replies = list(secure.send_and_receive(train_messages(grid)))
    assert [r.has_error() for r in replies] == [False, True]
    assert replies[1].metadata.src_node_id == node_of(3)
    assert "not in the sum: dropped in share_keys" in replies[1].error.reason
    with caplog.at_level(logging.INFO):
        FedAvg(fraction_evaluate=0.0, min_available_nodes=4).start(
            grid=secure, initial_arrays=initial_arrays(), num_rounds=1)
    text = caplog.text
    assert "the strategy receives ONE reply, the secure aggregate of 3 nodes" in text
    assert "Received 1 results and 1 failures" in text  # Flower's own line follows
    assert f"Received error in reply from node {node_of(3)}: secagg: not in the sum" in text


def test_logs_say_what_happened_and_hold_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    grid = make_grid(range(5))
    grid.drop_from[node_of(4)] = (1, 3)
    states: list[bytes] = []
    inner = grid.tamper

    def keep_states(node: int, stage: int, reply: Message) -> Message | None:
        record = grid.contexts[node].state.config_records.get(STATE_KEY)
        if record is not None and isinstance(record["client"], bytes) and record["client"]:
            states.append(record["client"])  # the client's secret state (keys, seeds, input)
        return reply if inner is None else inner(node, stage, reply)

    grid.tamper = keep_states
    with caplog.at_level(logging.DEBUG, logger="secagg"):
        report = run_secure_round(grid, train_messages(grid),
                                  dataclasses.replace(FAST, protocol="bonawitz"))
    assert report.ok and states
    text = caplog.text
    for line in ("stage 0 (advertise_keys): 5 of 5 nodes answered",
                 "stage 3 (masked_input): 4 of 5 nodes answered",
                 f"node {node_of(4)} failed in stage 3 (masked_input): no reply within",
                 "aggregated 4 of 5 nodes in", "joined session"):
        assert line in text, line
    assert_no_secret_in(text, states)


def test_forward_to_flower_attaches_flowers_console_handler_once() -> None:
    from flwr.common.logger import console_handler

    logger = logging.getLogger("secagg")
    saved = (list(logger.handlers), logger.level)
    try:
        logger.handlers, logger.level = [], logging.NOTSET
        forward_to_flower()
        forward_to_flower()
        assert logger.handlers == [console_handler] and logger.level == logging.INFO
        logger.setLevel(logging.WARNING)
        forward_to_flower()
        assert logger.level == logging.WARNING  # an application's choice wins
    finally:
        logger.handlers, logger.level = saved


def test_reports_of_rounds_not_run_say_why() -> None:
    grid = make_grid(range(2))
    report = run_secure_round(grid, train_messages(grid), FAST)
    assert isinstance(report, RoundReport) and not report.ok
    assert re.search("min_clients = 3", report.aborted or "")
    assert set(report.excluded_nodes.values()) == {"round not run"}
