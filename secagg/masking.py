"""Many PRG masks added into (or subtracted from) one accumulator, chunked and threaded.

Theory of operation. Masking a vector with ``k`` seeds costs ``k`` keystream expansions and
``k`` additions; done naively (one full-length mask vector per seed) the working set is the
whole vector and every pass goes to main memory. Here the accumulator is walked in chunks of
``_CHUNK_BYTES``: for each chunk, each seed's keystream is written with ``update_into`` into
one reused chunk buffer, viewed with ``np.frombuffer`` semantics (a fixed ndarray over the
buffer) and added or subtracted into the chunk of the accumulator with ``out=``. The chunk of
the accumulator and the keystream buffer stay in L2 across all seeds. Storage words wrap
modulo 2^32 (2^64); a single final AND reduces to 2^bits, which is correct because 2^bits
divides the storage modulus.

Threads. The vector is split into contiguous, balanced ranges, one per thread; each
thread has its own encryptors started at its range's counter offset and its own buffer.
``update_into`` and numpy ufuncs release the GIL, so ranges run in parallel.

Input range. :func:`mask_input` checks that its input lies in [0, 2^bits)
(:func:`secagg.ring.check_values`, one pass) for standalone callers;
:func:`mask_checked_input` is the same masking for a caller that has already checked its
input at its own edge (a protocol client does, once, when it takes its input), so the
vector is not scanned twice.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from secagg.errors import ConfigurationError
from secagg.prg import SEED_BYTES, derive_stream_key, domain, keystream_encryptor
from secagg.ring import check_bits, check_values, dtype_for_bits, value_mask

__all__ = ["apply_masks", "mask_checked_input", "mask_input", "pairwise_sign"]

PAIRWISE_PURPOSE = "pairwise"
SELF_PURPOSE = "self"

# 256 KiB of keystream per seed and chunk: large enough that the two calls per seed and
# chunk (update_into, np.add) amortize their Python overhead and, with threads, the GIL
# hand-off around them (measured: 32-64 KiB chunks make 2 threads slower than 1); small
# enough that the accumulator chunk plus the keystream buffer (512 KiB) stay in L2.
_CHUNK_BYTES = 256 * 1024
# Live encryptors per thread at a time (each holds an expanded AES key schedule).
_SEED_BATCH = 256
# Thread ranges start on multiples of this many elements (whole AES blocks, no skipping).
_RANGE_ALIGN = 1024
_ZEROS = memoryview(bytes(_CHUNK_BYTES))
_LITTLE_ENDIAN = sys.byteorder == "little"
_MAX_AUTO_THREADS = 8
# Below this much work (elements x seeds) thread hand-off costs more than it saves.
_MIN_PARALLEL_WORK = 1 << 21
_MAX_ID = 2**64 - 1

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _reset_pool_after_fork() -> None:
    # Worker threads do not survive fork(); a child must build its own pool.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="secagg-mask")
        return _pool


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def pairwise_sign(own_id: int, peer_id: int) -> int:
    """+1 if ``own_id < peer_id`` else -1: the sign of the mask s_uv in client u's input.

    Raises :class:`ConfigurationError` on equal ids or ids that are not ints.
    """
    own_id = _check_id(own_id, "own_id")
    peer_id = _check_id(peer_id, "peer_id")
    if own_id == peer_id:
        raise ConfigurationError("a client has no pairwise mask with itself")
    return 1 if own_id < peer_id else -1


def _check_id(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_ID:
        raise ConfigurationError(f"{name} must be an int in [0, 2^64), got {value!r}")
    return value


def _check_seed_list(seeds: object, name: str) -> list[bytes]:
    # A bare bytes object is a Sequence of ints: a classic slip (add_seeds=seed).
    if isinstance(seeds, (bytes, bytearray, str)) or not isinstance(seeds, Sequence):
        raise ConfigurationError(f"{name} must be a sequence of {SEED_BYTES}-byte seeds")
    checked: list[bytes] = []
    for seed in seeds:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise ConfigurationError(f"every seed in {name} must be {SEED_BYTES} bytes")
        checked.append(seed)
    return checked


def _check_accumulator(acc: object, bits: int) -> np.ndarray:
    dtype = dtype_for_bits(bits)
    if not isinstance(acc, np.ndarray) or acc.dtype != dtype:
        raise ConfigurationError(f"acc must be a numpy array of dtype {dtype} for bits={bits}")
    if not acc.flags.c_contiguous or not acc.flags.writeable:
        raise ConfigurationError("acc must be C-contiguous and writeable")
    return acc.reshape(-1)


def _plan_threads(threads: object, elements: int, seeds: int) -> int:
    """The number of ranges to run in parallel; validates ``threads``."""
    blocks = max(1, -(-elements // _RANGE_ALIGN))
    if threads is None:
        if elements * seeds < _MIN_PARALLEL_WORK:
            return 1
        # At least 16 aligned blocks (64 KiB of uint32) per thread, or hand-off dominates.
        return max(1, min(_available_cpus(), _MAX_AUTO_THREADS, blocks // 16))
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigurationError(f"threads must be None or an int >= 1, got {threads!r}")
    return min(threads, blocks)


def _accumulate_range(
    flat: np.ndarray, start: int, stop: int, add_keys: Sequence[bytes], sub_keys: Sequence[bytes]
) -> None:
    """flat[start:stop] += sum keystream(add) - sum keystream(sub), storage-word wrap-around."""
    itemsize = flat.dtype.itemsize
    chunk_elements = _CHUNK_BYTES // itemsize
    buffer = np.empty(chunk_elements, dtype=flat.dtype)
    buffer_bytes = buffer.data.cast("B")
    swap = not _LITTLE_ENDIAN
    signed_keys = [(key, False) for key in add_keys] + [(key, True) for key in sub_keys]
    # Seeds go in batches so that a server regenerating masks for 10^5 pairs holds a bounded
    # number of live encryptors; each batch re-reads the accumulator chunk once, which is
    # negligible next to the batch's keystream.
    for batch_start in range(0, len(signed_keys), _SEED_BATCH):
        batch = signed_keys[batch_start : batch_start + _SEED_BATCH]
        encryptors = [(keystream_encryptor(key, start * itemsize), sub) for key, sub in batch]
        for first in range(start, stop, chunk_elements):
            count = min(chunk_elements, stop - first)
            target = flat[first : first + count]
            if count == chunk_elements:
                words, word_bytes, zeros = buffer, buffer_bytes, _ZEROS
            else:
                words = buffer[:count]
                word_bytes = buffer_bytes[: count * itemsize]
                zeros = _ZEROS[: count * itemsize]
            for encryptor, subtract in encryptors:
                encryptor.update_into(zeros, word_bytes)
                if swap:  # pragma: no cover - big-endian hosts only
                    words.byteswap(inplace=True)
                if subtract:
                    np.subtract(target, words, out=target)
                else:
                    np.add(target, words, out=target)


def _apply_stream_keys(
    flat: np.ndarray,
    bits: int,
    add_keys: Sequence[bytes],
    sub_keys: Sequence[bytes],
    threads: int | None,
) -> None:
    """Add/subtract the keystreams of already-derived AES keys into ``flat``, then reduce."""
    elements = flat.size
    workers = _plan_threads(threads, elements, len(add_keys) + len(sub_keys))
    if elements and (add_keys or sub_keys):
        if workers == 1:
            _accumulate_range(flat, 0, elements, add_keys, sub_keys)
        else:
            blocks = -(-elements // _RANGE_ALIGN)
            bounds = [
                min(elements, (blocks * i // workers) * _RANGE_ALIGN) for i in range(workers + 1)
            ]
            pool = _executor()
            futures: list[Future[None]] = [
                pool.submit(_accumulate_range, flat, bounds[i], bounds[i + 1], add_keys, sub_keys)
                for i in range(1, workers)
            ]
            try:
                # The calling thread takes the first range instead of idling.
                _accumulate_range(flat, bounds[0], bounds[1], add_keys, sub_keys)
            finally:
                for future in futures:
                    future.result()
    if bits not in (32, 64):
        np.bitwise_and(flat, flat.dtype.type(value_mask(bits)), out=flat)


def apply_masks(
    acc: np.ndarray,
    *,
    bits: int,
    domain: bytes,
    add_seeds: Sequence[bytes] = (),
    sub_seeds: Sequence[bytes] = (),
    threads: int | None = None,
) -> None:
    """``acc += sum PRG(add) - sum PRG(sub)  (mod 2^bits)``, in place.

    ``acc`` must be a writeable C-contiguous array of dtype ``dtype_for_bits(bits)`` (any
    shape; elements are taken in C order). The result is identical for every ``threads``
    value. No mask vector is allocated: the work runs in 256 KiB chunks. ``threads=None``
    picks ``min(cpus, 8)`` threads for large work and 1 for small. Every element of ``acc``
    is < 2^bits on return. Raises :class:`ConfigurationError` on a bad accumulator, bit width,
    domain, seed (not 32 bytes) or thread count; ``acc`` is untouched then.
    """
    bits = check_bits(bits)
    flat = _check_accumulator(acc, bits)
    adds = _check_seed_list(add_seeds, "add_seeds")
    subs = _check_seed_list(sub_seeds, "sub_seeds")
    _plan_threads(threads, flat.size, len(adds) + len(subs))  # validate before any work
    add_keys = [derive_stream_key(seed, domain) for seed in adds]
    sub_keys = [derive_stream_key(seed, domain) for seed in subs]
    if not adds and not subs:
        derive_stream_key(bytes(SEED_BYTES), domain)  # still reject a bad domain
    _apply_stream_keys(flat, bits, add_keys, sub_keys, threads)


def mask_input(
    x: np.ndarray,
    *,
    bits: int,
    own_id: int,
    self_seed: bytes,
    pair_seeds: Mapping[int, bytes],
    session_id: bytes,
    threads: int | None = None,
    round_index: int = 0,
) -> np.ndarray:
    """Client u's masked input ``y = x + PRG(b_u) + sum_v sign(u, v) PRG(s_uv)  (mod 2^bits)``.

    The self mask uses ``domain(session_id, "self", round_index)``, the pairwise masks
    ``domain(session_id, "pairwise", round_index)``, and ``sign(u, v) = pairwise_sign(u, v)``,
    so the pairwise masks of every pair cancel in a sum over clients. ``x`` (any integer
    dtype, values in [0, 2^bits)) is not modified; the result is a new array of dtype
    ``dtype_for_bits(bits)`` and the shape of ``x``. Raises :class:`ConfigurationError` on bad
    values, ids (a peer equal to ``own_id``), seeds, session id or thread count.
    """
    bits = check_bits(bits)
    # Any shape: the rule is per value, so check the values as one flat vector.
    flat = x.reshape(-1) if isinstance(x, np.ndarray) and x.ndim != 1 else x
    check_values(flat, bits, what="x")
    return mask_checked_input(
        x,
        bits=bits,
        own_id=own_id,
        self_seed=self_seed,
        pair_seeds=pair_seeds,
        session_id=session_id,
        threads=threads,
        round_index=round_index,
    )


def mask_checked_input(
    x: np.ndarray,
    *,
    bits: int,
    own_id: int,
    self_seed: bytes,
    pair_seeds: Mapping[int, bytes],
    session_id: bytes,
    threads: int | None = None,
    round_index: int = 0,
) -> np.ndarray:
    """:func:`mask_input` for an ``x`` whose values the caller has already checked to lie
    in [0, 2^bits) (with :func:`secagg.ring.check_values`): they are not scanned again.

    The caller's contract: a value outside the range is not detected; it enters the mask
    reduced from its storage word (mod 2^32 or 2^64, then mod 2^bits). ``x`` must still be
    a numpy integer array; everything else is validated as :func:`mask_input` does, with
    the same errors.
    """
    bits = check_bits(bits)
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "ui":
        raise ConfigurationError("x must be a numpy array of an integer dtype")
    own_id = _check_id(own_id, "own_id")
    if not isinstance(self_seed, bytes) or len(self_seed) != SEED_BYTES:
        raise ConfigurationError(f"self_seed must be {SEED_BYTES} bytes")
    if not isinstance(pair_seeds, Mapping):
        raise ConfigurationError("pair_seeds must map peer ids to 32-byte seeds")
    add_seeds: list[bytes] = []
    sub_seeds: list[bytes] = []
    for peer_id, seed in pair_seeds.items():
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise ConfigurationError(f"the seed shared with peer {peer_id!r} must be 32 bytes")
        (add_seeds if pairwise_sign(own_id, peer_id) > 0 else sub_seeds).append(seed)
    pair_domain = domain(session_id, PAIRWISE_PURPOSE, round_index)
    self_domain = domain(session_id, SELF_PURPOSE, round_index)
    y = np.array(x, dtype=dtype_for_bits(bits), order="C", copy=True)
    flat = y.reshape(-1)
    _plan_threads(threads, flat.size, 1 + len(pair_seeds))
    add_keys = [derive_stream_key(self_seed, self_domain)]
    add_keys += [derive_stream_key(seed, pair_domain) for seed in add_seeds]
    sub_keys = [derive_stream_key(seed, pair_domain) for seed in sub_seeds]
    _apply_stream_keys(flat, bits, add_keys, sub_keys, threads)
    return y
