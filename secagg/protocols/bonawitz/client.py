"""The client state machine of Bonawitz et al. (CCS'17), with SecAgg+ neighbourhoods.

Role: client, every round (0-4): the handlers of the client's rows of the transition table.

Theory of operation. A :class:`Client` consumes one server message at a time and returns
its reply; it never touches a socket or a clock. The legal transitions live in one table,
:data:`secagg.protocols.bonawitz.rounds.CLIENT_TABLE` ((mode, state, request type) -> its
handler and the next state), consulted once per message in :meth:`Client.receive`: an
out-of-round message is refused from that lookup, before any handler runs.

Rounds (``U1 >= U2 >= U3`` are the live sets as this client sees them, restricted to its
neighbourhood ``N(u)``; ``t`` is the threshold):

0. AdvertiseKeys: fresh X25519 pairs (c_u for the share channel, s_u for pairwise masks),
   a fresh self-mask seed b_u and a SHA-256 commitment to it; signed in active mode.
1. ShareKeys: Shamir-share s_u^SK and b_u t-of-(|U1| + 1) among U1 and u itself; seal
   each neighbour's bundle with AES-GCM under an X25519-agreed key.
2. MaskedInputCollection: open the bundles addressed to u (U2 = their senders); mask the
   input pairwise with every peer of U2 and with b_u; send it bit-packed.
3. ConsistencyCheck (active mode only): sign the survivor set U3.
4. Unmasking: reveal b_v shares for survivors and s_v^SK shares for dropped peers (in
   shamir's compact form: limbs only, the server knows x, t and whose secret).

Its input is checked once, at its edge (:func:`secagg.ring.check_values`: when the
client is built, or when it calls a lazy input), and masked without a second scan.

Two rules the client keeps: it derives the dropped and surviving sets itself from what it
saw and refuses a request that would reveal both shares of one peer, and it answers
Unmasking at most once. Every refusal is a :class:`ProtocolViolation` naming the server
(``party=0``); a refusal inside a round aborts the client for good and wipes its secrets.

Between rounds a client can be saved as bytes (:meth:`Client.to_state_bytes`) and
restored in another process (:meth:`Client.from_state_bytes`); the encoding and its
validation live in :mod:`secagg.protocols.bonawitz.client_state`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from secagg.channel import open_sealed, seal
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
    ShareBundle,
    clamp_scalar,
    decode_share_bundle,
    encode_share_bundle,
    make_share_bundle,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.client_guards import (
    check_consistency_request,
    check_peers,
    check_unmasking_request,
    refuse,
)
from secagg.protocols.bonawitz.client_state import ClientSnapshot, decode_state, encode_state
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    MaskedInput,
    MaskedInputRequest,
    PeerKeys,
    RevealedShare,
    SealedShares,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
    advertise_signature_payload,
    consistency_signature_payload,
)
from secagg.protocols.bonawitz.rounds import CLIENT_TABLE, ClientState
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import check_values
from secagg.secret import SecretHolder
from secagg.shamir import pack_limb_shares, share_secrets
from secagg.signing import SigningKey

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
        self._neighbours = config.neighbours_of(self._id)
        # Secrets, wiped once no longer needed and on abort.
        self._cipher_keys: KeyPair | None = None
        self._mask_keys: KeyPair | None = None
        self._self_seed: bytes | None = None
        self._channel_keys: dict[int, bytes] = {}
        self._bundles: dict[int, ShareBundle] = {}  # dealer -> this client's shares
        # Public views of the session as this client saw it.
        self._peers: dict[int, PeerKeys] = {}  # U1 within N(u)
        self._sharers: frozenset[int] = frozenset()  # U2 within N(u)
        self._unreadable: set[int] = set()
        self._survivors: frozenset[int] | None = None  # U3 (global), active mode

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
        """True once the client answered Unmasking (its part is over)."""
        return self._state is ClientState.DONE

    @property
    def aborted(self) -> bool:
        return self._state is ClientState.ABORTED

    # -- state export --------------------------------------------------------------------

    def to_state_bytes(self) -> bytes:
        """This client's complete state, as versioned msgpack bytes (no pickle).

        SECRET: the bytes hold the client's private keys, self-mask seed, the shares it
        holds and its input. Store them only where the client's own secrets may be (e.g.
        Flower's node-local ``context.state``); never send them to the server, log them or
        put them in a repr. They restore with :meth:`from_state_bytes` into this session
        and client id only. The identity (active mode) is not in them: the caller keeps it.

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
            channel_keys=self._channel_keys,
            bundles=self._bundles,
            peers=self._peers,
            sharers=self._sharers,
            unreadable=frozenset(self._unreadable),
            survivors=self._survivors,
        )

    def _restore(self, saved: ClientSnapshot) -> None:
        self._state = saved.state
        self._input = saved.input_vector
        self._cipher_keys = _key_pair(saved.cipher_key)
        self._mask_keys = _key_pair(saved.mask_key)
        self._self_seed = saved.self_seed
        self._channel_keys = dict(saved.channel_keys)
        self._bundles = dict(saved.bundles)
        self._peers = dict(saved.peers)
        self._sharers = saved.sharers
        self._unreadable = set(saved.unreadable)
        self._survivors = saved.survivors

    def receive(self, message: Message) -> list[Message]:
        """Process one server message and return the reply to send to the server.

        Guarantees: a message with a wrong sender, recipient or session, or one that does
        not fit the current state (no row of
        :data:`~secagg.protocols.bonawitz.rounds.CLIENT_TABLE`), is refused and leaves the state
        unchanged; a request refused inside a round aborts the client for good (its secrets
        are wiped) and nothing is revealed.

        Raises ProtocolViolation (party 0) for a misrouted, foreign-session or out-of-round
        message, MaliciousRequestError for a request that breaks a guard (both shares of one
        peer, fewer than t peers, inconsistent survivor lists...), AuthenticationError for a
        forwarded signature that does not verify; UsageError for a non-protocol object.
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
        self._channel_keys.clear()
        self._bundles.clear()

    # -- round 0 -------------------------------------------------------------------------

    def _advertise_keys(self, message: AdvertiseKeysRequest) -> AdvertiseKeys:
        config = self._config
        self._cipher_keys = KeyPair.generate()
        # Clamped, so that the server can verify a reconstructed key exactly.
        self._mask_keys = KeyPair.from_private_bytes(clamp_scalar(os.urandom(32)))
        self._self_seed = os.urandom(32)
        commitment = self_mask_commitment(config.session_id, self._id, self._self_seed)
        signature = b""
        if self._identity is not None:
            signature = self._identity.sign(
                advertise_signature_payload(
                    config.session_id,
                    self._id,
                    self._cipher_keys.public_bytes,
                    self._mask_keys.public_bytes,
                    commitment,
                )
            )
        return AdvertiseKeys(
            self._id,
            SERVER_ID,
            config.session_id,
            self._cipher_keys.public_bytes,
            self._mask_keys.public_bytes,
            commitment,
            signature,
        )

    # -- round 1 -------------------------------------------------------------------------

    def _share_keys(self, message: ShareKeysRequest) -> ShareKeys:
        config = self._config
        assert self._cipher_keys is not None and self._mask_keys is not None
        own_keys = (self._cipher_keys.public_bytes, self._mask_keys.public_bytes)
        check_peers(config, self._id, own_keys, message.peers)
        assert self._self_seed is not None
        channel_keys: dict[int, bytes] = {}
        for peer in message.peers:
            try:
                channel_keys[peer.client_id] = agree(
                    self._cipher_keys,
                    peer.cipher_public_key,
                    purpose=Purpose.SHARE_KEY,
                    session_id=config.session_id,
                    own_id=self._id,
                    peer_id=peer.client_id,
                )
            except DecodeError:
                raise refuse(f"the key of client {peer.client_id} is invalid") from None
        holders = sorted([self._id, *channel_keys])
        shares = share_secrets(
            [self._mask_keys.private_bytes(), self._self_seed], holders, config.threshold
        )
        sealed: list[SealedShares] = []
        for holder in holders:
            key_share, self_mask_share = shares[holder]
            if holder == self._id:
                # Kept under the derived sharing ids, as a peer's bundle is when opened.
                self._bundles[holder] = make_share_bundle(
                    config.session_id,
                    self._id,
                    holder,
                    config.threshold,
                    key_share.values,
                    self_mask_share.values,
                )
                continue
            bundle = ShareBundle(self._id, holder, key_share, self_mask_share)
            ciphertext = seal(
                channel_keys[holder],
                encode_share_bundle(bundle),
                session_id=config.session_id,
                sender=self._id,
                recipient=holder,
            )
            sealed.append(SealedShares(holder, ciphertext))
        self._peers = {peer.client_id: peer for peer in message.peers}
        self._channel_keys = channel_keys
        return ShareKeys(self._id, SERVER_ID, config.session_id, tuple(sealed))

    # -- round 2 -------------------------------------------------------------------------

    def _masked_input(self, message: MaskedInputRequest) -> MaskedInput:
        config = self._config
        sharers = [item.peer for item in message.sealed_shares]
        if len(set(sharers)) != len(sharers):
            raise refuse("two share bundles from one client")
        if any(peer not in self._peers for peer in sharers):
            raise refuse("a share bundle from a client that did not advertise keys to us")
        if len(sharers) + 1 < config.threshold:
            raise refuse(f"fewer than t = {config.threshold} clients remain")
        assert self._mask_keys is not None and self._self_seed is not None
        for item in message.sealed_shares:
            # A bundle that does not open is that share lost, not a reason to stop: the
            # peer still masks with us, so we still mask with it.
            try:
                plaintext = open_sealed(
                    self._channel_keys[item.peer],
                    item.ciphertext,
                    session_id=config.session_id,
                    sender=item.peer,
                    recipient=self._id,
                )
                self._bundles[item.peer] = decode_share_bundle(
                    plaintext,
                    session_id=config.session_id,
                    dealer=item.peer,
                    holder=self._id,
                    threshold=config.threshold,
                )
            except (AuthenticationError, DecodeError):
                self._unreadable.add(item.peer)
        pair_seeds = {
            peer: agree(
                self._mask_keys,
                self._peers[peer].mask_public_key,
                purpose=Purpose.MASK_SEED,
                session_id=config.session_id,
                own_id=self._id,
                peer_id=peer,
            )
            for peer in sharers
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
        self._sharers = frozenset(sharers)
        # s_u^SK, b_u and the channel keys are never needed again: only shares remain.
        self._cipher_keys = self._mask_keys = None
        self._self_seed = None
        self._channel_keys.clear()
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
        return check_values(vector, self._config.bits, self._config.vector_length, "the input")

    # -- round 3 (active mode) -----------------------------------------------------------

    def _consistency_check(self, message: ConsistencyCheckRequest) -> ConsistencyCheck:
        config = self._config
        survivors = check_consistency_request(config, self._id, self._sharers, message)
        assert self._identity is not None
        signature = self._identity.sign(
            consistency_signature_payload(config.session_id, sorted(survivors))
        )
        self._survivors = survivors
        return ConsistencyCheck(self._id, SERVER_ID, config.session_id, signature)

    # -- round 4 -------------------------------------------------------------------------

    def _unmasking(self, message: UnmaskingRequest) -> UnmaskingResponse:
        survivors, dropped = check_unmasking_request(
            self._config, self._id, self._sharers, self._survivors, message
        )
        # Compact shares: the server knows the holder (x), the threshold and whose secret.
        self_mask_shares = tuple(
            RevealedShare(owner, pack_limb_shares(self._bundles[owner].self_mask_share.values))
            for owner in survivors
            if owner in self._bundles
        )
        key_shares = tuple(
            RevealedShare(owner, pack_limb_shares(self._bundles[owner].key_share.values))
            for owner in dropped
            if owner in self._bundles
        )
        unreadable = tuple(sorted(self._unreadable & (set(survivors) | set(dropped))))
        return UnmaskingResponse(
            self._id, SERVER_ID, self._config.session_id, self_mask_shares, key_shares, unreadable
        )

    def __repr__(self) -> str:
        return f"Client(id={self._id}, state={self._state.name})"


def _no_input() -> np.ndarray:
    """The input of a client being restored (replaced by the saved one, or never used)."""
    raise UsageError("this restored client has no input")


def _key_pair(private: bytes | None) -> KeyPair | None:
    return None if private is None else KeyPair.from_private_bytes(private)
