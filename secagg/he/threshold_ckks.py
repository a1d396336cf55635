"""Threshold RLWE encryption for secure aggregation ("threshold CKKS"), in NumPy.

No single party can decrypt: a committee of ``n`` members generates a collective key, clients
encrypt under it, the server adds ciphertexts, and any ``t`` members turn the aggregate into
the sum; ``t - 1`` of them, even with the server, learn nothing about any input. The
construction is Mouchet, Troncoso-Pastoriza, Bossuat and Hubaux, "Multiparty Homomorphic
Encryption from Ring-Learning-with-Errors" (PoPETs 2021), with Lattigo's t-of-n
Thresholdizer/Combiner; the ring arithmetic is :mod:`secagg.he.rlwe`.

Theory of operation
-------------------
Ring ``R_Q = Z_Q[X]/(X^N + 1)``, ``Q`` a product of 32-bit NTT primes; plaintexts are
vectors over ``Z_t``, ``t = 2^plaintext_bits``, one value per coefficient (coefficient
encoding: ``N`` values per ciphertext).

1. Key generation. A public seed expands to the common random polynomial ``a``. Member
   ``i`` draws a ternary ``s_i`` and a centered binomial ``e_i`` and publishes
   ``p_i = -a s_i + e_i`` (:class:`PublicKeyShare`). The collective key is
   ``(p, a) = (sum_(i in K) p_i, a)`` over the set ``K`` of contributors
   (:func:`collective_public_key`), and its secret ``s = sum_(i in K) s_i`` is never
   assembled anywhere.
2. t-of-n. At setup, member ``i`` also Shamir-shares ``s_i`` over ``Z_Q`` (limb by limb,
   for all ``N`` coefficients at once): ``f_i(x) = s_i + r_1 x + ... + r_(t-1) x^(t-1)``
   with uniform ``r_k``, and sends ``f_i(x_j)`` to every other member ``j``
   (:class:`KeyShareDelivery`, for the protocol layer to seal). Member ``j``'s key share is
   ``sk_j = sum_(i in K) f_i(x_j)``, a degree ``t - 1`` sharing of ``s`` (x coordinates are
   the member ids). Dropouts during setup: the server fixes ``K`` as the members whose
   public key share and deliveries all arrived; every member that then receives the
   deliveries of all of ``K`` holds a valid share (even one outside ``K``); the others hold
   none and count as dropped. ``|K| >= t`` is required.
3. Encryption (:func:`encrypt`): ternary ``u``, binomial ``e0, e1``;
   ``c1 = a u + e1`` (the *mask*, sent in NTT form) and the *body*
   ``c0' = round(2^k (p u + e0) / Q) + m 2^(k - log2 t) mod 2^k`` with
   ``k = log2 t + ceil(log2 max_summands) + 3``: the body is compressed from ``log2 Q`` to
   ``k`` bits (a deterministic function of the usual ``c0``, so it reveals nothing more),
   and carries the message in its top bits, where noise never reaches it. Ciphertexts add
   coefficient-wise (mod ``Q`` for masks, mod ``2^k`` for bodies); the summand count is
   tracked.
4. Decryption. For an active set ``S`` (``|S| >= t``), member ``j`` returns
   ``d_j = c1 lambda_j^S sk_j + e_j`` (:class:`DecryptionShare`), with ``lambda_j^S`` its
   Lagrange coefficient at 0 and ``e_j`` uniform in ``[-2^b, 2^b)`` (smudging). Then
   ``sum_(j in S) d_j = c1 s + sum e_j``, and :func:`combine` computes
   ``t (c1 s + sum e_j) / Q + c0' / 2^(k - log2 t) = m + offset (mod t)``, rounds, and
   refuses (DecodeError) any coefficient whose ``|offset|`` exceeds 3/8: an honest
   decryption never does, a corrupted share almost surely does.

The noise bound and the smudging (all in :class:`NoiseBudget`)
---------------------------------------------------------------
A sum of ``n <= max_summands`` fresh ciphertexts decrypts (before smudging) with noise
``e_ct = U e_pk + E0 + E1 s``; :func:`secagg.he.rlwe.noise.noise_tail_bound` gives a ``B``
with ``P(|e_ct| >= B) <= 2^-64`` per coefficient, a Chernoff bound evaluated on the exact
distribution for ``n = max_summands`` and ``committee_size`` key holders (it only grows
with either). Smudging ``e_j`` uniform in ``[-2^b, 2^b)`` with ``b = ceil(log2 B) + 40``
makes ``e_ct + e_j`` and ``e_j`` at statistical distance at most
``B / 2^(b+1) + 2^-64 <= 2^-40`` per coefficient, so one honest member's share hides the key
(smudging lemma; see Asharov et al., EUROCRYPT 2012). The decoded offset is at most
``t E / Q + n t / 2^k`` with ``E = B + committee_size 2^b``; the parameters require
``t E / Q <= 1/4`` (``Q >= 4 t E``) and the body size gives ``n t / 2^k <= 1/8``, so honest
offsets stay below 3/8 and sums are exact mod ``t`` (except with probability 2^-64 per
coefficient). :meth:`ThresholdCkksParameters.choose` picks the fewest limbs that fit.

Why the message sits in the top bits. For additions only, CKKS and BFV are the same
scheme up to where the message is scaled: CKKS multiplies by ``Delta = 2^k`` (noise in the
low bits, approximate results), BFV by ``Q / t`` (noise below the message, exact results).
Secure aggregation wants exact sums mod ``2^bits`` (every other secagg protocol gives them),
so we scale like BFV. Real vectors go through :class:`secagg.encoding.FixedPoint`
(:func:`float_codec`): clip, scale, unbiased stochastic rounding into ``Z_t``; the decoded
mean is then off by at most ``1 / scale`` per value (about ``clip * max_summands / 2^31``
at 32 bits), and by nothing else.

The rule that keeps it safe
---------------------------
A member produces at most one decryption share per key share per ciphertext. Two shares
of the same ``c1`` for different active sets (different ``lambda``) reveal ``sk_j`` by
lattice reduction (Lattigo SECURITY.md; ePrint 2025/409). :class:`CommitteeMember`
therefore remembers the digest of every ciphertext (chunk) it decrypted and the active
set it used, and raises :class:`MaliciousRequestError` for the same ciphertext with
another set, for a second aggregate under the same request id, and for an aggregate of
fewer than ``min_summands`` (or more than ``max_summands``) summands. Its smudging noise is
a deterministic pseudorandom function of (its secret, the ciphertext, the set), so
answering an identical request twice gives identical bytes: retransmission is safe.
Consequence for the protocol: the active set must be fixed before shares are requested,
and a member of it that drops ends that decryption (no retry with another set).

Trust model
-----------
Semi-honest committee and server; at most ``t - 1`` members collude with the server. Then
the server learns the sum and nothing else (up to 2^-40 statistical distance per
coefficient, plus RLWE). A malicious member can corrupt the result (a wrong share is
caught by the offset check unless it is a multiple of the scale, i.e. crafted: then the
sum is wrong, undetected) but cannot read an input: its view is its key share and public
data. A malicious server is out of scope and dangerous: a crafted "aggregate" (say a
``c1`` of its choice, or one client's ciphertext with a false summand count) decrypts to
whatever it encodes, including the key; members can check counts, sets and repeats, not
that ``c1`` is an honest sum. Detection with ``t + 1`` shares ("two subsets must agree")
is not offered: a share is bound to its active set, so checking another subset needs a
second share of the same ciphertext, which is exactly what the rule forbids.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

import numpy as np

from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
    MaliciousRequestError,
    UsageError,
)
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.rlwe.noise import noise_tail_bound, noise_variance
from secagg.he.rlwe.ntt import mul_shoup, shoup_factor
from secagg.he.rlwe.params import ERROR_ETA, RlweParameters
from secagg.he.rlwe.ring import RnsRing, lagrange_at_zero
from secagg.he.rlwe.sampling import Sampler
from secagg.he.rlwe.wire import pack_residues, residues_size, unpack_residues
from secagg.packing import pack, packed_size, unpack
from secagg.prg import SEED_BYTES
from secagg.ring import check_values, dtype_for_bits

__all__ = [
    "DEFAULT_DEGREE",
    "MAX_COMMITTEE",
    "MAX_LENGTH",
    "MAX_MEMBER_ID",
    "MAX_REQUEST_ID_BYTES",
    "STATISTICAL_BITS",
    "TAIL_BITS",
    "Ciphertext",
    "CiphertextMask",
    "Committee",
    "CommitteeMember",
    "DecryptionShare",
    "KeyShareDelivery",
    "MemberState",
    "NoiseBudget",
    "PublicKey",
    "PublicKeyShare",
    "ThresholdCkksParameters",
    "collective_public_key",
    "combine",
    "encrypt",
    "encrypt_floats",
    "float_codec",
    "sum_ciphertexts",
]

STATISTICAL_BITS = 40
"""Smudging: statistical distance at most 2^-40 per coefficient."""
TAIL_BITS = 64
"""The fresh-noise bound fails with probability at most 2^-64 per coefficient."""
DEFAULT_DEGREE = 8192
MAX_COMMITTEE = 256
MAX_MEMBER_ID = 2**31 - 1
"""Member ids are Shamir x coordinates: below every limb prime (> 2^31)."""
MAX_LENGTH = 2**31
MAX_REQUEST_ID_BYTES = 256
MAX_DECRYPTED_CIPHERTEXTS = 1 << 20
"""Ciphertexts (of N values) one key share decrypts before it must be replaced."""
MAX_REQUESTS = 1 << 16
_OFFSET_LIMIT = 3 / 8
_VERSION = 1
_LABEL = b"secagg/threshold-ckks/v1"
_DIGEST_BYTES = 16
_U64 = np.uint64
# Ciphertext chunks handled at once by encryption and decryption shares (bounds scratch).
_CHUNK_BLOCK = 8


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be an int in {low}..{high}")
    return value  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class NoiseBudget:
    """Every figure of the noise derivation (module docstring), for one parameter set.

    ``fresh_bound`` bounds the noise of ``max_summands`` fresh ciphertexts except with
    probability ``2^-tail_bits`` per coefficient; smudging is uniform in
    ``[-2^smudging_bits, 2^smudging_bits)``; ``statistical_distance`` is per coefficient;
    ``total_bound`` adds ``committee_size`` smudging terms; ``max_offset`` is the worst
    decoding offset (at most 3/8); ``required_log_modulus`` is ``log2(4 t E)``.
    """

    fresh_variance: float
    fresh_bound: float
    tail_bits: int
    smudging_bits: int
    statistical_distance: float
    total_bound: float
    body_bits: int
    max_offset: float
    required_log_modulus: float


@dataclass(frozen=True)
class ThresholdCkksParameters:
    """Public parameters: ring, plaintext modulus ``2^plaintext_bits`` and the bounds the
    noise analysis assumes (``committee_size`` key holders at most, ``max_summands``
    ciphertexts summed at most).

    Raises ConfigurationError when the ring is not 128-bit secure by the HE standard
    (:class:`secagg.he.rlwe.params.RlweParameters`), or when ``Q`` is too small for the
    noise (:attr:`noise`), or for out-of-range fields.
    """

    degree: int = DEFAULT_DEGREE
    limbs: int = 3
    plaintext_bits: int = 32
    committee_size: int = 5
    max_summands: int = 1000

    def __post_init__(self) -> None:
        _check_int("plaintext_bits", self.plaintext_bits, 1, 60)
        _check_int("committee_size", self.committee_size, 1, MAX_COMMITTEE)
        _check_int("max_summands", self.max_summands, 1, 1 << 40)
        _check_int("limbs", self.limbs, 1, 64)
        if not _is_int(self.degree) or self.degree < 4096:
            raise ConfigurationError("degree must be 4096, 8192, 16384 or 32768")
        self.rlwe  # noqa: B018 - validates the ring against the HE standard
        budget = self.noise
        if budget.body_bits > 64:
            raise ConfigurationError("plaintext_bits + log2(max_summands) + 3 must not exceed 64")
        if budget.required_log_modulus > self.rlwe.log_modulus:
            raise ConfigurationError(
                f"log2 Q = {self.rlwe.log_modulus:.1f} is below the "
                f"{budget.required_log_modulus:.1f} bits the noise needs: add limbs or "
                "lower plaintext_bits, committee_size or max_summands"
            )

    @classmethod
    def choose(
        cls,
        *,
        committee_size: int,
        max_summands: int,
        plaintext_bits: int = 32,
        degree: int = DEFAULT_DEGREE,
    ) -> ThresholdCkksParameters:
        """The parameters with the fewest limbs at ``degree`` that fit the noise.

        Raises ConfigurationError when even the most limbs the HE standard allows at
        ``degree`` do not fit (use a larger degree).
        """
        top = RlweParameters.max_limbs(degree)
        for limbs in range(1, top + 1):
            try:
                return cls(degree, limbs, plaintext_bits, committee_size, max_summands)
            except ConfigurationError as exc:
                if "noise needs" not in str(exc):
                    raise
        raise ConfigurationError(
            f"no modulus within the HE standard at N = {degree} fits these bounds"
        )

    @cached_property
    def rlwe(self) -> RlweParameters:
        return RlweParameters.standard(self.degree, self.limbs)

    @property
    def ring(self) -> RnsRing:
        return self.rlwe.ring

    @property
    def moduli(self) -> tuple[int, ...]:
        return self.rlwe.moduli

    @cached_property
    def noise(self) -> NoiseBudget:
        """The noise derivation (module docstring) of these parameters."""
        variance = noise_variance(
            degree=self.degree,
            holders=self.committee_size,
            summands=self.max_summands,
            eta=ERROR_ETA,
        )
        bound = noise_tail_bound(
            degree=self.degree,
            holders=self.committee_size,
            summands=self.max_summands,
            eta=ERROR_ETA,
            tail_bits=TAIL_BITS,
        )
        smudging = math.ceil(math.log2(bound)) + STATISTICAL_BITS
        total = bound + self.committee_size * 2.0**smudging
        body_bits = self.plaintext_bits + math.ceil(math.log2(self.max_summands)) + 3
        t = 2.0**self.plaintext_bits
        offset = t * total / self.rlwe.modulus + self.max_summands * t / 2.0**body_bits
        return NoiseBudget(
            fresh_variance=variance,
            fresh_bound=bound,
            tail_bits=TAIL_BITS,
            smudging_bits=smudging,
            statistical_distance=bound / 2.0 ** (smudging + 1) + 2.0**-TAIL_BITS,
            total_bound=total,
            body_bits=body_bits,
            max_offset=offset,
            required_log_modulus=math.log2(4 * t * total),
        )

    @property
    def body_bits(self) -> int:
        """Bits of one compressed body coefficient (``k`` in the module docstring)."""
        return self.noise.body_bits

    def chunks(self, length: int) -> int:
        """Ciphertexts (of N values) a vector of ``length`` values takes."""
        return -(-length // self.degree)

    def ciphertext_bytes(self, length: int) -> int:
        """Payload bytes of an encrypted vector (body + mask, without the record header)."""
        chunks = self.chunks(length)
        return packed_size(chunks * self.degree, self.body_bits) + residues_size(self.ring, chunks)

    def mask_bytes(self, length: int) -> int:
        """Payload bytes of a :class:`CiphertextMask` or a :class:`DecryptionShare`."""
        return residues_size(self.ring, self.chunks(length))

    def to_dict(self) -> dict[str, int]:
        return {
            "n": self.degree,
            "l": self.limbs,
            "b": self.plaintext_bits,
            "m": self.committee_size,
            "s": self.max_summands,
        }

    @classmethod
    def from_dict(cls, data: object, *, party: int | None = None) -> ThresholdCkksParameters:
        """Inverse of :meth:`to_dict`; DecodeError for anything malformed or refused."""
        if not isinstance(data, dict) or set(data) != {"n", "l", "b", "m", "s"}:
            raise DecodeError("malformed threshold CKKS parameters", party=party)
        if not all(_is_int(v) for v in data.values()):
            raise DecodeError("malformed threshold CKKS parameters", party=party)
        try:
            return cls(data["n"], data["l"], data["b"], data["m"], data["s"])
        except ConfigurationError as exc:
            raise DecodeError(f"refused threshold CKKS parameters: {exc}", party=party) from None

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding: binds derived randomness to the parameters."""
        return hashlib.sha256(_LABEL + encode_record(self.to_dict())).digest()


def float_codec(
    params: ThresholdCkksParameters, clip: float, *, max_weight: float = 1.0
) -> FixedPoint:
    """The fixed-point codec of real vectors in ``[-clip, clip]`` for these parameters: the
    largest scale at which ``max_summands`` encodings cannot wrap mod ``2^plaintext_bits``.
    The decoded sum is off by at most ``max_summands / scale`` per value (the mean by
    ``1 / scale``). Raises ConfigurationError or HeadroomError for bad values."""
    return FixedPoint.for_precision(
        bits=params.plaintext_bits,
        clip=clip,
        max_clients=params.max_summands,
        max_weight=max_weight,
    )


@dataclass(frozen=True)
class Committee:
    """The decryption committee: member ids (Shamir x coordinates) and the threshold.

    Raises ConfigurationError unless the ids are distinct ints in 1..:data:`MAX_MEMBER_ID`
    (normalized to a sorted tuple), at most :data:`MAX_COMMITTEE`, and
    ``1 <= threshold <= len(members)``.
    """

    members: tuple[int, ...]
    threshold: int

    def __post_init__(self) -> None:
        members = self.members
        if not isinstance(members, tuple | list) or not members:
            raise ConfigurationError("members must be a non-empty sequence of ids")
        if len(members) > MAX_COMMITTEE:
            raise ConfigurationError(f"at most {MAX_COMMITTEE} members")
        for member in members:
            _check_int("a member id", member, 1, MAX_MEMBER_ID)
        if len(set(members)) != len(members):
            raise ConfigurationError("member ids must be distinct")
        object.__setattr__(self, "members", tuple(sorted(members)))
        _check_int("threshold", self.threshold, 1, len(members))

    def check_fits(self, params: ThresholdCkksParameters) -> None:
        """ConfigurationError when the committee exceeds ``params.committee_size``."""
        if len(self.members) > params.committee_size:
            raise ConfigurationError(
                f"{len(self.members)} members exceed committee_size = {params.committee_size}"
            )

    def check_subset(self, ids: Iterable[int], what: str) -> tuple[int, ...]:
        """``ids`` as a sorted tuple if they are distinct members, else ConfigurationError."""
        out = tuple(ids)
        if any(not _is_int(i) for i in out) or len(set(out)) != len(out):
            raise ConfigurationError(f"{what} must be distinct member ids")
        if not set(out) <= set(self.members):
            raise ConfigurationError(f"{what} names a non-member")
        return tuple(sorted(out))


# --------------------------------------------------------------------------------------------
# Shared helpers


def _chunk_digests(params: ThresholdCkksParameters, mask: np.ndarray) -> list[bytes]:
    """A 16-byte digest of every chunk's mask (its canonical 32-bit residues)."""
    prefix = _LABEL + b"/chunk" + params.digest
    words = mask.astype("<u4")  # residues < 2^32: the wire form
    return [
        hashlib.sha256(prefix + np.ascontiguousarray(words[:, c]).tobytes()).digest()[
            :_DIGEST_BYTES
        ]
        for c in range(mask.shape[1])
    ]


def _crs(params: ThresholdCkksParameters, seed: bytes) -> np.ndarray:
    """The common random polynomial ``a`` (NTT form, ``(limbs, 1, N)``) of ``seed``."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ConfigurationError(f"the common random seed must be {SEED_BYTES} bytes")
    sampler = Sampler.public(seed, _LABEL + b"/crs/" + params.digest)
    return sampler.uniform(params.moduli, (1, params.degree))


# --------------------------------------------------------------------------------------------
# Keys


class PublicKeyShare:
    """Member ``member``'s ``p_i = -a s_i + e_i`` (NTT form, ``(limbs, 1, N)``). Public."""

    __slots__ = ("member", "params", "value")

    def __init__(self, params: ThresholdCkksParameters, member: int, value: np.ndarray) -> None:
        self.params = params
        self.member = _check_int("member", member, 1, MAX_MEMBER_ID)
        self.value = value

    def __repr__(self) -> str:
        return f"PublicKeyShare(member={self.member})"

    def to_bytes(self) -> bytes:
        return encode_record(
            {"v": _VERSION, "i": self.member, "p": pack_residues(self.params.ring, self.value)}
        )

    @classmethod
    def from_bytes(
        cls, params: ThresholdCkksParameters, data: bytes, *, party: int | None = None
    ) -> PublicKeyShare:
        """Inverse of :meth:`to_bytes`; DecodeError (naming ``party``) when malformed."""
        what = "public key share"
        obj = decode_record(data, {"v", "i", "p"}, what, party, version=_VERSION)
        member = int_field(obj, "i", what, party)
        if not 1 <= member <= MAX_MEMBER_ID:
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(params.ring, bytes_field(obj, "p", what, party), 1, what, party)
        return cls(params, member, value)


class KeyShareDelivery:
    """Member ``sender``'s Shamir share ``f_sender(x_recipient)`` for ``recipient``.

    SECRET: the protocol layer must seal :meth:`to_bytes` for the recipient. Never printed,
    never pickled.
    """

    __slots__ = ("_value", "params", "recipient", "sender")

    def __init__(
        self, params: ThresholdCkksParameters, sender: int, recipient: int, value: np.ndarray
    ) -> None:
        self.params = params
        self.sender = _check_int("sender", sender, 1, MAX_MEMBER_ID)
        self.recipient = _check_int("recipient", recipient, 1, MAX_MEMBER_ID)
        self._value = value

    def __repr__(self) -> str:
        return f"KeyShareDelivery(sender={self.sender}, recipient={self.recipient})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KeyShareDelivery holds a secret share and cannot be pickled")

    def to_bytes(self) -> bytes:
        """The SECRET share as a versioned record (seal it before it leaves the member)."""
        return encode_record(
            {
                "v": _VERSION,
                "f": self.sender,
                "t": self.recipient,
                "s": pack_residues(self.params.ring, self._value),
            }
        )

    @classmethod
    def from_bytes(
        cls, params: ThresholdCkksParameters, data: bytes, *, party: int | None = None
    ) -> KeyShareDelivery:
        """Inverse of :meth:`to_bytes`; DecodeError (naming ``party``) when malformed."""
        what = "key share delivery"
        obj = decode_record(data, {"v", "f", "t", "s"}, what, party, version=_VERSION)
        sender = int_field(obj, "f", what, party)
        recipient = int_field(obj, "t", what, party)
        if not (1 <= sender <= MAX_MEMBER_ID and 1 <= recipient <= MAX_MEMBER_ID):
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(params.ring, bytes_field(obj, "s", what, party), 1, what, party)
        return cls(params, sender, recipient, value)


class PublicKey:
    """The collective public key ``(p, a)``: ``p`` the sum of the contributors' shares,
    ``a`` expanded from the public seed (sent as the seed). NTT form, with Shoup factors
    for fast encryption. Raises ConfigurationError for a bad seed or contributor list."""

    __slots__ = ("_a", "_a_shoup", "_p_shoup", "contributors", "params", "seed", "value")

    def __init__(
        self,
        params: ThresholdCkksParameters,
        seed: bytes,
        contributors: Sequence[int],
        value: np.ndarray,
    ) -> None:
        ids = tuple(contributors)
        if not ids or len(ids) > params.committee_size or list(ids) != sorted(set(ids)):
            raise ConfigurationError(
                f"contributors must be 1..{params.committee_size} sorted distinct ids"
            )
        for member in ids:
            _check_int("a contributor id", member, 1, MAX_MEMBER_ID)
        self.params = params
        self.seed = seed
        self.contributors = ids
        self.value = value
        self._a = _crs(params, seed)
        q = params.ring.q
        self._a_shoup = shoup_factor(self._a, q)
        self._p_shoup = shoup_factor(value, q)

    def __repr__(self) -> str:
        return f"PublicKey(contributors={list(self.contributors)}, fingerprint={self.fingerprint})"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]

    def to_bytes(self) -> bytes:
        return encode_record(
            {
                "v": _VERSION,
                "s": self.seed,
                "k": list(self.contributors),
                "p": pack_residues(self.params.ring, self.value),
            }
        )

    @classmethod
    def from_bytes(
        cls, params: ThresholdCkksParameters, data: bytes, *, party: int | None = None
    ) -> PublicKey:
        """Inverse of :meth:`to_bytes`; DecodeError (naming ``party``) when malformed."""
        what = "public key"
        obj = decode_record(data, {"v", "s", "k", "p"}, what, party, version=_VERSION)
        seed = bytes_field(obj, "s", what, party)
        contributors = obj["k"]
        if (
            len(seed) != SEED_BYTES
            or not isinstance(contributors, list)
            or not all(_is_int(i) for i in contributors)
        ):
            raise DecodeError(f"malformed {what}", party=party)
        value = unpack_residues(params.ring, bytes_field(obj, "p", what, party), 1, what, party)
        try:
            return cls(params, seed, contributors, value)
        except ConfigurationError as exc:
            raise DecodeError(f"malformed {what}: {exc}", party=party) from None


def collective_public_key(
    params: ThresholdCkksParameters, seed: bytes, shares: Iterable[PublicKeyShare]
) -> PublicKey:
    """The public key of the contributors whose shares are given: ``(sum p_i, a)``.

    Raises ConfigurationError for no share, two shares of one member, a share of other
    parameters, or more contributors than ``committee_size``.
    """
    by_member: dict[int, PublicKeyShare] = {}
    for share in shares:
        if share.params != params:
            raise ConfigurationError("a public key share of other parameters")
        if share.member in by_member:
            raise ConfigurationError(f"two public key shares of member {share.member}")
        by_member[share.member] = share
    if not by_member:
        raise ConfigurationError("no public key share")
    ring = params.ring
    total = ring.zeros(1)
    for share in by_member.values():
        ring.add(total, share.value, out=total)
    return PublicKey(params, seed, sorted(by_member), total)


# --------------------------------------------------------------------------------------------
# Ciphertexts


class CiphertextMask:
    """The masks ``c1`` (NTT form, ``(limbs, chunks, N)``) of an encrypted vector, its
    length and summand count: all a member needs for its decryption share. Public."""

    __slots__ = ("length", "params", "summands", "value")

    def __init__(
        self, params: ThresholdCkksParameters, length: int, summands: int, value: np.ndarray
    ) -> None:
        self.params = params
        self.length = length
        self.summands = summands
        self.value = value

    def __repr__(self) -> str:
        return f"CiphertextMask(length={self.length}, summands={self.summands})"

    def to_bytes(self) -> bytes:
        return encode_record(
            {
                "v": _VERSION,
                "m": self.length,
                "n": self.summands,
                "a": pack_residues(self.params.ring, self.value),
            }
        )

    @classmethod
    def from_bytes(
        cls,
        params: ThresholdCkksParameters,
        data: bytes,
        *,
        length: int,
        party: int | None = None,
    ) -> CiphertextMask:
        """Inverse of :meth:`to_bytes` for a vector of ``length`` values; DecodeError
        (naming ``party``) for anything malformed: another length, a summand count outside
        1..max_summands, residues out of range, a wrong size."""
        what = "ciphertext mask"
        obj = decode_record(data, {"v", "m", "n", "a"}, what, party, version=_VERSION)
        summands = _decode_counts(params, obj, length, what, party)
        value = unpack_residues(
            params.ring, bytes_field(obj, "a", what, party), params.chunks(length), what, party
        )
        return cls(params, length, summands, value)


def _decode_counts(
    params: ThresholdCkksParameters,
    obj: Mapping[str, object],
    length: int,
    what: str,
    party: int | None,
) -> int:
    if int_field(obj, "m", what, party) != length:
        raise DecodeError(f"{what}: wrong vector length", party=party)
    summands = int_field(obj, "n", what, party)
    if not 1 <= summands <= params.max_summands:
        raise DecodeError(f"{what}: summand count out of range", party=party)
    return summands


class Ciphertext:
    """An encrypted vector: compressed bodies (``(chunks, N)`` mod ``2^body_bits``, coefficient
    form), masks (``(limbs, chunks, N)``, NTT form), length and summand count. Public.

    ``a + b`` and ``a.add_(b)`` add homomorphically; the sum of more than ``max_summands``
    summands raises UsageError (the noise analysis would no longer hold).
    """

    __slots__ = ("body", "length", "mask", "params", "summands")

    def __init__(
        self,
        params: ThresholdCkksParameters,
        length: int,
        summands: int,
        body: np.ndarray,
        mask: np.ndarray,
    ) -> None:
        self.params = params
        self.length = length
        self.summands = summands
        self.body = body
        self.mask = mask

    def __repr__(self) -> str:
        return f"Ciphertext(length={self.length}, summands={self.summands})"

    def _check(self, other: Ciphertext) -> None:
        if not isinstance(other, Ciphertext):
            raise UsageError("only ciphertexts add")
        if other.params != self.params or other.length != self.length:
            raise UsageError("ciphertexts of other parameters or another length")
        if self.summands + other.summands > self.params.max_summands:
            raise UsageError(
                f"more than max_summands = {self.params.max_summands} summands: the noise "
                "bound would not hold"
            )

    def add_(self, other: Ciphertext) -> Ciphertext:
        """Add ``other`` into this ciphertext in place; returns self."""
        self._check(other)
        np.add(self.body, other.body, out=self.body)
        if self.params.body_bits < 64:
            np.bitwise_and(self.body, _U64((1 << self.params.body_bits) - 1), out=self.body)
        self.params.ring.add(self.mask, other.mask, out=self.mask)
        self.summands += other.summands
        return self

    def __add__(self, other: Ciphertext) -> Ciphertext:
        self._check(other)
        out = Ciphertext(
            self.params, self.length, self.summands, self.body.copy(), self.mask.copy()
        )
        return out.add_(other)

    def mask_part(self) -> CiphertextMask:
        """The part a committee member needs (shares memory with this ciphertext)."""
        return CiphertextMask(self.params, self.length, self.summands, self.mask)

    def to_bytes(self) -> bytes:
        return encode_record(
            {
                "v": _VERSION,
                "m": self.length,
                "n": self.summands,
                "b": pack(self.body.reshape(-1), self.params.body_bits),
                "a": pack_residues(self.params.ring, self.mask),
            }
        )

    @classmethod
    def from_bytes(
        cls,
        params: ThresholdCkksParameters,
        data: bytes,
        *,
        length: int,
        party: int | None = None,
    ) -> Ciphertext:
        """Inverse of :meth:`to_bytes` for a vector of ``length`` values; DecodeError
        (naming ``party``) for anything malformed (as :meth:`CiphertextMask.from_bytes`,
        plus a body of the wrong size or with padding bits set)."""
        what = "ciphertext"
        obj = decode_record(data, {"v", "m", "n", "b", "a"}, what, party, version=_VERSION)
        summands = _decode_counts(params, obj, length, what, party)
        chunks = params.chunks(length)
        body_bytes = bytes_field(obj, "b", what, party)
        try:
            body = unpack(body_bytes, params.body_bits, chunks * params.degree)
        except DecodeError:
            raise DecodeError(f"malformed {what}: body", party=party) from None
        mask = unpack_residues(params.ring, bytes_field(obj, "a", what, party), chunks, what, party)
        return cls(
            params,
            length,
            summands,
            body.astype(_U64, copy=False).reshape(chunks, params.degree),
            mask,
        )


def _check_length(length: object) -> int:
    return _check_int("vector length", length, 1, MAX_LENGTH)


def _encrypt_zero(
    public_key: PublicKey, sampler: Sampler, polys: int
) -> tuple[np.ndarray, np.ndarray]:
    """``polys`` fresh encryptions of zero: ``(c0, c1)`` with ``c0 = p u + e0`` in
    coefficient form (uncompressed) and ``c1 = a u + e1`` in NTT form."""
    params, ring = public_key.params, public_key.params.ring
    n, q = params.degree, ring.q
    u = sampler.ternary((polys, n))
    e0 = sampler.binomial((polys, n), ERROR_ETA)
    e1 = sampler.binomial((polys, n), ERROR_ETA)
    stacked = ring.from_signed(np.concatenate([u, e1]))  # (limbs, 2 polys, N)
    ring.ntt(stacked)
    u_hat, e1_hat = stacked[:, :polys], stacked[:, polys:]
    scratch = np.empty_like(u_hat)
    mask = np.empty_like(u_hat)
    mul_shoup(u_hat, public_key._a, public_key._a_shoup, q, mask, scratch)
    ring.add(mask, e1_hat, out=mask)
    body = np.empty_like(u_hat)
    mul_shoup(u_hat, public_key.value, public_key._p_shoup, q, body, scratch)
    ring.intt(body)
    ring.add(body, ring.from_signed(e0), out=body)
    return body, mask


def encrypt(public_key: PublicKey, values: np.ndarray) -> Ciphertext:
    """Encrypt a vector over ``Z_(2^plaintext_bits)`` (a 1-D integer array, every value in
    range) under ``public_key``; fresh randomness from ``os.urandom``.

    Raises ConfigurationError for values of the wrong shape, dtype or range.
    """
    params = public_key.params
    bits = params.plaintext_bits
    check_values(values, bits, what="the plaintext")
    length = _check_length(int(values.shape[0]))
    ring, n = params.ring, params.degree
    chunks = params.chunks(length)
    plain = np.zeros((chunks, n), dtype=_U64)
    plain.reshape(-1)[:length] = values
    body_bits = params.body_bits
    body = np.empty((chunks, n), dtype=_U64)
    mask = np.empty((ring.limbs, chunks, n), dtype=_U64)
    sampler = Sampler.fresh(_LABEL + b"/encrypt")
    for start in range(0, chunks, _CHUNK_BLOCK):
        p = min(_CHUNK_BLOCK, chunks - start)
        residues, mask[:, start : start + p] = _encrypt_zero(public_key, sampler, p)
        # Compress: round(2^k c0 / Q) mod 2^k, then the message in the top bits.
        integer, fraction = ring.scale_to_bits(residues, body_bits)
        np.add(integer, np.rint(fraction).astype(_U64), out=integer)
        np.add(integer, plain[start : start + p] << _U64(body_bits - bits), out=integer)
        if body_bits < 64:
            np.bitwise_and(integer, _U64((1 << body_bits) - 1), out=integer)
        body[start : start + p] = integer
    return Ciphertext(params, length, 1, body, mask)


def encrypt_floats(public_key: PublicKey, x: np.ndarray, codec: FixedPoint) -> Ciphertext:
    """Encrypt a real vector through ``codec`` (see :func:`float_codec`); decode the sum with
    ``codec.decode(combine(...))``. Raises ConfigurationError when the codec does not match
    the parameters (other bits, or more clients than ``max_summands``)."""
    params = public_key.params
    if codec.bits != params.plaintext_bits or codec.max_clients > params.max_summands:
        raise ConfigurationError("the codec must have plaintext_bits and <= max_summands clients")
    return encrypt(public_key, codec.encode(np.asarray(x).reshape(-1)))


def sum_ciphertexts(ciphertexts: Iterable[Ciphertext]) -> Ciphertext:
    """The homomorphic sum (a new ciphertext). UsageError when empty or incompatible."""
    it = iter(ciphertexts)
    try:
        first = next(it)
    except StopIteration:
        raise UsageError("nothing to sum") from None
    total = Ciphertext(
        first.params, first.length, first.summands, first.body.copy(), first.mask.copy()
    )
    for ciphertext in it:
        total.add_(ciphertext)
    return total


# --------------------------------------------------------------------------------------------
# Decryption


class DecryptionShare:
    """Member ``member``'s ``c1 lambda_j sk_j + e_j`` (coefficient form, ``(limbs, chunks,
    N)``). Meant for the server; computationally hides the key share."""

    __slots__ = ("member", "params", "value")

    def __init__(self, params: ThresholdCkksParameters, member: int, value: np.ndarray) -> None:
        self.params = params
        self.member = _check_int("member", member, 1, MAX_MEMBER_ID)
        self.value = value

    def __repr__(self) -> str:
        return f"DecryptionShare(member={self.member}, chunks={self.value.shape[1]})"

    def to_bytes(self) -> bytes:
        return encode_record(
            {"v": _VERSION, "i": self.member, "d": pack_residues(self.params.ring, self.value)}
        )

    @classmethod
    def from_bytes(
        cls,
        params: ThresholdCkksParameters,
        data: bytes,
        *,
        length: int,
        party: int | None = None,
    ) -> DecryptionShare:
        """Inverse of :meth:`to_bytes` for a vector of ``length`` values; DecodeError
        (naming ``party``) when malformed."""
        what = "decryption share"
        obj = decode_record(data, {"v", "i", "d"}, what, party, version=_VERSION)
        member = int_field(obj, "i", what, party)
        if not 1 <= member <= MAX_MEMBER_ID:
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(
            params.ring, bytes_field(obj, "d", what, party), params.chunks(length), what, party
        )
        return cls(params, member, value)


class MemberState(enum.Enum):
    NEW = "new"
    SETUP_SENT = "setup sent"
    READY = "ready"


class CommitteeMember:
    """One committee member: its key material and the rules it keeps (module docstring).

    Lifecycle: :meth:`setup_message` (once), :meth:`finish_setup` (once), then
    :meth:`decryption_share` per request. Holds secrets: never printed, never pickled.
    Raises ConfigurationError for a member id outside the committee, a committee larger
    than ``committee_size``, a bad seed or ``min_summands`` outside 1..max_summands.
    """

    __slots__ = (
        "_answered",
        "_key",
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
        self.min_summands = _check_int("min_summands", min_summands, 1, params.max_summands)
        self.state = MemberState.NEW
        self._own_share: np.ndarray | None = None
        self._key: np.ndarray | None = None  # NTT(sk_j)
        self._smudge_key = os.urandom(32)
        self._answered: dict[bytes, tuple[int, ...]] = {}  # chunk digest -> active set
        self._requests: dict[bytes, bytes] = {}  # request id -> request digest

    def __repr__(self) -> str:
        return f"CommitteeMember(id={self.member_id}, state={self.state.value})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a CommitteeMember holds key material and cannot be pickled")

    # -- setup -------------------------------------------------------------------------

    def setup_message(self) -> tuple[PublicKeyShare, dict[int, KeyShareDelivery]]:
        """Draw ``s_i, e_i``; return ``p_i`` and the Shamir shares of ``s_i`` for every
        other member. Once only (UsageError after)."""
        if self.state is not MemberState.NEW:
            raise UsageError(f"setup_message in state {self.state.value}")
        params, ring = self.params, self.params.ring
        n, limbs = params.degree, ring.limbs
        sampler = Sampler.fresh(_LABEL + b"/member-key")
        secret = ring.from_signed(sampler.ternary((1, n)))
        error = ring.from_signed(sampler.binomial((1, n), ERROR_ETA))
        ring.ntt(secret)
        ring.ntt(error)
        public = ring.sub(error, ring.mul(_crs(params, self.crs_seed), secret))
        # Shamir over Z_q per limb, in NTT form (sharing is linear): evaluate
        # f(x) = s + r_1 x + ... + r_(t-1) x^(t-1) at every member id by Horner.
        members = self.committee.members
        xs = np.array(members, dtype=_U64).reshape(len(members), 1, 1)
        q = ring.q.reshape(1, limbs, 1)
        degree = self.committee.threshold - 1
        coefficients = sampler.uniform(params.moduli, (degree, n))  # (limbs, t-1, N)
        values = np.zeros((len(members), limbs, n), dtype=_U64)
        for k in range(degree - 1, -1, -1):
            np.multiply(values, xs, out=values)  # < 2^32 * 2^31
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
            ring.add(key, delivery._value, out=key)
        if self.member_id in ids:
            assert self._own_share is not None
            ring.add(key, self._own_share, out=key)
        if self._own_share is not None:
            self._own_share.fill(0)
            self._own_share = None
        self._key = key
        self.state = MemberState.READY

    # -- decryption --------------------------------------------------------------------

    def decryption_share(
        self, mask: CiphertextMask, active: Sequence[int], *, request_id: bytes
    ) -> DecryptionShare:
        """This member's decryption share of ``mask`` for the active set ``active``.

        ``request_id`` names the decryption (the protocol's session and round): one
        aggregate per request id. Raises UsageError before setup or when the key share is
        exhausted; ConfigurationError for a malformed request id; MaliciousRequestError for
        an active set that is not ``>= threshold`` distinct members including this one, a
        summand count outside ``min_summands..max_summands``, another aggregate or set
        under a request id already answered, or a ciphertext already decrypted for another
        active set. A refused request changes nothing.
        """
        if self.state is not MemberState.READY or self._key is None:
            raise UsageError("decryption_share before finish_setup")
        if not isinstance(request_id, bytes) or not 1 <= len(request_id) <= MAX_REQUEST_ID_BYTES:
            raise ConfigurationError(f"request_id must be 1..{MAX_REQUEST_ID_BYTES} bytes")
        params = self.params
        if not isinstance(mask, CiphertextMask) or mask.params != params:
            raise UsageError("a ciphertext mask of other parameters")
        try:
            ids = self.committee.check_subset(active, "the active set")
        except ConfigurationError as exc:
            raise MaliciousRequestError(str(exc)) from None
        if len(ids) < self.committee.threshold or self.member_id not in ids:
            raise MaliciousRequestError(
                "the active set must hold at least threshold members, this one included"
            )
        if not self.min_summands <= mask.summands <= params.max_summands:
            raise MaliciousRequestError(
                f"an aggregate of {mask.summands} summands, outside "
                f"{self.min_summands}..{params.max_summands}"
            )
        digests = _chunk_digests(params, mask.value)
        request_digest = hashlib.sha256(
            _LABEL
            + b"/request"
            + struct.pack(">QQ", mask.length, mask.summands)
            + b"".join(struct.pack(">I", i) for i in ids)
            + b"".join(digests)
        ).digest()
        previous = self._requests.get(request_id)
        if previous is not None and previous != request_digest:
            raise MaliciousRequestError(
                "a second decryption request for another aggregate or active set"
            )
        for digest in digests:
            used = self._answered.get(digest)
            if used is not None and used != ids:
                raise MaliciousRequestError(
                    "a ciphertext this member already decrypted for another active set"
                )
        fresh = {d for d in digests if d not in self._answered}
        if len(self._answered) + len(fresh) > MAX_DECRYPTED_CIPHERTEXTS or (
            previous is None and len(self._requests) >= MAX_REQUESTS
        ):
            raise UsageError("this key share is exhausted: set up a new key")
        value = self._compute_share(mask.value, ids, digests)
        self._requests[request_id] = request_digest
        for digest in fresh:
            self._answered[digest] = ids
        return DecryptionShare(params, self.member_id, value)

    def _compute_share(
        self, masks: np.ndarray, ids: tuple[int, ...], digests: Sequence[bytes]
    ) -> np.ndarray:
        params, ring = self.params, self.params.ring
        assert self._key is not None
        key = self._key
        lam = lagrange_at_zero(ids, ids.index(self.member_id), params.moduli)
        lam_column = np.array(lam, dtype=_U64).reshape(ring.limbs, 1, 1)
        scaled = np.empty_like(key)
        scratch = np.empty_like(key)
        mul_shoup(key, lam_column, shoup_factor(lam_column, ring.q), ring.q, scaled, scratch)
        scaled_shoup = shoup_factor(scaled, ring.q)
        chunks = masks.shape[1]
        out = np.empty((ring.limbs, chunks, params.degree), dtype=_U64)
        set_bytes = b"".join(struct.pack(">I", i) for i in ids)
        smudging_bits = params.noise.smudging_bits
        block_scratch = np.empty((ring.limbs, _CHUNK_BLOCK, params.degree), dtype=_U64)
        for start in range(0, chunks, _CHUNK_BLOCK):
            p = min(_CHUNK_BLOCK, chunks - start)
            block = out[:, start : start + p]
            mul_shoup(
                masks[:, start : start + p],
                scaled,
                scaled_shoup,
                ring.q,
                block,
                block_scratch[:, :p],
            )
            ring.intt(block)
            for c in range(start, start + p):
                # Smudging: a PRF of (secret, ciphertext, active set), so an identical
                # request gets identical noise and averaging repeated answers gains nothing.
                seed = hmac.new(
                    self._smudge_key, _LABEL + b"/smudge" + set_bytes + digests[c], "sha256"
                ).digest()
                noise = Sampler(seed, _LABEL + b"/smudge").wide(
                    params.moduli, (params.degree,), smudging_bits
                )
                target = out[:, c : c + 1]
                ring.add(target, noise.reshape(ring.limbs, 1, -1), out=target)
        return out


def combine(
    committee: Committee,
    ciphertext: Ciphertext,
    shares: Sequence[DecryptionShare],
    active: Sequence[int],
) -> np.ndarray:
    """Decrypt ``ciphertext`` from the shares of exactly the active set ``active``.

    Returns the sum over ``Z_(2^plaintext_bits)`` (1-D, the ciphertext's length, dtype
    ``uint32`` up to 32 bits else ``uint64``). Raises ConfigurationError for an active set
    that is not ``>= threshold`` distinct members; DuplicateShareError for two shares of one
    member; InsufficientSharesError when a member of the set has no share;
    IncompatibleSharesError for a share of a non-member of the set, of other parameters or
    another chunk count; DecodeError when the result is not a valid decryption (a
    coefficient's offset beyond 3/8: a corrupted or mismatched share) -- never a wrong sum
    presented as right by accident.
    """
    params = ciphertext.params
    ids = committee.check_subset(active, "the active set")
    if len(ids) < committee.threshold:
        raise ConfigurationError("the active set is smaller than the threshold")
    by_member: dict[int, DecryptionShare] = {}
    for share in shares:
        if share.member in by_member:
            raise DuplicateShareError(f"two decryption shares of member {share.member}")
        by_member[share.member] = share
    if set(by_member) - set(ids):
        raise IncompatibleSharesError("a decryption share of a member outside the active set")
    if set(ids) - set(by_member):
        raise InsufficientSharesError(
            f"{len(set(ids) - set(by_member))} member(s) of the active set sent no share"
        )
    ring = params.ring
    total = np.zeros_like(ciphertext.mask)
    for member in ids:
        share = by_member[member]
        if share.params != params or share.value.shape != total.shape:
            raise IncompatibleSharesError(f"the share of member {member} does not match")
        ring.add(total, share.value, out=total)
    bits, body_bits = params.plaintext_bits, params.body_bits
    integer, fraction = ring.scale_to_bits(total, bits)
    shift = body_bits - bits
    body = ciphertext.body
    np.add(integer, body >> _U64(shift), out=integer)
    fraction += (body & _U64((1 << shift) - 1)).astype(np.float64) / float(1 << shift)
    rounded = np.floor(fraction + 0.5)
    offset = np.abs(fraction - rounded)
    if offset.size and float(offset.max()) > _OFFSET_LIMIT:
        raise DecodeError(
            "decryption shares do not combine to a valid decryption (a corrupted share, or "
            "one of another ciphertext, key or active set)"
        )
    np.add(integer, rounded.astype(_U64), out=integer)
    if bits < 64:
        np.bitwise_and(integer, _U64((1 << bits) - 1), out=integer)
    return integer.reshape(-1)[: ciphertext.length].astype(dtype_for_bits(bits))
