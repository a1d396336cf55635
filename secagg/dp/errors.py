"""Errors specific to distributed DP encoding."""

from __future__ import annotations

from secagg.errors import SecAggError

__all__ = ["NonFiniteUpdateError"]


class NonFiniteUpdateError(SecAggError, ValueError):
    """A client's update holds a NaN or an infinity (or its norm overflows float64).

    Local to that client: the caller makes the client sit out the round (it sends nothing),
    never encodes a partial or clamped vector.
    """
