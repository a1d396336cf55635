"""Aggregation under homomorphic encryption: threshold Paillier or single-key CKKS, sans-I/O.

Theory of operation (the same shape as the Bonawitz state machines, as h11 does for HTTP):
every party is an object that consumes messages and returns the messages it wants sent.

1. ``encrypted_input``: the server asks every client for its input. A client encrypts its
   vector in Z_(2^bits) (already clipped, quantized and weighted, e.g. by
   :meth:`ThresholdHEClient.from_update`, which packs the weight as one more value) under
   the session's public key and uploads it. The server adds ciphertexts as they arrive
   (memory O(m)); a client that drops before submitting is simply not in the sum.
2. ``decryption``: the server sends the aggregate and the list of included clients to the
   decryption committee. Threshold Paillier: each member returns a partial decryption
   with a proof (:mod:`secagg.he.threshold_paillier`); the server verifies each proof,
   leaves out (and reports in ``faults``) any that fails, and combines t valid partials,
   so members may drop as long as t remain. CKKS: TenSEAL has no threshold decryption;
   committee members hold the single secret key, decrypt the aggregate and return it;
   the server needs ``threshold`` identical answers.

Two rules every party keeps. The server never holds key material: it can add ciphertexts
but decrypts nothing alone. A committee member answers one decryption request per session,
only for an aggregate of at least ``min_clients`` summands, all configured clients.

Trust model: semi-honest server and clients (as SecAgg's semi-honest mode). A member
cannot check that the aggregate really is the sum of the listed clients' ciphertexts, so a
malicious server could have one client's ciphertext decrypted by claiming a larger summand
count; and without range proofs a malicious client can corrupt (not read) the sum. CKKS:
every key holder can decrypt every client's upload.
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from secagg.encoding import FixedPoint
from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
    ProtocolAbort,
    ProtocolViolation,
    ShareError,
    UsageError,
)
from secagg.he.ckks import CkksContext, CkksParameters, CkksVector
from secagg.he.paillier import EncryptedVector, RandomnessSource, encrypt_vector
from secagg.he.slots import SlotLayout
from secagg.he.slots import unpack as unpack_slots
from secagg.he.threshold_paillier import (
    KeyShare,
    PartialDecryption,
    ThresholdPublicKey,
    combine_partials,
    deal_threshold_keys,
    verify_partial,
)
from secagg.packing import pack, unpack
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH, SESSION_ID_BYTES
from secagg.protocols.threshold_he.blocks import (
    assigned_blocks,
    block_bounds,
    plan_fallback,
)
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.ring import dtype_for_bits

__all__ = [
    "BALANCED",
    "CKKS",
    "CKKS_MAX_SUM_BITS",
    "DECRYPTION_MODES",
    "DEFAULT_COMMITTEE",
    "DEFAULT_DECRYPTION",
    "FULL",
    "THRESHOLD_PAILLIER",
    "Backend",
    "ClientState",
    "ServerState",
    "ThresholdHEClient",
    "ThresholdHEConfig",
    "ThresholdHEServer",
    "setup_ckks",
    "setup_threshold_paillier",
]

Backend = Literal["threshold-paillier", "ckks"]
THRESHOLD_PAILLIER: Final = "threshold-paillier"
CKKS: Final = "ckks"

CKKS_MAX_SUM_BITS = 44
"""CKKS sums integers exactly only while they stay far below float64's 53-bit mantissa:
bits + ceil(log2(clients)) must not exceed this (measured error at 2^44: < 0.01)."""
_CKKS_ROUNDING_MARGIN = 0.25
DEFAULT_COMMITTEE = 5
"""Default committee size: the first min(5, n) clients."""
FULL: Final = "full"
BALANCED: Final = "balanced"
DECRYPTION_MODES: tuple[str, ...] = (FULL, BALANCED)
DEFAULT_DECRYPTION: str = FULL
"""Threshold Paillier's default decryption mode (see :class:`ThresholdHEConfig`)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@dataclass(frozen=True)
class ThresholdHEConfig:
    """Public parameters of one session; every party holds the same copy. No secret in it.

    ``committee`` lists the decryption committee's client ids; with threshold Paillier the
    member at position i holds key share i + 1. ``threshold`` is t (CKKS: how many identical
    decryptions the server needs). ``min_clients`` is the fewest summands a member agrees
    to decrypt. ``decryption`` (threshold Paillier only) is ``"full"`` (every member
    partially decrypts every ciphertext of the aggregate) or ``"balanced"`` (the
    ciphertexts are cut into one block per member and each block goes to t members, see
    :mod:`secagg.protocols.threshold_he.blocks`: a member decrypts t/l of the aggregate).
    CKKS ignores ``decryption``: its members decrypt the whole aggregate with the single
    key and the server compares whole answers. Raises ConfigurationError on anything
    inconsistent, HeadroomError when the packing slots cannot hold a sum over all clients.
    """

    session_id: bytes
    clients: tuple[int, ...]
    bits: int
    vector_length: int
    committee: tuple[int, ...]
    threshold: int
    min_clients: int = 2
    public_key: ThresholdPublicKey | None = None
    guard_bits: int = 1
    ckks: CkksContext | None = None
    decryption: str = DEFAULT_DECRYPTION

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, bytes) or not (
            SESSION_ID_BYTES[0] <= len(self.session_id) <= SESSION_ID_BYTES[1]
        ):
            raise ConfigurationError("session_id must be 16 to 64 bytes")
        clients = tuple(sorted(self._ids(self.clients, "clients")))
        if len(clients) < 2:
            raise ConfigurationError("an aggregation needs at least two clients")
        object.__setattr__(self, "clients", clients)
        committee = tuple(self._ids(self.committee, "committee"))
        if not committee or not set(committee) <= set(clients):
            raise ConfigurationError("the committee must be a non-empty subset of the clients")
        object.__setattr__(self, "committee", committee)
        for name, value, low, high in (
            ("bits", self.bits, 1, 64),
            ("vector_length", self.vector_length, 1, MAX_VECTOR_LENGTH),
            ("threshold", self.threshold, 1, len(committee)),
            ("min_clients", self.min_clients, 2, len(clients)),
        ):
            if not _is_int(value) or not low <= value <= high:
                raise ConfigurationError(f"{name} must be an int in [{low}, {high}]")
        if (self.public_key is None) == (self.ckks is None):
            raise ConfigurationError("give exactly one of public_key (Paillier) and ckks")
        if not isinstance(self.decryption, str) or self.decryption not in DECRYPTION_MODES:
            raise ConfigurationError(f"decryption must be one of {DECRYPTION_MODES}")
        if self.public_key is not None:
            key = self.public_key
            if key.holders != len(committee) or key.threshold != self.threshold:
                raise ConfigurationError("the key's (t, l) must match (threshold, committee)")
            _ = self.layout  # raises HeadroomError if the slots cannot hold the sum
        else:
            assert self.ckks is not None
            if self.ckks.has_secret_key:
                raise ConfigurationError("the shared config must hold the PUBLIC CKKS context")
            if self.bits + (len(clients) - 1).bit_length() > CKKS_MAX_SUM_BITS:
                raise ConfigurationError(
                    f"CKKS sums are exact only up to {CKKS_MAX_SUM_BITS} bits: lower bits"
                )

    @staticmethod
    def _ids(values: object, what: str) -> list[int]:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ConfigurationError(f"{what} must be a sequence of client ids")
        ids = []
        for value in values:
            if not _is_int(value) or not 1 <= value <= MAX_CLIENT_ID:
                raise ConfigurationError(f"{what}: {value!r} is not a client id")
            ids.append(int(value))
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"{what}: duplicate ids")
        return ids

    @property
    def backend(self) -> Backend:
        return THRESHOLD_PAILLIER if self.public_key is not None else CKKS

    @property
    def n(self) -> int:
        return len(self.clients)

    @property
    def layout(self) -> SlotLayout:
        """Paillier slot layout: ``bits``-bit values, a sum over every client never carries."""
        if self.public_key is None:
            raise UsageError("only threshold Paillier packs slots")
        return SlotLayout.for_modulus(
            self.public_key.paillier.n,
            value_bits=self.bits,
            max_summands=self.n,
            guard_bits=self.guard_bits,
        )

    @property
    def block_count(self) -> int:
        """How many blocks a decryption request cuts the aggregate into: 1 in full mode,
        one per committee member in balanced mode (CKKS: always 1)."""
        balanced = self.decryption == BALANCED and self.public_key is not None
        return len(self.committee) if balanced else 1

    def assigned_blocks(self, client_id: int) -> tuple[int, ...]:
        """The blocks member ``client_id`` decrypts when nobody drops: members are taken in
        sorted id order (ConfigurationError for a non-member)."""
        if client_id not in self.committee:
            raise ConfigurationError(f"client {client_id} is not on the committee")
        ordered = sorted(self.committee)
        return assigned_blocks(
            ordered.index(client_id), len(ordered), self.threshold, self.block_count
        )

    def holder_index(self, client_id: int) -> int:
        """The key-share index of committee member ``client_id`` (ConfigurationError if none)."""
        if client_id not in self.committee:
            raise ConfigurationError(f"client {client_id} is not on the committee")
        return self.committee.index(client_id) + 1

    def decryption_context(self, included: Sequence[int]) -> bytes:
        """What the decryption proofs are bound to: session and the included clients."""
        h = hashlib.sha256(b"secagg/threshold-he/decryption\x00" + self.session_id)
        for client in sorted(included):
            h.update(client.to_bytes(8, "big"))
        return h.digest()

    def __repr__(self) -> str:
        return (
            f"ThresholdHEConfig(backend={self.backend!r}, session_id="
            f"{self.session_id.hex()[:16]}..., n={self.n}, bits={self.bits}, "
            f"vector_length={self.vector_length}, committee={len(self.committee)}, "
            f"threshold={self.threshold}, decryption={self.decryption!r})"
        )


def setup_threshold_paillier(
    clients: Sequence[int],
    *,
    bits: int,
    vector_length: int,
    committee: Sequence[int] | None = None,
    threshold: int | None = None,
    key_bits: int = 2048,
    guard_bits: int = 1,
    min_clients: int = 2,
    session_id: bytes | None = None,
    safe_primes: tuple[int, int] | None = None,
    decryption: str = DEFAULT_DECRYPTION,
) -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    """Trusted-dealer setup: the public config and each committee member's key share.

    ``committee`` defaults to the first min(5, n) clients and ``threshold`` to a majority
    of it; ``decryption`` is the committee's mode (``"full"`` or ``"balanced"``, see
    :class:`ThresholdHEConfig`). The shares (client id -> KeyShare) go to their holders
    over private channels; the dealer forgets them. Raises ConfigurationError /
    HeadroomError as the config does.
    """
    ordered = sorted(int(c) for c in clients)
    members = list(committee) if committee is not None else ordered[:DEFAULT_COMMITTEE]
    t = threshold if threshold is not None else len(members) // 2 + 1
    public_key, shares = deal_threshold_keys(
        key_bits, threshold=t, holders=len(members), safe_primes=safe_primes
    )
    config = ThresholdHEConfig(
        session_id=os.urandom(16) if session_id is None else session_id,
        clients=tuple(ordered),
        bits=bits,
        vector_length=vector_length,
        committee=tuple(members),
        threshold=t,
        min_clients=min_clients,
        public_key=public_key,
        guard_bits=guard_bits,
        decryption=decryption,
    )
    return config, {member: shares[i] for i, member in enumerate(config.committee)}


def setup_ckks(
    clients: Sequence[int],
    *,
    bits: int,
    vector_length: int,
    committee: Sequence[int] | None = None,
    threshold: int = 1,
    min_clients: int = 2,
    session_id: bytes | None = None,
    parameters: CkksParameters | None = None,
) -> tuple[ThresholdHEConfig, CkksContext]:
    """Key-holder setup for CKKS: the public config and the SECRET context for the clients.

    The secret context goes to the clients only (never to the server); ``committee``
    (default: the first min(5, n) clients) are the key holders the server asks to decrypt.
    """
    ordered = sorted(int(c) for c in clients)
    secret = CkksContext.generate(parameters)
    config = ThresholdHEConfig(
        session_id=os.urandom(16) if session_id is None else session_id,
        clients=tuple(ordered),
        bits=bits,
        vector_length=vector_length,
        committee=tuple(committee) if committee is not None else tuple(ordered[:DEFAULT_COMMITTEE]),
        threshold=threshold,
        min_clients=min_clients,
        ckks=secret.public(),
    )
    return config, secret


# --------------------------------------------------------------------------------------------
# Shared encodings


def _to_signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Z_(2^bits) representatives -> centered integers as float64 (CKKS input, bits < 64)."""
    signed = values.astype(np.int64)
    signed[signed >= 1 << (bits - 1)] -= 1 << bits
    return signed.astype(np.float64)


def _from_rounded(rounded: np.ndarray, bits: int) -> np.ndarray:
    """Rounded float sums -> Z_(2^bits) in the storage dtype."""
    as_int = rounded.astype(np.int64).view(np.uint64)
    if bits < 64:
        as_int = as_int & np.uint64((1 << bits) - 1)
    return as_int.astype(dtype_for_bits(bits))


# --------------------------------------------------------------------------------------------
# Client


class ClientState(enum.Enum):
    WAITING = "waiting"
    INPUT_SENT = "input_sent"
    DECRYPTED = "decrypted"
    ABORTED = "aborted"


class ThresholdHEClient:
    """One client (implements ClientProtocol); committee members also decrypt.

    ``input_vector`` is the vector in Z_(2^bits) (or a callable returning it when first
    needed). A committee member needs its ``key_share`` (threshold Paillier) or the
    ``ckks_secret`` context (CKKS; every client may hold it, only members are asked).
    ``randomness`` supplies r^n for Paillier encryption (default: fresh; pass a filled
    :class:`~secagg.he.paillier.RandomnessPool` to move that cost offline). ``workers``
    threads share a member's partial decryption. Raises ConfigurationError on a client
    that is not in the session or on missing/mismatched key material.
    """

    def __init__(
        self,
        config: ThresholdHEConfig,
        client_id: int,
        input_vector: np.ndarray | Callable[[], np.ndarray],
        *,
        key_share: KeyShare | None = None,
        ckks_secret: CkksContext | None = None,
        randomness: RandomnessSource | None = None,
        workers: int = 1,
    ) -> None:
        if client_id not in config.clients:
            raise ConfigurationError(f"client {client_id} is not in this session")
        self._config = config
        self._id = client_id
        self._input = input_vector
        self._randomness = randomness
        self._workers = workers
        self._state = ClientState.WAITING
        # What the first decryption request asked: (SHA-256 of the aggregate, included), and
        # every block decrypted so far (a fallback wave may only add blocks of that request).
        self._first_request: tuple[bytes, tuple[int, ...]] | None = None
        self._decrypted_blocks: set[int] = set()
        self._share: KeyShare | None = None
        self._ckks: CkksContext | None = None
        member = client_id in config.committee
        if config.backend == THRESHOLD_PAILLIER:
            if key_share is not None:
                if (
                    not member
                    or key_share.public_key != config.public_key
                    or (key_share.index != config.holder_index(client_id))
                ):
                    raise ConfigurationError("this key share does not belong to this client")
                self._share = key_share
            elif member:
                raise ConfigurationError("a committee member needs its key share")
        else:
            if ckks_secret is not None:
                if not ckks_secret.has_secret_key or ckks_secret.parameters != (
                    config.ckks.parameters if config.ckks else None
                ):
                    raise ConfigurationError("ckks_secret must be the session's secret context")
                self._ckks = ckks_secret
            elif member:
                raise ConfigurationError("a CKKS committee member needs the secret context")

    @classmethod
    def from_update(
        cls,
        config: ThresholdHEConfig,
        client_id: int,
        fixed_point: FixedPoint,
        update: np.ndarray,
        weight: float = 1.0,
        **kwargs: object,
    ) -> ThresholdHEClient:
        """A client whose input is ``fixed_point.encode_weighted(update, weight)``: clipped,
        stochastically quantized, weighted, with the weight packed as one more value.

        ConfigurationError unless the encoding's bits match the config, its headroom covers
        every client, and ``len(update) + 1 == config.vector_length``.
        """
        if fixed_point.bits != config.bits or fixed_point.max_clients < config.n:
            raise ConfigurationError("the fixed-point encoding does not fit this session")
        if update.shape != (config.vector_length - 1,):
            raise ConfigurationError("update length must be vector_length - 1 (the weight)")
        encoded = fixed_point.encode_weighted(update, weight)
        return cls(config, client_id, encoded, **kwargs)  # type: ignore[arg-type]

    @property
    def client_id(self) -> int:
        return self._id

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def done(self) -> bool:
        if self._state is ClientState.DECRYPTED:
            return True
        return self._state is ClientState.INPUT_SENT and self._id not in self._config.committee

    def __repr__(self) -> str:
        return f"ThresholdHEClient(id={self._id}, state={self._state.name})"

    def receive(self, message: Message) -> list[Message]:
        """Answer InputRequest (once) and, on the committee, DecryptionRequest.

        A member decrypts exactly the requested blocks. After its first answer it answers
        only fallback waves: requests for blocks it has not decrypted yet, of the
        byte-identical aggregate and the same included list.

        Raises ProtocolViolation (party 0) for a message of another session or recipient,
        a message after this client aborted (the session ended for it), an input request
        out of turn (the client is past WAITING: its state is named), an unexpected message
        type, a decryption request in another block count than the session's mode or for
        empty blocks, or one that could reveal less than an aggregate of ``min_clients``;
        MaliciousRequestError for a further decryption request of another aggregate or
        included list, or of blocks already decrypted. A refused decryption request aborts
        the client for good.
        """
        config = self._config
        if message.session_id != config.session_id or message.recipient != self._id:
            raise ProtocolViolation("message of another session or recipient", party=SERVER_ID)
        if message.sender != SERVER_ID:
            raise ProtocolViolation("clients only talk to the server", party=message.sender)
        if self._state is ClientState.ABORTED:
            # A late message is the server's doing, not a misuse of this object.
            raise ProtocolViolation(
                f"{type(message).__name__} after the session ended for this client "
                f"({self._state.value})",
                party=SERVER_ID,
            )
        if isinstance(message, InputRequest):
            if self._state is not ClientState.WAITING:
                raise ProtocolViolation(
                    f"an input request out of turn: this client is {self._state.value}, "
                    "not waiting",
                    party=SERVER_ID,
                )
            self._state = ClientState.INPUT_SENT
            return [EncryptedInput(self._id, SERVER_ID, config.session_id, self._encrypt())]
        if isinstance(message, DecryptionRequest):
            if self._state is ClientState.DECRYPTED:
                self._check_further_request(message)
            if self._id not in config.committee:
                raise ProtocolViolation("decryption request to a non-member", party=SERVER_ID)
            try:
                payload = self._decrypt(message)
            except ProtocolViolation:
                self._state = ClientState.ABORTED
                raise
            self._state = ClientState.DECRYPTED
            if self._first_request is None:
                self._first_request = (hashlib.sha256(message.payload).digest(), message.included)
            self._decrypted_blocks.update(message.blocks)
            return [DecryptionShare(self._id, SERVER_ID, config.session_id, payload)]
        raise ProtocolViolation(f"unexpected {type(message).__name__}", party=SERVER_ID)

    def _vector(self) -> np.ndarray:
        raw = self._input() if callable(self._input) else self._input
        self._input = np.zeros(0)  # the plaintext is not kept after encryption
        vector = np.asarray(raw)
        config = self._config
        if vector.shape != (config.vector_length,) or vector.dtype.kind not in "ui":
            raise ConfigurationError("input must be an integer vector of vector_length")
        return vector

    def _encrypt(self) -> bytes:
        config = self._config
        vector = self._vector()
        if config.public_key is not None:
            encrypted = encrypt_vector(
                config.public_key.paillier,
                vector.astype(np.uint64),
                config.layout,
                randomness=self._randomness,
            )
            return encrypted.to_bytes()
        assert config.ckks is not None
        if vector.size and config.bits < 64 and int(vector.max()) >> config.bits:
            raise ConfigurationError(f"input is outside [0, 2^{config.bits})")
        context = self._ckks if self._ckks is not None else config.ckks
        return context.encrypt(_to_signed(vector, config.bits)).to_bytes()

    def _check_further_request(self, message: DecryptionRequest) -> None:
        """A request after this member decrypted: only a fallback wave for new blocks of
        the byte-identical aggregate and the same included list is answered. Anything else
        aborts the member (MaliciousRequestError): decrypting a second aggregate could
        reveal the difference of two sums, i.e. one client's input."""
        first = self._first_request
        assert first is not None
        same = hashlib.sha256(message.payload).digest() == first[0]
        if not same or message.included != first[1]:
            self._state = ClientState.ABORTED
            raise MaliciousRequestError(
                "a second decryption request for another aggregate or included set",
                party=SERVER_ID,
            )
        if self._decrypted_blocks.intersection(message.blocks):
            self._state = ClientState.ABORTED
            raise MaliciousRequestError(
                "a second decryption request for blocks already decrypted", party=SERVER_ID
            )

    def _requested(self, message: DecryptionRequest, ciphertexts: Sequence[Any]) -> list[Any]:
        """The ciphertexts of the requested blocks, in order. ProtocolViolation (party 0)
        when the request cuts the aggregate into another block count than this session's
        mode or names only empty blocks (the wire decoder already checked the indices)."""
        count = self._config.block_count
        if message.block_count != count:
            raise ProtocolViolation(
                f"decryption request in {message.block_count} blocks, this session uses {count}",
                party=SERVER_ID,
            )
        bounds = block_bounds(len(ciphertexts), count)
        selected = [c for j in message.blocks for c in ciphertexts[bounds[j][0] : bounds[j][1]]]
        if not selected:
            raise ProtocolViolation("decryption request for empty blocks", party=SERVER_ID)
        return selected

    def _check_request(self, message: DecryptionRequest) -> None:
        config = self._config
        included = set(message.included)
        if not included <= set(config.clients):
            raise MaliciousRequestError("aggregate lists unknown clients", party=SERVER_ID)
        if len(included) < config.min_clients:
            raise MaliciousRequestError(
                f"aggregate of {len(included)} clients, fewer than {config.min_clients}",
                party=SERVER_ID,
            )

    def _decrypt(self, message: DecryptionRequest) -> bytes:
        config = self._config
        self._check_request(message)
        count = len(message.included)
        if config.public_key is not None:
            assert self._share is not None
            aggregate = EncryptedVector.from_bytes(
                message.payload,
                config.public_key.paillier,
                config.layout,
                length=config.vector_length,
                party=SERVER_ID,
            )
            if aggregate.summands != count:
                raise MaliciousRequestError("summand count does not match", party=SERVER_ID)
            partial = self._share.partial_decrypt(
                self._requested(message, aggregate.ciphertexts),
                context=config.decryption_context(message.included),
                workers=self._workers,
            )
            return partial.to_bytes(config.public_key)
        assert self._ckks is not None
        if message.block_count != 1:
            raise ProtocolViolation("CKKS decrypts the whole aggregate", party=SERVER_ID)
        vector = self._ckks.vector_from_bytes(
            message.payload, length=config.vector_length, party=SERVER_ID
        )
        if vector.summands != count:
            raise MaliciousRequestError("summand count does not match", party=SERVER_ID)
        values = self._ckks.decrypt(vector)
        rounded = np.rint(values)
        if values.size and float(np.max(np.abs(values - rounded))) > _CKKS_ROUNDING_MARGIN:
            raise DecodeError("the aggregate does not decrypt to integers", party=SERVER_ID)
        return pack(_from_rounded(rounded, config.bits), config.bits)


# --------------------------------------------------------------------------------------------
# Server


class ServerState(enum.Enum):
    IDLE = "idle"
    ENCRYPTED_INPUT = ROUND_ENCRYPTED_INPUT
    DECRYPTION = ROUND_DECRYPTION
    DONE = "done"
    ABORTED = "aborted"


class ThresholdHEServer:
    """The aggregator (implements ServerProtocol). Holds public keys and ciphertexts only.

    A peer's misbehaviour is never raised from ``receive``: a bad upload removes its
    sender from the sum (``excluded``), a bad decryption share is left out (``faults``).
    """

    def __init__(self, config: ThresholdHEConfig) -> None:
        if not isinstance(config, ThresholdHEConfig):
            raise ConfigurationError("config must be a ThresholdHEConfig")
        self._config = config
        self._state = ServerState.IDLE
        self._expected: set[int] = set()
        self._answered: set[int] = set()
        self._excluded: dict[int, str] = {}
        self._faults: dict[int, list[str]] = {}
        self._included: set[int] = set()
        self._misbehaved: set[int] = set()  # sent a bad upload: not asked to decrypt
        self._paillier_sum: EncryptedVector | None = None
        self._ckks_sum: CkksVector | None = None
        # Threshold Paillier decryption, block by block (one block in full mode).
        self._bounds: list[tuple[int, int]] = []
        self._valid: dict[int, dict[int, tuple[Any, ...]]] = {}  # block -> index -> values
        self._pending: dict[int, tuple[int, ...]] = {}  # member -> blocks of its open request
        self._covered: dict[int, set[int]] = {}  # member -> every block it was asked for
        self._unusable: set[int] = set()  # members that dropped or sent a bad partial
        self._request: tuple[tuple[int, ...], bytes] = ((), b"")  # (included, aggregate)
        self._plaintexts: dict[int, bytes] = {}
        self._context = b""
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
    def faults(self) -> dict[int, list[str]]:
        return {party: list(notes) for party, notes in self._faults.items()}

    def __repr__(self) -> str:
        return f"ThresholdHEServer(n={self._config.n}, state={self._state.name})"

    def start(self) -> list[Message]:
        """Input requests for every configured client. UsageError if called twice."""
        if self._state is not ServerState.IDLE:
            raise UsageError("start() was already called")
        config = self._config
        self._state = ServerState.ENCRYPTED_INPUT
        self._expected, self._answered = set(config.clients), set()
        return [InputRequest(SERVER_ID, c, config.session_id) for c in config.clients]

    def receive(self, message: Message) -> list[Message]:
        """Record one client message; return the next round's messages when it completes.

        Raises UsageError before start(), ProtocolAbort when the round that completes leaves
        too few clients or valid decryption shares.
        """
        if self._state is ServerState.IDLE:
            raise UsageError("call start() before receive()")
        if self._state in (ServerState.DONE, ServerState.ABORTED):
            return []
        expected_type = (
            EncryptedInput if self._state is ServerState.ENCRYPTED_INPUT else DecryptionShare
        )
        sender = message.sender
        if message.recipient != SERVER_ID or message.session_id != self._config.session_id:
            self._fault(sender, "message of another session or recipient")
        elif not isinstance(message, expected_type):
            self._fault(sender, f"out-of-round {type(message).__name__}")
        elif sender not in self._expected or sender in self._answered:
            self._fault(sender, f"unexpected or duplicate {type(message).__name__}")
        else:
            self._answered.add(sender)
            if isinstance(message, EncryptedInput):
                self._on_input(sender, message.payload)
            elif isinstance(message, DecryptionShare):
                self._on_share(sender, message.payload)
                if self._enough_shares():
                    return self._finish()
        if self._expected <= self._answered:
            return self._advance()
        return []

    def close_round(self) -> list[Message]:
        """The round's deadline passed: go on with those who answered.

        Raises ProtocolAbort when too few remain, UsageError when no round is open.
        """
        if self._state not in (ServerState.ENCRYPTED_INPUT, ServerState.DECRYPTION):
            raise UsageError(f"no round to close in state {self._state.value}")
        for client in sorted(self._expected - self._answered):
            if self._state is ServerState.ENCRYPTED_INPUT:
                self._excluded.setdefault(client, f"dropped in {ROUND_ENCRYPTED_INPUT}")
            else:
                self._fault(client, "dropped before sending its decryption share")
                self._unusable.add(client)
                self._pending.pop(client, None)
        self._expected &= self._answered
        return self._advance()

    # -- intake ----------------------------------------------------------------------------

    def _fault(self, party: int, note: str) -> None:
        self._faults.setdefault(party, []).append(f"{self._state.value}: {note}")

    def _on_input(self, sender: int, payload: bytes) -> None:
        config = self._config
        try:
            if config.public_key is not None:
                vector = EncryptedVector.from_bytes(
                    payload,
                    config.public_key.paillier,
                    config.layout,
                    length=config.vector_length,
                    max_summands=1,
                    party=sender,
                )
                total = self._paillier_sum
                self._paillier_sum = vector if total is None else total + vector
            else:
                assert config.ckks is not None
                upload = config.ckks.vector_from_bytes(
                    payload, length=config.vector_length, max_summands=1, party=sender
                )
                if upload.levels_left != config.ckks.parameters.levels:
                    raise DecodeError("CKKS upload is not a fresh ciphertext", party=sender)
                if self._ckks_sum is None:
                    self._ckks_sum = upload
                else:
                    self._ckks_sum.add_(upload)
        except DecodeError as exc:
            self._fault(sender, str(exc))
            self._excluded[sender] = f"bad message in {ROUND_ENCRYPTED_INPUT}: {exc}"
            self._misbehaved.add(sender)
            return
        self._included.add(sender)

    def _on_share(self, sender: int, payload: bytes) -> None:
        config = self._config
        if config.public_key is None:
            try:
                unpack(payload, config.bits, config.vector_length)
            except DecodeError as exc:
                self._fault(sender, f"undecodable decryption: {exc}")
                return
            self._plaintexts[sender] = payload
            return
        blocks = self._pending.pop(sender)
        ciphertexts = self._ciphertexts(blocks)
        try:
            partial = PartialDecryption.from_bytes(
                payload, config.public_key, len(ciphertexts), party=sender
            )
            if partial.index != config.holder_index(sender):
                raise AuthenticationError("partial under another member's index", party=sender)
            # Verified against exactly the ciphertexts this member was asked for.
            verify_partial(
                config.public_key, ciphertexts, partial, context=self._context, party=sender
            )
        except (DecodeError, AuthenticationError) as exc:
            self._fault(sender, f"rejected partial decryption: {exc}")
            self._unusable.add(sender)
            return
        offset = 0
        for block in blocks:
            start, stop = self._bounds[block]
            values = partial.values[offset : offset + stop - start]
            self._valid.setdefault(block, {})[partial.index] = values
            offset += stop - start

    def _ciphertexts(self, blocks: Sequence[int]) -> list[Any]:
        aggregate = self._paillier_sum
        assert aggregate is not None
        cts = aggregate.ciphertexts
        return [c for j in blocks for c in cts[self._bounds[j][0] : self._bounds[j][1]]]

    def _short_blocks(self) -> dict[int, int]:
        """Non-empty block -> how many valid partials it still lacks (only those lacking)."""
        t = self._config.threshold
        short = {}
        for block, (start, stop) in enumerate(self._bounds):
            have = len(self._valid.get(block, ()))
            if stop > start and have < t:
                short[block] = t - have
        return short

    def _enough_shares(self) -> bool:
        if self._config.public_key is not None:
            return bool(self._bounds) and not self._short_blocks()
        return len(self._plaintexts) >= self._config.threshold

    # -- transitions -----------------------------------------------------------------------

    def _abort(self, reason: str) -> ProtocolAbort:
        self._state = ServerState.ABORTED
        self._paillier_sum = self._ckks_sum = None
        return ProtocolAbort(reason)

    def _advance(self) -> list[Message]:
        if self._state is ServerState.ENCRYPTED_INPUT:
            return self._request_decryption()
        if self._enough_shares():
            return self._finish()
        if self._config.public_key is not None:
            return self._fallback_wave()
        raise self._abort(
            f"only {len(self._plaintexts)} valid decryption shares, "
            f"{self._config.threshold} needed"
        )

    def _live_members(self) -> list[int]:
        """Members that may still be asked, in sorted id order (the balanced order)."""
        return [
            m
            for m in sorted(self._config.committee)
            if m not in self._misbehaved and m not in self._unusable
        ]

    def _fallback_wave(self) -> list[Message]:
        """Every open request was answered or timed out and some block lacks t valid
        partials: ask live members that have not covered it yet (same round), or abort
        (ProtocolAbort) when too few such members remain for some block."""
        short = self._short_blocks()
        sizes = [stop - start for start, stop in self._bounds]
        plan = plan_fallback(short, self._live_members(), self._covered, sizes)
        if plan is None:
            have = min(self._config.threshold - need for need in short.values())
            raise self._abort(
                f"only {have} valid decryption shares for some block and too few live "
                f"committee members to complete it: {self._config.threshold} needed"
            )
        return self._send_wave(plan)

    def _send_wave(self, plan: dict[int, list[int]]) -> list[Message]:
        config = self._config
        included, payload = self._request
        count = config.block_count
        messages: list[Message] = []
        for member in sorted(plan):
            blocks = tuple(plan[member])
            self._pending[member] = blocks
            self._covered.setdefault(member, set()).update(blocks)
            messages.append(
                DecryptionRequest(
                    SERVER_ID, member, config.session_id, included, payload, blocks, count
                )
            )
        self._expected, self._answered = set(plan), set()
        return messages

    def _request_decryption(self) -> list[Message]:
        config = self._config
        included = tuple(sorted(self._included))
        if len(included) < config.min_clients:
            raise self._abort(
                f"only {len(included)} inputs arrived, fewer than min_clients = "
                f"{config.min_clients}"
            )
        aggregate = self._paillier_sum if self._paillier_sum is not None else self._ckks_sum
        assert aggregate is not None
        payload = aggregate.to_bytes()
        self._context = config.decryption_context(included)
        members = [m for m in config.committee if m not in self._misbehaved]
        self._state = ServerState.DECRYPTION
        self._expected, self._answered = set(members), set()
        if len(members) < config.threshold:
            raise self._abort("fewer committee members than the threshold remain")
        if self._paillier_sum is None:
            sid = config.session_id
            return [DecryptionRequest(SERVER_ID, m, sid, included, payload) for m in members]
        self._request = (included, payload)
        self._bounds = block_bounds(len(self._paillier_sum.ciphertexts), config.block_count)
        sizes = [stop - start for start, stop in self._bounds]
        plan = {m: [j for j in config.assigned_blocks(m) if sizes[j]] for m in members}
        plan = {m: blocks for m, blocks in plan.items() if blocks}
        # A member left out for a bad upload leaves its blocks short: give them to others.
        covered = {m: set(blocks) for m, blocks in plan.items()}
        held = [sum(j in blocks for blocks in covered.values()) for j in range(len(sizes))]
        short = {
            j: config.threshold - held[j]
            for j in range(len(sizes))
            if sizes[j] and held[j] < config.threshold
        }
        extra = plan_fallback(short, sorted(members), covered, sizes) if short else {}
        if extra is None:  # cannot happen: at least t members remain and each may hold any block
            raise self._abort("fewer committee members than the threshold remain")
        for member, blocks in extra.items():
            plan[member] = sorted(set(plan.get(member, [])) | set(blocks))
        return self._send_wave(plan)

    def _combine_blocks(self, aggregate: EncryptedVector) -> list[int]:
        """The aggregate's plaintexts, block by block from the t smallest holder indices
        with a valid partial. Blocks with the same holder set are combined in one call, so
        the Lagrange coefficients are computed once per holder set (at most l sets without
        faults). Raises ShareError / DecodeError as combine_partials does."""
        config = self._config
        assert config.public_key is not None
        groups: dict[tuple[int, ...], list[int]] = {}
        for block, (start, stop) in enumerate(self._bounds):
            if stop > start:
                holders = tuple(sorted(self._valid[block])[: config.threshold])
                groups.setdefault(holders, []).append(block)
        plaintexts: list[int] = [0] * len(aggregate.ciphertexts)
        for holders, blocks in groups.items():
            # Containers of already verified values: verify=False, so no proof is needed.
            partials = [
                PartialDecryption(
                    index, tuple(v for j in blocks for v in self._valid[j][index]), 0, 0
                )
                for index in holders
            ]
            combined = combine_partials(
                config.public_key,
                self._ciphertexts(blocks),
                partials,
                context=self._context,
                verify=False,  # every partial was verified on arrival
            )
            values = iter(combined.plaintexts)
            for j in blocks:
                start, stop = self._bounds[j]
                plaintexts[start:stop] = [next(values) for _ in range(stop - start)]
        return plaintexts

    def _finish(self) -> list[Message]:
        config = self._config
        dtype = dtype_for_bits(config.bits)
        if config.public_key is not None:
            aggregate = self._paillier_sum
            assert aggregate is not None
            try:
                plaintexts = self._combine_blocks(aggregate)
                total = unpack_slots(plaintexts, aggregate.layout, aggregate.length).astype(dtype)
            except (DecodeError, ShareError) as exc:
                raise self._abort(f"the aggregate does not decrypt: {exc}") from None
        else:
            answers = list(self._plaintexts.items())
            first = answers[0][1]
            if any(data != first for _, data in answers[1:]):
                for member, _ in answers:
                    self._fault(member, "committee members disagree on the decryption")
                raise self._abort("CKKS committee members returned different sums")
            total = unpack(first, config.bits, config.vector_length).astype(dtype)
        self._state = ServerState.DONE
        self._paillier_sum = self._ckks_sum = None
        included = frozenset(self._included)
        excluded = dict(self._excluded)
        for client in config.clients:
            if client not in included:
                excluded.setdefault(client, "no valid input")
        self._result = AggregationResult(
            total=total,
            included=included,
            excluded=excluded,
            faults={c: "; ".join(notes) for c, notes in sorted(self._faults.items())},
        )
        return []
