"""Seeded random rotations that flatten a vector before quantization, and their exact inverses.

Theory of operation. A client's update ``x`` (length ``dim``) is zero-padded to
``n = padded_length(dim, kind)`` (a power of two for Hadamard, even for DFT) and rotated by
an orthogonal matrix that every client and the server derive from a PUBLIC per-round seed:

* ``"hadamard"``: ``R x = H D x / sqrt(n)`` with ``D`` a diagonal of random signs and ``H`` the
  n x n Walsh-Hadamard matrix. Each output coordinate is a Rademacher sum with coefficients
  ``+-x_i / sqrt(n)``, so (Hoeffding) it is sub-Gaussian with variance proxy ``||x||^2 / n``:
  the flatness constant is ``rho = 1``.
* ``"dft"``: the signed vector is read as ``n/2`` complex numbers (first half real parts,
  second half imaginary parts) and transformed by the unitary DFT (``norm="ortho"``); output is
  real parts then imaginary parts. Each output coordinate is a Rademacher sum with proxy at most
  ``2 ||x||^2 / n``: ``rho = 2``. Faster than the Hadamard transform in NumPy.

Both are orthogonal, so they preserve the L2 norm (up to float rounding) and are inverted by
the transpose: ``unrotate(rotate(x)) == x``. The signs are the bits of the AES-128-CTR
keystream of ``secagg.prg`` keyed by ``HKDF(seed, "secagg/dp/rotation/v1/<kind>")``: the
rotation is public (the server needs it to rotate back); privacy never depends on it.

Speed: the Hadamard transform factors as a Kronecker product ``H_n = H_a (x) H_b (x) ...`` of
small (at most 16 x 16) Hadamard matrices, each applied to one axis of the reshaped vector by a
BLAS matrix product: O(n log n) work in five passes over memory (n = 2^20) instead of 20.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from secagg.dp.workspace import scratch
from secagg.errors import ConfigurationError
from secagg.prg import SEED_BYTES, derive_stream_key, keystream_encryptor, keystream_into

__all__ = [
    "FLATNESS",
    "ROTATIONS",
    "fwht",
    "padded_length",
    "rotate",
    "rotate_signed",
    "rotation_sign_bytes",
    "rotation_signs",
    "unrotate",
]

ROTATIONS = ("hadamard", "dft")
FLATNESS = {"hadamard": 1.0, "dft": 2.0}
"""Sub-Gaussian variance proxy of a rotated coordinate, in units of ``||x||^2 / n``."""

_MAX_LOG2 = 30
_FACTOR_BITS = 4


def padded_length(dim: int, kind: str = "hadamard") -> int:
    """The rotation length for ``dim`` values: for ``"hadamard"`` the smallest power of two
    >= max(dim, 2); for ``"dft"`` the smallest even number >= max(dim, 2) (any length works
    for the FFT, so a DFT rotation pads by at most one value).

    Raises :class:`ConfigurationError` unless ``1 <= dim <= 2^30`` and ``kind`` is known.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 1 << _MAX_LOG2:
        raise ConfigurationError(f"dim must be an int in [1, 2^{_MAX_LOG2}], got {dim!r}")
    if kind == "hadamard":
        return max(2, 1 << (dim - 1).bit_length())
    if kind == "dft":
        return max(2, dim + (dim % 2))
    raise ConfigurationError(f"rotation must be one of {ROTATIONS}, got {kind!r}")


def _check_length(kind: str, n: int) -> None:
    if n < 2 or (n & (n - 1) if kind == "hadamard" else n % 2):
        raise ConfigurationError(
            f"a {kind} rotation needs a length that is "
            f"{'a power of two' if kind == 'hadamard' else 'even'} and >= 2, got {n}"
        )


def _check(kind: str, seed: bytes) -> None:
    if kind not in ROTATIONS:
        raise ConfigurationError(f"rotation must be one of {ROTATIONS}, got {kind!r}")
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ConfigurationError(f"the round seed must be {SEED_BYTES} bytes")


def rotation_sign_bytes(seed: bytes, length: int, kind: str = "hadamard") -> np.ndarray:
    """The rotation's signs as int8 (+-1) in this thread's scratch buffer, valid until the
    next call (see :func:`rotation_signs`)."""
    _check(kind, seed)
    key = derive_stream_key(seed, b"secagg/dp/rotation/v1/" + kind.encode())
    raw = scratch("dp.rotation.raw", (length + 7) // 8, np.uint8)
    keystream_into(keystream_encryptor(key), raw.data.cast("B"))
    signs = scratch("dp.rotation.signs", length, np.int8)
    signs[:] = np.unpackbits(raw, count=length, bitorder="little").view(np.int8)
    signs *= -2
    signs += 1
    return signs


def rotation_signs(seed: bytes, length: int, kind: str = "hadamard") -> np.ndarray:
    """The ``length`` random signs (a new float64 array of +-1) of ``kind``'s rotation.

    Sign ``i`` is ``-1`` iff bit ``i`` of the AES-128-CTR keystream of
    ``HKDF(seed, "secagg/dp/rotation/v1/<kind>")`` is set (little-endian bits in each byte).
    """
    return rotation_sign_bytes(seed, length, kind).astype(np.float64)


@functools.cache
def _hadamard(bits: int) -> np.ndarray:
    h = np.ones((1, 1))
    for _ in range(bits):
        h = np.block([[h, h], [h, -h]])
    return h


def _factors(log2n: int) -> list[int]:
    count = max(1, -(-log2n // _FACTOR_BITS))
    base, extra = divmod(log2n, count)
    return [base + 1] * extra + [base] * (count - extra)


def fwht(a: np.ndarray, *, gain: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """``gain * H a``: the unnormalized Walsh-Hadamard transform of a float64 vector.

    Returns ``out`` (float64, same length, not ``a``) or a new array. ``a.size`` must be a
    power of two (>= 2); otherwise :class:`ConfigurationError`. ``H @ H == n I``, so
    ``fwht(fwht(a)) == n a``. ``gain`` is folded into the last factor matrix (free).
    Intermediate steps use this thread's scratch buffers.
    """
    n = a.size
    if n < 2 or n & (n - 1):
        raise ConfigurationError("fwht needs a length that is a power of two >= 2")
    result = np.empty(n, dtype=np.float64) if out is None else out.reshape(-1)
    src = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
    factors = _factors(n.bit_length() - 1)
    bufs = (scratch("dp.fwht.0", n, np.float64), scratch("dp.fwht.1", n, np.float64))
    left, rest = 1, n
    for step, bits in enumerate(factors):
        size = 1 << bits
        rest //= size
        last = step == len(factors) - 1
        dst = result if last else bufs[step % 2]
        h = _hadamard(bits)
        if last and gain != 1.0:
            h = h * gain
        if rest == 1:
            np.matmul(src.reshape(left, size), h, out=dst.reshape(left, size))
        else:
            np.matmul(h, src.reshape(left, size, rest), out=dst.reshape(left, size, rest))
        src = dst
        left *= size
    return result


def rotate_signed(
    signed: np.ndarray, kind: str, *, gain: float = 1.0, out: np.ndarray | None = None
) -> np.ndarray:
    """The transform half of :func:`rotate`: ``gain * R x`` from ``signed = D x`` (the signs
    already applied). Returns ``out`` or a new array; ``signed`` is not modified."""
    n = signed.size
    _check_length(kind, n)
    if kind == "hadamard":
        return fwht(signed, gain=gain / math.sqrt(n), out=out)
    if kind != "dft":
        raise ConfigurationError(f"rotation must be one of {ROTATIONS}, got {kind!r}")
    half = n // 2
    flat = signed.reshape(-1)
    spectrum = np.fft.fft(flat[:half] + 1j * flat[half:], norm="ortho")
    result = np.empty(n, dtype=np.float64) if out is None else out
    np.multiply(spectrum.real, gain, out=result[:half])
    np.multiply(spectrum.imag, gain, out=result[half:])
    return result


def rotate(
    x: np.ndarray,
    seed: bytes,
    kind: str = "hadamard",
    *,
    gain: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``gain * R x`` for a float64 vector of a length :func:`padded_length` gives.

    Returns ``out`` (float64, same length, distinct from ``x``) or a new array; ``x`` is not
    modified. Orthogonal: ``||R x|| == ||x||`` up to rounding. ``gain`` is folded into the
    transform's normalization (no extra pass). Raises :class:`ConfigurationError` on a bad
    kind, seed or length.
    """
    _check(kind, seed)
    n = x.size
    _check_length(kind, n)
    signed = scratch("dp.rotation.signed", n, np.float64)
    np.multiply(np.asarray(x, dtype=np.float64).reshape(-1), rotation_sign_bytes(seed, n, kind),
                out=signed)
    return rotate_signed(signed, kind, gain=gain, out=out)


def unrotate(
    y: np.ndarray, seed: bytes, kind: str = "hadamard", *, gain: float = 1.0
) -> np.ndarray:
    """``gain * R^T y``: the inverse of :func:`rotate` (up to float rounding), a new array."""
    _check(kind, seed)
    n = y.size
    _check_length(kind, n)
    values = np.asarray(y, dtype=np.float64).reshape(-1)
    if kind == "hadamard":
        out = fwht(values, gain=gain / math.sqrt(n))
    else:
        half = n // 2
        signal = np.fft.ifft(values[:half] + 1j * values[half:], norm="ortho")
        out = np.concatenate((signal.real, signal.imag))
        if gain != 1.0:
            out *= gain
    out *= rotation_sign_bytes(seed, n, kind)
    return out
