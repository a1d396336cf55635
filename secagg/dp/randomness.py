"""Private randomness for noise and rounding: AES-128-CTR keystream keyed from ``os.urandom``.

Theory of operation. A :class:`RandomSource` owns one :class:`secagg.prg.Prg` stream of 64-bit
words whose 32-byte seed comes from ``os.urandom`` (a CSPRNG), so every random bit a sampler
uses is a keystream bit: nothing here touches NumPy's or Python's random modules. Words are written
with ``update_into`` into reused buffers, so drawing millions of them costs a few milliseconds.

Everything built on top consumes *uniform integers* and compares them with integer
thresholds, so a distribution is exact whenever its thresholds are:

* :meth:`RandomSource.uniform_below` returns uniform integers in ``[0, m)`` for per-element
  ``m`` by rejection: a 63-bit word ``w`` is kept only if ``w < floor(2^63 / m) * m``, and
  then ``w mod m`` is exactly uniform (no modular bias). Rejected positions are redrawn.
* :meth:`RandomSource.randbelow` does the same for one arbitrarily large Python int.

A ``seed`` may be passed for reproducible tests and benchmarks; production callers never pass
one (the default draws a fresh seed). ``repr`` never shows the seed or the key.
"""

from __future__ import annotations

import os
from typing import NoReturn

import numpy as np

from secagg.dp.workspace import scratch
from secagg.errors import ConfigurationError, UsageError
from secagg.prg import SEED_BYTES, Prg

__all__ = ["RandomSource"]

_DOMAIN = b"secagg/dp/private-randomness/v1"
_TWO63 = np.uint64(1 << 63)
_MAX_UNIFORM_BOUND = 1 << 62


class RandomSource:
    """A private stream of uniform 64-bit words (AES-128-CTR from a fresh ``os.urandom`` seed).

    ``RandomSource()`` is what production code uses. ``RandomSource(seed=...)`` (32 bytes) makes
    the stream reproducible, for tests and benchmarks only. Not thread-safe: give each thread
    its own source.
    """

    __slots__ = ("_prg",)

    def __init__(self, seed: bytes | None = None) -> None:
        if seed is None:
            seed = os.urandom(SEED_BYTES)
        elif not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise ConfigurationError(f"a RandomSource seed must be {SEED_BYTES} bytes")
        self._prg = Prg(seed, domain=_DOMAIN, bits=64)

    @property
    def words_used(self) -> int:
        """How many 64-bit words this source has produced so far."""
        return self._prg.position

    def fill(self, out: np.ndarray) -> None:
        """Overwrite the C-contiguous uint64 array ``out`` with fresh uniform words."""
        self._prg.fill(out)

    def words(self, count: int) -> np.ndarray:
        """A new uint64 array of ``count`` uniform words."""
        out = np.empty(count, dtype=np.uint64)
        self._prg.fill(out)
        return out

    def scratch_words(self, count: int) -> np.ndarray:
        """``count`` uniform words in a per-thread buffer reused by the next call.

        The view is valid until the next ``scratch_words`` call in this thread; callers
        consume it at once. Reusing the buffer avoids page faults on every large draw.
        """
        view = scratch("dp.random.words", count, np.uint64)
        self._prg.fill(view)
        return view

    def uniform_below(self, bound: np.ndarray) -> np.ndarray:
        """Independent uniform integers ``0 <= r[i] < bound[i]`` (int64), exactly uniform.

        ``bound`` is an integer array with every value in ``[1, 2^62]``; otherwise
        :class:`ConfigurationError`. Uses rejection of the top partial range, never ``w % m``
        alone.
        """
        m = np.asarray(bound)
        if m.dtype.kind not in "iu":
            raise ConfigurationError("uniform_below needs an integer array of bounds")
        if m.size and (int(m.min()) < 1 or int(m.max()) > _MAX_UNIFORM_BOUND):
            raise ConfigurationError("uniform_below bounds must lie in [1, 2^62]")
        m64 = m.astype(np.uint64).reshape(-1)
        out = np.empty(m64.size, dtype=np.int64)
        pending = np.arange(m64.size)
        while pending.size:
            mp = m64[pending]
            w = self.words(pending.size) >> np.uint64(1)
            limit = (_TWO63 // mp) * mp
            ok = w < limit
            out[pending[ok]] = (w[ok] % mp[ok]).astype(np.int64)
            pending = pending[~ok]
        return out.reshape(m.shape)

    def bits(self, count: int) -> int:
        """A uniform Python int of ``count`` bits (``0 <= r < 2^count``)."""
        if count <= 0:
            return 0
        nwords = (count + 63) // 64
        value = int.from_bytes(self.words(nwords).tobytes(), "little")
        return value >> (nwords * 64 - count)

    def randbelow(self, bound: int) -> int:
        """A uniform Python int in ``[0, bound)`` for any ``bound >= 1`` (rejection sampling)."""
        if bound < 1:
            raise ConfigurationError("randbelow needs a bound of at least 1")
        k = (bound - 1).bit_length()
        while True:
            r = self.bits(k)
            if r < bound:
                return r

    def __repr__(self) -> str:
        return f"RandomSource(words_used={self.words_used})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise UsageError("a RandomSource holds key material and cannot be pickled")
