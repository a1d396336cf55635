"""The options Bonawitz and SecAgg+ take (``secagg simulate`` / ``secagg cost`` flags), with
their ranges, and what a configuration actually uses (the registry spec's ``describe``).

Role: neither side: data for :mod:`secagg.protocols.bonawitz.spec` (which imports this module
when it builds a spec) and :mod:`secagg.protocols.options`.

Ranges are those :class:`~secagg.protocols.bonawitz.config.ProtocolConfig` and the
parameter finder accept, stated before anything is built: the threshold between the
smallest safe one (:func:`~secagg.protocols.bonawitz.config.default_threshold`) and the
holders of a neighbourhood; a SecAgg+ degree in [1, n - 1], even when n is odd (a regular
graph needs it); the corrupt and dropout fractions within the finder's budget (corrupt +
dropout <= 0.9, twice the dropout in active mode), unless a degree makes the finder idle.
"""

from __future__ import annotations

from typing import Any

from secagg.protocols.bonawitz.config import (
    ACTIVE,
    SEMI_HONEST,
    Mode,
    ProtocolConfig,
    default_threshold,
)
from secagg.protocols.bonawitz.spec import ActiveSimulation, graph_parameters
from secagg.protocols.options import COMMON_OPTIONS, Context, Option, Rule
from secagg.protocols.registry import SimulationParams

__all__ = ["describe", "options", "refusals"]

_FINDER_BUDGET = 0.9  # find_parameters: corrupt + dropout (semi-honest) or corrupt + 2 dropout


def _mode(context: Context) -> Mode:
    return ACTIVE if context.get("active") else SEMI_HONEST


def _finder_dropout(context: Context) -> float:
    return max(float(context["dropout_fraction"]), 0.05)  # as graph_parameters


def _dropout_high(context: Context) -> float:
    if context.get("degree") is not None:
        return 1.0
    room = _FINDER_BUDGET - float(context["corrupt_fraction"])
    return max(room / 2 if context.get("active") else room, 0.0)


def _corrupt_high(context: Context) -> float:
    weight = 2 if context.get("active") else 1
    return max(_FINDER_BUDGET - weight * _finder_dropout(context), 0.0)


def _graph_degree(context: Context) -> int:
    """k as the session will have it: the given degree, else the parameter finder's."""
    if context.get("degree") is not None:
        return int(context["degree"])
    n = int(context["clients"])
    params = SimulationParams(
        clients=n,
        dim=1,
        bits=1,
        dropout_fraction=float(context["dropout_fraction"]),
        corrupt_fraction=float(context["corrupt_fraction"]),
    )
    degree, _ = graph_parameters(params, sparse=True, mode=_mode(context))
    return int(degree if degree is not None else n - 1)


def _threshold_bounds(context: Context, *, sparse: bool) -> tuple[int, int]:
    n, mode = int(context["clients"]), _mode(context)
    holders = min(_graph_degree(context), n - 1) + 1 if sparse else n
    if holders == n:
        return default_threshold(n, mode), n
    return default_threshold(holders, mode, complete=False) if mode == ACTIVE else 2, holders


def _threshold_why(context: Context, *, sparse: bool) -> str:
    if not sparse or (context.get("degree") is not None and
                      int(context["degree"]) >= int(context["clients"]) - 1):
        return "t > n/2 on the complete graph, t > 2n/3 with {active}"
    source = "{degree}" if context.get("degree") is not None else "the parameter finder's"
    k = _graph_degree(context)
    return f"at most the k + 1 = {k + 1} holders of a neighbourhood, k = {source} {k}; " \
        "2t > k + 1 with {active}"


def options(*, sparse: bool) -> dict[str, Option]:
    """The option table of SecAgg+ (``sparse``) or Bonawitz (the complete graph)."""
    table = dict(COMMON_OPTIONS)
    if sparse:
        table["clients"] = Option(
            "number of clients n",
            int,
            lambda c: 2 if c.get("degree") is not None else 3,
            COMMON_OPTIONS["clients"].high,
            why="the parameter finder needs 3 unless {degree} is given",
        )
        table["dropout_fraction"] = Option(
            "fraction of the clients that drop",
            float,
            0.0,
            _dropout_high,
            why="the parameter finder needs {corrupt_fraction} + {dropout_fraction} <= 0.9, "
            "{corrupt_fraction} + 2 {dropout_fraction} <= 0.9 with {active}, "
            "unless {degree} is given",
            default=0.0,
        )
    table["active"] = Option(
        "active-adversary mode: signed keys and a consistency round", bool, default=False
    )
    if sparse:
        table["degree"] = Option(
            "neighbours k of each client (default: the parameter finder's)",
            int,
            1,
            lambda c: int(c["clients"]) - 1,
            why="{clients} - 1 is the complete graph",
            rules=(
                Rule(
                    lambda value, c: int(c["clients"]) % 2 == 0 or int(value) % 2 == 0,
                    "an even number when {clients} is odd",
                ),
            ),
        )
        table["corrupt_fraction"] = Option(
            "fraction of corrupt clients the parameter finder guards against",
            float,
            0.0,
            _corrupt_high,
            why="the parameter finder needs {corrupt_fraction} + max({dropout_fraction}, 0.05)"
            " <= 0.9, twice the dropout with {active}",
            default=0.05,
            unless=lambda c: "when {degree} is given (it only feeds the parameter finder)"
            if c.get("degree") is not None
            else None,
        )
    table["threshold"] = Option(
        "Shamir threshold t (default: the smallest safe one)",
        int,
        lambda c: _threshold_bounds(c, sparse=sparse)[0],
        lambda c: _threshold_bounds(c, sparse=sparse)[1],
        why=lambda c: _threshold_why(c, sparse=sparse),
    )
    return table


_REFUSALS = {
    "key_bits": "it has no Paillier key",
    "decryption": "it has no decryption committee",
    "ciphertext_bytes": "it sends no CKKS ciphertexts",
}


def refusals(*, sparse: bool) -> dict[str, str]:
    """Why the protocol does not take the options of the other protocols."""
    if sparse:
        return dict(_REFUSALS)
    return _REFUSALS | {
        "degree": "it always uses the complete graph",
        "corrupt_fraction": "it feeds the SecAgg+ parameter finder; bonawitz uses the "
        "complete graph",
    }


def describe(config: ProtocolConfig | ActiveSimulation, *, sparse: bool) -> dict[str, Any]:
    """Every parameter ``config`` uses: clients, length, bits, threshold, degree, graph,
    mode, and a note when a SecAgg+ degree makes the complete graph."""
    public = config.config if isinstance(config, ActiveSimulation) else config
    notes: list[str] = []
    if sparse and public.is_complete:
        notes.append(
            f"degree k = n - 1 = {public.degree}: the complete graph, as bonawitz "
            "(SecAgg+ is sparse only with a degree below n - 1)"
        )
    return {
        "clients": public.n,
        "dim": public.vector_length,
        "bits": public.bits,
        "threshold": public.threshold,
        "degree": public.degree,
        "graph": "complete" if public.is_complete else "harary",
        "mode": public.mode,
        "active": public.mode == ACTIVE,
        "notes": notes,
    }
