"""Bounds every protocol family checks its configuration and messages against.

One definition each, shared by the families and the wire layer: a party id is a Shamir x
coordinate (so it stays below the field prime), a session id is long enough that random
ids do not collide across sessions, and a vector fits the wire's 32-bit length fields.
"""

from __future__ import annotations

from secagg.shamir import PRIME

__all__ = ["MAX_CLIENT_ID", "MAX_VECTOR_LENGTH", "SESSION_ID_BYTES"]

SESSION_ID_BYTES = (16, 64)
"""Accepted session id sizes (bytes): at least 16 so random ids do not collide."""
MAX_CLIENT_ID = PRIME - 1
"""Client ids are Shamir x coordinates: they must stay below the field prime."""
MAX_VECTOR_LENGTH = 2**31
"""The longest vector a session may aggregate."""
