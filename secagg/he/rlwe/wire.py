"""Compact, strict wire form of residue arrays: bit-packed at ``ceil(log2 q_l)`` bits per limb.

A ``(limbs, polys, N)`` array travels as the concatenation, limb by limb, of
``secagg.packing.pack(row, q_l.bit_length())`` of its ``polys * N`` residues mod ``q_l``
(for the primes of :mod:`secagg.he.rlwe.primes`, 32 bits: a plain little-endian copy).
Decoding checks the exact byte length, the padding bits and that every residue is below
its modulus, and raises :class:`DecodeError` (naming the sender) otherwise, with a bounded
text that never echoes the bytes.
"""

from __future__ import annotations

import numpy as np

from secagg.errors import DecodeError
from secagg.he.rlwe.ring import RnsRing
from secagg.packing import pack, unpack
from secagg.ring import packed_size

__all__ = ["pack_residues", "residues_size", "unpack_residues"]


def residues_size(ring: RnsRing, polys: int) -> int:
    """Bytes of :func:`pack_residues` of ``polys`` polynomials."""
    return sum(packed_size(polys * ring.degree, q.bit_length()) for q in ring.moduli)


def pack_residues(ring: RnsRing, a: np.ndarray) -> bytes:
    """The wire form of ``a`` (shape ``(limbs, polys, N)``, reduced residues)."""
    return b"".join(
        pack(np.ascontiguousarray(a[limb]).reshape(-1), q.bit_length())
        for limb, q in enumerate(ring.moduli)
    )


def unpack_residues(
    ring: RnsRing, data: bytes, polys: int, what: str, party: int | None = None
) -> np.ndarray:
    """Inverse of :func:`pack_residues`: a new ``(limbs, polys, N)`` uint64 array.

    Raises DecodeError (with ``party``) when ``data`` is not bytes of the exact size, has a
    non-zero padding bit, or holds a residue ``>= q_l``.
    """
    if not isinstance(data, bytes):
        raise DecodeError(f"malformed {what}: residues must be bytes", party=party)
    if len(data) != residues_size(ring, polys):
        raise DecodeError(f"malformed {what}: wrong size", party=party)
    count = polys * ring.degree
    out = np.empty((ring.limbs, count), dtype=np.uint64)
    view = memoryview(data)
    offset = 0
    for limb, q in enumerate(ring.moduli):
        size = packed_size(count, q.bit_length())
        try:
            out[limb] = unpack(view[offset : offset + size], q.bit_length(), count)
        except DecodeError:
            raise DecodeError(f"malformed {what}: bad padding", party=party) from None
        offset += size
        if count and int(out[limb].max()) >= q:
            raise DecodeError(f"malformed {what}: residue out of range", party=party)
    return out.reshape(ring.limbs, polys, ring.degree)
