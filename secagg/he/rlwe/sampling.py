"""RLWE samplers whose every bit comes from the library's AES-CTR PRG (:mod:`secagg.prg`).

Theory of operation. A :class:`Sampler` holds one 32-byte seed and a label; each kind of
draw reads its own PRG stream (domain ``label || kind``), so the draws of one kind do not
depend on how many of another kind came first. Seeds come from ``os.urandom``
(:meth:`Sampler.fresh`) for anything secret, or are public (:meth:`Sampler.public`) for the
common random polynomial every party must expand identically. All draws are deterministic
functions of (seed, label, the sequence of calls), which the tests rely on.

Distributions:

* :meth:`Sampler.uniform`: uniform residues mod each ``q_l``, by rejection of 32-bit words
  ``>= q_l`` (never ``% q``, which would be biased); with ``q_l > 2^31`` (in practice
  ``q_l > 2^32 - 2^26``) under 2 % of the words are rejected.
* :meth:`Sampler.ternary`: uniform on {-1, 0, 1}: a byte ``b < 255`` gives ``b mod 3 - 1``
  (255 = 3 * 85, so the residue is exactly uniform); bytes equal to 255 are rejected.
* :meth:`Sampler.binomial`: centered binomial ``popcount(w_1) - popcount(w_2)`` over two
  disjoint ``eta``-bit fields of a 64-bit word (Kyber's error distribution).
* :meth:`Sampler.wide`: uniform integers in ``[-2^bits, 2^bits)`` for ``bits`` up to 126
  (smudging noise), returned directly as residues: ``bits + 1`` random bits from one or two
  64-bit words, reduced mod each ``q_l`` exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from secagg.errors import ConfigurationError
from secagg.prg import SEED_BYTES, Prg
from secagg.secret import SecretHolder

__all__ = ["MAX_WIDE_BITS", "Sampler", "popcount"]

MAX_WIDE_BITS = 126
_U64 = np.uint64
_MAX_LABEL = 200


def popcount(words: np.ndarray) -> np.ndarray:
    """The number of set bits of every uint64 word (int64)."""
    counter = getattr(np, "bitwise_count", None)
    if counter is not None:
        return np.asarray(counter(words), dtype=np.int64)
    # SWAR popcount for NumPy < 2.0.  # pragma: no cover - NumPy 2 has bitwise_count
    w = words - ((words >> _U64(1)) & _U64(0x5555555555555555))
    w = (w & _U64(0x3333333333333333)) + ((w >> _U64(2)) & _U64(0x3333333333333333))
    w = (w + (w >> _U64(4))) & _U64(0x0F0F0F0F0F0F0F0F)
    return np.asarray((w * _U64(0x0101010101010101)) >> _U64(56), dtype=np.int64)


class Sampler(SecretHolder, export="none: build a new Sampler from its seed"):
    """Draws RLWE randomness from the AES-CTR streams of one seed.

    Never shows or pickles its seed (a secret one is the whole secret). Raises
    ConfigurationError for a seed that is not 32 bytes or a label outside 1..200 bytes.
    """

    __slots__ = ("_label", "_seed", "_streams")

    def __init__(self, seed: bytes, label: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise ConfigurationError(f"a sampler seed must be {SEED_BYTES} bytes")
        if not isinstance(label, bytes) or not 1 <= len(label) <= _MAX_LABEL:
            raise ConfigurationError(f"a sampler label must be 1..{_MAX_LABEL} bytes")
        self._seed = seed
        self._label = label
        self._streams: dict[bytes, Prg] = {}

    @classmethod
    def fresh(cls, label: bytes) -> Sampler:
        """A sampler seeded from ``os.urandom``: for secrets."""
        return cls(os.urandom(SEED_BYTES), label)

    @classmethod
    def public(cls, seed: bytes, label: bytes) -> Sampler:
        """A sampler of a public seed: for the common random polynomial."""
        return cls(seed, label)

    def __repr__(self) -> str:
        return f"Sampler(label={self._label!r})"

    def _stream(self, kind: bytes, bits: int) -> Prg:
        stream = self._streams.get(kind)
        if stream is None:
            stream = Prg(self._seed, domain=self._label + b"/" + kind, bits=bits)
            self._streams[kind] = stream
        return stream

    def _words32(self, kind: bytes, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.uint32)
        self._stream(kind, 32).fill(out)
        return out

    def _words64(self, kind: bytes, count: int) -> np.ndarray:
        out = np.empty(count, dtype=_U64)
        self._stream(kind, 64).fill(out)
        return out

    def uniform(self, moduli: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
        """Uniform residues: shape ``(len(moduli), *shape)``, row ``l`` uniform mod ``q_l``."""
        count = int(np.prod(shape))
        out = np.empty((len(moduli), count), dtype=_U64)
        for limb, q in enumerate(moduli):
            if not 1 << 31 < q < 1 << 32:
                raise ConfigurationError("uniform residues need moduli in (2^31, 2^32)")
            filled = 0
            while filled < count:
                need = count - filled
                words = self._words32(b"uniform", need + need // 16 + 64)
                kept = words[words < q][:need]
                out[limb, filled : filled + kept.size] = kept
                filled += kept.size
        return out.reshape(len(moduli), *shape)

    def ternary(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform on {-1, 0, 1}: int64 array of ``shape``."""
        count = int(np.prod(shape))
        out = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            need = count - filled
            raw = self._words32(b"ternary", (need + need // 64 + 64 + 3) // 4).view(np.uint8)
            kept = raw[raw < 255][:need]
            out[filled : filled + kept.size] = kept % 3
            filled += kept.size
        out -= 1
        return out.reshape(shape)

    def binomial(self, shape: tuple[int, ...], eta: int) -> np.ndarray:
        """Centered binomial B(2 eta, 1/2) - eta, ``1 <= eta <= 32``: int64 of ``shape``."""
        if not isinstance(eta, int) or not 1 <= eta <= 32:
            raise ConfigurationError("eta must be an int in 1..32")
        words = self._words64(b"binomial", int(np.prod(shape)))
        mask = _U64((1 << eta) - 1)
        plus = popcount(words & mask)
        minus = popcount((words >> _U64(eta)) & mask)
        result: np.ndarray = (plus - minus).reshape(shape)
        return result

    def wide(self, moduli: Sequence[int], shape: tuple[int, ...], bits: int) -> np.ndarray:
        """Residues ``(len(moduli), *shape)`` of integers uniform in ``[-2^bits, 2^bits)``,
        ``1 <= bits <= 126``."""
        if not isinstance(bits, int) or not 1 <= bits <= MAX_WIDE_BITS:
            raise ConfigurationError(f"bits must be an int in 1..{MAX_WIDE_BITS}")
        count = int(np.prod(shape))
        total = bits + 1
        low = self._words64(b"wide", count)
        if total < 64:
            low &= _U64((1 << total) - 1)
        high = None
        if total > 64:
            high = self._words64(b"wide-high", count)
            if total < 128:
                high &= _U64((1 << (total - 64)) - 1)
        out = np.empty((len(moduli), count), dtype=_U64)
        scratch = np.empty(count, dtype=_U64)
        for limb, q in enumerate(moduli):
            row = out[limb]
            np.remainder(low, _U64(q), out=row)
            if high is not None:
                np.remainder(high, _U64(q), out=scratch)
                np.multiply(scratch, _U64((1 << 64) % q), out=scratch)  # < q^2: exact
                np.add(scratch, row, out=scratch)  # < q^2 + q <= 2^64
                np.remainder(scratch, _U64(q), out=row)
            # Subtract 2^bits: add q - (2^bits mod q), then one conditional subtraction.
            np.add(row, _U64(q - pow(2, bits, q)), out=row)
            np.subtract(row, _U64(q), out=scratch)
            np.minimum(row, scratch, out=row)
        return out.reshape(len(moduli), *shape)
