"""Hostile and random mutations of corpus inputs, structured where the input is msgpack.

Most secagg encodings are msgpack (protocol messages, HE records, client states, Flower
setups), so the mutations that reach past the first type check are structural: decode the
corpus input, replace one value anywhere in it (a field, a list item, a map value or key)
with a hostile one, encode it again. :data:`HOSTILE` lists the values the review used:
100 KB byte strings and texts, deep nesting, huge and negative integers, booleans where an
int is due, NaN and infinities, wrong types, msgpack extension types. Fixed byte layouts
(shares, bundles, packed vectors, sealed boxes) get byte-level mutations: truncations,
extensions, bit flips, splices.

:func:`hostile_variants` enumerates the structured replacements of one input
deterministically (the CI pass); :func:`mutate` draws one random mutation (the fuzzing
loop's fallback when atheris is missing, and the hypothesis test).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import msgpack

from tests.fuzz.targets import MARKER

__all__ = ["HOSTILE", "hostile_variants", "mutate", "paths"]

_BIG = MARKER * 25_000  # 100 KB


def _nested(depth: int) -> Any:
    value: Any = MARKER
    for _ in range(depth):
        value = [value]
    return value


HOSTILE: tuple[Any, ...] = (
    _BIG,
    _BIG.decode(),
    MARKER,
    MARKER.decode(),
    b"",
    "",
    0,
    -1,
    1,
    2**64 - 1,
    -(2**63),
    2**31,
    True,
    False,
    None,
    math.nan,
    math.inf,
    -math.inf,
    1.0,
    [],
    {},
    [MARKER] * 4096,
    {MARKER.decode() * 64: MARKER},
    _nested(400),
    msgpack.ExtType(7, MARKER * 16),
)
"""Values that replace one value of a decoded input."""

Path = tuple[Any, ...]


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception:
        return _NOT_MSGPACK


_NOT_MSGPACK = object()


def paths(obj: Any, prefix: Path = (), *, limit: int = 256) -> list[Path]:
    """Paths (list indices and map keys) to every value inside ``obj``, breadth first."""
    found: list[Path] = []
    queue: list[tuple[Path, Any]] = [(prefix, obj)]
    while queue and len(found) < limit:
        path, value = queue.pop(0)
        found.append(path)
        if isinstance(value, list):
            queue += [((*path, i), item) for i, item in enumerate(value[:64])]
        elif isinstance(value, dict):
            queue += [((*path, key), item) for key, item in list(value.items())[:64]]
    return found


def _replace(obj: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, list):
        copy = list(obj)
        copy[head] = _replace(obj[head], rest, value)
        return copy
    copy_map = dict(obj)
    copy_map[head] = _replace(obj[head], rest, value)
    return copy_map


def _rename_key(obj: Any, path: Path, new_key: Any) -> Any:
    """Rename the map key at ``path`` (its last element) to ``new_key``."""
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    if not isinstance(parent, dict):
        return None
    try:
        renamed = {new_key if key == path[-1] else key: value for key, value in parent.items()}
    except TypeError:  # an unhashable new key
        return None
    return _replace(obj, path[:-1], renamed)


def _pack(obj: Any) -> bytes | None:
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True, strict_types=False)
    except Exception:  # a hostile value msgpack cannot encode (e.g. too deep)
        return None
    return packed


def _byte_variants(data: bytes) -> Iterator[bytes]:
    yield b""
    yield _BIG
    for cut in sorted({1, len(data) // 2, max(len(data) - 1, 0)}):
        yield data[:cut]
    yield data + MARKER
    yield data + _BIG
    yield MARKER + data
    for position in sorted({0, 1, len(data) // 3, len(data) // 2, max(len(data) - 1, 0)}):
        if position < len(data):
            flipped = bytearray(data)
            flipped[position] ^= 0x80
            yield bytes(flipped)
            zeroed = bytearray(data)
            zeroed[position] = 0xFF
            yield bytes(zeroed)


def hostile_variants(data: bytes) -> Iterator[bytes]:
    """Deterministic hostile variants of ``data``: byte-level ones, then (for msgpack) every
    value replaced by every :data:`HOSTILE` value, every map key renamed, the whole wrapped
    and extended."""
    yield from _byte_variants(data)
    obj = _unpack(data)
    if obj is _NOT_MSGPACK:
        return
    for path in paths(obj):
        for value in HOSTILE:
            packed = _pack(_replace(obj, path, value))
            if packed is not None:
                yield packed
        if path:
            for key in (MARKER.decode(), 1, True, None):
                renamed = _rename_key(obj, path, key)
                packed = _pack(renamed) if renamed is not None else None
                if packed is not None:
                    yield packed
    for extended in ([obj], [obj, MARKER], [*obj, MARKER] if isinstance(obj, list) else None):
        if extended is not None:
            packed = _pack(extended)
            if packed is not None:
                yield packed


def _random_value(rng: random.Random) -> Any:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(HOSTILE)
    if kind == 1:
        return rng.randrange(-(2**63), 2**64)
    if kind == 2:
        return rng.randbytes(rng.choice((0, 1, 16, 32, 35, 58, 64, 300)))
    if kind == 3:
        return rng.randrange(-4, 300)
    if kind == 4:
        return [rng.randrange(300) for _ in range(rng.randrange(5))]
    return rng.choice((MARKER.decode(), "v", "c", "key", "layout", "params"))


def mutate(data: bytes, rng: random.Random, others: list[bytes] | None = None) -> bytes:
    """One random mutation of ``data``: structured (for msgpack) or byte-level, sometimes
    spliced with another corpus input, sometimes stacked."""
    for _ in range(1 + (rng.random() < 0.3)):
        obj = _unpack(data)
        if obj is not _NOT_MSGPACK and rng.random() < 0.7:
            path = rng.choice(paths(obj))
            if path and rng.random() < 0.15:
                changed = _rename_key(obj, path, _random_value(rng))
            else:
                changed = _replace(obj, path, _random_value(rng))
            packed = _pack(changed) if changed is not None else None
            if packed is not None:
                data = packed
                continue
        data = _byte_mutation(data, rng, others or [])
    return data


def _byte_mutation(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    buffer = bytearray(data)
    kind = rng.randrange(6)
    position = rng.randrange(len(buffer) + 1)
    if kind == 0 and buffer:
        buffer[min(position, len(buffer) - 1)] ^= 1 << rng.randrange(8)
    elif kind == 1:
        buffer[position:position] = rng.randbytes(rng.randrange(1, 9))
    elif kind == 2:
        del buffer[position : position + rng.randrange(1, 17)]
    elif kind == 3:
        buffer = buffer[:position]
    elif kind == 4 and others:
        other = rng.choice(others)
        cut = rng.randrange(len(other) + 1)
        buffer = buffer[:position] + other[cut:]
    elif buffer:
        buffer[min(position, len(buffer) - 1)] = rng.choice((0, 0xFF, 0x7F, 0x80, 0xC1))
    return bytes(buffer)
