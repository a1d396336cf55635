"""A committee member's part of a threshold-CKKS session: key setup over sealed channels
and its one decryption.

Theory of operation. The member draws a fresh X25519 key pair for the session and
advertises its public half. Given its peers' public keys, it runs the scheme's
:meth:`~secagg.he.threshold_ckks.CommitteeMember.setup_message` and seals each peer's
:class:`~secagg.he.threshold_ckks.KeyShareDelivery` with AES-GCM (:mod:`secagg.channel`)
under the pair key ``agree(own, peer, purpose=SHARE_KEY)`` (:mod:`secagg.keys`), bound to
the session, the sender and the recipient: the server relays the boxes but never sees a
key share. Given the boxes addressed to it, the member opens and decodes each one and
complains about every dealer whose box does not open or does not decode as a delivery
from that dealer to it. Given the collective key (which names its contributors ``K``), it
sums the deliveries of ``K`` into its key share, if it holds all of them.

Secrets here: the X25519 private key, the pair keys, the opened deliveries, the key share
(inside :class:`~secagg.he.threshold_ckks.CommitteeMember`). Never printed, never pickled.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

from secagg.channel import open_sealed, seal
from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
    ProtocolViolation,
    ShareError,
    UsageError,
)
from secagg.he.threshold_ckks import (
    CiphertextMask,
    CommitteeMember,
    KeyShareDelivery,
    MemberState,
    PublicKey,
)
from secagg.keys import KeyPair, Purpose, agree
from secagg.protocols.base import SERVER_ID
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import PeerKey, Sealed
from secagg.secret import SecretHolder

__all__ = ["MemberRole"]


_STATE_TAG = "secagg/threshold-ckks/member-role"
_STATE_VERSION = 1


class MemberRole(
    SecretHolder,
    export="MemberRole.to_state_bytes() / from_state_bytes(), kept on the member's node",
):
    """What one committee member holds and does (see the module docstring).

    Every method that takes a server message raises ProtocolViolation (party 0) when the
    message is not one an honest server sends (peers outside the committee, a box from a
    dealer that was not a peer, a public key of another session...).
    """

    __slots__ = ("_config", "_deliveries", "_id", "_keys", "_pair_keys", "_scheme", "ready")

    def __init__(self, config: ThresholdCkksConfig, member_id: int) -> None:
        self._config = config
        self._id = member_id
        self._scheme = CommitteeMember(
            config.scheme,
            config.members,
            member_id,
            config.crs_seed,
            min_summands=config.min_clients,
        )
        self._keys = KeyPair.generate()
        self._pair_keys: dict[int, bytes] = {}
        self._deliveries: dict[int, KeyShareDelivery] = {}
        self.ready = False
        """True once this member holds a key share (it may decrypt)."""

    def __repr__(self) -> str:
        return f"MemberRole(id={self._id}, ready={self.ready})"


    # -- state export --------------------------------------------------------------------

    def to_state_bytes(self) -> bytes:
        """Everything this member holds as versioned msgpack (no pickle), for
        :meth:`from_state_bytes` in another process of the same node. SECRET (its sealing
        key, the pair keys, the deliveries it opened, its key share): never send it."""
        return bytes(msgpack.packb(
            [_STATE_TAG, _STATE_VERSION, self._config.session_id, self._id,
             self._keys.private_bytes(), sorted(self._pair_keys.items()),
             [[peer, d.to_bytes()] for peer, d in sorted(self._deliveries.items())],
             self.ready, self._scheme.to_state_bytes()],
            use_bin_type=True,
        ))  # fmt: skip

    @classmethod
    def from_state_bytes(cls, config: ThresholdCkksConfig, member_id: int,
                         data: bytes) -> MemberRole:
        """The member :meth:`to_state_bytes` saved, in ``config``'s session. Raises
        DecodeError (``party=None``) when ``data`` is not such a state (garbled, another
        session or member, a peer outside the committee, a delivery of another pair)."""
        role = cls(config, member_id)
        committee = config.committee
        peers = len(committee)
        try:
            record = msgpack.unpackb(
                data, raw=False, use_list=True, strict_map_key=True,
                max_array_len=max(peers + 1, 9), max_map_len=0, max_str_len=64,
            )  # fmt: skip
        except Exception:  # msgpack raises several unrelated exception types
            raise DecodeError("a threshold-CKKS member state is not msgpack") from None
        if (not isinstance(record, list) or len(record) != 9 or record[0] != _STATE_TAG
                or type(record[1]) is not int or record[1] != _STATE_VERSION):
            raise DecodeError("not a threshold-CKKS member state of this version")
        _, _, session_id, stored_id, private, pair_keys, deliveries, ready, scheme = record
        if session_id != config.session_id or stored_id != member_id:
            raise DecodeError("a member state of another session or member")

        def pairs(value: object) -> list[tuple[int, bytes]]:
            if not isinstance(value, list) or any(
                not isinstance(p, list) or len(p) != 2 or type(p[0]) is not int
                or p[0] not in committee or p[0] == member_id or not isinstance(p[1], bytes)
                for p in value
            ):  # fmt: skip
                raise DecodeError("malformed threshold-CKKS member state")
            return [(p[0], p[1]) for p in value]

        pair_list, delivery_list = pairs(pair_keys), pairs(deliveries)
        if not isinstance(private, bytes) or not isinstance(ready, bool):
            raise DecodeError("malformed threshold-CKKS member state")
        role._keys = KeyPair.from_private_bytes(private)
        role._pair_keys = dict(pair_list)
        if any(len(key) != 32 for key in role._pair_keys.values()):
            raise DecodeError("malformed threshold-CKKS member state")
        for peer, blob in delivery_list:
            delivery = KeyShareDelivery.from_bytes(config.scheme, blob)
            if delivery.sender != peer or delivery.recipient != member_id:
                raise DecodeError("a stored delivery of another pair")
            role._deliveries[peer] = delivery
        if not isinstance(scheme, bytes):
            raise DecodeError("malformed threshold-CKKS member state")
        role._scheme = CommitteeMember.from_state_bytes(
            config.scheme, config.members, member_id, config.crs_seed, scheme,
            min_summands=config.min_clients,
        )  # fmt: skip
        role.ready = ready
        if ready != (role._scheme.state is MemberState.READY):
            raise DecodeError("a member state whose key share contradicts it")
        return role

    # -- setup ---------------------------------------------------------------------------

    def advertise(self) -> bytes:
        """The public half of this session's sealing key."""
        return self._keys.public_bytes

    def deal(self, peers: Sequence[PeerKey]) -> tuple[bytes, tuple[Sealed, ...]]:
        """This member's public key share and one sealed delivery per peer."""
        config = self._config
        ids = [peer.member for peer in peers]
        if len(set(ids)) != len(ids) or self._id in ids or not set(ids) <= set(config.committee):
            raise ProtocolViolation("peers must be other committee members", party=SERVER_ID)
        share, deliveries = self._scheme.setup_message()
        boxes = []
        for peer in peers:
            try:
                key = agree(
                    self._keys,
                    peer.cipher_public_key,
                    purpose=Purpose.SHARE_KEY,
                    session_id=config.session_id,
                    own_id=self._id,
                    peer_id=peer.member,
                )
            except DecodeError:
                # The server validates every advertised key: forwarding a bad one is its fault.
                raise ProtocolViolation("an invalid peer key", party=SERVER_ID) from None
            self._pair_keys[peer.member] = key
            box = seal(
                key,
                deliveries[peer.member].to_bytes(),
                session_id=config.session_id,
                sender=self._id,
                recipient=peer.member,
            )
            boxes.append(Sealed(peer.member, box))
        return share.to_bytes(), tuple(boxes)

    def check(self, boxes: Sequence[Sealed]) -> tuple[int, ...]:
        """Open the deliveries addressed to this member; the dealers to complain about."""
        config = self._config
        complaints = []
        for sealed in boxes:
            key = self._pair_keys.get(sealed.peer)
            if key is None:
                raise ProtocolViolation("a delivery from a dealer that is no peer", party=SERVER_ID)
            try:
                plain = open_sealed(
                    key,
                    sealed.box,
                    session_id=config.session_id,
                    sender=sealed.peer,
                    recipient=self._id,
                )
                delivery = KeyShareDelivery.from_bytes(config.scheme, plain, party=sealed.peer)
                if delivery.sender != sealed.peer or delivery.recipient != self._id:
                    raise DecodeError("a delivery of another pair", party=sealed.peer)
            except (AuthenticationError, DecodeError):
                complaints.append(sealed.peer)
                continue
            self._deliveries[sealed.peer] = delivery
        return tuple(sorted(complaints))

    def finish(self, public_key: PublicKey) -> None:
        """Sum the deliveries of the key's contributors into the key share, when this
        member holds all of them (else it holds none: ``ready`` stays False). Raises
        ProtocolViolation (party 0) for contributors that are not a committee subset of at
        least ``threshold`` members."""
        contributors = public_key.contributors
        committee = self._config.members
        try:
            committee.check_subset(contributors, "contributors")
        except ConfigurationError:
            raise ProtocolViolation("contributors outside the committee", party=SERVER_ID) from None
        if len(contributors) < committee.threshold:
            raise ProtocolViolation("fewer contributors than the threshold", party=SERVER_ID)
        wanted = {i: d for i, d in self._deliveries.items() if i in contributors}
        try:
            self._scheme.finish_setup(contributors, wanted)
        except (ShareError, UsageError):
            return  # a missing delivery, or this member never dealt: no key share
        finally:
            self._deliveries.clear()
            self._pair_keys.clear()
        self.ready = True

    # -- decryption ----------------------------------------------------------------------

    def decrypt(self, mask: CiphertextMask) -> bytes:
        """This member's decryption share of ``mask`` (the session's one request id).
        Raises ProtocolViolation (party 0) before the member holds a key share, and
        MaliciousRequestError for what the scheme refuses (a summand count below
        ``min_clients``, another aggregate)."""
        if not self.ready:
            raise ProtocolViolation(
                "a decryption request to a member without a key share", party=SERVER_ID
            )
        try:
            share = self._scheme.decryption_share(mask, request_id=self._config.request_id)
        except MaliciousRequestError as exc:
            raise MaliciousRequestError(str(exc), party=SERVER_ID) from None
        return share.to_bytes()
