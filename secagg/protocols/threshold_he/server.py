"""The threshold-HE aggregator: it adds ciphertexts and combines the committee's answers.

Theory of operation (the same shape as the Bonawitz server, as h11 does for HTTP):

1. ``encrypted_input``: the server asks every client for its input and adds ciphertexts as
   they arrive (memory O(m)); a client that drops before submitting is simply not in the
   sum, one whose upload does not decode is excluded.
2. ``decryption``: the server sends the aggregate and the list of included clients to the
   decryption committee. Threshold Paillier: each member returns a partial decryption
   with a proof (:mod:`secagg.he.threshold_paillier`) of exactly the blocks it was asked
   for (:mod:`secagg.protocols.threshold_he.blocks`); the server verifies each proof,
   leaves out (and reports in ``faults``) any that fails, and combines t valid partials
   per block, so members may drop as long as t remain: when a block is short at the end
   of a wave, a fallback wave asks live members that have not covered it yet. CKKS:
   TenSEAL has no threshold decryption; members hold the single secret key, decrypt the
   aggregate and return it; once every asked member answered (or at the deadline) the
   server takes the answer that the most members gave, if at least ``threshold`` gave it
   and no other answer was given as often, and blames every member that answered
   otherwise (DISAGREEMENT): one faulty member cannot abort the round while enough honest
   ones answer.

No single party aborts a round while enough honest ones remain: a bad upload excludes its
sender from the sum only (a member with a bad upload still decrypts: its partial is checked
by its proof, its CKKS answer by the vote), a bad partial excludes its member from the
combination only.

Which event the server takes in which state is decided by the one table of
:mod:`secagg.protocols.threshold_he.rounds`. The server never holds key material: it can
add ciphertexts but decrypts nothing alone. A peer's misbehaviour is never raised from
``receive``: it is recorded, bounded (:class:`~secagg.protocols.faults.FaultLog`), with a
typed :class:`~secagg.errors.ExclusionReason`.

Trust model: semi-honest server and clients (as SecAgg's semi-honest mode). A member
cannot check that the aggregate really is the sum of the listed clients' ciphertexts, so a
malicious server could have one client's ciphertext decrypted by claiming a larger summand
count; and without range proofs a malicious client can corrupt (not read) the sum, or push
it out of its slots (threshold Paillier) or off the integers (CKKS): the aggregate then does
not decode and the session aborts rather than publish a wrong sum, and nobody can tell
which client did it. Threshold Paillier keys come from a trusted dealer who sees the whole
secret key (:mod:`secagg.protocols.threshold_he.keys`). CKKS: every key holder can decrypt
every client's upload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    ExclusionReason,
    ProtocolAbort,
    ShareError,
    UsageError,
)
from secagg.he.paillier import EncryptedVector
from secagg.he.slots import unpack as unpack_slots
from secagg.he.threshold_paillier import (
    PartialDecryption,
    combine_partials,
    shares_held,
    verify_partial,
)
from secagg.packing import unpack
from secagg.protocols.base import SERVER_ID, AggregationResult, Message
from secagg.protocols.faults import Exclusion
from secagg.protocols.table import RoundServer
from secagg.protocols.threshold_he.blocks import block_bounds, plan_fallback
from secagg.protocols.threshold_he.config import ThresholdHEConfig
from secagg.protocols.threshold_he.messages import (
    ROUND_ENCRYPTED_INPUT,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.protocols.threshold_he.rounds import SERVER_TABLE, SESSION_OVER, Action, ServerState
from secagg.ring import dtype_for_bits

if TYPE_CHECKING:
    from secagg.he.ckks import CkksVector

__all__ = ["ThresholdHEServer"]


class ThresholdHEServer(RoundServer[ServerState, Action]):
    """The aggregator (implements ServerProtocol). Holds public keys and ciphertexts only.

    Refuses (ConfigurationError) to be built in a process that holds a key share of the
    session's threshold-Paillier key (:func:`secagg.he.threshold_paillier.shares_held`),
    unless ``simulation`` says one process plays every party on purpose (tests, the
    simulator).

    A peer's misbehaviour is never raised from ``receive``: a bad upload removes its
    sender from the sum (``excluded``), a bad decryption share is left out (``faults``).
    Fault notes are bounded per party (:data:`~secagg.protocols.faults.MAX_FAULT_NOTES`,
    the rest counted), whatever a peer floods the server with.
    """

    def __init__(self, config: ThresholdHEConfig, *, simulation: bool = False) -> None:
        if not isinstance(config, ThresholdHEConfig):
            raise ConfigurationError(
                "config must be a ThresholdHEConfig (the public config: never the dealer's "
                "output or a simulation holding key shares)"
            )
        if config.public_key is not None and not simulation and shares_held(config.public_key):
            raise ConfigurationError(
                "this process holds key shares of the session's key: an aggregator next to "
                "them is not a threshold at all. Run the dealer and the members elsewhere, "
                "or pass simulation=True when one process plays every party on purpose"
            )
        self._config = config
        self._init_rounds()
        self._excluded: dict[int, Exclusion] = {}
        self._included: set[int] = set()
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

    def __repr__(self) -> str:
        return f"ThresholdHEServer(n={self._config.n}, state={self._state.name})"

    def start(self) -> list[Message]:
        """Input requests for every configured client. UsageError if called twice."""
        if self._state is not ServerState.IDLE:
            raise UsageError("start() was already called")
        config = self._config
        self._state = ServerState.ENCRYPTED_INPUT
        self._ask(config.clients)
        return [InputRequest(SERVER_ID, c, config.session_id) for c in config.clients]

    # -- the family's side of the shared envelope (secagg.protocols.table.RoundServer) --

    def _session_id(self) -> bytes:
        return self._config.session_id

    def _parties(self) -> tuple[int, ...]:
        return self._config.clients

    def _mode(self) -> str:
        return self._config.mode

    # -- actions (found through the transition table) ------------------------------------

    def _add_input(self, message: EncryptedInput) -> list[Message]:
        sender, config = message.sender, self._config
        try:
            if config.public_key is not None:
                vector = EncryptedVector.from_bytes(
                    message.payload,
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
                    message.payload, length=config.vector_length, max_summands=1, party=sender
                )
                if upload.levels_left != config.ckks.parameters.levels:
                    raise DecodeError("CKKS upload is not a fresh ciphertext", party=sender)
                if self._ckks_sum is None:
                    self._ckks_sum = upload
                else:
                    self._ckks_sum.add_(upload)
        except DecodeError as exc:
            self._fault(sender, ExclusionReason.INVALID_CONTENT, str(exc))
            self._excluded[sender] = Exclusion(
                ExclusionReason.BAD_MESSAGE, ROUND_ENCRYPTED_INPUT, str(exc)
            )
            return []
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
        aggregate = self._paillier_sum if self._paillier_sum is not None else self._ckks_sum
        assert aggregate is not None
        payload = aggregate.to_bytes()
        self._context = config.decryption_context(included)
        members = list(config.committee)
        self._ask(members)
        if self._paillier_sum is None:
            sid = config.session_id
            return [DecryptionRequest(SERVER_ID, m, sid, included, payload) for m in members]
        self._request = (included, payload)
        self._bounds = block_bounds(len(self._paillier_sum.ciphertexts), config.block_count)
        sizes = [stop - start for start, stop in self._bounds]
        plan = {m: [j for j in config.assigned_blocks(m) if sizes[j]] for m in members}
        plan = {m: blocks for m, blocks in plan.items() if blocks}
        return self._send_wave(plan)

    def _add_share(self, message: DecryptionShare) -> list[Message]:
        sender, payload, config = message.sender, message.payload, self._config
        if config.public_key is None:
            # CKKS: every answer is a vote; the vote is counted when the round ends.
            try:
                unpack(payload, config.bits, config.vector_length)
            except DecodeError as exc:
                self._fault(
                    sender, ExclusionReason.BAD_DECRYPTION, f"undecodable decryption: {exc}"
                )
                return []
            self._plaintexts[sender] = payload
            return []
        self._verify_partial(sender, payload)
        if self._enough_shares():
            return self._finish()
        return []

    def _fallback_wave(self, missing: Sequence[int]) -> list[Message]:
        """Every open request was answered or timed out: finish if every block has t valid
        partials, else ask live members that have not covered a short block yet (same
        round), or abort (ProtocolAbort) when too few such members remain for some block."""
        self._members_dropped(missing)
        if self._enough_shares():
            return self._finish()
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

    def _finish_or_abort(self, missing: Sequence[int]) -> list[Message]:
        """CKKS: every request was answered or timed out. Finish with the answer the most
        members gave, if at least ``threshold`` gave it and no other answer was given as
        often; blame every member that answered otherwise. Else abort (no second wave:
        every member holds the same single key), blaming nobody on a tie."""
        self._members_dropped(missing)
        votes: dict[bytes, list[int]] = {}
        for member, answer in sorted(self._plaintexts.items()):
            votes.setdefault(answer, []).append(member)
        ranked = sorted(votes.values(), key=len, reverse=True)
        threshold = self._config.threshold
        if not ranked or len(ranked[0]) < threshold:
            raise self._abort(
                f"only {len(ranked[0]) if ranked else 0} identical decryptions, {threshold} needed"
            )
        if len(ranked) > 1 and len(ranked[1]) == len(ranked[0]):
            # A tie: nobody can tell the honest answer from the faulty one, nor blame.
            raise self._abort("CKKS committee members returned different sums, none a majority")
        for members in ranked[1:]:
            for member in members:
                self._fault(
                    member,
                    ExclusionReason.DISAGREEMENT,
                    "its decryption differs from the majority's",
                )
        majority = set(ranked[0])
        self._plaintexts = {m: a for m, a in self._plaintexts.items() if m in majority}
        return self._finish()

    _HANDLERS: ClassVar[dict[Action, Callable[[ThresholdHEServer, Any], list[Message]]]] = {
        Action.ADD_INPUT: _add_input,
        Action.REQUEST_DECRYPTION: _request_decryption,
        Action.ADD_SHARE: _add_share,
        Action.FALLBACK_WAVE: _fallback_wave,
        Action.FINISH_OR_ABORT: _finish_or_abort,
    }
    _TABLE = SERVER_TABLE
    _IDLE = ServerState.IDLE
    _OVER = SESSION_OVER

    # -- decryption bookkeeping ----------------------------------------------------------

    def _members_dropped(self, missing: Sequence[int]) -> None:
        for member in missing:
            self._fault(
                member,
                ExclusionReason.MEMBER_DROPPED,
                "dropped before sending its decryption share",
            )
            self._unusable.add(member)
            self._pending.pop(member, None)

    def _verify_partial(self, sender: int, payload: bytes) -> None:
        """Keep the partial decryption of ``sender`` block by block if its proof verifies
        against exactly the ciphertexts it was asked for; else note it and mark the member
        unusable."""
        config = self._config
        assert config.public_key is not None
        blocks = self._pending.pop(sender)
        ciphertexts = self._ciphertexts(blocks)
        try:
            partial = PartialDecryption.from_bytes(
                payload, config.public_key, len(ciphertexts), party=sender
            )
            if partial.index != config.holder_index(sender):
                raise AuthenticationError("partial under another member's index", party=sender)
            verify_partial(
                config.public_key, ciphertexts, partial, context=self._context, party=sender
            )
        except (DecodeError, AuthenticationError) as exc:
            self._fault(
                sender, ExclusionReason.BAD_DECRYPTION, f"rejected partial decryption: {exc}"
            )
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

    def _live_members(self) -> list[int]:
        """Members that may still be asked, in sorted id order (the balanced order)."""
        return [m for m in sorted(self._config.committee) if m not in self._unusable]

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
        self._ask(plan)
        return messages

    # -- the end -------------------------------------------------------------------------

    def _abort(self, reason: str) -> ProtocolAbort:
        self._state = ServerState.ABORTED
        self._paillier_sum = self._ckks_sum = None
        return ProtocolAbort(reason)

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
            first = next(iter(self._plaintexts.values()))  # the majority's (one answer)
            total = unpack(first, config.bits, config.vector_length).astype(dtype)
        self._state = ServerState.DONE
        self._paillier_sum = self._ckks_sum = None
        included = frozenset(self._included)
        excluded = dict(self._excluded)
        for client in config.clients:
            if client not in included:
                excluded.setdefault(client, Exclusion(ExclusionReason.NO_VALID_INPUT))
        self._result = AggregationResult(
            total=total,
            included=included,
            excluded=excluded,
            faults=self._faults.summary(),
        )
        return []
