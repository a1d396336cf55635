"""Threshold CKKS parameters: the ring, the noise budget, the committee, the float codec.

See :mod:`secagg.he.threshold_ckks` for the scheme and its noise derivation; this module
computes that derivation (:class:`NoiseBudget`) and refuses parameters where it fails.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, DecodeError
from secagg.he._records import encode_record
from secagg.he.rlwe.noise import noise_tail_bound, noise_variance
from secagg.he.rlwe.params import ERROR_ETA, RlweParameters
from secagg.he.rlwe.primes import ntt_primes
from secagg.he.rlwe.ring import RnsRing
from secagg.he.rlwe.sampling import MAX_WIDE_BITS
from secagg.he.rlwe.wire import residues_size
from secagg.he.threshold_ckks.lagrange import delta, lagrange_bounds
from secagg.ring import packed_size

__all__ = [
    "CHUNK_BLOCK",
    "DEFAULT_DEGREE",
    "LABEL",
    "MAX_COMMITTEE",
    "MAX_LENGTH",
    "MAX_MEMBER_ID",
    "STATISTICAL_BITS",
    "TAIL_BITS",
    "VERSION",
    "Committee",
    "NoiseBudget",
    "ThresholdCkksParameters",
    "check_int",
    "float_codec",
    "is_int",
    "record_size",
]

STATISTICAL_BITS = 40
"""Smudging: statistical distance at most 2^-40 per coefficient."""
TAIL_BITS = 64
"""The fresh-noise bound fails with probability at most 2^-64 per coefficient."""
DEFAULT_DEGREE = 8192
MAX_COMMITTEE = 256
MAX_MEMBER_ID = 2**31 - 1
"""Member ids are ints in 1..2^31 - 1 (the Shamir x coordinates are positions 1..n)."""
MAX_LENGTH = 2**31
VERSION = 2
"""Version of every record of the scheme (2: shares at positions, independent of the
active set)."""
LABEL = b"secagg/threshold-ckks/v2"
"""Domain-separation prefix of every derived stream and digest."""
CHUNK_BLOCK = 8
"""Ciphertext chunks handled at once by encryption and decryption shares (bounds scratch)."""


def record_size(fields: Mapping[str, object], blobs: Mapping[str, int]) -> int:
    """Exact byte length of the record of ``fields`` plus, for each name in ``blobs``, a
    bytes field of that many bytes (without building the payloads)."""
    empty = {**fields, **{name: b"" for name in blobs}}
    size = len(encode_record(empty))
    for length in blobs.values():
        header = 2 if length < 1 << 8 else 3 if length < 1 << 16 else 5  # msgpack bin 8/16/32
        size += length + header - 2
    return size


def is_int(value: object) -> bool:
    """An int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``low..high``, else ConfigurationError."""
    if not is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be an int in {low}..{high}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class NoiseBudget:
    """Every figure of the noise derivation (see :mod:`secagg.he.threshold_ckks`).

    ``fresh_bound`` bounds the noise of ``max_summands`` fresh ciphertexts except with
    probability ``2^-tail_bits`` per coefficient; ``delta`` is ``committee_size!`` and
    ``scale = delta^2`` the factor a combination carries (the body encodes
    ``scale * c0``); ``amplification`` and ``simulation`` are the Lagrange bounds of
    :func:`~secagg.he.threshold_ckks.lagrange.lagrange_bounds`; smudging is uniform in
    ``[-2^smudging_bits, 2^smudging_bits)``; ``statistical_distance`` is per coefficient,
    over every honest share of it; ``total_bound`` is ``scale * fresh_bound +
    amplification * 2^smudging_bits``; ``max_offset`` is the worst decoding offset (at most
    3/8); ``required_log_modulus`` is ``log2(4 t E)``.
    """

    fresh_variance: float
    fresh_bound: float
    tail_bits: int
    delta: int
    scale: int
    amplification: int
    simulation: int
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
    limbs: int = 4
    plaintext_bits: int = 32
    committee_size: int = 5
    max_summands: int = 1000

    def __post_init__(self) -> None:
        check_int("plaintext_bits", self.plaintext_bits, 1, 60)
        check_int("committee_size", self.committee_size, 1, MAX_COMMITTEE)
        check_int("max_summands", self.max_summands, 1, 1 << 40)
        check_int("limbs", self.limbs, 1, 64)
        if not is_int(self.degree) or self.degree < 4096:
            raise ConfigurationError("degree must be 4096, 8192, 16384 or 32768")
        self.rlwe  # noqa: B018 - validates the ring against the HE standard
        try:
            budget = self.noise
        except OverflowError:  # committee_size! squared exceeds a float: far beyond any Q
            raise ConfigurationError(
                "the noise bound overflows: lower committee_size or max_summands"
            ) from None
        if budget.smudging_bits > MAX_WIDE_BITS:
            raise ConfigurationError(
                f"smudging needs {budget.smudging_bits} bits, more than {MAX_WIDE_BITS}: "
                "lower committee_size or max_summands"
            )
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
        try:
            widest = cls(degree, top, plaintext_bits, committee_size, max_summands)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"no modulus within the HE standard at N = {degree} fits: {exc}"
            ) from None
        need = widest.noise.required_log_modulus  # the same for every limb count
        for limbs in range(1, top):
            if sum(math.log2(q) for q in ntt_primes(limbs)) >= need:
                return cls(degree, limbs, plaintext_bits, committee_size, max_summands)
        return widest

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
        """The noise derivation (:mod:`secagg.he.threshold_ckks`) of these parameters."""
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
        lagrange = lagrange_bounds(self.committee_size)
        size = self.committee_size
        # One honest share carries mu * e_ct with |mu| <= simulation (module docstring);
        # up to committee_size honest shares of a coefficient each hide theirs.
        smudging = math.ceil(math.log2(size * lagrange.simulation * bound)) + STATISTICAL_BITS
        base = delta(size)
        scale = base * base
        total = scale * bound + lagrange.amplification * 2.0**smudging
        body_bits = self.plaintext_bits + math.ceil(math.log2(self.max_summands)) + 3
        t = 2.0**self.plaintext_bits
        offset = t * total / self.rlwe.modulus + self.max_summands * t / 2.0**body_bits
        return NoiseBudget(
            fresh_variance=variance,
            fresh_bound=bound,
            tail_bits=TAIL_BITS,
            delta=base,
            scale=scale,
            amplification=lagrange.amplification,
            simulation=lagrange.simulation,
            smudging_bits=smudging,
            statistical_distance=size * lagrange.simulation * bound / 2.0 ** (smudging + 1)
            + 2.0**-TAIL_BITS,
            total_bound=total,
            body_bits=body_bits,
            max_offset=offset,
            required_log_modulus=math.log2(4 * t * total),
        )

    @property
    def body_bits(self) -> int:
        """Bits of one compressed body coefficient (``k`` of :mod:`secagg.he.threshold_ckks`)."""
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
        if not all(is_int(v) for v in data.values()):
            raise DecodeError("malformed threshold CKKS parameters", party=party)
        try:
            return cls(data["n"], data["l"], data["b"], data["m"], data["s"])
        except ConfigurationError as exc:
            raise DecodeError(f"refused threshold CKKS parameters: {exc}", party=party) from None

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding: binds derived randomness to the parameters."""
        return hashlib.sha256(LABEL + encode_record(self.to_dict())).digest()


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
    """The decryption committee: member ids and the threshold. A member's Shamir x
    coordinate is its :meth:`position` (1..n in sorted id order), so that the scaled
    Lagrange coefficients of :mod:`~secagg.he.threshold_ckks.lagrange` are small integers.

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
            check_int("a member id", member, 1, MAX_MEMBER_ID)
        if len(set(members)) != len(members):
            raise ConfigurationError("member ids must be distinct")
        object.__setattr__(self, "members", tuple(sorted(members)))
        check_int("threshold", self.threshold, 1, len(members))

    def check_fits(self, params: ThresholdCkksParameters) -> None:
        """ConfigurationError when the committee exceeds ``params.committee_size``."""
        if len(self.members) > params.committee_size:
            raise ConfigurationError(
                f"{len(self.members)} members exceed committee_size = {params.committee_size}"
            )

    def position(self, member: int) -> int:
        """Member ``member``'s Shamir x coordinate: 1 + its index in sorted id order
        (ConfigurationError for a non-member)."""
        try:
            return self.members.index(member) + 1
        except ValueError:
            raise ConfigurationError("not a committee member") from None

    def check_subset(self, ids: Iterable[int], what: str) -> tuple[int, ...]:
        """``ids`` as a sorted tuple if they are distinct members, else ConfigurationError."""
        out = tuple(ids)
        if any(not is_int(i) for i in out) or len(set(out)) != len(out):
            raise ConfigurationError(f"{what} must be distinct member ids")
        if not set(out) <= set(self.members):
            raise ConfigurationError(f"{what} names a non-member")
        return tuple(sorted(out))
