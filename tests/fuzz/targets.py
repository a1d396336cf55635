"""Every decoder and loader of secagg as a fuzz target: bytes in, a typed error or a value out.

A target takes one byte string a peer (or a file) could supply and hands it to one decoder,
with the context that decoder needs (the session's config, the public key, the expected
layout...). The fixed context lives in ``tests/fuzz/corpus/fixtures.json`` (written with the
corpus by :mod:`tests.fuzz.make_corpus`: test-only 512-bit keys and small CKKS parameters)
so that the committed corpus files, real messages of real sessions, decode in it.

What counts as a crash (:func:`check`): any exception that is not a
:class:`~secagg.errors.SecAggError`, an error text longer than :data:`MAX_ERROR_TEXT`, or an
error text that echoes the peer's bytes (:data:`MARKER`, which the hostile inputs carry, or
its hex); a hang is an input slower than the caller's limit.

Targets whose input is structured (a Flower ``RecordDict``, a bit width and a length beside
the packed data) read it from the bytes in a fixed way, documented on each; an input that
cannot even be built into the structure (Flower refuses a record value) is not the
decoder's business and is skipped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from secagg.errors import SecAggError

__all__ = [
    "CORPUS",
    "FIXTURES",
    "MARKER",
    "MAX_ERROR_TEXT",
    "TARGETS",
    "Crash",
    "Target",
    "check",
    "fixtures",
]

CORPUS = Path(__file__).resolve().parent / "corpus"
FIXTURES = CORPUS / "fixtures.json"
MAX_ERROR_TEXT = 300
"""Longest error text any decoder may produce, whatever the input."""
MARKER = b"ZQXJ"
"""Bytes the hostile inputs carry: an error text must never contain them (nor their hex)."""


class Crash(AssertionError):
    """A decoder misbehaved on an input (see the module docstring)."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    what: str


def text_problem(exc: BaseException) -> str | None:
    """What is wrong with ``exc``'s text (too long, echoes the input), or None."""
    text = str(exc)
    if len(text) > MAX_ERROR_TEXT:
        return f"error text of {len(text)} chars: {text[:200]!r}"
    for needle in (MARKER.decode(), MARKER.hex(), MARKER.hex().upper()):
        if needle in text:
            return f"error text echoes the input: {text[:200]!r}"
    return None


def check(target: Target, data: bytes) -> str:
    """Run ``target`` on ``data``; raise :class:`Crash` unless it returns or raises a
    bounded, non-echoing SecAggError. Returns the outcome: ``"accepted"`` or the error's
    type and text."""
    try:
        target.run(data)
    except SecAggError as exc:
        problem = text_problem(exc)
        if problem is not None:
            raise Crash(f"{target.name}: {problem}") from exc
        return f"{type(exc).__name__}: {exc}"
    except Crash:
        raise
    except Exception as exc:
        raise Crash(f"{target.name}: {type(exc).__name__}: {str(exc)[:200]}") from exc
    return "accepted"


def _also(call: Callable[[], object]) -> None:
    """Run one more decoder call inside a target: its SecAggError must be sound too."""
    try:
        call()
    except SecAggError as exc:
        problem = text_problem(exc)
        if problem is not None:
            raise Crash(problem) from exc


class _Skip(Exception):
    """The input cannot be built into the target's structure (not the decoder's fault)."""


# --- the fixed context ------------------------------------------------------------------------


@functools.cache
def fixtures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))
    return data


@functools.cache
def _bonawitz_config() -> Any:
    from secagg.protocols.bonawitz.config import ProtocolConfig

    f = fixtures()["bonawitz"]
    return ProtocolConfig.create(
        f["clients"],
        threshold=f["threshold"],
        bits=f["bits"],
        vector_length=f["vector_length"],
        session_id=bytes.fromhex(f["session_id"]),
    )


@functools.cache
def _threshold_key() -> Any:
    from secagg.he.threshold_paillier import ThresholdPublicKey

    return ThresholdPublicKey.from_bytes(bytes.fromhex(fixtures()["threshold_paillier"]["public"]))


@functools.cache
def _slot_layout() -> Any:
    from secagg.he.slots import SlotLayout

    return SlotLayout.from_dict(fixtures()["paillier_vector"]["layout"])


def ckks_parameters() -> Any:
    from secagg.he.ckks import CkksParameters

    f = fixtures()["ckks"]
    return CkksParameters(f["n"], tuple(f["q"]), f["scale_bits"])


@functools.cache
def _ckks_context() -> Any:
    from secagg.he.ckks import CkksContext

    return CkksContext.generate(ckks_parameters()).public()


# --- the decoders ------------------------------------------------------------------------------


def _claimed_sender(data: bytes) -> int:
    try:
        claimed = msgpack.unpackb(data, raw=False, strict_map_key=False)[2]
    except Exception:
        return 1
    return claimed if type(claimed) is int and 0 <= claimed < 2**32 else 1


def _protocol(name: str) -> Callable[[bytes], object]:
    """Decode as from the sender the header claims (so the fields are reached), then as
    from another party (the transport's sender differs)."""

    def run(data: bytes) -> object:
        from secagg.protocols.registry import get_protocol

        decode = get_protocol(name).decode
        claimed = _claimed_sender(data)
        _also(lambda: decode(data, 2 if claimed == 1 else 1))
        return decode(data, claimed)

    return run


def _bonawitz_state(data: bytes) -> object:
    from secagg.protocols.bonawitz.client import Client

    return Client.from_state_bytes(_bonawitz_config(), 1, data)


def _bonawitz_state_body(data: bytes) -> object:
    """The state's msgpack body, framed with its checksum: mutations reach the fields."""
    from secagg.protocols.bonawitz.client import Client
    from secagg.protocols.bonawitz.client_state import _frame

    return Client.from_state_bytes(_bonawitz_config(), 1, _frame(data))


THRESHOLD_CKKS_STATE = {"clients": [1, 2, 3, 4], "committee": [1, 2, 3], "threshold": 2,
                        "bits": 16, "vector_length": 6, "session_id": bytes(range(16))}
"""The public config the threshold-CKKS client states of the corpus belong to (fixed: the
config is public and deterministic, so it needs no fixture)."""


@functools.cache
def threshold_ckks_state_config() -> Any:
    from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig

    f = THRESHOLD_CKKS_STATE
    return ThresholdCkksConfig.create(
        f["clients"], bits=f["bits"], vector_length=f["vector_length"],
        committee=f["committee"], threshold=f["threshold"], session_id=f["session_id"],
    )  # fmt: skip


def _threshold_ckks_state(data: bytes) -> object:
    """A threshold-CKKS client's saved state (as Flower's mod stores it), restored as
    committee member 1, and as non-member 4."""
    from secagg.protocols.threshold_ckks.client import ThresholdCkksClient

    config = threshold_ckks_state_config()
    _also(lambda: ThresholdCkksClient.from_state_bytes(config, 4, data))
    return ThresholdCkksClient.from_state_bytes(config, 1, data)


def _share_box(data: bytes) -> object:
    """A Bonawitz box plaintext: decoded as a self-mask box (share and blinding values) and
    as a mask-key box (one share); each fails alone on the other's size."""
    from secagg.protocols.bonawitz.bundles import decode_mask_key_box, decode_self_mask_box

    config = _bonawitz_config()
    where = {"session_id": config.session_id, "dealer": 2, "holder": 1,
             "threshold": config.threshold}
    _also(lambda: decode_mask_key_box(data, **where))  # type: ignore[arg-type]
    return decode_self_mask_box(data, **where)  # type: ignore[arg-type]


def _shared_secret_proof(data: bytes) -> object:
    """``data`` = prover key (32) | peer key (32) | shared point (32) | proof (64), Edwards
    encodings as a complaint carries them: verified, never raising beyond DecodeError."""
    from secagg.curve25519 import decode_point, verify_shared_secret

    if len(data) < 96:
        raise _Skip
    _also(lambda: decode_point(data[64:96], party=2))
    return verify_shared_secret(
        data[:32], data[32:64], data[64:96], data[96:], context=b"fuzz"
    )


def _share(data: bytes) -> object:
    from secagg.shamir import Share

    return Share.from_bytes(data)


def _shares(data: bytes) -> object:
    from secagg.shamir import SHARE_BYTES, parse_shares

    return parse_shares([data[i : i + SHARE_BYTES] for i in range(0, len(data), SHARE_BYTES)])


def _limb_share(data: bytes) -> object:
    from secagg.shamir import unpack_limb_shares

    return unpack_limb_shares(data)


def _limb_shares(data: bytes) -> object:
    from secagg.shamir import LIMB_SHARE_BYTES, parse_limb_shares

    step = LIMB_SHARE_BYTES
    return parse_limb_shares([data[i : i + step] for i in range(0, len(data), step)])


def _unpack(data: bytes) -> object:
    """``data[0]`` is the bit width (0..255), ``data[1:4]`` the length (big-endian)."""
    from secagg.packing import unpack

    if len(data) < 4:
        raise _Skip
    return unpack(data[4:], data[0], int.from_bytes(data[1:4], "big"))


def _sealed(data: bytes) -> object:
    from secagg.channel import open_sealed

    session = bytes.fromhex(fixtures()["bonawitz"]["session_id"])
    return open_sealed(bytes(32), data, session_id=session, sender=2, recipient=1)


def _peer_key(data: bytes) -> object:
    from secagg.keys import KeyPair

    return KeyPair.from_private_bytes(bytes(range(32))).exchange(data, party=2)


def _signature(data: bytes) -> object:
    from secagg.signing import verify_signature

    return verify_signature(data[:32], b"message", data[32:], party=2)


def _paillier_key(data: bytes) -> object:
    from secagg.he.paillier import PaillierPublicKey

    return PaillierPublicKey.from_bytes(data, party=2)


def _paillier_vector(data: bytes) -> object:
    from secagg.he.paillier import EncryptedVector

    return EncryptedVector.from_bytes(data, _threshold_key().paillier, _slot_layout(), party=2)


def _threshold_public(data: bytes) -> object:
    from secagg.he.threshold_paillier import ThresholdPublicKey

    return ThresholdPublicKey.from_bytes(data, party=2)


def _partial(data: bytes) -> object:
    from secagg.he.threshold_paillier import PartialDecryption

    count = fixtures()["threshold_paillier"]["partial_count"]
    return PartialDecryption.from_bytes(data, _threshold_key(), count, party=2)


def _key_share(data: bytes) -> object:
    from secagg.he.threshold_paillier import KeyShare

    return KeyShare.from_bytes(data, _threshold_key())


def _ckks_context_bytes(data: bytes) -> object:
    from secagg.he.ckks import CkksContext

    return CkksContext.from_bytes(data, party=2)


def _ckks_vector(data: bytes) -> object:
    return _ckks_context().vector_from_bytes(data, party=2)


def _flower_setup(data: bytes) -> object:
    from secagg.integrations.flower.wire import SessionSetup

    return SessionSetup.from_bytes(data, max_vector_length=4096)


def _flower_envelope(data: bytes) -> object:
    """``data`` is msgpack ``[header map, {array name: [dtype, shape, stype, data]}]``:
    the header becomes the ConfigRecord, the map the ArrayRecord."""
    from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

    from secagg.integrations.flower.wire import HEADER_KEY, PAYLOAD_KEY, read_envelope

    try:
        header, arrays = msgpack.unpackb(data, raw=False, strict_map_key=False)
        content = RecordDict(
            {
                HEADER_KEY: ConfigRecord(header),
                PAYLOAD_KEY: ArrayRecord(
                    {
                        key: Array(dtype=d, shape=tuple(s), stype=st, data=b)
                        for key, (d, s, st, b) in arrays.items()
                    }
                ),
            }
        )
    except Exception as exc:  # Flower (or the shape of the input) refuses to build it
        raise _Skip from exc
    return read_envelope(content, party=2, max_bytes=1 << 20)


def _registry_targets() -> dict[str, Callable[[bytes], object]]:
    """One target per protocol shipped in secagg (a new one needs its corpus: the corpus
    test says so); protocols that tests register (toys) are not secagg's decoders."""
    from secagg.protocols.registry import get_protocol, protocol_names

    return {
        f"message:{name}": _protocol(name)
        for name in protocol_names()
        if get_protocol(name).decode.__module__.startswith("secagg.")
    }


def _skipping(run: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def guarded(data: bytes) -> object:
        try:
            return run(data)
        except _Skip:
            return None

    return guarded


def _all_targets() -> dict[str, Target]:
    plain: dict[str, tuple[Callable[[bytes], object], str]] = {
        "bonawitz-state": (_bonawitz_state, "Client.from_state_bytes"),
        "bonawitz-state-body": (_bonawitz_state_body, "Client.from_state_bytes (framed)"),
        "threshold-ckks-state": (_threshold_ckks_state, "ThresholdCkksClient.from_state_bytes"),
        "share-box": (_share_box, "bonawitz.bundles.decode_self_mask_box / decode_mask_key_box"),
        "shared-secret-proof": (_shared_secret_proof, "curve25519.verify_shared_secret"),
        "share": (_share, "shamir.Share.from_bytes"),
        "shares": (_shares, "shamir.parse_shares"),
        "limb-share": (_limb_share, "shamir.unpack_limb_shares"),
        "limb-shares": (_limb_shares, "shamir.parse_limb_shares"),
        "packing": (_unpack, "packing.unpack"),
        "sealed": (_sealed, "channel.open_sealed"),
        "peer-key": (_peer_key, "keys.KeyPair.exchange"),
        "signature": (_signature, "signing.verify_signature"),
        "paillier-key": (_paillier_key, "he.paillier.PaillierPublicKey.from_bytes"),
        "paillier-vector": (_paillier_vector, "he.paillier.EncryptedVector.from_bytes"),
        "threshold-key": (_threshold_public, "he.threshold_paillier.ThresholdPublicKey"),
        "partial-decryption": (_partial, "he.threshold_paillier.PartialDecryption"),
        "key-share": (_key_share, "he.threshold_paillier.KeyShare.from_bytes"),
        "ckks-context": (_ckks_context_bytes, "he.ckks.CkksContext.from_bytes"),
        "ckks-vector": (_ckks_vector, "he.ckks.CkksContext.vector_from_bytes"),
        "flower-setup": (_flower_setup, "integrations.flower.wire.SessionSetup.from_bytes"),
        "flower-envelope": (_flower_envelope, "integrations.flower.wire.read_envelope"),
    }
    for name, run in _registry_targets().items():
        plain[name] = (run, f"registry decode of {name.split(':', 1)[1]}")
    return {
        name: Target(name.replace(":", "-").replace("+", "-plus"), _skipping(run), what)
        for name, (run, what) in plain.items()
    }


TARGETS: dict[str, Target] = {target.name: target for target in _all_targets().values()}
"""Every fuzz target by name (the name is its corpus folder)."""
