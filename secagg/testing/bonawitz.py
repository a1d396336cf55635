"""The harness's view of the Bonawitz / SecAgg+ protocol (:mod:`secagg.protocols`).

:class:`BonawitzTarget` drives :class:`~secagg.protocols.bonawitz.client.Client` and
:class:`~secagg.protocols.bonawitz.server.Server` and states their promises:

* the outcome (:func:`predict_outcome`, and :func:`predict_faults` with misbehaving
  clients), an independent restatement of the rules in the server's docstring: a client
  whose neighbourhood (itself included) keeps fewer than t live members is pruned like a
  dropout before masking; a client whose fault ShareCheck exposes is left out before
  masking; the session aborts exactly when fewer than t clients remain in a round, a
  needed secret cannot gather t shares, or (the one remaining case) a dropped client's
  dealt mask key is wrong and a survivor that masked with it does not answer Unmasking;
  else the sum holds exactly the clients whose masked input arrived (U3), and every fault
  that shows is blamed on its client;
* privacy: an Unmasking response discloses shares of b_v (owner v, ``SELF_MASK``) and of
  s_v^SK (``MASK_KEY``); a dispute answer discloses b_v shares and a fallback answer the
  pairwise secret with a dropped v (``MASK_KEY``'s side); no client may disclose both kinds
  for one owner, and the server must never gather t holders' shares of both, whenever
  ``2t > k + 1`` (always for an honest server, and the condition under which the
  threshold rules promise it against a malicious one). A ShareCheck complaint discloses
  the pair's channel secret: only for a box that did not open (with an honest server, the
  dealer's fault), so it is not counted;
* the server's view of a masked input is the unpacked MaskedInput payload.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from secagg.errors import ConfigurationError, DecodeError
from secagg.packing import unpack
from secagg.protocols.base import Message
from secagg.protocols.bonawitz.bundles import DealtShares, clamp_scalar
from secagg.protocols.bonawitz.client import Client, generate_identities
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.dealing import pack_checks, unpack_checks
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_NAMES,
    ROUND_SHARE_CHECK,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    Complaint,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DealtBoxes,
    DisputeResponse,
    FallbackResponse,
    MaskedInput,
    RevealedShare,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    box_signature_payload,
    decode_message,
    key_proof_payload,
)
from secagg.protocols.bonawitz.server import Server
from secagg.ring import packed_size
from secagg.shamir import PRIME, Share, pack_limb_shares, unpack_limb_shares
from secagg.signing import SigningKey
from secagg.testing.model import (
    EXCLUDED_FAULTS,
    ClientFault,
    DropoutModel,
    Quorum,
    ServerAttack,
)
from secagg.testing.target import ConfigTarget, Prediction

__all__ = [
    "MASK_KEY",
    "SELF_MASK",
    "BonawitzTarget",
    "FaultyClient",
    "dropout_model",
    "predict_faults",
    "predict_outcome",
]

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
    return predict_faults(config, vanished, lost, ())


def predict_faults(
    config: ProtocolConfig,
    vanished: Mapping[int, str],
    lost: AbstractSet[tuple[int, str]],
    faults: Sequence[ClientFault],
) -> Prediction:
    """:func:`predict_outcome` with the client ``faults`` that were injected (their
    Bonawitz-specific effects, one fault per client): who ShareCheck leaves out, who must be
    blamed when the session completes (:attr:`Prediction.blamed`), and which faulty client
    stays in the sum with a contribution of its own choosing (:attr:`Prediction.free`: a
    dealer whose inconsistent self-mask shares no check could locate, rebuilt from exactly
    t shares). Raises ConfigurationError on an unknown round name.
    """
    rank = {name: i for i, name in enumerate(ROUND_NAMES)}
    unknown = ({r for _, r in lost} | set(vanished.values())) - set(rank)
    if unknown:
        raise ConfigurationError(f"unknown rounds {sorted(unknown)}")
    dropped = dict(vanished)
    for client, round_name in lost:
        if client not in dropped or rank[round_name] < rank[dropped[client]]:
            dropped[client] = round_name
    kinds = {fault.client: fault.kind for fault in faults}
    t, active = config.threshold, config.mode == ACTIVE
    aborts = Prediction(True)

    def gone(round_name: str) -> set[int]:
        return {c for c, r in dropped.items() if r == round_name}

    def holders(client: int, among: set[int]) -> int:
        return len(config.holders_of(client) & among)

    def faulty(kind: str) -> list[int]:
        return sorted(c for c, k in kinds.items() if k == kind)

    u1 = _prune(config, set(config.clients) - gone(ROUND_ADVERTISE_KEYS))
    u2 = _prune(config, u1 - gone(ROUND_SHARE_KEYS)) if len(u1) >= t else set()
    if min(len(u1), len(u2)) < t:
        return aborts
    answered = u2 - gone(ROUND_SHARE_CHECK)
    blamed: set[int] = set()
    out: set[int] = set()  # convicted in ShareCheck
    for client, kind in kinds.items():
        if kind not in EXCLUDED_FAULTS or client not in u2:
            continue
        peers = config.neighbours_of(client)
        if kind == "bad_tag":
            first = min(peers & u1, default=None)
            exposed = first is not None and first in answered
        elif kind == "false_complaint":
            exposed = client in answered and bool(peers & u2)
        else:  # garbage_bundles, wrong_keys: every holder that answers complains
            exposed = bool(peers & answered) or (kind == "wrong_keys" and client in answered)
        if exposed:
            out.add(client)
            blamed.add(client)
    clean = answered - out
    for client in faulty("bad_check"):
        dealer = min(config.neighbours_of(client) & u2, default=None)
        if client in clean and dealer in clean and holders(dealer, clean) >= t + 2:
            out.add(client)
            blamed.add(client)
    unsettled: dict[int, int] = {}  # a dealer whose off share ShareCheck did not settle
    for client in faulty("inconsistent_shares"):
        victim = min(config.neighbours_of(client) & u1, default=None)
        if client not in clean or victim not in clean:
            continue  # its off share never reaches a check, nor the sum
        if holders(client, clean) >= t + 2:
            out.add(client)
            blamed.add(client)
        else:
            unsettled[client] = victim
    confirmed = _prune(config, answered - out)
    u3 = confirmed - gone(ROUND_MASKED_INPUT)
    if min(len(confirmed), len(u3)) < t:
        return aborts
    candidates = u3
    if active:
        asked = {c for c in u3 if holders(c, u3) >= t}
        candidates = asked - gone(ROUND_CONSISTENCY_CHECK)
        if len(candidates) < t:
            return aborts
    responders = {
        c for c in candidates if holders(c, u3) >= t and (not active or holders(c, candidates) >= t)
    }
    answering = responders - gone(ROUND_UNMASKING)
    if any(holders(owner, answering) < t for owner in confirmed):
        return aborts
    free: set[int] = set()
    # The fallback wave: survivors still in the session (their answer may be lost).
    reachable = responders - {c for c, r in vanished.items() if r == ROUND_UNMASKING}
    for client in faulty("wrong_dealt_key"):
        if client in confirmed - u3:
            if not config.neighbours_of(client) & u3 <= reachable:
                return aborts
            blamed.add(client)
    for client in faulty("wrong_commitment"):
        if client in u3:
            blamed.add(client)
    for client, victim in unsettled.items():
        shown = config.holders_of(client) & answering
        if client in u3 and victim in shown:
            blamed.add(client)
            if len(shown) == t:
                free.add(client)
    for client in faulty("garbled_share") + faulty("junk_share"):
        if client in answering:
            blamed.add(client)
    return Prediction(False, frozenset(u3), frozenset(blamed), frozenset(free))


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


class FaultyClient(Client):
    """A client that deals wrongly itself (``fault`` ``inconsistent_shares``: the first
    other holder's self-mask share moved off the polynomial; ``wrong_dealt_key``: shares
    of a fresh mask key instead of the advertised one). Everything else is honest."""

    def __init__(
        self,
        config: ProtocolConfig,
        client_id: int,
        input_vector: np.ndarray,
        identity: SigningKey | None,
        fault: str,
    ) -> None:
        super().__init__(config, client_id, input_vector, identity)
        self.fault = fault

    def _deal(
        self, mask_key: bytes, self_seed: bytes, holders: Sequence[int]
    ) -> dict[int, DealtShares]:
        if self.fault == "wrong_dealt_key":
            return super()._deal(clamp_scalar(os.urandom(32)), self_seed, holders)
        dealt = super()._deal(mask_key, self_seed, holders)
        others = [h for h in holders if h != self.client_id]
        if self.fault == "inconsistent_shares" and others:
            victim = others[0]
            plaintext = dealt[victim].self_mask
            limbs = unpack_limb_shares(plaintext[:35]).astype(np.int64)
            limbs[0] = (limbs[0] + 1) % PRIME
            dealt[victim] = DealtShares(
                pack_limb_shares(limbs) + plaintext[35:], dealt[victim].mask_key
            )
        return dealt


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
        # What the faults need to know of the session, seen as messages pass by: the
        # advertisements (reveals() sees every client message; duplicate_keys copies one),
        # the nonce commitment and each ShareCheckRequest's dealers (decode() sees every
        # server message), so that a tampered message can be re-signed or aimed.
        self._adverts: dict[int, AdvertiseKeys] = {}
        self._commitment: bytes | None = None
        self._check_dealers: dict[int, tuple[int, ...]] = {}

    @property
    def dropout_model(self) -> DropoutModel:
        return dropout_model(self.config)

    def make_server(self) -> Server:
        return Server(self.config, threads=self._threads)

    def _identity(self, client_id: int) -> SigningKey | None:
        return self.identities[client_id] if self.identities is not None else None

    def make_client(self, client_id: int, vector: np.ndarray) -> Client:
        return Client(self.config, client_id, vector, self._identity(client_id))

    def make_faulty_client(self, client_id: int, vector: np.ndarray, fault: ClientFault) -> Client:
        """A :class:`FaultyClient` for ``inconsistent_shares`` and ``wrong_dealt_key``."""
        return FaultyClient(self.config, client_id, vector, self._identity(client_id), fault.kind)

    def decode(self, data: bytes, sender: int) -> Message:
        message = decode_message(data, sender=sender)
        if isinstance(message, AdvertiseKeysRequest):
            self._commitment = message.nonce_commitment
        elif isinstance(message, ShareCheckRequest):
            self._check_dealers[message.recipient] = tuple(item.peer for item in message.boxes)
        return message

    def predict(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> Prediction:
        return predict_outcome(self.config, vanished, lost)

    def predict_faults(
        self,
        vanished: Mapping[int, str],
        lost: AbstractSet[tuple[int, str]],
        faults: Sequence[ClientFault],
    ) -> Prediction:
        return predict_faults(self.config, vanished, lost, faults)

    def reveals(self, message: Message) -> Sequence[tuple[int, str]] | None:
        if isinstance(message, AdvertiseKeys):
            self._adverts[message.sender] = message
        if isinstance(message, UnmaskingResponse):
            return [(item.owner, SELF_MASK) for item in message.self_mask_shares] + [
                (item.owner, MASK_KEY) for item in message.key_shares
            ]
        if isinstance(message, DisputeResponse):
            return [(item.owner, SELF_MASK) for item in message.keys]
        if isinstance(message, FallbackResponse):
            return [(item.owner, MASK_KEY) for item in message.secrets]
        return None

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
            message, ShareCheckRequest
        ):
            victim = _pick(attack.victim, [item.peer for item in message.boxes if item.peer != me])
            if victim is None:
                return None
            kept: list[DealtBoxes] = []
            for item in message.boxes:
                if item.peer != victim:
                    kept.append(item)
                elif kind == "garbled_bundle":
                    box = item.self_mask_box
                    flipped = box[:-1] + bytes([box[-1] ^ 1])
                    kept.append(item._replace(self_mask_box=flipped))
            return [dataclasses.replace(message, boxes=tuple(kept))]
        if kind == "foreign_peer" and isinstance(message, ShareKeysRequest) and message.peers:
            impostor = message.peers[0]._replace(client_id=me)
            return [dataclasses.replace(message, peers=(*message.peers[1:], impostor))]
        return None

    # -- a misbehaving client ----------------------------------------------------------

    def tamper_answer(self, message: Message, fault: ClientFault) -> Message | None:
        """The Bonawitz-specific client faults (the kinds of :mod:`secagg.testing.model`
        that change a message): ``garbled_share`` / ``junk_share`` (the first revealed
        share off its polynomial / zeroed), ``bad_tag`` (the tag of the first box for
        another holder flipped), ``garbage_bundles`` (every box for another holder zeroed,
        re-signed in active mode), ``missing_bundle`` (one holder's boxes left out),
        ``wrong_length`` (the masked vector one element longer), ``bad_signature`` (an
        all-zero identity signature, active mode only), ``bad_key_proof`` (a zeroed key
        proof), ``duplicate_keys`` (another client's keys and proofs), ``wrong_keys``
        (fresh proven keys it does not use), ``wrong_commitment`` (a commitment to another
        seed), ``false_complaint`` (a complaint about an honest dealer), ``bad_check`` (one
        dealer's check value moved). Active mode re-signs what the client signs. ``None``
        where the fault does not apply."""
        kind = fault.kind
        if isinstance(message, AdvertiseKeys):
            return self._tampered_advert(message, kind)
        if isinstance(message, ShareKeys) and message.boxes:
            return self._tampered_boxes(message, kind)
        if isinstance(message, ShareCheck):
            return self._tampered_check(message, kind)
        if kind == "wrong_length" and isinstance(message, MaskedInput):
            # Zero bytes keep the padding bits clear: well formed, one element too long.
            length = message.length + 1
            padding = bytes(packed_size(length, message.bits) - len(message.payload))
            return dataclasses.replace(message, length=length, payload=message.payload + padding)
        if (
            kind == "bad_signature"
            and self.config.mode == ACTIVE
            and isinstance(message, ConsistencyCheck)
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
        replaced = (first._replace(share=garbled), *shares[1:])
        if field == "key_shares":
            return dataclasses.replace(message, key_shares=replaced)
        return dataclasses.replace(message, self_mask_shares=replaced)

    def _signed(self, message: AdvertiseKeys) -> AdvertiseKeys:
        """``message`` signed again by its client's identity (active mode): a faulty client
        signs what it sends."""
        identity = self._identity(message.sender)
        if self.config.mode != ACTIVE or identity is None or self._commitment is None:
            return message
        payload = advertise_signature_payload(
            message.session_id, message.sender, self._commitment, message.cipher_public_key,
            message.mask_public_key, message.self_mask_commitment,
        )
        return dataclasses.replace(message, signature=identity.sign(payload))

    def _tampered_advert(self, message: AdvertiseKeys, kind: str) -> AdvertiseKeys | None:
        sid, me = message.session_id, message.sender
        if kind == "bad_signature":
            if self.config.mode != ACTIVE:
                return None
            return dataclasses.replace(message, signature=bytes(64))
        if kind == "bad_key_proof":
            return dataclasses.replace(message, mask_key_proof=bytes(64))
        if kind == "duplicate_keys":
            other = next((a for c, a in sorted(self._adverts.items()) if c != me), None)
            if other is None:
                return None
            return dataclasses.replace(
                message,
                cipher_public_key=other.cipher_public_key,
                mask_public_key=other.mask_public_key,
                cipher_key_proof=other.cipher_key_proof,
                mask_key_proof=other.mask_key_proof,
            )
        if kind == "wrong_keys":
            cipher, mask = SigningKey.generate(), SigningKey.generate()
            changed = dataclasses.replace(
                message,
                cipher_public_key=cipher.verify_key,
                mask_public_key=mask.verify_key,
                cipher_key_proof=cipher.sign(
                    key_proof_payload(sid, me, "cipher", cipher.verify_key)
                ),
                mask_key_proof=mask.sign(key_proof_payload(sid, me, "mask", mask.verify_key)),
            )
            return self._signed(changed)
        if kind == "wrong_commitment":
            return self._signed(dataclasses.replace(message, self_mask_commitment=os.urandom(32)))
        return None

    def _tampered_boxes(self, message: ShareKeys, kind: str) -> ShareKeys | None:
        """``bad_tag``: the first box for another holder has its tag flipped; ``garbage_bundles``:
        every box for another holder zeroed (re-signed in active mode, so that the holders
        complain); ``missing_bundle``: the boxes of the first other holder are gone."""
        me = message.sender
        others = [item for item in message.boxes if item.peer != me]
        if not others:
            return None
        first = others[0]
        if kind == "missing_bundle":
            return dataclasses.replace(
                message, boxes=tuple(i for i in message.boxes if i.peer != first.peer)
            )
        if kind == "bad_tag":
            box = first.self_mask_box
            flipped = first._replace(self_mask_box=box[:-1] + bytes([box[-1] ^ 1]))
            return dataclasses.replace(
                message,
                boxes=tuple(flipped if i.peer == first.peer else i for i in message.boxes),
            )
        if kind == "garbage_bundles":
            identity = self._identity(me)
            boxes = []
            for item in message.boxes:
                if item.peer != me:
                    b_box, s_box = bytes(len(item.self_mask_box)), bytes(len(item.mask_key_box))
                    signature = item.signature
                    if identity is not None and signature:
                        signature = identity.sign(
                            box_signature_payload(message.session_id, me, item.peer, b_box, s_box)
                        )
                    item = DealtBoxes(item.peer, b_box, s_box, signature)
                boxes.append(item)
            return dataclasses.replace(message, boxes=tuple(boxes))
        return None

    def _tampered_check(self, message: ShareCheck, kind: str) -> ShareCheck | None:
        """``false_complaint``: a complaint (a random point and proof) about the first
        other dealer, its check values zeroed; ``bad_check``: that dealer's first check
        value moved by one."""
        dealers = self._check_dealers.get(message.sender, ())
        others = [at for at, dealer in enumerate(dealers) if dealer != message.sender]
        if kind not in ("false_complaint", "bad_check") or not others:
            return None
        at = others[0]
        values = unpack_checks(message.checks, len(dealers))
        if kind == "bad_check":
            values[at, 0] = (values[at, 0] + 1) % PRIME
            return dataclasses.replace(message, checks=pack_checks(values))
        values[at] = 0
        complaint = Complaint(dealers[at], os.urandom(32), os.urandom(64))
        return dataclasses.replace(
            message, checks=pack_checks(values), complaints=(*message.complaints, complaint)
        )


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
