"""How secagg protocol messages ride inside Flower messages (transport only).

Every Flower message of a secure aggregation carries two records in its ``RecordDict``:

* ``"secagg"``: a ``ConfigRecord`` header ``{"v": WIRE_VERSION, "stage": int,
  "session": bytes}`` and, in the first stage only, ``"setup"``: the msgpack-encoded
  :class:`SessionSetup` for the recipient; before a session whose protocol needs to know
  who holds which key (active mode, a decryption committee), the server's identification
  request carries ``"identify"`` (:class:`IdentifyRequest`) and the node's answer
  ``"identity"`` (protocol-specific bytes, e.g. a signed proof of its registered key);
* ``"secagg.payload"``: an ``ArrayRecord`` whose arrays ``"0"``, ``"1"``... hold the
  ``to_bytes()`` encodings of secagg protocol messages, as raw ``uint8`` data with the
  stype :data:`PAYLOAD_STYPE` (never ``np.load``-ed, never unpickled).

A setup of a session under distributed DP or compression (:mod:`secagg.integrations.privacy`)
carries one more, trailing element: the :class:`PrivacySetup` (the run's public DP plan and
the round's public rotation seed). A setup without privacy encodes exactly as before, and a
client that does not know the trailing element refuses the setup instead of ignoring it.

Decoding is strict: a record with unexpected keys, types, sizes or version raises
:class:`DecodeError` naming the sending party (0 for the server, else the client id the
transport authenticated). Types are exact (``True`` is not version 1, ``1.0`` not stage 1)
and error texts never echo what the peer sent (:func:`secagg.protocols.wire.shown`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import msgpack
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from secagg.dp import DPPlan
from secagg.errors import ConfigurationError, DecodeError
from secagg.integrations.flower.layout import ArrayLayout
from secagg.integrations.privacy import ROUND_SEED_BYTES
from secagg.protocols.limits import MAX_CLIENT_ID, SESSION_ID_BYTES
from secagg.protocols.wire import shown

__all__ = [
    "CHALLENGE_BYTES",
    "HEADER_KEY",
    "PAYLOAD_KEY",
    "PAYLOAD_STYPE",
    "SECAGG_ERROR_CODE",
    "WIRE_VERSION",
    "Envelope",
    "FixedPointParams",
    "IdentifyRequest",
    "PrivacySetup",
    "SessionSetup",
    "check_payload_count",
    "has_envelope",
    "read_envelope",
    "strip_envelope",
    "unpack_peer",
    "write_envelope",
]

WIRE_VERSION = 2
SECAGG_ERROR_CODE = 6  # flwr ErrorCode.MOD_FAILED_PRECONDITION: a mod refused the message
HEADER_KEY = "secagg"
PAYLOAD_KEY = "secagg.payload"
PAYLOAD_STYPE = "secagg/bytes"
_MAX_PAYLOADS = 64
_MAX_STAGE = 64
_MAX_SETUP_BYTES = 16 * 2**20
_MAX_KEY_CHARS = 256
_MAX_IDENTIFY_BYTES = 4096
_MAX_PROTOCOL_NAME = 64
CHALLENGE_BYTES = 32
_MIN_SCALE = 1e-12
_HEADER_KEYS = frozenset({"v", "stage", "session", "setup", "identify", "identity"})


@dataclass(frozen=True)
class Envelope:
    """The transport header and payloads of one Flower message of a secure aggregation.

    ``setup`` (first stage, server to client), ``identify`` (an identification request,
    server to client) and ``identity`` (its answer) are set only in those messages.
    """

    stage: int
    session_id: bytes
    payloads: tuple[bytes, ...]
    setup: bytes | None = None
    identify: bytes | None = None
    identity: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"Envelope(stage={self.stage}, session={self.session_id.hex()[:16]}..., "
            f"payloads={[len(p) for p in self.payloads]}, setup={self.setup is not None}, "
            f"identify={self.identify is not None}, identity={self.identity is not None})"
        )


@dataclass(frozen=True)
class IdentifyRequest:
    """The server asks a node, before a session, which key it holds (all public).

    ``protocol`` names the Flower protocol whose identities are wanted, ``challenge`` is a
    fresh random value the node's proof must cover (so an old proof cannot be replayed).
    """

    protocol: str
    challenge: bytes

    def to_bytes(self) -> bytes:
        """Versioned msgpack encoding."""
        return bytes(msgpack.packb([WIRE_VERSION, self.protocol, self.challenge],
                                   use_bin_type=True))

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentifyRequest:
        """Decode a request from the server (party 0); DecodeError if malformed."""
        obj = _unpack(data, _MAX_IDENTIFY_BYTES, "identification request")
        if not isinstance(obj, list) or len(obj) != 3 or obj[0] != WIRE_VERSION:
            raise DecodeError("unsupported identification request", party=0)
        _, protocol, challenge = obj
        if not isinstance(protocol, str) or not 0 < len(protocol) <= _MAX_PROTOCOL_NAME:
            raise DecodeError("bad protocol name", party=0)
        if not isinstance(challenge, bytes) or len(challenge) != CHALLENGE_BYTES:
            raise DecodeError("bad challenge", party=0)
        return cls(protocol, challenge)


def unpack_peer(data: bytes, *, error: str, party: int, **limits: int) -> object:
    """A peer's msgpack ``data`` (lists, strict map keys) under msgpack's ``max_*_len``
    ``limits``. Raises DecodeError with the text ``error`` for anything msgpack refuses:
    never msgpack's own text, which may quote the peer's bytes."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, **limits)
    except Exception:  # msgpack raises several unrelated types on bad input
        raise DecodeError(error, party=party) from None


def _unpack(data: bytes, limit: int, what: str, *, party: int = 0) -> object:
    if not isinstance(data, bytes) or len(data) > limit:
        raise DecodeError(f"{what} is not bytes of at most {limit}", party=party)
    return unpack_peer(data, error=f"{what} is not valid msgpack", party=party,
                       max_bin_len=limit, max_str_len=limit)


def has_envelope(content: RecordDict) -> bool:
    """Whether ``content`` carries a secagg header (the message belongs to a session)."""
    # RecordDict.config_records builds a new view per call: look the key up directly.
    return isinstance(content.get(HEADER_KEY), ConfigRecord)


def write_envelope(content: RecordDict, envelope: Envelope) -> RecordDict:
    """Add ``envelope``'s two records to ``content`` (in place) and return it."""
    header = ConfigRecord({"v": WIRE_VERSION, "stage": envelope.stage,
                           "session": envelope.session_id})
    for key in ("setup", "identify", "identity"):
        value = getattr(envelope, key)
        if value is not None:
            header[key] = value
    content[HEADER_KEY] = header
    content[PAYLOAD_KEY] = ArrayRecord(
        {
            str(i): Array(dtype="uint8", shape=(len(p),), stype=PAYLOAD_STYPE, data=bytes(p))
            for i, p in enumerate(envelope.payloads)
        }
    )
    return content


def strip_envelope(content: RecordDict) -> RecordDict:
    """A copy of ``content`` without the secagg records (what the ClientApp sees)."""
    return RecordDict({k: v for k, v in content.items() if k not in (HEADER_KEY, PAYLOAD_KEY)})


def read_envelope(content: RecordDict, *, party: int, max_bytes: int) -> Envelope:
    """The envelope of ``content`` sent by ``party``, strictly validated.

    Raises DecodeError(party=party) if the header or payload records are missing or
    malformed, the version is unknown, or the payloads exceed ``max_bytes`` in total.
    """
    header, payload = content.get(HEADER_KEY), content.get(PAYLOAD_KEY)
    if not isinstance(header, ConfigRecord) or not isinstance(payload, ArrayRecord):
        raise DecodeError("missing secagg records", party=party)
    keys = set(header.keys())
    if not {"v", "stage", "session"} <= keys <= _HEADER_KEYS:
        raise DecodeError("unexpected secagg header keys", party=party)
    version, stage, session = header["v"], header["stage"], header["session"]
    if type(version) is not int or version != WIRE_VERSION:
        raise DecodeError(f"unsupported secagg wire version {shown(version)}", party=party)
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage <= _MAX_STAGE:
        raise DecodeError("bad stage number", party=party)
    if not isinstance(session, bytes) or not (
        SESSION_ID_BYTES[0] <= len(session) <= SESSION_ID_BYTES[1]
    ):
        raise DecodeError("bad session id", party=party)
    setup = header.get("setup")
    if setup is not None and (not isinstance(setup, bytes) or len(setup) > _MAX_SETUP_BYTES):
        raise DecodeError("bad setup record", party=party)
    identify, identity = (_optional_bytes(header.get(key), party)
                          for key in ("identify", "identity"))
    if sum(v is not None for v in (setup, identify, identity)) > 1:
        raise DecodeError("a message is either a setup, an identification or its answer",
                          party=party)
    if len(payload) > _MAX_PAYLOADS or list(payload.keys()) != [str(i) for i in
                                                                 range(len(payload))]:
        raise DecodeError("bad payload record keys", party=party)
    payloads = []
    total = 0
    for array in payload.values():
        data = array.data
        if (array.stype != PAYLOAD_STYPE or array.dtype != "uint8" or not isinstance(data, bytes)
                or tuple(array.shape) != (len(data),)):
            raise DecodeError("bad payload array", party=party)
        total += len(data)
        if total > max_bytes:
            raise DecodeError(f"payload exceeds {max_bytes} bytes", party=party)
        payloads.append(data)
    return Envelope(stage=stage, session_id=session, payloads=tuple(payloads), setup=setup,
                    identify=identify, identity=identity)


def _optional_bytes(value: object, party: int) -> bytes | None:
    if value is not None and (not isinstance(value, bytes) or len(value) > _MAX_IDENTIFY_BYTES):
        raise DecodeError("bad identification record", party=party)
    return value


@dataclass(frozen=True)
class FixedPointParams:
    """The public fixed-point encoding parameters (see :class:`secagg.encoding.FixedPoint`)."""

    clip: float
    scale: float
    max_clients: int
    max_weight: float


_PLAN_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "int | None": (int, type(None)), "float": (int, float),
    "float | None": (int, float, type(None)), "str": (str,),
}
_MAX_PLAN_STR = 16


@dataclass(frozen=True)
class PrivacySetup:
    """The privacy part of a setup (all public): the run's :class:`~secagg.dp.DPPlan` and
    this round's rotation seed (fresh from the server's CSPRNG every round)."""

    plan: DPPlan
    round_seed: bytes

    def to_wire(self) -> list[object]:
        """A msgpack-ready form: ``[plan fields, round seed]``."""
        return [self.plan.to_dict(), self.round_seed]

    @classmethod
    def from_wire(cls, obj: object) -> PrivacySetup:
        """Decode :meth:`to_wire` output received from the server (party 0): exact types per
        plan field (a float where an int belongs is refused), the plan's own checks, a seed
        of :data:`~secagg.integrations.privacy.ROUND_SEED_BYTES`. Raises DecodeError."""
        if not isinstance(obj, list) or len(obj) != 2:
            raise DecodeError("bad privacy setup", party=0)
        fields, seed = obj
        if not isinstance(seed, bytes) or len(seed) != ROUND_SEED_BYTES:
            raise DecodeError("bad round seed", party=0)
        known = DPPlan.__dataclass_fields__
        if not isinstance(fields, dict) or set(fields) != set(known):
            raise DecodeError("bad privacy plan fields", party=0)
        values: dict[str, object] = {}
        for name, value in fields.items():
            kind = str(known[name].type)
            allowed = _PLAN_TYPES.get(kind, ())
            if isinstance(value, bool) or not isinstance(value, allowed) or (
                    isinstance(value, str) and len(value) > _MAX_PLAN_STR):
                raise DecodeError(f"bad privacy plan field {name}", party=0)
            values[name] = float(value) if isinstance(value, int) and "float" in kind else value
        try:
            plan = DPPlan.from_dict(values)
        except (ConfigurationError, TypeError, ValueError, OverflowError):
            raise DecodeError("bad privacy plan", party=0) from None
        return cls(plan, seed)


@dataclass(frozen=True)
class SessionSetup:
    """Everything a client needs to join one secure aggregation: all public.

    ``protocol`` names the Flower protocol (:mod:`secagg.integrations.flower.protocols`)
    and ``params`` holds its own parameters (msgpack, decoded by that protocol: e.g. the
    Bonawitz threshold, degree, mode and identities, or the threshold-Paillier public key
    and committee). The client rebuilds the protocol's config from these fields itself and
    checks them against what it trusts (its policy, its registry, its public key).

    The flat vector a client encodes is the layout's values, then (``report_clipping``)
    two clipping indicators, then the weight. Metrics are multiplied by ``metric_scale``
    before encoding (so that they may be bounded apart from the arrays) and divided back
    after decoding. With ``privacy`` the vector is instead the client's
    :func:`secagg.dp.encode` of its update (trained arrays minus the global ones),
    ``plan.padded_dim`` values.
    """

    session_id: bytes
    protocol: str
    n: int
    client_id: int
    bits: int
    fixed_point: FixedPointParams
    layout: ArrayLayout
    weighted_by_key: str
    weighted: bool
    params: bytes
    metric_scale: float = 1.0
    report_clipping: bool = False
    privacy: PrivacySetup | None = None

    @property
    def extra_values(self) -> int:
        """Values after the layout and before the weight (the clipping indicators)."""
        return 2 if self.report_clipping else 0

    @property
    def vector_length(self) -> int:
        """Model values, secure metrics, clipping indicators, then the weight (with privacy:
        the plan's padded length)."""
        if self.privacy is not None:
            return self.privacy.plan.padded_dim
        return self.layout.size + self.extra_values + 1

    def __repr__(self) -> str:
        return (
            f"SessionSetup(session={self.session_id.hex()[:16]}..., protocol={self.protocol!r}, "
            f"n={self.n}, client_id={self.client_id}, bits={self.bits}, "
            f"vector_length={self.vector_length}, params=<{len(self.params)} bytes>)"
        )

    def to_bytes(self) -> bytes:
        """Versioned msgpack encoding."""
        fp = self.fixed_point
        fields: list[object] = [
            WIRE_VERSION, self.session_id, self.protocol, self.n, self.client_id,
            self.bits, [fp.clip, fp.scale, fp.max_clients, fp.max_weight],
            self.layout.to_wire(), self.weighted_by_key, self.weighted, self.params,
            self.metric_scale, self.report_clipping,
        ]
        if self.privacy is not None:
            fields.append(self.privacy.to_wire())
        return bytes(msgpack.packb(fields, use_bin_type=True))

    @classmethod
    def from_bytes(cls, data: bytes, *, max_vector_length: int) -> SessionSetup:
        """Decode a setup from the server (party 0).

        Raises DecodeError on malformed data (not bytes, not msgpack), an unknown version,
        a value of the wrong type (exact: a bool is not an int), out-of-range numbers, a
        session id outside 16..64 bytes, or a layout longer than ``max_vector_length``;
        with privacy, a malformed plan (:meth:`PrivacySetup.from_wire`), one of other bits
        or another model size, or a padded length beyond ``max_vector_length``.
        """
        obj = _unpack(data, _MAX_SETUP_BYTES, "setup")
        if (not isinstance(obj, list) or len(obj) not in (13, 14) or type(obj[0]) is not int
                or obj[0] != WIRE_VERSION):
            raise DecodeError("unsupported setup encoding", party=0)
        (_, session_id, protocol, n, client_id, bits, fp, layout, weight_key, weighted,
         params, metric_scale, report_clipping) = obj[:13]
        privacy = PrivacySetup.from_wire(obj[13]) if len(obj) == 14 else None
        if not isinstance(session_id, bytes) or not (
            SESSION_ID_BYTES[0] <= len(session_id) <= SESSION_ID_BYTES[1]
        ):
            raise DecodeError("bad session id", party=0)
        if not isinstance(protocol, str) or not 0 < len(protocol) <= _MAX_PROTOCOL_NAME:
            raise DecodeError("bad protocol name", party=0)
        for name, value, high in (("n", n, MAX_CLIENT_ID), ("client_id", client_id, n),
                                  ("bits", bits, 64)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise DecodeError(f"bad {name}", party=0)
        if (not isinstance(weight_key, str) or not 0 < len(weight_key) <= _MAX_KEY_CHARS
                or not isinstance(weighted, bool)):
            raise DecodeError("bad weight settings", party=0)
        if not isinstance(params, bytes):
            raise DecodeError("bad protocol parameters", party=0)
        if isinstance(metric_scale, bool) or not isinstance(metric_scale, (int, float)) or not (
            math.isfinite(metric_scale) and _MIN_SCALE <= metric_scale <= 1 / _MIN_SCALE
        ):
            raise DecodeError("bad metric scale", party=0)
        if not isinstance(report_clipping, bool):
            raise DecodeError("bad clipping report flag", party=0)
        limit = max_vector_length - 1 - (2 if report_clipping else 0)
        try:
            array_layout = ArrayLayout.from_wire(layout, max_size=limit)
        except Exception:  # DecodeError, or numpy's own on a hostile dtype string
            # The layout decoder's text may quote a peer-chosen name or dtype: not here.
            raise DecodeError(
                f"malformed model layout, or one that exceeds {limit} values", party=0
            ) from None
        if privacy is not None:
            plan = privacy.plan
            if (plan.bits != bits or plan.dim != array_layout.array_size
                    or plan.padded_dim > max_vector_length):
                raise DecodeError("privacy plan of other bits, another model size, or "
                                  "longer than the limit", party=0)
        return cls(
            session_id=session_id, protocol=protocol, n=n, client_id=client_id, bits=bits,
            fixed_point=_fixed_point_from_wire(fp),
            layout=array_layout,
            weighted_by_key=weight_key, weighted=weighted, params=params,
            metric_scale=float(metric_scale), report_clipping=report_clipping,
            privacy=privacy,
        )


def _fixed_point_from_wire(obj: object) -> FixedPointParams:
    if not isinstance(obj, list) or len(obj) != 4:
        raise DecodeError("bad fixed-point parameters", party=0)
    clip, scale, max_clients, max_weight = obj
    for value in (clip, scale, max_weight):
        if type(value) not in (int, float) or not (math.isfinite(value) and value > 0):
            raise DecodeError("bad fixed-point parameters", party=0)
    if type(max_clients) is not int or max_clients < 1:
        raise DecodeError("bad fixed-point parameters", party=0)
    return FixedPointParams(float(clip), float(scale), max_clients, float(max_weight))


def check_payload_count(payloads: Sequence[bytes], *, party: int) -> None:
    """Raise DecodeError(party) unless there is at least one payload."""
    if not payloads:
        raise DecodeError("no protocol message in the envelope", party=party)
