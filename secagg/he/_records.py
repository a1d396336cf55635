"""Versioned msgpack records: the one encoding every HE object's ``to_bytes`` uses.

A record is a msgpack map with string keys and a ``"v"`` version field. Decoding checks
that the bytes are msgpack, that the map has exactly the expected keys and that the version
matches (an int exactly: ``True`` is not version 1), and raises :class:`DecodeError` naming
the party otherwise, so no malformed record from a peer reaches the code that reads its
fields. Error texts name the record and the field, never the value the peer sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from secagg.errors import DecodeError

__all__ = ["bytes_field", "decode_record", "encode_record", "int_field"]


def encode_record(obj: Mapping[str, object]) -> bytes:
    """msgpack of ``obj`` with bytes kept as bin (never as str)."""
    encoded: bytes = msgpack.packb(obj, use_bin_type=True)
    return encoded


def decode_record(
    data: bytes, keys: set[str], what: str, party: int | None, *, version: int
) -> dict[str, Any]:
    """The map in ``data``; DecodeError unless it has exactly ``keys`` and ``"v" == version``
    (an int: ``True`` is not version 1)."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:  # msgpack raises several unrelated exception types
        raise DecodeError(f"{what} is not valid msgpack", party=party) from None
    if not isinstance(obj, dict) or set(obj) != keys:
        raise DecodeError(f"malformed {what}", party=party)
    found = obj.get("v")
    if type(found) is not int or found != version:
        raise DecodeError(f"malformed {what}", party=party)
    return obj


def int_field(obj: Mapping[str, object], key: str, what: str, party: int | None) -> int:
    """``obj[key]`` as an int, exactly (a bool is refused); DecodeError otherwise."""
    value = obj[key]
    if type(value) is not int:
        raise DecodeError(f"malformed {what}: {key}", party=party)
    return value


def bytes_field(obj: Mapping[str, object], key: str, what: str, party: int | None) -> bytes:
    """``obj[key]`` as bytes; DecodeError otherwise."""
    value = obj[key]
    if not isinstance(value, bytes):
        raise DecodeError(f"malformed {what}: {key}", party=party)
    return value
