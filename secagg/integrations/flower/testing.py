"""An in-process Flower Grid for testing ClientApps and ServerApps with secure aggregation.

:class:`InProcessGrid` plays the SuperLink: ``send_and_receive`` hands each message to
the real ``flwr.clientapp.ClientApp`` of its destination node (mods included) and
returns the replies. Every message, reply and node ``Context`` crosses a deep copy, as
they cross process boundaries in a deployment (each ClientApp call runs on a copy of
the node's state, which is kept only after the call returns), so nothing leaks between
stages through shared objects. For fault injection, a node can vanish from a given
(training round, secagg stage) on, and a ``tamper`` hook can rewrite or swallow replies.

There are no deadlines: a vanished node simply never answers, which is what a deadline
passing looks like to the ServerApp. Replies can also be slowed down: ``reply_delay``
makes each reply available only some seconds after its push (e.g. one after another, as
an engine that runs one ClientApp at a time), and ``held`` withholds a node's reply of a
stage until more messages were pushed (a reply that arrives after its stage closed).
Not for production use.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from secagg.integrations.flower.wire import has_envelope, read_envelope

__all__ = ["IDENTIFY_STAGE", "InProcessGrid", "Tamper"]

Tamper = Callable[[int, int, Message], Message | None]
"""``(node id, secagg stage, reply) -> reply to deliver`` (``None``: no reply). The stage is
-1 for a message without secagg records and :data:`IDENTIFY_STAGE` for an identification."""

IDENTIFY_STAGE = -2
"""The stage the hooks see for an identification request (it precedes stage 0)."""


@dataclass
class InProcessGrid(Grid):
    """A Grid whose nodes are in-process ClientApps (see the module docstring).

    ``apps`` maps node id -> ClientApp, ``contexts`` node id -> its Context (node config,
    persistent state). ``drop_from[node] = (round, stage)`` makes the node silent from the
    secagg ``stage`` of its ``round``-th secure aggregation on (stage 0 counts rounds).
    ``batches`` records the destination nodes of every push (or ``send_and_receive``).
    ``isolate=False`` skips the deep copies (faster; for benchmarks whose messages are
    never reused: the mods may then modify the sender's message objects).
    ``reply_delay(node, stage, position in the push)`` is the seconds after the push returned
    at which a reply becomes available; ``held[(node, stage)] = k`` keeps that reply back until k
    more pushes happened.
    """

    apps: dict[int, ClientApp] = field(repr=False)
    # The nodes' states hold their protocol secrets: never in a repr.
    contexts: dict[int, Context] = field(default_factory=dict, repr=False)
    drop_from: dict[int, tuple[int, int]] = field(default_factory=dict)
    tamper: Tamper | None = None
    rounds_seen: dict[int, int] = field(default_factory=dict)
    batches: list[list[int]] = field(default_factory=list)
    run_id: int = 1
    isolate: bool = True
    reply_delay: Callable[[int, int, int], float] | None = None
    held: dict[tuple[int, int], int] = field(default_factory=dict)
    _pushed: int = field(default=0, init=False, repr=False)
    _replies: dict[str, Message] = field(default_factory=dict, init=False, repr=False)
    _due: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _waiting: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def create(cls, app: ClientApp, node_configs: Mapping[int, Mapping[str, object]], *,
               isolate: bool = True) -> InProcessGrid:
        """One node per entry of ``node_configs`` (node id -> node config), all running
        ``app``, each with a fresh empty state."""
        grid = cls(apps=dict.fromkeys(node_configs, app), isolate=isolate)
        for node, config in node_configs.items():
            grid.contexts[node] = Context(run_id=grid.run_id, node_id=node,
                                          node_config=dict(config),  # type: ignore[arg-type]
                                          state=RecordDict(), run_config={})
        return grid

    def set_run(self, run: Run) -> None:
        self.run_id = run.run_id

    @property
    def run(self) -> Run:
        return Run.create_empty(self.run_id)

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int,
                       group_id: str, ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, group_id=group_id, ttl=ttl)

    def get_node_ids(self) -> Iterable[int]:
        return sorted(self.apps)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver every message at once; its reply (if any) waits for :meth:`pull_messages`."""
        ids: list[str] = []
        batch = list(messages)
        self.batches.append([m.metadata.dst_node_id for m in batch])
        for message_id in list(self._waiting):
            self._waiting[message_id] -= 1
            if self._waiting[message_id] <= 0:
                del self._waiting[message_id]
        delays: dict[str, float] = {}
        for position, message in enumerate(batch):
            self._pushed += 1
            message_id = f"in-process-{self._pushed}"
            ids.append(message_id)
            reply = self._deliver(message, message_id)
            if reply is None:
                continue
            self._replies[message_id] = reply
            node, stage = message.metadata.dst_node_id, self._stage_of(message)
            if self.reply_delay is not None:
                delays[message_id] = self.reply_delay(node, stage, position)
            if (node, stage) in self.held:
                self._waiting[message_id] = self.held.pop((node, stage))
        # Delays count from the end of the push (when the sender's deadline starts), not
        # from the in-process deliveries, whose duration depends on the machine's load.
        pushed_at = time.monotonic()
        for message_id, delay in delays.items():
            self._due[message_id] = pushed_at + delay
        return ids

    @staticmethod
    def _stage_of(message: Message) -> int:
        if not has_envelope(message.content):
            return -1
        envelope = read_envelope(message.content, party=0, max_bytes=2**62)
        return IDENTIFY_STAGE if envelope.identify is not None else envelope.stage

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """The replies that came for ``message_ids`` (each is returned once)."""
        now = time.monotonic()
        ready = [m for m in message_ids if m in self._replies and m not in self._waiting
                 and self._due.get(m, now) <= now]
        return [self._replies.pop(m) for m in ready]

    def _deliver(self, message: Message, message_id: str) -> Message | None:
        node = message.metadata.dst_node_id
        if node not in self.apps:
            return None
        stage = self._stage_of(message)
        if stage == 0:
            self.rounds_seen[node] = self.rounds_seen.get(node, 0) + 1
        drop = self.drop_from.get(node)
        if drop is not None and (self.rounds_seen.get(node, 0), stage) >= drop:
            return None  # the node is gone: no reply within any deadline
        delivered, context = message, self.contexts[node]
        if self.isolate:
            delivered = Message(metadata=copy.deepcopy(message.metadata),  # type: ignore[call-overload]
                                content=copy.deepcopy(message.content))
            context = copy.deepcopy(context)
        # As the SuperLink does on push: the id the reply will refer to.
        delivered.metadata.__dict__["_message_id"] = message_id
        reply = self.apps[node](delivered, context)
        self.contexts[node] = context
        if self.tamper is not None:
            tampered = self.tamper(node, stage, reply)
            if tampered is None:
                return None
            reply = tampered
        return copy.deepcopy(reply) if self.isolate else reply

    def send_and_receive(self, messages: Iterable[Message], *,
                         timeout: float | None = None) -> Iterable[Message]:
        """Deliver every message to its node's ClientApp; return the replies that came."""
        return self.pull_messages(list(self.push_messages(messages)))
