"""Paillier encryption on gmpy2 (g = n + 1), interoperable with ``phe``, with packed vectors.

Encryption of m in Z_n is c = (1 + m n) r^n mod n^2 with r uniform in Z*_n: since
g = n + 1, g^m = 1 + m n (mod n^2), so the whole cost is r^n mod n^2, which does not depend
on m and can be computed ahead of time (:class:`RandomnessPool`). Ciphertexts multiply to
add plaintexts.

Keys and ciphertexts convert to and from ``phe`` (python-paillier), which uses the same
g = n + 1 and raw integer ciphertexts: ``PaillierPublicKey.to_phe``/``from_phe``,
``PaillierPrivateKey.to_phe``/``from_phe``, :func:`ciphertext_to_phe` and
:func:`ciphertext_from_phe`.

Vectors: :func:`encrypt_vector` packs a vector of Z_(2^b) values into carry-proof slots
(:mod:`secagg.he.slots`), one ciphertext per ``layout.slots`` values, and
:class:`EncryptedVector` adds such vectors while counting summands, so a sum can never exceed
the ``max_summands`` its slots were sized for. The slot guarantee holds for honestly encrypted
inputs: this module does not prove ranges, so a malicious encryptor can corrupt (not read) a
sum; :func:`decrypt_vector` then fails with DecodeError when the excess reaches the unused
top bits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gmpy2
import numpy as np

from secagg.errors import ConfigurationError, DecodeError, HeadroomError, UsageError
from secagg.he import bigint as big
from secagg.he._records import decode_record, encode_record
from secagg.he.bigint import Mpz
from secagg.he.slots import SlotLayout, pack, unpack
from secagg.secret import SecretHolder

__all__ = [
    "DEFAULT_KEY_BITS",
    "MIN_KEY_BITS",
    "EncryptedVector",
    "FreshRandomness",
    "PaillierPrivateKey",
    "PaillierPublicKey",
    "PrecomputedBaseRandomness",
    "RandomnessPool",
    "RandomnessSource",
    "ciphertext_from_phe",
    "ciphertext_to_phe",
    "decrypt_vector",
    "encrypt_vector",
    "generate_paillier_keypair",
    "sum_vectors",
]

DEFAULT_KEY_BITS = 2048
MIN_KEY_BITS = 512
"""Smallest modulus accepted at all; only tests should go below 2048 bits."""
MAX_KEY_BITS = 16384
"""Largest modulus accepted: a loaded key may not make every operation arbitrarily slow."""

_VECTOR_VERSION = 1


class PaillierPublicKey:
    """A Paillier public key n (g = n + 1). Equal keys compare equal; hashable.

    Raises ConfigurationError for an n that is even, outside [MIN_KEY_BITS, MAX_KEY_BITS]
    bits or not an int (a bool is not).
    """

    __slots__ = ("_fingerprint", "n", "nsquare")

    def __init__(self, n: int) -> None:
        if type(n) is not int and not isinstance(n, type(gmpy2.mpz(0))):
            raise ConfigurationError("n must be an integer")
        value = gmpy2.mpz(n)
        if not MIN_KEY_BITS <= value.bit_length() <= MAX_KEY_BITS or value % 2 == 0:
            raise ConfigurationError(
                f"n must be an odd modulus of {MIN_KEY_BITS} to {MAX_KEY_BITS} bits"
            )
        self.n: Mpz = value
        self.nsquare: Mpz = value * value
        self._fingerprint = hashlib.sha256(self.to_bytes()).hexdigest()[:16]

    @property
    def bits(self) -> int:
        return int(self.n.bit_length())

    @property
    def ciphertext_bytes(self) -> int:
        """Width of a serialized ciphertext (an element of Z_(n^2))."""
        return (int(self.nsquare.bit_length()) + 7) // 8

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of SHA-256 over the encoded n (public)."""
        return self._fingerprint

    def to_bytes(self) -> bytes:
        """n, big-endian."""
        return big.int_to_bytes(self.n, (int(self.n.bit_length()) + 7) // 8)

    @classmethod
    def from_bytes(cls, data: bytes, *, party: int | None = None) -> PaillierPublicKey:
        """Inverse of :meth:`to_bytes`; DecodeError on a malformed modulus (not bytes, a
        leading zero byte, even, or outside [MIN_KEY_BITS, MAX_KEY_BITS] bits)."""
        if not isinstance(data, bytes) or not data or data[0] == 0:
            raise DecodeError("malformed Paillier modulus", party=party)
        if len(data) > MAX_KEY_BITS // 8:
            raise DecodeError("Paillier modulus too large", party=party)
        try:
            return cls(int.from_bytes(data, "big"))
        except ConfigurationError as exc:
            raise DecodeError(f"invalid Paillier modulus: {exc}", party=party) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and bool(self.n == other.n)

    def __hash__(self) -> int:
        return hash(("paillier", int(self.n)))

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, fingerprint={self.fingerprint})"

    def raw_encrypt(self, plaintext: int, rn: Mpz) -> Mpz:
        """(1 + m n) * rn mod n^2 for m in [0, n) and a precomputed rn = r^n mod n^2.

        ``rn`` must be fresh (never used for another encryption); ConfigurationError if m is
        out of range.
        """
        m = gmpy2.mpz(plaintext)
        if not 0 <= m < self.n:
            raise ConfigurationError("plaintext out of range [0, n)")
        return (1 + m * self.n) * rn % self.nsquare

    def encrypt(self, plaintext: int, *, randomness: RandomnessSource | None = None) -> Mpz:
        """Encrypt m in [0, n) (fresh r^n from ``randomness``, else computed now)."""
        source = randomness if randomness is not None else FreshRandomness(self)
        return self.raw_encrypt(plaintext, source.take())

    def add(self, ciphertext_a: Mpz, ciphertext_b: Mpz) -> Mpz:
        """A ciphertext of the sum of the two plaintexts (mod n)."""
        return ciphertext_a * ciphertext_b % self.nsquare

    def check_ciphertexts(
        self, ciphertexts: Sequence[Mpz], *, party: int | None = None, what: str = "ciphertext"
    ) -> None:
        """DecodeError unless every ciphertext is a unit of Z_(n^2)."""
        big.check_units(ciphertexts, self.n, self.nsquare, what, party)

    def to_phe(self) -> Any:
        """The equal ``phe.PaillierPublicKey``."""
        import phe

        return phe.PaillierPublicKey(int(self.n))

    @classmethod
    def from_phe(cls, public_key: Any) -> PaillierPublicKey:
        """From a ``phe.PaillierPublicKey``; ConfigurationError if its g is not n + 1."""
        n = int(public_key.n)
        if int(public_key.g) != n + 1:
            raise ConfigurationError("only g = n + 1 keys are supported")
        return cls(n)


class PaillierPrivateKey(
    SecretHolder, export="PaillierPrivateKey.to_phe() / from_phe() (p and q: a private channel)"
):
    """The factorization p, q of n. Never printed: repr shows the public fingerprint only.

    Decryption uses the CRT (as phe does). Raises ConfigurationError if p * q != n.
    """

    __slots__ = ("_hp", "_hq", "_p", "_psquare", "_q", "_q_inverse", "_qsquare", "public_key")

    def __init__(self, public_key: PaillierPublicKey, p: int, q: int) -> None:
        pp, qq = gmpy2.mpz(p), gmpy2.mpz(q)
        if pp * qq != public_key.n or pp == qq or pp < 3 or qq < 3:
            raise ConfigurationError("p and q do not factor the public modulus")
        if pp > qq:
            pp, qq = qq, pp
        self.public_key = public_key
        self._p, self._q = pp, qq
        self._psquare, self._qsquare = pp * pp, qq * qq
        self._hp = self._h(pp, self._psquare)
        self._hq = self._h(qq, self._qsquare)
        self._q_inverse = gmpy2.invert(qq, pp)

    def _h(self, prime: Mpz, prime_square: Mpz) -> Mpz:
        g = self.public_key.n + 1
        return gmpy2.invert((gmpy2.powmod(g, prime - 1, prime_square) - 1) // prime, prime)

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(public={self.public_key.fingerprint})"

    def decrypt(self, ciphertext: Mpz) -> int:
        """The plaintext in [0, n). DecodeError if the ciphertext is not a unit mod n^2."""
        c = gmpy2.mpz(ciphertext)
        self.public_key.check_ciphertexts([c])
        mp = (gmpy2.powmod(c, self._p - 1, self._psquare) - 1) // self._p * self._hp % self._p
        mq = (gmpy2.powmod(c, self._q - 1, self._qsquare) - 1) // self._q * self._hq % self._q
        # CRT: x = mq + q * ((mp - mq) q^-1 mod p)
        return int(mq + self._q * ((mp - mq) * self._q_inverse % self._p))

    def to_phe(self) -> Any:
        """The equal ``phe.PaillierPrivateKey`` (holds the same secret: handle with care)."""
        import phe

        return phe.PaillierPrivateKey(self.public_key.to_phe(), int(self._p), int(self._q))

    @classmethod
    def from_phe(cls, private_key: Any) -> PaillierPrivateKey:
        """From a ``phe.PaillierPrivateKey``."""
        public = PaillierPublicKey.from_phe(private_key.public_key)
        return cls(public, int(private_key.p), int(private_key.q))


def generate_paillier_keypair(
    n_bits: int = DEFAULT_KEY_BITS,
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A fresh key pair with an n of exactly ``n_bits`` bits (primes from :mod:`secrets`).

    ConfigurationError for an odd size or one below :data:`MIN_KEY_BITS`.
    """
    if n_bits < MIN_KEY_BITS or n_bits % 2:
        raise ConfigurationError(f"n_bits must be even and at least {MIN_KEY_BITS}")
    while True:
        p = big.random_prime(n_bits // 2)
        q = big.random_prime(n_bits // 2)
        if p != q:
            break
    public = PaillierPublicKey(p * q)
    return public, PaillierPrivateKey(public, p, q)


def ciphertext_to_phe(public_key: PaillierPublicKey, ciphertext: Mpz) -> Any:
    """A ``phe.EncryptedNumber`` (exponent 0) holding our raw ciphertext."""
    import phe

    public_key.check_ciphertexts([ciphertext])
    return phe.EncryptedNumber(public_key.to_phe(), int(ciphertext), 0)


def ciphertext_from_phe(number: Any) -> tuple[PaillierPublicKey, Mpz]:
    """(public key, raw ciphertext) of a ``phe.EncryptedNumber`` with exponent 0.

    phe's own ``ciphertext()`` obfuscates a not-yet-obfuscated number first, so what we get
    is always randomized. ConfigurationError for a non-zero exponent (phe's float encoding,
    which this library does not use: it leaks each value's exponent).
    """
    if int(number.exponent) != 0:
        raise ConfigurationError("only integer (exponent 0) phe numbers convert")
    public = PaillierPublicKey.from_phe(number.public_key)
    ciphertext = gmpy2.mpz(number.ciphertext(be_secure=True))
    public.check_ciphertexts([ciphertext])
    return public, ciphertext


# --------------------------------------------------------------------------------------------
# Randomness r^n mod n^2


class RandomnessSource(Protocol):
    """Produces values r^n mod n^2 for encryption; each value is used for one ciphertext."""

    def take(self) -> Mpz: ...


class FreshRandomness:
    """r uniform in Z*_n from :mod:`secrets`, r^n mod n^2 computed on demand (default, secure)."""

    def __init__(self, public_key: PaillierPublicKey) -> None:
        self.public_key = public_key

    def take(self) -> Mpz:
        return gmpy2.powmod(
            big.random_unit(self.public_key.n), self.public_key.n, self.public_key.nsquare
        )


class PrecomputedBaseRandomness:
    """r^n replaced by h^alpha: h = x^n mod n^2 fixed, alpha a fresh short random exponent.

    About ``n_bits / exponent_bits`` times faster than :class:`FreshRandomness`, but NOT the
    standard Paillier assumption. Assumption (Damgard-Jurik-Nielsen's faster encryption):
    for h a random n-th residue, h^alpha with alpha uniform in [0, 2^exponent_bits) is
    computationally indistinguishable from a uniform n-th residue (short-exponent
    indistinguishability; exponent_bits >= 2 * security level against baby-step giant-step
    style attacks, hence the 256-bit default for 128-bit security). Opt in explicitly.
    """

    def __init__(self, public_key: PaillierPublicKey, *, exponent_bits: int = 256) -> None:
        if exponent_bits < 256:
            raise ConfigurationError("exponent_bits below 256 gives less than 128-bit security")
        self.public_key = public_key
        self.exponent_bits = exponent_bits
        self._base = FreshRandomness(public_key).take()

    def __repr__(self) -> str:
        return f"PrecomputedBaseRandomness(exponent_bits={self.exponent_bits})"

    def take(self) -> Mpz:
        alpha = big.random_bits(self.exponent_bits)
        return gmpy2.powmod(self._base, alpha, self.public_key.nsquare)


class RandomnessPool(SecretHolder, export="none: precompute a new pool (each r^n is used once)"):
    """r^n values computed ahead of time (offline), each handed out once.

    With the default :class:`FreshRandomness` source this is exactly as secure as computing
    r^n at encryption time: the values are independent and never reused. When the pool runs
    dry, ``take`` falls back to the source (counted in ``fallbacks``), so encryption never
    fails and never reuses a value.
    """

    def __init__(
        self, public_key: PaillierPublicKey, *, source: RandomnessSource | None = None
    ) -> None:
        self.public_key = public_key
        self.source: RandomnessSource = (
            source if source is not None else FreshRandomness(public_key)
        )
        self._values: list[Mpz] = []
        self.fallbacks = 0

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RandomnessPool(available={len(self._values)}, fallbacks={self.fallbacks})"

    def precompute(self, count: int, *, workers: int = 1) -> None:
        """Add ``count`` values, on ``workers`` threads (gmpy2 releases the GIL)."""
        if count < 0:
            raise ConfigurationError("count must be non-negative")
        source = self.source
        self._values.extend(big.parallel_map(lambda _: source.take(), range(count), workers))

    def take(self) -> Mpz:
        if self._values:
            return self._values.pop()
        self.fallbacks += 1
        return self.source.take()


# --------------------------------------------------------------------------------------------
# Packed vectors


@dataclass(frozen=True, repr=False, eq=False)
class EncryptedVector:
    """``length`` Z_(2^value_bits) values packed per ``layout`` under ``public_key``.

    ``summands`` counts how many fresh encryptions were added into it; adding past
    ``layout.max_summands`` raises HeadroomError, so a slot can never overflow.
    """

    public_key: PaillierPublicKey
    layout: SlotLayout
    length: int
    ciphertexts: tuple[Mpz, ...]
    summands: int = 1

    def __post_init__(self) -> None:
        if self.length < 0 or self.layout.plaintexts_for(self.length) != len(self.ciphertexts):
            raise ConfigurationError("ciphertext count does not match length and layout")
        if not 1 <= self.summands <= self.layout.max_summands:
            raise ConfigurationError("summands outside [1, layout.max_summands]")

    def __repr__(self) -> str:
        return (
            f"EncryptedVector(length={self.length}, ciphertexts={len(self.ciphertexts)}, "
            f"summands={self.summands}, key={self.public_key.fingerprint})"
        )

    def _check_compatible(self, other: EncryptedVector) -> None:
        if not isinstance(other, EncryptedVector):
            raise UsageError("can only add EncryptedVector objects")
        if other.public_key != self.public_key:
            raise UsageError("vectors encrypted under different keys")
        if other.layout != self.layout or other.length != self.length:
            raise UsageError("vectors with different layouts or lengths")

    def __add__(self, other: EncryptedVector) -> EncryptedVector:
        """The encrypted element-wise sum. HeadroomError past ``max_summands``."""
        self._check_compatible(other)
        summands = self.summands + other.summands
        if summands > self.layout.max_summands:
            raise HeadroomError(
                f"{summands} summands exceed the {self.layout.max_summands} the slots allow"
            )
        nsquare = self.public_key.nsquare
        added = tuple(
            a * b % nsquare for a, b in zip(self.ciphertexts, other.ciphertexts, strict=True)
        )
        return EncryptedVector(self.public_key, self.layout, self.length, added, summands)

    @property
    def nbytes(self) -> int:
        """Bytes of the ciphertexts alone (what :meth:`to_bytes` adds a small header to)."""
        return len(self.ciphertexts) * self.public_key.ciphertext_bytes

    def to_bytes(self) -> bytes:
        """Versioned msgpack: layout, length, summands, fixed-width ciphertexts (no key)."""
        width = self.public_key.ciphertext_bytes
        return encode_record(
            {
                "v": _VECTOR_VERSION,
                "key": self.public_key.fingerprint,
                "layout": self.layout.to_dict(),
                "length": self.length,
                "summands": self.summands,
                "c": big.join_fixed(self.ciphertexts, width),
            }
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        public_key: PaillierPublicKey,
        layout: SlotLayout,
        *,
        length: int | None = None,
        max_summands: int | None = None,
        party: int | None = None,
    ) -> EncryptedVector:
        """Decode and validate a vector sent by ``party``.

        The receiver states what it expects: the key, the layout, optionally the length and
        the largest acceptable ``summands`` (1 for a client's fresh upload). Every
        ciphertext must be a unit of Z_(n^2). Raises DecodeError on anything else.
        """
        keys = {"v", "key", "layout", "length", "summands", "c"}
        obj = decode_record(data, keys, "encrypted vector", party, version=_VECTOR_VERSION)
        if obj["key"] != public_key.fingerprint:
            raise DecodeError("encrypted vector under another key", party=party)
        try:
            found = SlotLayout.from_dict(obj["layout"])
        except DecodeError:
            raise DecodeError("encrypted vector with a malformed layout", party=party) from None
        if found != layout:
            raise DecodeError("encrypted vector with an unexpected layout", party=party)
        n_values, summands = obj["length"], obj["summands"]
        if type(n_values) is not int or type(summands) is not int:
            raise DecodeError("malformed encrypted vector", party=party)
        if n_values < 0 or (length is not None and n_values != length):
            raise DecodeError("encrypted vector of an unexpected length", party=party)
        bound = layout.max_summands if max_summands is None else max_summands
        if not 1 <= summands <= bound:
            raise DecodeError("encrypted vector with too many summands", party=party)
        count = layout.plaintexts_for(n_values)
        ciphertexts = big.split_fixed(
            obj["c"], public_key.ciphertext_bytes, count, "ciphertexts", party
        )
        public_key.check_ciphertexts(ciphertexts, party=party)
        return cls(public_key, layout, n_values, tuple(ciphertexts), summands)


def encrypt_vector(
    public_key: PaillierPublicKey,
    values: np.ndarray,
    layout: SlotLayout,
    *,
    randomness: RandomnessSource | None = None,
) -> EncryptedVector:
    """Pack ``values`` (each in [0, 2^layout.value_bits)) and encrypt each plaintext.

    ``randomness`` defaults to fresh r^n per ciphertext; pass a filled
    :class:`RandomnessPool` for fast online encryption. ConfigurationError for values out of
    range or a layout that does not fit this key's plaintext space.
    """
    if layout.capacity_bits > public_key.bits - 1:
        raise ConfigurationError("layout capacity exceeds the key's plaintext space")
    source = randomness if randomness is not None else FreshRandomness(public_key)
    n, nsquare = public_key.n, public_key.nsquare
    ciphertexts = tuple(
        (1 + gmpy2.mpz(m) * n) * source.take() % nsquare for m in pack(values, layout)
    )
    return EncryptedVector(public_key, layout, int(values.shape[0]), ciphertexts, 1)


def sum_vectors(vectors: Iterable[EncryptedVector]) -> EncryptedVector:
    """The encrypted sum of one or more vectors; UsageError for none, HeadroomError past the
    layout's ``max_summands``."""
    iterator = iter(vectors)
    try:
        total = next(iterator)
    except StopIteration:
        raise UsageError("sum of no vectors") from None
    for vector in iterator:
        total = total + vector
    return total


def decrypt_vector(private_key: PaillierPrivateKey, vector: EncryptedVector) -> np.ndarray:
    """The sum the vector holds, element-wise mod 2^value_bits, as uint64.

    DecodeError when a plaintext overflows its slot layout (only a dishonest encryptor can
    cause that) or a ciphertext is invalid; UsageError for a vector under another key.
    """
    if vector.public_key != private_key.public_key:
        raise UsageError("vector encrypted under another key")
    plaintexts = [private_key.decrypt(c) for c in vector.ciphertexts]
    return unpack(plaintexts, vector.layout, vector.length)
