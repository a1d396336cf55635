"""The server state machine of Bonawitz et al. (CCS'17), with SecAgg+ neighbourhoods and
robust dealing (wire version 3).

Role: server, every round: the handlers and round closers of the server's rows of the
transition table (ShareCheck's judgements live in :mod:`.server_check`, Unmasking's
reconstruction in :mod:`.server_unmasking`).

Theory of operation. The server collects one message per live client per round. The
table :data:`secagg.protocols.bonawitz.rounds.SERVER_TABLE` says, for each collecting
state and mode, which message type clients send, which method handles it, which closes the
round, which state follows and which second wave the round may open; :meth:`Server.receive`
looks a message up there once and refuses anything without a row from that one place. A
round ends when every client still alive has answered (``receive`` then returns the next
round's requests) or when the transport's deadline passes (:meth:`Server.close_round`).

Live sets: U1 advertised valid keys, U2 dealt its boxes, C (confirmed) passed ShareCheck,
U3 sent a masked input, U4 (active mode) confirmed U3 with a valid signature. With a
sparse SecAgg+ graph a client whose neighbourhood (itself included) falls below ``t`` live
members cannot have its secrets reconstructed, so it is pruned like a dropout.

The guarantee (with an honest server). While at least t honest clients answer every
round, one misbehaving client only ever excludes itself: it is left out of the sum if it
misbehaves before its masked input is summed, and its fault is recorded, typed, in any
round; no honest client is excluded or blamed, and there is no :class:`ProtocolAbort`,
except in the one case stated below. How each fault class is contained:

* AdvertiseKeys that decodes but is wrong (a key that is not a point or of small order, a
  key without a valid key proof, a key another client already advertised, a bad identity
  signature): the advertisement is refused in round 0 (the proof binds the key to its
  client, so a copy of another client's key cannot be proven);
* a dealing that cannot be used (boxes that do not open or hold no shares, a missing or
  unsigned box, shares off one polynomial): the holders' complaints and check values of
  ShareCheck expose it, the server judges (:mod:`.server_check`, on evidence only the
  faulty party could have made) and excludes the dealer, or the false complainer, before
  anyone masks: every client masks with exactly the peers the server confirms;
* a dealing that ShareCheck cannot settle (at most t + 1 of the dealer's holders answered
  it, so nothing can be located) and a commitment that does not match the dealt seed are
  settled at Unmasking from the boxes themselves: the server uses the seed the holders
  hold and blames the dealer;
* a dealt mask key that does not match the advertised one, of a client that then drops:
  the survivors that masked with it reveal their pairwise secret with it, with a proof
  (the fallback wave of Unmasking);
* a revealed share that is off its polynomial, wherever it is: every share is checked and
  the holder whose share differs from its box (or whose key does not open it) is blamed;
* anything undecodable, duplicated, replayed or out of round: refused and recorded.

The one case that still aborts: a client that dealt a mask key other than its advertised
one AND whose masked input never reached the server, when a survivor that masked with it
does not answer Unmasking (its pairwise mask with that client can then be removed by
neither secret); the ProtocolAbort names the client. What the server learns beyond the sum
of the included clients: nothing (see the protocol docs in :mod:`.server_check`,
:mod:`.dealing` and :mod:`.server_unmasking` for why each step reveals nothing extra).

Two rules the server keeps: a peer's misbehaviour is never raised from ``receive``; it
removes that message, share or client (recorded in the result's ``excluded`` as an
:class:`~secagg.protocols.faults.Exclusion`, or in the server's bounded
:class:`~secagg.protocols.faults.FaultLog`, each typed with an
:class:`~secagg.errors.ExclusionReason`) and the others' sum still comes out right. And
the masked inputs are summed as they arrive: memory is O(m) for vectors, plus the boxes
it relays (O(n k) records of 108 bytes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import NoReturn

import numpy as np

from secagg.curve25519 import x25519_publics
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
from secagg.protocols.bonawitz.dealing import (
    CHECK_BYTES,
    inconsistent,
    locate_off,
    nonce_commitment,
    unpack_checks,
)
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_CHECK,
    ROUND_SHARE_KEYS,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    Complaint,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DisputeRequest,
    DisputeResponse,
    FallbackRequest,
    FallbackResponse,
    MaskedInput,
    MaskedInputRequest,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    consistency_signature_payload,
    decode_message,
    key_proof_payload,
)
from secagg.protocols.bonawitz.rounds import SERVER_TABLE, ServerState, Transition
from secagg.protocols.bonawitz.server_check import (
    BoxStore,
    Verdict,
    judge_complaint,
    judge_dispute,
    judge_unsigned,
)
from secagg.protocols.bonawitz.server_unmasking import (
    Reconstruction,
    RevealedShares,
    pair_seed_of,
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
        self._wave = False  # set by a closer that opens its round's second wave
        self._excluded: dict[int, Exclusion] = {}
        self._log = FaultLog()  # bounded: see secagg.protocols.faults
        # The ShareCheck nonce: committed in round 0, revealed in ShareCheck (not secret
        # then; unpredictable to every dealer while it deals).
        self._nonce = os.urandom(32)
        self._adverts: dict[int, AdvertiseKeys] = {}
        self._cipher_publics: dict[int, bytes] = {}  # X25519 forms of the advertised keys
        self._mask_publics: dict[int, bytes] = {}
        self._taken_keys: set[bytes] = set()  # every accepted X25519 key (all must differ)
        self._store = BoxStore()
        self._u1: frozenset[int] = frozenset()
        self._u2: frozenset[int] = frozenset()
        self._confirmed: frozenset[int] = frozenset()
        self._u3: frozenset[int] = frozenset()
        self._check_asked: dict[int, tuple[int, ...]] = {}  # holder -> dealers, in order
        self._checks: dict[int, dict[int, np.ndarray]] = {}  # dealer -> holder -> values
        self._complaints: list[tuple[int, Complaint]] = []
        self._unsigned: list[tuple[int, int]] = []  # (holder, dealer)
        self._faulty: dict[int, Verdict] = {}  # ShareCheck's verdicts, first one kept
        self._responders: set[int] = set()  # who answered ShareCheck
        self._disputes: dict[int, tuple[int, ...]] = {}  # holder -> dealers asked
        self._dispute_keys: dict[tuple[int, int], bytes] = {}  # (holder, dealer) -> key
        self._signatures: dict[int, bytes] = {}
        self._revealed = RevealedShares()
        self._asked: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
        self._rebuilt: Reconstruction | None = None
        self._fallback_asked: dict[int, tuple[int, ...]] = {}
        self._pair_seeds: dict[tuple[int, int], bytes] = {}
        self._acc: np.ndarray | None = None
        self._result: AggregationResult | None = None
        # Fresh key to test that advertised X25519 keys are not of small order.
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

    def __reduce__(self) -> NoReturn:
        raise UsageError("a Server cannot be pickled")

    def start(self) -> list[Message]:
        """AdvertiseKeys requests for every configured client. UsageError if called twice."""
        if self._state is not ServerState.IDLE:
            raise UsageError("start() was already called")
        self._state = ServerState.ADVERTISE_KEYS
        self._open_round(self._config.clients)
        sid = self._config.session_id
        commitment = nonce_commitment(sid, self._nonce)
        return [AdvertiseKeysRequest(SERVER_ID, c, sid, commitment) for c in self._config.clients]

    def receive(self, message: Message) -> list[Message]:
        """Record one client message; once every live client answered, return the next
        round's requests (else ``[]``).

        Guarantees: a message that is misrouted, of another session, out of round, a
        duplicate or from an unknown or already dropped sender changes nothing but the
        faults; a message whose content is bad removes its sender from the round (or,
        once its input is summed, just its shares). Raises UsageError before start() or
        for a non-protocol object, ProtocolAbort when the round that completes leaves too
        few clients (or in the one case of the module docstring).
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
        round_name = self._state.round_name
        for client in sorted(self._expected - self._answered):
            self._excluded.setdefault(client, Exclusion(_Reason.DROPPED, round_name))
        self._expected &= self._answered
        return self._advance()

    # -- intake ----------------------------------------------------------------------------

    def _fault(self, party: int, reason: ExclusionReason, detail: str) -> None:
        self._log.record(party, reason, self._state.round_name, detail)

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
        return None  # a client already dropped (or not asked in this wave): changes nothing

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
            self._excluded[client] = Exclusion(
                _Reason.BAD_MESSAGE, self._state.round_name, detail
            )

    def _drop(self, client: int, reason: ExclusionReason, detail: str) -> None:
        # Called after _accept marked the client as answered.
        self._answered.discard(client)
        self._reject(client, reason, detail)

    def _on_advertise(self, message: AdvertiseKeys) -> None:
        config, client, sid = self._config, message.sender, self._config.session_id
        if config.mode == ACTIVE:
            assert config.identities is not None
            payload = advertise_signature_payload(
                sid,
                client,
                nonce_commitment(sid, self._nonce),
                message.cipher_public_key,
                message.mask_public_key,
                message.self_mask_commitment,
            )
            try:
                verify_signature(config.identities[client], payload, message.signature)
            except (AuthenticationError, DecodeError):
                self._drop(client, _Reason.BAD_SIGNATURE, "advertisement with a bad signature")
                return
        for kind, key, proof in (
            ("cipher", message.cipher_public_key, message.cipher_key_proof),
            ("mask", message.mask_public_key, message.mask_key_proof),
        ):
            try:
                verify_signature(key, key_proof_payload(sid, client, kind, key), proof)
            except (AuthenticationError, DecodeError):
                self._drop(
                    client, _Reason.BAD_KEY_PROOF, f"advertised a {kind} key it did not prove"
                )
                return
        try:
            cipher, mask = x25519_publics([message.cipher_public_key, message.mask_public_key])
            for key in (cipher, mask):
                self._probe.exchange(key, party=client)
        except DecodeError:
            self._drop(client, _Reason.INVALID_CONTENT, "advertised an invalid public key")
            return
        if cipher == mask or {cipher, mask} & self._taken_keys:
            self._drop(
                client, _Reason.INVALID_CONTENT, "advertised public keys that are not distinct"
            )
            return
        self._adverts[client] = message
        self._cipher_publics[client], self._mask_publics[client] = cipher, mask
        self._taken_keys |= {cipher, mask}

    def _on_share_keys(self, message: ShareKeys) -> None:
        client = message.sender
        holders = [item.peer for item in message.boxes]
        if len(set(holders)) != len(holders):
            self._drop(client, _Reason.INVALID_CONTENT, "two boxes for one holder")
            return
        if set(holders) != self._config.holders_of(client) & self._u1:
            self._drop(
                client,
                _Reason.INVALID_CONTENT,
                "boxes not addressed to exactly its live holders",
            )
            return
        signed = {bool(item.signature) for item in message.boxes}
        if signed != {self._config.mode == ACTIVE}:
            self._drop(client, _Reason.INVALID_CONTENT, "box signatures missing or unexpected")
            return
        self._store.add(client, message.boxes)

    def _on_share_check(self, message: ShareCheck) -> None:
        holder = message.sender
        asked = self._check_asked[holder]
        if len(message.checks) != CHECK_BYTES * len(asked):
            self._drop(holder, _Reason.INVALID_CONTENT, "check values for other boxes")
            return
        complained = [item.dealer for item in message.complaints] + list(message.unsigned)
        if not set(complained) <= set(asked):
            self._drop(holder, _Reason.INVALID_CONTENT, "a complaint about a box it was not sent")
            return
        if message.unsigned and self._config.mode != ACTIVE:
            self._drop(holder, _Reason.INVALID_CONTENT, "unsigned boxes in a semi-honest session")
            return
        values = unpack_checks(message.checks, len(asked))
        skipped = set(complained)
        for dealer, row in zip(asked, values, strict=True):
            if dealer not in skipped:
                self._checks.setdefault(dealer, {})[holder] = row
        self._complaints += [(holder, item) for item in message.complaints]
        self._unsigned += [(holder, dealer) for dealer in message.unsigned]

    def _on_dispute(self, message: DisputeResponse) -> None:
        holder = message.sender
        if sorted(item.owner for item in message.keys) != sorted(self._disputes[holder]):
            self._drop(holder, _Reason.INVALID_CONTENT, "box keys of other dealers than asked")
            return
        for item in message.keys:
            self._dispute_keys[holder, item.owner] = item.key

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

    def _on_fallback(self, message: FallbackResponse) -> None:
        survivor = message.sender
        asked = self._fallback_asked[survivor]
        if sorted(item.owner for item in message.secrets) != sorted(asked):
            self._fault(
                survivor, _Reason.INVALID_CONTENT, "pairwise secrets with others than asked"
            )
            return
        for item in message.secrets:
            seed = pair_seed_of(self._config, self._adverts, survivor, item)
            if seed is None:
                self._fault(
                    survivor,
                    _Reason.BAD_SHARE,
                    f"a pairwise secret with client {item.owner} whose proof does not verify",
                )
                continue
            self._pair_seeds[survivor, item.owner] = seed

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
        """Close the current round with its row's closer and move to the row's next state
        (or to its wave, when the closer opened one)."""
        state = self._state
        row = SERVER_TABLE.row(self._config.mode, state)
        assert row is not None and row.closer is not None  # only collecting states advance
        closer: Callable[[], list[Message]] = getattr(self, row.closer)
        self._wave = False
        outgoing = closer()
        if self._state is state:  # the closer did not abort
            self._state = row.wave if self._wave and row.wave is not None else row.next_state
        return outgoing

    def _finish_advertise(self) -> list[Message]:
        sid, active = self._config.session_id, self._config.mode == ACTIVE
        self._u1 = self._prune(set(self._expected) & self._adverts.keys(), ROUND_ADVERTISE_KEYS)
        self._open_round(self._u1)
        return [
            ShareKeysRequest(
                SERVER_ID,
                client,
                sid,
                tuple(
                    self._adverts[peer].peer_keys(with_proofs=active)
                    for peer in sorted(self._config.neighbours_of(client) & self._u1)
                ),
            )
            for client in sorted(self._u1)
        ]

    def _finish_share_keys(self) -> list[Message]:
        sid = self._config.session_id
        self._u2 = self._prune(set(self._expected), ROUND_SHARE_KEYS)
        for dealer in self._u1 - self._u2:
            self._store.discard(dealer)
        self._open_round(self._u2)
        requests: list[Message] = []
        for holder in sorted(self._u2):
            dealers = tuple(
                d for d in sorted(self._config.holders_of(holder) & self._u2)
                if self._store.holds(d, holder)
            )
            self._check_asked[holder] = dealers
            boxes = tuple(self._store.dealt(d, holder) for d in dealers)
            requests.append(ShareCheckRequest(SERVER_ID, holder, sid, self._nonce, boxes))
        return requests

    def _convict(self, verdict: Verdict) -> None:
        """Record ShareCheck's verdict: a fault, and (first verdict kept) the exclusion."""
        self._fault(verdict.party, verdict.reason, verdict.detail)
        if verdict.party not in self._faulty:
            self._faulty[verdict.party] = verdict

    def _finish_share_check(self) -> list[Message]:
        config = self._config
        responders = self._responders = set(self._expected)
        # Every complaint of a holder that answered is judged, its dealer gone or not.
        for holder, dealer in self._unsigned:
            if holder in responders:
                self._convict(judge_unsigned(config, self._store, holder, dealer))
        for holder, complaint in self._complaints:
            if holder in responders:
                self._convict(
                    judge_complaint(config, self._adverts, self._store, holder, complaint)
                )
        clean = responders - set(self._faulty)
        records = self._check_records(clean)
        flagged = inconsistent(records, config.threshold)
        disputes: dict[int, list[int]] = {}
        for dealer in sorted(flagged):
            points, values = records[dealer]
            if len(points) < config.threshold + 2:
                continue  # an inconsistency that cannot be located: settled at Unmasking
            off = locate_off(points, values, config.threshold)
            if off is None:  # more values off than one liar per dealer can explain
                self._convict(
                    Verdict(
                        dealer,
                        _Reason.INCONSISTENT_DEALING,
                        "dealt self-mask shares off one polynomial",
                    )
                )
                continue
            for holder in off:
                disputes.setdefault(holder, []).append(dealer)
        if disputes:
            self._disputes = {h: tuple(ds) for h, ds in sorted(disputes.items())}
            self._open_round(self._disputes)
            self._wave = True
            sid = config.session_id
            return [DisputeRequest(SERVER_ID, h, sid, ds) for h, ds in self._disputes.items()]
        return self._confirm(responders)

    def _check_records(self, clean: set[int]) -> dict[int, tuple[list[int], np.ndarray]]:
        """Dealer -> (holders, check values) over the holders in ``clean``."""
        records: dict[int, tuple[list[int], np.ndarray]] = {}
        for dealer in sorted(clean):
            rows = self._checks.get(dealer, {})
            holders = sorted(h for h in rows if h in clean)
            if holders:
                records[dealer] = (holders, np.stack([rows[h] for h in holders]))
        return records

    def _finish_dispute(self) -> list[Message]:
        config = self._config
        for holder, dealers in self._disputes.items():
            if holder not in self._expected:
                continue  # silent in the wave: dropped, its values are set aside below
            for dealer in dealers:
                if dealer in self._faulty:
                    continue
                self._convict(
                    judge_dispute(
                        config,
                        self._nonce,
                        self._store,
                        holder,
                        dealer,
                        self._dispute_keys[holder, dealer],
                        self._checks[dealer][holder],
                    )
                )
        # Holders silent in the wave (or with a bad answer) are out, their values set aside.
        responders = self._responders - (set(self._disputes) - self._expected)
        # A dealer whose located holders all lied or went silent: re-check the others.
        clean = responders - set(self._faulty)
        records = self._check_records(clean)
        disputed = {d for ds in self._disputes.values() for d in ds} - set(self._faulty)
        for dealer in sorted(inconsistent({d: records[d] for d in disputed if d in records},
                                          config.threshold)):
            self._convict(
                Verdict(dealer, _Reason.INCONSISTENT_DEALING,
                        "dealt self-mask shares off one polynomial")
            )
        return self._confirm(responders)

    def _confirm(self, responders: set[int]) -> list[Message]:
        """Exclude ShareCheck's faulty parties, prune, and tell every confirmed client whom
        to mask with (exactly its confirmed neighbours, who mask with it)."""
        round_name = ROUND_SHARE_CHECK
        for party, verdict in self._faulty.items():
            if party in self._u2:
                self._excluded[party] = Exclusion(verdict.reason, round_name, verdict.detail)
        live = responders - set(self._faulty)
        self._confirmed = self._prune(live, round_name)
        for dealer in self._u2 - self._confirmed:
            self._store.discard(dealer)
        self._checks.clear()
        self._open_round(self._confirmed)
        sid = self._config.session_id
        return [
            MaskedInputRequest(
                SERVER_ID,
                client,
                sid,
                tuple(sorted(self._config.neighbours_of(client) & self._confirmed)),
            )
            for client in sorted(self._confirmed)
        ]

    def _close_masked_input(self) -> None:
        """U3: the clients whose masked input is in the sum (ProtocolAbort below t)."""
        self._u3 = frozenset(self._expected)
        for client in self._confirmed - self._u3:
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
                self._config, self._confirmed, self._u3, candidates, self._signatures
            )
        except ProtocolAbort as exc:
            raise self._abort(str(exc)) from None
        self._open_round(requests)
        for client, request in requests.items():
            self._asked[client] = (frozenset(request.survivors), frozenset(request.dropped))
        return list(requests.values())

    def _finish_unmasking(self) -> list[Message]:
        config = self._config
        dropped = self._confirmed - self._u3
        try:
            rebuilt = reconstruct_all(
                config, self._adverts, self._mask_publics, self._revealed, self._store,
                self._u3, dropped,
            )
        except ProtocolAbort as exc:
            raise self._abort(str(exc)) from None
        for party, notes in rebuilt.faults.items():
            for note in notes:
                self._log.record(party, note.reason, note.round_name, note.detail)
        self._rebuilt = rebuilt
        if not rebuilt.fallback:
            return self._finish()
        # Every survivor that masked with a failed owner must prove their pairwise secret.
        asked: dict[int, list[int]] = {}
        for owner in sorted(rebuilt.fallback):
            for survivor in sorted(config.neighbours_of(owner) & self._u3):
                if survivor not in self._expected:
                    raise self._abort(
                        f"client {owner}'s dealt mask key does not match its advertised key "
                        f"and survivor {survivor}, which masked with it, did not answer"
                    )
                asked.setdefault(survivor, []).append(owner)
        self._fallback_asked = {s: tuple(owners) for s, owners in asked.items()}
        self._open_round(self._fallback_asked)
        self._wave = True
        sid = config.session_id
        return [FallbackRequest(SERVER_ID, s, sid, o) for s, o in self._fallback_asked.items()]

    def _finish_fallback(self) -> list[Message]:
        for survivor, owners in self._fallback_asked.items():
            for owner in owners:
                if (survivor, owner) not in self._pair_seeds:
                    raise self._abort(
                        f"client {owner}'s dealt mask key does not match its advertised key "
                        f"and survivor {survivor} did not prove its pairwise secret with it"
                    )
        return self._finish()

    def _finish(self) -> list[Message]:
        config, rebuilt = self._config, self._rebuilt
        assert rebuilt is not None
        acc = self._acc
        assert acc is not None
        remove_masks(
            acc,
            config,
            self._mask_publics,
            rebuilt.self_seeds,
            rebuilt.mask_keys,
            self._pair_seeds,
            threads=self._threads,
        )
        self._acc = None
        self._store = BoxStore()
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
