"""How secagg protocol messages ride inside Flower messages (transport only).

Every Flower message of a secure aggregation carries two records in its ``RecordDict``:

* ``"secagg"``: a ``ConfigRecord`` header ``{"v": WIRE_VERSION, "stage": int,
  "session": bytes}`` and, in the first stage only, ``"setup"``: the msgpack-encoded
  :class:`SessionSetup` for the recipient;
* ``"secagg.payload"``: an ``ArrayRecord`` whose arrays ``"0"``, ``"1"``... hold the
  ``to_bytes()`` encodings of secagg protocol messages, as raw ``uint8`` data with the
  stype :data:`PAYLOAD_STYPE` (never ``np.load``-ed, never unpickled).

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

from secagg.errors import DecodeError
from secagg.integrations.flower.layout import ArrayLayout
from secagg.protocols.limits import MAX_CLIENT_ID, SESSION_ID_BYTES
from secagg.protocols.wire import shown

__all__ = [
    "HEADER_KEY",
    "PAYLOAD_KEY",
    "PAYLOAD_STYPE",
    "WIRE_VERSION",
    "Envelope",
    "FixedPointParams",
    "SessionSetup",
    "check_payload_count",
    "has_envelope",
    "read_envelope",
    "strip_envelope",
    "write_envelope",
]

WIRE_VERSION = 1
HEADER_KEY = "secagg"
PAYLOAD_KEY = "secagg.payload"
PAYLOAD_STYPE = "secagg/bytes"
_MAX_PAYLOADS = 64
_MAX_STAGE = 64
_MAX_SETUP_BYTES = 16 * 2**20
_MAX_KEY_CHARS = 256


@dataclass(frozen=True)
class Envelope:
    """The transport header and payloads of one Flower message of a secure aggregation."""

    stage: int
    session_id: bytes
    payloads: tuple[bytes, ...]
    setup: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"Envelope(stage={self.stage}, session={self.session_id.hex()[:16]}..., "
            f"payloads={[len(p) for p in self.payloads]}, setup={self.setup is not None})"
        )


def has_envelope(content: RecordDict) -> bool:
    """Whether ``content`` carries a secagg header (the message belongs to a session)."""
    # RecordDict.config_records builds a new view per call: look the key up directly.
    return isinstance(content.get(HEADER_KEY), ConfigRecord)


def write_envelope(content: RecordDict, envelope: Envelope) -> RecordDict:
    """Add ``envelope``'s two records to ``content`` (in place) and return it."""
    header = ConfigRecord({"v": WIRE_VERSION, "stage": envelope.stage,
                           "session": envelope.session_id})
    if envelope.setup is not None:
        header["setup"] = envelope.setup
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
    if not {"v", "stage", "session"} <= keys <= {"v", "stage", "session", "setup"}:
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
    return Envelope(stage=stage, session_id=session, payloads=tuple(payloads), setup=setup)


@dataclass(frozen=True)
class FixedPointParams:
    """The public fixed-point encoding parameters (see :class:`secagg.encoding.FixedPoint`)."""

    clip: float
    scale: float
    max_clients: int
    max_weight: float


@dataclass(frozen=True)
class SessionSetup:
    """Everything a client needs to join one secure aggregation: all public.

    The client rebuilds the :class:`~secagg.protocols.bonawitz.config.ProtocolConfig` from these
    fields (clients are ``1..n``; the SecAgg+ graph follows from the session id and the
    degree), so a server cannot hand it an inconsistent config.
    """

    session_id: bytes
    n: int
    client_id: int
    threshold: int
    bits: int
    degree: int | None
    fixed_point: FixedPointParams
    layout: ArrayLayout
    weighted_by_key: str
    weighted: bool

    @property
    def vector_length(self) -> int:
        """Model values, secure metrics, then the weight."""
        return self.layout.size + 1

    def __repr__(self) -> str:
        return (
            f"SessionSetup(session={self.session_id.hex()[:16]}..., n={self.n}, "
            f"client_id={self.client_id}, threshold={self.threshold}, bits={self.bits}, "
            f"degree={self.degree}, vector_length={self.vector_length})"
        )

    def to_bytes(self) -> bytes:
        """Versioned msgpack encoding."""
        fp = self.fixed_point
        return bytes(msgpack.packb(
            [
                WIRE_VERSION, self.session_id, self.n, self.client_id, self.threshold,
                self.bits, self.degree, [fp.clip, fp.scale, fp.max_clients, fp.max_weight],
                self.layout.to_wire(), self.weighted_by_key, self.weighted,
            ],
            use_bin_type=True,
        ))

    @classmethod
    def from_bytes(cls, data: bytes, *, max_vector_length: int) -> SessionSetup:
        """Decode a setup from the server (party 0).

        Raises DecodeError on malformed data (not bytes, not msgpack), an unknown version,
        a value of the wrong type (exact: a bool is not an int), out-of-range numbers, a
        session id outside 16..64 bytes, or a layout longer than ``max_vector_length``.
        """
        if not isinstance(data, bytes):
            raise DecodeError("setup must be bytes", party=0)
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True,
                                  max_bin_len=_MAX_SETUP_BYTES, max_str_len=_MAX_SETUP_BYTES)
        except Exception:  # msgpack raises several unrelated types on bad input
            raise DecodeError("setup is not valid msgpack", party=0) from None
        if (not isinstance(obj, list) or len(obj) != 11 or type(obj[0]) is not int
                or obj[0] != WIRE_VERSION):
            raise DecodeError("unsupported setup encoding", party=0)
        (_, session_id, n, client_id, threshold, bits, degree, fp, layout,
         weight_key, weighted) = obj
        if not isinstance(session_id, bytes) or not (
            SESSION_ID_BYTES[0] <= len(session_id) <= SESSION_ID_BYTES[1]
        ):
            raise DecodeError("bad session id", party=0)
        for name, value, high in (("n", n, MAX_CLIENT_ID), ("client_id", client_id, n),
                                  ("threshold", threshold, n), ("bits", bits, 64)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise DecodeError(f"bad {name}", party=0)
        if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int)
                                   or not 1 <= degree < n):
            raise DecodeError("bad degree", party=0)
        if (not isinstance(weight_key, str) or not 0 < len(weight_key) <= _MAX_KEY_CHARS
                or not isinstance(weighted, bool)):
            raise DecodeError("bad weight settings", party=0)
        try:
            array_layout = ArrayLayout.from_wire(layout, max_size=max_vector_length - 1)
        except Exception:  # DecodeError, or numpy's own on a hostile dtype string
            # The layout decoder's text may quote a peer-chosen name or dtype: not here.
            limit = max_vector_length - 1
            raise DecodeError(
                f"malformed model layout, or one that exceeds {limit} values", party=0
            ) from None
        return cls(
            session_id=session_id, n=n, client_id=client_id, threshold=threshold, bits=bits,
            degree=degree, fixed_point=_fixed_point_from_wire(fp), layout=array_layout,
            weighted_by_key=weight_key, weighted=weighted,
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
