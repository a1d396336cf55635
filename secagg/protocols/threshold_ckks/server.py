"""The threshold-CKKS aggregator: it relays the committee's key setup, adds ciphertexts and
combines decryption shares.

Theory of operation (the same shape as the other two families' servers):

1. ``key_advertise``: the committee members send fresh X25519 keys; the server checks each
   (32 bytes, not a small-order point) and forwards the valid ones to every advertiser.
2. ``key_deal``: each member sends its public key share and one sealed delivery per peer;
   the server checks the share decodes, that there is exactly one box per peer and that
   each box has the exact size of a sealed delivery. A member that fails any check is
   blamed and is no dealer (nor key holder).
3. ``key_check``: each dealer gets the boxes addressed to it and answers with complaints
   (dealers whose box it could not open). The server fixes the contributors
   ``K``: the dealers about whom at most one member complained (two or more complaints
   mean the dealer is faulty: blamed, left out of the key). The key holders are the
   members that answered without a complaint about a dealer of ``K`` (a lone complaint
   cannot say who lied: the complainer just holds no key share, and nobody is blamed). The
   session aborts when fewer than ``t`` contributors or key holders remain. No single
   member can abort it while ``t`` others follow the protocol: a dealer of garbage only
   removes itself, a false complainer only itself.
4. ``encrypted_input``: every client gets the collective key ``sum_(i in K) p_i``; the
   server adds the uploads as they arrive (a bad one excludes its sender).
5. ``decryption``: the key holders (a bad upload costs its sender its input, not its
   key share) get the aggregate's mask; once every one answered, or at the deadline, the
   server combines whatever shares arrived with
   :func:`secagg.he.threshold_ckks.combine_verified`: any ``t`` decrypt, every further
   share is checked against them, and every share that does not fit is blamed.
   Up to ``n - t`` key holders may drop. It aborts only when no ``t`` shares agree.

Which event the server takes in which state is the one table of
:mod:`secagg.protocols.threshold_ckks.rounds`. The server never holds key material: the
boxes it relays are sealed member to member. A peer's misbehaviour is never raised from
``receive``: it is recorded, bounded (:class:`~secagg.protocols.faults.FaultLog`), with a
typed :class:`~secagg.errors.ExclusionReason`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from secagg.channel import OVERHEAD_BYTES
from secagg.errors import (
    ConfigurationError,
    DecodeError,
    ExclusionReason,
    ProtocolAbort,
    ShareError,
    UsageError,
)
from secagg.he.threshold_ckks import (
    Ciphertext,
    KeyShareDelivery,
    PublicKeyShare,
    collective_public_key,
    combine_verified,
)
from secagg.he.threshold_ckks import DecryptionShare as ShareRecord
from secagg.keys import KeyPair
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.faults import Exclusion
from secagg.protocols.table import RoundServer
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import (
    ROUND_ENCRYPTED_INPUT,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
    KeyAdvertise,
    KeyAdvertiseRequest,
    KeyCheck,
    KeyCheckRequest,
    KeyDeal,
    KeyDealRequest,
    PeerKey,
    Sealed,
)
from secagg.protocols.threshold_ckks.rounds import SERVER_TABLE, SESSION_OVER, Action, ServerState
from secagg.ring import dtype_for_bits

__all__ = ["ThresholdCkksServer"]

COMPLAINTS_TO_EXCLUDE = 2
"""A dealer about whom this many members complain is left out of the key and blamed."""


class ThresholdCkksServer(RoundServer[ServerState, Action]):
    """The aggregator (implements ServerProtocol). Holds public keys, sealed boxes and
    ciphertexts only.

    A peer's misbehaviour is never raised from ``receive``: a bad setup message removes its
    sender from the committee's roles, a bad upload removes its sender from the sum
    (``excluded``), a bad decryption share is left out (``faults``). Fault notes are
    bounded per party, whatever a peer floods the server with.
    """

    def __init__(self, config: ThresholdCkksConfig) -> None:
        if not isinstance(config, ThresholdCkksConfig):
            raise ConfigurationError("config must be a ThresholdCkksConfig")
        self._config = config
        self._init_rounds()
        self._excluded: dict[int, Exclusion] = {}
        self._misbehaved: set[int] = set()  # no committee role any more
        self._advertised: dict[int, bytes] = {}
        self._dealt: dict[int, tuple[PublicKeyShare, dict[int, bytes]]] = {}
        self._complaints: dict[int, tuple[int, ...]] = {}
        self._holders: tuple[int, ...] = ()
        self._sum: Ciphertext | None = None
        self._included: set[int] = set()
        self._shares: dict[int, ShareRecord] = {}
        self._result: AggregationResult | None = None

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def done(self) -> bool:
        return self._state is ServerState.DONE

    @property
    def result(self) -> AggregationResult | None:
        return self._result

    @property
    def key_holders(self) -> tuple[int, ...]:
        """The members asked to decrypt (fixed when the collective key is published)."""
        return self._holders

    def __repr__(self) -> str:
        return f"ThresholdCkksServer(n={self._config.n}, state={self._state.name})"

    def start(self) -> list[Message]:
        """Key advertisement requests for the committee. UsageError if called twice."""
        if self._state is not ServerState.IDLE:
            raise UsageError("start() was already called")
        config = self._config
        self._state = ServerState.KEY_ADVERTISE
        self._ask(config.committee)
        return [KeyAdvertiseRequest(SERVER_ID, m, config.session_id) for m in config.committee]

    # -- the family's side of the shared envelope (secagg.protocols.table.RoundServer) --

    def _session_id(self) -> bytes:
        return self._config.session_id

    def _parties(self) -> tuple[int, ...]:
        return self._config.clients

    def _bad(self, sender: int, detail: str) -> list[Message]:
        self._fault(sender, ExclusionReason.INVALID_CONTENT, detail)
        self._misbehaved.add(sender)
        return []

    def _abort(self, reason: str) -> ProtocolAbort:
        self._state = ServerState.ABORTED
        self._sum = None
        return ProtocolAbort(reason)

    # -- key setup ---------------------------------------------------------------------

    def _add_advertise(self, message: KeyAdvertise) -> list[Message]:
        try:
            # A small-order point would make every pair key with it public: refused here,
            # so that no honest dealer is ever asked to seal for it.
            KeyPair.generate().exchange(message.cipher_public_key, party=message.sender)
        except DecodeError as exc:
            return self._bad(message.sender, str(exc))
        self._advertised[message.sender] = message.cipher_public_key
        return []

    def _request_deals(self, missing: Sequence[int]) -> list[Message]:
        self._dropped(missing, ExclusionReason.MEMBER_DROPPED, "no key advertisement")
        config = self._config
        members = sorted(self._advertised)
        if len(members) < config.threshold:
            raise self._abort(
                f"only {len(members)} members advertised keys, t = {config.threshold}"
            )
        self._ask(members)
        return [
            KeyDealRequest(
                SERVER_ID,
                member,
                config.session_id,
                tuple(PeerKey(p, self._advertised[p]) for p in members if p != member),
            )
            for member in members
        ]

    def _add_deal(self, message: KeyDeal) -> list[Message]:
        sender, params = message.sender, self._config.scheme
        try:
            share = PublicKeyShare.from_bytes(params, message.public_key_share, party=sender)
        except DecodeError as exc:
            return self._bad(sender, str(exc))
        if share.member != sender:
            return self._bad(sender, "a public key share under another member's id")
        peers = sorted(p for p in self._advertised if p != sender)
        boxes = {box.peer: box.box for box in message.boxes}
        if sorted(boxes) != peers:
            return self._bad(sender, "not exactly one sealed delivery per peer")
        for peer, box in boxes.items():
            size = KeyShareDelivery.encoded_size(params, sender, peer) + OVERHEAD_BYTES
            if len(box) != size:
                return self._bad(sender, "a sealed delivery of the wrong size")
        self._dealt[sender] = (share, boxes)
        return []

    def _forward_deliveries(self, missing: Sequence[int]) -> list[Message]:
        self._dropped(missing, ExclusionReason.MEMBER_DROPPED, "no key deal")
        config = self._config
        dealers = sorted(self._dealt)
        if len(dealers) < config.threshold:
            raise self._abort(f"only {len(dealers)} members dealt keys, t = {config.threshold}")
        self._ask(dealers)
        return [
            KeyCheckRequest(
                SERVER_ID,
                member,
                config.session_id,
                tuple(Sealed(d, self._dealt[d][1][member]) for d in dealers if d != member),
            )
            for member in dealers
        ]

    def _add_check(self, message: KeyCheck) -> list[Message]:
        sender = message.sender
        if not set(message.complaints) <= set(self._dealt) - {sender}:
            return self._bad(sender, "a complaint about a party that dealt it nothing")
        self._complaints[sender] = message.complaints
        return []

    def _publish_key(self, missing: Sequence[int]) -> list[Message]:
        self._dropped(missing, ExclusionReason.MEMBER_DROPPED, "no key check")
        config = self._config
        against: dict[int, int] = {}
        for complaints in self._complaints.values():
            for dealer in complaints:
                against[dealer] = against.get(dealer, 0) + 1
        contributors = []
        for dealer in sorted(self._dealt):
            if against.get(dealer, 0) >= COMPLAINTS_TO_EXCLUDE:
                self._fault(
                    dealer,
                    ExclusionReason.UNREADABLE_BUNDLE,
                    f"{against[dealer]} members could not open its key-share delivery",
                )
                self._misbehaved.add(dealer)
            else:
                contributors.append(dealer)
        holders = tuple(
            member
            for member, complaints in sorted(self._complaints.items())
            if member not in self._misbehaved and not set(complaints) & set(contributors)
        )
        if len(contributors) < config.threshold or len(holders) < config.threshold:
            raise self._abort(
                f"{len(contributors)} contributors and {len(holders)} key holders remain, "
                f"t = {config.threshold}"
            )
        shares = [self._dealt[d][0] for d in contributors]
        public = collective_public_key(config.scheme, config.crs_seed, shares)
        self._holders = holders
        self._dealt.clear()  # the boxes are no longer needed
        self._ask(config.clients)
        data = public.to_bytes()
        return [InputRequest(SERVER_ID, c, config.session_id, data) for c in config.clients]

    # -- input and decryption ----------------------------------------------------------

    def _add_input(self, message: EncryptedInput) -> list[Message]:
        sender, config = message.sender, self._config
        try:
            upload = Ciphertext.from_bytes(
                config.scheme,
                message.ciphertext,
                length=config.vector_length,
                summands=1,
                party=sender,
            )
        except DecodeError as exc:
            self._fault(sender, ExclusionReason.INVALID_CONTENT, str(exc))
            self._excluded[sender] = Exclusion(
                ExclusionReason.BAD_MESSAGE, ROUND_ENCRYPTED_INPUT, str(exc)
            )
            # A key holder with a bad upload still decrypts: its share is checked anyway.
            return []
        if self._sum is None:
            self._sum = upload
        else:
            self._sum.add_(upload)
        self._included.add(sender)
        return []

    def _request_decryption(self, missing: Sequence[int]) -> list[Message]:
        config = self._config
        for client in missing:
            self._excluded.setdefault(
                client, Exclusion(ExclusionReason.DROPPED, ROUND_ENCRYPTED_INPUT)
            )
        included = tuple(sorted(self._included))
        if len(included) < config.min_clients:
            raise self._abort(
                f"only {len(included)} inputs arrived, fewer than min_clients = "
                f"{config.min_clients}"
            )
        assert self._sum is not None
        holders = list(self._holders)
        self._ask(holders)
        mask = self._sum.mask_part().to_bytes()
        return [DecryptionRequest(SERVER_ID, m, config.session_id, included, mask) for m in holders]

    def _add_share(self, message: DecryptionShare) -> list[Message]:
        sender, config = message.sender, self._config
        try:
            share = ShareRecord.from_bytes(
                config.scheme, message.share, length=config.vector_length, party=sender
            )
        except DecodeError as exc:
            self._fault(sender, ExclusionReason.BAD_DECRYPTION, f"undecodable share: {exc}")
            return []
        if share.member != sender:
            self._fault(sender, ExclusionReason.BAD_DECRYPTION, "a share under another id")
            return []
        self._shares[sender] = share
        return []

    def _finish(self, missing: Sequence[int]) -> list[Message]:
        config = self._config
        self._dropped(
            missing, ExclusionReason.MEMBER_DROPPED, "dropped before sending its decryption share"
        )
        if len(self._shares) < config.threshold:
            raise self._abort(
                f"only {len(self._shares)} decryption shares, {config.threshold} needed"
            )
        assert self._sum is not None
        try:
            verified = combine_verified(config.members, self._sum, list(self._shares.values()))
        except (DecodeError, ShareError) as exc:
            raise self._abort(f"the aggregate does not decrypt: {exc}") from None
        for member in verified.faulty:
            self._fault(
                member,
                ExclusionReason.BAD_DECRYPTION,
                "its decryption share does not fit the others",
            )
        self._state = ServerState.DONE
        self._sum = None
        included = frozenset(self._included)
        excluded = dict(self._excluded)
        for client in config.clients:
            if client not in included:
                excluded.setdefault(client, Exclusion(ExclusionReason.NO_VALID_INPUT))
        self._result = AggregationResult(
            total=verified.values.astype(dtype_for_bits(config.bits)),
            included=included,
            excluded=excluded,
            faults=self._faults.summary(),
        )
        return []

    _HANDLERS: ClassVar[dict[Action, Callable[[ThresholdCkksServer, Any], list[Message]]]] = {
        Action.ADD_ADVERTISE: _add_advertise,
        Action.REQUEST_DEALS: _request_deals,
        Action.ADD_DEAL: _add_deal,
        Action.FORWARD_DELIVERIES: _forward_deliveries,
        Action.ADD_CHECK: _add_check,
        Action.PUBLISH_KEY: _publish_key,
        Action.ADD_INPUT: _add_input,
        Action.REQUEST_DECRYPTION: _request_decryption,
        Action.ADD_SHARE: _add_share,
        Action.FINISH: _finish,
    }
    _TABLE = SERVER_TABLE
    _IDLE = ServerState.IDLE
    _OVER = SESSION_OVER
