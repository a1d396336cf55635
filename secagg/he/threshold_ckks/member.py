"""A threshold CKKS committee member: key setup and the rule that keeps decryption safe.

:class:`CommitteeMember` holds the member's key material and answers decryption requests
under the one-share-per-ciphertext rule of :mod:`secagg.he.threshold_ckks`: its share of
a ciphertext does not depend on who else answers, and it is a deterministic function of
(its key, the ciphertext), so a ciphertext has exactly one share of this member, ever.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import struct
from collections.abc import Mapping, Sequence

import numpy as np

from secagg.errors import (
    ConfigurationError,
    DecodeError,
    IncompatibleSharesError,
    InsufficientSharesError,
    MaliciousRequestError,
    UsageError,
)
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.rlwe.ntt import mul_shoup, shoup_factor
from secagg.he.rlwe.params import ERROR_ETA
from secagg.he.rlwe.sampling import Sampler
from secagg.he.rlwe.wire import pack_residues, unpack_residues
from secagg.he.threshold_ckks.ciphertext import CiphertextMask
from secagg.he.threshold_ckks.decryption import DecryptionShare
from secagg.he.threshold_ckks.keys import (
    KeyShareDelivery,
    PublicKeyShare,
    common_random_polynomial,
)
from secagg.he.threshold_ckks.params import (
    CHUNK_BLOCK,
    LABEL,
    Committee,
    ThresholdCkksParameters,
    check_int,
)
from secagg.prg import SEED_BYTES
from secagg.secret import SecretHolder

__all__ = [
    "MAX_DECRYPTED_CIPHERTEXTS",
    "MAX_REQUESTS",
    "MAX_REQUEST_ID_BYTES",
    "CommitteeMember",
    "MemberState",
]

MAX_REQUEST_ID_BYTES = 256
MAX_DECRYPTED_CIPHERTEXTS = 1 << 20
"""Ciphertexts (of N values) one key share decrypts before it must be replaced."""
MAX_REQUESTS = 1 << 16
_DIGEST_BYTES = 16
_STATE_VERSION = 1
_STATE_WHAT = "threshold CKKS member state"
_U64 = np.uint64


def _chunk_digests(params: ThresholdCkksParameters, mask: np.ndarray) -> list[bytes]:
    """A 16-byte digest of every chunk's mask (its canonical 32-bit residues)."""
    prefix = LABEL + b"/chunk" + params.digest
    words = mask.astype("<u4")  # residues < 2^32: the wire form
    return [
        hashlib.sha256(prefix + np.ascontiguousarray(words[:, c]).tobytes()).digest()[
            :_DIGEST_BYTES
        ]
        for c in range(mask.shape[1])
    ]


class MemberState(enum.Enum):
    """Where a member is in its lifecycle."""

    NEW = "new"
    SETUP_SENT = "setup sent"
    READY = "ready"


class CommitteeMember(
    SecretHolder,
    export="CommitteeMember.to_state_bytes() / from_state_bytes(), kept on the member's node",
):
    """One committee member: its key material and the rules it keeps (see
    :mod:`secagg.he.threshold_ckks`).

    Lifecycle: :meth:`setup_message` (once), :meth:`finish_setup` (once), then
    :meth:`decryption_share` per request. Holds secrets: never printed, never pickled; a
    transport whose member lives in several processes of one node (Flower's ClientApp)
    carries it with :meth:`to_state_bytes` / :meth:`from_state_bytes`.
    Raises ConfigurationError for a member id outside the committee, a committee larger
    than ``committee_size``, a bad seed or ``min_summands`` outside 1..max_summands.
    """

    __slots__ = (
        "_answered",
        "_key",
        "_key_shoup",
        "_own_share",
        "_requests",
        "_smudge_key",
        "committee",
        "crs_seed",
        "member_id",
        "min_summands",
        "params",
        "state",
    )

    def __init__(
        self,
        params: ThresholdCkksParameters,
        committee: Committee,
        member_id: int,
        crs_seed: bytes,
        *,
        min_summands: int = 2,
    ) -> None:
        committee.check_fits(params)
        if member_id not in committee.members:
            raise ConfigurationError("member_id is not in the committee")
        if not isinstance(crs_seed, bytes) or len(crs_seed) != SEED_BYTES:
            raise ConfigurationError(f"crs_seed must be {SEED_BYTES} bytes")
        self.params = params
        self.committee = committee
        self.member_id = member_id
        self.crs_seed = crs_seed
        self.min_summands = check_int("min_summands", min_summands, 1, params.max_summands)
        self.state = MemberState.NEW
        self._own_share: np.ndarray | None = None
        self._key: np.ndarray | None = None  # NTT(Delta sk_j): shares are Delta c1 sk_j + e
        self._key_shoup: np.ndarray | None = None
        self._smudge_key = os.urandom(32)
        self._answered: set[bytes] = set()  # digests of the chunks decrypted so far
        self._requests: dict[bytes, bytes] = {}  # request id -> request digest

    def __repr__(self) -> str:
        return f"CommitteeMember(id={self.member_id}, state={self.state.value})"


    # -- setup -------------------------------------------------------------------------

    def setup_message(self) -> tuple[PublicKeyShare, dict[int, KeyShareDelivery]]:
        """Draw ``s_i, e_i``; return ``p_i`` and the Shamir shares of ``s_i`` for every
        other member. Once only (UsageError after)."""
        if self.state is not MemberState.NEW:
            raise UsageError(f"setup_message in state {self.state.value}")
        params, ring = self.params, self.params.ring
        n, limbs = params.degree, ring.limbs
        sampler = Sampler.fresh(LABEL + b"/member-key")
        secret = ring.from_signed(sampler.ternary((1, n)))
        error = ring.from_signed(sampler.binomial((1, n), ERROR_ETA))
        ring.ntt(secret)
        ring.ntt(error)
        public = ring.sub(error, ring.mul(common_random_polynomial(params, self.crs_seed), secret))
        # Shamir over Z_q per limb, in NTT form (sharing is linear): evaluate
        # f(x) = s + r_1 x + ... + r_(t-1) x^(t-1) at every member's position by Horner.
        members = self.committee.members
        xs = np.arange(1, len(members) + 1, dtype=_U64).reshape(len(members), 1, 1)
        q = ring.q.reshape(1, limbs, 1)
        degree = self.committee.threshold - 1
        coefficients = sampler.uniform(params.moduli, (degree, n))  # (limbs, t-1, N)
        values = np.zeros((len(members), limbs, n), dtype=_U64)
        for k in range(degree - 1, -1, -1):
            np.multiply(values, xs, out=values)  # < 2^32 * 256
            np.add(values, coefficients[:, k][None], out=values)
            np.remainder(values, q, out=values)
        np.multiply(values, xs, out=values)
        np.add(values, secret[:, 0][None], out=values)
        np.remainder(values, q, out=values)
        for array in (secret, error, coefficients):
            array.fill(0)  # best effort: the secret polynomial is not needed any more
        deliveries = {}
        for index, member in enumerate(members):
            share = values[index].reshape(limbs, 1, n)
            if member == self.member_id:
                self._own_share = share.copy()
            else:
                deliveries[member] = KeyShareDelivery(params, self.member_id, member, share.copy())
        values.fill(0)
        self.state = MemberState.SETUP_SENT
        return PublicKeyShare(params, self.member_id, public), deliveries

    def finish_setup(
        self, contributors: Sequence[int], deliveries: Mapping[int, KeyShareDelivery]
    ) -> None:
        """Sum the shares of the contributors ``K`` into this member's key share.

        ``deliveries`` maps every contributor other than this member to its delivery. A
        member outside ``K`` (or one that never sent its setup message) still gets a valid
        key share. Raises UsageError when called twice or when this member is a contributor
        without having sent its setup message; ConfigurationError for a contributor set
        that is not at least ``threshold`` members; InsufficientSharesError for a missing
        delivery, IncompatibleSharesError for a delivery from a non-contributor, to
        another member, or of other parameters.
        """
        if self.state is MemberState.READY:
            raise UsageError("finish_setup called twice")
        ids = self.committee.check_subset(contributors, "contributors")
        if len(ids) < self.committee.threshold:
            raise ConfigurationError("fewer contributors than the threshold")
        if self.member_id in ids and self._own_share is None:
            raise UsageError("a contributor must have sent its setup message")
        expected = set(ids) - {self.member_id}
        missing = expected - set(deliveries)
        if missing:
            raise InsufficientSharesError(
                f"no key share delivery from {len(missing)} contributor(s)"
            )
        if set(deliveries) - expected:
            raise IncompatibleSharesError("a key share delivery from a non-contributor")
        ring = self.params.ring
        key = ring.zeros(1)
        for sender in sorted(expected):
            delivery = deliveries[sender]
            if (
                delivery.sender != sender
                or delivery.recipient != self.member_id
                or delivery.params != self.params
            ):
                raise IncompatibleSharesError(f"delivery from {sender} is not for this member")
            ring.add(key, delivery.value, out=key)
        if self.member_id in ids:
            assert self._own_share is not None
            ring.add(key, self._own_share, out=key)
        if self._own_share is not None:
            self._own_share.fill(0)
            self._own_share = None
        # Every share this member will give is Delta c1 sk_j + e: keep Delta sk_j.
        q = ring.q
        factor = self.params.noise.delta
        column = np.array([factor % m for m in self.params.moduli], dtype=_U64).reshape(
            ring.limbs, 1, 1
        )
        scaled = np.empty_like(key)
        mul_shoup(key, column, shoup_factor(column, q), q, scaled, np.empty_like(key))
        key.fill(0)
        self._key = scaled
        self._key_shoup = shoup_factor(scaled, q)
        self.state = MemberState.READY

    # -- state export ------------------------------------------------------------------

    def to_state_bytes(self) -> bytes:
        """Everything this member holds, as a versioned msgpack record (no pickle), for
        :meth:`from_state_bytes` in another process of the same node. SECRET: its own
        Shamir share or its key share and its smudging key; it must never leave the node.

        Restoring an older state cannot make the member give two different shares of one
        chunk: a share is a deterministic function of (key, chunk), so the forgotten
        answers would be answered again with the same bytes.
        """
        ring = self.params.ring
        return encode_record({
            "v": _STATE_VERSION,
            "d": self.params.digest,
            "i": self.member_id,
            "s": self.state.value,
            "o": None if self._own_share is None else pack_residues(ring, self._own_share),
            "k": None if self._key is None else pack_residues(ring, self._key),
            "m": self._smudge_key,
            "a": sorted(self._answered),
            "r": [[rid, digest] for rid, digest in sorted(self._requests.items())],
        })  # fmt: skip

    @classmethod
    def from_state_bytes(
        cls,
        params: ThresholdCkksParameters,
        committee: Committee,
        member_id: int,
        crs_seed: bytes,
        data: bytes,
        *,
        min_summands: int = 2,
    ) -> CommitteeMember:
        """The member :meth:`to_state_bytes` saved, for the same parameters, committee,
        member id and seed (ConfigurationError as the constructor for bad ones). Raises
        DecodeError (``party=None``) when ``data`` is not such a state: garbled, of other
        parameters or another member, residues out of range, fields that contradict its
        lifecycle state."""
        member = cls(params, committee, member_id, crs_seed, min_summands=min_summands)
        if not isinstance(data, bytes):
            raise DecodeError(f"malformed {_STATE_WHAT}")
        obj = decode_record(data, set("vdisokmar"), _STATE_WHAT, None, version=_STATE_VERSION)
        if bytes_field(obj, "d", _STATE_WHAT, None) != params.digest or \
                int_field(obj, "i", _STATE_WHAT, None) != member_id:
            raise DecodeError(f"{_STATE_WHAT} of other parameters or another member")
        try:
            state = MemberState(obj["s"])
        except ValueError:
            raise DecodeError(f"malformed {_STATE_WHAT}: s") from None
        ring = params.ring
        own = None if obj["o"] is None else unpack_residues(ring, obj["o"], 1, _STATE_WHAT)
        key = None if obj["k"] is None else unpack_residues(ring, obj["k"], 1, _STATE_WHAT)
        expected = {
            MemberState.NEW: (False, False),
            MemberState.SETUP_SENT: (True, False),
            MemberState.READY: (False, True),
        }[state]
        if (own is not None, key is not None) != expected:
            raise DecodeError(f"malformed {_STATE_WHAT}: fields contradict its state")
        smudge_key = bytes_field(obj, "m", _STATE_WHAT, None)
        answered, requests = obj["a"], obj["r"]
        if (
            len(smudge_key) != 32
            or not isinstance(answered, list)
            or len(answered) > MAX_DECRYPTED_CIPHERTEXTS
            or any(not isinstance(d, bytes) or len(d) != _DIGEST_BYTES for d in answered)
            or not isinstance(requests, list)
            or len(requests) > MAX_REQUESTS
            or any(
                not isinstance(r, list) or len(r) != 2
                or not isinstance(r[0], bytes) or not 1 <= len(r[0]) <= MAX_REQUEST_ID_BYTES
                or not isinstance(r[1], bytes) or len(r[1]) != 32
                for r in requests
            )
        ):  # fmt: skip
            raise DecodeError(f"malformed {_STATE_WHAT}")
        member.state = state
        member._own_share = own
        member._key = key
        member._key_shoup = None if key is None else shoup_factor(key, ring.q)
        member._smudge_key = smudge_key
        member._answered = set(answered)
        member._requests = {bytes(r[0]): bytes(r[1]) for r in requests}
        return member

    # -- decryption --------------------------------------------------------------------

    def decryption_share(self, mask: CiphertextMask, *, request_id: bytes) -> DecryptionShare:
        """This member's decryption share of ``mask``: ``Delta c1 sk_j + e_j`` per chunk.

        The share does not depend on who else answers, and its noise is a pseudorandom
        function of (this member's secret, the chunk), so a chunk has one share of this
        member, ever: asking again gives the same bytes. ``request_id`` names the
        decryption (the protocol's session and round): one aggregate per request id.
        Raises UsageError before setup or when the key share is exhausted;
        ConfigurationError for a malformed request id; MaliciousRequestError for a summand
        count outside ``min_summands..max_summands`` or another aggregate under a request
        id already answered. A refused request changes nothing.
        """
        if self.state is not MemberState.READY or self._key is None:
            raise UsageError("decryption_share before finish_setup")
        if not isinstance(request_id, bytes) or not 1 <= len(request_id) <= MAX_REQUEST_ID_BYTES:
            raise ConfigurationError(f"request_id must be 1..{MAX_REQUEST_ID_BYTES} bytes")
        params = self.params
        if not isinstance(mask, CiphertextMask) or mask.params != params:
            raise UsageError("a ciphertext mask of other parameters")
        if not self.min_summands <= mask.summands <= params.max_summands:
            raise MaliciousRequestError(
                f"an aggregate whose summand count is outside "
                f"{self.min_summands}..{params.max_summands}"
            )
        digests = _chunk_digests(params, mask.value)
        request_digest = hashlib.sha256(
            LABEL + b"/request" + struct.pack(">QQ", mask.length, mask.summands) + b"".join(digests)
        ).digest()
        previous = self._requests.get(request_id)
        if previous is not None and previous != request_digest:
            raise MaliciousRequestError("a second decryption request for another aggregate")
        fresh = {d for d in digests if d not in self._answered}
        if len(self._answered) + len(fresh) > MAX_DECRYPTED_CIPHERTEXTS or (
            previous is None and len(self._requests) >= MAX_REQUESTS
        ):
            raise UsageError("this key share is exhausted: set up a new key")
        value = self._compute_share(mask.value, digests)
        self._requests[request_id] = request_digest
        self._answered |= fresh
        return DecryptionShare(params, self.member_id, value)

    def _compute_share(self, masks: np.ndarray, digests: Sequence[bytes]) -> np.ndarray:
        params, ring = self.params, self.params.ring
        assert self._key is not None and self._key_shoup is not None
        chunks = masks.shape[1]
        out = np.empty((ring.limbs, chunks, params.degree), dtype=_U64)
        smudging_bits = params.noise.smudging_bits
        block_scratch = np.empty((ring.limbs, CHUNK_BLOCK, params.degree), dtype=_U64)
        for start in range(0, chunks, CHUNK_BLOCK):
            p = min(CHUNK_BLOCK, chunks - start)
            block = out[:, start : start + p]
            mul_shoup(
                masks[:, start : start + p],
                self._key,
                self._key_shoup,
                ring.q,
                block,
                block_scratch[:, :p],
            )
            ring.intt(block)
            for c in range(start, start + p):
                # Smudging: a PRF of (secret, chunk), so a chunk gets the same noise however
                # often it is asked, and averaging repeated answers gains nothing.
                seed = hmac.new(
                    self._smudge_key, LABEL + b"/smudge" + digests[c], "sha256"
                ).digest()
                noise = Sampler(seed, LABEL + b"/smudge").wide(
                    params.moduli, (params.degree,), smudging_bits
                )
                target = out[:, c : c + 1]
                ring.add(target, noise.reshape(ring.limbs, 1, -1), out=target)
        return out
