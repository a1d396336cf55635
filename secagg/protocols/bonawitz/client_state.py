"""A client's versioned state export (bytes, msgpack), between any two rounds.

Role: client, between rounds: save and restore. Where a client stands
(:class:`~secagg.protocols.bonawitz.rounds.ClientState`) and what it may receive next are
defined in :mod:`secagg.protocols.bonawitz.rounds`; this module stores the state by name.

Theory of operation. Some transports (Flower starts a new process per message) cannot keep
a :class:`secagg.protocols.bonawitz.client.Client` in memory between rounds. The client then saves
itself as a :class:`ClientSnapshot` (its state and exactly the values that state needs)
and this module encodes that snapshot as one msgpack array, and decodes it back under
strict validation: every field's type and size, every id against the session's config,
and which fields must and must not be present in each :class:`ClientState` (a secret
that the state has already wiped must not come back). Anything else raises
:class:`DecodeError` (``party=None``: the bytes are the client's own).

The bytes are bound to one session, one configuration of it (a SHA-256 digest of the
public :class:`ProtocolConfig`) and one client id. They hold the client's secrets (private
keys, self-mask seed, held shares, the input): store them only where the client's own
secrets may be (e.g. Flower's node-local ``context.state``), never send them, log them or
put them in a repr.

Layout, version :data:`STATE_VERSION`: one msgpack array ``[tag, version, session_id,
client_id, config digest, state name, input (bit-packed at config.bits) | nil, cipher key |
nil, mask key | nil, self-mask seed | nil, [[peer, channel key]...], [[dealer, share
bundle]...], [peer keys...], sharers, unreadable, survivors | nil, extensions (empty)]``,
id lists strictly increasing, followed by a 32-byte SHA-256 checksum of the array: a state
truncated or garbled in storage (a flipped bit of the input would otherwise restore and
give a wrong sum) is refused. The checksum is not a MAC: whoever can write the client's
secret storage is the client.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgpack
import numpy as np

from secagg.errors import ConfigurationError, DecodeError
from secagg.packing import pack, unpack
from secagg.protocols.bonawitz.bundles import (
    ShareBundle,
    clamp_scalar,
    decode_share_bundle,
    encode_share_bundle,
)
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import KEY_BYTES, PeerKeys
from secagg.protocols.bonawitz.rounds import ClientState
from secagg.secret import SecretHolder

__all__ = ["STATE_VERSION", "ClientSnapshot", "decode_state", "encode_state"]

STATE_VERSION = 2
"""Version 2: share bundles in their version-2 (compact) encoding."""
_TAG = "secagg.protocols.bonawitz.client"
_SECRET_BYTES = 32  # X25519 private keys, the self-mask seed, channel keys
_CHECKSUM_LABEL = b"secagg/v1/client-state\x00"
_CHECKSUM_BYTES = 32
_FIELDS = 17


_S = ClientState
_HOLDS_INPUT = frozenset({_S.AWAIT_ADVERTISE_KEYS, _S.AWAIT_SHARE_KEYS, _S.AWAIT_MASKED_INPUT})
_HOLDS_KEYS = frozenset({_S.AWAIT_SHARE_KEYS, _S.AWAIT_MASKED_INPUT})
_KNOWS_PEERS = frozenset({_S.AWAIT_MASKED_INPUT, _S.AWAIT_CONSISTENCY_CHECK, _S.AWAIT_UNMASKING})
_MASKED = frozenset({_S.AWAIT_CONSISTENCY_CHECK, _S.AWAIT_UNMASKING})


@dataclass(frozen=True, repr=False)
class ClientSnapshot(SecretHolder, export="encode_state() / decode_state()"):
    """A client's state and exactly the values it needs there. Secret: no repr of values.

    ``cipher_key`` and ``mask_key`` are X25519 private keys, ``channel_keys`` the AES-GCM
    keys agreed with each peer, ``bundles`` the shares this client holds (dealer ->
    bundle), ``peers`` the advertisements it accepted (U1), ``sharers`` the peers it
    masked with (U2), ``survivors`` the signed U3 (active mode, from the consistency check).
    """

    state: ClientState
    input_vector: np.ndarray | None = None
    cipher_key: bytes | None = None
    mask_key: bytes | None = None
    self_seed: bytes | None = None
    channel_keys: Mapping[int, bytes] = field(default_factory=dict)
    bundles: Mapping[int, ShareBundle] = field(default_factory=dict)
    peers: Mapping[int, PeerKeys] = field(default_factory=dict)
    sharers: frozenset[int] = frozenset()
    unreadable: frozenset[int] = frozenset()
    survivors: frozenset[int] | None = None

    def __repr__(self) -> str:
        return f"ClientSnapshot(state={self.state.name})"


@lru_cache(maxsize=8)
def config_digest(config: ProtocolConfig) -> bytes:
    """SHA-256 of every public parameter of ``config`` (equal configs, equal digests)."""
    neighbours = (
        None
        if config.neighbours is None
        else [[u, sorted(config.neighbours[u])] for u in sorted(config.neighbours)]
    )
    identities = (
        None
        if config.identities is None
        else [[c, config.identities[c]] for c in sorted(config.identities)]
    )
    public = [
        config.session_id,
        list(config.clients),
        config.threshold,
        config.bits,
        config.vector_length,
        config.mode,
        neighbours,
        identities,
    ]
    return hashlib.sha256(
        b"secagg/v1/config\x00" + msgpack.packb(public, use_bin_type=True)
    ).digest()


def encode_state(config: ProtocolConfig, client_id: int, snapshot: ClientSnapshot) -> bytes:
    """The version-:data:`STATE_VERSION` bytes of ``snapshot`` (secret: see the module
    docstring). Canonical: the same snapshot always gives the same bytes."""
    vector = snapshot.input_vector
    record: list[Any] = [
        _TAG,
        STATE_VERSION,
        config.session_id,
        client_id,
        config_digest(config),
        snapshot.state.name,
        None if vector is None else pack(vector, config.bits),
        snapshot.cipher_key,
        snapshot.mask_key,
        snapshot.self_seed,
        [[peer, snapshot.channel_keys[peer]] for peer in sorted(snapshot.channel_keys)],
        [[d, encode_share_bundle(snapshot.bundles[d])] for d in sorted(snapshot.bundles)],
        [snapshot.peers[peer].to_wire() for peer in sorted(snapshot.peers)],
        sorted(snapshot.sharers),
        sorted(snapshot.unreadable),
        None if snapshot.survivors is None else sorted(snapshot.survivors),
        [],  # reserved: extensions (must be empty)
    ]
    return _frame(bytes(msgpack.packb(record, use_bin_type=True)))


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(_CHECKSUM_LABEL + body).digest()


def _frame(body: bytes) -> bytes:
    return body + _checksum(body)


def decode_state(config: ProtocolConfig, client_id: int, data: bytes) -> ClientSnapshot:
    """The snapshot :func:`encode_state` wrote for ``client_id`` of ``config``.

    Guarantees: the result is one the client itself could have reached in this session:
    fields present exactly where its state needs them, ids within the client's
    neighbourhood, shares for this holder at the config's threshold.

    Raises DecodeError (``party=None``) on anything else: not bytes, a checksum that does
    not match (truncated or garbled), not msgpack, another tag or version, another
    session, config or client id, a field of the wrong type, size or presence for its
    state.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("client state must be bytes")
    raw = bytes(data)
    body, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
    if len(raw) <= _CHECKSUM_BYTES or not hmac.compare_digest(checksum, _checksum(body)):
        raise DecodeError("client state is truncated or garbled (checksum)")
    try:
        record = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
    except Exception:  # msgpack raises several unrelated types on bad input
        raise DecodeError("client state is not msgpack") from None
    try:
        return _decode(config, client_id, record)
    except DecodeError:
        raise
    except (ConfigurationError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise DecodeError(f"client state does not decode: {type(exc).__name__}") from None


def _bad(what: str) -> DecodeError:
    return DecodeError(f"client state: {what}")


def _decode(config: ProtocolConfig, client_id: int, record: object) -> ClientSnapshot:
    if not isinstance(record, list) or len(record) != _FIELDS or record[0] != _TAG:
        raise _bad("not a client state")
    if record[1] != STATE_VERSION or isinstance(record[1], bool):
        raise _bad(f"unsupported version {record[1]!r}")
    if record[2] != config.session_id:
        raise _bad("a state of another session")
    if record[3] != client_id or isinstance(record[3], bool):
        raise _bad("a state of another client")
    if record[4] != config_digest(config):
        raise _bad("a state of another configuration of this session")
    if not isinstance(record[5], str) or record[5] not in ClientState.__members__:
        raise _bad("unknown state")
    if record[16] != []:
        raise _bad("unknown extensions")
    state = ClientState[record[5]]
    neighbours = config.neighbours_of(client_id)
    peers = _peers(record[12], neighbours, state in _KNOWS_PEERS)
    if state in _KNOWS_PEERS and len(peers) + 1 < config.threshold:
        raise _bad("fewer peers than the threshold needs")
    sharers = _ids(record[13], "sharers", set(peers) if state in _MASKED else set())
    unreadable = _ids(record[14], "unreadable", sharers)
    snapshot = ClientSnapshot(
        state=state,
        input_vector=_input(config, record[6], state in _HOLDS_INPUT),
        cipher_key=_secret(record[7], "cipher key", state in _HOLDS_KEYS),
        mask_key=_secret(record[8], "mask key", state in _HOLDS_KEYS),
        self_seed=_secret(record[9], "self-mask seed", state in _HOLDS_KEYS),
        channel_keys=_channel_keys(
            record[10], set(peers) if state is ClientState.AWAIT_MASKED_INPUT else set()
        ),
        bundles=_bundles(
            config, client_id, record[11], _dealers(state, client_id, sharers, unreadable)
        ),
        peers=peers,
        sharers=frozenset(sharers),
        unreadable=frozenset(unreadable),
        survivors=_survivors(config, client_id, record[15], state),
    )
    if snapshot.mask_key is not None and snapshot.mask_key != clamp_scalar(snapshot.mask_key):
        raise _bad("the mask key is not clamped")
    return snapshot


def _ids(value: object, what: str, allowed: set[int]) -> set[int]:
    """A strictly increasing list of ids, all in ``allowed``."""
    if not isinstance(value, list):
        raise _bad(f"{what} must be a list")
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool) or item not in allowed:
            raise _bad(f"{what} holds an unexpected id")
    if any(a >= b for a, b in itertools.pairwise(value)):
        raise _bad(f"{what} must be strictly increasing")
    return set(value)


def _pairs(value: object, what: str, expected: set[int]) -> list[tuple[int, object]]:
    """``[[id, item], ...]`` with ids strictly increasing and exactly ``expected``."""
    if not isinstance(value, list) or any(
        not isinstance(pair, list) or len(pair) != 2 for pair in value
    ):
        raise _bad(f"{what} must be a list of pairs")
    if _ids([pair[0] for pair in value], what, expected) != expected:
        raise _bad(f"{what} are missing for some peers")
    return [(pair[0], pair[1]) for pair in value]


def _secret(value: object, what: str, present: bool) -> bytes | None:
    if not present:
        if value is not None:
            raise _bad(f"a {what} in a state that has wiped it")
        return None
    if not isinstance(value, bytes) or len(value) != _SECRET_BYTES:
        raise _bad(f"the {what} must be {_SECRET_BYTES} bytes")
    return value


def _input(config: ProtocolConfig, value: object, present: bool) -> np.ndarray | None:
    if not present:
        if value is not None:
            raise _bad("an input in a state that has used it")
        return None
    if not isinstance(value, bytes):
        raise _bad("the input must be bytes")
    try:
        return unpack(value, config.bits, config.vector_length)
    except DecodeError:
        raise _bad("the input does not decode (size or stray bits)") from None


def _channel_keys(value: object, expected: set[int]) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for peer, key in _pairs(value, "channel keys", expected):
        if not isinstance(key, bytes) or len(key) != _SECRET_BYTES:
            raise _bad(f"channel keys must be {_SECRET_BYTES} bytes")
        keys[peer] = key
    return keys


def _dealers(
    state: ClientState, client_id: int, sharers: set[int], unreadable: set[int]
) -> set[int]:
    """Whose shares the client holds: its own once it shared, its readable sharers' once
    it masked."""
    if state is ClientState.AWAIT_MASKED_INPUT:
        return {client_id}
    if state in _MASKED:
        return {client_id} | (sharers - unreadable)
    return set()


def _bundles(
    config: ProtocolConfig, client_id: int, value: object, dealers: set[int]
) -> dict[int, ShareBundle]:
    bundles: dict[int, ShareBundle] = {}
    for dealer, blob in _pairs(value, "share bundles", dealers):
        if not isinstance(blob, bytes):
            raise _bad("a share bundle must be bytes")
        try:
            bundles[dealer] = decode_share_bundle(
                blob,
                session_id=config.session_id,
                dealer=dealer,
                holder=client_id,
                threshold=config.threshold,
            )
        except DecodeError:
            raise _bad(f"the share bundle of {dealer} does not decode") from None
    return bundles


def _peers(value: object, neighbours: frozenset[int], present: bool) -> dict[int, PeerKeys]:
    if not isinstance(value, list) or (value and not present):
        raise _bad("peer keys in a state that has none")
    if any(not isinstance(item, list) or len(item) != 5 for item in value):
        raise _bad("peer keys must be arrays of 5")
    peers = [PeerKeys.from_wire(item, None) for item in value]
    _ids([peer.client_id for peer in peers], "peers", set(neighbours))
    keys = [key for peer in peers for key in (peer.cipher_public_key, peer.mask_public_key)]
    if len(set(keys)) != len(keys) or any(len(key) != KEY_BYTES for key in keys):
        raise _bad("peer keys must be distinct")
    return {peer.client_id: peer for peer in peers}


def _survivors(
    config: ProtocolConfig, client_id: int, value: object, state: ClientState
) -> frozenset[int] | None:
    """U3 is known exactly in an active-mode client waiting for Unmasking."""
    if not (config.mode == ACTIVE and state is ClientState.AWAIT_UNMASKING):
        if value is not None:
            raise _bad("a survivor set in a state that has none")
        return None
    survivors = _ids(value, "survivors", set(config.client_set))
    if client_id not in survivors:
        raise _bad("the survivor set does not hold this client")
    return frozenset(survivors)
