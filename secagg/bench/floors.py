"""The floor: the least work any PRG-mask scheme does for the same masking, measured here.

Per mask vector one AES-128-CTR keystream ``update_into`` a reused buffer plus one numpy
uint32 add into an accumulator; per pairwise key one X25519 exchange plus HKDF-SHA256.
Measured with the same primitives secagg uses (``cryptography``), so ratios to the floor
compare implementations, not machines.
"""

from __future__ import annotations

import os
import time

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["floor_per_agreement", "floor_per_mask", "floor_seconds"]

_BATCH_ELEMENTS = 20_000_000


def floor_per_mask(length: int) -> float:
    """Floor seconds for one mask of ``length`` elements, from a measured batch of masks
    sized to about 20M elements (long enough to time, short enough for a shared machine)."""
    masks = max(4, (_BATCH_ELEMENTS // length))
    return floor_seconds(length, masks) / masks


def floor_seconds(length: int, masks: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds to add ``masks`` AES-CTR keystream masks of ``length``
    uint32 into one accumulator, with reused buffers (the hardware floor of masking)."""
    buf = bytearray(4 * length + 16)
    view = memoryview(buf)[: 4 * length]
    zeros = bytes(4 * length)
    acc = np.zeros(length, dtype=np.uint32)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(masks):
            encryptor = Cipher(algorithms.AES(os.urandom(16)), modes.CTR(bytes(16))).encryptor()
            encryptor.update_into(zeros, buf)
            np.add(acc, np.frombuffer(view, dtype=np.uint32), out=acc)
        best = min(best, time.perf_counter() - start)
    return best


def floor_per_agreement(count: int = 2000) -> float:
    """Floor seconds of one X25519 exchange plus HKDF-SHA256 (the per-pair key agreement a
    pairwise mask needs), best of 3 batches."""
    own = X25519PrivateKey.generate()
    peers = [X25519PrivateKey.generate().public_key() for _ in range(count)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for peer in peers:
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"floor").derive(
                own.exchange(peer)
            )
        best = min(best, time.perf_counter() - start)
    return best / count
