"""The pieces every analytic cost model shares: msgpack sizes and the shape of a result.

Sizes follow the msgpack specification (https://github.com/msgpack/msgpack/blob/master/spec.md)
as :mod:`secagg.protocols.wire` encodes messages: a message is a msgpack array
``[version, type, sender, recipient, session_id, *fields]``. A model's result is a dict of
rounds (:func:`round_entry`), totals (:func:`totals_of`) and operation counts
(:func:`operations_of`), the JSON shape ``secagg cost`` prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from secagg.errors import ConfigurationError
from secagg.protocols.base import SERVER_ID
from secagg.protocols.wire import ProtocolMessage

__all__ = [
    "HEADER_FIELDS",
    "array_size",
    "bin_size",
    "check_int",
    "header_size",
    "hypergeometric_mean",
    "id_size_sum",
    "operations_of",
    "round_entry",
    "totals_of",
    "uint_size",
]

HEADER_FIELDS = 5  # version, type, sender, recipient, session id


def uint_size(value: int) -> int:
    """Bytes of a non-negative msgpack integer."""
    if value < 128:
        return 1  # positive fixint
    if value < 2**8:
        return 2
    if value < 2**16:
        return 3
    if value < 2**32:
        return 5
    return 9


def bin_size(length: int) -> int:
    """Bytes of a msgpack bin of ``length`` bytes (byte strings travel as bin)."""
    if length < 2**8:
        return 2 + length
    if length < 2**16:
        return 3 + length
    return 5 + length


def array_size(count: int) -> int:
    """Bytes of a msgpack array header for ``count`` entries."""
    if count <= 15:
        return 1  # fixarray
    if count < 2**16:
        return 3
    return 5


def id_size_sum(n: int) -> int:
    """``sum(uint_size(i) for i in 1..n)`` in O(1): ids are counted per msgpack width."""
    total = 0
    for low, high, width in ((1, 127, 1), (128, 255, 2), (256, 2**16 - 1, 3)):
        if n >= low:
            total += (min(n, high) - low + 1) * width
    if n >= 2**16:
        total += (n - 2**16 + 1) * 5
    return total


def hypergeometric_mean(fn: Callable[[int], int], total: int, marked: int, draws: int) -> float:
    """``E[fn(X)]`` for ``X ~ HG(total, marked, draws)``, summed over the support."""
    low, high = max(0, draws - (total - marked)), min(draws, marked)
    if low == high:
        return float(fn(low))
    log_norm = math.lgamma(total + 1) - math.lgamma(draws + 1) - math.lgamma(total - draws + 1)
    mean = 0.0
    for x in range(low, high + 1):
        log_p = (
            math.lgamma(marked + 1)
            - math.lgamma(x + 1)
            - math.lgamma(marked - x + 1)
            + math.lgamma(total - marked + 1)
            - math.lgamma(draws - x + 1)
            - math.lgamma(total - marked - draws + x + 1)
            - log_norm
        )
        mean += fn(x) * math.exp(log_p)
    return mean


# --- the model -------------------------------------------------------------------------


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``; else ConfigurationError
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an int")
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def header_size(message_type: type[ProtocolMessage], fields: int, sid: int) -> int:
    """A message header without the client's id: array header, version, type, the
    server's id, the session id (the client id is added from id sums)."""
    return (
        array_size(HEADER_FIELDS + fields)
        + uint_size(message_type.VERSION)
        + uint_size(message_type.TYPE)
        + uint_size(SERVER_ID)
        + bin_size(sid)
    )


def round_entry(
    senders: float,
    receivers: float,
    up: float,
    down: float,
    client_ops: dict[str, float],
    server_ops: dict[str, float],
) -> dict[str, Any]:
    """One round's entry: per-client means (up over senders, down over receivers) and
    the server's totals."""
    return {
        "clients": senders,
        "client_bytes_up": up / senders,
        "client_bytes_down": down / receivers,
        "server_bytes_up": up,
        "server_bytes_down": down,
        "client_ops": client_ops,
        "server_ops": server_ops,
    }


def totals_of(rounds: dict[str, dict[str, Any]], plain: float) -> dict[str, Any]:
    """A client's and the server's bytes over all rounds; ``expansion`` is the client's
    traffic (up and down) over ``plain``, its packed input."""
    client_up = sum(r["client_bytes_up"] for r in rounds.values())
    client_down = sum(r["client_bytes_down"] for r in rounds.values())
    return {
        "client_bytes_up": client_up,
        "client_bytes_down": client_down,
        "server_bytes_up": sum(r["server_bytes_up"] for r in rounds.values()),
        "server_bytes_down": sum(r["server_bytes_down"] for r in rounds.values()),
        "expansion": (client_up + client_down) / plain,
    }


def operations_of(rounds: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Operation counts of a client and of the server, summed over the rounds."""
    return {
        "client": _sum_ops(r["client_ops"] for r in rounds.values()),
        "server": _sum_ops(r["server_ops"] for r in rounds.values()),
    }


def _sum_ops(per_round: Iterable[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for ops in per_round:
        for name, count in ops.items():
            total[name] = total.get(name, 0) + count
    return total
