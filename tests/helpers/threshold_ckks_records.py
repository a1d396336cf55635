"""The threshold-CKKS scheme records the wire vectors pin, built from fixed residues.

:func:`record_vectors` builds each record type of :mod:`secagg.he.threshold_ckks` from
deterministic inputs (residues expanded from a fixed public seed by the library's sampler,
small parameters) and returns name, parameters, length and SHA-256 of its encoding; the
generator writes them to ``tests/vectors/wire/threshold_ckks.json`` and
:func:`build_record` rebuilds one for the test to compare.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from secagg.he.rlwe.sampling import Sampler
from secagg.he.threshold_ckks import (
    Ciphertext,
    CiphertextMask,
    DecryptionShare,
    KeyShareDelivery,
    PublicKey,
    PublicKeyShare,
    ThresholdCkksParameters,
)

__all__ = ["PARAMS", "RECORDS", "build_record", "record_vectors"]

PARAMS = ThresholdCkksParameters(
    degree=4096, limbs=3, plaintext_bits=16, committee_size=4, max_summands=64
)
SEED = bytes(range(32))


def _residues(label: bytes, polys: int) -> np.ndarray:
    return Sampler(SEED, b"tests/vectors/" + label).uniform(PARAMS.moduli, (polys, PARAMS.degree))


def _body(polys: int) -> np.ndarray:
    values = np.arange(polys * PARAMS.degree, dtype=np.uint64) * np.uint64(2654435761)
    return (values % np.uint64(1 << PARAMS.body_bits)).reshape(polys, PARAMS.degree)


def _public_key_share() -> bytes:
    return PublicKeyShare(PARAMS, 3, _residues(b"pk", 1)).to_bytes()


def _delivery() -> bytes:
    return KeyShareDelivery(PARAMS, 1, 300, _residues(b"ks", 1)).to_bytes()


def _public_key() -> bytes:
    return PublicKey(PARAMS, SEED, [1, 2, 4], _residues(b"p", 1)).to_bytes()


def _ciphertext() -> bytes:
    return Ciphertext(PARAMS, 5000, 7, _body(2), _residues(b"c1", 2)).to_bytes()


def _mask() -> bytes:
    return CiphertextMask(PARAMS, 5000, 7, _residues(b"c1", 2)).to_bytes()


def _share() -> bytes:
    return DecryptionShare(PARAMS, 2, _residues(b"d", 2)).to_bytes()


RECORDS = {
    "public key share (member 3)": _public_key_share,
    "key-share delivery (1 to 300, before sealing)": _delivery,
    "public key (contributors 1, 2, 4)": _public_key,
    "ciphertext (5000 values, 7 summands)": _ciphertext,
    "ciphertext mask (5000 values, 7 summands)": _mask,
    "decryption share (member 2, two chunks)": _share,
}


def build_record(name: str) -> bytes:
    """The encoding of the record named ``name`` (a key of :data:`RECORDS`)."""
    return RECORDS[name]()


def record_vectors() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "parameters": PARAMS.to_dict(),
            "length": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        for name, data in ((name, build()) for name, build in RECORDS.items())
    ]
