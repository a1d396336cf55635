"""Is a vector over Z_(2^bits) indistinguishable from uniform? Two cheap statistics.

* Bit balance: for every bit position, the count of ones is Binomial(N, 1/2); its z-score.
* Low-bits chi-square: the histogram of the lowest ``min(bits, 8)`` bits (fewer when N is
  small, so that every cell expects at least :data:`MIN_PER_CELL` values), turned into a
  z-score by the Wilson-Hilferty cube-root transform.

:func:`uniformity_score` is the largest of these |z|. A masked input scores below
:data:`Z_LIMIT` except with probability about 1e-10 per statistic, so a test that uses it
does not flake; an unmasked input that respects headroom (its top bit is always zero)
scores sqrt(N) or more, above the limit from :data:`MIN_SAMPLES` values on.
"""

from __future__ import annotations

import math

import numpy as np

from secagg.errors import ConfigurationError

__all__ = ["MAX_SAMPLES", "MIN_PER_CELL", "MIN_SAMPLES", "Z_LIMIT", "uniformity_score"]

Z_LIMIT = 6.5
MIN_SAMPLES = 64
MIN_PER_CELL = 16
MAX_SAMPLES = 1 << 16
"""Longer vectors are tested on their first MAX_SAMPLES values (the power is already
overwhelming; memory stays O(MAX_SAMPLES * bits))."""


def _chi_square_z(counts: np.ndarray) -> float:
    cells = counts.size
    expected = counts.sum() / cells
    statistic = float(((counts - expected) ** 2 / expected).sum())
    df = cells - 1
    # Wilson-Hilferty: (X/df)^(1/3) is about normal with mean 1 - 2/(9 df).
    spread = 2.0 / (9.0 * df)
    return float(((statistic / df) ** (1.0 / 3.0) - (1.0 - spread)) / math.sqrt(spread))


def uniformity_score(values: np.ndarray, bits: int) -> float:
    """The largest |z| of the bit-balance and low-bits chi-square statistics of ``values``
    (integers in [0, 2^bits)). Raises ConfigurationError on fewer than MIN_SAMPLES values,
    bits outside 1..64 or a non-integer array."""
    if not 1 <= bits <= 64:
        raise ConfigurationError(f"bits must be in [1, 64], got {bits}")
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "ui":
        raise ConfigurationError("values must be integers")
    if flat.size < MIN_SAMPLES:
        raise ConfigurationError(f"a uniformity test needs {MIN_SAMPLES} values, got {flat.size}")
    sample = flat[:MAX_SAMPLES].astype(np.uint64)
    n = sample.size
    positions = np.arange(bits, dtype=np.uint64)
    ones = ((sample[:, None] >> positions) & np.uint64(1)).sum(axis=0).astype(np.float64)
    worst = float(np.max(np.abs(ones - n / 2) / math.sqrt(n / 4)))
    low_bits = min(bits, 8, int(math.log2(n / MIN_PER_CELL)))
    if low_bits >= 1:
        cells = 1 << low_bits
        low = (sample & np.uint64(cells - 1)).astype(np.int64)
        counts = np.bincount(low, minlength=cells).astype(np.float64)
        worst = max(worst, abs(_chi_square_z(counts)))
    return worst
