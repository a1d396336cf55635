"""Threshold CKKS decryption: decryption shares, their combination from any t of them, and
the verified combination that finds and blames a faulty share (step 4 of
:mod:`secagg.he.threshold_ckks`; the member that computes shares is
:mod:`secagg.he.threshold_ckks.member`).

Theory of operation. Member ``j`` (position ``x_j``) answers ``d_j = Delta c1 sk_j + e_j``
whatever set of members answers. For any ``t`` of them, ``S``, the integers
``lambda'_j = Delta L_j^S(0)`` (:mod:`~secagg.he.threshold_ckks.lagrange`) give
``sum_(j in S) lambda'_j d_j = Delta^2 c1 s + sum lambda'_j e_j``; the body carries
``Delta^2 c0`` compressed, so the two add up to ``Delta^2 e_ct + m Q / 2^bits`` plus small
noise and :func:`combine` rounds the message out of the top bits.

Honest shares lie (up to their noise) on one polynomial of degree ``t - 1`` in ``x``:
``d_j = G(x_j) + e_j`` with ``G = Delta c1 F``. So a share outside ``S`` can be checked
against ``S`` without decrypting anything: the residual
``Delta d_j - sum_(k in S) Delta L_k^S(x_j) d_k`` is an integer combination of smudging
noises only, at most ``(Delta + sum |Delta L_k^S(x_j)|) 2^b`` in absolute value, while a
share moved off the polynomial leaves a residual that is (for any corruption that is not
crafted for this very check) uniform modulo ``Q``. :func:`combine_verified` uses this to
decrypt from ``t`` shares that ``t + 1`` shares confirm, and to name every received share
that does not fit (:class:`VerifiedDecryption`). It looks at ``t``-subsets in order until
one decrypts (every offset within 3/8) and is confirmed by at least one further share;
when no ``t + 1`` shares agree (only ``t`` honest shares arrived) it accepts a decryption
only if every subset that decrypts gives the same sum. A corruption crafted to pass both
checks can still change the sum (a malicious member can corrupt, not read: see the trust
model of :mod:`secagg.he.threshold_ckks`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from secagg.errors import (
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
)
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.rlwe.wire import pack_residues, unpack_residues
from secagg.he.threshold_ckks.ciphertext import Ciphertext
from secagg.he.threshold_ckks.lagrange import integer_lagrange
from secagg.he.threshold_ckks.params import (
    MAX_MEMBER_ID,
    VERSION,
    Committee,
    ThresholdCkksParameters,
    check_int,
    record_size,
)
from secagg.ring import dtype_for_bits

__all__ = [
    "MAX_CANDIDATE_SETS",
    "DecryptionShare",
    "VerifiedDecryption",
    "combine",
    "combine_verified",
]

_U64 = np.uint64
_OFFSET_LIMIT = 3 / 8
"""Honest decryptions stay within 3/8 of an integer (NoiseBudget.max_offset)."""
MAX_CANDIDATE_SETS = 512
"""The most t-subsets :func:`combine_verified` tries before it gives up."""
_CHECK_LIMIT = 1 / 8
"""A residual bound above Q/8 would make the consistency check meaningless: not used."""


class DecryptionShare:
    """Member ``member``'s ``Delta c1 sk_j + e_j`` (coefficient form, ``(limbs, chunks,
    N)``). Meant for the server; computationally hides the key share."""

    __slots__ = ("member", "params", "value")

    def __init__(self, params: ThresholdCkksParameters, member: int, value: np.ndarray) -> None:
        self.params = params
        self.member = check_int("member", member, 1, MAX_MEMBER_ID)
        self.value = value

    def __repr__(self) -> str:
        return f"DecryptionShare(member={self.member}, chunks={self.value.shape[1]})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, length: int, member: int) -> int:
        """Exact length of :meth:`to_bytes` for a vector of ``length`` values."""
        return record_size({"v": VERSION, "i": member}, {"d": params.mask_bytes(length)})

    def to_bytes(self) -> bytes:
        return encode_record(
            {"v": VERSION, "i": self.member, "d": pack_residues(self.params.ring, self.value)}
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
        obj = decode_record(data, {"v", "i", "d"}, what, party, version=VERSION)
        member = int_field(obj, "i", what, party)
        if not 1 <= member <= MAX_MEMBER_ID:
            raise DecodeError(f"{what}: member id out of range", party=party)
        value = unpack_residues(
            params.ring, bytes_field(obj, "d", what, party), params.chunks(length), what, party
        )
        return cls(params, member, value)


@dataclass(frozen=True)
class VerifiedDecryption:
    """What :func:`combine_verified` found.

    ``values`` is the sum over ``Z_(2^plaintext_bits)``; ``reference`` the ``t`` members
    whose shares it was decrypted from; ``confirmed`` the other members whose shares fit the
    same polynomial; ``faulty`` every member whose share does not (each a liar or a broken
    peer: blame them). Members in none of the three sent no share.
    """

    values: np.ndarray
    reference: tuple[int, ...]
    confirmed: tuple[int, ...]
    faulty: tuple[int, ...]

    def __repr__(self) -> str:
        return (
            f"VerifiedDecryption(length={self.values.shape[0]}, reference={list(self.reference)}, "
            f"confirmed={list(self.confirmed)}, faulty={list(self.faulty)})"
        )


def _shares_by_member(
    committee: Committee, ciphertext: Ciphertext, shares: Sequence[DecryptionShare]
) -> dict[int, DecryptionShare]:
    params = ciphertext.params
    by_member: dict[int, DecryptionShare] = {}
    for share in shares:
        if share.member in by_member:
            raise DuplicateShareError(f"two decryption shares of member {share.member}")
        if share.member not in committee.members:
            raise IncompatibleSharesError("a decryption share of a non-member")
        if share.params != params or share.value.shape != ciphertext.mask.shape:
            raise IncompatibleSharesError(f"the share of member {share.member} does not match")
        by_member[share.member] = share
    if len(by_member) < committee.threshold:
        raise InsufficientSharesError(
            f"{len(by_member)} decryption share(s), {committee.threshold} needed"
        )
    return by_member


def _scaled_sum(
    params: ThresholdCkksParameters, arrays: Sequence[np.ndarray], factors: Sequence[int]
) -> np.ndarray:
    """``sum factors[i] arrays[i]`` mod Q (integer factors of any size and sign)."""
    ring = params.ring
    total = np.zeros_like(arrays[0])
    term = np.empty_like(arrays[0])
    for array, factor in zip(arrays, factors, strict=True):
        column = np.array([factor % q for q in params.moduli], dtype=_U64).reshape(ring.limbs, 1, 1)
        np.multiply(array, column, out=term)
        np.remainder(term, ring.q, out=term)
        ring.add(total, term, out=total)
    return total


def _decode(
    committee: Committee,
    ciphertext: Ciphertext,
    by_member: Mapping[int, DecryptionShare],
    members: Sequence[int],
) -> np.ndarray | None:
    """The plaintext from the shares of exactly ``members`` (t of them), or None when some
    coefficient's offset exceeds 3/8 (not a valid decryption). The first chunk is decoded
    alone first, so that a bad set is usually refused after one chunk's work."""
    params = ciphertext.params
    factors = integer_lagrange([committee.position(m) for m in members], 0, params.noise.delta)
    chunks = ciphertext.mask.shape[1]
    pieces: list[np.ndarray] = []
    for part in (slice(0, 1), slice(1, chunks)) if chunks > 1 else (slice(0, 1),):
        arrays = [by_member[m].value[:, part] for m in members]
        total = _scaled_sum(params, arrays, factors)
        decoded = _round_message(params, total, ciphertext.body[part])
        if decoded is None:
            return None
        pieces.append(decoded)
    values = np.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0]
    return values.reshape(-1)[: ciphertext.length].astype(dtype_for_bits(params.plaintext_bits))


def _round_message(
    params: ThresholdCkksParameters, total: np.ndarray, body: np.ndarray
) -> np.ndarray | None:
    bits, body_bits = params.plaintext_bits, params.body_bits
    integer, fraction = params.ring.scale_to_bits(total, bits)
    shift = body_bits - bits
    np.add(integer, body >> _U64(shift), out=integer)
    fraction += (body & _U64((1 << shift) - 1)).astype(np.float64) / float(1 << shift)
    rounded = np.floor(fraction + 0.5)
    offset = np.abs(fraction - rounded)
    if offset.size and float(offset.max()) > _OFFSET_LIMIT:
        return None
    np.add(integer, rounded.astype(_U64), out=integer)
    if bits < 64:
        np.bitwise_and(integer, _U64((1 << bits) - 1), out=integer)
    return integer


def _fits(
    committee: Committee,
    params: ThresholdCkksParameters,
    by_member: Mapping[int, DecryptionShare],
    reference: Sequence[int],
    member: int,
) -> bool | None:
    """Whether ``member``'s share lies on the polynomial through the ``reference`` shares
    (module docstring); None when the residual bound is too wide to tell (never for
    parameters the noise budget accepts in practice)."""
    base = params.noise.delta
    points = [committee.position(m) for m in reference]
    factors = integer_lagrange(points, committee.position(member), base)
    limit = (base + sum(abs(f) for f in factors)) * 2.0**params.noise.smudging_bits
    relative = limit / params.rlwe.modulus
    if relative > _CHECK_LIMIT:
        return None
    arrays = [by_member[member].value] + [by_member[m].value for m in reference]
    residual = _scaled_sum(params, arrays, [base] + [-f for f in factors])
    # 2^64 X / Q mod 2^64 is within 2^64 * limit / Q of 0 exactly when |X| <= limit.
    integer, fraction = params.ring.scale_to_bits(residual, 64)
    np.add(integer, np.floor(fraction).astype(_U64), out=integer)
    slack = relative * 2.0**64 + 2.0**12  # float error of the fraction is far below 2^12
    return bool(np.all((integer.astype(np.float64) <= slack) | (integer >= _U64(2**64 - slack))))


def combine(
    committee: Committee, ciphertext: Ciphertext, shares: Sequence[DecryptionShare]
) -> np.ndarray:
    """Decrypt ``ciphertext`` from the shares of the ``t`` lowest member ids among
    ``shares`` (any ``t`` members' shares decrypt; the others are not looked at: use
    :func:`combine_verified` to check them).

    Returns the sum over ``Z_(2^plaintext_bits)`` (1-D, the ciphertext's length, dtype
    ``uint32`` up to 32 bits else ``uint64``). Raises DuplicateShareError for two shares of
    one member; InsufficientSharesError for fewer than ``t`` members;
    IncompatibleSharesError for a share of a non-member, of other parameters or another
    chunk count; DecodeError when the result is not a valid decryption (a coefficient's
    offset beyond 3/8: a corrupted or mismatched share). The offset check catches a
    corruption that touches many coefficients (garbage, a share of another ciphertext or
    key) except with probability about ``(3/4)^coefficients``; one confined to a few
    coefficients, or crafted, is only caught by a further share (:func:`combine_verified`).
    """
    by_member = _shares_by_member(committee, ciphertext, shares)
    members = sorted(by_member)[: committee.threshold]
    values = _decode(committee, ciphertext, by_member, members)
    if values is None:
        raise DecodeError(
            "decryption shares do not combine to a valid decryption (a corrupted share, or "
            "one of another ciphertext or key)"
        )
    return values


def combine_verified(
    committee: Committee, ciphertext: Ciphertext, shares: Sequence[DecryptionShare]
) -> VerifiedDecryption:
    """Decrypt ``ciphertext`` from ``t`` shares that a further share confirms, and check
    every other share against them (module docstring).

    Returns a :class:`VerifiedDecryption` naming the faulty shares. With exactly ``t``
    shares nothing can be cross-checked: the result is that of :func:`combine`. Raises as
    :func:`combine` for malformed input; DecodeError when no ``t`` shares decrypt, or when
    no ``t + 1`` agree and two subsets that decrypt give different sums (a faulty member
    cannot be told from an honest one: more shares are needed).
    """
    by_member = _shares_by_member(committee, ciphertext, shares)
    params, t = ciphertext.params, committee.threshold
    answered = sorted(by_member)
    valid: list[tuple[tuple[int, ...], np.ndarray]] = []
    for reference in itertools.islice(itertools.combinations(answered, t), MAX_CANDIDATE_SETS):
        values = _decode(committee, ciphertext, by_member, reference)
        if values is None:
            continue
        others = [m for m in answered if m not in reference]
        verdicts = {m: _fits(committee, params, by_member, reference, m) for m in others}
        confirmed = tuple(m for m, fits in verdicts.items() if fits)
        if confirmed or not others:
            faulty = tuple(m for m, fits in verdicts.items() if fits is False)
            return VerifiedDecryption(values, tuple(reference), confirmed, faulty)
        valid.append((tuple(reference), values))
    if not valid:
        raise DecodeError("no t decryption shares combine to a valid decryption")
    first = valid[0][1]
    if any(not np.array_equal(values, first) for _, values in valid[1:]):
        raise DecodeError("decryption shares disagree and no t + 1 of them agree")
    good = set().union(*(set(reference) for reference, _ in valid))
    faulty = tuple(m for m in answered if m not in good)
    return VerifiedDecryption(first, valid[0][0], (), faulty)
