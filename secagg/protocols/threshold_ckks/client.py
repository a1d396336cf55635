"""A threshold-CKKS client: it uploads its encrypted input; committee members also build
the collective key and decrypt.

Theory of operation. A committee member takes part in the key setup
(:mod:`secagg.protocols.threshold_ckks.member`: advertise, deal, check); every client then
receives the collective public key, checks that it was built from this session's common
random polynomial and from committee members only, and uploads its vector encrypted under
it (:func:`secagg.he.threshold_ckks.encrypt`). A member holding a key share answers the
one decryption request of the session with its share, after checking that the aggregate
is a sum of at least ``min_clients`` configured clients whose summand count matches the
included list. Which message it takes in which state is the one table of
:mod:`secagg.protocols.threshold_ckks.rounds`.

The input is checked once, where the client takes it (:func:`secagg.ring.check_values`):
at construction for a vector, at first use for a callable.

A transport that runs a client in several processes of one node (Flower's ClientApp)
carries it with :meth:`ThresholdCkksClient.to_state_bytes` /
:meth:`~ThresholdCkksClient.from_state_bytes`: versioned msgpack, no pickle, secret (the
input until it is sent, a member's key material), never to leave the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgpack
import numpy as np

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
    ProtocolViolation,
    UsageError,
)
from secagg.he.threshold_ckks import CiphertextMask, PublicKey, encrypt
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.table import RoundClient
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.member import MemberRole
from secagg.protocols.threshold_ckks.messages import (
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
)
from secagg.protocols.threshold_ckks.rounds import CLIENT_TABLE, Action, ClientState
from secagg.ring import check_values
from secagg.secret import SecretHolder

__all__ = ["ThresholdCkksClient"]

InputVector = np.ndarray | Callable[[], np.ndarray]


_STATE_TAG = "secagg/threshold-ckks/client-state"
_STATE_VERSION = 1


class ThresholdCkksClient(
    RoundClient[ClientState, Action],
    SecretHolder,
    export="ThresholdCkksClient.to_state_bytes() / from_state_bytes(), kept on its node",
):
    """One client (implements ClientProtocol); committee members also set up the key and
    decrypt.

    ``input_vector`` is the vector in Z_(2^bits) (or a callable returning it when first
    needed). Holds secrets (its input until it uploads it, a member's key material): never
    printed, never pickled. Raises ConfigurationError on a client that is not in the
    session or on an input vector that is not a 1-D integer array of ``vector_length``
    values in [0, 2^bits).
    """

    def __init__(
        self, config: ThresholdCkksConfig, client_id: int, input_vector: InputVector
    ) -> None:
        if not isinstance(config, ThresholdCkksConfig):
            raise ConfigurationError("config must be a ThresholdCkksConfig")
        if client_id not in config.clients:
            raise ConfigurationError(f"client {client_id} is not in this session")
        self._config = config
        self._id = client_id
        self._input: InputVector | None = (
            input_vector if callable(input_vector) else self._checked(input_vector)
        )
        self._member = MemberRole(config, client_id) if client_id in config.committee else None
        self._state = ClientState.WAITING

    @property
    def client_id(self) -> int:
        return self._id

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def holds_key_share(self) -> bool:
        """True for a committee member that completed the key setup."""
        return self._member is not None and self._member.ready

    @property
    def done(self) -> bool:
        if self._state is ClientState.DECRYPTED:
            return True
        return self._state is ClientState.INPUT_SENT and not self.holds_key_share

    def __repr__(self) -> str:
        return f"ThresholdCkksClient(id={self._id}, state={self._state.name})"


    def receive(self, message: Message) -> list[Message]:
        """Answer the server's requests in turn (see the module docstring).

        Raises ProtocolViolation (party 0) for a message of another session or recipient,
        and, from the transition table (:func:`~.rounds.client_transition`), for a message
        after this client aborted, a request out of turn (its state is named), a member's
        request to a non-member or an unexpected message type: these leave the client as
        it was. Raises ProtocolViolation (party 0) for a request an honest server never
        sends (peers outside the committee, a public key of another session or of
        non-members, a malformed aggregate, an included list that is not a set of at
        least ``min_clients`` configured clients or does not match the aggregate's summand
        count) and MaliciousRequestError for a second decryption request: a refused
        request aborts the client for good. ConfigurationError when a lazy input turns out
        invalid.
        """
        return self._dispatch(message)

    # -- the family's side of the shared dispatch (secagg.protocols.table.RoundClient) -----

    def _route(self) -> tuple[bytes, int]:
        return self._config.session_id, self._id

    def _is_member(self) -> bool:
        return self._member is not None

    # -- state export --------------------------------------------------------------------

    def to_state_bytes(self) -> bytes:
        """This client as versioned msgpack bytes (no pickle): its state, its input while
        not sent, a member's key material (:meth:`MemberRole.to_state_bytes`). SECRET:
        keep it on the client's node. Raises UsageError for a lazy input not taken yet
        (export the vector instead: build the client with it)."""
        if callable(self._input):
            raise UsageError("a lazy input cannot be exported: build the client with a vector")
        vector = None if self._input is None else self._input.astype("<u8").tobytes()
        member = None if self._member is None else self._member.to_state_bytes()
        return bytes(msgpack.packb(
            [_STATE_TAG, _STATE_VERSION, self._config.session_id, self._id,
             self._state.value, vector, member],
            use_bin_type=True,
        ))  # fmt: skip

    @classmethod
    def from_state_bytes(
        cls, config: ThresholdCkksConfig, client_id: int, data: bytes
    ) -> ThresholdCkksClient:
        """The client :meth:`to_state_bytes` saved, in ``config``'s session as
        ``client_id``. Raises DecodeError (``party=None``) when ``data`` is not such a
        state (garbled, another session or client, an unknown state, an input of the wrong
        size or range, member material on a non-member or missing on a member),
        ConfigurationError as the constructor."""
        client = cls(config, client_id, lambda: np.zeros(0))
        try:
            record = msgpack.unpackb(
                data, raw=False, use_list=True, max_array_len=8, max_map_len=0, max_str_len=64
            )
        except Exception:  # msgpack raises several unrelated exception types
            raise DecodeError("a threshold-CKKS client state is not msgpack") from None
        if (not isinstance(record, list) or len(record) != 7 or record[0] != _STATE_TAG
                or type(record[1]) is not int or record[1] != _STATE_VERSION):
            raise DecodeError("not a threshold-CKKS client state of this version")
        _, _, session_id, stored_id, state, vector, member = record
        if session_id != config.session_id or stored_id != client_id:
            raise DecodeError("a client state of another session or client")
        try:
            client._state = ClientState(state)
        except ValueError:
            raise DecodeError("unknown threshold-CKKS client state") from None
        if vector is None:
            client._input = None
        else:
            if not isinstance(vector, bytes) or len(vector) != 8 * config.vector_length:
                raise DecodeError("a stored input of the wrong size")
            try:
                client._input = client._checked(np.frombuffer(vector, dtype="<u8").copy())
            except ConfigurationError:
                raise DecodeError("a stored input out of range") from None
        if (member is None) != (client._member is None) or (
            member is not None and not isinstance(member, bytes)
        ):
            raise DecodeError("a client state whose committee role contradicts the config")
        if member is not None:
            client._member = MemberRole.from_state_bytes(config, client_id, member)
        return client

    # -- actions (found through the transition table) -----------------------------------

    def _advertise(self, message: KeyAdvertiseRequest) -> list[Message]:
        member = self._role()
        return [KeyAdvertise(self._id, SERVER_ID, self._config.session_id, member.advertise())]

    def _deal(self, message: KeyDealRequest) -> list[Message]:
        share, boxes = self._role().deal(message.peers)
        return [KeyDeal(self._id, SERVER_ID, self._config.session_id, share, boxes)]

    def _check(self, message: KeyCheckRequest) -> list[Message]:
        complaints = self._role().check(message.boxes)
        return [KeyCheck(self._id, SERVER_ID, self._config.session_id, complaints)]

    def _send_input(self, message: InputRequest) -> list[Message]:
        config = self._config
        try:
            public = PublicKey.from_bytes(config.scheme, message.public_key, party=SERVER_ID)
        except DecodeError as exc:
            raise ProtocolViolation(f"an unusable public key: {exc}", party=SERVER_ID) from None
        if public.seed != config.crs_seed:
            raise ProtocolViolation("a public key of another session", party=SERVER_ID)
        if not set(public.contributors) <= set(config.committee):
            raise ProtocolViolation("a public key with non-member contributors", party=SERVER_ID)
        if self._member is not None and self._state is ClientState.CHECKED:
            self._member.finish(public)
        ciphertext = encrypt(public, self._take_input())
        return [EncryptedInput(self._id, SERVER_ID, config.session_id, ciphertext.to_bytes())]

    def _decrypt(self, message: DecryptionRequest) -> list[Message]:
        config = self._config
        included = message.included
        if (
            len(set(included)) != len(included)
            or not set(included) <= set(config.clients)
            or len(included) < config.min_clients
        ):
            raise ProtocolViolation(
                f"the included list must name at least min_clients = {config.min_clients} "
                "configured clients",
                party=SERVER_ID,
            )
        try:
            mask = CiphertextMask.from_bytes(
                config.scheme, message.mask, length=config.vector_length, party=SERVER_ID
            )
        except DecodeError as exc:
            raise ProtocolViolation(f"an unusable aggregate: {exc}", party=SERVER_ID) from None
        if mask.summands != len(included):
            raise MaliciousRequestError(
                "the aggregate's summand count does not match the included list",
                party=SERVER_ID,
            )
        share = self._role().decrypt(mask)
        return [DecryptionShare(self._id, SERVER_ID, config.session_id, share)]

    def _refuse_repeat(self, message: DecryptionRequest) -> list[Message]:
        raise MaliciousRequestError(
            "a second decryption request: this session decrypts once", party=SERVER_ID
        )

    _HANDLERS: ClassVar[dict[Action, Callable[[ThresholdCkksClient, Any], list[Message]]]] = {
        Action.ADVERTISE: _advertise,
        Action.DEAL: _deal,
        Action.CHECK: _check,
        Action.SEND_INPUT: _send_input,
        Action.DECRYPT: _decrypt,
        Action.REFUSE_REPEAT: _refuse_repeat,
    }
    _TABLE = CLIENT_TABLE
    _ABORTED = ClientState.ABORTED

    # -- helpers -------------------------------------------------------------------------

    def _role(self) -> MemberRole:
        assert self._member is not None  # the table routes members' requests to members
        return self._member

    def _checked(self, vector: object) -> np.ndarray:
        config = self._config
        return check_values(vector, config.bits, config.vector_length)

    def _take_input(self) -> np.ndarray:
        """The input, checked; it is not kept once taken. UsageError if already taken."""
        source, self._input = self._input, None
        if source is None:
            raise UsageError("the input was already used")
        return self._checked(source() if callable(source) else source)
