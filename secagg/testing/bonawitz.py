"""The harness's view of the Bonawitz / SecAgg+ protocol (:mod:`secagg.protocols`).

:class:`BonawitzTarget` drives :class:`~secagg.protocols.bonawitz.client.Client` and
:class:`~secagg.protocols.bonawitz.server.Server` and states their promises:

* the outcome (:func:`predict_outcome`), an independent restatement of the rules in the
  server's docstring: a client whose neighbourhood (itself included) keeps fewer than t
  live members is pruned like a dropout before masking; the session aborts exactly when
  fewer than t clients remain in a round or a needed secret cannot gather t shares; else
  the sum holds exactly the clients whose masked input arrived (U3);
* privacy: an Unmasking response discloses shares of b_v (owner v, ``SELF_MASK``) and of
  s_v^SK (``MASK_KEY``); no client may disclose both for one owner, and the server must
  never gather t holders' shares of both, whenever ``2t > k + 1`` (always for an honest
  server, and the condition under which the threshold rules promise it against a
  malicious one);
* the server's view of a masked input is the unpacked MaskedInput payload.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from secagg.errors import ConfigurationError, DecodeError
from secagg.packing import unpack
from secagg.protocols.base import Message
from secagg.protocols.bonawitz.client import Client, generate_identities
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_NAMES,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
    AdvertiseKeys,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    MaskedInput,
    MaskedInputRequest,
    RevealedShare,
    SealedShares,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    decode_message,
)
from secagg.protocols.bonawitz.server import Server
from secagg.ring import packed_size
from secagg.shamir import PRIME, Share, pack_limb_shares, unpack_limb_shares
from secagg.signing import SigningKey
from secagg.testing.model import ClientFault, DropoutModel, Quorum, ServerAttack
from secagg.testing.target import ConfigTarget, Prediction

__all__ = ["MASK_KEY", "SELF_MASK", "BonawitzTarget", "dropout_model", "predict_outcome"]

SELF_MASK = "self-mask seed b"
MASK_KEY = "mask key s^SK"


def _prune(config: ProtocolConfig, live: set[int]) -> set[int]:
    """Drop, to a fixed point, the clients with fewer than t live holders."""
    changed = True
    while changed:
        changed = False
        for client in sorted(live):
            if len(config.holders_of(client) & live) < config.threshold:
                live.discard(client)
                changed = True
    return live


def predict_outcome(
    config: ProtocolConfig,
    vanished: Mapping[int, str],
    lost: AbstractSet[tuple[int, str]] = frozenset(),
) -> Prediction:
    """The outcome the protocol promises when client ``c`` vanished before sending its
    message of round ``vanished[c]`` and the answers ``(c, round)`` in ``lost`` never
    arrived (round names of :data:`ROUND_NAMES`). The server stops asking a client whose
    answer it missed, so a lost answer counts as vanishing in its round.

    Exact for the complete graph and for SecAgg+: ``Prediction(True)`` when the session
    must abort, else ``Prediction(False, U3)``. Raises ConfigurationError on an unknown
    round name.
    """
    rank = {name: i for i, name in enumerate(ROUND_NAMES)}
    unknown = ({r for _, r in lost} | set(vanished.values())) - set(rank)
    if unknown:
        raise ConfigurationError(f"unknown rounds {sorted(unknown)}")
    dropped = dict(vanished)
    for client, round_name in lost:
        if client not in dropped or rank[round_name] < rank[dropped[client]]:
            dropped[client] = round_name
    t, active = config.threshold, config.mode == ACTIVE

    def gone(round_name: str) -> set[int]:
        return {c for c, r in dropped.items() if r == round_name}

    def holders(client: int, among: set[int]) -> int:
        return len(config.holders_of(client) & among)

    u1 = _prune(config, set(config.clients) - gone(ROUND_ADVERTISE_KEYS))
    u2 = _prune(config, u1 - gone(ROUND_SHARE_KEYS)) if len(u1) >= t else set()
    u3 = u2 - gone(ROUND_MASKED_INPUT)
    if min(len(u1), len(u2), len(u3)) < t:
        return Prediction(True)
    candidates = u3
    if active:
        asked = {c for c in u3 if holders(c, u3) >= t}
        candidates = asked - gone(ROUND_CONSISTENCY_CHECK)
        if len(candidates) < t:
            return Prediction(True)
    responders = {
        c for c in candidates if holders(c, u3) >= t and (not active or holders(c, candidates) >= t)
    }
    answering = responders - gone(ROUND_UNMASKING)
    if any(holders(owner, answering) < t for owner in u2):
        return Prediction(True)
    return Prediction(False, frozenset(u3))


def dropout_model(config: ProtocolConfig) -> DropoutModel:
    """Rounds of ``config``'s mode (ConsistencyCheck in active mode only), every round needs
    t clients, a client's neighbourhood is its graph neighbours."""
    rounds = tuple(r for r in ROUND_NAMES if config.mode == ACTIVE or r != ROUND_CONSISTENCY_CHECK)
    everyone = Quorum(config.client_set, config.threshold)
    return DropoutModel(
        clients=config.clients,
        rounds=rounds,
        input_round=ROUND_MASKED_INPUT,
        quorums={r: everyone for r in rounds},
        neighbourhoods={c: config.neighbours_of(c) for c in config.clients},
    )


class BonawitzTarget(ConfigTarget):
    """One Bonawitz / SecAgg+ session under test (a ProtocolUnderTest).

    In active mode ``identities`` are the clients' Ed25519 keys; without them the target
    registers fresh test identities, so ``self.config`` then differs from ``config`` in its
    verify keys only. ``threads`` goes to the server's mask regeneration. Raises
    ConfigurationError on a non-ProtocolConfig or identities that do not match.
    """

    name = "bonawitz"
    config: ProtocolConfig

    def __init__(
        self,
        config: ProtocolConfig,
        identities: Mapping[int, SigningKey] | None = None,
        *,
        threads: int | None = 1,
    ) -> None:
        if not isinstance(config, ProtocolConfig):
            raise ConfigurationError("BonawitzTarget needs a ProtocolConfig")
        if config.mode == ACTIVE and identities is None:
            identities = generate_identities(config.clients)
            verify_keys = {c: key.verify_key for c, key in identities.items()}
            config = dataclasses.replace(config, identities=verify_keys)
        self.config = config
        self.identities = dict(identities) if identities is not None else None
        self._threads = threads

    @property
    def dropout_model(self) -> DropoutModel:
        return dropout_model(self.config)

    def make_server(self) -> Server:
        return Server(self.config, threads=self._threads)

    def make_client(self, client_id: int, vector: np.ndarray) -> Client:
        identity = self.identities[client_id] if self.identities is not None else None
        return Client(self.config, client_id, vector, identity)

    def decode(self, data: bytes, sender: int) -> Message:
        return decode_message(data, sender=sender)

    def predict(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> Prediction:
        return predict_outcome(self.config, vanished, lost)

    def reveals(self, message: Message) -> Sequence[tuple[int, str]] | None:
        if not isinstance(message, UnmaskingResponse):
            return None
        return [(item.owner, SELF_MASK) for item in message.self_mask_shares] + [
            (item.owner, MASK_KEY) for item in message.key_shares
        ]

    def reveal_threshold(self, owner: int, *, attacked: bool) -> int | None:
        t = self.config.threshold
        if not attacked or 2 * t > len(self.config.holders_of(owner)):
            return t
        return None  # semi-honest SecAgg+ with 2t <= k + 1 trusts the server here

    def masked_view(self, message: Message) -> np.ndarray | None:
        if not isinstance(message, MaskedInput):
            return None
        return unpack(message.payload, message.bits, message.length)

    # -- a malicious server ------------------------------------------------------------

    def tamper_request(self, message: Message, attack: ServerAttack) -> list[Message] | None:
        """The Bonawitz-specific server attacks (see :data:`SERVER_ATTACK_KINDS`)."""
        kind, me = attack.kind, message.recipient
        if kind in ("both_shares", "swap_lists") and isinstance(message, UnmaskingRequest):
            victim = _pick(attack.victim, [c for c in message.survivors if c != me])
            if victim is None:
                return None
            if kind == "both_shares":
                dropped = (*message.dropped, victim)
                return [dataclasses.replace(message, dropped=dropped)]
            survivors = tuple(c for c in message.survivors if c != victim)
            dropped = (*message.dropped, victim)
            return [dataclasses.replace(message, survivors=survivors, dropped=dropped)]
        if kind == "split_view" and isinstance(message, ConsistencyCheckRequest):
            victim = _pick(attack.victim, [c for c in message.survivors if c != me])
            if victim is None:
                return None
            survivors = tuple(c for c in message.survivors if c != victim)
            return [dataclasses.replace(message, survivors=survivors)]
        if kind in ("garbled_bundle", "withhold_bundle") and isinstance(
            message, MaskedInputRequest
        ):
            peers = [item.peer for item in message.sealed_shares]
            victim = _pick(attack.victim, peers)
            if victim is None:
                return None
            kept: list[SealedShares] = []
            for item in message.sealed_shares:
                if item.peer != victim:
                    kept.append(item)
                elif kind == "garbled_bundle":
                    flipped = bytes([item.ciphertext[-1] ^ 1])
                    kept.append(SealedShares(item.peer, item.ciphertext[:-1] + flipped))
            return [dataclasses.replace(message, sealed_shares=tuple(kept))]
        if kind == "foreign_peer" and isinstance(message, ShareKeysRequest) and message.peers:
            impostor = message.peers[0]._replace(client_id=me)
            return [dataclasses.replace(message, peers=(*message.peers[1:], impostor))]
        return None

    # -- a misbehaving client ----------------------------------------------------------

    def tamper_answer(self, message: Message, fault: ClientFault) -> Message | None:
        """The Bonawitz-specific client faults: ``garbled_share`` / ``junk_share`` (the
        first revealed share off its polynomial / zeroed), ``bad_tag`` (the first sealed
        bundle's tag flipped), ``missing_bundle`` (the first bundle left out),
        ``wrong_length`` (the masked vector one element longer), ``bad_signature`` (an
        all-zero signature, active mode only). ``None`` where the fault does not apply."""
        kind = fault.kind
        if isinstance(message, ShareKeys) and message.sealed_shares:
            return _tampered_bundles(message, kind)
        if kind == "wrong_length" and isinstance(message, MaskedInput):
            # Zero bytes keep the padding bits clear: well formed, one element too long.
            length = message.length + 1
            padding = bytes(packed_size(length, message.bits) - len(message.payload))
            return dataclasses.replace(message, length=length, payload=message.payload + padding)
        if (
            kind == "bad_signature"
            and self.config.mode == ACTIVE
            and isinstance(message, (AdvertiseKeys, ConsistencyCheck))
        ):
            return dataclasses.replace(message, signature=bytes(64))
        if kind not in ("garbled_share", "junk_share") or not isinstance(
            message, UnmaskingResponse
        ):
            return None
        field = "key_shares" if message.key_shares else "self_mask_shares"
        shares: tuple[RevealedShare, ...] = getattr(message, field)
        if not shares:
            return None
        first = shares[0]
        garbled = (
            _off_polynomial(first.share) if kind == "garbled_share" else bytes(len(first.share))
        )
        replaced = (RevealedShare(first.owner, garbled), *shares[1:])
        if field == "key_shares":
            return dataclasses.replace(message, key_shares=replaced)
        return dataclasses.replace(message, self_mask_shares=replaced)


def _tampered_bundles(message: ShareKeys, kind: str) -> ShareKeys | None:
    """``bad_tag``: the first bundle's last byte flipped; ``missing_bundle``: it is gone."""
    first, rest = message.sealed_shares[0], message.sealed_shares[1:]
    if kind == "missing_bundle":
        return dataclasses.replace(message, sealed_shares=rest)
    if kind == "bad_tag":
        flipped = first.ciphertext[:-1] + bytes([first.ciphertext[-1] ^ 1])
        return dataclasses.replace(
            message, sealed_shares=(SealedShares(first.peer, flipped), *rest)
        )
    return None


def _off_polynomial(share: bytes) -> bytes:
    """``share`` (compact limb form or full Share bytes) with its first limb moved by one:
    well formed, off the polynomial. Bytes of neither form get their first bit flipped."""
    try:
        values = unpack_limb_shares(share).astype(np.int64)
    except DecodeError:
        pass
    else:
        values[0] = (values[0] + 1) % PRIME
        return pack_limb_shares(values)
    try:
        parsed = Share.from_bytes(share)
    except DecodeError:
        return bytes([share[0] ^ 1]) + share[1:] if share else b"\x01"
    values = parsed.values.astype(np.int64)
    values[0] = (values[0] + 1) % PRIME
    return dataclasses.replace(parsed, values=values).to_bytes()


def _pick(preferred: int | None, candidates: Sequence[int]) -> int | None:
    if not candidates:
        return None
    return preferred if preferred in candidates else min(candidates)
