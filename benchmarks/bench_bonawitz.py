"""Bonawitz / SecAgg+ state machines: the server's Unmasking and the upload expansion.

Run: ``.venv/bin/python -m benchmarks.bench_bonawitz [--quick] [--json PATH] [--threads N]``.

* ``server_unmasking``: the whole protocol runs in process (real clients, every message
  encoded and decoded); only the server's Unmasking round is timed (decoding the
  responses, reconstructing every secret, regenerating and removing the masks). The
  floor, measured side by side in the same run, is the least any PRG-mask server can do
  for the same work on one core: one X25519 exchange per (dropped, surviving) pair plus one
  AES-128-CTR keystream ``update_into`` a reused buffer and one uint32 add per mask.
* ``upload_expansion``: one real client is driven through all rounds (wire version 3)
  against a synthetic server view of n - 1 peers (real keys, real sealed boxes); its
  uploaded (and downloaded) message bytes are divided by the plain input size,
  ``m * bits / 8``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from benchmarks.common import bench_parser, write_json
from secagg.curve25519 import secret_scalar, x25519_public
from secagg.keys import KeyPair
from secagg.protocols.base import Message
from secagg.protocols.bonawitz.bundles import (
    SecretKind,
    deal,
    derive_box_keys,
    seal_box,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.dealing import nonce_commitment
from secagg.protocols.bonawitz.messages import (
    ROUND_MASKED_INPUT,
    ROUND_UNMASKING,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    DealtBoxes,
    MaskedInputRequest,
    PeerKeys,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    decode_message,
)
from secagg.protocols.bonawitz.server import Server
from secagg.signing import SigningKey


def floor_seconds(length: int, masks: int, agreements: int) -> float:
    """One core, reused buffers: ``agreements`` X25519 exchanges, then ``masks`` AES-CTR
    keystreams of ``length`` uint32 each added into one accumulator."""
    own = X25519PrivateKey.generate()
    peer = X25519PrivateKey.generate().public_key()
    buf = bytearray(4 * length + 16)
    view = memoryview(buf)[: 4 * length]
    zeros = bytes(4 * length)
    acc = np.zeros(length, dtype=np.uint32)
    start = time.perf_counter()
    for _ in range(agreements):
        own.exchange(peer)
    for _ in range(masks):
        encryptor = Cipher(algorithms.AES(os.urandom(16)), modes.CTR(bytes(16))).encryptor()
        encryptor.update_into(zeros, buf)
        np.add(acc, np.frombuffer(view, dtype=np.uint32), out=acc)
    return time.perf_counter() - start


def server_unmasking(
    n: int, degree: int | None, length: int, dropouts: int, threads: int
) -> dict[str, Any]:
    """Run a session with ``dropouts`` clients lost before MaskedInput; time the server's
    Unmasking round. Returns the row of the table."""
    clients = list(range(1, n + 1))
    config = ProtocolConfig.create(
        clients,
        threshold=n // 2 + 1 if degree is None else degree // 2 + 1,
        bits=32,
        vector_length=length,
        degree=degree,
    )
    # not-secret: benchmark inputs.
    rng = np.random.default_rng(0)
    inputs = {c: rng.integers(0, 2**32, length, dtype=np.uint64).astype(np.uint32) for c in clients}
    server = Server(config, threads=threads)
    parties = {c: Client(config, c, inputs[c]) for c in clients}
    dropped = set(clients[:dropouts])
    unmasking_seconds = 0.0
    outgoing: list[Message] = server.start()
    while True:
        uploads: list[tuple[int, bytes]] = []
        for message in outgoing:
            if message.round_name == ROUND_MASKED_INPUT and message.recipient in dropped:
                continue
            request = decode_message(message.to_bytes())
            for reply in parties[message.recipient].receive(request):
                uploads.append((message.recipient, reply.to_bytes()))
        outgoing = []
        for sender, data in uploads:
            timed = server.state.value == ROUND_UNMASKING
            start = time.perf_counter()
            outgoing += server.receive_bytes(data, sender)
            if timed:
                unmasking_seconds += time.perf_counter() - start
        if outgoing:
            continue
        if server.done:
            break
        outgoing = server.close_round()
    result = server.result
    assert result is not None
    expected = np.zeros(length, dtype=np.uint32)
    for c in result.included:
        expected += inputs[c]
    assert np.array_equal(result.total, expected), "wrong sum"
    k = n - 1 if degree is None else degree
    survivors = n - dropouts
    pairs = sum(len(config.neighbours_of(v) & result.included) for v in dropped)
    floor = floor_seconds(length, survivors + pairs, pairs)
    return {
        "work": "server_unmasking",
        "n": n,
        "k": k,
        "m": length,
        "dropouts": dropouts,
        "threads": threads,
        "seconds": unmasking_seconds,
        "floor": floor,
        "ratio": unmasking_seconds / floor,
    }


def upload_expansion(n: int, length: int, bits: int) -> dict[str, Any]:
    """Client 1's message bytes over the plain input size (real messages, synthetic peers)."""
    clients = list(range(1, n + 1))
    threshold = n // 2 + 1
    config = ProtocolConfig.create(clients, threshold=threshold, bits=bits, vector_length=length)
    sid = config.session_id
    rng = np.random.default_rng(1)  # not-secret: benchmark input
    client = Client(config, 1, rng.integers(0, 2**bits, length, dtype=np.uint64))
    up = down = 0

    def exchange(request: Message) -> Message:
        nonlocal up, down
        data = request.to_bytes()
        down += len(data)
        (reply,) = client.receive(decode_message(data))
        up += len(reply.to_bytes())
        return reply

    nonce = os.urandom(32)
    advert = exchange(AdvertiseKeysRequest(0, 1, sid, nonce_commitment(sid, nonce)))
    assert isinstance(advert, AdvertiseKeys)
    seeds = {v: (os.urandom(32), os.urandom(32)) for v in clients[1:]}
    peer_keys = tuple(
        PeerKeys(
            v,
            SigningKey.from_private_bytes(c).verify_key,
            SigningKey.from_private_bytes(s).verify_key,
            self_mask_commitment(sid, v, bytes(32)),
        )
        for v, (c, s) in seeds.items()
    )
    dealt = exchange(ShareKeysRequest(0, 1, sid, peer_keys))
    assert isinstance(dealt, ShareKeys)
    # The peers' boxes for client 1: real boxes under the pairs' keys, of one real dealing.
    dealt_one = deal(os.urandom(32), os.urandom(32), clients, threshold)[1]
    own_cipher = x25519_public(advert.cipher_public_key)
    boxes = [item._replace(peer=1) for item in dealt.boxes if item.peer == 1]
    for v, (c, _) in seeds.items():
        raw = KeyPair.from_private_bytes(secret_scalar(c)).exchange(own_cipher)
        keys = derive_box_keys(raw, sid, v, 1)
        boxes.append(
            DealtBoxes(
                v,
                seal_box(keys.self_mask, dealt_one.self_mask, SecretKind.SELF_MASK),
                seal_box(keys.mask_key, dealt_one.mask_key, SecretKind.MASK_KEY),
            )
        )
    exchange(ShareCheckRequest(0, 1, sid, nonce, tuple(sorted(boxes))))
    exchange(MaskedInputRequest(0, 1, sid, tuple(clients[1:])))
    exchange(UnmaskingRequest(0, 1, sid, tuple(clients), ()))
    plain = length * bits / 8
    return {
        "work": "upload_expansion",
        "n": n,
        "m": length,
        "bits": bits,
        "bytes_up": up,
        "bytes_down": down,
        "upload_expansion": up / plain,
        "total_expansion": (up + down) / plain,
    }


def main() -> None:
    parser = bench_parser(__doc__, "small sizes, seconds", "write the rows as JSON")
    parser.add_argument("--threads", type=int, default=1, help="mask regeneration threads")
    args = parser.parse_args()
    if args.quick:
        unmask_cases = [(50, None, 20_000, 3)]
        expansion_cases = [(64, 1 << 14, 16)]
    else:
        unmask_cases = [(100, None, 100_000, 5), (500, None, 100_000, 150)]
        expansion_cases = [(1024, 1 << 20, 16)]
    rows = [server_unmasking(n, k, m, d, args.threads) for n, k, m, d in unmask_cases]
    rows += [upload_expansion(n, m, b) for n, m, b in expansion_cases]
    print("absolute seconds depend on what else runs here: compare ratios")
    print(f"{'work':<18}{'n':>6}{'k':>6}{'m':>9}{'drop':>6}{'seconds':>10}{'floor':>9}{'ratio':>7}")
    for row in rows:
        if row["work"] == "server_unmasking":
            print(
                f"{row['work']:<18}{row['n']:>6}{row['k']:>6}{row['m']:>9}{row['dropouts']:>6}"
                f"{row['seconds']:>10.3f}{row['floor']:>9.3f}{row['ratio']:>7.2f}"
            )
        else:
            print(
                f"{row['work']:<18}{row['n']:>6}{'':>6}{row['m']:>9}{'':>6}"
                f"  up {row['upload_expansion']:.3f}x  up+down {row['total_expansion']:.3f}x"
                f"  (bits={row['bits']}; Bonawitz et al.: 1.73x)"
            )
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
