"""A threshold-HE client: it uploads its encrypted input; committee members also decrypt.

Theory of operation. A client answers the server's InputRequest once with its vector
encrypted under the session's public key (threshold Paillier: packed slots,
:mod:`secagg.he.paillier`; CKKS: centered integers as reals, :mod:`secagg.he.ckks`). A
committee member answers a DecryptionRequest with its partial decryption and proof
(threshold Paillier) or the decrypted aggregate (CKKS). Which message it takes in which
state is decided by the one table of :mod:`secagg.protocols.threshold_he.rounds`.

A member's two rules: it decrypts only an aggregate of at least ``min_clients`` configured
clients whose summand count matches, and only once per session, except that in balanced
mode a fallback wave may ask it for further blocks of the byte-identical aggregate with the
same included list. Anything else aborts it for good (MaliciousRequestError): decrypting a
second aggregate could reveal the difference of two sums, i.e. one client's input.

The input is checked once, where the client takes it (:func:`secagg.ring.check_values`):
at construction for a vector, at first use for a callable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgpack
import numpy as np

from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
    ProtocolViolation,
    UsageError,
)
from secagg.he.paillier import EncryptedVector, RandomnessSource, encrypt_vector
from secagg.he.threshold_paillier import KeyShare
from secagg.packing import pack
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.table import RoundClient
from secagg.protocols.threshold_he.blocks import block_bounds
from secagg.protocols.threshold_he.config import THRESHOLD_PAILLIER, ThresholdHEConfig
from secagg.protocols.threshold_he.messages import (
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.protocols.threshold_he.rounds import CLIENT_TABLE, Action, ClientState
from secagg.ring import check_values, dtype_for_bits, value_mask
from secagg.secret import SecretHolder

if TYPE_CHECKING:
    from secagg.he.ckks import CkksContext

__all__ = ["ThresholdHEClient"]

_CKKS_ROUNDING_MARGIN = 0.25
"""The farthest a CKKS decryption may lie from an integer (its noise is far below this)."""

InputVector = np.ndarray | Callable[[], np.ndarray]


_STATE_TAG = "secagg/threshold-he/client-state"
_STATE_VERSION = 1


def _spent_input() -> np.ndarray:
    raise UsageError("a restored client has already sent its input")


def _to_signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Z_(2^bits) representatives -> centered integers as float64 (CKKS input, bits < 64)."""
    signed = values.astype(np.int64)
    signed[signed >= 1 << (bits - 1)] -= 1 << bits
    return signed.astype(np.float64)


def _from_rounded(rounded: np.ndarray, bits: int) -> np.ndarray:
    """Rounded float sums -> Z_(2^bits) in the storage dtype."""
    as_int = rounded.astype(np.int64).view(np.uint64)
    if bits < 64:
        as_int = as_int & np.uint64(value_mask(bits))
    return as_int.astype(dtype_for_bits(bits))


class ThresholdHEClient(
    RoundClient[ClientState, Action],
    SecretHolder,
    export="none: keep it in its process; KeyShare.to_bytes() moves a key share",
):
    """One client (implements ClientProtocol); committee members also decrypt.

    ``input_vector`` is the vector in Z_(2^bits) (or a callable returning it when first
    needed). A committee member needs its ``key_share`` (threshold Paillier) or the
    ``ckks_secret`` context (CKKS; every client may hold it, only members are asked).
    ``randomness`` supplies r^n for Paillier encryption (default: fresh; pass a filled
    :class:`~secagg.he.paillier.RandomnessPool` to move that cost offline). ``workers``
    threads share a member's partial decryption. Raises ConfigurationError on a client
    that is not in the session, on missing/mismatched key material, or on an input vector
    that is not a 1-D integer array of ``vector_length`` values in [0, 2^bits).
    """

    def __init__(
        self,
        config: ThresholdHEConfig,
        client_id: int,
        input_vector: InputVector,
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
        self._member = client_id in config.committee
        self._input: InputVector | None = (
            input_vector if callable(input_vector) else self._checked_input(input_vector)
        )
        self._randomness = randomness
        self._workers = workers
        self._state = ClientState.WAITING
        # What the first decryption request asked: (SHA-256 of the aggregate, included), and
        # every block decrypted so far (a fallback wave may only add blocks of that request).
        self._first_request: tuple[bytes, tuple[int, ...]] | None = None
        self._decrypted_blocks: set[int] = set()
        self._share: KeyShare | None = None
        self._ckks: CkksContext | None = None
        if config.backend == THRESHOLD_PAILLIER:
            if key_share is not None:
                if (
                    not self._member
                    or key_share.public_key != config.public_key
                    or (key_share.index != config.holder_index(client_id))
                ):
                    raise ConfigurationError("this key share does not belong to this client")
                self._share = key_share
            elif self._member:
                raise ConfigurationError("a committee member needs its key share")
        else:
            if ckks_secret is not None:
                if not ckks_secret.has_secret_key or ckks_secret.parameters != (
                    config.ckks.parameters if config.ckks else None
                ):
                    raise ConfigurationError("ckks_secret must be the session's secret context")
                self._ckks = ckks_secret
            elif self._member:
                raise ConfigurationError("a CKKS committee member needs the secret context")

    @classmethod
    def from_update(
        cls,
        config: ThresholdHEConfig,
        client_id: int,
        fixed_point: FixedPoint,
        update: np.ndarray,
        weight: float = 1.0,
        *,
        key_share: KeyShare | None = None,
        ckks_secret: CkksContext | None = None,
        randomness: RandomnessSource | None = None,
        workers: int = 1,
    ) -> ThresholdHEClient:
        """A client whose input is ``fixed_point.encode_weighted(update, weight)``: clipped,
        stochastically quantized, weighted, with the weight packed as one more value. The
        keyword arguments are the constructor's.

        ConfigurationError unless the encoding's bits match the config, its headroom covers
        every client, and ``len(update) + 1 == config.vector_length``.
        """
        if fixed_point.bits != config.bits or fixed_point.max_clients < config.n:
            raise ConfigurationError("the fixed-point encoding does not fit this session")
        if update.shape != (config.vector_length - 1,):
            raise ConfigurationError("update length must be vector_length - 1 (the weight)")
        encoded = fixed_point.encode_weighted(update, weight)
        return cls(
            config,
            client_id,
            encoded,
            key_share=key_share,
            ckks_secret=ckks_secret,
            randomness=randomness,
            workers=workers,
        )

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
        return self._state is ClientState.INPUT_SENT and not self._member

    def __repr__(self) -> str:
        return f"ThresholdHEClient(id={self._id}, state={self._state.name})"

    # -- state export (a transport that runs each message in a new process) -------------

    def to_state_bytes(self) -> bytes:
        """This client's progress as versioned msgpack bytes (no pickle), once its input left.

        The bytes hold no key material and no input: the state name, the digest and the
        included list of the first decryption request, and the blocks decrypted so far.
        The caller keeps the key share / secret context and passes it back to
        :meth:`from_state_bytes`. Raises UsageError while the input has not been sent (the
        plaintext input is not exported).
        """
        if self._state is ClientState.WAITING:
            raise UsageError("the input has not been sent: nothing to export but the input")
        first = self._first_request
        return bytes(msgpack.packb(
            [_STATE_TAG, _STATE_VERSION, self._config.session_id, self._id, self._state.value,
             None if first is None else [first[0], list(first[1])],
             sorted(self._decrypted_blocks)],
            use_bin_type=True,
        ))

    @classmethod
    def from_state_bytes(
        cls,
        config: ThresholdHEConfig,
        client_id: int,
        data: bytes,
        *,
        key_share: KeyShare | None = None,
        ckks_secret: CkksContext | None = None,
        workers: int = 1,
    ) -> ThresholdHEClient:
        """The client :meth:`to_state_bytes` saved, in ``config``'s session as ``client_id``,
        with its key material given again. Raises DecodeError (``party=None``) if ``data``
        is not such a state (garbled, another session or client, an unknown version or
        state), ConfigurationError as the constructor does."""
        client = cls(config, client_id, _spent_input, key_share=key_share,
                     ckks_secret=ckks_secret, workers=workers)
        client._restore_state(data)
        return client

    def _restore_state(self, data: bytes) -> None:
        try:
            record = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                                     max_bin_len=1024, max_str_len=64,
                                     max_array_len=self._config.n + 16)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                msgpack.StackError):
            raise DecodeError("not a threshold-HE client state") from None
        if (not isinstance(record, list) or len(record) != 7 or record[0] != _STATE_TAG
                or record[1] != _STATE_VERSION or isinstance(record[1], bool)):
            raise DecodeError("not a threshold-HE client state of this version")
        _, _, session_id, client_id, state, first, blocks = record
        if session_id != self._config.session_id or client_id != self._id:
            raise DecodeError("a state of another session or client")
        try:
            restored = ClientState(state)
        except ValueError:
            raise DecodeError("unknown client state") from None
        if restored is ClientState.WAITING:
            raise DecodeError("a state before the input was sent")
        count = self._config.block_count
        if not isinstance(blocks, list) or any(
            isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < count for b in blocks
        ):
            raise DecodeError("bad decrypted blocks")
        if first is not None:
            if (not isinstance(first, list) or len(first) != 2 or not isinstance(first[0], bytes)
                    or len(first[0]) != 32 or not isinstance(first[1], list)
                    or any(isinstance(c, bool) or not isinstance(c, int)
                           or c not in self._config.clients for c in first[1])):
                raise DecodeError("bad first decryption request")
            self._first_request = (first[0], tuple(first[1]))
        self._state = restored
        self._decrypted_blocks = set(blocks)
        self._input = None

    def receive(self, message: Message) -> list[Message]:
        """Answer InputRequest (once) and, on the committee, DecryptionRequest.

        A member decrypts exactly the requested blocks. After its first answer it answers
        only fallback waves of balanced mode: requests for blocks it has not decrypted yet,
        of the byte-identical aggregate and the same included list.

        Raises ProtocolViolation (party 0) for a message of another session or recipient,
        and, from the transition table (:func:`~.rounds.client_transition`), for a message
        after this client aborted (the session ended for it), an input request out of turn
        (the client is past WAITING: its state is named), a decryption request to a
        non-member or an unexpected message type; these leave the client as it was. Raises
        ProtocolViolation for a decryption request in another block count than the
        session's mode or for empty blocks, or one that could reveal less than an
        aggregate of ``min_clients``; MaliciousRequestError for a further decryption
        request of another aggregate or included list, or of blocks already decrypted, or
        any further request outside balanced mode. A refused decryption request aborts the
        client for good. ConfigurationError when a lazy input turns out invalid.
        """
        return self._dispatch(message)

    # -- the family's side of the shared dispatch (secagg.protocols.table.RoundClient) -----

    def _route(self) -> tuple[bytes, int]:
        return self._config.session_id, self._id

    def _is_member(self) -> bool:
        return self._member

    def _mode(self) -> str:
        return self._config.mode

    # -- actions (found through the transition table) -----------------------------------

    def _send_input(self, message: InputRequest) -> list[Message]:
        payload = self._encrypt(self._take_input())
        return [EncryptedInput(self._id, SERVER_ID, self._config.session_id, payload)]

    def _decrypt_first(self, message: DecryptionRequest) -> list[Message]:
        payload = self._decrypt(message)
        self._first_request = (hashlib.sha256(message.payload).digest(), message.included)
        self._decrypted_blocks.update(message.blocks)
        return [DecryptionShare(self._id, SERVER_ID, self._config.session_id, payload)]

    def _decrypt_more(self, message: DecryptionRequest) -> list[Message]:
        self._check_further_request(message)
        payload = self._decrypt(message)
        self._decrypted_blocks.update(message.blocks)
        return [DecryptionShare(self._id, SERVER_ID, self._config.session_id, payload)]

    def _refuse_repeat(self, message: DecryptionRequest) -> list[Message]:
        self._check_further_request(message)  # names what differs, if anything
        raise MaliciousRequestError(
            "a second decryption request: this session decrypts in one request",
            party=SERVER_ID,
        )

    _HANDLERS: ClassVar[dict[Action, Callable[[ThresholdHEClient, Any], list[Message]]]] = {
        Action.SEND_INPUT: _send_input,
        Action.DECRYPT: _decrypt_first,
        Action.DECRYPT_MORE: _decrypt_more,
        Action.REFUSE_REPEAT: _refuse_repeat,
    }
    _TABLE = CLIENT_TABLE
    _ABORTED = ClientState.ABORTED

    # -- input -------------------------------------------------------------------------

    def _checked_input(self, vector: object) -> np.ndarray:
        config = self._config
        return check_values(vector, config.bits, config.vector_length)

    def _take_input(self) -> np.ndarray:
        """The input, checked; it is not kept once taken (the plaintext leaves with the
        upload). UsageError if it was already taken."""
        source, self._input = self._input, None
        if source is None:
            raise UsageError("the input was already used")
        return self._checked_input(source() if callable(source) else source)

    def _encrypt(self, vector: np.ndarray) -> bytes:
        config = self._config
        if config.public_key is not None:
            encrypted = encrypt_vector(
                config.public_key.paillier,
                vector.astype(np.uint64),
                config.layout,
                randomness=self._randomness,
            )
            return encrypted.to_bytes()
        context = self._ckks if self._ckks is not None else config.ckks
        assert context is not None
        return context.encrypt(_to_signed(vector, config.bits)).to_bytes()

    # -- decryption ----------------------------------------------------------------------

    def _check_further_request(self, message: DecryptionRequest) -> None:
        """A request after this member decrypted: only new blocks of the byte-identical
        aggregate and the same included list may be answered. MaliciousRequestError for
        anything else."""
        first = self._first_request
        assert first is not None
        same = hashlib.sha256(message.payload).digest() == first[0]
        if not same or message.included != first[1]:
            raise MaliciousRequestError(
                "a second decryption request for another aggregate or included set",
                party=SERVER_ID,
            )
        if self._decrypted_blocks.intersection(message.blocks):
            raise MaliciousRequestError(
                "a second decryption request for blocks already decrypted", party=SERVER_ID
            )

    def _requested(self, message: DecryptionRequest, ciphertexts: Sequence[Any]) -> list[Any]:
        """The ciphertexts of the requested blocks, in order. ProtocolViolation (party 0)
        when the request cuts the aggregate into another block count than this session's
        mode, names a block outside it, or names only empty blocks."""
        count = self._config.block_count
        if message.block_count != count:
            raise ProtocolViolation(
                f"decryption request in {message.block_count} blocks, this session uses {count}",
                party=SERVER_ID,
            )
        if any(not 0 <= j < count for j in message.blocks):
            # The wire decoder checks this; a request built in-process may not have been.
            raise ProtocolViolation("decryption request for a block out of range", party=SERVER_ID)
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
