"""The ServerApp side: run one secure aggregation of a training round over a Flower Grid.

Theory of operation. A Flower strategy's ``configure_train`` produces one training message
per sampled node. :func:`run_secure_round` turns them into a secagg session: node ids map
to client ids ``1..n`` (sorted node ids), a fresh :class:`ProtocolConfig` and fixed-point
encoding are chosen, and the sans-I/O :class:`secagg.protocols.bonawitz.server.Server` is driven
stage by stage. Each stage is one ``grid.send_and_receive`` with a deadline; replies are
decoded with the transport-authenticated client id as sender, and when the deadline passes
with some nodes silent, ``Server.close_round()`` goes on without exactly those nodes. The
first stage also carries the strategy's content (global arrays and config), so the client
trains then. All protocol logic stays in :mod:`secagg.protocols`; this module only moves
bytes and keeps the node/client mapping.

What the strategy gets back is one reply whose ``ArrayRecord`` is the weighted mean over
exactly the included clients and whose ``MetricRecord`` holds the total weight under
``weighted_by_key`` (and the secure metrics): FedAvg-style strategies average it to itself.
No client's arrays, weight or metrics are ever seen in clear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, ProtocolAbort, ProtocolViolation, UsageError
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.flower.settings import SecAggSettings, default_threshold
from secagg.integrations.flower.wire import (
    Envelope,
    FixedPointParams,
    SessionSetup,
    read_envelope,
    write_envelope,
)
from secagg.protocols.base import AggregationResult, ServerProtocol
from secagg.protocols.base import Message as ProtocolMessage
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.ring import packed_size

__all__ = [
    "RoundReport",
    "ServerFactory",
    "TransportServer",
    "is_train_message",
    "run_secure_round",
]

log = logging.getLogger(__name__)



class TransportServer(ServerProtocol, Protocol):
    """A protocol server a transport can hand raw bytes with the authenticated sender."""

    def receive_bytes(self, data: bytes, sender: int) -> list[ProtocolMessage]:
        """Decode ``data`` as sent by ``sender`` and receive it; a DecodeError excludes
        ``sender`` instead of being raised."""
        ...


ServerFactory = Callable[[ProtocolConfig], TransportServer]
"""Builds the protocol server for a config (default:
:class:`secagg.protocols.bonawitz.server.Server`)."""

# A Bonawitz session has at most 5 stages; a server that keeps asking is a bug, not a loop.
_MAX_STAGES = 16
_TTL_MARGIN = 10.0
# Per-client allowance on top of the masked input: keys, sealed share bundles, shares.
_PER_PEER_BYTES = 8192
_BASE_BYTES = 65536


def _default_server(config: ProtocolConfig) -> TransportServer:
    from secagg.protocols.bonawitz.server import Server

    server: TransportServer = Server(config)
    return server


def is_train_message(message: Message) -> bool:
    """Whether ``message`` is a Flower training instruction (``train`` or ``train.<action>``)."""
    kind = message.metadata.message_type
    return kind == "train" or kind.startswith("train.")


@dataclass(frozen=True)
class RoundReport:
    """The outcome of one secure aggregation, in Flower's terms (node ids).

    ``arrays``/``metrics``/``total_weight`` are the decoded weighted means over exactly
    ``included_nodes`` (``None``/empty when ``aborted`` holds the reason it did not
    complete). ``excluded_nodes`` maps every other sampled node to the reason.
    ``result`` is the protocol's raw :class:`AggregationResult` (client ids 1..n) and
    ``client_of_node`` the mapping used.
    """

    session_id: bytes
    client_of_node: Mapping[int, int]
    included_nodes: frozenset[int] = frozenset()
    excluded_nodes: Mapping[int, str] = field(default_factory=dict)
    arrays: ArrayRecord | None = None
    arrays_key: str = "arrays"
    metrics: Mapping[str, float] = field(default_factory=dict)
    total_weight: float = 0.0
    weighted_by_key: str = "num-examples"
    aborted: str | None = None
    result: AggregationResult | None = None
    stages: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the aggregate is available."""
        return self.aborted is None and self.arrays is not None

    def reply_content(self) -> RecordDict:
        """A FedAvg-shaped reply: the mean arrays and the total weight (plus secure metrics).

        Raises UsageError if the round did not complete (there is no aggregate).
        """
        if not self.ok or self.arrays is None:
            raise UsageError(f"no aggregate: {self.aborted}")
        metrics = MetricRecord({self.weighted_by_key: self.total_weight, **self.metrics})
        return RecordDict({self.arrays_key: self.arrays, "metrics": metrics})

    def __repr__(self) -> str:
        return (
            f"RoundReport(session={self.session_id.hex()[:16]}..., "
            f"included={sorted(self.included_nodes)}, "
            f"excluded={dict(sorted(self.excluded_nodes.items()))}, "
            f"total_weight={self.total_weight}, aborted={self.aborted!r}, stages={self.stages})"
        )


def _global_arrays(messages: Sequence[Message]) -> tuple[str, ArrayRecord, ArrayLayout]:
    first = messages[0].content
    if len(first.array_records) != 1:
        raise ConfigurationError("a training message must carry exactly one ArrayRecord")
    key, record = next(iter(first.array_records.items()))
    return key, record, ArrayLayout.from_record(record)


@dataclass
class _Session:
    """Mutable bookkeeping of one run of the stage loop."""

    settings: SecAggSettings
    config: ProtocolConfig
    server: TransportServer
    node_of_client: dict[int, int]
    setups: dict[int, bytes]
    max_reply_bytes: int
    excluded: dict[int, str] = field(default_factory=dict)
    stages: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def client_of_node(self) -> dict[int, int]:
        return {node: client for client, node in self.node_of_client.items()}

    def note(self, client: int, reason: str) -> None:
        """Remember the first transport-level reason a client fell out."""
        self.excluded.setdefault(client, reason)


def run_secure_round(
    grid: Grid,
    messages: Iterable[Message],
    settings: SecAggSettings | None = None,
    *,
    make_server: ServerFactory | None = None,
) -> RoundReport:
    """Securely aggregate the training round that ``messages`` (one per node) describe.

    Only ``grid.send_and_receive`` is used. Guarantees: the report's aggregate is the
    weighted mean over exactly ``included_nodes``; a node that misses a deadline, replies
    with an error or sends anything malformed is excluded (with the reason) and the others
    go on; nothing a client sends is ever exposed except through the protocol's sum.

    Raises ConfigurationError for unusable inputs (no messages, duplicate destinations,
    several ArrayRecords, unsupported dtypes, unsafe settings). A protocol abort (fewer
    than the threshold left) is not raised: the report says ``aborted``.
    """
    settings = settings or SecAggSettings()
    started = time.perf_counter()
    train = list(messages)
    if not train:
        raise ConfigurationError("no training messages to aggregate")
    nodes = sorted({m.metadata.dst_node_id for m in train})
    if len(nodes) != len(train):
        raise ConfigurationError("two training messages go to the same node")
    arrays_key, _, model_layout = _global_arrays(train)
    layout = ArrayLayout(model_layout.arrays, settings.secure_metrics)
    node_of_client = {i + 1: node for i, node in enumerate(nodes)}
    n = len(nodes)
    report = RoundReport(
        session_id=bytes(16), client_of_node={node: c for c, node in node_of_client.items()},
        arrays_key=arrays_key, weighted_by_key=settings.weighted_by_key,
    )
    if n < settings.min_clients:
        return replace(report, excluded_nodes=dict.fromkeys(nodes, "round not run"),
                       aborted=f"{n} sampled nodes, fewer than min_clients = "
                               f"{settings.min_clients}")
    session, fixed = _open_session(settings, layout, node_of_client, make_server)
    report = replace(report, session_id=session.config.session_id)
    aborted = None
    try:
        _drive(grid, session, train)
    except ProtocolAbort as exc:
        aborted = f"protocol aborted: {exc}"
        log.warning("secure aggregation aborted after %d stages: %s", session.stages, exc)
    result = session.server.result
    report = replace(
        report, stages=session.stages, bytes_sent=session.bytes_sent,
        bytes_received=session.bytes_received, result=result,
        excluded_nodes=_excluded_nodes(session, result),
    )
    if aborted is None and result is None:
        aborted = "the protocol finished without a result"
    if aborted is not None or result is None:
        return replace(report, aborted=aborted, seconds=time.perf_counter() - started)
    try:
        mean, total_weight = fixed.decode_weighted(result.total)
    except UsageError:
        return replace(report, aborted="the included clients' total weight is zero",
                       seconds=time.perf_counter() - started)
    arrays, metrics = layout.unflatten(mean)
    return replace(
        report, included_nodes=frozenset(node_of_client[c] for c in result.included),
        arrays=arrays, metrics=metrics, total_weight=float(total_weight),
        seconds=time.perf_counter() - started,
    )


def _open_session(settings: SecAggSettings, layout: ArrayLayout,
                  node_of_client: dict[int, int],
                  make_server: ServerFactory | None) -> tuple[_Session, FixedPoint]:
    """Choose the public parameters of one session and build its protocol server."""
    n = len(node_of_client)
    degree = settings.degree if settings.degree is not None and settings.degree < n - 1 \
        else None
    holders = (degree if degree is not None else n - 1) + 1
    threshold = settings.threshold or default_threshold(
        holders, settings.mode, complete=degree is None
    )
    fixed = FixedPoint.for_precision(
        bits=settings.bits, clip=settings.clip, max_clients=n,
        max_weight=settings.max_weight if settings.weighted else 1.0,
    )
    config = ProtocolConfig.create(
        clients=list(node_of_client), threshold=threshold, bits=settings.bits,
        vector_length=layout.size + 1, mode=settings.mode, degree=degree,
    )
    params = FixedPointParams(clip=fixed.clip, scale=fixed.scale,
                              max_clients=fixed.max_clients, max_weight=fixed.max_weight)
    setups = {
        client: SessionSetup(
            session_id=config.session_id, n=n, client_id=client, threshold=threshold,
            bits=settings.bits, degree=degree, fixed_point=params, layout=layout,
            weighted_by_key=settings.weighted_by_key, weighted=settings.weighted,
        ).to_bytes()
        for client in node_of_client
    }
    session = _Session(
        settings=settings, config=config, server=(make_server or _default_server)(config),
        node_of_client=node_of_client, setups=setups,
        max_reply_bytes=packed_size(config.vector_length, config.bits) + _BASE_BYTES
        + _PER_PEER_BYTES * n,
    )
    return session, fixed


def _drive(grid: Grid, session: _Session, train: Sequence[Message]) -> None:
    """Run the protocol to its end, one Flower round trip per stage.

    Raises ProtocolAbort when the protocol aborts or misbehaves (no messages, no end).
    """
    first_content = {m.metadata.dst_node_id: m.content for m in train}
    group_id = train[0].metadata.group_id
    settings = session.settings
    outgoing = session.server.start()
    while not session.server.done:
        if not outgoing:
            raise ProtocolAbort("the protocol server has nothing to send but is not done")
        if session.stages >= _MAX_STAGES:
            raise ProtocolAbort("too many protocol stages")
        first = session.stages == 0
        outgoing = _run_stage(
            grid, session, outgoing, stage=session.stages, group_id=group_id,
            timeout=settings.train_timeout if first else settings.stage_timeout,
            first_content=first_content if first else None,
        )
        session.stages += 1


def _excluded_nodes(session: _Session, result: AggregationResult | None) -> dict[int, str]:
    reasons: dict[int, str] = {}
    for client, node in session.node_of_client.items():
        if result is not None and client in result.included:
            continue
        reason = session.excluded.get(client)
        if result is not None and client in result.excluded:
            protocol_reason = result.excluded[client]
            reason = f"{protocol_reason} ({reason})" if reason else protocol_reason
        reasons[node] = reason or "not included"
    return reasons


def _run_stage(
    grid: Grid,
    session: _Session,
    outgoing: Sequence[ProtocolMessage],
    *,
    stage: int,
    group_id: str,
    timeout: float,
    first_content: Mapping[int, RecordDict] | None,
) -> list[ProtocolMessage]:
    """Send one stage's messages, feed the replies to the server, return the next stage's."""
    by_client: dict[int, list[bytes]] = {}
    for message in outgoing:
        if message.recipient not in session.node_of_client:
            raise ProtocolAbort(f"the protocol addressed unknown client {message.recipient}")
        by_client.setdefault(message.recipient, []).append(message.to_bytes())
    flower_messages = []
    for client, payloads in sorted(by_client.items()):
        node = session.node_of_client[client]
        base = first_content[node] if first_content is not None else None
        content = RecordDict(dict(base.items())) if base is not None else RecordDict()
        envelope = Envelope(stage=stage, session_id=session.config.session_id,
                            payloads=tuple(payloads),
                            setup=session.setups[client] if first_content is not None
                            else None)
        session.bytes_sent += sum(len(p) for p in payloads)
        flower_messages.append(
            Message(write_envelope(content, envelope), node, "train", group_id=group_id,
                    ttl=timeout + _TTL_MARGIN)
        )
    client_of_node = session.client_of_node
    answered: set[int] = set()
    next_messages: list[ProtocolMessage] = []
    for node, reply in _exchange(grid, flower_messages, timeout=timeout,
                                 poll_interval=session.settings.poll_interval):
        sender = client_of_node.get(node)
        if sender is None or sender not in by_client or sender in answered:
            log.warning("ignoring an unexpected reply for node %s", node)
            continue
        if not reply.has_error() and reply.metadata.src_node_id != node:
            # Only the SuperLink itself may answer for a node (with an error reply).
            log.warning("ignoring a reply for node %s sent by node %s", node,
                        reply.metadata.src_node_id)
            continue
        answered.add(sender)
        next_messages.extend(_feed_reply(session, sender, reply, stage))
    for client in by_client:
        if client not in answered:
            session.note(client, f"no reply in stage {stage} within {timeout:g} s")
    if not session.server.done and not next_messages:
        # The deadline passed (or the last replies were bad): go on with those who answered.
        next_messages = session.server.close_round()
    return next_messages


def _exchange(grid: Grid, messages: list[Message], *, timeout: float,
              poll_interval: float) -> list[tuple[int, Message]]:
    """Push ``messages`` and pull their replies until all came or ``timeout`` passed.

    Returns ``(destination node, reply)`` pairs, matched through the message ids, so that
    an error reply the SuperLink writes for an unreachable node is attributed to it.
    Grid.send_and_receive polls every 3 s, fine for one round trip per training round but
    not for a protocol with four: this polls every ``poll_interval`` seconds. Grids
    without push/pull fall back to ``send_and_receive``.
    """
    try:
        ids = list(grid.push_messages(messages))
    except NotImplementedError:
        return [(m.metadata.src_node_id, m)
                for m in grid.send_and_receive(messages, timeout=timeout)]
    pending = {mid: m.metadata.dst_node_id for m, mid in zip(messages, ids, strict=True)
               if mid}
    replies: list[tuple[int, Message]] = []
    end = time.monotonic() + timeout
    while pending:
        for reply in grid.pull_messages(list(pending)):
            node = pending.pop(reply.metadata.reply_to_message_id, None)
            if node is not None:
                replies.append((node, reply))
        remaining = end - time.monotonic()
        if not pending or remaining <= 0:
            break
        time.sleep(min(poll_interval, remaining))
    return replies


def _feed_reply(session: _Session, client: int, reply: Message,
                stage: int) -> list[ProtocolMessage]:
    """Decode one node's reply and give its protocol messages to the server."""
    if reply.has_error():
        reason = str(reply.error.reason)[:200]
        session.note(client, f"error reply in stage {stage}: {reason}")
        return []
    try:
        envelope = read_envelope(reply.content, party=client,
                                 max_bytes=session.max_reply_bytes)
        if envelope.stage != stage or envelope.session_id != session.config.session_id:
            raise ProtocolViolation("reply for another stage or session", party=client)
    except ProtocolViolation as exc:
        # One bad client never breaks the round: it is not heard from in this stage
        # (close_round then excludes it) and the reason is kept for the report.
        session.note(client, f"bad reply in stage {stage}: {exc}")
        log.warning("excluding client %d: %s", client, exc)
        return []
    out: list[ProtocolMessage] = []
    for payload in envelope.payloads:
        session.bytes_received += len(payload)
        # The protocol decodes with the transport-authenticated sender: a payload that
        # does not decode, or claims another sender, excludes this client only.
        out.extend(session.server.receive_bytes(payload, client))
    return out
