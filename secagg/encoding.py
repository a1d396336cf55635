"""Fixed-point encoding of float vectors into Z_(2^b), with unbiased stochastic rounding.

Theory of operation. A value ``x`` is clipped to ``[-clip, clip]``, multiplied by ``scale``
and rounded to an integer ``k`` stochastically: ``k = floor(v) + 1`` with probability
``v - floor(v)``, else ``floor(v)``, so ``E[k] = v`` exactly (up to the 2^-52 resolution
of the uniforms). ``k`` is stored in two's complement (centered) form mod 2^b. A sum of
encodings decodes right as long as the true integer sum stays in the signed range
``[-(2^(b-1) - 1), 2^(b-1) - 1]``; the configuration refuses (``HeadroomError``) exactly the
settings in which ``max_clients`` encodings could leave it.

The bound. Every encoding this object produces is at most ``max_magnitude =
ceil(clip * (max(1, max_weight) * scale))`` in absolute value, computed in float64 in that
order: the encoders compute their values with the same roundings on smaller operands, and
correctly rounded multiplication is monotone, so the bound holds for the rounded floats too
(``max(1, .)`` because :meth:`FixedPoint.encode` is weight 1). The check is
``max_clients * max_magnitude <= 2^(b-1) - 1``.

Weighted averaging. ``encode_weighted(x, w)`` encodes ``w*x`` (at scale ``scale``) followed by
one element carrying ``w`` itself at scale ``clip * scale`` (so it obeys the same bound). The
aggregate reveals ``sum w*x`` and ``sum w`` only, never one client's weight.

Randomness. The rounding uniforms come from an AES-128-CTR keystream under a fresh
``os.urandom`` key per call (a CSPRNG from ``cryptography``, 5x faster than ``os.urandom``
for the megabytes a large vector needs): 64-bit words, top 52 bits as a float in [1, 2).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secagg.errors import ConfigurationError, HeadroomError, UsageError
from secagg.ring import check_bits, dtype_for_bits, value_mask
from secagg.secret import SecretHolder

__all__ = ["FixedPoint"]

_ONE_EXPONENT = np.uint64(0x3FF0_0000_0000_0000)  # float64 bit pattern of 1.0
# Elements per pipeline step: four float64/int64 scratch rows of this size fit in L2 cache.
_CHUNK = 16 * 1024
# AES-CTR keystream is the encryption of zeros; one shared immutable block of them.
_ZEROS = memoryview(bytes(8 * _CHUNK))


def _positive_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ConfigurationError(f"{name} must be a real number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result) or result <= 0.0:
        raise ConfigurationError(f"{name} must be finite and > 0, got {result!r}")
    return result


def _magnitude(clip: float, scale: float, max_weight: float) -> float:
    """The largest pre-rounding magnitude, rounded exactly as the encoders round."""
    return clip * (max(1.0, max_weight) * scale)


class _Rounder(SecretHolder, export="none: one rounder per call, never reused"):
    """Chunked clip-scale-round-wrap pipeline with scratch buffers that stay in L2 cache.

    One instance per call: it owns a fresh AES-CTR key (``os.urandom``), so rounding
    randomness is never reused across calls.
    """

    def __init__(self, chunk: int) -> None:
        self.work = np.empty(chunk, dtype=np.float64)
        self.floor = np.empty(chunk, dtype=np.float64)
        self.up = np.empty(chunk, dtype=np.bool_)
        self.ints = np.empty(chunk, dtype=np.int64)
        # update_into wants block_size - 1 spare bytes after the output.
        self.raw = bytearray(8 * chunk + 16)
        self.raw_view = memoryview(self.raw)
        self.uniform_words = np.frombuffer(self.raw, dtype=np.uint64, count=chunk)
        key = os.urandom(16)
        self.encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def uniforms_plus_one(self, count: int) -> np.ndarray:
        """``count`` fresh uniforms in [1, 2) on a 2^-52 grid (a view of scratch memory)."""
        self.encryptor.update_into(_ZEROS[: 8 * count], self.raw_view[: 8 * count + 15])
        words = self.uniform_words[:count]
        np.right_shift(words, np.uint64(12), out=words)
        np.bitwise_or(words, _ONE_EXPONENT, out=words)
        return words.view(np.float64)

    def run(
        self, values: np.ndarray, out: np.ndarray, *, clip: float, factor: float, bits: int
    ) -> None:
        """``out = wrap(round(clip(values) * factor))``; ConfigurationError on NaN/inf."""
        size = values.size
        work, floor, up, ints = (a[:size] for a in (self.work, self.floor, self.up, self.ints))
        np.copyto(work, values, casting="unsafe")
        if not (math.isfinite(work.min()) and math.isfinite(work.max())):
            raise ConfigurationError("x contains NaN or infinity")
        np.clip(work, -clip, clip, out=work)
        np.multiply(work, factor, out=work)
        np.floor(work, out=floor)
        np.subtract(work, floor, out=work)
        np.add(work, 1.0, out=work)  # 1 + frac: exact when |v| >= 1 (frac on the 2^-52 grid)
        np.less(self.uniforms_plus_one(size), work, out=up)
        np.add(floor, up, out=floor)
        np.copyto(ints, floor, casting="unsafe")
        wrapped = ints.view(np.uint64)
        if bits < 64:
            np.bitwise_and(wrapped, np.uint64(value_mask(bits)), out=wrapped)
        np.copyto(out, wrapped, casting="unsafe")  # to uint32: keeps the low bits


def _check_real_array(x: object) -> None:
    if not isinstance(x, np.ndarray):
        raise ConfigurationError("x must be a numpy array")
    if x.dtype.kind not in "fiu":
        raise ConfigurationError(f"x must be real numbers, got dtype {x.dtype}")


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point codec over Z_(2^bits) with a headroom guarantee for ``max_clients``.

    Raises (at construction):
        ConfigurationError: ``bits`` not an int in 1..64, ``max_clients`` not an int >= 1, or
            ``clip``, ``scale``, ``max_weight`` not finite and > 0.
        HeadroomError: ``max_clients * max_magnitude > 2^(bits-1) - 1``, i.e. a sum of
            ``max_clients`` encodings could wrap.
    """

    bits: int
    clip: float
    scale: float
    max_clients: int
    max_weight: float = 1.0

    def __post_init__(self) -> None:
        bits = check_bits(self.bits)
        object.__setattr__(self, "bits", bits)
        clients = self.max_clients
        if not isinstance(clients, int) or isinstance(clients, bool) or clients < 1:
            raise ConfigurationError(f"max_clients must be an int >= 1, got {clients!r}")
        object.__setattr__(self, "clip", _positive_finite("clip", self.clip))
        object.__setattr__(self, "scale", _positive_finite("scale", self.scale))
        object.__setattr__(self, "max_weight", _positive_finite("max_weight", self.max_weight))
        magnitude = _magnitude(self.clip, self.scale, self.max_weight)
        limit = (1 << (bits - 1)) - 1
        if not math.isfinite(magnitude) or clients * math.ceil(magnitude) > limit:
            raise HeadroomError(
                f"{clients} clients x max |encoding| {magnitude:.6g} exceed the signed range "
                f"2^{bits - 1} - 1 of Z_(2^{bits}): lower scale, clip or max_clients, or add bits"
            )

    @classmethod
    def for_precision(
        cls, *, bits: int, clip: float, max_clients: int, max_weight: float = 1.0
    ) -> FixedPoint:
        """The codec with the largest ``scale`` whose ``max_clients``-sum cannot wrap.

        Raises:
            ConfigurationError: bad parameters (see the class).
            HeadroomError: not even ``max_magnitude == 1`` fits ``max_clients`` times.
        """
        bits = check_bits(bits)
        if not isinstance(max_clients, int) or isinstance(max_clients, bool) or max_clients < 1:
            raise ConfigurationError(f"max_clients must be an int >= 1, got {max_clients!r}")
        clip_f = _positive_finite("clip", clip)
        weight_f = _positive_finite("max_weight", max_weight)
        per_client = ((1 << (bits - 1)) - 1) // max_clients
        if per_client < 1:
            raise HeadroomError(f"{max_clients} clients do not fit in {bits} bits at any scale")
        scale = per_client / (clip_f * max(1.0, weight_f))

        def fits(candidate: float) -> bool:
            magnitude = _magnitude(clip_f, candidate, weight_f)
            return math.isfinite(magnitude) and math.ceil(magnitude) <= per_client

        # The quotient is within a few ulps of the answer: step down until the rounded bound
        # fits, then up while the next float still fits, so the scale is the largest safe one.
        for _ in range(1024):
            if fits(scale):
                break
            scale = math.nextafter(scale, 0.0)
        for _ in range(1024):
            larger = math.nextafter(scale, math.inf)
            if not fits(larger):
                break
            scale = larger
        return cls(
            bits=bits, clip=clip_f, scale=scale, max_clients=max_clients, max_weight=weight_f
        )

    @property
    def max_magnitude(self) -> int:
        """The largest absolute value of any encoded element (after rounding)."""
        return math.ceil(_magnitude(self.clip, self.scale, self.max_weight))

    @property
    def dtype(self) -> np.dtype[np.unsignedinteger]:
        """Storage dtype of encodings: uint32 up to 32 bits, else uint64."""
        return dtype_for_bits(self.bits)

    # --- encoding ---

    def _encode_into(self, flat: np.ndarray, out: np.ndarray, factor: float) -> None:
        rounder = _Rounder(min(_CHUNK, max(flat.size, 1)))
        for start in range(0, flat.size, _CHUNK):
            stop = min(start + _CHUNK, flat.size)
            rounder.run(
                flat[start:stop], out[start:stop], clip=self.clip, factor=factor, bits=self.bits
            )

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Encode real ``x`` (any shape): clip, scale, stochastic rounding, mod 2^bits.

        Returns an array of the same shape and :attr:`dtype`, each element the centered
        residue of an integer of absolute value at most :attr:`max_magnitude`.

        Raises:
            ConfigurationError: ``x`` is not a real numpy array or holds NaN or infinity.
        """
        _check_real_array(x)
        out = np.empty(x.shape, dtype=self.dtype)
        self._encode_into(x.reshape(-1), out.reshape(-1), self.scale)
        return out

    def encode_weighted(self, x: np.ndarray, weight: float) -> np.ndarray:
        """Encode ``weight * x`` followed by one element carrying ``weight`` (len(x) + 1).

        Raises:
            ConfigurationError: ``x`` not a real 1-D array, NaN or infinity in ``x``, or
                ``weight`` not a finite real in [0, max_weight].
        """
        _check_real_array(x)
        if x.ndim != 1:
            raise ConfigurationError(f"x must be 1-D for weighted encoding, got shape {x.shape}")
        if isinstance(weight, bool) or not isinstance(
            weight, int | float | np.floating | np.integer
        ):
            raise ConfigurationError("weight must be a real number")
        w = float(weight)
        if not (math.isfinite(w) and 0.0 <= w <= self.max_weight):
            raise ConfigurationError(f"weight must be in [0, {self.max_weight}], got {w!r}")
        factor = w * self.scale
        out = np.empty(x.size + 1, dtype=self.dtype)
        # The trailing element encodes the value clip: after clipping and scaling it is
        # clip * (w * scale), the weight at scale clip * scale, rounded like the bound.
        flat = np.concatenate([x, [self.clip]]) if x.size < _CHUNK else x
        self._encode_into(flat, out[: flat.size], factor)
        if flat is x:
            self._encode_into(np.array([self.clip]), out[-1:], factor)
        return out

    # --- decoding ---

    def _centered(self, total: np.ndarray) -> np.ndarray:
        """int64 centered representatives of ``total`` mod 2^bits."""
        if not isinstance(total, np.ndarray) or total.dtype.kind not in "ui":
            raise ConfigurationError("total must be a numpy array of integers")
        values = total.astype(np.uint64)  # modular for signed inputs, as wanted
        if self.bits == 64:
            return values.view(np.int64)
        half = np.uint64(1 << (self.bits - 1))
        np.add(values, half, out=values)
        np.bitwise_and(values, np.uint64(value_mask(self.bits)), out=values)
        signed = values.view(np.int64)
        np.subtract(signed, np.int64(1 << (self.bits - 1)), out=signed)
        return signed

    def decode(self, total: np.ndarray) -> np.ndarray:
        """A sum (mod 2^bits) of at most ``max_clients`` encodings -> the float64 sum.

        The result is exact up to the rounding of each encoding (at most ``1/scale`` per
        client and element, zero on average). ``total`` is read modulo 2^bits.

        Raises:
            ConfigurationError: ``total`` is not an integer numpy array.
        """
        result: np.ndarray = self._centered(total) / self.scale
        return result

    def decode_weighted(self, total: np.ndarray) -> tuple[np.ndarray, float]:
        """A sum of weighted encodings -> (sum w*x / sum w, sum w).

        Raises:
            ConfigurationError: ``total`` is not a 1-D integer array with at least one element.
            UsageError: the decoded sum of weights is not positive (the mean is undefined).
        """
        if not isinstance(total, np.ndarray) or total.ndim != 1 or total.size < 1:
            raise ConfigurationError("total must be a 1-D array ending with the weight element")
        centered = self._centered(total)
        weight_sum = float(centered[-1]) / (self.clip * self.scale)
        if weight_sum <= 0.0:
            raise UsageError("the sum of weights is zero: the weighted mean is undefined")
        mean: np.ndarray = centered[:-1] / (self.scale * weight_sum)
        return mean, weight_sum
