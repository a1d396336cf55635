"""The JSON form of the objects whose encodings ``tests/vectors/wire/*.json`` pin.

A wire vector holds an object's constructor fields as JSON (bytes as hex, tuples as lists,
named tuples as objects) and its exact encoding. These functions turn fields into the
object and back, driven by the classes' type hints, so one function serves every message
of every family. The generator (``tests/vectors/generate.py``) writes fields with the
``*_fields`` functions; the tests build objects with the ``from_*`` ones and compare
encodings against the committed hex.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

from secagg.protocols.bonawitz.bundles import (
    BoxKeys,
    SecretKind,
    ShareBundle,
    derive_sharing_id,
)
from secagg.protocols.bonawitz.client_state import ClientSnapshot, ClientState, HeldShares
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import PeerKeys
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import dtype_for_bits
from secagg.shamir import Share

__all__ = [
    "config_fields",
    "from_config_fields",
    "from_held_fields",
    "from_message_fields",
    "from_snapshot_fields",
    "held_fields",
    "message_classes",
    "message_fields",
    "snapshot_fields",
    "to_json",
]


def to_json(value: object) -> Any:
    """bytes -> hex, named tuple -> object, tuple/list -> list, numpy ints -> int."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: to_json(item) for name, item in zip(value._fields, value, strict=True)}
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else value
        return [to_json(item) for item in items]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bytes:
        return bytes.fromhex(value)
    if hint is int:
        return int(value)
    if origin is tuple:
        return tuple(_from_json(args[0], item) for item in value)
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        hints = typing.get_type_hints(hint)
        return hint(**{name: _from_json(hints[name], value[name]) for name in hint._fields})
    raise TypeError(f"no JSON form for {hint!r}")


def message_fields(message: ProtocolMessage) -> dict[str, Any]:
    """The constructor fields of ``message``, as JSON."""
    return {item.name: to_json(getattr(message, item.name)) for item in dataclasses.fields(message)}


def from_message_fields(cls: type[ProtocolMessage], fields: Mapping[str, Any]) -> ProtocolMessage:
    """``cls`` built from :func:`message_fields` output (every field given)."""
    hints = typing.get_type_hints(cls)
    names = [item.name for item in dataclasses.fields(cls)]
    if set(fields) != set(names):
        raise ValueError(f"{cls.__name__} has the fields {names}, the vector {sorted(fields)}")
    return cls(**{name: _from_json(hints[name], fields[name]) for name in names})


def message_classes(package: str) -> dict[str, type[ProtocolMessage]]:
    """Every concrete message class (``TYPE`` set) defined under ``package``, by name.

    Found by walking the subclasses of :class:`ProtocolMessage` once ``<package>.messages``
    is imported, so a family that moves its messages between its modules keeps its vectors.
    """
    importlib.import_module(f"{package}.messages")
    found: dict[str, type[ProtocolMessage]] = {}
    pending = list(ProtocolMessage.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.TYPE and (cls.__module__ == package or cls.__module__.startswith(package + ".")):
            found[cls.__name__] = cls
    return found


# --- Bonawitz: held shares, configs, client state -----------------------------------


def held_fields(held: HeldShares) -> dict[str, Any]:
    """One dealing a client holds: its two box keys and its two shares' limbs."""
    return {
        "dealer": held.bundle.dealer,
        "self_mask_key": held.keys.self_mask.hex(),
        "mask_key_key": held.keys.mask_key.hex(),
        "self_mask_limbs": to_json(list(held.bundle.self_mask_share.values)),
        "key_limbs": to_json(list(held.bundle.key_share.values)),
    }


def from_held_fields(
    session_id: bytes, holder: int, threshold: int, fields: Mapping[str, Any]
) -> HeldShares:
    dealer = fields["dealer"]

    def share(kind: SecretKind, limbs: list[int]) -> Share:
        sharing = derive_sharing_id(session_id, dealer, kind)
        return Share(holder, threshold, sharing, np.array(limbs, dtype=np.int64))

    bundle = ShareBundle(
        dealer,
        holder,
        share(SecretKind.MASK_KEY, fields["key_limbs"]),
        share(SecretKind.SELF_MASK, fields["self_mask_limbs"]),
    )
    keys = BoxKeys(bytes.fromhex(fields["self_mask_key"]), bytes.fromhex(fields["mask_key_key"]))
    return HeldShares(bundle, keys)


def config_fields(config: ProtocolConfig) -> dict[str, Any]:
    return {
        "session_id": config.session_id.hex(),
        "clients": list(config.clients),
        "threshold": config.threshold,
        "bits": config.bits,
        "vector_length": config.vector_length,
        "mode": config.mode,
        "neighbours": None
        if config.neighbours is None
        else {str(u): sorted(config.neighbours[u]) for u in sorted(config.neighbours)},
        "identities": None
        if config.identities is None
        else {str(c): config.identities[c].hex() for c in sorted(config.identities)},
    }


def from_config_fields(fields: Mapping[str, Any]) -> ProtocolConfig:
    neighbours, identities = fields["neighbours"], fields["identities"]
    return ProtocolConfig(
        session_id=bytes.fromhex(fields["session_id"]),
        clients=tuple(fields["clients"]),
        threshold=fields["threshold"],
        bits=fields["bits"],
        vector_length=fields["vector_length"],
        mode=fields["mode"],
        neighbours=None
        if neighbours is None
        else {int(u): frozenset(peers) for u, peers in neighbours.items()},
        identities=None
        if identities is None
        else {int(c): bytes.fromhex(key) for c, key in identities.items()},
    )


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _bytes_or_none(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def snapshot_fields(session_id: bytes, snapshot: ClientSnapshot) -> dict[str, Any]:
    """A client snapshot as JSON (secret in real use; the vectors' values are fixed)."""
    vector = snapshot.input_vector
    return {
        "state": snapshot.state.name,
        "input_vector": None if vector is None else to_json(list(vector)),
        "cipher_key": _hex_or_none(snapshot.cipher_key),
        "mask_key": _hex_or_none(snapshot.mask_key),
        "self_seed": _hex_or_none(snapshot.self_seed),
        "commitment": _hex_or_none(snapshot.commitment),
        "channel_secrets": {
            str(p): k.hex() for p, k in sorted(snapshot.channel_secrets.items())
        },
        "held": [held_fields(snapshot.held[d]) for d in sorted(snapshot.held)],
        "peers": [to_json(snapshot.peers[p]) for p in sorted(snapshot.peers)],
        "disputed": sorted(snapshot.disputed),
        "sharers": sorted(snapshot.sharers),
        "survivors": None if snapshot.survivors is None else sorted(snapshot.survivors),
        "dropped": sorted(snapshot.dropped),
    }


def from_snapshot_fields(
    config: ProtocolConfig, fields: Mapping[str, Any], client_id: int = 1
) -> ClientSnapshot:
    vector = fields["input_vector"]
    peers = [_from_json(PeerKeys, item) for item in fields["peers"]]
    held = [
        from_held_fields(config.session_id, client_id, config.threshold, item)
        for item in fields["held"]
    ]
    return ClientSnapshot(
        state=ClientState[fields["state"]],
        input_vector=None
        if vector is None
        else np.array(vector, dtype=dtype_for_bits(config.bits)),
        cipher_key=_bytes_or_none(fields["cipher_key"]),
        mask_key=_bytes_or_none(fields["mask_key"]),
        self_seed=_bytes_or_none(fields["self_seed"]),
        commitment=_bytes_or_none(fields["commitment"]),
        channel_secrets={int(p): bytes.fromhex(k) for p, k in fields["channel_secrets"].items()},
        held={item.bundle.dealer: item for item in held},
        peers={peer.client_id: peer for peer in peers},
        disputed=frozenset(fields["disputed"]),
        sharers=frozenset(fields["sharers"]),
        survivors=None if fields["survivors"] is None else frozenset(fields["survivors"]),
        dropped=frozenset(fields["dropped"]),
    )
