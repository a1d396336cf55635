"""The ClientApp side: a Flower mod that runs the client of a secure aggregation.

Theory of operation. Flower starts a fresh ClientApp process for every message, so the
protocol client cannot live in memory between stages: after each stage the mod stores it
in ``context.state`` (which the SuperNode keeps on the client side and never sends to
the SuperLink) and restores it on the next message. A session goes:

0. identification (only before sessions of protocols that need it): the server's
   :class:`IdentifyRequest` is answered with what the node holds (a signed proof of its
   registered key, its committee key and share index), from the node's key files
   (:class:`~secagg.integrations.flower.node_keys.NodeKeys`); nothing is trained;
1. the node's first message of a session (its envelope carries a :class:`SessionSetup`;
   usually in stage 0, later if the protocol addresses the node later): the mod checks the setup
   against its :class:`ClientPolicy`, and the protocol (:mod:`.protocols`) rebuilds the
   public config itself and checks it against the node's trust (registry, committee key);
   the mod hands the strategy's content (without secagg records) to the ClientApp's
   ``train`` handler, flattens and encodes the trained arrays, weight and secure metrics
   (clipped: a warning names what was clipped), creates the protocol client with that
   vector and answers the server's first protocol message;
2. later stages: restore, answer, store; the session ends when the protocol client is done.

The reply of every stage carries only the secagg records: the trained arrays, the weight
and the metrics never leave the client in clear. Anything wrong (a malformed or malicious
server message, a setup below policy, an out-of-order stage, a model that does not match)
gets an error reply and, once a session started, aborts it for good: a second try of the
same session is refused. Training messages without secagg records are refused too unless
``ClientPolicy.require_secure`` is off (a server cannot downgrade the client).

Under distributed DP or compression (the setup carries a :class:`PrivacySetup`) the mod
checks the plan (:func:`secagg.integrations.privacy.check_plan_bounds` recomputes its
sensitivities; with ``ClientPolicy.max_epsilon``, ``verify_plan`` its epsilon;
``ClientPolicy.require_privacy`` refuses a session without noise), keeps the global arrays it
received, and after training encodes its update (trained minus global arrays) with
:func:`secagg.dp.encode`: L2 clip, rounding and this node's share of the noise, drawn from
its own CSPRNG. A training result with NaN or infinity is refused (an error reply: the node
sits the round out, and the server reports why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod

from secagg.dp import encode as dp_encode
from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    MaliciousRequestError,
    ProtocolViolation,
    SecAggError,
    UsageError,
)
from secagg.integrations.flower.bonawitz import BonawitzOverFlower
from secagg.integrations.flower.client_state import ClientBackend
from secagg.integrations.flower.logs import forward_to_flower
from secagg.integrations.flower.node_keys import NodeKeys
from secagg.integrations.flower.protocols import FlowerProtocol, flower_protocol
from secagg.integrations.flower.server import is_train_message
from secagg.integrations.flower.settings import ClientPolicy
from secagg.integrations.flower.wire import (
    SECAGG_ERROR_CODE,
    Envelope,
    IdentifyRequest,
    PrivacySetup,
    SessionSetup,
    check_payload_count,
    has_envelope,
    read_envelope,
    strip_envelope,
    write_envelope,
)
from secagg.integrations.privacy import check_plan_bounds, verify_plan
from secagg.protocols.base import SERVER_ID, ClientProtocol
from secagg.secret import SecretHolder

__all__ = ["SECAGG_ERROR_CODE", "STATE_KEY", "make_secagg_mod", "secagg_mod"]

log = logging.getLogger(__name__)

STATE_KEY = "secagg.client"
"""Key of the ``ConfigRecord`` in ``context.state`` that holds the client's session."""
_SEEN_SESSIONS = 64
_ACTIVE, _ABORTED, _DONE = "active", "aborted", "done"


@dataclass(repr=False)
class _Stored(SecretHolder, export="_Stored.save(context) / _Stored.load(context)"):
    """The client's session as kept in ``context.state`` between ClientApp processes.

    ``client`` is the protocol client's state bytes (``Client.to_state_bytes``): secret,
    never shown in a repr.
    """

    session_id: bytes = b""
    next_stage: int = 0
    status: str = _DONE
    setup: bytes = b""
    client: bytes = b""
    seen: tuple[bytes, ...] = ()

    def __repr__(self) -> str:
        return (f"_Stored(session={self.session_id.hex()[:16]}..., stage={self.next_stage}, "
                f"status={self.status}, client=<{len(self.client)} bytes>)")

    @classmethod
    def load(cls, context: Context) -> _Stored:
        record = context.state.get(STATE_KEY)
        if not isinstance(record, ConfigRecord):
            return cls()
        seen = record.get("seen", [])
        return cls(
            session_id=_as_bytes(record.get("session")),
            next_stage=int(_as_int(record.get("stage"))),
            status=str(record.get("status", _DONE)),
            setup=_as_bytes(record.get("setup")),
            client=_as_bytes(record.get("client")),
            seen=tuple(s for s in seen if isinstance(s, bytes)) if isinstance(seen, list)
            else (),
        )

    def save(self, context: Context) -> None:
        context.state[STATE_KEY] = ConfigRecord({
            "session": self.session_id, "stage": self.next_stage, "status": self.status,
            "setup": self.setup, "client": self.client, "seen": list(self.seen),
        })


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else b""


def _as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _refuse(message: Message, exc: BaseException) -> Message:
    reason = f"secagg refused: {type(exc).__name__}: {exc}"
    log.warning("%s", reason)
    return Message(Error(SECAGG_ERROR_CODE, reason[:500]), reply_to=message)


KeySource = NodeKeys | Callable[[Context], NodeKeys]
"""The node's key material, or how to load it from the node's context."""


class _Node(SecretHolder, export="none: one mod call's view of its node, rebuilt per call"):
    """What one call of the mod knows about its node: the policy, the key material
    (loaded on first use only: a semi-honest session needs none) and the protocols."""

    def __init__(self, context: Context, policy: ClientPolicy, keys: KeySource | None,
                 backend: ClientBackend | None) -> None:
        self.context = context
        self.policy = policy
        self._keys_source = keys
        self._keys: NodeKeys | None = None
        self._backend = backend

    @property
    def keys(self) -> NodeKeys:
        if self._keys is None:
            source = self._keys_source
            if source is None:
                self._keys = NodeKeys.from_node_config(self.context.node_config)
            elif isinstance(source, NodeKeys):
                self._keys = source
            else:
                self._keys = source(self.context)
        return self._keys

    def protocol(self, name: str) -> FlowerProtocol:
        """The Flower protocol ``name`` if this node's policy takes part in it."""
        if self.policy.protocols is not None and name not in self.policy.protocols:
            raise MaliciousRequestError(f"protocol {name!r} is outside this node's policy",
                                        party=SERVER_ID)
        protocol = flower_protocol(name)
        if self._backend is not None and isinstance(protocol, BonawitzOverFlower):
            protocol = protocol.with_backend(self._backend)
        return protocol


def make_secagg_mod(
    policy: ClientPolicy | None = None, *, backend: ClientBackend | None = None,
    keys: KeySource | None = None, forward_logs: bool = True,
) -> Mod:
    """A Flower mod that runs secure aggregation for ``train`` messages.

    ``policy`` is what the client accepts (default :class:`ClientPolicy`). ``keys`` is the
    node's key material (active mode's identity and registry, a committee's key), or a
    function of the node's context returning it; by default it is loaded from the files
    the node config names (:meth:`NodeKeys.from_node_config`), only when a session needs
    it. ``backend`` overrides how Bonawitz / SecAgg+ clients are created and carried
    (tests). ``forward_logs`` sends secagg's log lines to Flower's console
    (:func:`~secagg.integrations.flower.logs.forward_to_flower`). Messages that are not
    training instructions pass through untouched.
    """
    policy = policy or ClientPolicy()

    def mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if not is_train_message(message):
            return call_next(message, context)
        if forward_logs:
            forward_to_flower()
        if not has_envelope(message.content):
            if policy.require_secure:
                return _refuse(message, MaliciousRequestError(
                    "training without secure aggregation is refused by this client's policy",
                    party=SERVER_ID))
            return call_next(message, context)
        node = _Node(context, policy, keys, backend)
        stored = _Stored.load(context)
        try:
            envelope = read_envelope(message.content, party=SERVER_ID,
                                     max_bytes=policy.max_payload_bytes)
            if envelope.identify is not None:
                return _identify(message, envelope, node)
            check_payload_count(envelope.payloads, party=SERVER_ID)
            if envelope.setup is not None:
                return _start(message, context, call_next, envelope, stored, node)
            return _continue(message, context, envelope, stored, node)
        except SecAggError as exc:
            if stored.status == _ACTIVE:
                stored.status, stored.client = _ABORTED, b""
                stored.save(context)
            return _refuse(message, exc)

    return mod


def _reply(message: Message, envelope: Envelope) -> Message:
    return Message(write_envelope(RecordDict(), envelope), reply_to=message)


def _identify(message: Message, envelope: Envelope, node: _Node) -> Message:
    """Answer an identification request from the node's key material (nothing trained)."""
    assert envelope.identify is not None
    if envelope.payloads or envelope.stage != 0:
        raise ProtocolViolation("an identification request carries no protocol message",
                                party=SERVER_ID)
    request = IdentifyRequest.from_bytes(envelope.identify)
    protocol = node.protocol(request.protocol)
    answer = protocol.identify(node.keys, node_id=message.metadata.dst_node_id,
                               session_id=envelope.session_id, challenge=request.challenge)
    log.info("secagg: answered the %s identification of session %s...", protocol.name,
             envelope.session_id.hex()[:8])
    return _reply(message, Envelope(stage=0, session_id=envelope.session_id, payloads=(),
                                    identity=answer))


def _check_privacy(setup: SessionSetup, policy: ClientPolicy) -> None:
    """Policy checks of a session's privacy plan (or of its absence)."""
    private = setup.privacy
    if private is None or not private.plan.private:
        if policy.require_privacy:
            raise MaliciousRequestError("this node's policy requires distributed DP",
                                        party=SERVER_ID)
        if private is None:
            return
    if setup.weighted or setup.report_clipping or setup.layout.metrics:
        raise MaliciousRequestError("a private session must be unweighted, without metrics "
                                    "or clipping indicators", party=SERVER_ID)
    try:
        check_plan_bounds(private.plan)
    except ConfigurationError as exc:
        raise MaliciousRequestError(f"privacy plan refused: {exc}", party=SERVER_ID) from None
    if policy.max_epsilon is None:
        return
    epsilon = verify_plan(private.plan)  # the accountant: ConfigurationError without it
    if epsilon is not None and epsilon > policy.max_epsilon:
        raise MaliciousRequestError(
            f"the privacy plan spends epsilon {epsilon:.4g}, this node's policy allows "
            f"{policy.max_epsilon:g}", party=SERVER_ID)


def _check_setup(setup: SessionSetup, envelope: Envelope, policy: ClientPolicy
                 ) -> FixedPoint | None:
    """Policy checks of a new session; returns the fixed-point codec to encode with (None
    under privacy: the plan encodes)."""
    if setup.session_id != envelope.session_id:
        raise ProtocolViolation("setup for another session", party=SERVER_ID)
    if setup.n < policy.min_clients:
        raise MaliciousRequestError(
            f"aggregation over {setup.n} clients, policy needs {policy.min_clients}",
            party=SERVER_ID)
    if not policy.min_bits <= setup.bits <= policy.max_bits:
        raise ConfigurationError(f"bit width {setup.bits} outside this client's policy")
    if setup.vector_length > policy.max_vector_length:
        raise ConfigurationError("vector longer than this client's policy allows")
    _check_privacy(setup, policy)
    if setup.privacy is not None:
        return None
    fp = setup.fixed_point
    # FixedPoint re-checks headroom: a server cannot make the client's sum wrap silently.
    fixed = FixedPoint(bits=setup.bits, clip=fp.clip, scale=fp.scale,
                       max_clients=fp.max_clients, max_weight=fp.max_weight)
    if fixed.max_clients < setup.n:
        raise MaliciousRequestError(
            f"encoding sized for {fixed.max_clients} clients, session has {setup.n}",
            party=SERVER_ID)
    return fixed


def _trained_values(message: Message, context: Context, call_next: ClientAppCallable
                    ) -> tuple[ArrayRecord | None, dict[str, object], Message | None]:
    """Run the ClientApp's training; its arrays and metrics, or its error reply."""
    message.content = strip_envelope(message.content)
    trained = call_next(message, context)
    if trained.has_error():
        return None, {}, trained
    content = trained.content
    if len(content.array_records) != 1:
        raise ConfigurationError("the training reply must hold exactly one ArrayRecord")
    arrays = next(iter(content.array_records.values()))
    metrics: dict[str, object] = {}
    # Legacy FitRes replies keep their metrics in a ConfigRecord; MetricRecords win.
    for config in content.config_records.values():
        metrics.update(config)
    for record in content.metric_records.values():
        metrics.update(record)
    return arrays, metrics, None


def _global_vector(message: Message, setup: SessionSetup) -> np.ndarray:
    """The global arrays the server sent, flattened (the reference of a private update)."""
    records = list(strip_envelope(message.content).array_records.values())
    if len(records) != 1:
        raise ConfigurationError("a training message must carry exactly one ArrayRecord")
    return setup.layout.flatten(records[0], {})


def _encode_private(private: PrivacySetup, setup: SessionSetup, base: np.ndarray,
                    arrays: ArrayRecord) -> np.ndarray:
    """This node's DP encoding of its update (trained minus global arrays)."""
    update = setup.layout.flatten(arrays, {})  # ConfigurationError on NaN or infinity
    update -= base
    encoded: np.ndarray = dp_encode(update, private.plan, private.round_seed)
    return encoded


def _encode(setup: SessionSetup, fixed: FixedPoint, arrays: ArrayRecord,
            metrics: dict[str, object]) -> np.ndarray:
    """The encoded vector: arrays, scaled metrics, clipping indicators, then the weight."""
    if setup.weighted:
        weight = metrics.get(setup.weighted_by_key)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigurationError(
                f"the training reply lacks the weight {setup.weighted_by_key!r}")
        if not 0 <= weight <= fixed.max_weight:
            raise ConfigurationError(
                f"weight {weight} outside [0, max_weight = {fixed.max_weight}]")
    else:
        weight = 1
    layout = setup.layout
    vector = layout.flatten(arrays, metrics)
    split = layout.array_size
    if setup.metric_scale != 1.0:
        vector[split:] *= setup.metric_scale
    beyond = np.abs(vector) > fixed.clip
    clipped_arrays = int(np.count_nonzero(beyond[:split]))
    clipped_metrics = [name for name, over in zip(layout.metrics, beyond[split:], strict=True)
                       if over]
    if clipped_arrays:
        log.warning("secagg: %d of %d array values of this node's update lie beyond the "
                    "clip +-%g and are clipped", clipped_arrays, split, fixed.clip)
    if clipped_metrics:
        log.warning("secagg: metrics %s of this node lie beyond their bound and are clipped "
                    "(the server's SecAggSettings.metric_clip)", clipped_metrics)
    if setup.report_clipping:
        flags = [fixed.clip if clipped_arrays else 0.0,
                 fixed.clip if clipped_metrics else 0.0]
        vector = np.concatenate([vector, flags])
    encoded: np.ndarray = fixed.encode_weighted(vector, float(weight))
    return encoded


def _start(message: Message, context: Context, call_next: ClientAppCallable,
           envelope: Envelope, stored: _Stored, node: _Node) -> Message:
    assert envelope.setup is not None
    policy = node.policy
    setup = SessionSetup.from_bytes(envelope.setup, max_vector_length=policy.max_vector_length)
    if setup.session_id in stored.seen:
        raise MaliciousRequestError("a session id this client already took part in",
                                    party=SERVER_ID)
    fixed = _check_setup(setup, envelope, policy)
    protocol = node.protocol(setup.protocol)
    config = protocol.client_config(setup, node.keys, policy)
    seen = (*stored.seen, setup.session_id)[-_SEEN_SESSIONS:]
    # From here on the session counts as started: any failure aborts it for good.
    stored = _Stored(session_id=setup.session_id, next_stage=0, status=_ACTIVE,
                     setup=envelope.setup, seen=seen)
    stored.save(context)
    try:
        base = _global_vector(message, setup) if setup.privacy is not None else None
        arrays, metrics, error_reply = _trained_values(message, context, call_next)
        if error_reply is not None or arrays is None:
            stored.status = _ABORTED
            stored.save(context)
            return error_reply or _refuse(message, UsageError("training produced no update"))
        if setup.privacy is not None:
            assert base is not None
            vector = _encode_private(setup.privacy, setup, base, arrays)
        else:
            assert fixed is not None
            vector = _encode(setup, fixed, arrays, metrics)
        client = protocol.create_client(config, setup.client_id, vector, node.keys)
        log.info("secagg: joined session %s... (%s) as client %d of %d",
                 setup.session_id.hex()[:8], protocol.name, setup.client_id, setup.n)
        return _answer(message, context, envelope, stored, protocol, config, client, node)
    except BaseException:
        # Whatever failed (a refusal, the training function crashing), this session is
        # over for this client: a retry of it is refused.
        stored.status, stored.client = _ABORTED, b""
        stored.save(context)
        raise


def _continue(message: Message, context: Context, envelope: Envelope, stored: _Stored,
              node: _Node) -> Message:
    if stored.session_id != envelope.session_id or not stored.setup:
        raise ProtocolViolation("a stage of a session this client is not in", party=SERVER_ID)
    if stored.status != _ACTIVE:
        raise MaliciousRequestError(f"the session is {stored.status}", party=SERVER_ID)
    if envelope.stage < stored.next_stage:
        # Stage numbers only grow (a protocol may skip a node in some stages); the
        # protocol client itself decides which message may come next.
        raise ProtocolViolation(
            f"stage {envelope.stage} out of order (expected {stored.next_stage} or later)",
            party=SERVER_ID)
    setup = SessionSetup.from_bytes(stored.setup, max_vector_length=2**62)
    protocol = node.protocol(setup.protocol)
    config = protocol.client_config(setup, node.keys, node.policy)
    client = protocol.load_client(config, setup.client_id, stored.client, node.keys)
    return _answer(message, context, envelope, stored, protocol, config, client, node)


def _answer(message: Message, context: Context, envelope: Envelope, stored: _Stored,
            protocol: FlowerProtocol, config: Any, client: ClientProtocol,
            node: _Node) -> Message:
    replies = _feed(client, protocol, config, envelope.payloads)
    stored.next_stage = envelope.stage + 1
    if client.done:
        stored.status, stored.client = _DONE, b""
        log.info("secagg: session %s... done for this node", envelope.session_id.hex()[:8])
    else:
        stored.client = protocol.dump_client(client)
    stored.save(context)
    log.debug("secagg: answered stage %d of session %s...", envelope.stage,
              envelope.session_id.hex()[:8])
    return _reply(message, Envelope(stage=envelope.stage, session_id=envelope.session_id,
                                    payloads=tuple(replies)))


def _feed(client: ClientProtocol, protocol: FlowerProtocol, config: Any,
          payloads: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for payload in payloads:
        request = protocol.decode(payload, SERVER_ID)
        if request.recipient != client.client_id or request.session_id != config.session_id:
            raise ProtocolViolation("a protocol message for another client or session",
                                    party=SERVER_ID)
        out.extend(m.to_bytes() for m in client.receive(request))
    return out


secagg_mod: Mod = make_secagg_mod()
"""The mod with the default :class:`ClientPolicy`: ``ClientApp(mods=[secagg_mod])``."""
