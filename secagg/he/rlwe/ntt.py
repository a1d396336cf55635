"""Negacyclic number-theoretic transform over Z_q[X]/(X^N + 1), vectorized and batched.

Theory of operation. With ``psi`` a primitive ``2N``-th root of unity mod ``q`` (so
``psi^N = -1``), the map ``a -> (a(psi^(2 brv(i) + 1)))_i`` (``brv`` reverses the
``log2 N`` bits of ``i``) sends negacyclic convolution to pointwise multiplication: the
product of two polynomials mod ``X^N + 1`` is ``inverse(forward(a) * forward(b))``. Outputs
are in that bit-reversed evaluation order, which pointwise products do not care about.

The forward transform is the merged Cooley-Tukey NTT of Longa and Naehrig (CANS 2016: the
powers of ``psi`` folded into the twiddles, no pre-scaling) written in *constant geometry*
(Pease): every stage reads the two contiguous halves of the array and writes its two outputs
interleaved, ``out[2k] = U + w V`` and ``out[2k + 1] = U - w V`` with ``U = in[k]``,
``V = in[k + N/2]``. Element ``x`` is stored at position ``rotl(x, s)`` before stage ``s``,
so stage ``s`` pairs the right elements, the twiddle of position ``k`` is
``psi^brv(m + k mod m)`` (``m = 2^s``), and after ``log2 N`` stages the order is back to the
Cooley-Tukey one. Each stage is a dozen NumPy calls over the whole ``(limbs, polys, N/2)``
half-array: one call does every butterfly of a stage, for every limb and every polynomial
of the batch, with long contiguous inner loops (the textbook in-place layout has inner loops
of 1, 2, 4... elements in its late stages and ran 2-5x slower here). The inverse runs
the stages backwards as Gentleman-Sande butterflies, ``in[k] = X + Y``,
``in[k + N/2] = (X - Y) / w``, and folds ``N^-1`` into its last stage.

Arithmetic. Residues are uint64 holding values below ``q < 2^32``. Multiplication by a
twiddle ``w`` uses Shoup's precomputed quotient ``w' = floor(w 2^32 / q)``: for ``x < 2^32``,
``x w - floor(x w' / 2^32) q`` (computed modulo 2^64, where NumPy wraps) lies in
``[0, 2q)``; one conditional subtraction, written ``min(r, r - q)`` (an unsigned wrap makes
``r - q`` huge when ``r < q``), finishes the reduction. Every stage output is fully
reduced, so no value ever reaches 2^33. Polynomials are processed in blocks of about
:data:`BLOCK_ELEMENTS` residues (large enough to amortize NumPy's per-call cost, small
enough to stay in cache): about 0.3 ms per 8192-point transform of one limb, one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from secagg.errors import ConfigurationError
from secagg.he.rlwe.primes import PRIME_BITS, TWO_ADICITY, is_prime, primitive_root_of_unity

__all__ = [
    "BLOCK_ELEMENTS",
    "MAX_DEGREE",
    "MIN_DEGREE",
    "NttTables",
    "bit_reverse",
    "check_ring",
    "forward",
    "inverse",
    "mul_shoup",
    "ntt_tables",
    "shoup_factor",
]

MIN_DEGREE = 4
MAX_DEGREE = 1 << (TWO_ADICITY - 1)
BLOCK_ELEMENTS = 1 << 17
"""Residues per block: measured best on this project's machines (2^16..2^18 are within a few
percent; much smaller blocks pay NumPy's per-call overhead, much larger ones spill caches)."""

_SHIFT = np.uint64(32)


def bit_reverse(count: int) -> np.ndarray:
    """The permutation ``i -> brv(i)`` of ``range(count)`` (a power of two) as int64."""
    bits = count.bit_length() - 1
    index = np.arange(count, dtype=np.int64)
    out = np.zeros(count, dtype=np.int64)
    for b in range(bits):
        out |= ((index >> b) & 1) << (bits - 1 - b)
    return out


def _powers(base: int, count: int, q: int) -> np.ndarray:
    """``base^i mod q`` for ``i < count`` (a power of two), by doubling: log2 count steps."""
    out = np.ones(count, dtype=np.uint64)
    filled, step = 1, base % q
    while filled < count:
        np.multiply(out[:filled], np.uint64(step), out=out[filled : 2 * filled])
        np.remainder(out[filled : 2 * filled], np.uint64(q), out=out[filled : 2 * filled])
        filled *= 2
        step = step * step % q
    return out


def shoup_factor(w: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``floor(w 2^32 / q)`` for residues ``w < q < 2^32`` (broadcasting ``q``)."""
    result: np.ndarray = np.floor_divide(np.left_shift(w, _SHIFT), q)
    return result


def mul_shoup(
    x: np.ndarray,
    w: np.ndarray,
    w_shoup: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """``out = x w mod q`` (fully reduced) for ``x < 2^32``; ``scratch`` is clobbered.

    ``w_shoup`` is :func:`shoup_factor` of ``w``; every operand broadcasts to ``out``.
    ``out`` may be ``x`` itself; ``scratch`` must not alias anything else.
    """
    np.multiply(x, w_shoup, out=scratch)
    np.right_shift(scratch, _SHIFT, out=scratch)
    np.multiply(scratch, q, out=scratch)
    np.multiply(x, w, out=out)
    np.subtract(out, scratch, out=out)
    np.subtract(out, q, out=scratch)
    np.minimum(out, scratch, out=out)


@dataclass(frozen=True, eq=False)
class NttTables:
    """Twiddles of one ring degree and modulus chain (shared, read-only).

    ``forward_stages[s]`` is ``(w, w')`` of stage ``s`` as ``(limbs, 1, N/2)`` arrays;
    ``inverse_stages`` are in the order the inverse applies them, the last one with
    ``N^-1`` folded in; ``n_inverse`` is ``(N^-1, its Shoup factor)`` per limb.
    """

    degree: int
    moduli: tuple[int, ...]
    q: np.ndarray
    forward_stages: tuple[tuple[np.ndarray, np.ndarray], ...]
    inverse_stages: tuple[tuple[np.ndarray, np.ndarray], ...]
    n_inverse: tuple[np.ndarray, np.ndarray]


def check_ring(degree: int, moduli: tuple[int, ...]) -> None:
    """ConfigurationError unless ``degree`` is a power of two in :data:`MIN_DEGREE`..
    :data:`MAX_DEGREE` and every modulus a distinct prime in ``(2^31, 2^32)``, 1 mod 2N."""
    if (
        not isinstance(degree, int)
        or isinstance(degree, bool)
        or not MIN_DEGREE <= degree <= MAX_DEGREE
        or degree & (degree - 1)
    ):
        raise ConfigurationError(
            f"ring degree must be a power of two in {MIN_DEGREE}..{MAX_DEGREE}"
        )
    if not moduli or len(set(moduli)) != len(moduli):
        raise ConfigurationError("moduli must be distinct")
    for q in moduli:
        if (
            not isinstance(q, int)
            or isinstance(q, bool)
            or not 1 << (PRIME_BITS - 1) < q < 1 << PRIME_BITS
            or (q - 1) % (2 * degree)
            or not is_prime(q)
        ):
            raise ConfigurationError(
                f"every modulus must be a prime in (2^{PRIME_BITS - 1}, 2^{PRIME_BITS}) "
                "that is 1 mod 2N"
            )


@lru_cache(maxsize=16)
def ntt_tables(degree: int, moduli: tuple[int, ...]) -> NttTables:
    """The (cached) tables of ``degree`` and ``moduli``.

    Raises ConfigurationError unless ``degree`` is a power of two in
    :data:`MIN_DEGREE`..:data:`MAX_DEGREE` and every modulus a distinct prime in
    ``(2^31, 2^32)`` that is 1 mod ``2 * degree``.
    """
    check_ring(degree, moduli)
    limbs, half = len(moduli), degree // 2
    log_n = degree.bit_length() - 1
    q = np.array(moduli, dtype=np.uint64).reshape(limbs, 1, 1)
    brv = bit_reverse(degree)
    w_rows, winv_rows, n_inv = [], [], []
    for modulus in moduli:
        psi = primitive_root_of_unity(modulus, 2 * degree)
        w_rows.append(_powers(psi, degree, modulus)[brv])  # W[i] = psi^brv(i)
        winv_rows.append(_powers(pow(psi, -1, modulus), degree, modulus)[brv])
        n_inv.append(pow(degree, -1, modulus))
    w_all = np.stack(w_rows)
    winv_all = np.stack(winv_rows)
    n_inv_arr = np.array(n_inv, dtype=np.uint64).reshape(limbs, 1, 1)
    positions = np.arange(half, dtype=np.int64)
    forward_stages = []
    inverse_stages = []
    for s in range(log_n):
        m = 1 << s
        index = m + positions % m  # the twiddle of position k at stage s
        w = np.ascontiguousarray(w_all[:, index]).reshape(limbs, 1, half)
        forward_stages.append((w, shoup_factor(w, q)))
        winv = np.ascontiguousarray(winv_all[:, index]).reshape(limbs, 1, half)
        if s == 0:  # the inverse's last stage also multiplies by N^-1
            winv = winv * n_inv_arr % q
        inverse_stages.append((winv, shoup_factor(winv, q)))
    inverse_stages.reverse()
    for table in (*forward_stages, *inverse_stages):
        for array in table:
            array.setflags(write=False)
    n_inverse = (n_inv_arr, shoup_factor(n_inv_arr, q))
    for array in (q, *n_inverse):
        array.setflags(write=False)
    return NttTables(
        degree,
        moduli,
        q,
        tuple(forward_stages),
        tuple(inverse_stages),
        n_inverse,
    )


def _checked(tables: NttTables, a: np.ndarray) -> int:
    if (
        not isinstance(a, np.ndarray)
        or a.dtype != np.uint64
        or a.ndim != 3
        or a.shape[0] != len(tables.moduli)
        or a.shape[2] != tables.degree
    ):
        raise ConfigurationError(
            f"expected a uint64 array of shape ({len(tables.moduli)}, polys, {tables.degree})"
        )
    if not a.flags.writeable or a.strides[2] != 8:
        raise ConfigurationError("the array must be writeable with contiguous rows")
    return int(a.shape[1])


def _block(tables: NttTables) -> int:
    return max(1, BLOCK_ELEMENTS // (len(tables.moduli) * tables.degree))


def forward(tables: NttTables, a: np.ndarray) -> None:
    """Forward negacyclic NTT of every row of ``a`` (shape ``(limbs, polys, N)``), in place.

    Inputs must be reduced (row ``l`` below ``moduli[l]``); so are the outputs. Raises
    ConfigurationError for an array of the wrong dtype or shape.
    """
    polys = _checked(tables, a)
    limbs, n, h = len(tables.moduli), tables.degree, tables.degree // 2
    q = tables.q
    block = min(_block(tables), max(polys, 1))
    buffers = (np.empty((limbs, block, n), np.uint64), np.empty((limbs, block, n), np.uint64))
    t1, t2, t3 = (np.empty((limbs, block, h), np.uint64) for _ in range(3))
    last = len(tables.forward_stages) - 1
    for start in range(0, polys, block):
        p = min(block, polys - start)
        view = a[:, start : start + p]
        s1, s2, s3 = t1[:, :p], t2[:, :p], t3[:, :p]
        src = view
        for i, (w, w_shoup) in enumerate(tables.forward_stages):
            dst = view if i == last else buffers[i % 2][:, :p]
            u, v = src[..., :h], src[..., h:]
            pairs = dst.reshape(limbs, p, h, 2)
            mul_shoup(v, w, w_shoup, q, s2, s1)  # s2 = w V mod q
            np.add(u, q, out=s3)
            np.subtract(s3, s2, out=s3)  # U - wV + q in (0, 2q)
            np.add(u, s2, out=s2)  # U + wV in [0, 2q)
            np.subtract(s2, q, out=s1)
            np.minimum(s2, s1, out=pairs[..., 0])
            np.subtract(s3, q, out=s1)
            np.minimum(s3, s1, out=pairs[..., 1])
            src = dst


def inverse(tables: NttTables, a: np.ndarray) -> None:
    """Inverse of :func:`forward` on every row of ``a``, in place (same rules)."""
    polys = _checked(tables, a)
    limbs, n, h = len(tables.moduli), tables.degree, tables.degree // 2
    q = tables.q
    n_inv, n_inv_shoup = tables.n_inverse
    block = min(_block(tables), max(polys, 1))
    buffers = (np.empty((limbs, block, n), np.uint64), np.empty((limbs, block, n), np.uint64))
    t1, t2 = (np.empty((limbs, block, h), np.uint64) for _ in range(2))
    last = len(tables.inverse_stages) - 1
    for start in range(0, polys, block):
        p = min(block, polys - start)
        view = a[:, start : start + p]
        s1, s2 = t1[:, :p], t2[:, :p]
        src = view
        for i, (w, w_shoup) in enumerate(tables.inverse_stages):
            dst = view if i == last else buffers[i % 2][:, :p]
            pairs = src.reshape(limbs, p, h, 2)
            x, y = pairs[..., 0], pairs[..., 1]
            np.add(x, q, out=s2)
            np.subtract(s2, y, out=s2)  # X - Y + q in (0, 2q)
            np.subtract(s2, q, out=s1)
            np.minimum(s2, s1, out=s2)
            mul_shoup(s2, w, w_shoup, q, dst[..., h:], s1)
            np.add(x, y, out=s2)
            np.subtract(s2, q, out=s1)
            if i == last:
                np.minimum(s2, s1, out=s2)
                mul_shoup(s2, n_inv, n_inv_shoup, q, dst[..., :h], s1)
            else:
                np.minimum(s2, s1, out=dst[..., :h])
            src = dst
