"""The ClientApp side: a Flower mod that runs the client of a secure aggregation.

Theory of operation. Flower starts a fresh ClientApp process for every message, so the
protocol client cannot live in memory between stages: after each stage the mod stores it
in ``context.state`` (which the SuperNode keeps on the client side and never sends to
the SuperLink) and restores it on the next message. A session goes:

1. first stage (the envelope carries a :class:`SessionSetup`): the mod checks the setup
   against its :class:`ClientPolicy`, rebuilds the public :class:`ProtocolConfig` itself,
   hands the strategy's content (without secagg records) to the ClientApp's ``train``
   handler, flattens and encodes the trained arrays, weight and secure metrics, creates
   the protocol client with that vector and answers the server's first protocol message;
2. later stages: restore, answer, store; the session ends when the protocol client is done.

The reply of every stage carries only the secagg records: the trained arrays, the weight
and the metrics never leave the client in clear. Anything wrong (a malformed or malicious
server message, a setup below policy, an out-of-order stage, a model that does not match)
gets an error reply and, once a session started, aborts it for good: a second try of the
same session is refused. Training messages without secagg records are refused too unless
``ClientPolicy.require_secure`` is off (a server cannot downgrade the client).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod

from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    MaliciousRequestError,
    ProtocolViolation,
    SecAggError,
    UsageError,
)
from secagg.integrations.flower.client_state import ClientBackend, default_backend
from secagg.integrations.flower.server import is_train_message
from secagg.integrations.flower.settings import ClientPolicy
from secagg.integrations.flower.wire import (
    Envelope,
    SessionSetup,
    check_payload_count,
    has_envelope,
    read_envelope,
    strip_envelope,
    write_envelope,
)
from secagg.protocols.base import SERVER_ID, ClientProtocol
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import decode_message
from secagg.secret import SecretHolder

__all__ = ["SECAGG_ERROR_CODE", "STATE_KEY", "make_secagg_mod", "secagg_mod"]

log = logging.getLogger(__name__)

STATE_KEY = "secagg.client"
"""Key of the ``ConfigRecord`` in ``context.state`` that holds the client's session."""
SECAGG_ERROR_CODE = 6  # flwr ErrorCode.MOD_FAILED_PRECONDITION: a mod refused the message
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


def make_secagg_mod(
    policy: ClientPolicy | None = None, *, backend: ClientBackend | None = None
) -> Mod:
    """A Flower mod that runs secure aggregation for ``train`` messages.

    ``policy`` is what the client accepts (default :class:`ClientPolicy`); ``backend``
    creates, stores and restores the protocol client (default: secagg's Bonawitz client).
    Messages that are not training instructions pass through untouched.
    """
    policy = policy or ClientPolicy()

    def mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if not is_train_message(message):
            return call_next(message, context)
        if not has_envelope(message.content):
            if policy.require_secure:
                return _refuse(message, MaliciousRequestError(
                    "training without secure aggregation is refused by this client's policy",
                    party=SERVER_ID))
            return call_next(message, context)
        stored = _Stored.load(context)
        try:
            envelope = read_envelope(message.content, party=SERVER_ID,
                                     max_bytes=policy.max_payload_bytes)
            check_payload_count(envelope.payloads, party=SERVER_ID)
            chosen = backend or default_backend()
            if envelope.setup is not None:
                return _start(message, context, call_next, envelope, stored, policy, chosen)
            return _continue(message, context, envelope, stored, chosen)
        except SecAggError as exc:
            if stored.status == _ACTIVE:
                stored.status, stored.client = _ABORTED, b""
                stored.save(context)
            return _refuse(message, exc)

    return mod


def _reply(message: Message, envelope: Envelope) -> Message:
    return Message(write_envelope(RecordDict(), envelope), reply_to=message)


def _config_of(setup: SessionSetup) -> ProtocolConfig:
    """The public config a setup describes (cached: rebuilding a SecAgg+ graph is costly)."""
    return _cached_config(setup.session_id, setup.n, setup.threshold, setup.bits,
                          setup.vector_length, setup.degree)


@functools.lru_cache(maxsize=16)
def _cached_config(session_id: bytes, n: int, threshold: int, bits: int, vector_length: int,
                   degree: int | None) -> ProtocolConfig:
    return ProtocolConfig.create(
        clients=range(1, n + 1), threshold=threshold, bits=bits,
        vector_length=vector_length, degree=degree, session_id=session_id,
    )


def _check_setup(setup: SessionSetup, envelope: Envelope, policy: ClientPolicy) -> FixedPoint:
    """Policy checks of a new session; returns the fixed-point codec to encode with."""
    if setup.session_id != envelope.session_id:
        raise ProtocolViolation("setup for another session", party=SERVER_ID)
    if envelope.stage != 0:
        raise ProtocolViolation("a setup outside the first stage", party=SERVER_ID)
    if setup.n < policy.min_clients:
        raise MaliciousRequestError(
            f"aggregation over {setup.n} clients, policy needs {policy.min_clients}",
            party=SERVER_ID)
    if not policy.min_bits <= setup.bits <= policy.max_bits:
        raise ConfigurationError(f"bit width {setup.bits} outside this client's policy")
    if setup.vector_length > policy.max_vector_length:
        raise ConfigurationError("vector longer than this client's policy allows")
    fp = setup.fixed_point
    # FixedPoint re-checks headroom: a server cannot make the client's sum wrap silently.
    fixed = FixedPoint(bits=setup.bits, clip=fp.clip, scale=fp.scale,
                       max_clients=fp.max_clients, max_weight=fp.max_weight)
    if fixed.max_clients < setup.n:
        raise MaliciousRequestError(
            f"encoding sized for {fixed.max_clients} clients, session has {setup.n}",
            party=SERVER_ID)
    return fixed


def _train_vector(message: Message, context: Context, call_next: ClientAppCallable,
                  setup: SessionSetup, fixed: FixedPoint
                  ) -> tuple[np.ndarray | None, Message | None]:
    """Run the ClientApp's training; return the encoded vector, or its error reply."""
    message.content = strip_envelope(message.content)
    trained = call_next(message, context)
    if trained.has_error():
        return None, trained
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
    vector = setup.layout.flatten(arrays, metrics)
    encoded: np.ndarray = fixed.encode_weighted(vector, float(weight))
    return encoded, None


def _start(message: Message, context: Context, call_next: ClientAppCallable,
           envelope: Envelope, stored: _Stored, policy: ClientPolicy,
           backend: ClientBackend) -> Message:
    assert envelope.setup is not None
    setup = SessionSetup.from_bytes(envelope.setup, max_vector_length=policy.max_vector_length)
    if setup.session_id in stored.seen:
        raise MaliciousRequestError("a session id this client already took part in",
                                    party=SERVER_ID)
    fixed = _check_setup(setup, envelope, policy)
    config = _config_of(setup)
    seen = (*stored.seen, setup.session_id)[-_SEEN_SESSIONS:]
    # From here on the session counts as started: any failure aborts it for good.
    stored = _Stored(session_id=setup.session_id, next_stage=0, status=_ACTIVE,
                     setup=envelope.setup, seen=seen)
    stored.save(context)
    try:
        vector, error_reply = _train_vector(message, context, call_next, setup, fixed)
        if error_reply is not None or vector is None:
            stored.status = _ABORTED
            stored.save(context)
            return error_reply or _refuse(message, UsageError("training produced no vector"))
        client = backend.create(config, setup.client_id, vector)
        return _answer(message, context, envelope, stored, config, client, backend)
    except BaseException:
        # Whatever failed (a refusal, the training function crashing), this session is
        # over for this client: a retry of it is refused.
        stored.status, stored.client = _ABORTED, b""
        stored.save(context)
        raise


def _continue(message: Message, context: Context, envelope: Envelope, stored: _Stored,
              backend: ClientBackend) -> Message:
    if stored.session_id != envelope.session_id or not stored.setup:
        raise ProtocolViolation("a stage of a session this client is not in", party=SERVER_ID)
    if stored.status != _ACTIVE:
        raise MaliciousRequestError(f"the session is {stored.status}", party=SERVER_ID)
    if envelope.stage != stored.next_stage:
        raise ProtocolViolation(
            f"stage {envelope.stage} out of order (expected {stored.next_stage})",
            party=SERVER_ID)
    setup = SessionSetup.from_bytes(stored.setup, max_vector_length=2**62)
    config = _config_of(setup)
    client = backend.load(config, setup.client_id, stored.client)
    return _answer(message, context, envelope, stored, config, client, backend)


def _answer(message: Message, context: Context, envelope: Envelope, stored: _Stored,
            config: ProtocolConfig, client: ClientProtocol, backend: ClientBackend) -> Message:
    replies = _feed(client, config, envelope.payloads)
    stored.next_stage = envelope.stage + 1
    if client.done:
        stored.status, stored.client = _DONE, b""
    else:
        stored.client = backend.dump(client)
    stored.save(context)
    return _reply(message, Envelope(stage=envelope.stage, session_id=envelope.session_id,
                                    payloads=tuple(replies)))


def _feed(client: ClientProtocol, config: ProtocolConfig,
          payloads: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for payload in payloads:
        request = decode_message(payload, sender=SERVER_ID)
        if request.recipient != client.client_id or request.session_id != config.session_id:
            raise ProtocolViolation("a protocol message for another client or session",
                                    party=SERVER_ID)
        out.extend(m.to_bytes() for m in client.receive(request))
    return out


secagg_mod: Mod = make_secagg_mod()
"""The mod with the default :class:`ClientPolicy`: ``ClientApp(mods=[secagg_mod])``."""
