"""Client encoding into Z_(2^b) and server decoding, for a :class:`secagg.dp.plan.DPPlan`.

Client (:func:`encode`, or :func:`quantize` for the integers before the modular reduction):
flatten -> zero-pad -> rotate (public per-round seed) -> clip to L2 norm ``clip`` -> scale ->
randomized rounding, conditioned on ``||z|| <= rounding_bound`` for a private plan -> add this
client's share of exact discrete noise -> reduce mod ``2^bits``. Every random bit of the
rounding and the noise comes from a private :class:`secagg.dp.randomness.RandomSource`. A
non-finite update raises :class:`secagg.dp.errors.NonFiniteUpdateError` so the caller can make
that client sit out; nothing is encoded from it.

Server (:func:`decode`): the masking protocol's modular sum of ``included`` encodings ->
signed range ``[-2^(b-1), 2^(b-1))`` -> divide by the scale -> inverse rotation -> trim the
padding -> (optionally) divide by ``included``; with a :class:`secagg.dp.ledger.PrivacyLedger`
the round is recorded and its :class:`secagg.dp.ledger.RoundPrivacy` returned.

Guarantee: if the true integer sum of every coordinate lies in the signed range (the plan
bounds the per-coordinate failure probability by ``wrap_probability``), the decoded sum equals
``sum of clipped updates + R^T(rounding + noise) / scale``, an unbiased estimate up to the
tiny bias of conditional rounding, with per-coordinate error variance
``plan.sum_error_variance(included)``.

Speed: after the rotation, rounding, noise and the ring reduction run chunk by chunk (64 Ki
values, so intermediates stay in cache), with per-thread scratch buffers
(:mod:`secagg.dp.workspace`). The conditional-rounding check sums the exact squared norm over
the chunks; a rejection redraws both rounding and noise, which leaves the kept noise
independent of the acceptance, so the distribution is that of the whole-vector path.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from secagg.dp.errors import NonFiniteUpdateError
from secagg.dp.ledger import PrivacyLedger, RoundPrivacy
from secagg.dp.plan import DPPlan
from secagg.dp.quantization import MAX_ROUNDING_TRIES, conditional_round, from_ring, to_ring
from secagg.dp.randomness import RandomSource
from secagg.dp.rotation import rotate_signed, rotation_sign_bytes, unrotate
from secagg.dp.sampling import noise_sampler
from secagg.dp.workspace import scratch
from secagg.errors import ConfigurationError, UsageError
from secagg.ring import check_values, dtype_for_bits, value_mask

__all__ = ["decode", "encode", "prepare", "quantize"]

_INT32_LIMIT = float(2**31 - 2)
_MAX_EXACT = float(2**53)
_INV_2_32 = 2.0**-32
_CHUNK = 1 << 16
"""Elements per chunk of the fused kernel: its float64 scratch (512 KiB) stays in cache."""


def prepare(plan: DPPlan) -> None:
    """Build (and cache) the plan's exact noise table now, so the first :func:`encode` is as
    fast as the others (milliseconds for typical plans; seconds for very wide noise)."""
    if plan.private:
        noise_sampler(plan.mechanism, plan.local_noise)


def _flatten(update: object, plan: DPPlan, signs: np.ndarray) -> tuple[np.ndarray, float]:
    """The update, sign-flipped by the rotation's signs and zero-padded, and its L2 norm."""
    if not isinstance(update, np.ndarray) or update.dtype.kind not in "fiu":
        raise ConfigurationError("an update must be a numpy array of a real numeric dtype")
    if update.size != plan.dim:
        raise ConfigurationError(f"the update has {update.size} values, the plan {plan.dim}")
    padded = scratch("dp.pipeline.padded", plan.padded_dim, np.float64)
    np.multiply(update.reshape(-1), signs[: plan.dim], out=padded[: plan.dim])
    padded[plan.dim :] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        squared = float(np.dot(padded, padded))
    if not math.isfinite(squared):
        raise NonFiniteUpdateError("the update holds a NaN or an infinity (or its norm overflows)")
    return padded, math.sqrt(squared)


def _rotated(update: np.ndarray, plan: DPPlan, round_seed: bytes) -> np.ndarray:
    """The update flattened, padded, rotated, clipped and scaled (this thread's scratch)."""
    size = plan.padded_dim
    padded, norm = _flatten(update, plan, rotation_sign_bytes(round_seed, size, plan.rotation))
    clip_factor = min(1.0, plan.clip / norm) if norm > 0 else 1.0
    return rotate_signed(
        padded, plan.rotation, gain=plan.scale * clip_factor,
        out=scratch("dp.pipeline.rotated", size, np.float64),
    )


def _value_bound(plan: DPPlan) -> float:
    """A bound on every rounded coordinate (before noise)."""
    if plan.private:
        assert plan.rounding_bound is not None
        return plan.rounding_bound  # checked exactly on the rounded vector
    return plan.scale * plan.clip * (1 + 1e-9) + math.sqrt(plan.padded_dim) + 1.0


def _chunkable(plan: DPPlan) -> bool:
    """Whether the fused, cache-sized kernel applies: ring values fit uint32, the squared norm
    bound is below 2^53 (exact float sums) and rounded values plus table noise fit int32."""
    if plan.bits > 32:
        return False
    reach = _value_bound(plan)
    if plan.private:
        if reach * reach >= _MAX_EXACT:
            return False
        reach += noise_sampler(plan.mechanism, plan.local_noise).half_width
    return reach < _INT32_LIMIT


def _finish_chunked(
    rotated: np.ndarray, plan: DPPlan, source: RandomSource, out: np.ndarray
) -> None:
    """Round (conditionally), add noise and store into ``out``, in cache-sized chunks.

    ``out`` is the ring dtype (values reduced mod ``2^bits``) or int64 (no reduction). Same
    distribution as the whole-vector path: rounding is redrawn until the squared norm of the
    whole rounded vector is at most ``floor(rounding_bound^2)``; the noise drawn with a
    rejected rounding is discarded, so the kept noise is independent of the acceptance.
    """
    size = rotated.size
    sampler = noise_sampler(plan.mechanism, plan.local_noise) if plan.private else None
    limit = math.floor(Fraction(_value_bound(plan)) ** 2) if plan.private else None
    magnitude = _value_bound(plan)
    reduce = out.dtype != np.dtype(np.int64)
    mask = np.uint32(value_mask(plan.bits))
    floats = scratch("dp.chunk.floats", _CHUNK, np.float64)
    for _ in range(MAX_ROUNDING_TRIES):
        norm_sq = 0.0
        for start in range(0, size, _CHUNK):
            stop = min(start + _CHUNK, size)
            count = stop - start
            chunk = floats[:count]
            words = source.scratch_words((count + 1) // 2).view(np.int32)[:count]
            np.multiply(words, _INV_2_32, out=chunk)
            np.add(chunk, rotated[start:stop], out=chunk)
            np.rint(chunk, out=chunk)
            if limit is not None:
                norm_sq += float(np.dot(chunk, chunk))
            target = out[start:stop]
            if sampler is None:
                noise: np.ndarray | None = None
                reach = magnitude
            else:
                noise, noise_bound = sampler.sample_scratch(count, source)
                reach = magnitude + noise_bound
            if not reduce:
                _add_into(chunk, noise, target)
            elif reach < _INT32_LIMIT:
                ints = scratch("dp.chunk.ints", count, np.int32)
                _add_into(chunk, noise, ints)
                if plan.bits == 32:
                    np.copyto(target, ints.view(np.uint32))
                else:
                    np.bitwise_and(ints.view(np.uint32), mask, out=target)
            else:  # a rare slow-path noise value beyond int32: reduce from int64
                wide = scratch("dp.chunk.wide", count, np.int64)
                _add_into(chunk, noise, wide)
                target[:] = to_ring(wide, plan.bits)
        if limit is None or norm_sq <= limit:
            return
    raise UsageError("conditional rounding failed too many times: is the input clipped?")


def _add_into(rounded: np.ndarray, noise: np.ndarray | None, out: np.ndarray) -> None:
    """``out = rounded (+ noise)``: integer-valued floats cast to an integer type (exact)."""
    if noise is None:
        np.copyto(out, rounded, casting="unsafe")
    else:
        np.add(rounded, noise, out=out, casting="unsafe")


def _quantize_whole(rotated: np.ndarray, plan: DPPlan, source: RandomSource) -> np.ndarray:
    """The whole-vector path (any plan): int32 or int64 in this thread's scratch."""
    size = plan.padded_dim
    bound = _value_bound(plan)
    rounded, _tries = conditional_round(
        rotated, bound if plan.private else None, source,
        out=scratch("dp.pipeline.rounded", size, np.float64),
    )
    magnitude = bound
    noise: np.ndarray | None = None
    if plan.private:
        noise, noise_bound = noise_sampler(plan.mechanism, plan.local_noise).sample_scratch(
            size, source
        )
        magnitude += noise_bound
    # int32 only when the magnitudes provably stay below 2^31.
    dtype = np.int32 if magnitude < _INT32_LIMIT else np.int64
    ints = scratch("dp.pipeline.ints", size, dtype)
    _add_into(rounded, noise, ints)
    return ints


def quantize(
    update: np.ndarray, plan: DPPlan, round_seed: bytes, *, rng: RandomSource | None = None
) -> np.ndarray:
    """The client's integer vector before the modular reduction (a new int64 array,
    ``padded_dim`` long): rotated, clipped, scaled, rounded and (private plans) noised.

    Raises :class:`NonFiniteUpdateError` on a non-finite update and
    :class:`ConfigurationError` on a wrong type, size or seed.
    """
    source = RandomSource() if rng is None else rng
    rotated = _rotated(update, plan, round_seed)
    if _chunkable(plan):
        out = np.empty(plan.padded_dim, dtype=np.int64)
        _finish_chunked(rotated, plan, source, out)
        return out
    return _quantize_whole(rotated, plan, source).astype(np.int64)


def encode(
    update: np.ndarray, plan: DPPlan, round_seed: bytes, *, rng: RandomSource | None = None
) -> np.ndarray:
    """The client's encoding: :func:`quantize` reduced mod ``2^bits`` into the ring's dtype
    (a new uint32 array for ``bits <= 32``), ready for any masking protocol with the same
    ``bits``.

    ``round_seed`` is the PUBLIC 32-byte seed of the round's rotation (the same for every
    client and the server). ``rng`` is for tests and benchmarks only; production code leaves
    it ``None`` (a fresh private source). Errors as :func:`quantize`.
    """
    source = RandomSource() if rng is None else rng
    rotated = _rotated(update, plan, round_seed)
    if _chunkable(plan):
        out = np.empty(plan.padded_dim, dtype=dtype_for_bits(plan.bits))
        _finish_chunked(rotated, plan, source, out)
        return out
    return to_ring(_quantize_whole(rotated, plan, source), plan.bits)


def decode(
    total: np.ndarray,
    plan: DPPlan,
    round_seed: bytes,
    included: int,
    *,
    ledger: PrivacyLedger | None = None,
    average: bool = True,
) -> tuple[np.ndarray, RoundPrivacy | None]:
    """The estimate of the mean (``average=True``) or sum of ``included`` clients' updates.

    ``total`` is the modular sum of their encodings (length ``padded_dim``, values in
    ``[0, 2^bits)``). With ``ledger`` (private plans) the round is recorded there and its
    :class:`RoundPrivacy` returned; without it the report is ``None``. Raises
    :class:`ConfigurationError` on a malformed total, a bad count or seed, or a ledger of
    another plan.
    """
    if isinstance(included, bool) or not isinstance(included, int) or included < 1:
        raise ConfigurationError(f"included must be an int >= 1, got {included!r}")
    check_values(total, plan.bits, plan.padded_dim, "the aggregate")
    if ledger is not None and ledger.plan != plan:
        raise ConfigurationError("the ledger tracks a different plan")
    signed = from_ring(total, plan.bits).astype(np.float64)
    gain = 1.0 / plan.scale
    if average:
        gain /= included
    full = unrotate(signed, round_seed, plan.rotation, gain=gain)
    estimate = full[: plan.dim].copy() if plan.dim < plan.padded_dim else full
    report = ledger.record(included) if ledger is not None else None
    return estimate, report
