"""Threshold Paillier (Shoup 2000 / Damgard-Jurik 2001, s = 1) with a trusted dealer.

Who must be trusted: the dealer (:func:`deal_threshold_keys`) computes the whole decryption
exponent ``d`` before sharing it, so whoever runs it can decrypt every ciphertext under the
key until it forgets ``d``. Never run it on the aggregator (which would then hold the key it
must not have); run it in an offline key ceremony, or on one committee member trusted not to
collude with the server, and hand each share over a private channel. This process keeps
track of the :class:`KeyShare` objects it holds (:func:`shares_held`), so that an aggregator
can refuse to run next to them (:class:`secagg.protocols.threshold_he.ThresholdHEServer`).

Theory of operation
-------------------
The dealer picks safe primes p = 2p' + 1, q = 2q' + 1, n = pq, m = p'q', and the decryption
exponent d with d = 0 (mod m) and d = 1 (mod n). It shares d with a random polynomial f of
degree t - 1 over Z_(nm): holder i (1 <= i <= l) gets s_i = f(i). It publishes n, a random
square v of Z*_(n^2) and the verification keys v_i = v^(Delta s_i), Delta = l!.

Encryption is plain Paillier with g = n + 1 (:mod:`secagg.he.paillier`), so packed vectors,
randomness pools and phe interoperability carry over unchanged.

Holder i's partial decryption of c is c_i = c^(2 Delta s_i). Any t valid partials from a set S
combine: c' = prod c_i^(2 lambda_i) = c^(4 Delta^2 d) = 1 + 4 Delta^2 x n (mod n^2), with the
integer Lagrange coefficients lambda_i = Delta prod_(j in S, j != i) j / (j - i), so
x = L(c') (4 Delta^2)^-1 mod n. Fewer than t partials carry no information about d mod m.

Proof of correct decryption (non-interactive, Fiat-Shamir with SHA-256 over the statement):
one proof covers a whole vector of K ciphertexts. Batch weights rho_j (128 bits each) are
hashed from the full statement (key, context, holder, all c_j and all c_(i,j)); with
C = prod c_j^rho_j and C_i = prod c_(i,j)^rho_j the holder proves
log_(C^4)(C_i^2) = log_v(v_i) (= Delta s_i) with Shoup's protocol: r random, a = C^(4r),
b = v^r, e = H(statement, C, C_i, a, b), z = r + e Delta s_i; the verifier recomputes
a = C^(4z) C_i^(-2e), b = v^z v_i^(-e) and checks e. A single wrong c_(i,j) (beyond the sign
that squaring removes) makes the batched relation fail except with probability about
2^-128, because the squares of Z*_(n^2) have no small prime order factor.

Holders are numbered 1..l; a protocol maps its committee members onto these indices.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gmpy2
import numpy as np

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    DuplicateShareError,
    IncompatibleSharesError,
    InsufficientSharesError,
    UsageError,
)
from secagg.he import bigint as big
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.bigint import Mpz
from secagg.he.paillier import DEFAULT_KEY_BITS, MIN_KEY_BITS, EncryptedVector, PaillierPublicKey
from secagg.he.slots import unpack
from secagg.secret import SecretHolder

__all__ = [
    "MAX_HOLDERS",
    "CombinedDecryption",
    "KeyShare",
    "PartialDecryption",
    "ThresholdPublicKey",
    "combine_partials",
    "deal_threshold_keys",
    "decrypt_vector",
    "shares_held",
    "verify_partial",
]

MAX_HOLDERS = 256
"""Delta = l! enters every exponent; beyond a few hundred holders it dominates the cost."""

CHALLENGE_BITS = 256
BATCH_WEIGHT_BITS = 128
STATISTICAL_BITS = 128
_VERSION = 1
_LABEL = b"secagg/threshold-paillier/v1"


class ThresholdPublicKey:
    """The public part of a t-of-l threshold Paillier key: n, v and the verification keys.

    ``paillier`` is the ordinary :class:`PaillierPublicKey` to encrypt under. Raises
    ConfigurationError for inconsistent parameters.
    """

    __slots__ = (
        "_digest",
        "delta",
        "holders",
        "paillier",
        "threshold",
        "verification_base",
        "verification_keys",
    )

    def __init__(
        self,
        paillier: PaillierPublicKey,
        *,
        threshold: int,
        holders: int,
        verification_base: int,
        verification_keys: Sequence[int],
    ) -> None:
        if not 1 <= holders <= MAX_HOLDERS:
            raise ConfigurationError(f"holders must be in [1, {MAX_HOLDERS}]")
        if not 1 <= threshold <= holders:
            raise ConfigurationError("threshold must be in [1, holders]")
        if len(verification_keys) != holders:
            raise ConfigurationError("one verification key per holder is required")
        self.paillier = paillier
        self.threshold = threshold
        self.holders = holders
        self.delta: int = math.factorial(holders)
        self.verification_base: Mpz = gmpy2.mpz(verification_base)
        self.verification_keys: tuple[Mpz, ...] = tuple(gmpy2.mpz(v) for v in verification_keys)
        paillier.check_ciphertexts(
            [self.verification_base, *self.verification_keys], what="verification key"
        )
        self._digest = hashlib.sha256(self.to_bytes()).digest()

    @property
    def fingerprint(self) -> str:
        return self._digest.hex()[:16]

    @property
    def digest(self) -> bytes:
        """SHA-256 of :meth:`to_bytes`: binds proofs to this exact key."""
        return self._digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ThresholdPublicKey) and self._digest == other._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return (
            f"ThresholdPublicKey(bits={self.paillier.bits}, threshold={self.threshold}, "
            f"holders={self.holders}, fingerprint={self.fingerprint})"
        )

    def verification_key(self, index: int) -> Mpz:
        if not 1 <= index <= self.holders:
            raise ConfigurationError(f"no holder {index}")
        return self.verification_keys[index - 1]

    def to_bytes(self) -> bytes:
        """Versioned msgpack of n, t, l, v and the verification keys."""
        width = self.paillier.ciphertext_bytes
        return encode_record(
            {
                "v": _VERSION,
                "n": self.paillier.to_bytes(),
                "t": self.threshold,
                "l": self.holders,
                "vb": big.int_to_bytes(self.verification_base, width),
                "vk": big.join_fixed(self.verification_keys, width),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, party: int | None = None) -> ThresholdPublicKey:
        """Inverse of :meth:`to_bytes`; DecodeError on anything malformed."""
        what = "threshold public key"
        obj = decode_record(data, {"v", "n", "t", "l", "vb", "vk"}, what, party, version=_VERSION)
        paillier = PaillierPublicKey.from_bytes(bytes_field(obj, "n", what, party), party=party)
        holders = int_field(obj, "l", what, party)
        threshold = int_field(obj, "t", what, party)
        if not 1 <= holders <= MAX_HOLDERS:
            raise DecodeError(f"{what}: holder count out of range", party=party)
        width = paillier.ciphertext_bytes
        base = big.split_fixed(bytes_field(obj, "vb", what, party), width, 1, what, party)[0]
        keys = big.split_fixed(bytes_field(obj, "vk", what, party), width, holders, what, party)
        try:
            return cls(
                paillier,
                threshold=threshold,
                holders=holders,
                verification_base=base,
                verification_keys=keys,
            )
        except ConfigurationError as exc:
            raise DecodeError(f"{what}: {exc}", party=party) from None


@dataclass(frozen=True, repr=False)
class PartialDecryption:
    """Holder ``index``'s partial decryptions of K ciphertexts and one proof for all of them.

    ``challenge``/``response`` are the Fiat-Shamir proof (e, z). Public: repr shows sizes.
    """

    index: int
    values: tuple[Mpz, ...]
    challenge: int
    response: int

    def __repr__(self) -> str:
        return f"PartialDecryption(index={self.index}, ciphertexts={len(self.values)})"

    def to_bytes(self, public_key: ThresholdPublicKey) -> bytes:
        width = public_key.paillier.ciphertext_bytes
        return encode_record(
            {
                "v": _VERSION,
                "i": self.index,
                "c": big.join_fixed(self.values, width),
                "e": big.int_to_bytes(self.challenge, CHALLENGE_BITS // 8),
                "z": big.int_to_bytes(self.response, _response_bytes(public_key)),
            }
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        public_key: ThresholdPublicKey,
        count: int,
        *,
        party: int | None = None,
    ) -> PartialDecryption:
        """Decode a partial decryption of ``count`` ciphertexts sent by ``party``.

        Checks shape, the holder index and that every value is a unit mod n^2; the proof is
        checked by :func:`verify_partial`. DecodeError on anything malformed.
        """
        what = "partial decryption"
        obj = decode_record(data, {"v", "i", "c", "e", "z"}, what, party, version=_VERSION)
        index = int_field(obj, "i", what, party)
        if not 1 <= index <= public_key.holders:
            raise DecodeError(f"{what}: unknown holder {index}", party=party)
        width = public_key.paillier.ciphertext_bytes
        values = big.split_fixed(bytes_field(obj, "c", what, party), width, count, what, party)
        public_key.paillier.check_ciphertexts(values, party=party, what="partial decryption")
        e_bytes = bytes_field(obj, "e", what, party)
        z_bytes = bytes_field(obj, "z", what, party)
        if len(e_bytes) != CHALLENGE_BITS // 8 or len(z_bytes) != _response_bytes(public_key):
            raise DecodeError(f"{what}: malformed proof", party=party)
        return cls(
            index,
            tuple(values),
            int.from_bytes(e_bytes, "big"),
            int.from_bytes(z_bytes, "big"),
        )


def _nonce_bits(public_key: ThresholdPublicKey) -> int:
    # z = r + e Delta s_i with s_i < n m < n^2: r exceeds e Delta s_i by STATISTICAL_BITS.
    return (
        int(public_key.paillier.nsquare.bit_length())
        + public_key.delta.bit_length()
        + CHALLENGE_BITS
        + STATISTICAL_BITS
    )


def _response_bytes(public_key: ThresholdPublicKey) -> int:
    return (_nonce_bits(public_key) + 1 + 7) // 8


class KeyShare(
    SecretHolder, export="KeyShare.to_bytes() / KeyShare.from_bytes() over a private channel"
):
    """Holder ``index``'s secret share s_i. Never printed; serialize only to hand it over.

    Raises ConfigurationError for an index outside 1..l.
    """

    __slots__ = ("__weakref__", "_secret", "index", "public_key")

    def __init__(self, public_key: ThresholdPublicKey, index: int, secret: int) -> None:
        if not 1 <= index <= public_key.holders:
            raise ConfigurationError(f"share index must be in [1, {public_key.holders}]")
        self.public_key = public_key
        self.index = index
        self._secret: Mpz = gmpy2.mpz(secret)
        _HELD.add(self)

    def __repr__(self) -> str:
        return f"KeyShare(index={self.index}, key={self.public_key.fingerprint})"

    def to_bytes(self) -> bytes:
        """The index and the SECRET share (for the dealer's private channel only)."""
        width = (int(self.public_key.paillier.nsquare.bit_length()) + 7) // 8
        return encode_record(
            {"v": _VERSION, "i": self.index, "s": big.int_to_bytes(self._secret, width)}
        )

    @classmethod
    def from_bytes(cls, data: bytes, public_key: ThresholdPublicKey) -> KeyShare:
        """Inverse of :meth:`to_bytes`. DecodeError when malformed (a secret that is not
        exactly as wide as :meth:`to_bytes` writes it, or not below n^2), or when the share
        does not match its published verification key."""
        what = "key share"
        obj = decode_record(data, {"v", "i", "s"}, what, None, version=_VERSION)
        index = int_field(obj, "i", what, None)
        nsquare = public_key.paillier.nsquare
        raw = bytes_field(obj, "s", what, None)
        if len(raw) != (int(nsquare.bit_length()) + 7) // 8:
            raise DecodeError(f"{what}: the secret has the wrong width")
        secret = int.from_bytes(raw, "big")
        if secret >= nsquare:
            raise DecodeError(f"{what}: the secret is out of range")
        try:
            share = cls(public_key, index, secret)
        except ConfigurationError as exc:
            raise DecodeError(f"{what}: {exc}") from None
        expected = gmpy2.powmod(
            public_key.verification_base,
            public_key.delta * share._secret,
            public_key.paillier.nsquare,
        )
        if expected != public_key.verification_key(index):
            raise DecodeError(f"{what} does not match verification key {index}")
        return share

    def partial_decrypt(
        self, ciphertexts: Sequence[Mpz], *, context: bytes = b"", workers: int = 1
    ) -> PartialDecryption:
        """c_j^(2 Delta s_i) for every ciphertext, with one proof bound to ``context``.

        ``context`` (e.g. a session id and round) must be the same at verification.
        ``workers`` threads share the exponentiations (gmpy2 releases the GIL). Raises
        DecodeError for a ciphertext that is not a unit mod n^2.
        """
        public = self.public_key
        nsquare = public.paillier.nsquare
        public.paillier.check_ciphertexts(ciphertexts)
        exponent = 2 * public.delta * self._secret
        values = tuple(
            big.parallel_map(lambda c: gmpy2.powmod(c, exponent, nsquare), ciphertexts, workers)
        )
        statement = _statement_digest(public, self.index, ciphertexts, values, context)
        big_c, big_ci = _batched(public, statement, ciphertexts, values)
        nonce = big.random_bits(_nonce_bits(public))
        a = gmpy2.powmod(big_c, 4 * nonce, nsquare)
        b = gmpy2.powmod(public.verification_base, nonce, nsquare)
        challenge = _challenge(public, statement, big_c, big_ci, a, b)
        response = nonce + challenge * public.delta * self._secret
        return PartialDecryption(self.index, values, challenge, int(response))


_HELD: weakref.WeakSet[KeyShare] = weakref.WeakSet()
"""Every KeyShare this process still references (an entry goes when its share is freed)."""


def shares_held(public_key: ThresholdPublicKey) -> int:
    """How many :class:`KeyShare` objects of ``public_key`` this process holds right now
    (those still referenced: a share handed over and dropped no longer counts)."""
    return sum(1 for share in list(_HELD) if share.public_key == public_key)


def _statement_digest(
    public: ThresholdPublicKey,
    index: int,
    ciphertexts: Sequence[Mpz],
    values: Sequence[Mpz],
    context: bytes,
) -> bytes:
    width = public.paillier.ciphertext_bytes
    h = hashlib.sha256()
    for part in (
        _LABEL,
        b"statement",
        len(context).to_bytes(8, "big"),
        context,
        public.digest,
        index.to_bytes(4, "big"),
        len(ciphertexts).to_bytes(8, "big"),
    ):
        h.update(part)
    h.update(big.join_fixed(ciphertexts, width))
    h.update(big.join_fixed(values, width))
    return h.digest()


def _batched(
    public: ThresholdPublicKey,
    statement: bytes,
    ciphertexts: Sequence[Mpz],
    values: Sequence[Mpz],
) -> tuple[Mpz, Mpz]:
    """(prod c_j^rho_j, prod c_(i,j)^rho_j) with rho_j hashed from the statement."""
    nsquare = public.paillier.nsquare
    if len(ciphertexts) == 1:  # no batching needed: the statement is the single pair
        return ciphertexts[0], values[0]
    weights = [
        int.from_bytes(
            hashlib.sha256(_LABEL + b"batch" + statement + j.to_bytes(8, "big")).digest()[
                : BATCH_WEIGHT_BITS // 8
            ],
            "big",
        )
        for j in range(len(ciphertexts))
    ]
    return (
        big.multi_powmod(ciphertexts, weights, nsquare),
        big.multi_powmod(values, weights, nsquare),
    )


def _challenge(public: ThresholdPublicKey, statement: bytes, *elements: Mpz) -> int:
    width = public.paillier.ciphertext_bytes
    h = hashlib.sha256(_LABEL + b"challenge" + statement)
    h.update(big.join_fixed(elements, width))
    return int.from_bytes(h.digest(), "big")


def verify_partial(
    public_key: ThresholdPublicKey,
    ciphertexts: Sequence[Mpz],
    partial: PartialDecryption,
    *,
    context: bytes = b"",
    party: int | None = None,
) -> None:
    """Check ``partial``'s proof against verification key ``partial.index``.

    Raises AuthenticationError (with ``party``, defaulting to the holder index) when the
    proof fails or the partial is malformed (wrong count, non-unit values, oversized proof).
    """
    blame = partial.index if party is None else party
    if not 1 <= partial.index <= public_key.holders:
        raise AuthenticationError("partial decryption from an unknown holder", party=blame)
    if len(partial.values) != len(ciphertexts) or not ciphertexts:
        raise AuthenticationError("partial decryption of the wrong ciphertexts", party=blame)
    nsquare = public_key.paillier.nsquare
    if not 0 <= partial.challenge < 1 << CHALLENGE_BITS or not (
        0 <= partial.response < 1 << (_nonce_bits(public_key) + 1)
    ):
        raise AuthenticationError("malformed decryption proof", party=blame)
    try:
        public_key.paillier.check_ciphertexts(partial.values, party=blame)
    except DecodeError as exc:
        raise AuthenticationError(str(exc), party=blame) from None
    statement = _statement_digest(public_key, partial.index, ciphertexts, partial.values, context)
    big_c, big_ci = _batched(public_key, statement, ciphertexts, partial.values)
    e, z = partial.challenge, partial.response
    a = gmpy2.powmod(big_c, 4 * z, nsquare) * gmpy2.powmod(big_ci, -2 * e, nsquare) % nsquare
    vk = public_key.verification_key(partial.index)
    b = (
        gmpy2.powmod(public_key.verification_base, z, nsquare)
        * gmpy2.powmod(vk, -e, nsquare)
        % nsquare
    )
    if _challenge(public_key, statement, big_c, big_ci, a, b) != e:
        raise AuthenticationError(
            f"partial decryption of holder {partial.index} fails its proof", party=blame
        )


def _lagrange_at_zero(indices: Sequence[int], delta: int) -> list[int]:
    """Delta * prod_(j != i) j / (j - i): integers for indices in 1..l (Shoup)."""
    out = []
    for i in indices:
        numerator, denominator = delta, 1
        for j in indices:
            if j != i:
                numerator *= j
                denominator *= j - i
        if numerator % denominator:  # cannot happen for indices within 1..l
            raise ConfigurationError("Lagrange coefficient is not an integer")
        out.append(numerator // denominator)
    return out


@dataclass(frozen=True)
class CombinedDecryption:
    """Plaintexts in [0, n), the holders whose partials were used, and the rejected ones."""

    plaintexts: tuple[int, ...]
    used: tuple[int, ...]
    rejected: Mapping[int, str]

    def __repr__(self) -> str:
        return (
            f"CombinedDecryption(count={len(self.plaintexts)}, used={list(self.used)}, "
            f"rejected={dict(self.rejected)})"
        )


def combine_partials(
    public_key: ThresholdPublicKey,
    ciphertexts: Sequence[Mpz],
    partials: Sequence[PartialDecryption],
    *,
    context: bytes = b"",
    verify: bool = True,
) -> CombinedDecryption:
    """Decrypt ``ciphertexts`` from partial decryptions of at least t holders.

    Every partial's proof is checked (unless ``verify`` is False, for partials checked
    already); a failing one is left out and reported in ``rejected`` (index -> reason). The
    t valid partials with the smallest indices are combined. Raises DuplicateShareError for
    two partials of one holder, IncompatibleSharesError for a partial of another length,
    InsufficientSharesError when fewer than t valid partials remain.
    """
    seen: set[int] = set()
    for partial in partials:
        if partial.index in seen:
            raise DuplicateShareError(f"two partial decryptions from holder {partial.index}")
        seen.add(partial.index)
        if len(partial.values) != len(ciphertexts):
            raise IncompatibleSharesError("partial decryption of a different ciphertext count")
    rejected: dict[int, str] = {}
    valid: list[PartialDecryption] = []
    for partial in sorted(partials, key=lambda p: p.index):
        if verify:
            try:
                verify_partial(public_key, ciphertexts, partial, context=context)
            except AuthenticationError as exc:
                rejected[partial.index] = str(exc)
                continue
        valid.append(partial)
    if len(valid) < public_key.threshold:
        raise InsufficientSharesError(
            f"{len(valid)} valid partial decryptions, {public_key.threshold} needed"
            + (f" (rejected: {sorted(rejected)})" if rejected else "")
        )
    chosen = valid[: public_key.threshold]
    plaintexts = _combine(public_key, [p.index for p in chosen], [p.values for p in chosen])
    return CombinedDecryption(tuple(plaintexts), tuple(p.index for p in chosen), rejected)


def _combine(
    public_key: ThresholdPublicKey, indices: Sequence[int], values: Sequence[Sequence[Mpz]]
) -> list[int]:
    """Lagrange-combine partials of the holders ``indices`` (no verification, no count check)."""
    n, nsquare = public_key.paillier.n, public_key.paillier.nsquare
    coefficients = [2 * c for c in _lagrange_at_zero(indices, public_key.delta)]
    scale = gmpy2.invert(4 * public_key.delta**2, n)
    out = []
    for column in zip(*values, strict=True):
        combined = gmpy2.mpz(1)
        for value, coefficient in zip(column, coefficients, strict=True):
            combined = combined * gmpy2.powmod(value, coefficient, nsquare) % nsquare
        if combined % n != 1:
            raise DecodeError("partial decryptions do not combine (wrong key or tampering)")
        out.append(int((combined - 1) // n * scale % n))
    return out


def deal_threshold_keys(
    n_bits: int = DEFAULT_KEY_BITS,
    *,
    threshold: int,
    holders: int,
    safe_primes: tuple[int, int] | None = None,
) -> tuple[ThresholdPublicKey, list[KeyShare]]:
    """Trusted-dealer key generation: the public key and shares for holders 1..l.

    TRUST: the dealer computes the whole secret key; whoever runs this can decrypt every
    ciphertext under it. Never run it on the aggregator: use an offline key ceremony, or
    one committee member trusted not to collude with the server (module docstring). Safe
    primes of ``n_bits / 2`` bits are generated from :mod:`secrets` unless
    ``safe_primes`` supplies them (tests and benchmarks reuse precomputed ones); they are
    checked to be distinct safe primes whose product has ``n_bits`` bits. The dealer must
    forget everything but the public key after handing out the shares. Raises
    ConfigurationError for bad parameters.
    """
    if n_bits < MIN_KEY_BITS or n_bits % 2:
        raise ConfigurationError(f"n_bits must be even and at least {MIN_KEY_BITS}")
    if not 1 <= holders <= MAX_HOLDERS or not 1 <= threshold <= holders:
        raise ConfigurationError("need 1 <= threshold <= holders <= MAX_HOLDERS")
    if safe_primes is None:
        p = big.random_safe_prime(n_bits // 2)
        q = big.random_safe_prime(n_bits // 2)
        while q == p:
            q = big.random_safe_prime(n_bits // 2)
    else:
        p, q = (gmpy2.mpz(x) for x in safe_primes)
        for prime in (p, q):
            if not (
                gmpy2.is_prime(prime, big.MILLER_RABIN_ROUNDS)
                and gmpy2.is_prime((prime - 1) // 2, big.MILLER_RABIN_ROUNDS)
            ):
                raise ConfigurationError("supplied primes are not safe primes")
        if p == q or (p * q).bit_length() != n_bits:
            raise ConfigurationError(f"supplied primes do not give a distinct {n_bits}-bit n")
    n = p * q
    m = (p - 1) // 2 * ((q - 1) // 2)
    nm = n * m
    d = m * gmpy2.invert(m, n)  # d = 0 mod m, d = 1 mod n
    coefficients = [d] + [big.random_below(nm) for _ in range(threshold - 1)]
    secrets_by_index = {}
    for i in range(1, holders + 1):
        value = gmpy2.mpz(0)
        for coefficient in reversed(coefficients):  # Horner
            value = (value * i + coefficient) % nm
        secrets_by_index[i] = value
    paillier = PaillierPublicKey(n)
    nsquare = paillier.nsquare
    base = gmpy2.powmod(big.random_unit(n), 2, nsquare)
    delta = math.factorial(holders)
    keys = [gmpy2.powmod(base, delta * secrets_by_index[i], nsquare) for i in range(1, holders + 1)]
    public = ThresholdPublicKey(
        paillier,
        threshold=threshold,
        holders=holders,
        verification_base=base,
        verification_keys=keys,
    )
    shares = [KeyShare(public, i, secrets_by_index[i]) for i in range(1, holders + 1)]
    return public, shares


def decrypt_vector(
    public_key: ThresholdPublicKey,
    vector: EncryptedVector,
    partials: Sequence[PartialDecryption],
    *,
    context: bytes = b"",
) -> tuple[np.ndarray, Mapping[int, str]]:
    """(the vector's sum mod 2^value_bits as uint64, rejected holders -> reason).

    Same checks and errors as :func:`combine_partials`; UsageError for a vector under another
    key; DecodeError when the combined plaintexts overflow their slots.
    """
    if vector.public_key != public_key.paillier:
        raise UsageError("vector encrypted under another key")
    combined = combine_partials(public_key, vector.ciphertexts, partials, context=context)
    return unpack(combined.plaintexts, vector.layout, vector.length), combined.rejected
