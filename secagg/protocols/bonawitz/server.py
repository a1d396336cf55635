"""The server state machine of Bonawitz et al. (CCS'17), with SecAgg+ neighbourhoods.

Theory of operation. The server collects one message per live client per round. The
table :data:`ROUNDS` says, for each collecting state, which message type clients send and
which state follows; :meth:`Server.receive` refuses anything else from that one place.
A round ends when every client still alive has answered (``receive`` then returns the next
round's requests) or when the transport's deadline passes (:meth:`Server.close_round`).

Live sets: U1 advertised keys, U2 shared them, U3 sent a masked input, U4 (active mode)
confirmed U3 with a valid signature. With a sparse SecAgg+ graph a client whose
neighbourhood (itself included) falls below ``t`` live members cannot have its secrets
reconstructed, so it is pruned from U1 / U2 like a dropout; the session aborts with
:class:`ProtocolAbort` only when fewer than ``t`` clients remain or a needed secret can
no longer gather ``t`` shares.

Two rules the server keeps: a peer's misbehaviour is never raised from ``receive``; it
removes that message, share or client (recorded in the result's ``excluded`` or
``faults``) and the others' sum still comes out right. And the masked inputs are summed as
they arrive: memory is O(m), not O(n m).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

import numpy as np

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    ProtocolAbort,
    UsageError,
)
from secagg.keys import KeyPair
from secagg.packing import unpack
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
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
from secagg.protocols.bonawitz.server_unmasking import (
    RevealedShares,
    plan_unmasking,
    reconstruct_all,
    remove_masks,
)
from secagg.protocols.wire import ProtocolMessage
from secagg.signing import verify_signature

__all__ = ["MAX_FAULT_NOTES", "ROUNDS", "Server", "ServerState"]

MAX_FAULT_NOTES = 32
"""Notes kept per party: the rest are only counted, so a peer that floods the server with
junk cannot grow its state (each note is short: see :func:`secagg.protocols.wire.shown`)."""


class ServerState(enum.Enum):
    """Which round the server is collecting (or that it is idle, done or aborted)."""

    IDLE = "idle"
    ADVERTISE_KEYS = ROUND_ADVERTISE_KEYS
    SHARE_KEYS = ROUND_SHARE_KEYS
    MASKED_INPUT = ROUND_MASKED_INPUT
    CONSISTENCY_CHECK = ROUND_CONSISTENCY_CHECK
    UNMASKING = ROUND_UNMASKING
    DONE = "done"
    ABORTED = "aborted"


_S = ServerState
ROUNDS: Final[dict[ServerState, tuple[type[ProtocolMessage], ServerState]]] = {
    _S.ADVERTISE_KEYS: (AdvertiseKeys, _S.SHARE_KEYS),
    _S.SHARE_KEYS: (ShareKeys, _S.MASKED_INPUT),
    # Semi-honest mode has no consistency check: the one skip is in Server._advance.
    _S.MASKED_INPUT: (MaskedInput, _S.CONSISTENCY_CHECK),
    _S.CONSISTENCY_CHECK: (ConsistencyCheck, _S.UNMASKING),
    _S.UNMASKING: (UnmaskingResponse, _S.DONE),
}
"""Collecting state -> (the message type clients send in it, the state that follows)."""


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
        self._excluded: dict[int, str] = {}
        self._faults: dict[int, list[str]] = {}
        self._unrecorded: dict[int, int] = {}  # faults beyond MAX_FAULT_NOTES, per party
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
        """Misbehaviour recorded so far: party -> what it did (a copy; at most
        MAX_FAULT_NOTES notes each, then one note counting the others)."""
        return {party: self._notes(party) for party in self._faults}

    def _notes(self, party: int) -> list[str]:
        notes = list(self._faults[party])
        if self._unrecorded.get(party):
            notes.append(f"and {self._unrecorded[party]} more faults not recorded")
        return notes

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
        sender = message.sender
        if self._accept(message):
            self._answered.add(sender)
            self._dispatch(message)
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
            self._reject(sender, f"undecodable message ({exc})")
            return self._advance() if self._expected <= self._answered else []
        return self.receive(message)

    def close_round(self) -> list[Message]:
        """The deadline of the current round passed: go on with the clients that answered.

        Raises ProtocolAbort when fewer than t remain (the server is then aborted), and
        UsageError when no round is open.
        """
        if self._state not in ROUNDS:
            raise UsageError(f"no round to close in state {self._state.value}")
        round_name = self._state.value
        for client in sorted(self._expected - self._answered):
            self._excluded.setdefault(client, f"dropped in {round_name}")
        self._expected &= self._answered
        return self._advance()

    # -- intake ----------------------------------------------------------------------------

    def _fault(self, party: int, note: str) -> None:
        notes = self._faults.setdefault(party, [])
        if len(notes) < MAX_FAULT_NOTES:
            notes.append(f"{self._state.value}: {note}")
        else:
            self._unrecorded[party] = self._unrecorded.get(party, 0) + 1

    def _accept(self, message: ProtocolMessage) -> bool:
        """True if ``message`` is a fresh answer of this round from an expected client."""
        sender = message.sender
        expected_type, _ = ROUNDS[self._state]
        if sender not in self._config.client_set:
            self._fault(sender, "message from a party outside the session")
        elif message.recipient != SERVER_ID or message.session_id != self._config.session_id:
            self._fault(sender, "message of another session or recipient")
        elif not isinstance(message, expected_type):
            self._fault(sender, f"out-of-round {type(message).__name__} (late or replayed)")
        elif sender in self._answered:
            self._fault(sender, f"duplicate {type(message).__name__} (ignored)")
        elif sender in self._expected:
            return True
        return False  # a client already dropped: its late answer changes nothing

    def _reject(self, client: int, reason: str) -> None:
        """Remove ``client``'s answer from the round; in Unmasking only record it."""
        if client not in self._expected or client in self._answered:
            self._fault(client, reason)
            return
        self._answered.add(client)
        self._fault(client, reason)
        if self._state is not ServerState.UNMASKING and self._state is not (
            ServerState.CONSISTENCY_CHECK
        ):
            self._expected.discard(client)
            self._excluded[client] = f"bad message in {self._state.value}: {reason}"

    def _dispatch(self, message: ProtocolMessage) -> None:
        if isinstance(message, AdvertiseKeys):
            self._on_advertise(message)
        elif isinstance(message, ShareKeys):
            self._on_share_keys(message)
        elif isinstance(message, MaskedInput):
            self._on_masked_input(message)
        elif isinstance(message, ConsistencyCheck):
            self._on_consistency_check(message)
        elif isinstance(message, UnmaskingResponse):
            self._on_unmasking(message)

    def _drop(self, client: int, reason: str) -> None:
        # Called after _accept marked the client as answered.
        self._answered.discard(client)
        self._reject(client, reason)

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
                self._drop(client, "advertisement with a bad signature")
                return
        keys = {message.cipher_public_key, message.mask_public_key}
        if len(keys) != 2 or keys & self._taken_keys:
            self._drop(client, "advertised public keys that are not distinct")
            return
        for key in keys:
            try:
                self._probe.exchange(key, party=client)
            except DecodeError:
                self._drop(client, "advertised an invalid X25519 public key")
                return
        self._adverts[client] = message
        self._taken_keys |= keys

    def _on_share_keys(self, message: ShareKeys) -> None:
        client = message.sender
        recipients = {item.peer for item in message.sealed_shares}
        if len(recipients) != len(message.sealed_shares):
            self._drop(client, "two share bundles for one neighbour")
            return
        if recipients != self._config.neighbours_of(client) & self._u1:
            self._drop(client, "share bundles not addressed to exactly its live neighbours")
            return
        for item in message.sealed_shares:
            self._inbox.setdefault(item.peer, []).append(SealedShares(client, item.ciphertext))

    def _on_masked_input(self, message: MaskedInput) -> None:
        config = self._config
        if message.bits != config.bits or message.length != config.vector_length:
            self._drop(message.sender, "masked input of the wrong bit width or length")
            return
        try:
            values = unpack(message.payload, config.bits, config.vector_length)
        except DecodeError:
            self._drop(message.sender, "masked input that does not unpack")
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
            self._fault(message.sender, "consistency signature that does not verify")
            return
        self._signatures[message.sender] = message.signature

    def _on_unmasking(self, message: UnmaskingResponse) -> None:
        survivors, dropped = self._asked[message.sender]
        for note in self._revealed.record(message, survivors, dropped):
            self._fault(message.sender, note)
        for owner in message.unreadable:
            self._fault(owner, f"client {message.sender} could not open its share bundle")

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
                    self._excluded[client] = f"fewer than t live neighbours after {round_name}"
                    changed = True
        if len(live) < config.threshold:
            raise self._abort(
                f"only {len(live)} clients remain after {round_name}, fewer than "
                f"t = {config.threshold}"
            )
        return frozenset(live)

    def _advance(self) -> list[Message]:
        state = self._state
        _, following = ROUNDS[state]
        if following is ServerState.CONSISTENCY_CHECK and self._config.mode != ACTIVE:
            following = ServerState.UNMASKING
        handlers = {
            ServerState.ADVERTISE_KEYS: self._finish_advertise,
            ServerState.SHARE_KEYS: self._finish_share_keys,
            ServerState.MASKED_INPUT: self._finish_masked_input,
            ServerState.CONSISTENCY_CHECK: self._finish_consistency_check,
            ServerState.UNMASKING: self._finish_unmasking,
        }
        outgoing = handlers[state]()
        if self._state is state:  # the handler did not abort
            self._state = following
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

    def _finish_masked_input(self) -> list[Message]:
        config = self._config
        self._u3 = frozenset(self._expected)
        for client in self._u2 - self._u3:
            self._excluded.setdefault(client, f"dropped in {ROUND_MASKED_INPUT}")
        if len(self._u3) < config.threshold:
            raise self._abort(
                f"only {len(self._u3)} masked inputs arrived, fewer than t = {config.threshold}"
            )
        if config.mode == ACTIVE:
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
                self._fault(holder, note)
        acc = self._acc
        assert acc is not None
        remove_masks(acc, config, self._adverts, self_seeds, mask_keys, threads=self._threads)
        self._acc = None
        excluded = {c: r for c, r in self._excluded.items() if c not in self._u3}
        for client in config.clients:
            if client not in self._u3:
                excluded.setdefault(client, "not in the survivor set")
        self._result = AggregationResult(
            total=acc,
            included=self._u3,
            excluded=excluded,
            faults={c: "; ".join(self._notes(c)) for c in sorted(self._faults)},
        )
        return []

    def __repr__(self) -> str:
        return (
            f"Server(n={self._config.n}, state={self._state.name}, "
            f"waiting_for={len(self._expected - self._answered)})"
        )
