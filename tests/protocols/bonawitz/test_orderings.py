"""Message orderings explored by a hypothesis state machine (RuleBasedStateMachine).

The machine holds one session in a :class:`secagg.testing.harness.Network` and, step by
step, delivers any in-flight message (so requests, answers and rounds interleave in every
order), lets a round's deadline pass early (clients still in flight become late), makes a
client vanish, or has a client replay its last message (also after the end). After every
step the invariants that hold at any moment (privacy of the reveals, uniform masked
inputs) are checked; at the end the session is driven to completion and every invariant of
the harness is checked: the same ones, from the same code, as the other protocol tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from secagg.protocols.base import Message
from secagg.protocols.bonawitz.server import Server
from secagg.testing import BonawitzTarget, InvariantViolation, harness
from secagg.testing import strategies as sst


class OrderingMachine(RuleBasedStateMachine):
    """Subclasses set ``targets``: the strategy of sessions to explore."""

    targets: st.SearchStrategy[Any]

    def __init__(self) -> None:
        super().__init__()
        self.network: harness.Network | None = None

    @initialize(data=st.data())
    def open_session(self, data: st.DataObject) -> None:
        target = data.draw(self.targets, label="target")
        inputs = data.draw(sst.client_inputs(target), label="inputs")
        self.network = harness.Network(target, inputs)
        self.network.start()

    @property
    def net(self) -> harness.Network:
        assert self.network is not None
        return self.network

    @precondition(lambda self: self.network is not None and self.network.pending)
    @rule(data=st.data())
    def deliver_any(self, data: st.DataObject) -> None:
        self.net.deliver(data.draw(st.integers(0, len(self.net.pending) - 1), label="index"))

    @precondition(lambda self: self.network is not None and self.network.pending)
    @rule()
    def deliver_oldest(self) -> None:
        # A second delivery rule: sessions mostly progress, so later rounds are explored.
        self.net.deliver(0)

    @precondition(lambda self: self.network is not None and self.network.running)
    @rule(now=st.integers(0, 3))
    def deadline_passes(self, now: int) -> None:
        if now == 0:  # one time in four: early deadlines, but not all the time
            self.net.deadline()

    @precondition(lambda self: self.network is not None and self.network.running)
    @rule(data=st.data(), now=st.integers(0, 3))
    def client_vanishes(self, data: st.DataObject, now: int) -> None:
        client = data.draw(st.sampled_from(self.net.target.clients), label="client")
        if now == 0:
            self.net.vanish(client)

    @precondition(lambda self: self.network is not None)
    @rule(data=st.data())
    def client_replays(self, data: st.DataObject) -> None:
        # Also after the end: a finished server must ignore it.
        self.net.replay(data.draw(st.sampled_from(self.net.target.clients), label="client"))

    @invariant()
    def nothing_leaked_so_far(self) -> None:
        if self.network is not None:
            self.network.report().check_so_far()

    def teardown(self) -> None:
        if self.network is not None:
            self.network.run_to_end()
            report = self.network.report().check()
            late = "with late clients" if report.log.late else "on time"
            event(f"{'completed' if report.result else 'aborted'} {late}")


class BonawitzOrderings(OrderingMachine):
    targets = sst.bonawitz_targets(max_clients=6, max_vector_length=4)


class ThresholdHEOrderings(OrderingMachine):
    targets = sst.threshold_he_targets(max_clients=5, max_vector_length=2)


TestBonawitzOrderings = BonawitzOrderings.TestCase
TestThresholdHEOrderings = ThresholdHEOrderings.TestCase


# --- the machine can fail ------------------------------------------------------------


class DuplicateIntolerantServer(Server):
    """Crashes on an answer from a client that already answered (the bug to find)."""

    def receive(self, message: Message) -> list[Message]:
        seen: set[tuple[int, str]] = self.__dict__.setdefault("_answers", set())
        key = (message.sender, type(message).__name__)
        if key in seen:
            raise KeyError(f"second {key[1]} from client {key[0]}")
        seen.add(key)
        return super().receive(message)


class DuplicateIntolerantTarget(BonawitzTarget):
    def make_server(self) -> Server:
        return DuplicateIntolerantServer(self.config, threads=1)


class BrokenOrderings(OrderingMachine):
    targets = sst.bonawitz_targets(max_clients=4, max_vector_length=2).map(
        lambda target: DuplicateIntolerantTarget(target.config)
    )


def test_the_machine_finds_a_server_that_crashes_on_a_replay() -> None:
    found = settings(max_examples=100, database=None, derandomize=True, phases=[Phase.generate])
    with pytest.raises(InvariantViolation, match="server raised KeyError"):
        run_state_machine_as_test(BrokenOrderings, settings=found)
