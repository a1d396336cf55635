"""The Flower integration end to end, in process: real ClientApps, an in-process SuperLink.

:class:`InProcessGrid` delivers each message to a real ``flwr.clientapp.ClientApp`` (the
example app's training behind the secagg mod) and returns its reply, as the SuperLink
would, with deep copies at every process boundary. Flower's own FedAvg and FedAdam drive
the rounds through :class:`SecAggGrid`; nodes vanish at chosen stages and replies are
tampered with.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    Metadata,
    RecordDict,
)
from flwr.serverapp.strategy import FedAdam, FedAvg
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, UsageError
from secagg.integrations.flower import (
    ClientPolicy,
    RoundReport,
    SecAggGrid,
    SecAggSettings,
    run_secure_round,
)
from secagg.integrations.flower.testing import Tamper
from secagg.integrations.flower.wire import (
    HEADER_KEY,
    PAYLOAD_KEY,
    Envelope,
    read_envelope,
    write_envelope,
)
from tests.helpers.flower import (
    check_report,
    make_app,
    make_grid,
    node_of,
    server_task_identity,
    train_messages,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "flower_app"))
from secagg_flower_app.task import expected_mean, initial_arrays


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """What a ServerApp process has set when it builds messages (run 1, SuperLink node 0)."""
    with server_task_identity():
        yield


# "bonawitz": the complete graph, whose dropout tolerance the tests below count on.
SETTINGS = SecAggSettings(protocol="bonawitz", clip=4.0, max_weight=100.0,
                          secure_metrics=("train_loss",), train_timeout=0.02,
                          stage_timeout=0.02, poll_interval=0.01)


def test_fedavg_two_rounds_no_dropout() -> None:
    fake = make_grid(range(5))
    secure = SecAggGrid(fake, SETTINGS)
    result = FedAvg(fraction_evaluate=0.0, min_available_nodes=5).start(
        grid=secure, initial_arrays=initial_arrays(), num_rounds=2)
    assert len(secure.reports) == 2
    for server_round, report in enumerate(secure.reports, start=1):
        check_report(report, range(5), server_round)
        assert report.stages == 5 and not report.excluded_nodes
        assert report.bytes_sent > 0 and report.bytes_received > 0
    final, _, _ = expected_mean(range(5), 2)
    for name, values in final.items():
        np.testing.assert_allclose(result.arrays[name].numpy(), values, atol=1e-5)
    # The strategy saw only the aggregate: the train metrics are the secure weighted mean.
    metrics = result.train_metrics_clientapp[2]
    assert metrics["train_loss"] == pytest.approx(expected_mean(range(5), 2)[2], abs=1e-5)


def test_evaluate_passes_through_and_fedadam_works() -> None:
    fake = make_grid(range(4))
    secure = SecAggGrid(fake, SETTINGS)
    result = FedAdam(min_available_nodes=4, min_evaluate_nodes=4).start(
        grid=secure, initial_arrays=initial_arrays(), num_rounds=1)
    assert secure.reports[0].ok and result.evaluate_metrics_clientapp
    assert len(fake.batches) == 6  # five secagg stages, then one plain evaluate round


@pytest.mark.parametrize("stage", [0, 1, 2, 3, 4])
def test_dropout_at_each_stage(stage: int) -> None:
    fake = make_grid(range(5))
    fake.drop_from[node_of(3)] = (1, stage)
    report = run_secure_round(fake, train_messages(fake), SETTINGS)
    # A node that vanishes at unmasking already sent its masked input: it is in the sum.
    included = [0, 1, 2, 3, 4] if stage == 4 else [0, 1, 2, 4]
    check_report(report, included, 1)
    if stage < 4:
        assert f"stage {stage} (" in report.excluded_nodes[node_of(3)]
        assert "no reply within" in report.excluded_nodes[node_of(3)]
    else:  # in the sum, yet its failure is recorded
        assert "no reply within" in report.stage_failures[node_of(3)][0]


def test_dropout_in_second_round_of_fedavg() -> None:
    fake = make_grid(range(4))
    fake.drop_from[node_of(1)] = (2, 3)  # vanishes before its masked input of round 2
    secure = SecAggGrid(fake, SETTINGS)
    FedAvg(fraction_evaluate=0.0, min_available_nodes=4).start(
        grid=secure, initial_arrays=initial_arrays(), num_rounds=2)
    check_report(secure.reports[0], range(4), 1)
    check_report(secure.reports[1], [0, 2, 3], 2)
    assert set(secure.reports[1].excluded_nodes) == {node_of(1)}


def test_secagg_plus_graph() -> None:
    fake = make_grid(range(8))
    fake.drop_from[node_of(5)] = (1, 3)
    report = run_secure_round(fake, train_messages(fake),
                              dataclasses.replace(SETTINGS, protocol="secagg+", degree=4))
    check_report(report, [0, 1, 2, 3, 4, 6, 7], 1)


def same_sender(reply: Message, content: RecordDict) -> Message:
    """``reply`` with other content (what a node that misbehaves would send)."""
    return Message(metadata=copy.deepcopy(reply.metadata), content=content)


def _truncate(target: int, at_stage: int) -> Tamper:
    def tamper(node: int, stage: int, reply: Message) -> Message | None:
        if node != target or stage != at_stage:
            return reply
        envelope = read_envelope(reply.content, party=0, max_bytes=2**40)
        # Truncated in transit: the protocol's decoder refuses it (a flipped bit inside a
        # masked vector could not be noticed by anyone: semi-honest inputs carry no MAC).
        payload = envelope.payloads[0][: len(envelope.payloads[0]) // 2]
        return same_sender(reply, write_envelope(RecordDict(), Envelope(
            envelope.stage, envelope.session_id, (payload,))))
    return tamper


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_undecodable_reply_excludes_only_its_sender(stage: int) -> None:
    fake = make_grid(range(5))
    fake.tamper = _truncate(node_of(2), stage)
    report = run_secure_round(fake, train_messages(fake), SETTINGS)
    check_report(report, [0, 1, 3, 4], 1)


def run_tampered_six(tamper: Tamper) -> RoundReport:
    """One round of six nodes whose replies pass through ``tamper``: asserts it is the exact
    mean over nodes 2 to 5 (nodes 0 and 1 left out) and returns the report."""
    fake = make_grid(range(6))
    fake.tamper = tamper
    report = run_secure_round(fake, train_messages(fake), SETTINGS)
    check_report(report, [2, 3, 4, 5], 1)
    return report


def test_bad_envelopes_error_replies_and_stray_records() -> None:
    def tamper(node: int, stage: int, reply: Message) -> Message | None:
        if node == node_of(0) and stage == 0:
            return same_sender(reply, RecordDict({HEADER_KEY: ConfigRecord({"v": 9})}))
        if node == node_of(1) and stage == 1:
            bad = copy.deepcopy(reply.content)
            bad[HEADER_KEY]["stage"] = 5  # a reply for another stage
            return same_sender(reply, bad)
        if node == node_of(2) and stage == 0:
            # A misconfigured app also sends its arrays in clear: they are ignored.
            content = copy.deepcopy(reply.content)
            content["arrays"] = ArrayRecord({"x": Array(np.ones(3))})
            return same_sender(reply, content)
        return reply

    report = run_tampered_six(tamper)
    assert "stage 0 (advertise_keys): bad reply" in report.excluded_nodes[node_of(0)]
    assert "stage 1 (share_keys): bad reply" in report.excluded_nodes[node_of(1)]


def test_replies_never_carry_plaintext() -> None:
    seen: list[RecordDict] = []

    def spy(node: int, stage: int, reply: Message) -> Message:
        seen.append(reply.content)
        return reply

    fake = make_grid(range(3))
    fake.tamper = spy
    run_secure_round(fake, train_messages(fake), SETTINGS)
    assert seen
    for content in seen:
        assert set(content.keys()) == {HEADER_KEY, PAYLOAD_KEY}
        assert not content.metric_records


def test_too_few_survivors_aborts_without_a_result() -> None:
    fake = make_grid(range(3))
    fake.drop_from[node_of(0)] = (1, 1)
    fake.drop_from[node_of(1)] = (1, 1)
    secure = SecAggGrid(fake, SETTINGS)
    replies = list(secure.send_and_receive(train_messages(fake)))
    # No aggregate: only one error reply per node, each with its reason.
    assert len(replies) == 3 and all(r.has_error() for r in replies)
    assert all("not in the sum" in r.error.reason for r in replies)
    report = secure.reports[0]
    assert not report.ok and "abort" in (report.aborted or "")
    assert set(report.excluded_nodes) == {node_of(p) for p in range(3)}


def test_too_few_sampled_nodes_is_not_run() -> None:
    fake = make_grid(range(2))
    report = run_secure_round(fake, train_messages(fake), SETTINGS)
    assert not report.ok and "min_clients" in (report.aborted or "")
    assert fake.batches == []


def test_clients_refuse_sessions_below_their_policy() -> None:
    fake = make_grid(range(4), app=make_app(ClientPolicy(min_clients=5)))
    report = run_secure_round(fake, train_messages(fake), SETTINGS)
    assert not report.ok
    assert all("MaliciousRequestError" in r for r in report.excluded_nodes.values())


@given(st.integers(3, 6), st.data())
def test_any_dropout_pattern_sums_exactly_the_included(n: int, data: st.DataObject) -> None:
    fake = make_grid(range(n))
    drops = data.draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, 4), max_size=n))
    for partition, stage in drops.items():
        fake.drop_from[node_of(partition)] = (1, stage)
    report = run_secure_round(fake, train_messages(fake), SETTINGS)
    # Unmasking needs t = n//2 + 1 answers; a node lost at unmasking is still in the sum.
    assert report.ok == (n - len(drops) >= n // 2 + 1), report
    if report.ok:
        check_report(report, [p for p in range(n) if drops.get(p, 4) == 4], 1)
    else:
        assert report.arrays is None and set(report.excluded_nodes) == set(fake.apps)


def test_superlink_error_replies_and_spoofed_senders() -> None:
    def tamper(node: int, stage: int, reply: Message) -> Message | None:
        meta = reply.metadata
        if node == node_of(0) and stage == 1:
            # What the SuperLink writes for an unreachable node: sent by node 0 (itself).
            unavailable = Metadata(meta.run_id, "", 0, 0, meta.reply_to_message_id,
                                   meta.group_id, meta.created_at, meta.ttl, meta.message_type)
            return Message(metadata=unavailable, error=Error(5, "node unavailable"))
        if node == node_of(1) and stage == 0:
            # A reply to node 1's message that claims to come from node 2: not node 1's.
            spoofed = copy.deepcopy(meta)
            spoofed.__dict__["_src_node_id"] = node_of(2)
            return Message(metadata=spoofed, content=copy.deepcopy(reply.content))
        return reply

    report = run_tampered_six(tamper)
    assert ("stage 1 (share_keys): error reply: node unavailable"
            in report.excluded_nodes[node_of(0)])
    assert "stage 0 (advertise_keys): no reply" in report.excluded_nodes[node_of(1)]


def test_mixed_batches_are_refused_and_reports_of_aborted_rounds_have_no_reply() -> None:
    fake = make_grid(range(3))
    secure = SecAggGrid(fake, SETTINGS)
    mixed = [*train_messages(fake)[:2],
             Message(RecordDict({"config": ConfigRecord({})}), node_of(2), "evaluate")]
    with pytest.raises(ConfigurationError, match="mixes"):
        secure.send_and_receive(mixed)
    assert fake.batches == []
    report = run_secure_round(make_grid(range(2)), train_messages(make_grid(range(2))),
                              SETTINGS)
    with pytest.raises(UsageError, match="no aggregate"):
        report.reply_content()
