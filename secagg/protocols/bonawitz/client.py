"""The client state machine of Bonawitz et al. (CCS'17), with SecAgg+ neighbourhoods and
robust dealing (wire version 3).

Role: client, every round: the handlers of the client's rows of the transition table.

Theory of operation. A :class:`Client` consumes one server message at a time and returns
its reply; it never touches a socket or a clock. The legal transitions live in one table,
:data:`secagg.protocols.bonawitz.rounds.CLIENT_TABLE` ((mode, state, request type) -> its
handler and the next state), consulted once per message in :meth:`Client.receive`: an
out-of-round message is refused from that lookup, before any handler runs.

Rounds (``t`` is the threshold, ``N(u)`` the neighbourhood, "holders" ``N(u)`` and u):

0. AdvertiseKeys: two fresh key pairs, published in Ed25519 form (c_u for the boxes, s_u
   for pairwise masks; the X25519 keys are the same pairs, :mod:`secagg.curve25519`), each
   with an Ed25519 signature under itself (a key proof: this client holds it), a fresh
   self-mask seed b_u and its SHA-256 commitment; signed by the identity in active mode,
   together with the commitment to the server's nonce it was sent.
1. ShareKeys: Shamir-share s_u^SK and b_u t-of-h among the live holders (itself included)
   and seal each holder's two shares in two boxes under one-time keys derived from the
   pair's X25519 secret (:mod:`.bundles`); active mode: sign each holder's boxes.
2. ShareCheck: open the boxes dealt to it (its own included). For each box that opens,
   send the two blinded check values of the dealing (:mod:`.dealing`, with the nonce
   revealed now); for a box that does not, a complaint: the X25519 secret of the pair and
   its proof (:func:`secagg.curve25519.prove_shared_secret`), after checking (active mode)
   that the dealer signed the box (else it only names the dealer) and proved its key.
   A dispute wave may follow: reveal the self-mask box key of dealers whose check values
   the server could not reconcile.
3. MaskedInputCollection: mask the input pairwise with exactly the peers the server names
   (each a dealer whose boxes opened) and with b_u; send it bit-packed.
4. ConsistencyCheck (active mode only): sign the survivor set U3.
5. Unmasking: reveal, with its box key, the share of b_v of each survivor and of s_v^SK of
   each dropped peer. A fallback wave may follow (only after revealing s^SK shares): the
   pairwise secret with a dropped peer, with its proof, when that peer's dealt key did not
   rebuild.

Its input is checked once, at its edge (:func:`secagg.ring.check_values`: when the
client is built, or when it calls a lazy input), and masked without a second scan.

Rules the client keeps (:mod:`.client_guards`): it derives the dropped and surviving sets
itself from what it saw and refuses a request that would reveal both secrets of one peer
(a self-mask key revealed in a dispute counts), it reveals a secret shared with a peer's
key only once that key's proof verified (the server checked it; an active client checks
again), and it answers each round once. Every refusal is a :class:`ProtocolViolation`
naming the server (``party=0``); a refusal inside a round aborts the client for good and
wipes its secrets. Secrets are wiped as soon as no later round needs them; the mask key
s_u^SK stays until the end, since the fallback wave proves a pairwise secret with it.

Between rounds a client can be saved as bytes (:meth:`Client.to_state_bytes`) and
restored in another process (:meth:`Client.from_state_bytes`); the encoding and its
validation live in :mod:`secagg.protocols.bonawitz.client_state`. A client refuses
pickling.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from secagg.curve25519 import prove_shared_secret, secret_scalar, x25519_publics
from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    ProtocolViolation,
    UsageError,
)
from secagg.keys import KeyPair, Purpose, agree
from secagg.masking import mask_checked_input
from secagg.packing import pack
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.bonawitz.bundles import (
    BoxKeys,
    DealtShares,
    SecretKind,
    ShareBundle,
    deal,
    decode_mask_key_box,
    decode_self_mask_box,
    derive_box_keys,
    open_box,
    seal_box,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.client_guards import (
    check_consistency_request,
    check_dispute_request,
    check_fallback_request,
    check_key_proof,
    check_masked_input_request,
    check_peers,
    check_share_check_request,
    check_unmasking_request,
    refuse,
)
from secagg.protocols.bonawitz.client_state import (
    ClientSnapshot,
    HeldShares,
    decode_state,
    encode_state,
)
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.dealing import check_values, pack_checks
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    BoxKey,
    Complaint,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    DealtBoxes,
    DisputeRequest,
    DisputeResponse,
    FallbackRequest,
    FallbackResponse,
    MaskedInput,
    MaskedInputRequest,
    PairSecret,
    PeerKeys,
    RevealedShare,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    box_signature_payload,
    consistency_signature_payload,
    key_proof_payload,
    proof_context,
)
from secagg.protocols.bonawitz.rounds import CLIENT_TABLE, ClientState
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import check_values as check_input_values
from secagg.secret import SecretHolder
from secagg.shamir import pack_limb_shares
from secagg.signing import SigningKey, verify_signature

__all__ = ["Client", "InputVector", "generate_identities"]

InputVector = np.ndarray | Callable[[], np.ndarray]
"""A client's input in Z_(2^bits): the vector, or a callable that returns it when needed."""


def generate_identities(clients: Sequence[int]) -> dict[int, SigningKey]:
    """Fresh Ed25519 identities for ``clients`` (for tests and simulations; a deployment
    registers them out of band). ``{c: key.verify_key}`` is ProtocolConfig's ``identities``."""
    return {client: SigningKey.generate() for client in clients}


class Client(SecretHolder, export="Client.to_state_bytes() / Client.from_state_bytes()"):
    """One client of a Bonawitz / SecAgg+ session (implements ClientProtocol).

    ``input_vector`` holds values in [0, 2^bits) of length ``config.vector_length`` (or is
    a callable returning it, called once, when the client masks). ``identity`` is the
    client's Ed25519 key in active mode (its verify key must be the one in
    ``config.identities``) and must be ``None`` in semi-honest mode.

    Raises ConfigurationError on a client id not in the config, a bad input vector or a
    missing or mismatched identity.
    """

    def __init__(
        self,
        config: ProtocolConfig,
        client_id: int,
        input_vector: InputVector,
        identity: SigningKey | None = None,
    ) -> None:
        if not isinstance(config, ProtocolConfig):
            raise ConfigurationError("config must be a ProtocolConfig")
        if (
            not isinstance(client_id, int | np.integer)
            or isinstance(client_id, bool)
            or client_id not in config.client_set
        ):
            raise ConfigurationError(f"client {client_id!r} is not in this session")
        if config.mode == ACTIVE:
            expected = config.identities[client_id] if config.identities else None
            if not isinstance(identity, SigningKey) or identity.verify_key != expected:
                raise ConfigurationError(
                    f"client {client_id} needs the SigningKey registered in config.identities"
                )
        elif identity is not None:
            raise ConfigurationError("an identity is only used in active mode")
        self._config = config
        self._id = int(client_id)
        self._identity = identity
        # The one range check of the input: here, or when a lazy input is called.
        self._input: InputVector | None = (
            input_vector if callable(input_vector) else self._checked_input(input_vector)
        )
        self._state = ClientState.AWAIT_ADVERTISE_KEYS
        # Secrets, wiped once no longer needed and on abort.
        self._cipher_keys: KeyPair | None = None
        self._mask_keys: KeyPair | None = None
        self._self_seed: bytes | None = None
        self._channel_secrets: dict[int, bytes] = {}  # dealer -> raw X25519 secret (round 1-2)
        self._held: dict[int, HeldShares] = {}  # dealer -> this client's shares and box keys
        # Public views of the session as this client saw it.
        self._commitment: bytes | None = None  # the server's nonce commitment (round 0)
        self._peers: dict[int, PeerKeys] = {}  # U1 within N(u)
        self._disputed: frozenset[int] = frozenset()  # self-mask box keys revealed
        self._sharers: frozenset[int] = frozenset()  # the peers it masked with
        self._survivors: frozenset[int] | None = None  # U3 (global), active mode
        self._dropped: frozenset[int] = frozenset()  # owners of mask-key shares revealed

    # -- ClientProtocol ------------------------------------------------------------------

    @property
    def client_id(self) -> int:
        return self._id

    @property
    def config(self) -> ProtocolConfig:
        """The session's public parameters."""
        return self._config

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def done(self) -> bool:
        """True once nothing more can be asked of the client: it answered Unmasking and
        revealed no mask-key share (else a fallback wave may still ask it, until it
        answers one: the client then keeps its mask key)."""
        return self._state is ClientState.DONE

    @property
    def aborted(self) -> bool:
        return self._state is ClientState.ABORTED


    # -- state export --------------------------------------------------------------------

    def to_state_bytes(self) -> bytes:
        """This client's complete state, as versioned msgpack bytes (no pickle).

        SECRET: the bytes hold the client's private keys, self-mask seed, the shares and
        box keys it holds and its input. Store them only where the client's own secrets may
        be (e.g. Flower's node-local ``context.state``); never send them to the server, log
        them or put them in a repr. They restore with :meth:`from_state_bytes` into this
        session and client id only. The identity (active mode) is not in them: the caller
        keeps it.

        Raises UsageError while the input is a callable not called yet (a lazy input
        cannot be stored: give the client its vector).
        """
        if callable(self._input):
            raise UsageError("a lazy input cannot be stored; give the client its vector")
        return encode_state(self._config, self._id, self._snapshot())

    @classmethod
    def from_state_bytes(
        cls,
        config: ProtocolConfig,
        client_id: int,
        data: bytes,
        *,
        identity: SigningKey | None = None,
    ) -> Client:
        """The client :meth:`to_state_bytes` saved, in ``config``'s session as ``client_id``.

        ``identity`` is the client's Ed25519 key in active mode (as for the constructor).
        The restored client goes on exactly where the saved one stood.

        Raises DecodeError (``party=None``) if ``data`` is not a state of this client in
        this configuration of this session (truncated, garbled, another session, config,
        client id or version, a field that its state cannot hold); ConfigurationError as
        the constructor does for the config, the id or the identity.
        """
        client = cls(config, client_id, _no_input, identity)
        client._restore(decode_state(config, client.client_id, data))
        return client

    def _snapshot(self) -> ClientSnapshot:
        if self._state in (ClientState.DONE, ClientState.ABORTED):
            return ClientSnapshot(self._state)  # nothing of a finished session is needed
        assert not callable(self._input)
        return ClientSnapshot(
            state=self._state,
            input_vector=self._input,
            cipher_key=None if self._cipher_keys is None else self._cipher_keys.private_bytes(),
            mask_key=None if self._mask_keys is None else self._mask_keys.private_bytes(),
            self_seed=self._self_seed,
            commitment=self._commitment,
            channel_secrets=self._channel_secrets,
            held=self._held,
            peers=self._peers,
            disputed=self._disputed,
            sharers=self._sharers,
            survivors=self._survivors,
            dropped=self._dropped,
        )

    def _restore(self, saved: ClientSnapshot) -> None:
        self._state = saved.state
        self._input = saved.input_vector
        self._cipher_keys = _key_pair(saved.cipher_key)
        self._mask_keys = _key_pair(saved.mask_key)
        self._self_seed = saved.self_seed
        self._commitment = saved.commitment
        self._channel_secrets = dict(saved.channel_secrets)
        self._held = dict(saved.held)
        self._peers = dict(saved.peers)
        self._disputed = saved.disputed
        self._sharers = saved.sharers
        self._survivors = saved.survivors
        self._dropped = saved.dropped

    def receive(self, message: Message) -> list[Message]:
        """Process one server message and return the reply to send to the server.

        Guarantees: a message with a wrong sender, recipient or session, or one that does
        not fit the current state (no row of
        :data:`~secagg.protocols.bonawitz.rounds.CLIENT_TABLE`), is refused and leaves the state
        unchanged; a request refused inside a round aborts the client for good (its secrets
        are wiped) and nothing is revealed.

        Raises ProtocolViolation (party 0) for a misrouted, foreign-session or out-of-round
        message, MaliciousRequestError for a request that breaks a guard (both secrets of
        one peer, fewer than t peers, inconsistent lists, a nonce that does not open its
        commitment...), AuthenticationError for a forwarded signature that does not verify;
        UsageError for a non-protocol object.
        """
        if not isinstance(message, ProtocolMessage):
            raise UsageError(f"not a protocol message: {type(message).__name__}")
        if self._state in (ClientState.DONE, ClientState.ABORTED):
            raise ProtocolViolation(
                f"{type(message).__name__} after the session ended ({self._state.value})",
                party=message.sender,
            )
        if message.sender != SERVER_ID or message.recipient != self._id:
            raise ProtocolViolation(
                f"message from {message.sender} to {message.recipient} is not for client "
                f"{self._id}",
                party=message.sender,
            )
        if message.session_id != self._config.session_id:
            raise ProtocolViolation("message of another session", party=SERVER_ID)
        row = CLIENT_TABLE.lookup(self._config.mode, self._state, type(message))
        if row is None:
            raise ProtocolViolation(
                f"{type(message).__name__} is out of round ({self._state.value})",
                party=SERVER_ID,
            )
        handler: Callable[[ProtocolMessage], Message] = getattr(self, row.handler)
        try:
            reply = handler(message)
        except BaseException:
            self._abort()
            raise
        self._state = row.next_state
        if self._state is ClientState.UNMASKED and not self._dropped:
            self._state = ClientState.DONE  # it revealed no mask-key share: nothing follows
        if self._state is ClientState.DONE:
            self._wipe()
        return [reply]

    # -- lifecycle -----------------------------------------------------------------------

    def _abort(self) -> None:
        self._state = ClientState.ABORTED
        self._wipe()
        self._input = None

    def _wipe(self) -> None:
        self._cipher_keys = self._mask_keys = None
        self._self_seed = None
        self._channel_secrets.clear()
        self._held.clear()

    # -- round 0 -------------------------------------------------------------------------

    def _advertise_keys(self, message: AdvertiseKeysRequest) -> AdvertiseKeys:
        sid = self._config.session_id
        cipher_seed, mask_seed = os.urandom(32), os.urandom(32)
        cipher_signer = SigningKey.from_private_bytes(cipher_seed)
        mask_signer = SigningKey.from_private_bytes(mask_seed)
        # The same key pairs as X25519 keys: the Ed25519 secret scalars (clamped), so that
        # the server can verify a reconstructed mask key exactly.
        self._cipher_keys = KeyPair.from_private_bytes(secret_scalar(cipher_seed))
        self._mask_keys = KeyPair.from_private_bytes(secret_scalar(mask_seed))
        cipher_public, mask_public = cipher_signer.verify_key, mask_signer.verify_key
        self._self_seed = os.urandom(32)
        self._commitment = message.nonce_commitment
        commitment = self_mask_commitment(sid, self._id, self._self_seed)
        signature = b""
        if self._identity is not None:
            signature = self._identity.sign(
                advertise_signature_payload(
                    sid, self._id, message.nonce_commitment, cipher_public, mask_public,
                    commitment,
                )
            )
        return AdvertiseKeys(
            self._id,
            SERVER_ID,
            sid,
            cipher_public,
            mask_public,
            commitment,
            cipher_signer.sign(key_proof_payload(sid, self._id, "cipher", cipher_public)),
            mask_signer.sign(key_proof_payload(sid, self._id, "mask", mask_public)),
            signature,
        )

    # -- round 1 -------------------------------------------------------------------------

    def _share_keys(self, message: ShareKeysRequest) -> ShareKeys:
        config, sid = self._config, self._config.session_id
        cipher, mask = self._cipher_keys, self._mask_keys
        assert cipher is not None and mask is not None and self._self_seed is not None
        assert self._commitment is not None
        publics = check_peers(
            config, self._id, (cipher.public_bytes, mask.public_bytes), self._commitment,
            message.peers,
        )
        secrets = {self._id: cipher.exchange(cipher.public_bytes)}
        for peer, (cipher_public, _) in publics.items():
            try:
                secrets[peer] = cipher.exchange(cipher_public, party=peer)
            except DecodeError:
                raise refuse(f"the key of client {peer} is invalid") from None
        holders = sorted(secrets)
        dealt = self._deal(mask.private_bytes(), self._self_seed, holders)
        boxes: list[DealtBoxes] = []
        for holder in holders:
            keys = derive_box_keys(secrets[holder], sid, self._id, holder)
            self_mask_box = seal_box(keys.self_mask, dealt[holder].self_mask, SecretKind.SELF_MASK)
            mask_key_box = seal_box(keys.mask_key, dealt[holder].mask_key, SecretKind.MASK_KEY)
            signature = b""
            if self._identity is not None:
                signature = self._identity.sign(
                    box_signature_payload(sid, self._id, holder, self_mask_box, mask_key_box)
                )
            boxes.append(DealtBoxes(holder, self_mask_box, mask_key_box, signature))
        self._peers = {peer.client_id: peer for peer in message.peers}
        self._channel_secrets = secrets
        return ShareKeys(self._id, SERVER_ID, sid, tuple(boxes))

    def _deal(
        self, mask_key: bytes, self_seed: bytes, holders: Sequence[int]
    ) -> dict[int, DealtShares]:
        """The two box plaintexts of every holder (:func:`.bundles.deal`). The one place a
        test's faulty client changes what this client deals (:mod:`secagg.testing`)."""
        return deal(mask_key, self_seed, holders, self._config.threshold)

    # -- round 2 -------------------------------------------------------------------------

    def _share_check(self, message: ShareCheckRequest) -> ShareCheck:
        config, sid = self._config, self._config.session_id
        assert self._commitment is not None and self._cipher_keys is not None
        check_share_check_request(config, self._id, self._peers, self._commitment, message)
        opened: list[ShareBundle] = []
        held: dict[int, HeldShares] = {}
        complaints: list[Complaint] = []
        unsigned: list[int] = []
        # Check values go in dealer order, whatever order the boxes came in.
        boxes = sorted(message.boxes, key=lambda item: item.peer)
        for item in boxes:
            dealer = item.peer
            keys = derive_box_keys(self._channel_secrets[dealer], sid, dealer, self._id)
            bundle = self._open(item, keys)
            if bundle is not None:
                opened.append(bundle)
                held[dealer] = HeldShares(bundle, keys)
                continue
            if dealer == self._id:
                raise refuse("our own boxes came back changed")
            if config.mode == ACTIVE and not self._dealer_signed(item):
                unsigned.append(dealer)  # the server or the dealer changed it: no secret
                continue
            peer = self._peers[dealer]
            check_key_proof(config, peer, "cipher")
            shared, proof = prove_shared_secret(
                self._cipher_keys_scalar(),
                peer.cipher_public_key,
                context=proof_context(sid, "complaint", self._id, dealer),
            )
            complaints.append(Complaint(dealer, shared, proof))
        values = check_values(sid, message.nonce, opened)
        rows = iter(values)
        ordered = np.zeros((len(boxes), values.shape[1]), dtype=np.int64)
        for index, item in enumerate(boxes):
            if item.peer in held:
                ordered[index] = next(rows)
        self._held = held
        # The channel secrets, the cipher key and the nonce commitment are never needed again.
        self._cipher_keys = None
        self._channel_secrets.clear()
        self._commitment = None
        return ShareCheck(
            self._id, SERVER_ID, sid, pack_checks(ordered), tuple(complaints), tuple(unsigned)
        )

    def _open(self, item: DealtBoxes, keys: BoxKeys) -> ShareBundle | None:
        """The shares of ``item``'s two boxes, or None if either does not open or parse."""
        config, dealer = self._config, item.peer
        self_mask = open_box(keys.self_mask, item.self_mask_box, SecretKind.SELF_MASK)
        mask_key = open_box(keys.mask_key, item.mask_key_box, SecretKind.MASK_KEY)
        if self_mask is None or mask_key is None:
            return None
        where = {
            "session_id": config.session_id,
            "dealer": dealer,
            "holder": self._id,
            "threshold": config.threshold,
        }
        try:
            self_mask_share, blinding = decode_self_mask_box(self_mask, **where)  # type: ignore[arg-type]
            key_share = decode_mask_key_box(mask_key, **where)  # type: ignore[arg-type]
        except DecodeError:
            return None
        return ShareBundle(dealer, self._id, key_share, self_mask_share, blinding)

    def _dealer_signed(self, item: DealtBoxes) -> bool:
        assert self._config.identities is not None
        payload = box_signature_payload(
            self._config.session_id, item.peer, self._id, item.self_mask_box, item.mask_key_box
        )
        try:
            verify_signature(self._config.identities[item.peer], payload, item.signature)
        except (AuthenticationError, DecodeError):
            return False
        return True

    def _cipher_keys_scalar(self) -> bytes:
        assert self._cipher_keys is not None
        return self._cipher_keys.private_bytes()

    def _dispute(self, message: DisputeRequest) -> DisputeResponse:
        dealers = check_dispute_request(self._held, message)
        self._disputed = frozenset(dealers)
        keys = tuple(BoxKey(dealer, self._held[dealer].keys.self_mask) for dealer in dealers)
        return DisputeResponse(self._id, SERVER_ID, self._config.session_id, keys)

    # -- round 3 -------------------------------------------------------------------------

    def _masked_input(self, message: MaskedInputRequest) -> MaskedInput:
        config = self._config
        peers = check_masked_input_request(config, self._id, set(self._held), message)
        assert self._mask_keys is not None and self._self_seed is not None
        order = sorted(peers)
        publics = x25519_publics([self._peers[peer].mask_public_key for peer in order])
        pair_seeds = {
            peer: agree(
                self._mask_keys,
                public,
                purpose=Purpose.MASK_SEED,
                session_id=config.session_id,
                own_id=self._id,
                peer_id=peer,
            )
            for peer, public in zip(order, publics, strict=True)
        }
        masked = mask_checked_input(
            self._take_input(),
            bits=config.bits,
            own_id=self._id,
            self_seed=self._self_seed,
            pair_seeds=pair_seeds,
            session_id=config.session_id,
        )
        payload = pack(masked, config.bits)
        del masked
        self._sharers = peers
        # b_u is never needed again; shares of the peers it does not mask with neither.
        self._self_seed = None
        self._held = {d: h for d, h in self._held.items() if d in peers or d == self._id}
        return MaskedInput(
            self._id, SERVER_ID, config.session_id, config.bits, config.vector_length, payload
        )

    def _take_input(self) -> np.ndarray:
        """The input, checked exactly once: a vector was checked by the constructor (or
        comes from a checked saved state); a lazy input is checked as it is called."""
        source, self._input = self._input, None
        if source is None:
            raise UsageError("the input was already used")
        return self._checked_input(source()) if callable(source) else source

    def _checked_input(self, vector: object) -> np.ndarray:
        return check_input_values(
            vector, self._config.bits, self._config.vector_length, "the input"
        )

    # -- round 4 (active mode) -----------------------------------------------------------

    def _consistency_check(self, message: ConsistencyCheckRequest) -> ConsistencyCheck:
        config = self._config
        survivors = check_consistency_request(config, self._id, self._sharers, message)
        assert self._identity is not None
        signature = self._identity.sign(
            consistency_signature_payload(config.session_id, sorted(survivors))
        )
        self._survivors = survivors
        return ConsistencyCheck(self._id, SERVER_ID, config.session_id, signature)

    # -- round 5 -------------------------------------------------------------------------

    def _unmasking(self, message: UnmaskingRequest) -> UnmaskingResponse:
        survivors, dropped = check_unmasking_request(
            self._config, self._id, self._sharers, self._survivors, self._disputed, message
        )
        # Compact shares: the server knows the holder (x), the threshold and whose secret.
        self_mask_shares = tuple(
            RevealedShare(
                owner,
                pack_limb_shares(self._held[owner].bundle.self_mask_share.values),
                self._held[owner].keys.self_mask,
            )
            for owner in survivors
        )
        key_shares = tuple(
            RevealedShare(
                owner,
                pack_limb_shares(self._held[owner].bundle.key_share.values),
                self._held[owner].keys.mask_key,
            )
            for owner in dropped
        )
        self._dropped = frozenset(dropped)
        self._held.clear()
        self._self_seed = None
        self._survivors = None  # U3 was needed for this request only
        if not dropped:
            self._mask_keys = None
        return UnmaskingResponse(
            self._id, SERVER_ID, self._config.session_id, self_mask_shares, key_shares
        )

    def _fallback(self, message: FallbackRequest) -> FallbackResponse:
        config = self._config
        owners = check_fallback_request(config, self._dropped, self._peers, message)
        assert self._mask_keys is not None
        scalar = self._mask_keys.private_bytes()
        secrets = []
        for owner in owners:
            shared, proof = prove_shared_secret(
                scalar,
                self._peers[owner].mask_public_key,
                context=proof_context(config.session_id, "pair", self._id, owner),
            )
            secrets.append(PairSecret(owner, shared, proof))
        return FallbackResponse(self._id, SERVER_ID, config.session_id, tuple(secrets))

    def __repr__(self) -> str:
        return f"Client(id={self._id}, state={self._state.name})"


def _no_input() -> np.ndarray:
    """The input of a client being restored (replaced by the saved one, or never used)."""
    raise UsageError("this restored client has no input")


def _key_pair(private: bytes | None) -> KeyPair | None:
    return None if private is None else KeyPair.from_private_bytes(private)
