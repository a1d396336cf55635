"""Threshold CKKS ciphertexts: encryption under the collective key, compressed bodies,
homomorphic addition, the mask part members decrypt (step 3 of
:mod:`secagg.he.threshold_ckks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, DecodeError, UsageError
from secagg.he._records import bytes_field, decode_record, encode_record, int_field
from secagg.he.rlwe.ntt import mul_shoup
from secagg.he.rlwe.params import ERROR_ETA
from secagg.he.rlwe.sampling import Sampler
from secagg.he.rlwe.wire import pack_residues, unpack_residues
from secagg.he.threshold_ckks.keys import PublicKey
from secagg.he.threshold_ckks.params import (
    CHUNK_BLOCK,
    LABEL,
    MAX_LENGTH,
    VERSION,
    ThresholdCkksParameters,
    check_int,
    record_size,
)
from secagg.packing import pack, unpack
from secagg.ring import check_values, packed_size

__all__ = [
    "Ciphertext",
    "CiphertextMask",
    "encrypt",
    "encrypt_floats",
    "encrypt_zero",
    "sum_ciphertexts",
]

_U64 = np.uint64


class CiphertextMask:
    """The masks ``c1`` (NTT form, ``(limbs, chunks, N)``) of an encrypted vector, its
    length and summand count: all a member needs for its decryption share. Public."""

    __slots__ = ("length", "params", "summands", "value")

    def __init__(
        self, params: ThresholdCkksParameters, length: int, summands: int, value: np.ndarray
    ) -> None:
        self.params = params
        self.length = length
        self.summands = summands
        self.value = value

    def __repr__(self) -> str:
        return f"CiphertextMask(length={self.length}, summands={self.summands})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, length: int, summands: int) -> int:
        """Exact length of :meth:`to_bytes` for a vector of ``length`` values."""
        return record_size(
            {"v": VERSION, "m": length, "n": summands}, {"a": params.mask_bytes(length)}
        )

    def to_bytes(self) -> bytes:
        return encode_record(
            {
                "v": VERSION,
                "m": self.length,
                "n": self.summands,
                "a": pack_residues(self.params.ring, self.value),
            }
        )

    @classmethod
    def from_bytes(
        cls,
        params: ThresholdCkksParameters,
        data: bytes,
        *,
        length: int,
        party: int | None = None,
    ) -> CiphertextMask:
        """Inverse of :meth:`to_bytes` for a vector of ``length`` values; DecodeError
        (naming ``party``) for anything malformed: another length, a summand count outside
        1..max_summands, residues out of range, a wrong size."""
        what = "ciphertext mask"
        obj = decode_record(data, {"v", "m", "n", "a"}, what, party, version=VERSION)
        summands = _decode_counts(params, obj, length, what, party)
        value = unpack_residues(
            params.ring, bytes_field(obj, "a", what, party), params.chunks(length), what, party
        )
        return cls(params, length, summands, value)


def _decode_counts(
    params: ThresholdCkksParameters,
    obj: Mapping[str, object],
    length: int,
    what: str,
    party: int | None,
) -> int:
    if int_field(obj, "m", what, party) != length:
        raise DecodeError(f"{what}: wrong vector length", party=party)
    summands = int_field(obj, "n", what, party)
    if not 1 <= summands <= params.max_summands:
        raise DecodeError(f"{what}: summand count out of range", party=party)
    return summands


class Ciphertext:
    """An encrypted vector: compressed bodies (``(chunks, N)`` mod ``2^body_bits``, coefficient
    form), masks (``(limbs, chunks, N)``, NTT form), length and summand count. Public.

    ``a + b`` and ``a.add_(b)`` add homomorphically; the sum of more than ``max_summands``
    summands raises UsageError (the noise analysis would no longer hold).
    """

    __slots__ = ("body", "length", "mask", "params", "summands")

    def __init__(
        self,
        params: ThresholdCkksParameters,
        length: int,
        summands: int,
        body: np.ndarray,
        mask: np.ndarray,
    ) -> None:
        self.params = params
        self.length = length
        self.summands = summands
        self.body = body
        self.mask = mask

    def __repr__(self) -> str:
        return f"Ciphertext(length={self.length}, summands={self.summands})"

    @staticmethod
    def encoded_size(params: ThresholdCkksParameters, length: int, summands: int = 1) -> int:
        """Exact length of :meth:`to_bytes` for a vector of ``length`` values."""
        chunks = params.chunks(length)
        return record_size(
            {"v": VERSION, "m": length, "n": summands},
            {
                "b": packed_size(chunks * params.degree, params.body_bits),
                "a": params.mask_bytes(length),
            },
        )

    def _check(self, other: Ciphertext) -> None:
        if not isinstance(other, Ciphertext):
            raise UsageError("only ciphertexts add")
        if other.params != self.params or other.length != self.length:
            raise UsageError("ciphertexts of other parameters or another length")
        if self.summands + other.summands > self.params.max_summands:
            raise UsageError(
                f"more than max_summands = {self.params.max_summands} summands: the noise "
                "bound would not hold"
            )

    def add_(self, other: Ciphertext) -> Ciphertext:
        """Add ``other`` into this ciphertext in place; returns self."""
        self._check(other)
        np.add(self.body, other.body, out=self.body)
        if self.params.body_bits < 64:
            np.bitwise_and(self.body, _U64((1 << self.params.body_bits) - 1), out=self.body)
        self.params.ring.add(self.mask, other.mask, out=self.mask)
        self.summands += other.summands
        return self

    def __add__(self, other: Ciphertext) -> Ciphertext:
        self._check(other)
        out = Ciphertext(
            self.params, self.length, self.summands, self.body.copy(), self.mask.copy()
        )
        return out.add_(other)

    def mask_part(self) -> CiphertextMask:
        """The part a committee member needs (shares memory with this ciphertext)."""
        return CiphertextMask(self.params, self.length, self.summands, self.mask)

    def to_bytes(self) -> bytes:
        return encode_record(
            {
                "v": VERSION,
                "m": self.length,
                "n": self.summands,
                "b": pack(self.body.reshape(-1), self.params.body_bits),
                "a": pack_residues(self.params.ring, self.mask),
            }
        )

    @classmethod
    def from_bytes(
        cls,
        params: ThresholdCkksParameters,
        data: bytes,
        *,
        length: int,
        summands: int | None = None,
        party: int | None = None,
    ) -> Ciphertext:
        """Inverse of :meth:`to_bytes` for a vector of ``length`` values; DecodeError
        (naming ``party``) for anything malformed (as :meth:`CiphertextMask.from_bytes`,
        plus a body of the wrong size or with padding bits set), or for a summand count
        other than ``summands`` when given (a client's upload: 1)."""
        what = "ciphertext"
        obj = decode_record(data, {"v", "m", "n", "b", "a"}, what, party, version=VERSION)
        count = _decode_counts(params, obj, length, what, party)
        if summands is not None and count != summands:
            raise DecodeError(f"{what}: unexpected summand count", party=party)
        chunks = params.chunks(length)
        body_bytes = bytes_field(obj, "b", what, party)
        try:
            body = unpack(body_bytes, params.body_bits, chunks * params.degree)
        except DecodeError:
            raise DecodeError(f"malformed {what}: body", party=party) from None
        mask = unpack_residues(params.ring, bytes_field(obj, "a", what, party), chunks, what, party)
        return cls(
            params,
            length,
            count,
            body.astype(_U64, copy=False).reshape(chunks, params.degree),
            mask,
        )


def _check_length(length: object) -> int:
    return check_int("vector length", length, 1, MAX_LENGTH)


def encrypt_zero(
    public_key: PublicKey, sampler: Sampler, polys: int
) -> tuple[np.ndarray, np.ndarray]:
    """``polys`` fresh encryptions of zero: ``(c0, c1)`` with ``c0 = p u + e0`` in
    coefficient form (uncompressed) and ``c1 = a u + e1`` in NTT form."""
    params, ring = public_key.params, public_key.params.ring
    n, q = params.degree, ring.q
    u = sampler.ternary((polys, n))
    e0 = sampler.binomial((polys, n), ERROR_ETA)
    e1 = sampler.binomial((polys, n), ERROR_ETA)
    stacked = ring.from_signed(np.concatenate([u, e1]))  # (limbs, 2 polys, N)
    ring.ntt(stacked)
    u_hat, e1_hat = stacked[:, :polys], stacked[:, polys:]
    scratch = np.empty_like(u_hat)
    mask = np.empty_like(u_hat)
    mul_shoup(u_hat, public_key.crs, public_key.crs_shoup, q, mask, scratch)
    ring.add(mask, e1_hat, out=mask)
    body = np.empty_like(u_hat)
    mul_shoup(u_hat, public_key.value, public_key.value_shoup, q, body, scratch)
    ring.intt(body)
    ring.add(body, ring.from_signed(e0), out=body)
    return body, mask


def encrypt(public_key: PublicKey, values: np.ndarray) -> Ciphertext:
    """Encrypt a vector over ``Z_(2^plaintext_bits)`` (a 1-D integer array, every value in
    range) under ``public_key``; fresh randomness from ``os.urandom``.

    Raises ConfigurationError for values of the wrong shape, dtype or range.
    """
    params = public_key.params
    bits = params.plaintext_bits
    check_values(values, bits, what="the plaintext")
    length = _check_length(int(values.shape[0]))
    ring, n = params.ring, params.degree
    chunks = params.chunks(length)
    plain = np.zeros((chunks, n), dtype=_U64)
    plain.reshape(-1)[:length] = values
    body_bits = params.body_bits
    body = np.empty((chunks, n), dtype=_U64)
    mask = np.empty((ring.limbs, chunks, n), dtype=_U64)
    sampler = Sampler.fresh(LABEL + b"/encrypt")
    for start in range(0, chunks, CHUNK_BLOCK):
        p = min(CHUNK_BLOCK, chunks - start)
        residues, mask[:, start : start + p] = encrypt_zero(public_key, sampler, p)
        # Compress: round(2^k gamma c0 / Q) mod 2^k (gamma = Delta^2, the factor a
        # combination of decryption shares carries), then the message in the top bits.
        ring.mul(residues, public_key.scale_column, out=residues)
        integer, fraction = ring.scale_to_bits(residues, body_bits)
        np.add(integer, np.rint(fraction).astype(_U64), out=integer)
        np.add(integer, plain[start : start + p] << _U64(body_bits - bits), out=integer)
        if body_bits < 64:
            np.bitwise_and(integer, _U64((1 << body_bits) - 1), out=integer)
        body[start : start + p] = integer
    return Ciphertext(params, length, 1, body, mask)


def encrypt_floats(public_key: PublicKey, x: np.ndarray, codec: FixedPoint) -> Ciphertext:
    """Encrypt a real vector through ``codec`` (see :func:`float_codec`); decode the sum with
    ``codec.decode(combine(...))``. Raises ConfigurationError when the codec does not match
    the parameters (other bits, or more clients than ``max_summands``)."""
    params = public_key.params
    if codec.bits != params.plaintext_bits or codec.max_clients > params.max_summands:
        raise ConfigurationError("the codec must have plaintext_bits and <= max_summands clients")
    return encrypt(public_key, codec.encode(np.asarray(x).reshape(-1)))


def sum_ciphertexts(ciphertexts: Iterable[Ciphertext]) -> Ciphertext:
    """The homomorphic sum (a new ciphertext). UsageError when empty or incompatible."""
    it = iter(ciphertexts)
    try:
        first = next(it)
    except StopIteration:
        raise UsageError("nothing to sum") from None
    total = Ciphertext(
        first.params, first.length, first.summands, first.body.copy(), first.mask.copy()
    )
    for ciphertext in it:
        total.add_(ciphertext)
    return total
