"""Wire-format vectors of the versioned HE records (``tests/vectors/wire/he.json``): the
Paillier public key, an encrypted vector, the threshold public key, a key share and a
partial decryption, for fixed numbers. CKKS objects are not pinned: a TenSEAL
serialization draws fresh randomness.

Both directions: the fields encode to exactly the pinned bytes, and the pinned bytes decode
to an equal object.
"""

from __future__ import annotations

from typing import Any

import pytest

from secagg.he.paillier import EncryptedVector, PaillierPublicKey
from secagg.he.slots import SlotLayout
from secagg.he.threshold_paillier import KeyShare, PartialDecryption, ThresholdPublicKey
from tests.helpers.vectors import cases, load_vectors, unhex

VECTORS = load_vectors("wire/he")


def _int(value: str) -> int:
    return int(value, 16)


def _threshold_key() -> ThresholdPublicKey:
    (vector,) = VECTORS["threshold_public_key"]
    return ThresholdPublicKey(
        PaillierPublicKey(_int(vector["n"])),
        threshold=vector["threshold"],
        holders=vector["holders"],
        verification_base=_int(vector["verification_base"]),
        verification_keys=[_int(v) for v in vector["verification_keys"]],
    )


@pytest.mark.parametrize("vector", cases(VECTORS, "paillier_public_key"))
def test_paillier_public_key(vector: dict[str, Any]) -> None:
    key = PaillierPublicKey(_int(vector["n"]))
    data = unhex(vector["encoding"])
    assert key.to_bytes() == data
    assert PaillierPublicKey.from_bytes(data) == key


@pytest.mark.parametrize("vector", cases(VECTORS, "encrypted_vector"))
def test_encrypted_vector(vector: dict[str, Any]) -> None:
    key = PaillierPublicKey(_int(vector["n"]))
    layout = SlotLayout(**vector["layout"])
    ciphertexts = tuple(_int(c) for c in vector["ciphertexts"])
    encrypted = EncryptedVector(key, layout, vector["length"], ciphertexts, vector["summands"])
    data = unhex(vector["encoding"])
    assert encrypted.to_bytes() == data
    decoded = EncryptedVector.from_bytes(data, key, layout, length=vector["length"])
    assert (decoded.length, decoded.summands) == (vector["length"], vector["summands"])
    assert [int(c) for c in decoded.ciphertexts] == list(ciphertexts)


@pytest.mark.parametrize("vector", cases(VECTORS, "threshold_public_key"))
def test_threshold_public_key(vector: dict[str, Any]) -> None:
    key = _threshold_key()
    data = unhex(vector["encoding"])
    assert key.to_bytes() == data
    decoded = ThresholdPublicKey.from_bytes(data)
    assert decoded == key
    assert (decoded.threshold, decoded.holders) == (vector["threshold"], vector["holders"])


@pytest.mark.parametrize("vector", cases(VECTORS, "key_share"))
def test_key_share(vector: dict[str, Any]) -> None:
    public = _threshold_key()
    share = KeyShare(public, vector["index"], _int(vector["secret"]))
    data = unhex(vector["encoding"])
    assert share.to_bytes() == data
    decoded = KeyShare.from_bytes(data, public)  # also checks it against verification key
    assert decoded.index == vector["index"]
    assert decoded.to_bytes() == data


@pytest.mark.parametrize("vector", cases(VECTORS, "partial_decryption"))
def test_partial_decryption(vector: dict[str, Any]) -> None:
    public = _threshold_key()
    values = tuple(_int(v) for v in vector["values"])
    partial = PartialDecryption(
        vector["index"], values, _int(vector["challenge"]), _int(vector["response"])
    )
    data = unhex(vector["encoding"])
    assert partial.to_bytes(public) == data
    decoded = PartialDecryption.from_bytes(data, public, len(values))
    assert decoded.index == partial.index
    assert [int(v) for v in decoded.values] == list(values)
    assert (decoded.challenge, decoded.response) == (partial.challenge, partial.response)
