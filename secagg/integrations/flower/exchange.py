"""Moving one stage's messages over a Flower Grid, with deadlines, and the round's bookkeeping.

:func:`exchange` pushes a stage's messages and pulls the replies until all came or the
deadline passed: ``timeout`` seconds after the push (``deadline="fixed"``) or after the
latest reply (``"progress"``), or never (``None``: an engine that loses a node answers for
it with an error reply). Replies are matched to their destination through message ids, so
that the SuperLink's error reply for an unreachable node is attributed to that node. A
reply to an earlier stage's message that comes late is recorded in the :class:`Session`
and refused (its stage went on without it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid

from secagg.integrations.flower.protocols import FlowerProtocol
from secagg.integrations.flower.settings import SecAggSettings
from secagg.integrations.flower.wire import Envelope, write_envelope
from secagg.protocols.base import ServerProtocol

__all__ = [
    "BASE_BYTES",
    "Session",
    "collect_late",
    "exchange",
    "flower_message",
    "no_reply",
    "record_late",
]

log = logging.getLogger(__name__)

_TTL_MARGIN = 10.0
_MAX_NOTES = 8  # failures kept per node and round
BASE_BYTES = 65536
"""A reply's allowance for protocol messages beyond its vector (keys, bundles, shares)."""


@dataclass
class Session:
    """Mutable bookkeeping of one secure round (the transport's, not the protocol's).

    ``failures`` keeps every failure of every node (at most a few per node), ``excluded``
    the first one that took a node out; ``late`` the message ids whose replies did not
    come within their stage, so that a reply that comes later is recorded and refused.
    """

    settings: SecAggSettings
    protocol: FlowerProtocol
    session_id: bytes
    group_id: str
    server: ServerProtocol | None = None
    node_of_client: dict[int, int] = field(default_factory=dict)
    phantoms: frozenset[int] = frozenset()
    setups: dict[int, bytes] = field(default_factory=dict)
    contacted: set[int] = field(default_factory=set)  # clients that received their setup
    max_reply_bytes: int = BASE_BYTES
    excluded: dict[int, str] = field(default_factory=dict)  # node -> first reason
    failures: dict[int, list[str]] = field(default_factory=dict)  # node -> every failure
    late: dict[str, tuple[int, str]] = field(default_factory=dict)  # message id -> (node, stage)
    stages: int = 0
    stage_seconds: list[float] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def client_of_node(self) -> dict[int, int]:
        return {node: client for client, node in self.node_of_client.items()}

    def fail(self, node: int, stage: str, reason: str, *, excludes: bool = True) -> None:
        """Record (and log) a node's failure in ``stage``; the first excluding reason is
        the one ``excluded_nodes`` gives."""
        text = f"{stage}: {reason}"
        notes = self.failures.setdefault(node, [])
        if len(notes) < _MAX_NOTES:
            notes.append(text)
        if excludes:
            self.excluded.setdefault(node, text)
        log.warning("secagg: node %d failed in %s", node, text)


def no_reply(timeout: float | None) -> str:
    """The failure text of a node that did not answer within ``timeout``."""
    if timeout is None:
        return "no reply"
    return f"no reply within {timeout:g} s"


def flower_message(envelope: Envelope, node: int, group_id: str, timeout: float | None,
                    content: RecordDict | None = None) -> Message:
    """A ``train`` message to ``node`` carrying ``envelope`` (and ``content``), whose TTL
    outlives the stage's deadline."""
    record = RecordDict(dict(content.items())) if content is not None else RecordDict()
    return Message(write_envelope(record, envelope), node, "train", group_id=group_id,
                   ttl=None if timeout is None else timeout + _TTL_MARGIN)


def exchange(grid: Grid, session: Session, messages: list[Message], *,
              timeout: float | None, stage: str) -> list[tuple[int, Message]]:
    """Push ``messages`` and pull their replies until all came or the deadline passed.

    Returns ``(destination node, reply)`` pairs, matched through the message ids, so that
    an error reply the SuperLink writes for an unreachable node is attributed to it. The
    deadline is ``timeout`` seconds after the push (``settings.deadline == "fixed"``) or
    after the latest reply (``"progress"``); ``None`` waits for every reply. Replies to
    earlier stages' messages that come now are recorded as late (their stage closed
    without them). Grid.send_and_receive polls every 3 s, fine for one round trip per
    training round but not for a protocol with four: this polls every ``poll_interval``
    seconds. Grids without push/pull fall back to ``send_and_receive``.
    """
    if not messages:
        return []
    settings = session.settings
    try:
        ids = list(grid.push_messages(messages))
    except NotImplementedError:
        return [(m.metadata.src_node_id, m)
                for m in grid.send_and_receive(messages, timeout=timeout)]
    pending = {mid: m.metadata.dst_node_id for m, mid in zip(messages, ids, strict=True)
               if mid}
    replies: list[tuple[int, Message]] = []
    end = None if timeout is None else time.monotonic() + timeout
    while pending:
        progressed = False
        for reply in grid.pull_messages([*pending, *session.late]):
            message_id = reply.metadata.reply_to_message_id
            node = pending.pop(message_id, None)
            if node is not None:
                replies.append((node, reply))
                progressed = True
            elif message_id in session.late:
                record_late(session, message_id, reply)
        if progressed and timeout is not None and settings.deadline == "progress":
            end = time.monotonic() + timeout
        if not pending:
            break
        remaining = None if end is None else end - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        time.sleep(settings.poll_interval if remaining is None
                   else min(settings.poll_interval, remaining))
    for message_id, node in pending.items():
        session.late[message_id] = (node, stage)
    return replies


def record_late(session: Session, message_id: str, reply: Message) -> None:
    """Record (and refuse) a reply that came after its stage closed."""
    node, stage = session.late.pop(message_id)
    what = f"error reply ({str(reply.error.reason)[:200]})" if reply.has_error() else "reply"
    session.fail(node, stage, f"late {what} refused: the stage had closed", excludes=False)


def collect_late(grid: Grid, session: Session) -> None:
    """One last pull of replies to closed stages, so that the report records them."""
    if not session.late:
        return
    try:
        late = list(grid.pull_messages(list(session.late)))
    except NotImplementedError:
        return
    for reply in late:
        if reply.metadata.reply_to_message_id in session.late:
            record_late(session, reply.metadata.reply_to_message_id, reply)
