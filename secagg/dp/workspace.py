"""Per-thread reusable scratch arrays for the encoding pipeline.

A fresh multi-megabyte NumPy array costs page faults on first touch, which at d = 2^20 is as
much as the arithmetic done in it. The pipeline's intermediate vectors therefore live in
per-thread buffers that are reused from call to call. Rules: a buffer's contents are undefined
when it is handed out; a function never holds a named buffer across a call to another function
that uses the same name; public functions return fresh arrays (or the caller's ``out``),
never a scratch view. Buffers may hold secret intermediates (noise): they stay in this thread's
memory; :func:`release` drops them.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["release", "scratch"]

_local = threading.local()


def scratch(name: str, count: int, dtype: np.dtype | type) -> np.ndarray:
    """A C-contiguous array of ``count`` items of ``dtype`` reused by this thread under ``name``."""
    pool: dict[tuple[str, np.dtype], np.ndarray] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = {}
        _local.pool = pool
    key = (name, np.dtype(dtype))
    array = pool.get(key)
    if array is None or array.size < count:
        array = np.empty(count, dtype=key[1])
        pool[key] = array
    return array[:count]


def release() -> None:
    """Drop this thread's scratch buffers (after zeroing them)."""
    pool = getattr(_local, "pool", None)
    if pool:
        for array in pool.values():
            array.fill(0)
        pool.clear()
