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
nil, mask key | nil, self-mask seed | nil, nonce commitment | nil, [[dealer, channel
secret]...], [[dealer, held shares]...], [peer keys...], disputed, sharers, survivors |
nil, dropped, extensions (empty)]``, id lists strictly increasing; held shares are the two
box keys then the two compact shares (self-mask, mask key: 16 + 16 + 35 + 35 bytes). The
array is followed by a 32-byte SHA-256 checksum of it: a state truncated or garbled in
storage (a flipped bit of the input would otherwise restore and give a wrong sum) is
refused. The checksum is not a MAC: whoever can write the client's secret storage is the
client.
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

from secagg.errors import ConfigurationError, DecodeError, ShareError
from secagg.packing import pack, unpack
from secagg.protocols.bonawitz.bundles import (
    BOX_KEY_BYTES,
    BoxKeys,
    SecretKind,
    ShareBundle,
    clamp_scalar,
    derive_sharing_id,
)
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import KEY_BYTES, PeerKeys
from secagg.protocols.bonawitz.rounds import ClientState
from secagg.secret import SecretHolder
from secagg.shamir import LIMB_SHARE_BYTES, Share, pack_limb_shares, unpack_limb_shares

__all__ = ["STATE_VERSION", "ClientSnapshot", "HeldShares", "decode_state", "encode_state"]

STATE_VERSION = 3
"""Version 3: wire version 3 (held shares with their box keys, ShareCheck and the waves).
Version 2 held version-2 share bundles."""
_TAG = "secagg.protocols.bonawitz.client"
_SECRET_BYTES = 32  # X25519 private keys, the self-mask seed, channel secrets
_CHECKSUM_LABEL = b"secagg/v1/client-state\x00"
_CHECKSUM_BYTES = 32
_FIELDS = 19
_HELD_BYTES = 2 * BOX_KEY_BYTES + 2 * LIMB_SHARE_BYTES


_S = ClientState
_BEFORE_MASKING = frozenset(
    {_S.AWAIT_SHARE_KEYS, _S.AWAIT_SHARE_CHECK, _S.AWAIT_MASKED_INPUT, _S.DISPUTED}
)
_HOLDS_INPUT = _BEFORE_MASKING | {_S.AWAIT_ADVERTISE_KEYS}
_HOLDS_CIPHER_KEY = frozenset({_S.AWAIT_SHARE_KEYS, _S.AWAIT_SHARE_CHECK})
_HOLDS_MASK_KEY = _BEFORE_MASKING | {_S.AWAIT_CONSISTENCY_CHECK, _S.AWAIT_UNMASKING, _S.UNMASKED}
_CHECKED = frozenset({_S.AWAIT_MASKED_INPUT, _S.DISPUTED})
_MASKED = frozenset({_S.AWAIT_CONSISTENCY_CHECK, _S.AWAIT_UNMASKING, _S.UNMASKED})
_KNOWS_PEERS = _CHECKED | _MASKED | {_S.AWAIT_SHARE_CHECK}


@dataclass(frozen=True, repr=False)
class HeldShares(SecretHolder, export="encode_state() / decode_state()"):
    """What a holder keeps of one dealing: its two shares and the two box keys (revealed
    with a share, so that the server can open the box it came in). Secret: no repr, no
    pickle."""

    bundle: ShareBundle
    keys: BoxKeys

    def __repr__(self) -> str:
        return f"HeldShares(dealer={self.bundle.dealer})"



@dataclass(frozen=True, repr=False)
class ClientSnapshot(SecretHolder, export="encode_state() / decode_state()"):
    """A client's state and exactly the values it needs there. Secret: no repr of values,
    no pickle.

    ``cipher_key`` and ``mask_key`` are X25519 private keys, ``commitment`` the server's
    nonce commitment of round 0, ``channel_secrets`` the raw X25519 secrets with each
    dealer (itself included) between ShareKeys and ShareCheck, ``held`` the shares and box
    keys this client holds (dealer -> :class:`HeldShares`), ``peers`` the advertisements
    it accepted (U1), ``disputed`` the dealers whose self-mask box key it revealed in a
    dispute, ``sharers`` the peers it masked with, ``survivors`` the signed U3 (active
    mode, from the consistency check), ``dropped`` the owners whose mask-key shares it
    revealed in Unmasking.
    """

    state: ClientState
    input_vector: np.ndarray | None = None
    cipher_key: bytes | None = None
    mask_key: bytes | None = None
    self_seed: bytes | None = None
    commitment: bytes | None = None
    channel_secrets: Mapping[int, bytes] = field(default_factory=dict)
    held: Mapping[int, HeldShares] = field(default_factory=dict)
    peers: Mapping[int, PeerKeys] = field(default_factory=dict)
    disputed: frozenset[int] = frozenset()
    sharers: frozenset[int] = frozenset()
    survivors: frozenset[int] | None = None
    dropped: frozenset[int] = frozenset()

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


def _held_blob(held: HeldShares) -> bytes:
    return b"".join(
        (
            held.keys.self_mask,
            held.keys.mask_key,
            pack_limb_shares(held.bundle.self_mask_share.values),
            pack_limb_shares(held.bundle.key_share.values),
        )
    )


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
        snapshot.commitment,
        [[d, snapshot.channel_secrets[d]] for d in sorted(snapshot.channel_secrets)],
        [[d, _held_blob(snapshot.held[d])] for d in sorted(snapshot.held)],
        [snapshot.peers[peer].to_wire() for peer in sorted(snapshot.peers)],
        sorted(snapshot.disputed),
        sorted(snapshot.sharers),
        None if snapshot.survivors is None else sorted(snapshot.survivors),
        sorted(snapshot.dropped),
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
    # Exact types (1.0 and True are not 1) and texts that never echo the stored bytes.
    if not isinstance(record, list) or len(record) != _FIELDS or record[0] != _TAG:
        raise _bad("not a client state")
    if type(record[1]) is not int or record[1] != STATE_VERSION:
        raise _bad(f"unsupported version (this library reads version {STATE_VERSION})")
    if type(record[2]) is not bytes or record[2] != config.session_id:
        raise _bad("a state of another session")
    if type(record[3]) is not int or record[3] != client_id:
        raise _bad("a state of another client")
    if type(record[4]) is not bytes:
        raise _bad("a state of another configuration of this session")
    if record[4] != config_digest(config):
        raise _bad("a state of another configuration of this session")
    if not isinstance(record[5], str) or record[5] not in ClientState.__members__:
        raise _bad("unknown state")
    if record[18] != []:
        raise _bad("unknown extensions")
    state = ClientState[record[5]]
    neighbours = config.neighbours_of(client_id)
    peers = _peers(record[13], neighbours, state in _KNOWS_PEERS)
    if state in _KNOWS_PEERS and len(peers) + 1 < config.threshold:
        raise _bad("fewer peers than the threshold needs")
    dealers = set(peers) | {client_id}
    sharers = _ids(record[15], "sharers", set(peers) if state in _MASKED else set())
    disputed = _ids(
        record[14], "disputed", dealers if state in _MASKED or state is _S.DISPUTED else set()
    )
    if (state is _S.DISPUTED) != bool(disputed) and state in _CHECKED:
        raise _bad("disputed dealers in a state that has none, or none after a dispute")
    dropped = _ids(record[17], "dropped", sharers if state is _S.UNMASKED else set())
    if state is _S.UNMASKED and not dropped:
        raise _bad("an unmasked client that revealed no mask-key share is done")
    held = _held(config, client_id, record[12], state, dealers, sharers)
    if disputed - set(held) and state in _CHECKED:
        raise _bad("a disputed dealer whose shares are not held")
    snapshot = ClientSnapshot(
        state=state,
        input_vector=_input(config, record[6], state in _HOLDS_INPUT),
        cipher_key=_secret(record[7], "cipher key", state in _HOLDS_CIPHER_KEY),
        mask_key=_secret(record[8], "mask key", state in _HOLDS_MASK_KEY),
        self_seed=_secret(record[9], "self-mask seed", state in _BEFORE_MASKING),
        commitment=_secret(record[10], "nonce commitment", state in _HOLDS_CIPHER_KEY),
        channel_secrets=_channel_secrets(
            record[11], dealers if state is _S.AWAIT_SHARE_CHECK else set()
        ),
        held=held,
        peers=peers,
        disputed=frozenset(disputed),
        sharers=frozenset(sharers),
        survivors=_survivors(config, client_id, record[16], state),
        dropped=frozenset(dropped),
    )
    if snapshot.mask_key is not None and snapshot.mask_key != clamp_scalar(snapshot.mask_key):
        raise _bad("the mask key is not clamped")
    return snapshot


def _ids(value: object, what: str, allowed: set[int]) -> set[int]:
    """A strictly increasing list of ids, all in ``allowed``."""
    if not isinstance(value, list):
        raise _bad(f"{what} must be a list")
    for item in value:
        if type(item) is not int or item not in allowed:
            raise _bad(f"{what} holds an unexpected id")
    if any(a >= b for a, b in itertools.pairwise(value)):
        raise _bad(f"{what} must be strictly increasing")
    return set(value)


def _pairs(value: object, what: str, allowed: set[int]) -> list[tuple[int, object]]:
    """``[[id, item], ...]`` with ids strictly increasing, all in ``allowed``."""
    if not isinstance(value, list) or any(
        not isinstance(pair, list) or len(pair) != 2 for pair in value
    ):
        raise _bad(f"{what} must be a list of pairs")
    _ids([pair[0] for pair in value], what, allowed)
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


def _channel_secrets(value: object, expected: set[int]) -> dict[int, bytes]:
    secrets: dict[int, bytes] = {}
    pairs = _pairs(value, "channel secrets", expected)
    if {peer for peer, _ in pairs} != expected:
        raise _bad("channel secrets are missing for some dealers")
    for peer, secret in pairs:
        if not isinstance(secret, bytes) or len(secret) != _SECRET_BYTES:
            raise _bad(f"channel secrets must be {_SECRET_BYTES} bytes")
        secrets[peer] = secret
    return secrets


def _held(
    config: ProtocolConfig,
    client_id: int,
    value: object,
    state: ClientState,
    dealers: set[int],
    sharers: set[int],
) -> dict[int, HeldShares]:
    """Whose shares the client holds: after ShareCheck, dealers whose boxes opened (its
    own among them); after masking, exactly its own and its sharers'; none afterwards."""
    if state in _CHECKED:
        allowed = dealers
    elif state in (_S.AWAIT_CONSISTENCY_CHECK, _S.AWAIT_UNMASKING):
        allowed = sharers | {client_id}
    else:
        allowed = set()
    pairs = _pairs(value, "held shares", allowed)
    held_ids = {dealer for dealer, _ in pairs}
    if allowed and (client_id not in held_ids or (state in _MASKED and held_ids != allowed)):
        raise _bad("held shares are missing for some dealers")
    held: dict[int, HeldShares] = {}
    for dealer, blob in pairs:
        if not isinstance(blob, bytes) or len(blob) != _HELD_BYTES:
            raise _bad(f"held shares must be {_HELD_BYTES} bytes")
        keys = BoxKeys(blob[:BOX_KEY_BYTES], blob[BOX_KEY_BYTES : 2 * BOX_KEY_BYTES])
        at = 2 * BOX_KEY_BYTES
        try:
            self_mask = unpack_limb_shares(blob[at : at + LIMB_SHARE_BYTES])
            key = unpack_limb_shares(blob[at + LIMB_SHARE_BYTES :])
            bundle = ShareBundle(
                dealer,
                client_id,
                Share(
                    client_id,
                    config.threshold,
                    _sharing(config, dealer, SecretKind.MASK_KEY),
                    key,
                ),
                Share(
                    client_id,
                    config.threshold,
                    _sharing(config, dealer, SecretKind.SELF_MASK),
                    self_mask,
                ),
            )
        except (DecodeError, ShareError):
            raise _bad(f"the shares of {dealer} do not decode") from None
        held[dealer] = HeldShares(bundle, keys)
    return held


def _sharing(config: ProtocolConfig, dealer: int, kind: SecretKind) -> bytes:
    return derive_sharing_id(config.session_id, dealer, kind)


def _peers(value: object, neighbours: frozenset[int], present: bool) -> dict[int, PeerKeys]:
    if not isinstance(value, list) or (value and not present):
        raise _bad("peer keys in a state that has none")
    if any(not isinstance(item, list) or len(item) != 7 for item in value):
        raise _bad("peer keys must be arrays of 7")
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
