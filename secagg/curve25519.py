"""Edwards25519 arithmetic for the few proofs the protocols need beyond ``cryptography``.

Theory of operation. ``cryptography`` gives X25519 agreements and Ed25519 signatures, but
no group operations. Two protocol steps need them, both rare and off the hot path:

* a holder that cannot open a share box proves which X25519 secret it shares with the
  dealer (:func:`prove_shared_secret`), so that the server can open the box itself and
  tell a dealer who sealed garbage from a holder who lies about it;
* a survivor reveals its pairwise secret with a dropped client, with the same proof.

Both are Chaum-Pedersen proofs of discrete-log equality (:func:`prove_dleq`,
:func:`verify_dleq`, Fiat-Shamir with SHA-512) in the prime-order subgroup of Edwards25519
(order :data:`L`). The keys they talk about are X25519 keys published in their Edwards form
(an Ed25519 public key ``A = a B``, from which everyone derives the X25519 public key with
the birational map, :func:`x25519_public`): the Ed25519 signature a client makes with that
key proves it knows ``a``, and the sign of ``x`` that X25519's u-coordinate drops is fixed.

Cofactor. The curve has order ``8 L``. Keys are clamped (``a`` a multiple of 8), so an
X25519 agreement ignores any small-order component of the peer's point. The proofs work on
``8 P`` for every point ``P`` a peer chose, which lies in the prime-order subgroup whatever
``P`` holds, and the revealed secret point must itself be of order ``L``: a prover cannot
shift it by a small-order point (see :func:`verify_shared_secret`).

Implementation: pure Python integers in extended twisted-Edwards coordinates (RFC 8032,
5.1.4), a 4-bit fixed window for scalar multiplication. About a millisecond per scalar
multiplication: fine for a proof per complaint, far too slow for anything per message.
Known-answer tests pin it to ``cryptography``'s Ed25519 public keys and X25519 agreements.
Nothing here is constant time: it only ever handles a witness when its holder proves a
secret it is about to reveal anyway.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from secagg.errors import ConfigurationError, DecodeError

__all__ = [
    "BASE",
    "IDENTITY",
    "POINT_BYTES",
    "PROOF_BYTES",
    "L",
    "P",
    "Point",
    "decode_point",
    "prove_dleq",
    "prove_shared_secret",
    "secret_scalar",
    "verify_dleq",
    "verify_shared_secret",
    "x25519_public",
    "x25519_publics",
]

P = 2**255 - 19
"""The field prime."""
L = 2**252 + 27742317777372353535851937790883648493
"""The order of the prime-order subgroup (the base point's order)."""
POINT_BYTES = 32
PROOF_BYTES = 64
"""A proof: the challenge and the response, 32 bytes little-endian each."""

_D = -121665 * pow(121666, P - 2, P) % P
_D2 = 2 * _D % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)
_DLEQ_LABEL = b"secagg/v1/dleq\x00"


@dataclass(frozen=True, eq=False, slots=True)
class Point:
    """A point of Edwards25519 in extended coordinates (x = X/Z, y = Y/Z, xy = T/Z).

    ``+``, ``-``, unary ``-`` and ``k * point`` (any int k, reduced nowhere: the caller
    decides) are the group law; ``==`` compares the points, not their coordinates.
    """

    X: int
    Y: int
    Z: int
    T: int

    def __add__(self, other: Point) -> Point:
        x1, y1, z1, t1 = self.X, self.Y, self.Z, self.T
        x2, y2, z2, t2 = other.X, other.Y, other.Z, other.T
        a = (y1 - x1) * (y2 - x2) % P
        b = (y1 + x1) * (y2 + x2) % P
        c = t1 * _D2 * t2 % P
        d = 2 * z1 * z2 % P
        e, f, g, h = b - a, d - c, d + c, b + a
        return Point(e * f % P, g * h % P, f * g % P, e * h % P)

    def __neg__(self) -> Point:
        return Point(-self.X % P, self.Y, self.Z, -self.T % P)

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def double(self) -> Point:
        x1, y1, z1 = self.X, self.Y, self.Z
        a = x1 * x1 % P
        b = y1 * y1 % P
        c = 2 * z1 * z1 % P
        h = a + b
        s = x1 + y1
        e = h - s * s % P
        g = a - b
        f = c + g
        return Point(e * f % P, g * h % P, f * g % P, e * h % P)

    def __rmul__(self, scalar: int) -> Point:
        return _multiply(self, scalar)

    def __mul__(self, scalar: int) -> Point:
        return _multiply(self, scalar)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        return (self.X * other.Z - other.X * self.Z) % P == 0 and (
            self.Y * other.Z - other.Y * self.Z
        ) % P == 0

    def __hash__(self) -> int:
        return hash(self.encode())

    def times_cofactor(self) -> Point:
        """``8 P``: in the prime-order subgroup, whatever small-order part ``P`` has."""
        return self.double().double().double()

    def is_identity(self) -> bool:
        return self.X % P == 0 and (self.Y - self.Z) % P == 0

    def in_prime_subgroup(self) -> bool:
        """True when ``L P`` is the identity (P has no small-order component)."""
        return _multiply(self, L).is_identity()

    def affine(self) -> tuple[int, int]:
        inverse = pow(self.Z, P - 2, P)
        return self.X * inverse % P, self.Y * inverse % P

    def encode(self) -> bytes:
        """The 32-byte RFC 8032 encoding: y, and the low bit of x in the top bit."""
        x, y = self.affine()
        return (y | (x & 1) << 255).to_bytes(POINT_BYTES, "little")

    def __repr__(self) -> str:
        return f"Point({self.encode().hex()[:16]}...)"


IDENTITY = Point(0, 1, 1, 0)


def _recover_x(y: int, sign: int) -> int | None:
    """x of the point with this y and low bit of x (RFC 8032, 5.1.3), or None."""
    u = (y * y - 1) % P
    v = (_D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    check = v * x * x % P
    if check == (-u) % P:
        x = x * _SQRT_M1 % P
    elif check != u:
        return None
    if x == 0 and sign:
        return None
    return P - x if x & 1 != sign else x


def decode_point(data: object, *, party: int | None = None) -> Point:
    """The point of a strict 32-byte RFC 8032 encoding.

    Raises DecodeError (with ``party``) when ``data`` is not 32 bytes, y is not below P
    (non-canonical), or no point has that y and sign.
    """
    if not isinstance(data, bytes) or len(data) != POINT_BYTES:
        raise DecodeError("an Edwards25519 point is 32 bytes", party=party)
    return _decode(data, party)


@lru_cache(maxsize=4096)
def _decode_cached(data: bytes) -> Point | None:
    raw = int.from_bytes(data, "little")
    y, sign = raw & ((1 << 255) - 1), raw >> 255
    if y >= P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return Point(x, y, 1, x * y % P)


def _decode(data: bytes, party: int | None) -> Point:
    point = _decode_cached(data)
    if point is None:
        raise DecodeError("not an Edwards25519 point", party=party)
    return point


BASE = _decode(
    (4 * pow(5, P - 2, P) % P).to_bytes(POINT_BYTES, "little"), None
)  # y = 4/5, x even: RFC 8032's base point
"""The base point B (order L) of Ed25519 and, mapped, X25519's u = 9."""


def _window_table(point: Point) -> list[Point]:
    table = [IDENTITY, point]
    for _ in range(14):
        table.append(table[-1] + point)
    return table


_BASE_TABLE = _window_table(BASE)


def _multiply(point: Point, scalar: int) -> Point:
    """``scalar * point`` by a 4-bit fixed window (scalar >= 0; a negative one negates)."""
    if scalar < 0:
        return _multiply(-point, -scalar)
    table = _BASE_TABLE if point is BASE else _window_table(point)
    result = IDENTITY
    for shift in range((scalar.bit_length() + 3) // 4 * 4 - 4, -4, -4):
        result = result.double().double().double().double()
        digit = (scalar >> shift) & 15
        if digit:
            result = result + table[digit]
    return result


def x25519_public(edwards: object, *, party: int | None = None) -> bytes:
    """The X25519 public key (u = (1 + y) / (1 - y), 32 bytes little-endian) of the Ed25519
    public key ``edwards``: the same key pair seen by X25519 (:func:`secret_scalar`).

    Only y is read (u does not depend on the sign of x) and the point is not decompressed:
    whoever relies on the key being a point of the curve checks its Ed25519 signature (a
    key proof), which decodes it. Raises DecodeError when ``edwards`` is not 32 bytes, its y
    is not below P, or y = 1 (no u).
    """
    return x25519_publics([edwards], party=party)[0]


def x25519_publics(keys: Sequence[object], *, party: int | None = None) -> list[bytes]:
    """:func:`x25519_public` of many keys with one field inversion (Montgomery's trick)."""
    ys: list[int] = []
    for key in keys:
        if not isinstance(key, bytes) or len(key) != POINT_BYTES:
            raise DecodeError("an Ed25519 public key is 32 bytes", party=party)
        y = int.from_bytes(key, "little") & ((1 << 255) - 1)
        if y >= P or y == 1:
            raise DecodeError("an Ed25519 public key without an X25519 form", party=party)
        ys.append(y)
    denominators = [(1 - y) % P for y in ys]
    prefix = [1]
    for value in denominators:
        prefix.append(prefix[-1] * value % P)
    inverse = pow(prefix[-1], P - 2, P)
    out: list[bytes] = [b""] * len(ys)
    for index in range(len(ys) - 1, -1, -1):
        u = (1 + ys[index]) * inverse % P * prefix[index] % P
        inverse = inverse * denominators[index] % P
        out[index] = u.to_bytes(POINT_BYTES, "little")
    return out


def secret_scalar(seed: bytes) -> bytes:
    """The secret scalar of an Ed25519 seed (SHA-512, clamped: RFC 8032, 5.1.5), as the
    32-byte X25519 private key of the same key pair. Raises ConfigurationError unless
    ``seed`` is 32 bytes."""
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ConfigurationError("an Ed25519 seed is 32 bytes")
    scalar = bytearray(hashlib.sha512(seed).digest()[:32])
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


# --- Chaum-Pedersen ---------------------------------------------------------------------


def _challenge(context: bytes, points: tuple[Point, ...]) -> int:
    digest = hashlib.sha512()
    digest.update(_DLEQ_LABEL)
    digest.update(len(context).to_bytes(4, "big"))
    digest.update(context)
    for point in points:
        digest.update(point.encode())
    return int.from_bytes(digest.digest(), "little") % L


def prove_dleq(
    witness: int, base1: Point, base2: Point, *, context: bytes
) -> tuple[Point, Point, bytes]:
    """``(witness * base1, witness * base2, proof)``: a proof that both share the discrete
    log ``witness`` (bases of order L), bound to ``context``. The nonce is fresh CSPRNG
    output. Raises ConfigurationError on a witness outside 1..L-1."""
    if not isinstance(witness, int) or not 0 < witness < L:
        raise ConfigurationError("the witness must be a scalar in 1..L-1")
    image1, image2 = witness * base1, witness * base2
    nonce = int.from_bytes(os.urandom(64), "little") % L or 1
    challenge = _challenge(
        context, (base1, image1, base2, image2, nonce * base1, nonce * base2)
    )
    response = (nonce + challenge * witness) % L
    proof = challenge.to_bytes(32, "little") + response.to_bytes(32, "little")
    return image1, image2, proof


def verify_dleq(
    base1: Point, image1: Point, base2: Point, image2: Point, proof: object, *, context: bytes
) -> bool:
    """True when ``proof`` shows ``log_base1 image1 == log_base2 image2`` (all four points
    in the prime-order subgroup: the caller's job) for ``context``. Never raises for a bad
    proof: a proof that is not 64 bytes, or has a scalar not below L, is False."""
    if not isinstance(proof, bytes) or len(proof) != PROOF_BYTES:
        return False
    challenge = int.from_bytes(proof[:32], "little")
    response = int.from_bytes(proof[32:], "little")
    if challenge >= L or response >= L:
        return False
    commit1 = response * base1 - challenge * image1
    commit2 = response * base2 - challenge * image2
    return _challenge(context, (base1, image1, base2, image2, commit1, commit2)) == challenge


_BASE8 = BASE.times_cofactor()


def prove_shared_secret(
    private_scalar: bytes, peer_public: bytes, *, context: bytes
) -> tuple[bytes, bytes]:
    """Prove the X25519 secret of ``private_scalar`` (a clamped 32-byte scalar ``a``, the
    key behind the Ed25519 public key ``a B``) with the peer whose Ed25519 public key is
    ``peer_public``: returns ``(K, proof)`` with ``K = a * peer`` encoded (its u-coordinate
    is the raw X25519 output) and a proof for :func:`verify_shared_secret`.

    Raises ConfigurationError on a scalar that is not clamped, DecodeError on a peer key
    that is not a point (``party`` unset: the caller names the peer).
    """
    if not isinstance(private_scalar, bytes) or len(private_scalar) != 32:
        raise ConfigurationError("a private scalar is 32 bytes")
    a = int.from_bytes(private_scalar, "little")
    if a % 8 or a >> 255 or not a >> 254:
        raise ConfigurationError("the private scalar is not clamped")
    peer = decode_point(peer_public)
    shared = a * peer  # a multiple of 8: no small-order part survives
    _, _, proof = prove_dleq(a % L, _BASE8, peer.times_cofactor(), context=context)
    return shared.encode(), proof


def verify_shared_secret(
    own_public: bytes, peer_public: bytes, shared: object, proof: object, *, context: bytes
) -> bytes | None:
    """The raw X25519 secret (32 bytes, what ``X25519(a, u(peer))`` returns) that the owner
    of ``own_public`` shares with the owner of ``peer_public``, if ``shared`` and ``proof``
    (from :func:`prove_shared_secret` with the same ``context``) prove it; else None.

    Checked: every encoding decodes; ``K`` is of order L and not the identity (so it is
    exactly ``a * peer`` with ``8 * own = a * 8B``, no small-order shift); the proof holds
    for ``(8B, 8 own)`` and ``(8 peer, 8 K)``. Never raises for a peer's bad input.
    """
    try:
        own = decode_point(own_public)
        peer = decode_point(peer_public)
        point = decode_point(shared)
    except DecodeError:
        return None
    peer8 = peer.times_cofactor()
    if peer8.is_identity() or point.is_identity() or not point.in_prime_subgroup():
        return None
    if not verify_dleq(
        _BASE8, own.times_cofactor(), peer8, point.times_cofactor(), proof, context=context
    ):
        return None
    _, y = point.affine()
    u = (1 + y) * pow(1 - y, P - 2, P) % P
    return u.to_bytes(POINT_BYTES, "little")
