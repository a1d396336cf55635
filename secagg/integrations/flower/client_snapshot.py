"""A versioned byte encoding of a :class:`secagg.protocols.client.Client` mid-session.

Flower runs every message in a fresh ClientApp process, so the mod must carry the protocol
client across processes. The client has no state export of its own, so this module
encodes exactly its fields (keys as raw private bytes, held shares via the bundle
encoding, peers via their wire form, the input vector as raw little-endian words) with
msgpack, and restores them. It never pickles.

Because it reaches into the client's fields, :func:`dump_client` first checks that the
client has exactly the fields this codec knows (:data:`KNOWN_FIELDS`): a change to the
client fails loudly (UsageError) instead of silently losing state. The bytes hold the
client's secrets; they stay in the node's ``context.state`` and never travel.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from secagg.errors import ConfigurationError, DecodeError, UsageError
from secagg.keys import KeyPair
from secagg.protocols.bundles import ShareBundle, decode_share_bundle, encode_share_bundle
from secagg.protocols.client import Client, ClientState
from secagg.protocols.config import ProtocolConfig
from secagg.protocols.messages import PeerKeys

__all__ = ["KNOWN_FIELDS", "SNAPSHOT_VERSION", "dump_client", "load_client"]

SNAPSHOT_VERSION = 1
KNOWN_FIELDS = frozenset({
    "_config", "_id", "_identity", "_input", "_state", "_neighbours", "_cipher_keys",
    "_mask_keys", "_self_seed", "_channel_keys", "_bundles", "_peers", "_sharers",
    "_unreadable", "_survivors",
})
_SELF = None  # errors about our own stored state name no remote party


def _keys(pair: KeyPair | None) -> bytes | None:
    return None if pair is None else pair.private_bytes()


def dump_client(client: Client) -> bytes:
    """The complete state of ``client`` as bytes (secret).

    Raises UsageError if the client has fields this codec does not know, carries an
    identity (active mode is not supported over Flower) or a lazy input callable.
    """
    fields = vars(client)
    if set(fields) != KNOWN_FIELDS:
        raise UsageError(
            "secagg.protocols.client.Client changed its fields "
            f"({sorted(set(fields) ^ KNOWN_FIELDS)}): update the Flower snapshot codec"
        )
    if fields["_identity"] is not None:
        raise UsageError("active-mode clients cannot be carried across Flower processes")
    vector = fields["_input"]
    if vector is not None and not isinstance(vector, np.ndarray):
        raise UsageError("a lazy input cannot be stored; give the client its vector")
    bundles: dict[int, ShareBundle] = fields["_bundles"]
    peers: dict[int, PeerKeys] = fields["_peers"]
    survivors = fields["_survivors"]
    state: list[Any] = [
        SNAPSHOT_VERSION,
        client.client_id,
        fields["_state"].name,
        None if vector is None else [vector.dtype.str, vector.astype(vector.dtype.newbyteorder(
            "<"), copy=False).tobytes()],
        _keys(fields["_cipher_keys"]),
        _keys(fields["_mask_keys"]),
        fields["_self_seed"],
        sorted(fields["_channel_keys"].items()),
        [[dealer, encode_share_bundle(bundle)] for dealer, bundle in sorted(bundles.items())],
        [peer.to_wire() for _, peer in sorted(peers.items())],
        sorted(fields["_sharers"]),
        sorted(fields["_unreadable"]),
        None if survivors is None else sorted(survivors),
    ]
    return bytes(msgpack.packb(state, use_bin_type=True))


def _ids(value: object) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ValueError("bad id list")
    return value


def _opt_bytes(value: object) -> bytes | None:
    if value is not None and not isinstance(value, bytes):
        raise ValueError("bad bytes field")
    return value


def _vector(config: ProtocolConfig, stored: object) -> np.ndarray:
    """The stored input vector, checked against the config as the client checks it."""
    if not isinstance(stored, list) or len(stored) != 2:
        raise ValueError("bad input vector")
    dtype_str, raw = stored
    dtype = np.dtype(str(dtype_str))
    if dtype.kind != "u" or not isinstance(raw, bytes):
        raise ValueError("bad input vector dtype")
    vector = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    if vector.shape != (config.vector_length,):
        raise ValueError("input vector of the wrong length")
    if config.bits < 64 and vector.size and int(vector.max()) >> config.bits:
        raise ValueError("input vector out of range")
    return vector


def load_client(config: ProtocolConfig, client_id: int, data: bytes) -> Client:
    """The client :func:`dump_client` encoded, bound to ``config`` and ``client_id``.

    Raises DecodeError if ``data`` is not a snapshot of this client (malformed, another
    version, another client id, shares that do not fit the config).
    """
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
        if not isinstance(obj, list) or len(obj) != 13 or obj[0] != SNAPSHOT_VERSION:
            raise ValueError("not a client snapshot")
        (_, stored_id, state_name, vector, cipher, mask, self_seed, channel, bundles,
         peers, sharers, unreadable, survivors) = obj
        if stored_id != client_id:
            raise ValueError("snapshot of another client")
        client = Client(config, client_id, lambda: np.zeros(0, dtype=np.uint32))
        fields = vars(client)
        fields["_state"] = ClientState[state_name]
        if vector is None:
            fields["_input"] = None
        else:
            fields["_input"] = _vector(config, vector)
        secret = [_opt_bytes(cipher), _opt_bytes(mask)]
        fields["_cipher_keys"] = None if secret[0] is None else KeyPair.from_private_bytes(
            secret[0])
        fields["_mask_keys"] = None if secret[1] is None else KeyPair.from_private_bytes(
            secret[1])
        fields["_self_seed"] = _opt_bytes(self_seed)
        fields["_channel_keys"] = {int(peer): bytes(key) for peer, key in channel}
        fields["_bundles"] = {
            int(dealer): decode_share_bundle(blob, dealer=int(dealer), holder=client_id,
                                             threshold=config.threshold)
            for dealer, blob in bundles
        }
        fields["_peers"] = {}
        for item in peers:
            peer = PeerKeys.from_wire(item, _SELF)
            fields["_peers"][peer.client_id] = peer
        fields["_sharers"] = frozenset(_ids(sharers))
        fields["_unreadable"] = set(_ids(unreadable))
        fields["_survivors"] = None if survivors is None else frozenset(_ids(survivors))
    except (DecodeError, ConfigurationError):
        raise DecodeError("stored client state does not decode", party=_SELF) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DecodeError(f"stored client state does not decode: {exc}", party=_SELF) from None
    return client
