"""The server state machine of Bonawitz et al. (CCS'17), with SecAgg+ neighbourhoods.

Role: server, every round (0-4): the handlers and round closers of the server's rows of
the transition table (round 4's reconstruction lives in
:mod:`~secagg.protocols.bonawitz.server_unmasking`).

Theory of operation. The server collects one message per live client per round. The
table :data:`secagg.protocols.bonawitz.rounds.SERVER_TABLE` says, for each collecting
state and mode, which message type clients send, which method handles it, which closes the
round and which state follows; :meth:`Server.receive` looks a message up there once and
refuses anything without a row from that one place. A round ends when every client still
alive has answered (``receive`` then returns the next round's requests) or when the
transport's deadline passes (:meth:`Server.close_round`).

Live sets: U1 advertised keys, U2 shared them, U3 sent a masked input, U4 (active mode)
confirmed U3 with a valid signature. With a sparse SecAgg+ graph a client whose
neighbourhood (itself included) falls below ``t`` live members cannot have its secrets
reconstructed, so it is pruned from U1 / U2 like a dropout; the session aborts with
:class:`ProtocolAbort` only when fewer than ``t`` clients remain or a needed secret can
no longer gather ``t`` shares.

Two rules the server keeps: a peer's misbehaviour is never raised from ``receive``; it
removes that message, share or client (recorded in the result's ``excluded`` as an
:class:`~secagg.protocols.faults.Exclusion`, or in the server's bounded
:class:`~secagg.protocols.faults.FaultLog`, each typed with an
:class:`~secagg.errors.ExclusionReason`) and the others' sum still comes out right. And
the masked inputs are summed as they arrive: memory is O(m), not O(n m).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    ExclusionReason,
    ProtocolAbort,
    UsageError,
)
from secagg.keys import KeyPair
from secagg.packing import unpack
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_KEYS,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    MaskedInput,
    MaskedInputRequest,
    SealedShares,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    consistency_signature_payload,
    decode_message,
)
from secagg.protocols.bonawitz.rounds import SERVER_TABLE, ServerState, Transition
from secagg.protocols.bonawitz.server_unmasking import (
    RevealedShares,
    plan_unmasking,
    reconstruct_all,
    remove_masks,
)
from secagg.protocols.faults import Exclusion, FaultLog
from secagg.protocols.wire import ProtocolMessage
from secagg.signing import verify_signature

__all__ = ["Server"]

_Reason = ExclusionReason


class Server:
    """The aggregation server of one session (implements ServerProtocol).

    ``threads`` is passed to the mask regeneration (:func:`secagg.masking.apply_masks`;
    ``None`` lets it choose). Raises ConfigurationError on a bad config.
    """

    def __init__(self, config: ProtocolConfig, *, threads: int | None = None) -> None:
        if not isinstance(config, ProtocolConfig):
            raise ConfigurationError("config must be a ProtocolConfig")
        self._config = config
        self._threads = threads
        self._state = ServerState.IDLE
        self._expected: set[int] = set()  # who must still answer this round
        self._answered: set[int] = set()
        self._excluded: dict[int, Exclusion] = {}
        self._log = FaultLog()  # bounded: see secagg.protocols.faults
        self._adverts: dict[int, AdvertiseKeys] = {}
        self._taken_keys: set[bytes] = set()  # every accepted public key (all must differ)
        self._inbox: dict[int, list[SealedShares]] = {}  # recipient -> bundles for it
        self._u1: frozenset[int] = frozenset()
        self._u2: frozenset[int] = frozenset()
        self._u3: frozenset[int] = frozenset()
        self._signatures: dict[int, bytes] = {}
        self._revealed = RevealedShares()
        self._asked: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
        self._acc: np.ndarray | None = None
        self._result: AggregationResult | None = None
        # Fresh key to test that advertised X25519 keys are valid points (not small order).
        self._probe = KeyPair.generate()

    # -- ServerProtocol ------------------------------------------------------------------

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
    def faults(self) -> dict[int, list[str]]:
        """Misbehaviour recorded so far: party -> what it did (a copy; each note a typed
        :class:`~secagg.protocols.faults.Fault`, at most
        :data:`~secagg.protocols.faults.MAX_FAULT_NOTES` each, then one note counting the
        others)."""
        return self._log.as_dict()

    def start(self) -> list[Message]:
        """AdvertiseKeys requests for every configured client. UsageError if called twice."""
        if self._state is not ServerState.IDLE:
            raise UsageError("start() was already called")
        self._state = ServerState.ADVERTISE_KEYS
        self._open_round(self._config.clients)
        sid = self._config.session_id
        return [AdvertiseKeysRequest(SERVER_ID, c, sid) for c in self._config.clients]

    def receive(self, message: Message) -> list[Message]:
        """Record one client message; once every live client answered, return the next
        round's requests (else ``[]``).

        Guarantees: a message that is misrouted, of another session, out of round, a
        duplicate or from an unknown or already dropped sender changes nothing but the
        faults; a message whose content is bad removes its sender from the round (or, in
        Unmasking, just its shares). Raises UsageError before start() or for a non-protocol
        object, ProtocolAbort when the round that completes leaves too few clients.
        """
        if self._state is ServerState.IDLE:
            raise UsageError("call start() before receive()")
        if not isinstance(message, ProtocolMessage):
            raise UsageError(f"not a protocol message: {type(message).__name__}")
        if self._state in (ServerState.DONE, ServerState.ABORTED):
            return []  # a late message after the end changes nothing
        row = self._accept(message)
        if row is not None:
            self._answered.add(message.sender)
            handler: Callable[[ProtocolMessage], None] = getattr(self, row.handler)
            handler(message)
        if self._expected <= self._answered:
            return self._advance()
        return []

    def receive_bytes(self, data: bytes, sender: int) -> list[Message]:
        """Decode ``data`` from the transport-authenticated ``sender`` and receive it.

        An undecodable message (or one claiming another sender) counts as ``sender``'s
        answer for this round and removes it as a bad message would; nothing is raised for
        it. Other errors as :meth:`receive`.
        """
        if self._state is ServerState.IDLE:
            raise UsageError("call start() before receive_bytes()")
        try:
            message = decode_message(data, sender=sender)
        except DecodeError as exc:
            if self._state in (ServerState.DONE, ServerState.ABORTED):
                return []
            self._reject(sender, _Reason.UNDECODABLE, f"undecodable message ({exc})")
            return self._advance() if self._expected <= self._answered else []
        return self.receive(message)

    def close_round(self) -> list[Message]:
        """The deadline of the current round passed: go on with the clients that answered.

        Raises ProtocolAbort when fewer than t remain (the server is then aborted), and
        UsageError when no round is open.
        """
        if SERVER_TABLE.row(self._config.mode, self._state) is None:
            raise UsageError(f"no round to close in state {self._state.value}")
        round_name = self._state.value
        for client in sorted(self._expected - self._answered):
            self._excluded.setdefault(client, Exclusion(_Reason.DROPPED, round_name))
        self._expected &= self._answered
        return self._advance()

    # -- intake ----------------------------------------------------------------------------

    def _fault(self, party: int, reason: ExclusionReason, detail: str) -> None:
        self._log.record(party, reason, self._state.value, detail)

    def _accept(self, message: ProtocolMessage) -> Transition[ServerState] | None:
        """The table row of ``message`` if it is a fresh answer of this round from an
        expected client; else None, with a fault recorded when it is one."""
        sender, name = message.sender, type(message).__name__
        row = SERVER_TABLE.lookup(self._config.mode, self._state, type(message))
        if sender not in self._config.client_set:
            self._fault(sender, _Reason.UNKNOWN_SENDER, "message from a party outside the session")
        elif message.recipient != SERVER_ID or message.session_id != self._config.session_id:
            self._fault(sender, _Reason.MISROUTED, "message of another session or recipient")
        elif row is None:
            self._fault(sender, _Reason.OUT_OF_ROUND, f"out-of-round {name} (late or replayed)")
        elif sender in self._answered:
            self._fault(sender, _Reason.DUPLICATE, f"duplicate {name} (ignored)")
        elif sender in self._expected:
            return row
        return None  # a client already dropped: its late answer changes nothing

    def _reject(self, client: int, reason: ExclusionReason, detail: str) -> None:
        """Record ``client``'s bad answer; in a round whose row says so, also remove the
        client from the round and the sum (a :data:`ExclusionReason.BAD_MESSAGE`)."""
        self._fault(client, reason, detail)
        if client not in self._expected or client in self._answered:
            return
        self._answered.add(client)
        row = SERVER_TABLE.row(self._config.mode, self._state)
        if row is not None and row.bad_answer_excludes:
            self._expected.discard(client)
            self._excluded[client] = Exclusion(_Reason.BAD_MESSAGE, self._state.value, detail)

    def _drop(self, client: int, reason: ExclusionReason, detail: str) -> None:
        # Called after _accept marked the client as answered.
        self._answered.discard(client)
        self._reject(client, reason, detail)

    def _on_advertise(self, message: AdvertiseKeys) -> None:
        config, client = self._config, message.sender
        if config.mode == ACTIVE:
            assert config.identities is not None
            payload = advertise_signature_payload(
                config.session_id,
                client,
                message.cipher_public_key,
                message.mask_public_key,
                message.self_mask_commitment,
            )
            try:
                verify_signature(config.identities[client], payload, message.signature)
            except (AuthenticationError, DecodeError):
                self._drop(client, _Reason.BAD_SIGNATURE, "advertisement with a bad signature")
                return
        keys = {message.cipher_public_key, message.mask_public_key}
        if len(keys) != 2 or keys & self._taken_keys:
            self._drop(
                client, _Reason.INVALID_CONTENT, "advertised public keys that are not distinct"
            )
            return
        for key in keys:
            try:
                self._probe.exchange(key, party=client)
            except DecodeError:
                self._drop(
                    client, _Reason.INVALID_CONTENT, "advertised an invalid X25519 public key"
                )
                return
        self._adverts[client] = message
        self._taken_keys |= keys

    def _on_share_keys(self, message: ShareKeys) -> None:
        client = message.sender
        recipients = {item.peer for item in message.sealed_shares}
        if len(recipients) != len(message.sealed_shares):
            self._drop(client, _Reason.INVALID_CONTENT, "two share bundles for one neighbour")
            return
        if recipients != self._config.neighbours_of(client) & self._u1:
            self._drop(
                client,
                _Reason.INVALID_CONTENT,
                "share bundles not addressed to exactly its live neighbours",
            )
            return
        for item in message.sealed_shares:
            self._inbox.setdefault(item.peer, []).append(SealedShares(client, item.ciphertext))

    def _on_masked_input(self, message: MaskedInput) -> None:
        config = self._config
        if message.bits != config.bits or message.length != config.vector_length:
            self._drop(
                message.sender,
                _Reason.INVALID_CONTENT,
                "masked input of the wrong bit width or length",
            )
            return
        try:
            values = unpack(message.payload, config.bits, config.vector_length)
        except DecodeError:
            self._drop(
                message.sender, _Reason.INVALID_CONTENT, "masked input that does not unpack"
            )
            return
        if self._acc is None:
            self._acc = np.zeros(config.vector_length, dtype=config.dtype)
        np.add(self._acc, values.astype(config.dtype, copy=False), out=self._acc)

    def _on_consistency_check(self, message: ConsistencyCheck) -> None:
        config = self._config
        assert config.identities is not None
        payload = consistency_signature_payload(config.session_id, sorted(self._u3))
        try:
            verify_signature(config.identities[message.sender], payload, message.signature)
        except (AuthenticationError, DecodeError):
            self._fault(
                message.sender,
                _Reason.BAD_SIGNATURE,
                "consistency signature that does not verify",
            )
            return
        self._signatures[message.sender] = message.signature

    def _on_unmasking(self, message: UnmaskingResponse) -> None:
        survivors, dropped = self._asked[message.sender]
        for note in self._revealed.record(message, survivors, dropped):
            self._log.record(message.sender, note.reason, note.round_name, note.detail)
        for owner in message.unreadable:
            self._fault(
                owner,
                _Reason.UNREADABLE_BUNDLE,
                f"client {message.sender} could not open its share bundle",
            )

    # -- round transitions ---------------------------------------------------------------

    def _open_round(self, clients: Iterable[int]) -> None:
        self._expected = set(clients)
        self._answered = set()

    def _abort(self, reason: str) -> ProtocolAbort:
        self._state = ServerState.ABORTED
        self._acc = None
        return ProtocolAbort(reason)

    def _prune(self, live: set[int], round_name: str) -> frozenset[int]:
        """Drop, to a fixed point, the clients with fewer than t live holders."""
        config = self._config
        changed = True
        while changed:
            changed = False
            for client in sorted(live):
                if len(config.holders_of(client) & live) < config.threshold:
                    live.discard(client)
                    self._excluded[client] = Exclusion(_Reason.FEW_LIVE_NEIGHBOURS, round_name)
                    changed = True
        if len(live) < config.threshold:
            raise self._abort(
                f"only {len(live)} clients remain after {round_name}, fewer than "
                f"t = {config.threshold}"
            )
        return frozenset(live)

    def _advance(self) -> list[Message]:
        """Close the current round with its row's closer and move to the row's next state."""
        state = self._state
        row = SERVER_TABLE.row(self._config.mode, state)
        assert row is not None and row.closer is not None  # only collecting states advance
        closer: Callable[[], list[Message]] = getattr(self, row.closer)
        outgoing = closer()
        if self._state is state:  # the closer did not abort
            self._state = row.next_state
        return outgoing

    def _finish_advertise(self) -> list[Message]:
        sid = self._config.session_id
        self._u1 = self._prune(set(self._expected) & self._adverts.keys(), ROUND_ADVERTISE_KEYS)
        self._open_round(self._u1)
        return [
            ShareKeysRequest(
                SERVER_ID,
                client,
                sid,
                tuple(
                    self._adverts[peer].peer_keys()
                    for peer in sorted(self._config.neighbours_of(client) & self._u1)
                ),
            )
            for client in sorted(self._u1)
        ]

    def _finish_share_keys(self) -> list[Message]:
        sid = self._config.session_id
        self._u2 = self._prune(set(self._expected), ROUND_SHARE_KEYS)
        self._open_round(self._u2)
        requests: list[Message] = []
        for client in sorted(self._u2):
            bundles = tuple(item for item in self._inbox.get(client, []) if item.peer in self._u2)
            requests.append(MaskedInputRequest(SERVER_ID, client, sid, bundles))
        self._inbox.clear()
        return requests

    def _close_masked_input(self) -> None:
        """U3: the clients whose masked input is in the sum (ProtocolAbort below t)."""
        self._u3 = frozenset(self._expected)
        for client in self._u2 - self._u3:
            self._excluded.setdefault(client, Exclusion(_Reason.DROPPED, ROUND_MASKED_INPUT))
        if len(self._u3) < self._config.threshold:
            raise self._abort(
                f"only {len(self._u3)} masked inputs arrived, fewer than "
                f"t = {self._config.threshold}"
            )

    def _finish_masked_input_then_check(self) -> list[Message]:
        """Active mode: ask the survivors to sign U3."""
        self._close_masked_input()
        config = self._config
        # A client whose neighbourhood kept fewer than t survivors refuses to confirm
        # (and to unmask): only the others are asked. Its input still counts.
        asked = sorted(
            client
            for client in self._u3
            if len(config.holders_of(client) & self._u3) >= config.threshold
        )
        self._open_round(asked)
        survivors = tuple(sorted(self._u3))
        return [
            ConsistencyCheckRequest(SERVER_ID, client, config.session_id, survivors)
            for client in asked
        ]

    def _finish_masked_input_then_unmask(self) -> list[Message]:
        """Semi-honest mode: no consistency check, ask U3 for the shares straight away."""
        self._close_masked_input()
        return self._unmasking_requests(self._u3)

    def _finish_consistency_check(self) -> list[Message]:
        confirmed = frozenset(self._signatures)
        if len(confirmed) < self._config.threshold:
            raise self._abort(
                f"only {len(confirmed)} clients confirmed the survivors, fewer than "
                f"t = {self._config.threshold}"
            )
        return self._unmasking_requests(confirmed)

    def _unmasking_requests(self, candidates: frozenset[int]) -> list[Message]:
        try:
            requests = plan_unmasking(
                self._config, self._u2, self._u3, candidates, self._signatures
            )
        except ProtocolAbort as exc:
            raise self._abort(str(exc)) from None
        self._open_round(requests)
        for client, request in requests.items():
            self._asked[client] = (frozenset(request.survivors), frozenset(request.dropped))
        return list(requests.values())

    def _finish_unmasking(self) -> list[Message]:
        config = self._config
        dropped = self._u2 - self._u3
        try:
            self_seeds, mask_keys, faults = reconstruct_all(
                config, self._adverts, self._revealed, self._u3, dropped
            )
        except ProtocolAbort as exc:
            raise self._abort(str(exc)) from None
        for holder, notes in faults.items():
            for note in notes:
                self._log.record(holder, note.reason, note.round_name, note.detail)
        acc = self._acc
        assert acc is not None
        remove_masks(acc, config, self._adverts, self_seeds, mask_keys, threads=self._threads)
        self._acc = None
        excluded = {c: r for c, r in self._excluded.items() if c not in self._u3}
        for client in config.clients:
            if client not in self._u3:
                excluded.setdefault(client, Exclusion(_Reason.NOT_A_SURVIVOR))
        self._result = AggregationResult(
            total=acc,
            included=self._u3,
            excluded=excluded,
            faults=self._log.summary(),
        )
        return []

    def __repr__(self) -> str:
        return (
            f"Server(n={self._config.n}, state={self._state.name}, "
            f"waiting_for={len(self._expected - self._answered)})"
        )
