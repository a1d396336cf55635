"""Write the pinned vectors of ``tests/vectors/`` from the current implementation.

Run only when a wire change is intended, and bump the format's version with it
(``secagg.protocols.wire.WIRE_VERSION``, ``BUNDLE_VERSION``, ``STATE_VERSION``, the Flower
transport's ``WIRE_VERSION``, a record's ``"v"``)::

    python -m tests.vectors.generate          # from the repository root

The tests never run this script: they compare the implementation against the committed
JSON, so an accidental change of any encoding fails a test instead of rewriting its vector.
Review the diff of the JSON like code. The RFC vectors (``*_rfc*.json``) and
``shamir.json`` are transcribed by hand and not written here.

Every value is fixed: byte strings come from :func:`fixed` (SHA-256 of a label, not secret
and not random), keys and sessions are constants, and no encoding that draws fresh
randomness (a sealed box's nonce, a CKKS ciphertext) is pinned without fixing that
randomness first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import gmpy2
import numpy as np

from secagg.channel import NONCE_BYTES, seal
from secagg.he.paillier import EncryptedVector, PaillierPublicKey
from secagg.he.slots import SlotLayout
from secagg.he.threshold_ckks.params import VERSION as RECORD_VERSION
from secagg.he.threshold_paillier import (
    CHALLENGE_BITS,
    KeyShare,
    PartialDecryption,
    ThresholdPublicKey,
)
from secagg.packing import pack
from secagg.prg import domain, expand
from secagg.protocols.bonawitz import messages as bonawitz_wire
from secagg.protocols.bonawitz.bundles import (
    BLINDING_VALUES,
    BUNDLE_VERSION,
    SecretKind,
    clamp_scalar,
    derive_box_keys,
    derive_sharing_id,
    mask_key_plaintext,
    seal_box,
    self_mask_commitment,
    self_mask_plaintext,
)
from secagg.protocols.bonawitz.client_state import (
    STATE_VERSION,
    ClientSnapshot,
    ClientState,
    encode_state,
)
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.dealing import challenges, nonce_commitment
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    BoxKey,
    Complaint,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DealtBoxes,
    DisputeRequest,
    DisputeResponse,
    FallbackRequest,
    FallbackResponse,
    MaskedInput,
    MaskedInputRequest,
    PairSecret,
    PeerKeys,
    PeerSignature,
    RevealedShare,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    box_signature_payload,
    consistency_signature_payload,
    key_proof_payload,
    proof_context,
)
from secagg.protocols.limits import MAX_CLIENT_ID
from secagg.protocols.threshold_ckks import messages as ckks_wire
from secagg.protocols.threshold_he.messages import (
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.protocols.wire import WIRE_VERSION, ProtocolMessage
from secagg.shamir import LIMBS, PRIME, Share, pack_limb_shares
from tests.helpers.threshold_ckks_records import record_vectors
from tests.helpers.vectors import VECTORS_DIR
from tests.helpers.wire_fields import (
    config_fields,
    message_fields,
    snapshot_fields,
    to_json,
)

ROOT = Path(__file__).resolve().parent.parent.parent
GENERATOR = "tests/vectors/generate.py"


def fixed(label: str, size: int) -> bytes:
    """``size`` fixed bytes named by ``label`` (SHA-256 in counter mode; not secret)."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"secagg/test-vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def fixed_int(label: str, bits: int) -> int:
    """A fixed ``bits``-bit integer with its top bit set."""
    value = int.from_bytes(fixed(label, (bits + 7) // 8), "big") >> (-bits % 8)
    return value | (1 << (bits - 1))


def fixed_limbs(label: str) -> np.ndarray:
    """``LIMBS`` fixed limb shares in [0, PRIME)."""
    words = np.frombuffer(fixed(label, 4 * LIMBS), dtype="<u4").astype(np.int64)
    return words % PRIME


def pinned(what: str, version: str) -> str:
    return (
        f"pinned: {what}, computed with secagg ({version}) by {GENERATOR}; a change of these "
        "bytes is a wire change (bump the version, regenerate, review)"
    )


SID = fixed("session", 16)
SID64 = fixed("long session", 64)


def _key(label: str) -> bytes:
    return fixed(label, 32)


def _sig(label: str) -> bytes:
    return fixed(label, 64)


# --- protocol messages -------------------------------------------------------------------


def _message_vector(name: str, message: ProtocolMessage) -> dict[str, Any]:
    return {
        "name": name,
        "type": type(message).__name__,
        "fields": message_fields(message),
        "encoding": message.to_bytes().hex(),
    }


def bonawitz_messages() -> list[dict[str, Any]]:
    peers = (
        PeerKeys(3, _key("c3"), _key("s3"), _key("b3")),
        PeerKeys(
            300, _key("c300"), _key("s300"), _key("b300"), _sig("sig300"), _sig("cp300"),
            _sig("sp300"),
        ),
        PeerKeys(70_000, _key("c70000"), _key("s70000"), _key("b70000")),
    )
    boxes = (
        DealtBoxes(3, fixed("bbox3", 57), fixed("sbox3", 51)),
        DealtBoxes(MAX_CLIENT_ID, fixed("bboxmax", 57), fixed("sboxmax", 51)),
    )
    signed_boxes = (DealtBoxes(7, fixed("bbox7", 57), fixed("sbox7", 51), _sig("boxes7")),)
    shares = tuple(
        RevealedShare(
            owner, pack_limb_shares(fixed_limbs(f"reveal{owner}")), fixed(f"k{owner}", 16)
        )
        for owner in (3, 300)
    )
    values13 = np.array([0, 1, 8191, 4096, 17, 1234, 8190], dtype=np.uint32)
    values64 = np.array([0, 2**64 - 1, 2**63 + 5], dtype=np.uint64)
    values1 = np.array([1, 0, 1, 1, 0], dtype=np.uint32)
    checks = fixed("checks", 18)
    cases: list[tuple[str, ProtocolMessage]] = [
        ("AdvertiseKeysRequest", AdvertiseKeysRequest(0, 1, SID, _key("nonce commitment"))),
        (
            "AdvertiseKeysRequest, largest id, 64-byte session",
            AdvertiseKeysRequest(0, MAX_CLIENT_ID, SID64, _key("nonce commitment 64")),
        ),
        (
            "AdvertiseKeys, unsigned",
            AdvertiseKeys(7, 0, SID, _key("c7"), _key("s7"), _key("b7"), _sig("cp7"), _sig("sp7")),
        ),
        (
            "AdvertiseKeys, signed",
            AdvertiseKeys(
                7, 0, SID, _key("c7"), _key("s7"), _key("b7"), _sig("cp7"), _sig("sp7"),
                _sig("sig7"),
            ),
        ),
        ("ShareKeysRequest, no peers", ShareKeysRequest(0, 7, SID, ())),
        ("ShareKeysRequest, signed and unsigned peers", ShareKeysRequest(0, 7, SID, peers)),
        ("ShareKeys, no boxes", ShareKeys(7, 0, SID, ())),
        ("ShareKeys", ShareKeys(7, 0, SID, boxes)),
        ("ShareKeys, signed", ShareKeys(7, 0, SID, signed_boxes)),
        ("ShareCheckRequest", ShareCheckRequest(0, 7, SID, _key("nonce"), boxes)),
        ("ShareCheck, values only", ShareCheck(7, 0, SID, checks)),
        (
            "ShareCheck, a complaint and an unsigned dealer",
            ShareCheck(
                7, 0, SID, fixed("checks1", 6), (Complaint(3, _key("K37"), _sig("proof37")),),
                (300,),
            ),
        ),
        ("DisputeRequest", DisputeRequest(0, 7, SID, (3, 300))),
        ("DisputeResponse", DisputeResponse(7, 0, SID, (BoxKey(3, fixed("dispute3", 16)),))),
        ("MaskedInputRequest, no peers", MaskedInputRequest(0, 7, SID, ())),
        ("MaskedInputRequest", MaskedInputRequest(0, 7, SID, (3, 300, MAX_CLIENT_ID))),
        ("MaskedInput, 1 bit", MaskedInput(7, 0, SID, 1, 5, pack(values1, 1))),
        ("MaskedInput, 13 bits", MaskedInput(7, 0, SID, 13, 7, pack(values13, 13))),
        ("MaskedInput, 64 bits", MaskedInput(300, 0, SID64, 64, 3, pack(values64, 64))),
        ("ConsistencyCheckRequest, no survivors", ConsistencyCheckRequest(0, 7, SID, ())),
        (
            "ConsistencyCheckRequest",
            ConsistencyCheckRequest(0, 7, SID, (1, 3, 7, 300, 70_000, MAX_CLIENT_ID)),
        ),
        ("ConsistencyCheck", ConsistencyCheck(7, 0, SID, _sig("consistency7"))),
        ("UnmaskingRequest, no dropouts, unsigned", UnmaskingRequest(0, 7, SID, (3, 7, 300), ())),
        (
            "UnmaskingRequest, dropouts and signatures",
            UnmaskingRequest(
                0,
                7,
                SID,
                (3, 7),
                (300,),
                (PeerSignature(3, _sig("consistency3")), PeerSignature(7, _sig("consistency7"))),
            ),
        ),
        ("UnmaskingResponse, empty", UnmaskingResponse(7, 0, SID, (), ())),
        (
            "UnmaskingResponse, self-mask and mask-key shares with their box keys",
            UnmaskingResponse(7, 0, SID, shares[:1], shares[1:]),
        ),
        ("FallbackRequest", FallbackRequest(0, 7, SID, (300,))),
        (
            "FallbackResponse",
            FallbackResponse(7, 0, SID, (PairSecret(300, _key("K7-300"), _sig("proof7-300")),)),
        ),
    ]
    return [_message_vector(name, message) for name, message in cases]


def _derivation(
    name: str, function: str, arguments: dict[str, Any], output: bytes
) -> dict[str, Any]:
    return {"name": name, "function": function,
            "arguments": {key: to_json(value) for key, value in arguments.items()},
            "output": output.hex()}


def bonawitz_derivations() -> list[dict[str, Any]]:
    """Bytes that are signed, hashed or derived into what travels (AdvertiseKeys and its key
    proofs, the boxes' keys and signatures, ConsistencyCheck, proofs' contexts, the nonce
    commitment and check challenges, the sharing ids)."""
    advertise = {
        "session_id": SID, "client_id": 7, "nonce_commitment": _key("nonce commitment"),
        "cipher_public_key": _key("c7"), "mask_public_key": _key("s7"),
        "self_mask_commitment": _key("b7"),
    }
    out: list[dict[str, Any]] = [
        _derivation(
            "advertise signature payload", "advertise_signature_payload", advertise,
            advertise_signature_payload(**advertise),  # type: ignore[arg-type]
        ),
        _derivation(
            "key proof payload", "key_proof_payload",
            {"session_id": SID, "client_id": 7, "kind": "mask", "public_key": _key("s7")},
            key_proof_payload(SID, 7, "mask", _key("s7")),
        ),
        _derivation(
            "box signature payload", "box_signature_payload",
            {"session_id": SID, "dealer": 7, "holder": 3, "self_mask_box": fixed("bbox3", 57),
             "mask_key_box": fixed("sbox3", 51)},
            box_signature_payload(SID, 7, 3, fixed("bbox3", 57), fixed("sbox3", 51)),
        ),
        _derivation(
            "consistency signature payload", "consistency_signature_payload",
            {"session_id": SID64, "survivors": [300, 3, 7]},
            consistency_signature_payload(SID64, [300, 3, 7]),
        ),
        _derivation(
            "complaint proof context", "proof_context",
            {"session_id": SID, "kind": "complaint", "prover": 3, "peer": 7},
            proof_context(SID, "complaint", 3, 7),
        ),
        _derivation(
            "self-mask commitment", "self_mask_commitment",
            {"session_id": SID, "client_id": 7, "self_seed": _key("b7")},
            self_mask_commitment(SID, 7, _key("b7")),
        ),
        _derivation(
            "nonce commitment", "nonce_commitment", {"session_id": SID, "nonce": _key("nonce")},
            nonce_commitment(SID, _key("nonce")),
        ),
        _derivation(
            "check challenges", "challenges",
            {"session_id": SID, "nonce": _key("nonce"), "dealer": 7},
            b"".join(c.to_bytes(3, "little") for c in challenges(SID, _key("nonce"), 7)),
        ),
    ]
    keys = derive_box_keys(_key("raw secret"), SID, 7, 3)
    out.append(
        _derivation(
            "box keys", "derive_box_keys",
            {"raw_secret": _key("raw secret"), "session_id": SID, "dealer": 7, "holder": 3},
            keys.self_mask + keys.mask_key,
        )
    )
    for kind in SecretKind:
        out.append(
            _derivation(
                f"sharing id of {kind.name}", "derive_sharing_id",
                {"session_id": SID, "dealer": 7, "kind": kind.name},
                derive_sharing_id(SID, 7, kind),
            )
        )
    return out


def bonawitz_boxes() -> list[dict[str, Any]]:
    """Box plaintexts and the boxes sealed under fixed keys (AES-GCM is deterministic for a
    key, a nonce and a plaintext: the nonce is fixed, every key seals once)."""
    zeros = np.zeros(LIMBS, dtype=np.int64)
    top = np.full(LIMBS, PRIME - 1, dtype=np.int64)
    cases = [
        ("fixed limbs", fixed_limbs("m7"), [fixed_int("g1", 20), fixed_int("g2", 20)],
         fixed_limbs("k7")),
        ("zero and top limbs", zeros, [0, PRIME - 1], top),
    ]
    out = []
    for name, self_mask, blinding, key_limbs in cases:
        assert len(blinding) == BLINDING_VALUES
        b_plain = self_mask_plaintext(self_mask, blinding)
        s_plain = mask_key_plaintext(key_limbs)
        b_key, s_key = fixed(f"{name} b key", 16), fixed(f"{name} s key", 16)
        out.append(
            {
                "name": name,
                "fields": {
                    "self_mask_limbs": to_json(list(self_mask)),
                    "blinding": blinding,
                    "key_limbs": to_json(list(key_limbs)),
                    "self_mask_key": b_key.hex(),
                    "mask_key_key": s_key.hex(),
                },
                "self_mask_plaintext": b_plain.hex(),
                "mask_key_plaintext": s_plain.hex(),
                "self_mask_box": seal_box(b_key, b_plain, SecretKind.SELF_MASK).hex(),
                "mask_key_box": seal_box(s_key, s_plain, SecretKind.MASK_KEY).hex(),
            }
        )
    return out


def _semi_honest_config() -> ProtocolConfig:
    return ProtocolConfig(SID, (1, 2, 3), threshold=2, bits=12, vector_length=5)


def _active_config() -> ProtocolConfig:
    identities = {c: _key(f"verify{c}") for c in (1, 2, 3)}
    return ProtocolConfig(
        SID64,
        (1, 2, 3),
        threshold=3,
        bits=33,
        vector_length=2,
        mode="active",
        identities=identities,
    )


def bonawitz_client_states() -> list[dict[str, Any]]:
    from secagg.protocols.bonawitz.bundles import BoxKeys, ShareBundle
    from secagg.protocols.bonawitz.client_state import HeldShares

    semi, active = _semi_honest_config(), _active_config()
    vector12 = np.array([0, 1, 2047, 4095, 100], dtype=np.uint32)
    vector33 = np.array([0, 2**33 - 1], dtype=np.uint64)
    # cipher key, mask key (clamped, as a client keeps it), self-mask seed, commitment
    keys = (
        _key("state cipher key"),
        clamp_scalar(_key("state mask key")),
        _key("state self seed"),
    )
    mask_key = keys[1]
    commitment = _key("state nonce commitment")
    peers = {
        p: PeerKeys(p, _key(f"state c{p}"), _key(f"state s{p}"), _key(f"state b{p}"))
        for p in (2, 3)
    }
    signed = {
        p: PeerKeys(p, *peer[1:4], _sig(f"state sig{p}"), _sig(f"state cp{p}"),
                    _sig(f"state sp{p}"))
        for p, peer in peers.items()
    }

    def held(config: ProtocolConfig, dealers: tuple[int, ...]) -> dict[int, Any]:
        out = {}
        for d in dealers:
            def share(kind: SecretKind, label: str) -> Share:
                sharing = derive_sharing_id(config.session_id, d, kind)
                return Share(1, config.threshold, sharing, fixed_limbs(label))

            bundle = ShareBundle(
                d, 1, share(SecretKind.MASK_KEY, f"state k{d}"),
                share(SecretKind.SELF_MASK, f"state m{d}"),
            )
            box_keys = BoxKeys(fixed(f"state bkey{d}", 16), fixed(f"state skey{d}", 16))
            out[d] = HeldShares(bundle, box_keys)
        return out

    secrets = {p: _key(f"state channel {p}") for p in (1, 2, 3)}
    S = ClientState
    cases: list[tuple[str, ProtocolConfig, ClientSnapshot]] = [
        ("awaiting AdvertiseKeys", semi, ClientSnapshot(S.AWAIT_ADVERTISE_KEYS, vector12)),
        (
            "awaiting ShareKeys",
            semi,
            ClientSnapshot(S.AWAIT_SHARE_KEYS, vector12, *keys, commitment=commitment),
        ),
        (
            "awaiting ShareCheck",
            semi,
            ClientSnapshot(
                S.AWAIT_SHARE_CHECK, vector12, *keys, commitment=commitment,
                channel_secrets=secrets, peers=peers,
            ),
        ),
        (
            "awaiting MaskedInput, one dealer's boxes did not open",
            semi,
            ClientSnapshot(
                S.AWAIT_MASKED_INPUT, vector12, None, mask_key, keys[2],
                held=held(semi, (1, 2)), peers=peers,
            ),
        ),
        (
            "awaiting MaskedInput after a dispute",
            semi,
            ClientSnapshot(
                S.DISPUTED, vector12, None, mask_key, keys[2], held=held(semi, (1, 2, 3)),
                peers=peers, disputed=frozenset({3}),
            ),
        ),
        (
            "active, awaiting ShareKeys, 33-bit input",
            active,
            ClientSnapshot(S.AWAIT_SHARE_KEYS, vector33, *keys, commitment=commitment),
        ),
        (
            "active, awaiting ConsistencyCheck",
            active,
            ClientSnapshot(
                S.AWAIT_CONSISTENCY_CHECK, mask_key=mask_key, held=held(active, (1, 2, 3)),
                peers=signed, sharers=frozenset({2, 3}),
            ),
        ),
        (
            "active, awaiting Unmasking with the signed survivors",
            active,
            ClientSnapshot(
                S.AWAIT_UNMASKING, mask_key=mask_key, held=held(active, (1, 2, 3)),
                peers=signed, sharers=frozenset({2, 3}), survivors=frozenset({1, 2, 3}),
            ),
        ),
        (
            "unmasked, a fallback request may follow",
            semi,
            ClientSnapshot(
                S.UNMASKED, mask_key=mask_key, peers=peers, sharers=frozenset({2, 3}),
                dropped=frozenset({3}),
            ),
        ),
        ("done", semi, ClientSnapshot(S.DONE)),
        ("aborted", active, ClientSnapshot(S.ABORTED)),
    ]
    return [
        {
            "name": name,
            "config": config_fields(config),
            "client_id": 1,
            "snapshot": snapshot_fields(config.session_id, snapshot),
            "encoding": encode_state(config, 1, snapshot).hex(),
        }
        for name, config, snapshot in cases
    ]


def threshold_he_messages() -> list[dict[str, Any]]:
    cases: list[tuple[str, ProtocolMessage]] = [
        ("InputRequest", InputRequest(0, 5, SID)),
        ("EncryptedInput", EncryptedInput(5, 0, SID, fixed("ciphertext5", 40))),
        ("EncryptedInput, 300-byte payload", EncryptedInput(5, 0, SID64, fixed("ct", 300))),
        (
            "DecryptionRequest, full (two-field form)",
            DecryptionRequest(0, 2, SID, (1, 2, 5, 300, MAX_CLIENT_ID), fixed("aggregate", 64)),
        ),
        (
            "DecryptionRequest, no included ids",
            DecryptionRequest(0, 2, SID, (), fixed("aggregate", 64)),
        ),
        (
            "DecryptionRequest, balanced (four-field form)",
            DecryptionRequest(0, 2, SID, (1, 2, 5), fixed("aggregate", 64), (1, 3), 4),
        ),
        (
            "DecryptionRequest, balanced, every block",
            DecryptionRequest(0, 3, SID, (1, 2), fixed("aggregate", 64), (0, 1), 2),
        ),
        ("DecryptionShare", DecryptionShare(2, 0, SID, fixed("partial2", 48))),
    ]
    return [_message_vector(name, message) for name, message in cases]


def threshold_ckks_messages() -> list[dict[str, Any]]:
    w = ckks_wire
    key = fixed("x25519 public", 32)
    cases: list[tuple[str, ProtocolMessage]] = [
        ("KeyAdvertiseRequest", w.KeyAdvertiseRequest(0, 3, SID)),
        ("KeyAdvertise", w.KeyAdvertise(3, 0, SID, key)),
        (
            "KeyDealRequest, peers with 1- and 3-byte ids",
            w.KeyDealRequest(0, 3, SID64, (w.PeerKey(1, key), w.PeerKey(70_000, key))),
        ),
        ("KeyDealRequest, no peers", w.KeyDealRequest(0, 3, SID, ())),
        (
            "KeyDeal",
            w.KeyDeal(
                3,
                0,
                SID,
                fixed("public key share", 40),
                (w.Sealed(1, fixed("box 3->1", 60)), w.Sealed(300, fixed("box 3->300", 300))),
            ),
        ),
        (
            "KeyCheckRequest",
            w.KeyCheckRequest(0, 4, SID, (w.Sealed(1, fixed("box 1->4", 60)),)),
        ),
        ("KeyCheck, no complaint", w.KeyCheck(4, 0, SID, ())),
        ("KeyCheck, complaints", w.KeyCheck(4, 0, SID, (1, 3, MAX_CLIENT_ID))),
        ("InputRequest", w.InputRequest(0, 7, SID, fixed("public key", 80))),
        ("EncryptedInput", w.EncryptedInput(7, 0, SID, fixed("ciphertext", 300))),
        (
            "DecryptionRequest",
            w.DecryptionRequest(0, 2, SID, (1, 2, 7, 300, MAX_CLIENT_ID), fixed("mask", 64)),
        ),
        ("DecryptionShare", w.DecryptionShare(2, 0, SID, fixed("share", 64))),
    ]
    return [_message_vector(name, message) for name, message in cases]


# --- Shamir --------------------------------------------------------------------------------


def shamir_shares() -> list[dict[str, Any]]:
    cases = [
        ("fixed limbs", Share(7, 3, fixed("sharing", 16), fixed_limbs("share7"))),
        ("zero limbs", Share(1, 1, bytes(16), np.zeros(LIMBS, dtype=np.int64))),
        (
            "top limbs, largest x and threshold",
            Share(PRIME - 1, PRIME - 1, b"\xff" * 16, np.full(LIMBS, PRIME - 1, dtype=np.int64)),
        ),
    ]
    return [
        {
            "name": name,
            "fields": {
                "x": share.x,
                "threshold": share.threshold,
                "sharing_id": share.sharing_id.hex(),
                "values": to_json(list(share.values)),
            },
            "encoding": share.to_bytes().hex(),
        }
        for name, share in cases
    ]


def shamir_compact() -> list[dict[str, Any]]:
    rows = np.stack([fixed_limbs("row0"), np.zeros(LIMBS, np.int64), fixed_limbs("row2")])
    cases = [
        ("one share", fixed_limbs("compact")),
        ("top limbs", np.full(LIMBS, PRIME - 1, dtype=np.int64)),
        ("three rows", rows),
    ]
    return [
        {
            "name": name,
            "limbs": to_json(values.tolist()),
            "encoding": pack_limb_shares(values).hex(),
        }
        for name, values in cases
    ]


# --- HE records --------------------------------------------------------------------------


def _paillier_key() -> PaillierPublicKey:
    """A fixed 512-bit modulus: the product of two fixed 256-bit primes (public only)."""
    p = gmpy2.next_prime(fixed_int("paillier p", 256) | (1 << 254))
    q = gmpy2.next_prime(fixed_int("paillier q", 256) | (1 << 254))
    return PaillierPublicKey(int(p * q))


def _unit(key: PaillierPublicKey, label: str) -> int:
    """A fixed unit of Z_(n^2) (a fixed r raised to the n-th power: a valid r^n)."""
    r = gmpy2.mpz(fixed_int(label, 500))
    return int(gmpy2.powmod(r, key.n, key.nsquare))


def he_records() -> dict[str, Any]:
    key = _paillier_key()
    n, nsquare = int(key.n), int(key.nsquare)
    layout = SlotLayout.for_modulus(n, value_bits=16, max_summands=8)
    ciphertexts = tuple(
        int(key.raw_encrypt(m, gmpy2.mpz(_unit(key, f"r{i}")))) for i, m in enumerate((5, 6))
    )
    vector = EncryptedVector(key, layout, layout.slots + 3, ciphertexts, summands=3)
    holders, threshold = 3, 2
    base = pow(_unit(key, "verification base"), 2, nsquare)
    secrets = [fixed_int(f"key share {i}", 600) for i in range(1, holders + 1)]
    delta = 6  # 3!
    verification = [pow(base, delta * s, nsquare) for s in secrets]
    public = ThresholdPublicKey(
        key,
        threshold=threshold,
        holders=holders,
        verification_base=base,
        verification_keys=verification,
    )
    share = KeyShare(public, 2, secrets[1])
    partial = PartialDecryption(
        2,
        tuple(_unit(key, f"partial {i}") for i in range(2)),
        fixed_int("challenge", CHALLENGE_BITS),
        fixed_int("response", 1400),
    )
    return {
        "paillier_public_key": [
            {"name": "512-bit modulus", "n": hex(n)[2:], "encoding": key.to_bytes().hex()}
        ],
        "encrypted_vector": [
            {
                "name": "two ciphertexts, three summands",
                "n": hex(n)[2:],
                "layout": layout.to_dict(),
                "length": vector.length,
                "summands": vector.summands,
                "ciphertexts": [hex(c)[2:] for c in ciphertexts],
                "encoding": vector.to_bytes().hex(),
            }
        ],
        "threshold_public_key": [
            {
                "name": "2 of 3",
                "n": hex(n)[2:],
                "threshold": threshold,
                "holders": holders,
                "verification_base": hex(base)[2:],
                "verification_keys": [hex(v)[2:] for v in verification],
                "encoding": public.to_bytes().hex(),
            }
        ],
        "key_share": [
            {
                "name": "holder 2",
                "index": 2,
                "secret": hex(secrets[1])[2:],
                "encoding": share.to_bytes().hex(),
            }
        ],
        "partial_decryption": [
            {
                "name": "holder 2, two ciphertexts",
                "index": partial.index,
                "values": [hex(v)[2:] for v in partial.values],
                "challenge": hex(partial.challenge)[2:],
                "response": hex(partial.response)[2:],
                "encoding": partial.to_bytes(public).hex(),
            }
        ],
    }


# --- Flower transport --------------------------------------------------------------------


def flower_records() -> dict[str, Any]:
    import msgpack
    from flwr.app import ArrayRecord, ConfigRecord, RecordDict

    from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
    from secagg.integrations.flower.wire import WIRE_VERSION as FLOWER_WIRE_VERSION
    from secagg.integrations.flower.wire import (
        Envelope,
        FixedPointParams,
        IdentifyRequest,
        SessionSetup,
        write_envelope,
    )

    plain = SessionSetup(
        session_id=SID,
        protocol="bonawitz",
        n=3,
        client_id=2,
        bits=32,
        fixed_point=FixedPointParams(clip=1.0, scale=2.0**20, max_clients=3, max_weight=1.0),
        layout=ArrayLayout((ArraySpec("w", (2, 3), "<f4"),)),
        weighted_by_key="num-examples",
        weighted=False,
        params=bytes(msgpack.packb([2, None, "semi-honest", None], use_bin_type=True)),
    )
    rich = SessionSetup(
        session_id=SID64,
        protocol="secagg+",
        n=100,
        client_id=42,
        bits=48,
        fixed_point=FixedPointParams(clip=3.5, scale=1234.5, max_clients=100, max_weight=600.0),
        layout=ArrayLayout(
            (ArraySpec("conv.weight", (4, 1, 3, 3), "<f4"), ArraySpec("steps", (), "<i8")),
            ("accuracy", "loss"),
        ),
        weighted_by_key="examples",
        weighted=True,
        params=bytes(msgpack.packb([9, 16, "semi-honest", None], use_bin_type=True)),
        metric_scale=0.25,
        report_clipping=True,
    )

    from secagg.dp import Compression
    from secagg.integrations.flower.wire import PrivacySetup

    plan = Compression(bits=16, clip=8.0, expected_clients=3, wrap_probability=1e-9).plan(6)
    private = SessionSetup(
        session_id=SID,
        protocol="secagg+",
        n=3,
        client_id=1,
        bits=16,
        fixed_point=FixedPointParams(clip=8.0, scale=1.0, max_clients=3, max_weight=1.0),
        layout=ArrayLayout((ArraySpec("w", (2, 3), "<f4"),)),
        weighted_by_key="num-examples",
        weighted=False,
        params=bytes(msgpack.packb([2, None, "semi-honest", None], use_bin_type=True)),
        privacy=PrivacySetup(plan, bytes(range(32))),
    )

    def setup_vector(name: str, setup: SessionSetup) -> dict[str, Any]:
        fp = setup.fixed_point
        return {
            "name": name,
            "fields": {
                "session_id": setup.session_id.hex(),
                "protocol": setup.protocol,
                "n": setup.n,
                "client_id": setup.client_id,
                "bits": setup.bits,
                "fixed_point": [fp.clip, fp.scale, fp.max_clients, fp.max_weight],
                "layout": setup.layout.to_wire(),
                "weighted_by_key": setup.weighted_by_key,
                "weighted": setup.weighted,
                "params": setup.params.hex(),
                "metric_scale": setup.metric_scale,
                "report_clipping": setup.report_clipping,
                "privacy": None
                if setup.privacy is None
                else {
                    "plan": setup.privacy.plan.to_dict(),
                    "round_seed": setup.privacy.round_seed.hex(),
                },
            },
            "encoding": setup.to_bytes().hex(),
        }

    def envelope_vector(name: str, envelope: Envelope) -> dict[str, Any]:
        content = write_envelope(RecordDict(), envelope)
        header, payload = content["secagg"], content["secagg.payload"]
        assert isinstance(header, ConfigRecord) and isinstance(payload, ArrayRecord)
        optional = ("setup", "identify", "identity")
        return {
            "name": name,
            "fields": {
                "stage": envelope.stage,
                "session_id": envelope.session_id.hex(),
                "payloads": [p.hex() for p in envelope.payloads],
                **{key: None if getattr(envelope, key) is None else getattr(envelope, key).hex()
                   for key in optional},
            },
            "records": {
                "secagg": {k: to_json(v) for k, v in header.items()},
                "secagg.payload": [
                    {
                        "key": k,
                        "dtype": a.dtype,
                        "shape": list(a.shape),
                        "stype": a.stype,
                        "data": a.data.hex(),
                    }
                    for k, a in payload.items()
                ],
            },
        }

    request = AdvertiseKeysRequest(0, 2, SID, _key("nonce commitment"))
    first = Envelope(0, SID, (request.to_bytes(),), plain.to_bytes())
    later = Envelope(
        3, SID, tuple(ConsistencyCheckRequest(0, 2, SID, (1, 2, 3)).to_bytes() for _ in range(2))
    )
    request = IdentifyRequest("secagg+", bytes(range(32)))
    identify = Envelope(0, SID, (), identify=request.to_bytes())
    identity = Envelope(0, SID, (), identity=bytes(msgpack.packb([bytes(32), bytes(64)])))
    return {
        "wire_version": FLOWER_WIRE_VERSION,
        "session_setup": [
            setup_vector("complete graph", plain),
            setup_vector("SecAgg+", rich),
            setup_vector("compression (privacy setup)", private),
        ],
        "envelope": [
            envelope_vector("first stage, with setup", first),
            envelope_vector("later stage, two payloads", later),
            envelope_vector("no payload", Envelope(1, SID64, ())),
            envelope_vector("identification request", identify),
            envelope_vector("identification answer", identity),
        ],
    }


# --- primitives pinned by the library (no standard vector exists) -----------------------


def prg_vectors() -> dict[str, Any]:
    session, purpose, seed = b"session-0123456", "pairwise", bytes(range(32))
    label = domain(session, purpose)
    return {
        "source": pinned(
            "the PRG stream (domain encoding, HKDF-SHA256 key, AES-128-CTR from block 0, "
            "little-endian words masked to `bits`)",
            "secagg.prg",
        ),
        "session_id": session.hex(),
        "purpose": purpose,
        "seed": seed.hex(),
        "domain": label.hex(),
        "streams": [
            {
                "name": f"{bits} bits",
                "bits": bits,
                "values": [
                    format(int(v), "x") for v in expand(seed, length, bits=bits, domain=label)
                ],
            }
            for bits, length in ((32, 8), (64, 4), (13, 8))
        ],
    }


@contextmanager
def _nonce(nonce: bytes) -> Iterator[None]:
    with mock.patch("secagg.channel.os.urandom", lambda size: nonce[:size]):
        yield


def channel_vectors() -> dict[str, Any]:
    key, session, sender, recipient = bytes(range(32)), b"channel-session1", 3, 8
    boxes = []
    for name, plaintext in (("shares", b"shares"), ("empty", b""), ("bundle", fixed("b", 71))):
        nonce = fixed(f"nonce {name}", NONCE_BYTES)
        with _nonce(nonce):
            sealed = seal(key, plaintext, session_id=session, sender=sender, recipient=recipient)
        boxes.append(
            {
                "name": name,
                "nonce": nonce.hex(),
                "plaintext": plaintext.hex(),
                "sealed": sealed.hex(),
            }
        )
    associated = (
        b"secagg/channel\x01"
        + len(session).to_bytes(2, "big")
        + session
        + sender.to_bytes(8, "big")
        + recipient.to_bytes(8, "big")
    )
    return {
        "source": pinned(
            "the sealed box (nonce || AES-GCM ciphertext || tag) and its associated data "
            "(prefix, version 1, session, sender, recipient)",
            "secagg.channel",
        ),
        "key": key.hex(),
        "session_id": session.hex(),
        "sender": sender,
        "recipient": recipient,
        "associated_data": associated.hex(),
        "boxes": boxes,
    }


# --- writing -------------------------------------------------------------------------------


def files() -> dict[str, Callable[[], dict[str, Any]]]:
    return {
        "prg.json": prg_vectors,
        "channel.json": channel_vectors,
        "wire/bonawitz.json": lambda: {
            "source": pinned(
                "every Bonawitz/SecAgg+ message type with its optional-field variants, the "
                "signed, hashed and derived payloads, the box plaintexts and boxes, and the "
                "client state export in every state",
                f"WIRE_VERSION {bonawitz_wire.WIRE_VERSION}, BUNDLE_VERSION {BUNDLE_VERSION}, "
                f"STATE_VERSION {STATE_VERSION}",
            ),
            "wire_version": bonawitz_wire.WIRE_VERSION,
            "bundle_version": BUNDLE_VERSION,
            "state_version": STATE_VERSION,
            "protocol": "bonawitz",
            "messages": bonawitz_messages(),
            "derivations": bonawitz_derivations(),
            "boxes": bonawitz_boxes(),
            "client_states": bonawitz_client_states(),
        },
        "wire/threshold_he.json": lambda: {
            "source": pinned(
                "every threshold-HE message type, the full and balanced DecryptionRequest forms",
                f"WIRE_VERSION {WIRE_VERSION}",
            ),
            "wire_version": WIRE_VERSION,
            "protocol": "threshold-paillier",
            "messages": threshold_he_messages(),
        },
        "wire/threshold_ckks.json": lambda: {
            "source": pinned(
                "every threshold-CKKS message type, and the scheme's records (public key "
                "share, key-share delivery, public key, ciphertext, mask, decryption share) "
                "for fixed residues, pinned by SHA-256 and length (a record of one N = 4096 "
                "polynomial is tens of KiB)",
                f"WIRE_VERSION {WIRE_VERSION}, record version {RECORD_VERSION}",
            ),
            "wire_version": WIRE_VERSION,
            "record_version": RECORD_VERSION,
            "protocol": "threshold-ckks",
            "messages": threshold_ckks_messages(),
            "records": record_vectors(),
        },
        "wire/shamir.json": lambda: {
            "source": pinned(
                "Share.to_bytes (format byte 1) and the compact limb form", "secagg.shamir"
            ),
            "shares": shamir_shares(),
            "compact": shamir_compact(),
        },
        "wire/he.json": lambda: {
            "source": pinned(
                "the versioned msgpack records of secagg.he (Paillier public key, encrypted "
                "vector, threshold public key, key share, partial decryption) for fixed "
                "numbers; CKKS objects are not pinned (TenSEAL serializations draw fresh "
                "randomness)",
                "record version 1",
            ),
            **he_records(),
        },
        "wire/flower.json": lambda: {
            "source": pinned(
                "the Flower transport: SessionSetup.to_bytes and the envelope records "
                "write_envelope adds to a RecordDict",
                "secagg.integrations.flower.wire",
            ),
            **flower_records(),
        },
    }


def main() -> None:
    for name, build in files().items():
        path = VECTORS_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(build(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
