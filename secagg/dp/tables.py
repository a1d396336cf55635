"""A fast, exact sampler for symmetric log-concave pmfs on Z: integer lookup tables + escape.

Theory of operation (why the output distribution is exactly ``p``):

1. From a rigorous enclosure (:mod:`secagg.dp.pmf`) take integer weights
   ``a_x = floor(2^T * lower_bound(p(x)))`` for ``|x| <= L``, so ``a_x <= 2^T p(x)``, and give
   the missing mass ``e = 2^T - sum a_x >= 1`` to an *escape* symbol. The weights are integers
   summing to exactly ``2^T`` (``T = 64`` by default); a sample starts from one uniform
   ``T``-bit keystream word ``w``, i.e. a uniform point of ``[0, 2^T)``.
2. Level 1: ``[0, 2^T)`` is cut into ``N = 2^m`` columns of ``C = 2^(T-m)`` points. Symbol
   ``x`` owns ``c_x = floor(a_x / C)`` whole columns, laid out in order from 0; the remaining
   ``E = N - sum c_x`` columns, at the top, start level 2. The top ``m`` bits of ``w`` index an
   int16 (or int32) table: one gather returns ``x`` with probability exactly ``c_x C / 2^T``.
3. Level 2: if ``w >= (N - E) C``, then ``w - (N - E) C`` is uniform on ``[0, E C)``, and
   ``E C = sum r_x + e`` with ``r_x = a_x - c_x C``. Inverse CDF on the exact integer prefix
   sums of ``(r_x, e)`` returns ``x`` with probability ``r_x / 2^T`` overall, or the escape.
   With ``N >= 32 (2L + 1)`` about 0.5 % of samples reach level 2.
4. An escape (probability about ``2L 2^-T`` plus the tail mass beyond ``L``: below ``2^-45``)
   draws from the residual ``r(x) = p(x) - a_x / 2^T`` (which is ``p(x)`` for ``|x| > L``) by
   rejection: the envelope is the enclosure's upper bound of ``r`` on the table and the
   geometric ``p_hi(L) rho_hi(L)^(|x|-L)`` beyond it (valid by log-concavity); a proposal is
   accepted with probability ``r(x) / envelope(x)``, decided by comparing a lazily revealed
   uniform real with enclosures of that ratio refined to higher precision until they separate
   (a Las Vegas comparison: the decision always equals the exact one).

So ``P(x) = c_x C / 2^T + r_x / 2^T + (e / 2^T) r(x) / (e / 2^T) = p(x)`` exactly; precision
only affects speed. The slow path uses Python integers and :class:`fractions.Fraction`; it
runs about once per 2^45 samples, and tests force it with a small ``T``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from fractions import Fraction
from typing import NoReturn

import numpy as np

from secagg.dp.pmf import Enclosure, LogConcavePmf, enclose
from secagg.dp.randomness import RandomSource
from secagg.dp.workspace import scratch
from secagg.errors import ConfigurationError, UsageError

__all__ = ["ExactTableSampler", "lazy_bernoulli"]

_TAIL_TARGET = Fraction(1, 1 << 52)
_GUARD_BITS = 64
_MAX_COLUMNS_LOG2 = 22
"""Level-1 tables have at most 2^22 entries (16 MiB of int32), and at most 2^21 symbols."""
_COLUMN_BITS = 5
"""About 2^5 level-1 columns per symbol: roughly 0.5 % of samples reach level 2."""


def lazy_bernoulli(
    rng: RandomSource, bounds: Callable[[int], tuple[Fraction, Fraction]], start_prec: int
) -> bool:
    """``True`` with probability exactly ``v``, where ``v`` in [0, 1] is known by enclosures.

    ``bounds(prec)`` returns Fractions ``lo <= v <= hi`` whose gap shrinks as ``prec`` grows.
    A uniform real ``U`` is revealed 64 bits at a time; the answer is ``U < v``, decided once
    the revealed interval of ``U`` lies on one side of ``[lo, hi]``.
    """
    prec = start_prec
    lo, hi = bounds(prec)
    u, k = 0, 0
    while True:
        scale = 1 << k
        if (u + 1) <= lo * scale:
            return True
        if u >= hi * scale:
            return False
        if (hi - lo) * scale > Fraction(1, 4):
            prec *= 2
            lo, hi = bounds(prec)
        else:
            u = (u << 64) | rng.bits(64)
            k += 64


class ExactTableSampler:
    """Exact samples of a symmetric log-concave pmf (see the module docstring).

    Build once per distribution (milliseconds for standard deviations near 1000, seconds
    near 100 000) and reuse: :meth:`sample` is vectorized. ``weight_bits`` (``T``)
    below 64 and a small ``half_width`` are for tests that exercise levels 2 and 3.
    Raises :class:`ConfigurationError` when the table would need 2^21 symbols or more.
    """

    __slots__ = (
        "_base",
        "_cumulative",
        "_enc",
        "_escape",
        "_level1",
        "_level2",
        "_residual",
        "_shift",
        "_weights",
        "_widest",
        "half_width",
        "pmf",
        "weight_bits",
    )

    def __init__(
        self, pmf: LogConcavePmf, *, weight_bits: int = 64, half_width: int | None = None
    ) -> None:
        if not isinstance(weight_bits, int) or not 8 <= weight_bits <= 64:
            raise ConfigurationError("weight_bits must be an int in [8, 64]")
        self.pmf = pmf
        self.weight_bits = weight_bits
        prec = weight_bits + _GUARD_BITS
        if half_width is None:
            half_width = int(8.5 * pmf.std_estimate) + 16
            enc = enclose(pmf, half_width, prec)
            while enc.tail_bound() > _TAIL_TARGET:
                half_width *= 2
                enc = enclose(pmf, half_width, prec)
        else:
            enc = enclose(pmf, half_width, prec)
        self.half_width = half_width
        self._enc = enc
        total = 1 << weight_bits
        weights = [(w * total) // enc.z_hi for w in enc.w_lo]
        self._weights = weights
        escape = total - (2 * sum(weights) - weights[0])
        if escape < 1:  # pragma: no cover - impossible: sum a_x <= 2^T (1 - tail) < 2^T
            raise ConfigurationError("internal error: table weights exceed the total")
        symbols = 2 * half_width + 1
        m = min(max(1, symbols.bit_length() + _COLUMN_BITS), _MAX_COLUMNS_LOG2, weight_bits)
        if symbols.bit_length() > _MAX_COLUMNS_LOG2 - 1:
            raise ConfigurationError(
                f"{pmf.name}: a noise table of {symbols} symbols is too large "
                f"(fewer than 2^{_MAX_COLUMNS_LOG2 - 1})"
            )
        column = 1 << (weight_bits - m)
        # int16 symbols when they fit (half the memory traffic), else int32.
        narrow: type[np.int16] | type[np.int32] = (
            np.int16 if half_width < np.iinfo(np.int16).max else np.int32
        )
        dtype = np.dtype(narrow)
        self._escape = int(np.iinfo(narrow).min)
        self._widest = int(np.iinfo(narrow).max)
        values = np.arange(-half_width, half_width + 1, dtype=dtype)
        full = [weights[abs(x)] for x in range(-half_width, half_width + 1)]
        counts = np.array([a // column for a in full], dtype=np.int64)
        used = int(counts.sum())
        # Columns past the symbols' runs hold the level-2 marker.
        self._level1 = np.full(1 << m, self._escape, dtype=dtype)
        self._level1[:used] = np.repeat(values, counts)
        self._base = used * column
        remainders = [a - (a // column) * column for a in full] + [escape]
        self._cumulative = np.cumsum(np.array(remainders, dtype=np.uint64))
        if int(self._cumulative[-1]) != ((1 << m) - used) * column:  # pragma: no cover
            raise ConfigurationError("internal error: level-2 weights do not fill the columns")
        self._level2 = np.append(values, np.array([self._escape], dtype=dtype))
        self._shift = weight_bits - m
        self._residual: _Residual | None = None

    @property
    def escape_probability(self) -> float:
        """Probability that one sample takes the slow path (float, informational)."""
        total = 1 << self.weight_bits
        return (total - (2 * sum(self._weights) - self._weights[0])) / total

    @property
    def level2_probability(self) -> float:
        """Probability that one sample needs the level-2 lookup (float, informational)."""
        return 1.0 - self._base / float(1 << self.weight_bits)

    def sample_scratch(self, count: int, rng: RandomSource) -> tuple[np.ndarray, int]:
        """``count`` exact samples and a bound on their magnitudes.

        The samples are in this thread's scratch buffer (int16 or int32, valid until the next
        call), or in a new int64 array when a rare slow-path value does not fit the narrow
        type. :meth:`sample` returns a fresh int64 array.
        """
        out = scratch("dp.table.out", count, self._level1.dtype)
        bound = self.half_width
        if count == 0:
            return out, bound
        words = rng.scratch_words(count)
        if self.weight_bits < 64:
            np.right_shift(words, np.uint64(64 - self.weight_bits), out=words)
        index = scratch("dp.table.index", count, np.int64)
        np.right_shift(words, np.uint64(self._shift), out=index.view(np.uint64))
        # mode='wrap' skips the bounds check and the buffered copy (indices are < 2^m).
        np.take(self._level1, index, out=out, mode="wrap")
        upper = np.flatnonzero(out == self._escape)
        if not upper.size:
            return out, bound
        offsets = words[upper] - np.uint64(self._base)
        picks = np.searchsorted(self._cumulative, offsets, side="right")
        chosen = self._level2[picks]
        out[upper] = chosen
        escaped = upper[chosen == self._escape]
        if not escaped.size:
            return out, bound
        values = [self._slow(rng) for _ in escaped]
        bound = max(bound, *(abs(v) for v in values))
        if bound > self._widest:
            wide = out.astype(np.int64)
            wide[escaped] = values
            return wide, bound
        out[escaped] = values
        return out, bound

    def sample(self, count: int, rng: RandomSource) -> np.ndarray:
        """``count`` independent exact samples (a new int64 array)."""
        return self.sample_scratch(count, rng)[0].astype(np.int64)

    def _slow(self, rng: RandomSource) -> int:
        if self._residual is None:
            self._residual = _Residual(self.pmf, self._enc, self._weights, self.weight_bits)
        return self._residual.sample(rng)

    def __repr__(self) -> str:
        return f"ExactTableSampler({self.pmf.name}, half_width={self.half_width})"

    def __reduce__(self) -> NoReturn:
        raise UsageError("an ExactTableSampler is rebuilt from its pmf, not pickled")


class _Residual:
    """Rejection sampler of the residual ``r(x) = p(x) - a_x / 2^T`` (the escape path)."""

    def __init__(
        self, pmf: LogConcavePmf, enc: Enclosure, weights: list[int], weight_bits: int
    ) -> None:
        self.pmf = pmf
        self.enc = enc
        self.weights = weights
        self.total = 1 << weight_bits
        half = enc.half_width
        self.half = half
        # Envelope on the table: rbar(x) = p_hi(x) - a_x / 2^T = num[x] / (z_lo 2^T) >= r(x).
        self.den = enc.z_lo * self.total
        self.num = [enc.w_hi[k] * self.total - weights[k] * enc.z_lo for k in range(half + 1)]
        cumulative = []
        running = 0
        for x in range(-half, half + 1):
            running += self.num[abs(x)]
            cumulative.append(running)
        self.cumulative = cumulative
        table_mass = Fraction(running, self.den)
        # Envelope beyond the table: p_hi(L) * rho^j, j >= 1, both signs.
        unit = 1 << enc.prec
        self.rho = Fraction(enc.rho_hi[half], unit)
        self.p_edge = Fraction(enc.w_hi[half], enc.z_lo)
        tail_mass = 2 * self.p_edge * self.rho / (1 - self.rho)
        self.table_share = table_mass / (table_mass + tail_mass)
        self.cache: dict[tuple[int, int], Enclosure] = {}

    def _enclosure(self, half_width: int, prec: int) -> Enclosure:
        """An enclosure covering ``half_width`` whose gap is about ``2^-prec``.

        The normalizer's tail bound does not shrink with precision, so the table is widened
        until that bound is below ``2^-prec`` too; otherwise refinement could never separate.
        """
        for (width, p), enc in self.cache.items():
            if width >= half_width and p >= prec:
                return enc
        width = max(half_width, self.half)
        enc = enclose(self.pmf, width, prec)
        while enc.tail_bound() * (1 << prec) > 1:
            width *= 2
            enc = enclose(self.pmf, width, prec)
        self.cache[(width, prec)] = enc
        return enc

    def sample(self, rng: RandomSource) -> int:
        share = self.table_share
        while True:
            if rng.randbelow(share.denominator) < share.numerator:
                pick = rng.randbelow(self.cumulative[-1])
                x = bisect.bisect_right(self.cumulative, pick) - self.half
                envelope = Fraction(self.num[abs(x)], self.den)
                taken = Fraction(self.weights[abs(x)], self.total)
            else:
                j = 1
                while rng.randbelow(self.rho.denominator) < self.rho.numerator:
                    j += 1
                x = (self.half + j) * (1 if rng.bits(1) else -1)
                envelope = self.p_edge * self.rho**j
                taken = Fraction(0)

            def ratio(prec: int, x: int = x, env: Fraction = envelope, a: Fraction = taken) -> (
                tuple[Fraction, Fraction]
            ):
                lo, hi = self._enclosure(abs(x), prec).p_bounds(x)
                return max(Fraction(0), (lo - a) / env), min(Fraction(1), (hi - a) / env)

            if lazy_bernoulli(rng, ratio, self.enc.prec + 64):
                return x
