"""Bounds every protocol family checks its configuration and messages against.

One definition each, shared by the families and the wire layer: a party id is a Shamir x
coordinate (so it stays below the field prime), a session id is long enough that random
ids do not collide across sessions, and a vector fits the wire's 32-bit length fields.
:func:`check_client_ids` is the one check of a configured list of client ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from secagg.errors import ConfigurationError
from secagg.shamir import PRIME

__all__ = [
    "MAX_CLIENT_ID",
    "MAX_VECTOR_LENGTH",
    "SESSION_ID_BYTES",
    "check_client_ids",
    "check_session_id",
    "is_int",
]

SESSION_ID_BYTES = (16, 64)
"""Accepted session id sizes (bytes): at least 16 so random ids do not collide."""
MAX_CLIENT_ID = PRIME - 1
"""Client ids are Shamir x coordinates: they must stay below the field prime."""
MAX_VECTOR_LENGTH = 2**31
"""The longest vector a session may aggregate."""


def is_int(value: object) -> bool:
    """True for a Python or NumPy integer, False for anything else (``bool`` included)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_client_ids(values: object, what: str) -> list[int]:
    """``values`` as a list of Python ints, each a valid client id (1..MAX_CLIENT_ID), in
    their order. Raises ConfigurationError (naming ``what``) for anything else: not a
    sequence (a string or bytes included), a non-integer or out-of-range id, a duplicate."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigurationError(f"{what} must be a sequence of client ids")
    ids = []
    for value in values:
        if not is_int(value) or not 1 <= value <= MAX_CLIENT_ID:
            raise ConfigurationError(f"{what}: {value!r} is not a client id")
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"{what}: duplicate ids")
    return ids


def check_session_id(value: object) -> bytes:
    """``value`` if it is a session id (bytes of an accepted size, :data:`SESSION_ID_BYTES`);
    else ConfigurationError."""
    low, high = SESSION_ID_BYTES
    if not isinstance(value, bytes) or not low <= len(value) <= high:
        raise ConfigurationError(f"session_id must be {low} to {high} bytes")
    return value
