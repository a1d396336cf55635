"""Wire-format vectors of every message of every protocol family, and of what else travels
or persists in the Bonawitz family (signed payloads, sealed bundle plaintexts, the client
state export).

Each vector holds an object's constructor fields and its exact encoding
(``tests/vectors/wire/*.json``, written by ``python -m tests.vectors.generate`` only when a
wire change is intended). Both directions are checked: the fields encode to exactly the
pinned bytes, and the pinned bytes decode (through the family's registry entry, as a
transport decodes them) to an equal object. An accidental change of any encoding fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from secagg.protocols.bonawitz import bundles, messages
from secagg.protocols.bonawitz.bundles import (
    BUNDLE_VERSION,
    SecretKind,
    decode_share_bundle,
    encode_share_bundle,
)
from secagg.protocols.bonawitz.client_state import (
    STATE_VERSION,
    ClientState,
    decode_state,
    encode_state,
)
from secagg.protocols.registry import get_protocol
from secagg.protocols.wire import WIRE_VERSION
from tests.helpers.vectors import cases, load_vectors, unhex
from tests.helpers.wire_fields import (
    from_bundle_fields,
    from_config_fields,
    from_message_fields,
    from_snapshot_fields,
    message_classes,
    snapshot_fields,
)

BONAWITZ = load_vectors("wire/bonawitz")
THRESHOLD_HE = load_vectors("wire/threshold_he")
THRESHOLD_CKKS = load_vectors("wire/threshold_ckks")
FAMILIES = {
    "secagg.protocols.bonawitz": BONAWITZ,
    "secagg.protocols.threshold_he": THRESHOLD_HE,
    "secagg.protocols.threshold_ckks": THRESHOLD_CKKS,
}


def test_vectors_are_of_the_current_versions() -> None:
    assert BONAWITZ["wire_version"] == THRESHOLD_HE["wire_version"] == WIRE_VERSION
    assert THRESHOLD_CKKS["wire_version"] == WIRE_VERSION
    assert BONAWITZ["bundle_version"] == BUNDLE_VERSION
    assert BONAWITZ["state_version"] == STATE_VERSION


@pytest.mark.parametrize("package", sorted(FAMILIES))
def test_every_message_type_has_a_vector(package: str) -> None:
    classes = message_classes(package)
    assert classes, package
    assert {vector["type"] for vector in FAMILIES[package]["messages"]} == set(classes)


def _check_message(family: dict[str, Any], package: str, vector: dict[str, Any]) -> None:
    cls = message_classes(package)[vector["type"]]
    message = from_message_fields(cls, vector["fields"])
    data = unhex(vector["encoding"])
    assert message.to_bytes() == data
    decoded = get_protocol(family["protocol"]).decode(data, message.sender)
    assert type(decoded) is cls
    assert decoded == message


@pytest.mark.parametrize("vector", cases(BONAWITZ, "messages"))
def test_bonawitz_message(vector: dict[str, Any]) -> None:
    _check_message(BONAWITZ, "secagg.protocols.bonawitz", vector)


@pytest.mark.parametrize("vector", cases(THRESHOLD_HE, "messages"))
def test_threshold_he_message(vector: dict[str, Any]) -> None:
    _check_message(THRESHOLD_HE, "secagg.protocols.threshold_he", vector)


@pytest.mark.parametrize("vector", cases(THRESHOLD_CKKS, "messages"))
def test_threshold_ckks_message(vector: dict[str, Any]) -> None:
    _check_message(THRESHOLD_CKKS, "secagg.protocols.threshold_ckks", vector)


def _derive(function: str, arguments: dict[str, Any]) -> bytes:
    session = unhex(arguments["session_id"])
    if function == "advertise_signature_payload":
        return messages.advertise_signature_payload(
            session,
            arguments["client_id"],
            unhex(arguments["cipher_public_key"]),
            unhex(arguments["mask_public_key"]),
            unhex(arguments["self_mask_commitment"]),
        )
    if function == "consistency_signature_payload":
        return messages.consistency_signature_payload(session, arguments["survivors"])
    if function == "self_mask_commitment":
        return bundles.self_mask_commitment(
            session, arguments["client_id"], unhex(arguments["self_seed"])
        )
    if function == "derive_sharing_id":
        kind = SecretKind[arguments["kind"]]
        return bundles.derive_sharing_id(session, arguments["dealer"], kind)
    raise AssertionError(f"no derivation {function}")


@pytest.mark.parametrize("vector", cases(BONAWITZ, "derivations"))
def test_signed_and_hashed_payloads(vector: dict[str, Any]) -> None:
    assert _derive(vector["function"], vector["arguments"]) == unhex(vector["output"])


@pytest.mark.parametrize("vector", cases(BONAWITZ, "bundles"))
def test_sealed_bundle_plaintext(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    bundle = from_bundle_fields(fields)
    data = unhex(vector["encoding"])
    assert encode_share_bundle(bundle) == data
    decoded = decode_share_bundle(
        data,
        session_id=unhex(fields["session_id"]),
        dealer=fields["dealer"],
        holder=fields["holder"],
        threshold=fields["threshold"],
    )
    assert decoded == bundle


@pytest.mark.parametrize("vector", cases(BONAWITZ, "client_states"))
def test_client_state_export(vector: dict[str, Any]) -> None:
    config = from_config_fields(vector["config"])
    client_id = vector["client_id"]
    snapshot = from_snapshot_fields(config, vector["snapshot"])
    data = unhex(vector["encoding"])
    assert encode_state(config, client_id, snapshot) == data
    decoded = decode_state(config, client_id, data)
    assert snapshot_fields(config.session_id, decoded) == vector["snapshot"]


def test_every_client_state_has_a_vector() -> None:
    states = {vector["snapshot"]["state"] for vector in BONAWITZ["client_states"]}
    assert states == {state.name for state in ClientState}
