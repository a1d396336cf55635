"""The ring R_Q = Z_Q[X]/(X^N + 1) in RNS form: arithmetic on batches of polynomials.

Theory of operation. ``Q = q_0 ... q_(L-1)`` for distinct NTT primes ``q_l < 2^32``, so by
the Chinese remainder theorem an element of ``Z_Q`` is its ``L`` residues, and a batch of
``P`` polynomials is one uint64 array of shape ``(L, P, N)`` (limb-major: row ``[l, p]`` is
polynomial ``p`` mod ``q_l``). Every operation is a handful of NumPy calls over the whole
array; products of two residues are below 2^64, so ``a * b % q`` is exact.

Polynomials live either in coefficient form or in NTT (evaluation) form
(:mod:`secagg.he.rlwe.ntt`); additions work in both, products only in NTT form.

Scaling to a power of two (:meth:`RnsRing.scale_to_bits`). Decryption and ciphertext
compression need ``round(2^k X / Q) mod 2^k`` for ``X`` given by residues. With
``y_l = x_l (Q/q_l)^-1 mod q_l`` we have ``X = sum_l y_l Q/q_l - j Q`` for an integer ``j``,
hence ``2^k X / Q = sum_l y_l 2^k / q_l (mod 2^k)``. Writing ``2^k = I_l q_l + R_l``, each
term is ``y_l I_l + floor(y_l R_l / q_l)`` (an integer, computed exactly in uint64, where
wrapping is reduction mod 2^64 and so mod 2^k) plus the fraction ``(y_l R_l mod q_l) / q_l``
(a float64 with error below 2^-52). The integer part is exact; the fractional part is off by
at most ``L * 2^-52``. This is the "simple scaling" of Halevi, Polyakov and Shoup (CT-RSA
2019) for a power-of-two target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from secagg.errors import ConfigurationError
from secagg.he.rlwe.ntt import NttTables, forward, inverse, ntt_tables

__all__ = ["RnsRing", "lagrange_at_zero"]

_U64 = np.uint64


class RnsRing:
    """Arithmetic on ``(limbs, polys, N)`` uint64 arrays of residues.

    Raises ConfigurationError (at construction) for a degree or moduli that
    :func:`secagg.he.rlwe.ntt.ntt_tables` refuses. No security check here: that is
    :class:`secagg.he.rlwe.params.RlweParameters`' job (tests use tiny rings).
    """

    __slots__ = ("_crt", "degree", "limbs", "moduli", "q", "tables")

    def __init__(self, degree: int, moduli: Sequence[int]) -> None:
        self.moduli: tuple[int, ...] = tuple(moduli)
        self.tables: NttTables = ntt_tables(degree, self.moduli)
        self.degree = degree
        self.limbs = len(self.moduli)
        self.q: np.ndarray = self.tables.q  # (limbs, 1, 1)
        modulus = math.prod(self.moduli)
        # (Q/q_l)^-1 mod q_l: the CRT basis coefficients.
        self._crt = np.array([pow(modulus // q, -1, q) for q in self.moduli], dtype=_U64).reshape(
            self.limbs, 1, 1
        )

    def __repr__(self) -> str:
        return f"RnsRing(degree={self.degree}, limbs={self.limbs})"

    @property
    def modulus(self) -> int:
        return math.prod(self.moduli)

    def zeros(self, polys: int) -> np.ndarray:
        return np.zeros((self.limbs, polys, self.degree), dtype=_U64)

    # -- conversions -------------------------------------------------------------------

    def from_signed(self, values: np.ndarray) -> np.ndarray:
        """Residues ``(limbs, polys, N)`` of signed integers ``values`` of shape
        ``(polys, N)`` with ``|value| < 2^31`` (small secrets and errors)."""
        small = np.asarray(values, dtype=np.int64)
        if small.ndim != 2 or small.shape[1] != self.degree:
            raise ConfigurationError(f"expected shape (polys, {self.degree})")
        out = np.empty((self.limbs, *small.shape), dtype=_U64)
        scratch = np.empty(small.shape, dtype=_U64)
        for limb, q in enumerate(self.moduli):
            row = out[limb]
            np.add(small, np.int64(q), out=row, casting="unsafe")  # in (0, 2q)
            np.subtract(row, _U64(q), out=scratch)
            np.minimum(row, scratch, out=row)
        return out

    def from_unsigned(self, values: np.ndarray) -> np.ndarray:
        """Residues ``(limbs, polys, N)`` of non-negative integers below 2^64."""
        big = np.asarray(values, dtype=_U64)
        if big.ndim != 2 or big.shape[1] != self.degree:
            raise ConfigurationError(f"expected shape (polys, {self.degree})")
        result: np.ndarray = np.remainder(big[None], self.q)
        return result

    def to_int_lists(self, a: np.ndarray) -> list[list[int]]:
        """Centered integers (CRT, Python ints) of every polynomial of ``a``. Slow: tests."""
        modulus = self.modulus
        out = []
        for p in range(a.shape[1]):
            row = []
            for k in range(self.degree):
                x = 0
                for limb, q in enumerate(self.moduli):
                    part = modulus // q
                    x += int(a[limb, p, k]) * part * pow(part, -1, q)
                x %= modulus
                row.append(x - modulus if x > modulus // 2 else x)
            out.append(row)
        return out

    # -- arithmetic --------------------------------------------------------------------

    def ntt(self, a: np.ndarray) -> None:
        """Coefficient form -> NTT form, in place."""
        forward(self.tables, a)

    def intt(self, a: np.ndarray) -> None:
        """NTT form -> coefficient form, in place."""
        inverse(self.tables, a)

    def add(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(a + b) mod q`` (reduced inputs, broadcasting); ``out`` may alias ``a``."""
        result: np.ndarray = np.add(a, b, out=out)
        scratch = result - self.q
        np.minimum(result, scratch, out=result)
        return result

    def sub(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(a - b) mod q`` (reduced inputs)."""
        result: np.ndarray = np.add(a, self.q, out=out)
        np.subtract(result, b, out=result)
        scratch = result - self.q
        np.minimum(result, scratch, out=result)
        return result

    def neg(self, a: np.ndarray) -> np.ndarray:
        """``-a mod q`` (reduced input)."""
        result: np.ndarray = self.q - a
        np.remainder(result, self.q, out=result)  # maps q (from a = 0) back to 0
        return result

    def mul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Pointwise ``a * b mod q`` (NTT form for a ring product); ``out`` may alias."""
        result: np.ndarray = np.multiply(a, b, out=out)
        np.remainder(result, self.q, out=result)
        return result

    def mul_scalars(self, a: np.ndarray, scalars: Sequence[int]) -> np.ndarray:
        """``a * c_l mod q_l`` for one integer ``c_l`` per limb."""
        column = np.array(
            [c % q for c, q in zip(scalars, self.moduli, strict=True)], dtype=_U64
        ).reshape(self.limbs, 1, 1)
        return self.mul(a, column)

    def poly_mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The negacyclic product of coefficient-form batches (a convenience: 3 NTTs)."""
        fa, fb = a.copy(), b.copy()
        self.ntt(fa)
        self.ntt(fb)
        product = self.mul(fa, fb)
        self.intt(product)
        return product

    def scale_to_bits(self, x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """``2^bits X / Q mod 2^bits`` of the residues ``x`` (shape ``(limbs, ...)``), split
        into an exact integer part (uint64, reduced mod 2^bits) and a fraction (float64 in
        ``[0, limbs)``, error below ``limbs * 2^-52``): see the module docstring.

        Raises ConfigurationError for ``bits`` outside 1..64.
        """
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 64:
            raise ConfigurationError("bits must be an int in 1..64")
        target = 1 << bits
        shape = x.shape[1:]
        integer = np.zeros(shape, dtype=_U64)
        fraction = np.zeros(shape, dtype=np.float64)
        y = np.empty(shape, dtype=_U64)
        hi = np.empty(shape, dtype=_U64)
        lo = np.empty(shape, dtype=_U64)
        crt = self._crt.reshape(self.limbs)
        for limb, q in enumerate(self.moduli):
            whole, rest = divmod(target, q)
            np.multiply(x[limb], crt[limb], out=y)
            np.remainder(y, _U64(q), out=y)
            np.multiply(y, _U64(whole % (1 << 64)), out=hi)  # wraps: fine mod 2^bits
            np.add(integer, hi, out=integer)
            np.multiply(y, _U64(rest), out=y)  # < q^2 < 2^64: exact
            np.divmod(y, _U64(q), out=(hi, lo))
            np.add(integer, hi, out=integer)
            fraction += lo / float(q)
        if bits < 64:
            np.bitwise_and(integer, _U64(target - 1), out=integer)
        return integer, fraction


def lagrange_at_zero(xs: Sequence[int], index: int, moduli: Sequence[int]) -> list[int]:
    """``prod_(k != index) x_k / (x_k - x_index)`` mod each modulus: the Lagrange
    coefficient at 0 of ``xs[index]`` for the point set ``xs``, one residue per limb.

    Raises ConfigurationError for duplicate or zero points (mod any modulus).
    """
    if len(set(xs)) != len(xs) or not 0 <= index < len(xs):
        raise ConfigurationError("points must be distinct and index in range")
    out = []
    me = xs[index]
    for q in moduli:
        numerator, denominator = 1, 1
        for k, x in enumerate(xs):
            if x % q == 0:
                raise ConfigurationError("a point is 0 mod a modulus")
            if k != index:
                numerator = numerator * x % q
                denominator = denominator * (x - me) % q
        if denominator == 0:
            raise ConfigurationError("two points agree mod a modulus")
        out.append(numerator * pow(denominator, -1, q) % q)
    return out
