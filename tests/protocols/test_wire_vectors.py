"""Wire-format vectors of every message of every protocol family, and of what else travels
or persists in the Bonawitz family (signed and derived payloads, box plaintexts and boxes,
the client state export).

Each vector holds an object's constructor fields and its exact encoding
(``tests/vectors/wire/*.json``, written by ``python -m tests.vectors.generate`` only when a
wire change is intended). Both directions are checked: the fields encode to exactly the
pinned bytes, and the pinned bytes decode (through the family's registry entry, as a
transport decodes them) to an equal object. An accidental change of any encoding fails here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from secagg.protocols.bonawitz import bundles, dealing, messages
from secagg.protocols.bonawitz.bundles import (
    BUNDLE_VERSION,
    SecretKind,
    decode_mask_key_box,
    decode_self_mask_box,
    mask_key_plaintext,
    open_box,
    seal_box,
    self_mask_plaintext,
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
    assert THRESHOLD_HE["wire_version"] == WIRE_VERSION
    assert THRESHOLD_CKKS["wire_version"] == WIRE_VERSION
    assert BONAWITZ["wire_version"] == messages.WIRE_VERSION == 3  # the family's own
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
    args = {
        name: unhex(value) if isinstance(value, str) and name not in ("kind",) else value
        for name, value in arguments.items()
    }
    if function == "derive_sharing_id":
        return bundles.derive_sharing_id(
            args["session_id"], args["dealer"], SecretKind[arguments["kind"]]
        )
    if function == "derive_box_keys":
        keys = bundles.derive_box_keys(**args)
        return keys.self_mask + keys.mask_key
    if function == "challenges":
        return b"".join(c.to_bytes(3, "little") for c in dealing.challenges(**args))
    modules = {
        "self_mask_commitment": bundles,
        "nonce_commitment": dealing,
    }
    module = modules.get(function, messages)
    if not hasattr(module, function):
        raise AssertionError(f"no derivation {function}")
    result: bytes = getattr(module, function)(**args)
    return result


@pytest.mark.parametrize("vector", cases(BONAWITZ, "derivations"))
def test_signed_and_hashed_payloads(vector: dict[str, Any]) -> None:
    assert _derive(vector["function"], vector["arguments"]) == unhex(vector["output"])


@pytest.mark.parametrize("vector", cases(BONAWITZ, "boxes"))
def test_box_plaintexts_and_boxes(vector: dict[str, Any]) -> None:
    fields = vector["fields"]
    self_mask = np.array(fields["self_mask_limbs"], dtype=np.int64)
    key_limbs = np.array(fields["key_limbs"], dtype=np.int64)
    b_plain, s_plain = unhex(vector["self_mask_plaintext"]), unhex(vector["mask_key_plaintext"])
    assert self_mask_plaintext(self_mask, fields["blinding"]) == b_plain
    assert mask_key_plaintext(key_limbs) == s_plain
    b_key, s_key = unhex(fields["self_mask_key"]), unhex(fields["mask_key_key"])
    b_box, s_box = unhex(vector["self_mask_box"]), unhex(vector["mask_key_box"])
    assert seal_box(b_key, b_plain, SecretKind.SELF_MASK) == b_box
    assert seal_box(s_key, s_plain, SecretKind.MASK_KEY) == s_box
    assert open_box(b_key, b_box, SecretKind.SELF_MASK) == b_plain
    assert open_box(s_key, s_box, SecretKind.MASK_KEY) == s_plain
    where = {"session_id": bytes(16), "dealer": 7, "holder": 3, "threshold": 2}
    share, blinding = decode_self_mask_box(b_plain, **where)  # type: ignore[arg-type]
    assert list(share.values) == fields["self_mask_limbs"]
    assert list(blinding) == fields["blinding"]
    assert list(decode_mask_key_box(s_plain, **where).values) == fields["key_limbs"]  # type: ignore[arg-type]


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
