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
    PublicKey,
)
from secagg.keys import KeyPair, Purpose, agree
from secagg.protocols.base import SERVER_ID
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import PeerKey, Sealed
from secagg.secret import SecretHolder

__all__ = ["MemberRole"]


class MemberRole(SecretHolder, export="none: a committee member's keys stay in its process"):
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
