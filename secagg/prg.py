"""Seeded cryptographic PRG over Z_(2^b), 1 <= b <= 64, from AES-128-CTR keystream.

Theory of operation. A 32-byte seed and a domain label give an AES-128 key
``HKDF-SHA256(seed, info=domain)``, so one seed used for different sessions, purposes or
rounds yields independent streams. The stream is AES-128-CTR keystream with an all-zero
initial counter block (the key is unique per seed and domain, so a fixed IV is safe), i.e.
``AES_k(0) || AES_k(1) || ...`` with a 128-bit big-endian counter. Element ``i`` of the output
is the little-endian word at byte ``i * itemsize`` of the stream (the storage word of
:func:`secagg.ring.dtype_for_bits`: itemsize 4 for ``bits <= 32``, 8 above), masked with
``2^bits - 1``. Because 2^bits divides 2^32 (2^64),
masking a uniform word gives a uniform element, with no rejection and no modular bias.

Speed. Keystream is written with ``update_into`` straight into the caller's (or a reused)
buffer and viewed with ``np.frombuffer``: no per-call allocation, no Python loop over
elements. ``offset`` starts a stream mid-way by setting the initial counter block, so
threads can expand disjoint ranges of one vector independently.
"""

from __future__ import annotations

import struct
import sys

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secagg.errors import ConfigurationError
from secagg.ring import check_bits, dtype_for_bits, value_mask
from secagg.secret import SecretHolder

__all__ = [
    "SEED_BYTES",
    "Prg",
    "derive_stream_key",
    "domain",
    "expand",
    "keystream_encryptor",
    "keystream_into",
    "words_to_native",
]

SEED_BYTES = 32
"""Length of a PRG seed."""
STREAM_KEY_BYTES = 16
"""AES-128: the fastest AES with AES-NI/VAES, and 128-bit security is ample for masks."""

_BLOCK_BYTES = 16
_MAX_DOMAIN_BYTES = 4096
_MAX_OFFSET = 2**60
# One shared immutable all-zero plaintext: encrypting zeros yields the raw keystream.
_ZERO_BYTES = 256 * 1024
_ZEROS = memoryview(bytes(_ZERO_BYTES))
_LITTLE_ENDIAN = sys.byteorder == "little"
_DOMAIN_PREFIX = b"secagg/prg/v1"


def _check_seed(seed: object) -> bytes:
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ConfigurationError(f"a PRG seed must be {SEED_BYTES} bytes")
    return seed


def _check_domain(label: object) -> bytes:
    if not isinstance(label, bytes) or not 1 <= len(label) <= _MAX_DOMAIN_BYTES:
        raise ConfigurationError(f"domain must be 1..{_MAX_DOMAIN_BYTES} bytes")
    return label


def domain(session_id: bytes, purpose: str, round_index: int = 0) -> bytes:
    """The domain-separation label of one session, purpose and round.

    The encoding is injective (length-prefixed fields), so distinct arguments give distinct
    labels. Raises :class:`ConfigurationError` on an empty or non-bytes session id, an empty
    or non-str purpose, or a round index outside [0, 2^32).
    """
    if not isinstance(session_id, bytes) or not 1 <= len(session_id) <= 1024:
        raise ConfigurationError("session_id must be 1..1024 bytes")
    if not isinstance(purpose, str) or not purpose:
        raise ConfigurationError("purpose must be a non-empty str")
    purpose_bytes = purpose.encode("utf-8")
    if len(purpose_bytes) > 255:
        raise ConfigurationError("purpose must be at most 255 UTF-8 bytes")
    if (
        not isinstance(round_index, int)
        or isinstance(round_index, bool)
        or not 0 <= round_index < 2**32
    ):
        raise ConfigurationError("round_index must be an int in [0, 2^32)")
    return b"".join(
        (
            _DOMAIN_PREFIX,
            struct.pack(">H", len(session_id)),
            session_id,
            struct.pack(">B", len(purpose_bytes)),
            purpose_bytes,
            struct.pack(">I", round_index),
        )
    )


def derive_stream_key(seed: bytes, domain: bytes) -> bytes:
    """The AES-128 key of the stream of ``seed`` in ``domain``: HKDF-SHA256(seed, info=domain).

    Secret. Raises :class:`ConfigurationError` on a seed that is not 32 bytes or a bad domain.
    """
    seed = _check_seed(seed)
    label = _check_domain(domain)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=STREAM_KEY_BYTES, salt=None, info=label)
    return hkdf.derive(seed)


def keystream_encryptor(stream_key: bytes, byte_offset: int = 0) -> CipherContext:
    """An AES-128-CTR encryptor positioned ``byte_offset`` bytes into the stream.

    Encrypting zeros with it yields the keystream from that position. The initial counter
    block is ``byte_offset // 16`` (big-endian); the remaining ``byte_offset % 16`` bytes of
    that block are consumed and discarded.
    """
    if not isinstance(stream_key, bytes) or len(stream_key) != STREAM_KEY_BYTES:
        raise ConfigurationError(f"a stream key must be {STREAM_KEY_BYTES} bytes")
    if not isinstance(byte_offset, int) or not 0 <= byte_offset < _MAX_OFFSET * 8:
        raise ConfigurationError("byte_offset out of range")
    block, skip = divmod(byte_offset, _BLOCK_BYTES)
    counter = block.to_bytes(_BLOCK_BYTES, "big")
    encryptor = Cipher(algorithms.AES(stream_key), modes.CTR(counter)).encryptor()
    if skip:
        encryptor.update(bytes(skip))
    return encryptor


def keystream_into(encryptor: CipherContext, out: memoryview) -> None:
    """Write ``len(out)`` bytes of keystream into the byte view ``out`` (no allocation)."""
    total = len(out)
    position = 0
    while position < total:
        step = min(_ZERO_BYTES, total - position)
        encryptor.update_into(_ZEROS[:step], out[position : position + step])
        position += step


def words_to_native(words: np.ndarray) -> None:
    """Reinterpret keystream words stored little-endian as native integers, in place."""
    if not _LITTLE_ENDIAN:  # pragma: no cover - exercised only on big-endian hosts
        words.byteswap(inplace=True)


class Prg(SecretHolder, export="Prg(seed, domain=..., bits=..., offset=position): a new stream"):
    """A stream of uniform elements of Z_(2^bits) determined by ``(seed, domain)``.

    ``Prg(seed, domain=d, bits=b, offset=k)`` yields elements ``k, k+1, ...`` of the stream,
    identical to the corresponding slice of ``expand(seed, k + n, bits=b, domain=d)``.
    ``repr`` shows the bit width and position, never the seed or key.
    """

    __slots__ = ("_bits", "_dtype", "_encryptor", "_mask", "_position")

    def __init__(self, seed: bytes, *, domain: bytes, bits: int, offset: int = 0) -> None:
        self._bits = check_bits(bits)
        self._dtype = dtype_for_bits(bits)
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < _MAX_OFFSET:
            raise ConfigurationError("offset must be an int in [0, 2^60)")
        key = derive_stream_key(seed, domain)
        self._encryptor = keystream_encryptor(key, offset * self._dtype.itemsize)
        self._mask = value_mask(bits)
        self._position = offset

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def dtype(self) -> np.dtype[np.unsignedinteger]:
        return self._dtype

    @property
    def position(self) -> int:
        """Index in the stream of the next element :meth:`fill` writes."""
        return self._position

    def fill(self, out: np.ndarray) -> None:
        """Overwrite ``out`` with the next ``out.size`` elements of the stream, in place.

        ``out`` must be a writeable C-contiguous array of dtype
        :func:`secagg.ring.dtype_for_bits` ``(bits)``;
        otherwise :class:`ConfigurationError`. Every element is < 2^bits.
        """
        if not isinstance(out, np.ndarray) or out.dtype != self._dtype:
            raise ConfigurationError(f"out must be a numpy array of dtype {self._dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ConfigurationError("out must be C-contiguous and writeable")
        if out.size == 0:
            return
        flat = out.reshape(-1)
        keystream_into(self._encryptor, flat.data.cast("B"))
        words_to_native(flat)
        if self._bits not in (32, 64):
            np.bitwise_and(flat, flat.dtype.type(self._mask), out=flat)
        self._position += flat.size

    def __repr__(self) -> str:
        return f"Prg(bits={self._bits}, position={self._position})"

    __str__ = __repr__


def expand(seed: bytes, length: int, *, bits: int, domain: bytes) -> np.ndarray:
    """The first ``length`` elements of the stream of ``(seed, domain)`` over Z_(2^bits).

    Returns a new array of dtype :func:`secagg.ring.dtype_for_bits` ``(bits)``. Raises
    :class:`ConfigurationError` on a bad seed, domain, bit width or negative length.
    """
    if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length < _MAX_OFFSET:
        raise ConfigurationError("length must be a non-negative int")
    prg = Prg(seed, domain=domain, bits=bits)
    out = np.empty(length, dtype=prg.dtype)
    prg.fill(out)
    return out
