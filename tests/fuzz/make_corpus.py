"""Write the fuzz corpus: real messages of real sessions, one small file per input.

Run ``python -m tests.fuzz.make_corpus`` (from the repository root) to regenerate
``tests/fuzz/corpus/`` (every file is replaced): ``fixtures.json`` holds the fixed context the
targets decode in (a Bonawitz config, a test-only 512-bit threshold Paillier key and one of
its key shares, a slot layout, small CKKS parameters), and ``<target>/<digest>`` one input
each: every message of a Bonawitz, a SecAgg+, a threshold Paillier and a CKKS session as the
transport carried it, a Bonawitz client's saved state after each round, the share bundles
box plaintexts it opened (also sealed, for the channel target), the v3 messages an honest
session never sends (complaints, disputes, fallbacks), complaint proofs, Shamir shares in
both forms, HE records, Flower setups and
envelopes. Fresh randomness makes a regenerated corpus differ byte for byte; it is committed
once and regenerated only when a format changes. Files named ``regression-*`` are inputs that
once crashed a decoder (found by ``make fuzz``); regeneration keeps them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgpack
import numpy as np

from secagg.errors import UsageError
from tests.fuzz.targets import CORPUS, FIXTURES, TARGETS

SESSION_ID = bytes(range(16))
CLIENTS = [1, 2, 3, 4]
LENGTH = 6
BITS = 16
CKKS = {"n": 4096, "q": [40, 20, 40], "scale_bits": 21}
SMALL_FILE_BYTES = 16 * 1024
MAX_FILE_BYTES = 160 * 1024
"""The corpus stays small: every file of a target up to SMALL_FILE_BYTES, and its first larger
one up to MAX_FILE_BYTES (one CKKS ciphertext is about 80 KB)."""


def _drive(spec: Any, config: Any, record: dict[str, list[bytes]], name: str) -> list[Any]:
    """Run one session over bytes; record every message; return the clients."""
    rng = np.random.default_rng(0)  # not-secret: test inputs
    high = 1 << spec.bits(config)
    clients = {
        c: spec.make_client(
            config,
            c,
            lambda: rng.integers(0, high, LENGTH, dtype=np.uint64).astype(
                np.uint32 if spec.bits(config) <= 32 else np.uint64
            ),
        )
        for c in spec.client_ids(config)
    }
    server = spec.make_server(config)
    outgoing = server.start()
    while outgoing:
        replies = []
        for message in outgoing:
            data = message.to_bytes()
            record[name].append(data)
            for reply in clients[message.recipient].receive(spec.decode(data, 0)):
                replies.append((message.recipient, reply.to_bytes()))
        outgoing = []
        for sender, data in replies:
            record[name].append(data)
            outgoing += server.receive(spec.decode(data, sender))
    assert server.done, name
    return list(clients.values())


def _bonawitz(record: dict[str, list[bytes]]) -> dict[str, Any]:
    from secagg.protocols.bonawitz.bundles import mask_key_plaintext, self_mask_plaintext
    from secagg.protocols.bonawitz.client import Client
    from secagg.protocols.bonawitz.config import ProtocolConfig
    from secagg.protocols.registry import get_protocol

    config = ProtocolConfig.create(
        CLIENTS, threshold=3, bits=BITS, vector_length=LENGTH, session_id=SESSION_ID
    )
    spec = get_protocol("bonawitz")
    states: list[bytes] = []
    original = spec.make_client

    def saving_client(config: Any, client_id: int, source: Any) -> Any:
        if client_id != 1:
            return original(config, client_id, source)
        client = Client(config, client_id, source())  # an eager input can be saved
        if client_id == 1:  # save client 1's state before every message it receives
            receive = client.receive

            def receive_and_save(message: Any) -> Any:
                replies = receive(message)
                with contextlib.suppress(UsageError):  # a lazy input not called yet
                    states.append(client.to_state_bytes())
                for held in client._held.values():
                    bundle = held.bundle
                    record["share-box"].append(
                        self_mask_plaintext(bundle.self_mask_share.values, bundle.blinding)
                    )
                    record["share-box"].append(mask_key_plaintext(bundle.key_share.values))
                return replies

            client.receive = receive_and_save
        return client

    spec = type(spec)(**{**spec.__dict__, "make_client": saving_client})
    _drive(spec, config, record, "message-bonawitz")
    _bonawitz_waves(record)
    record["bonawitz-state"] += states
    record["bonawitz-state-body"] += [state[:-32] for state in states]  # without the checksum
    plus = ProtocolConfig.create(
        [*CLIENTS, 5, 6], threshold=3, bits=40, vector_length=LENGTH, degree=3
    )
    _drive(get_protocol("secagg+"), plus, record, "message-secagg-plus")
    return {
        "session_id": SESSION_ID.hex(),
        "clients": CLIENTS,
        "threshold": 3,
        "bits": BITS,
        "vector_length": LENGTH,
    }


def _bonawitz_waves(record: dict[str, list[bytes]]) -> None:
    """The v3 messages an honest session never sends, with real proofs: a complaint, a
    dispute and its keys, a fallback request and its pairwise secret."""
    import os

    from secagg.curve25519 import prove_shared_secret, secret_scalar
    from secagg.protocols.bonawitz.messages import (
        BoxKey,
        Complaint,
        DisputeRequest,
        DisputeResponse,
        FallbackRequest,
        FallbackResponse,
        PairSecret,
        ShareCheck,
        proof_context,
    )
    from secagg.signing import SigningKey

    seeds = {c: os.urandom(32) for c in (1, 2)}
    publics = {c: SigningKey.from_private_bytes(seed).verify_key for c, seed in seeds.items()}
    context = proof_context(SESSION_ID, "complaint", 1, 2)
    shared, proof = prove_shared_secret(secret_scalar(seeds[1]), publics[2], context=context)
    record["shared-secret-proof"].append(publics[1] + publics[2] + shared + proof)
    pair = proof_context(SESSION_ID, "pair", 1, 2)
    pair_shared, pair_proof = prove_shared_secret(secret_scalar(seeds[1]), publics[2], context=pair)
    messages = [
        ShareCheck(1, 0, SESSION_ID, bytes(12), (Complaint(2, shared, proof),), (3,)),
        DisputeRequest(0, 1, SESSION_ID, (2, 3)),
        DisputeResponse(1, 0, SESSION_ID, (BoxKey(2, os.urandom(16)),)),
        FallbackRequest(0, 1, SESSION_ID, (2,)),
        FallbackResponse(1, 0, SESSION_ID, (PairSecret(2, pair_shared, pair_proof),)),
    ]
    record["message-bonawitz"] += [message.to_bytes() for message in messages]


def _primitives(record: dict[str, list[bytes]]) -> None:
    from secagg.channel import seal
    from secagg.keys import KeyPair
    from secagg.packing import pack
    from secagg.shamir import pack_limb_shares, share_secrets
    from secagg.signing import SigningKey

    shares = share_secrets([bytes(32), bytes(range(32))], holders=[1, 2, 3], threshold=2)
    for group in shares.values():
        for share in group:
            record["share"].append(share.to_bytes())
            record["limb-share"].append(pack_limb_shares(share.values))
        record["shares"].append(b"".join(share.to_bytes() for share in group))
        record["limb-shares"].append(b"".join(pack_limb_shares(s.values) for s in group))
    for bundle in record["share-box"][:4]:
        record["sealed"].append(
            seal(bytes(32), bundle, session_id=SESSION_ID, sender=2, recipient=1)
        )
    record["peer-key"].append(KeyPair.generate().public_bytes)
    key = SigningKey.generate()
    record["signature"].append(key.verify_key + key.sign(b"message"))
    for bits in (1, 7, 16, 32, 33, 64):
        values = np.arange(5, dtype=np.uint32 if bits <= 32 else np.uint64) % (1 << min(bits, 31))
        record["packing"].append(bytes([bits]) + (5).to_bytes(3, "big") + pack(values, bits))


def _threshold_paillier(record: dict[str, list[bytes]]) -> dict[str, Any]:
    from secagg.he.paillier import encrypt_vector
    from secagg.he.slots import SlotLayout
    from secagg.protocols.registry import get_protocol
    from secagg.protocols.threshold_he.keys import setup_threshold_paillier
    from secagg.protocols.threshold_he.spec import ThresholdHESimulation

    config, shares = setup_threshold_paillier(
        CLIENTS, bits=BITS, vector_length=LENGTH, key_bits=512, session_id=SESSION_ID
    )
    public = config.public_key
    simulation = ThresholdHESimulation(config, shares)
    _drive(get_protocol("threshold-paillier"), simulation, record, "message-threshold-paillier")
    record["threshold-key"].append(public.to_bytes())
    record["paillier-key"].append(public.paillier.to_bytes())
    layout = SlotLayout.for_modulus(public.paillier.n, value_bits=BITS, max_summands=8)
    for length in (1, LENGTH):
        vector = encrypt_vector(public.paillier, np.arange(length, dtype=np.uint64), layout)
        record["paillier-vector"].append(vector.to_bytes())
    ciphertexts = [public.paillier.encrypt(m) for m in (0, 5)]
    member = config.committee[0]
    record["partial-decryption"].append(
        shares[member].partial_decrypt(ciphertexts, context=b"ctx").to_bytes(public)
    )
    record["key-share"] += [share.to_bytes() for share in shares.values()]
    return {
        "threshold_paillier": {
            "public": public.to_bytes().hex(),
            "partial_count": len(ciphertexts),
            "note": "test-only 512-bit key; the key-share corpus files are its shares",
        },
        "paillier_vector": {"layout": layout.to_dict()},
    }


def _ckks(record: dict[str, list[bytes]]) -> dict[str, Any]:
    from secagg.he._records import encode_record
    from secagg.he.ckks import CkksContext, CkksParameters
    from secagg.protocols.registry import get_protocol
    from secagg.protocols.threshold_he.keys import setup_ckks
    from secagg.protocols.threshold_he.spec import ThresholdHESimulation

    parameters = CkksParameters(CKKS["n"], tuple(CKKS["q"]), CKKS["scale_bits"])
    config, secret = setup_ckks(
        CLIENTS, bits=BITS, vector_length=LENGTH, session_id=SESSION_ID, parameters=parameters
    )
    _drive(get_protocol("ckks"), ThresholdHESimulation(config, ckks_secret=secret), record,
           "message-ckks")  # fmt: skip
    record["ckks-vector"].append(secret.encrypt(np.arange(3.0)).to_bytes())
    record["ckks-vector"].append(secret.encrypt(np.zeros(0)).to_bytes())
    context = CkksContext.generate(parameters)
    # Key-less contexts keep the files small; one of each size of N for the loader checks.
    for params in (parameters, CkksParameters()):
        bare = CkksContext.generate(params)._context.serialize(
            save_public_key=False,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )
        record["ckks-context"].append(
            encode_record({"v": 1, "params": params.to_dict(), "ctx": bare})
        )
    del context
    return {"ckks": CKKS}


def _flower(record: dict[str, list[bytes]]) -> None:
    from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
    from secagg.integrations.flower.wire import (
        PAYLOAD_STYPE,
        WIRE_VERSION,
        FixedPointParams,
        SessionSetup,
    )

    # The Bonawitz parameters as the Flower protocol plans them: [t, degree, mode, ids].
    params = msgpack.packb([3, None, "semi-honest", None], use_bin_type=True)
    setup = SessionSetup(
        session_id=SESSION_ID,
        protocol="bonawitz",
        n=4,
        client_id=2,
        bits=32,
        fixed_point=FixedPointParams(clip=1.0, scale=2.0**20, max_clients=4, max_weight=1.0),
        layout=ArrayLayout((ArraySpec("w", (2, 3), "<f4"),), ("loss",)),
        weighted_by_key="num-examples",
        weighted=True,
        params=params,
    )
    record["flower-setup"].append(setup.to_bytes())
    payloads = record["message-bonawitz"][:3]
    for with_setup in (False, True):
        header: dict[str, Any] = {"v": WIRE_VERSION, "stage": 1, "session": SESSION_ID}
        if with_setup:
            header["setup"] = setup.to_bytes()
        arrays = {
            str(i): ["uint8", [len(p)], PAYLOAD_STYPE, p] for i, p in enumerate(payloads)
        }
        record["flower-envelope"].append(msgpack.packb([header, arrays], use_bin_type=True))


def _write(record: dict[str, list[bytes]]) -> dict[str, int]:
    counts = {}
    for name in TARGETS:
        folder = CORPUS / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if not old.name.startswith("regression-"):  # crash inputs stay, forever
                old.unlink()
        found = _unique(record[name])
        small = [data for data in found if len(data) <= SMALL_FILE_BYTES]
        large = [data for data in found if SMALL_FILE_BYTES < len(data) <= MAX_FILE_BYTES]
        kept = small + large[:1]
        for data in kept:
            (folder / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
        counts[name] = len(kept)
    return counts


MAX_CORPUS_FILE = 64 * 1024
"""Threshold-CKKS ciphertexts span whole rings (8192 coefficients): only its smaller messages
(setup, keys, requests, complaints) go in the corpus, to keep the fuzz pass fast."""


def _threshold_ckks(record: dict[str, list[bytes]]) -> None:
    from secagg.protocols.registry import SimulationParams, get_protocol

    spec = get_protocol("threshold-ckks")
    config = spec.make_config(SimulationParams(clients=len(CLIENTS), dim=LENGTH, bits=BITS))
    messages: dict[str, list[bytes]] = defaultdict(list)
    _drive(spec, config, messages, "message-threshold-ckks")
    record["message-threshold-ckks"] += [
        m for m in messages["message-threshold-ckks"] if len(m) <= MAX_CORPUS_FILE
    ]


def _threshold_ckks_states(record: dict[str, list[bytes]]) -> None:
    """The saved states of committee member 1 and of non-member 4 after every round of a
    session of :data:`tests.fuzz.targets.THRESHOLD_CKKS_STATE`'s config."""
    from secagg.protocols.threshold_ckks.client import ThresholdCkksClient
    from secagg.protocols.threshold_ckks.server import ThresholdCkksServer
    from tests.fuzz.targets import threshold_ckks_state_config

    config = threshold_ckks_state_config()
    rng = np.random.default_rng(0)  # not-secret: test inputs
    clients = {c: ThresholdCkksClient(config, c, rng.integers(0, 1 << 16, 6, dtype=np.uint64))
               for c in config.clients}  # fmt: skip
    kept = record["threshold-ckks-state"]
    server = ThresholdCkksServer(config)
    outgoing = server.start()
    while outgoing:
        replies = []
        for message in outgoing:
            client = clients[message.recipient]
            replies += client.receive(message)
            if message.recipient in (1, 4) and not client.done:
                kept.append(client.to_state_bytes())
        outgoing = [m for reply in replies for m in server.receive(reply)]
    for fresh in (1, 4):  # before the session: a member and a non-member holding their input
        kept.insert(0, ThresholdCkksClient(config, fresh, np.zeros(6, np.uint64)).to_state_bytes())


def _unique(items: Iterable[bytes]) -> list[bytes]:
    return list(dict.fromkeys(items))


def main() -> None:
    record: dict[str, list[bytes]] = defaultdict(list)
    fixtures: dict[str, Any] = {"note": "written by python -m tests.fuzz.make_corpus"}
    fixtures["bonawitz"] = _bonawitz(record)
    _primitives(record)
    fixtures.update(_threshold_paillier(record))
    fixtures.update(_ckks(record))
    _threshold_ckks(record)
    _threshold_ckks_states(record)
    _flower(record)
    CORPUS.mkdir(parents=True, exist_ok=True)
    FIXTURES.write_text(json.dumps(fixtures, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for name, count in _write(record).items():
        print(f"{name:28} {count:3} files")
        if not count:
            raise SystemExit(f"no corpus for target {name}")


if __name__ == "__main__":
    main()
