"""The ServerApp side: run one secure aggregation of a training round over a Flower Grid.

Theory of operation. A Flower strategy's ``configure_train`` produces one training message
per sampled node. :func:`run_secure_round` turns them into a session of the protocol the
settings name (:mod:`secagg.integrations.flower.protocols`):

1. *identification* (only when the protocol wants it: active mode, a decryption
   committee; nodes already identified in an earlier round are not asked again): each node
   answers a fresh challenge with what it holds; a node whose answer proves nothing
   acceptable is left out, with the reason;
2. the protocol plans the session: node ids map to client ids ``1..n`` (sorted), a public
   config, a fixed-point encoding and a per-client :class:`SessionSetup`;
3. the sans-I/O protocol server is driven stage by stage: each stage is one push of its
   messages and pulls of the replies until all came or the deadline passed; replies are
   decoded with the transport-authenticated client id as sender, and when the deadline
   passes with some nodes silent, ``close_round()`` goes on without exactly those nodes.
   A node's first message (usually in the first stage) also carries its setup and the
   strategy's content (global arrays and config), so the client trains then.

Every failure of a node in any stage (no reply within the deadline, an error reply, a bad
reply, a reply that came after its stage closed) is recorded in the report, whether or not
it removed the node from the sum, and logged (:mod:`secagg.integrations.flower.logs` makes
the lines visible in ``flwr run --stream``). All protocol logic stays in
:mod:`secagg.protocols`; this module only moves bytes and keeps the node/client mapping.

What the strategy gets back is one reply whose ``ArrayRecord`` is the weighted mean over
exactly the included clients and whose ``MetricRecord`` holds the total weight under
``weighted_by_key`` (and the secure metrics): FedAvg-style strategies average it to itself.
No client's arrays, weight or metrics are ever seen in clear.

With ``settings.privacy`` (distributed DP or compression, :mod:`secagg.integrations.privacy`)
step 2 also fixes the run's plan (once, in the :class:`~secagg.integrations.privacy.PrivacyRun`
the caller keeps across rounds) and draws the round's public rotation seed from
``os.urandom``; every setup carries both, each client sends :func:`secagg.dp.encode` of its
update (trained minus global arrays) instead of the fixed-point vector, and the server
decodes the mean update, adds it to the global arrays and records the round in the run's
ledger with the number of clients in the sum: the report's ``privacy`` holds the epsilon.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Message, RecordDict
from flwr.serverapp import Grid

from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    DecodeError,
    ProtocolAbort,
    ProtocolViolation,
    UsageError,
)
from secagg.integrations.flower.exchange import (
    BASE_BYTES,
    Session,
    collect_late,
    exchange,
    flower_message,
    no_reply,
)
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.flower.protocols import (
    Identity,
    SessionPlan,
    flower_protocol,
)
from secagg.integrations.flower.report import RoundReport, log_outcome
from secagg.integrations.flower.settings import SecAggSettings
from secagg.integrations.flower.wire import (
    CHALLENGE_BYTES,
    SECAGG_ERROR_CODE,
    Envelope,
    FixedPointParams,
    IdentifyRequest,
    PrivacySetup,
    SessionSetup,
    read_envelope,
)
from secagg.integrations.privacy import PrivacyRun
from secagg.protocols.base import AggregationResult, ServerProtocol
from secagg.protocols.base import Message as ProtocolMessage
from secagg.ring import packed_size

__all__ = [
    "IdentityCache",
    "RoundReport",
    "ServerFactory",
    "is_train_message",
    "run_secure_round",
]

log = logging.getLogger(__name__)

ServerFactory = Callable[[Any], ServerProtocol]
"""Builds the protocol server for a session's config (default: the protocol's own)."""

IdentityCache = MutableMapping[int, "Identity | str"]
"""Node id -> its accepted :class:`Identity`, or the reason it was refused. A SecAggGrid
keeps one across rounds: a Flower node id is stable for the life of a SuperNode."""

# A session has at most a handful of stages; a server that keeps asking is a bug, not a loop.
_MAX_STAGES = 16
# Per-client allowance on top of the masked input: keys, sealed share bundles, shares.
_PER_PEER_BYTES = 8192
_IDENTIFY = "identification"


def is_train_message(message: Message) -> bool:
    """Whether ``message`` is a Flower training instruction (``train`` or ``train.<action>``)."""
    kind = message.metadata.message_type
    return kind == "train" or kind.startswith("train.")


def _global_arrays(messages: Sequence[Message]) -> tuple[str, ArrayRecord, ArrayLayout]:
    first = messages[0].content
    if len(first.array_records) != 1:
        raise ConfigurationError("a training message must carry exactly one ArrayRecord")
    key, record = next(iter(first.array_records.items()))
    return key, record, ArrayLayout.from_record(record)


def run_secure_round(
    grid: Grid,
    messages: Iterable[Message],
    settings: SecAggSettings | None = None,
    *,
    make_server: ServerFactory | None = None,
    identities: IdentityCache | None = None,
    privacy: PrivacyRun | None = None,
) -> RoundReport:
    """Securely aggregate the training round that ``messages`` (one per node) describe.

    Only ``grid.push_messages`` / ``pull_messages`` (or ``send_and_receive``) are used.
    Guarantees: the report's aggregate is the weighted mean over exactly ``included_nodes``;
    a node that misses a deadline, replies with an error, sends anything malformed or fails
    its identification is excluded (with the reason) and the others go on; nothing a client
    sends is ever exposed except through the protocol's sum. ``identities`` caches node
    identifications across rounds (see :data:`IdentityCache`). ``privacy`` is the run's
    :class:`PrivacyRun` for ``settings.privacy``, kept across rounds so that epsilon
    composes (None: a fresh one, whose report covers this round alone).

    Raises ConfigurationError for unusable inputs (no messages, duplicate destinations,
    several ArrayRecords, unsupported dtypes, settings that do not fit this many nodes; with
    privacy: nodes sent different global arrays, a config that cannot be planned, a
    ``privacy`` run of another config). A protocol abort (fewer than the threshold left) is
    not raised: the report says ``aborted``; so does a round with more nodes than the
    privacy plan holds.
    """
    settings = settings or SecAggSettings()
    started = time.perf_counter()
    train = list(messages)
    if not train:
        raise ConfigurationError("no training messages to aggregate")
    nodes = sorted({m.metadata.dst_node_id for m in train})
    if len(nodes) != len(train):
        raise ConfigurationError("two training messages go to the same node")
    arrays_key, global_record, model_layout = _global_arrays(train)
    layout = ArrayLayout(model_layout.arrays, settings.secure_metrics)
    extras = 2 if settings.report_clipping else 0
    run: PrivacyRun | None = None
    if settings.privacy is not None:
        run = privacy if privacy is not None else PrivacyRun(settings.privacy)
        if run.privacy != settings.privacy:
            raise ConfigurationError("the PrivacyRun was made for another privacy config")
        _check_same_arrays(train, global_record)
    protocol = flower_protocol(settings.protocol)
    session = Session(settings=settings, protocol=protocol, session_id=os.urandom(16),
                       group_id=train[0].metadata.group_id)
    report = RoundReport(
        session_id=session.session_id, client_of_node={}, protocol=protocol.name,
        arrays_key=arrays_key, weighted_by_key=settings.weighted_by_key,
    )
    log.info("secagg: secure round over %d sampled nodes, protocol %s, %d values per node",
             len(nodes), protocol.name, layout.size + extras + 1)

    def finish(**changes: Any) -> RoundReport:
        collect_late(grid, session)
        done = replace(
            report, stages=session.stages, stage_seconds=tuple(session.stage_seconds),
            bytes_sent=session.bytes_sent, bytes_received=session.bytes_received,
            stage_failures={n: tuple(f) for n, f in sorted(session.failures.items())},
            seconds=time.perf_counter() - started, **changes,
        )
        log_outcome(done)
        return done

    if len(nodes) < settings.min_clients:
        return finish(excluded_nodes=dict.fromkeys(nodes, "round not run"),
                      aborted=f"{len(nodes)} sampled nodes, fewer than min_clients = "
                              f"{settings.min_clients}")
    known: dict[int, Identity] = {}
    if protocol.wants_identities(settings):
        known = _identify(grid, session, nodes, identities if identities is not None else {})
        report = replace(report, identities={n: i.label for n, i in sorted(known.items())})
    candidates = [n for n in nodes if n not in session.excluded]
    if len(candidates) < settings.min_clients:
        return finish(excluded_nodes=_with_default(session.excluded, nodes, "round not run"),
                      aborted=f"{len(candidates)} nodes identified, fewer than min_clients = "
                              f"{settings.min_clients}")
    vector_length = layout.size + extras + 1
    private: PrivacySetup | None = None
    if run is not None:
        try:
            dp_plan = run.plan_for(layout.array_size, len(candidates))
        except ConfigurationError as exc:
            if run.plan is None:
                raise  # the config cannot be planned: the settings are unusable
            return finish(excluded_nodes=dict.fromkeys(nodes, "round not run"),
                          aborted=f"privacy: {exc}")
        private = PrivacySetup(dp_plan, run.round_seed())
        vector_length = dp_plan.padded_dim
    plan = protocol.plan(settings, session_id=session.session_id, nodes=candidates,
                         identities=known, vector_length=vector_length)
    for node, reason in plan.refused.items():
        session.fail(node, _IDENTIFY, reason)
    if len(plan.node_of_client) < settings.min_clients:
        return finish(excluded_nodes=_with_default(session.excluded, nodes, "round not run"),
                      aborted=f"{len(plan.node_of_client)} nodes admitted, fewer than "
                              f"min_clients = {settings.min_clients}")
    fixed = _open_session(session, plan, layout, make_server, private)
    report = replace(report, summary=plan.summary,
                     client_of_node={n: c for c, n in plan.node_of_client.items()})
    log.info("secagg: session %s...: %s; %d nodes", session.session_id.hex()[:8], plan.summary,
             len(plan.node_of_client))
    aborted = None
    try:
        _drive(grid, session, train)
    except ProtocolAbort as exc:
        aborted = f"protocol aborted: {exc}"
    assert session.server is not None
    result = session.server.result
    excluded = _excluded_nodes(session, result, nodes)
    if aborted is None and result is None:
        aborted = "the protocol finished without a result"
    if aborted is not None or result is None:
        return finish(result=result, excluded_nodes=excluded, aborted=aborted)
    included_nodes = frozenset(session.node_of_client[c] for c in result.included
                               if c in session.node_of_client)
    if run is not None and private is not None:
        delta, privacy_report = run.release(result.total, private.round_seed,
                                            len(result.included))
        base = model_layout.flatten(global_record, {})
        arrays, _ = model_layout.unflatten(base + delta)
        return finish(result=result, excluded_nodes=excluded, included_nodes=included_nodes,
                      arrays=arrays, metrics={}, total_weight=float(len(result.included)),
                      privacy=privacy_report)
    assert fixed is not None
    try:
        mean, total_weight = fixed.decode_weighted(result.total)
    except UsageError:
        return finish(result=result, excluded_nodes=excluded,
                      aborted="the included clients' total weight is zero")
    arrays, metrics = layout.unflatten(_unscaled(mean[: layout.size], layout, settings))
    clipped = {}
    if extras:
        clip = fixed.clip
        clipped = {"arrays": _fraction(mean[layout.size] / clip),
                   "metrics": _fraction(mean[layout.size + 1] / clip)}
    return finish(
        result=result, excluded_nodes=excluded, included_nodes=included_nodes,
        arrays=arrays, metrics=metrics, total_weight=float(total_weight), clipped=clipped,
    )


def _check_same_arrays(train: Sequence[Message], record: ArrayRecord) -> None:
    """Under privacy every node must get the same global arrays: the server adds the mean
    update to them, and a node's update is its trained arrays minus what it received."""
    reference = [(name, array.numpy()) for name, array in record.items()]
    for message in train[1:]:
        records = list(message.content.array_records.values())
        other = records[0] if len(records) == 1 else None
        if other is None or list(other.keys()) != [n for n, _ in reference] or not all(
                np.array_equal(other[name].numpy(), values) for name, values in reference):
            raise ConfigurationError(
                "with privacy every node must receive the same global arrays (its update is "
                "its trained arrays minus them)")


def _fraction(value: float) -> float:
    """A decoded indicator mean as a fraction in [0, 1] (rounding noise removed)."""
    return float(min(1.0, max(0.0, round(float(value), 6))))


def _unscaled(values: np.ndarray, layout: ArrayLayout, settings: SecAggSettings) -> np.ndarray:
    scale = settings.metric_scale
    if scale == 1.0 or not layout.metrics:
        return values
    out = values.copy()
    out[layout.array_size:] /= scale
    return out


def _with_default(reasons: Mapping[int, str], nodes: Sequence[int], default: str
                  ) -> dict[int, str]:
    return {node: reasons.get(node, default) for node in nodes}


def _identify(grid: Grid, session: Session, nodes: Sequence[int],
              cache: IdentityCache) -> dict[int, Identity]:
    """Ask the nodes not in ``cache`` what they hold; return every accepted identity.

    A node is asked once per SuperNode life: its answer (or refusal) is cached by node id.
    """
    settings, protocol = session.settings, session.protocol
    unknown = [node for node in nodes if node not in cache]
    if unknown:
        challenges = {node: os.urandom(CHALLENGE_BYTES) for node in unknown}
        requests = []
        for node in unknown:
            envelope = Envelope(stage=0, session_id=session.session_id, payloads=(),
                                identify=IdentifyRequest(protocol.name,
                                                         challenges[node]).to_bytes())
            requests.append(flower_message(envelope, node, session.group_id,
                                            settings.stage_timeout))
        begun = time.perf_counter()
        replies = exchange(grid, session, requests, timeout=settings.stage_timeout,
                            stage=_IDENTIFY)
        answered = set()
        for node, reply in replies:
            answered.add(node)
            outcome = _check_identity(session, node, reply, challenges[node])
            if reply.has_error() and reply.error.code != SECAGG_ERROR_CODE:
                # The engine's error (node unavailable, TTL expired...) may not last.
                session.fail(node, _IDENTIFY, str(outcome))
            else:
                cache[node] = outcome
        for node in unknown:
            if node not in answered:
                # Not cached: a node that was merely slow is asked again next round.
                session.fail(node, _IDENTIFY, no_reply(settings.stage_timeout))
        log.info("secagg: %s of %d nodes: %d answered in %.2f s", _IDENTIFY, len(unknown),
                 len(answered), time.perf_counter() - begun)
    accepted: dict[int, Identity] = {}
    for node in nodes:
        entry = cache.get(node)
        if isinstance(entry, Identity):
            accepted[node] = entry
        elif isinstance(entry, str) and node not in session.excluded:
            session.fail(node, _IDENTIFY, entry)
    return accepted


def _check_identity(session: Session, node: int, reply: Message,
                    challenge: bytes) -> Identity | str:
    if reply.has_error():
        return f"refused identification: {str(reply.error.reason)[:200]}"
    try:
        envelope = read_envelope(reply.content, party=node, max_bytes=0)
        if envelope.session_id != session.session_id or envelope.identity is None:
            raise DecodeError("not an identification answer of this session", party=node)
        identity = session.protocol.check_identity(
            session.settings, node_id=node, session_id=session.session_id,
            challenge=challenge, answer=envelope.identity)
    except ProtocolViolation as exc:
        return f"identification refused: {exc}"
    log.info("secagg: node %d identified: %s", node, identity.label)
    return identity


def _open_session(session: Session, plan: SessionPlan, layout: ArrayLayout,
                  make_server: ServerFactory | None,
                  private: PrivacySetup | None = None) -> FixedPoint | None:
    """Fix the encoding and the per-client setups of the planned session (with ``private``
    the clients encode with its plan: no fixed point, whose parameters the setup then
    carries for information only)."""
    settings = session.settings
    n = plan.n
    fixed: FixedPoint | None = None
    if private is not None:
        dp_plan = private.plan
        params = FixedPointParams(clip=dp_plan.clip, scale=dp_plan.scale, max_clients=n,
                                  max_weight=1.0)
    else:
        fixed = FixedPoint.for_precision(
            bits=settings.bits, clip=settings.clip, max_clients=n,
            max_weight=settings.max_weight if settings.weighted else 1.0,
        )
        params = FixedPointParams(clip=fixed.clip, scale=fixed.scale,
                                  max_clients=fixed.max_clients, max_weight=fixed.max_weight)
    session.node_of_client = dict(plan.node_of_client)
    session.phantoms = plan.phantoms
    session.server = make_server(plan.config) if make_server is not None else plan.server
    session.setups = {
        client: SessionSetup(
            session_id=session.session_id, protocol=session.protocol.name, n=n,
            client_id=client, bits=settings.bits, fixed_point=params, layout=layout,
            weighted_by_key=settings.weighted_by_key, weighted=settings.weighted,
            params=plan.params, metric_scale=settings.metric_scale,
            report_clipping=settings.report_clipping, privacy=private,
        ).to_bytes()
        for client in plan.node_of_client
    }
    extras = 2 if settings.report_clipping else 0
    length = private.plan.padded_dim if private is not None else layout.size + extras + 1
    session.max_reply_bytes = max(plan.max_reply_bytes,  # e.g. ciphertexts
                                  packed_size(length, settings.bits)
                                  + BASE_BYTES + _PER_PEER_BYTES * n)
    return fixed


def _drive(grid: Grid, session: Session, train: Sequence[Message]) -> None:
    """Run the protocol to its end, one Flower round trip per stage.

    A node's first message (in whichever stage the protocol first addresses it) carries
    its setup and the strategy's content, so it trains then; that stage's deadline is
    ``train_timeout``, every other one's ``stage_timeout``.

    Raises ProtocolAbort when the protocol aborts or misbehaves (no messages, no end).
    """
    content = {m.metadata.dst_node_id: m.content for m in train}
    server = session.server
    assert server is not None
    outgoing = server.start()
    while not server.done:
        if not outgoing:
            raise ProtocolAbort("the protocol server has nothing to send but is not done")
        if session.stages >= _MAX_STAGES:
            raise ProtocolAbort("too many protocol stages")
        outgoing = _run_stage(grid, session, outgoing, content)
        session.stages += 1


def _excluded_nodes(session: Session, result: AggregationResult | None,
                    nodes: Sequence[int]) -> dict[int, str]:
    """Every sampled node not in the sum, with the transport's and the protocol's reasons."""
    client_of_node = session.client_of_node
    reasons: dict[int, str] = {}
    for node in nodes:
        client = client_of_node.get(node)
        if client is not None and result is not None and client in result.included:
            continue
        reason = session.excluded.get(node)
        if client is not None and result is not None and client in result.excluded:
            protocol_reason = str(result.excluded[client])
            reason = f"{protocol_reason} ({reason})" if reason else protocol_reason
        reasons[node] = reason or ("not included" if client is not None else "not admitted")
    return reasons


def _run_stage(
    grid: Grid,
    session: Session,
    outgoing: Sequence[ProtocolMessage],
    content: Mapping[int, RecordDict],
) -> list[ProtocolMessage]:
    """Send one stage's messages, feed the replies to the server, return the next stage's."""
    stage = session.stages
    name = f"stage {stage} ({outgoing[0].round_name})"
    server = session.server
    assert server is not None
    by_client: dict[int, list[bytes]] = {}
    for message in outgoing:
        if message.recipient in session.phantoms:
            continue  # a seat without a node: it never answers
        if message.recipient not in session.node_of_client:
            raise ProtocolAbort(f"the protocol addressed unknown client {message.recipient}")
        by_client.setdefault(message.recipient, []).append(message.to_bytes())
    flower_messages = []
    training = False
    settings = session.settings
    for client in sorted(by_client):
        node = session.node_of_client[client]
        fresh = client not in session.contacted
        training |= fresh
        session.contacted.add(client)
        payloads = by_client[client]
        envelope = Envelope(stage=stage, session_id=session.session_id, payloads=tuple(payloads),
                            setup=session.setups[client] if fresh else None)
        session.bytes_sent += sum(len(p) for p in payloads)
        flower_messages.append(flower_message(
            envelope, node, session.group_id,
            settings.train_timeout if fresh else settings.stage_timeout,
            content[node] if fresh else None))
    timeout = settings.train_timeout if training else settings.stage_timeout
    client_of_node = session.client_of_node
    answered: set[int] = set()
    next_messages: list[ProtocolMessage] = []
    begun = time.perf_counter()
    for node, reply in exchange(grid, session, flower_messages, timeout=timeout, stage=name):
        sender = client_of_node.get(node)
        if sender is None or sender not in by_client or sender in answered:
            log.warning("secagg: ignoring an unexpected reply for node %d", node)
            continue
        if not reply.has_error() and reply.metadata.src_node_id != node:
            # Only the SuperLink itself may answer for a node (with an error reply).
            log.warning("secagg: ignoring a reply for node %d sent by node %d", node,
                        reply.metadata.src_node_id)
            continue
        answered.add(sender)
        next_messages.extend(_feed_reply(session, sender, reply, name))
    for client in by_client:
        if client not in answered:
            session.fail(session.node_of_client[client], name, no_reply(timeout))
    elapsed = time.perf_counter() - begun
    session.stage_seconds.append(elapsed)
    log.info("secagg: %s: %d of %d nodes answered in %.2f s", name, len(answered),
             len(by_client), elapsed)
    if not server.done and not next_messages:
        # The deadline passed (or the last replies were bad, or only seats without a node
        # are missing): go on with those who answered.
        next_messages = server.close_round()
    return next_messages


def _feed_reply(session: Session, client: int, reply: Message,
                stage: str) -> list[ProtocolMessage]:
    """Decode one node's reply and give its protocol messages to the server."""
    node = session.node_of_client[client]
    if reply.has_error():
        session.fail(node, stage, f"error reply: {str(reply.error.reason)[:200]}")
        return []
    try:
        envelope = read_envelope(reply.content, party=client,
                                 max_bytes=session.max_reply_bytes)
        if envelope.stage != session.stages or envelope.session_id != session.session_id:
            raise ProtocolViolation("reply for another stage or session", party=client)
    except ProtocolViolation as exc:
        # One bad client never breaks the round: it is not heard from in this stage
        # (close_round then excludes it) and the reason is kept for the report.
        session.fail(node, stage, f"bad reply: {exc}")
        return []
    server = session.server
    assert server is not None
    out: list[ProtocolMessage] = []
    for payload in envelope.payloads:
        session.bytes_received += len(payload)
        out.extend(_feed_bytes(session, server, payload, client, stage))
    return out


def _feed_bytes(session: Session, server: ServerProtocol, payload: bytes, client: int,
                stage: str) -> list[ProtocolMessage]:
    """The protocol decodes with the transport-authenticated sender: a payload that does
    not decode, or claims another sender, excludes this client only."""
    receive_bytes = getattr(server, "receive_bytes", None)
    if callable(receive_bytes):
        out: list[ProtocolMessage] = receive_bytes(payload, client)
        return out
    try:
        message = session.protocol.decode(payload, client)
    except DecodeError as exc:
        session.fail(session.node_of_client[client], stage, f"undecodable message: {exc}")
        return []
    return server.receive(message)


