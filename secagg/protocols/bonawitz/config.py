"""The public parameters of one Bonawitz / SecAgg+ aggregation session.

Role: setup, both sides (before round 0): what every party agrees on.

Every party (server and clients) holds the same :class:`ProtocolConfig`; nothing in it
is secret. The threshold rules (refused with :class:`ConfigurationError` otherwise):

* share holders: a client's secrets are Shamir-shared among its neighbourhood plus
  itself, ``h = k + 1`` holders, where ``k`` is the degree of the graph (``k = n - 1``
  for the complete graph of plain SecAgg);
* complete graph: ``t > n/2`` in semi-honest mode and ``t > 2n/3`` in active mode
  (Bonawitz et al., CCS'17), and ``t <= n``;
* sparse SecAgg+ graph (Bell et al., CCS'20): the threshold is per neighbourhood; the
  parameter finder picks ``(k, t)`` against a corrupt fraction, so semi-honest mode only
  needs ``2 <= t <= k + 1``; active mode needs ``2t > k + 1`` so that a server that
  splits the honest holders of one neighbourhood into two camps cannot collect t shares
  of both secrets of a client (the finder adds the margin for corrupt neighbours).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.graph import harary_graph, validate_graph
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH, SESSION_ID_BYTES
from secagg.ring import check_bits, dtype_for_bits

__all__ = [
    "ACTIVE",
    "MODES",
    "SEMI_HONEST",
    "VERIFY_KEY_BYTES",
    "Mode",
    "ProtocolConfig",
    "default_threshold",
]

Mode = Literal["semi-honest", "active"]
SEMI_HONEST: Mode = "semi-honest"
ACTIVE: Mode = "active"
MODES: tuple[Mode, ...] = (SEMI_HONEST, ACTIVE)

VERIFY_KEY_BYTES = 32


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def default_threshold(holders: int, mode: Mode, *, complete: bool = True) -> int:
    """The default threshold for ``holders`` share holders (``n`` on the complete graph,
    ``k + 1`` on a SecAgg+ neighbourhood): the smallest :class:`ProtocolConfig` accepts,
    except on a semi-honest sparse graph, where it is a conservative majority.

    Semi-honest: a majority, ``t > h/2`` (required on the complete graph; on a sparse one,
    where ``t >= 2`` is accepted, the conservative default). Active: ``t > 2n/3`` on the
    complete graph (Bonawitz et al.), a majority ``2t > k + 1`` on a sparse one. The
    smallest safe threshold tolerates the most dropouts. Always at least 2.
    """
    if mode == ACTIVE and complete:
        return max(2, (2 * holders) // 3 + 1)
    return max(2, holders // 2 + 1)


@dataclass(frozen=True)
class ProtocolConfig:
    """Public parameters of one session, validated on construction.

    ``clients`` is normalized to a sorted tuple; ``neighbours`` (``None`` = complete
    graph) to a dict of frozensets; ``identities`` (active mode only: client id ->
    32-byte Ed25519 verify key registered out of band) to a dict.

    Raises ConfigurationError on anything wrong: a session id outside 16..64 bytes,
    client ids that are not unique ints in 1..PRIME-1, fewer than two clients, ``bits``
    outside 1..64, a vector length outside 1..2^31, an unknown mode, an irregular or
    asymmetric graph, identities missing (active) or present (semi-honest), or a
    threshold outside the rules of the module docstring.
    """

    session_id: bytes
    clients: tuple[int, ...]
    threshold: int
    bits: int
    vector_length: int
    mode: Mode = SEMI_HONEST
    neighbours: Mapping[int, frozenset[int]] | None = field(default=None, hash=False)
    identities: Mapping[int, bytes] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, bytes):
            raise ConfigurationError("session_id must be bytes")
        low, high = SESSION_ID_BYTES
        if not low <= len(self.session_id) <= high:
            raise ConfigurationError(
                f"session_id must be {low} to {high} bytes, got {len(self.session_id)}"
            )
        object.__setattr__(self, "clients", self._checked_clients(self.clients))
        object.__setattr__(self, "bits", check_bits(self.bits))
        for name, value, lowest, highest in (
            ("vector_length", self.vector_length, 1, MAX_VECTOR_LENGTH),
            ("threshold", self.threshold, 1, len(self.clients)),
        ):
            if not _is_int(value):
                raise ConfigurationError(f"{name} must be an int, got {type(value).__name__}")
            if not lowest <= value <= highest:
                raise ConfigurationError(f"{name} must be in [{lowest}, {highest}], got {value}")
            object.__setattr__(self, name, int(value))
        if self.mode not in MODES:
            raise ConfigurationError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.neighbours is not None:
            object.__setattr__(self, "neighbours", self._checked_graph(self.neighbours))
        object.__setattr__(self, "identities", self._checked_identities(self.identities))
        self._check_threshold()

    # -- validation helpers ------------------------------------------------------------

    @staticmethod
    def _checked_clients(clients: object) -> tuple[int, ...]:
        if isinstance(clients, (str, bytes)) or not isinstance(clients, Sequence):
            raise ConfigurationError("clients must be a sequence of int ids")
        ids: list[int] = []
        for client in clients:
            if not _is_int(client):
                raise ConfigurationError(f"client id {client!r} is not an int")
            if not 1 <= client <= MAX_CLIENT_ID:
                raise ConfigurationError(f"client id {client} is outside [1, {MAX_CLIENT_ID}]")
            ids.append(int(client))
        if len(set(ids)) != len(ids):
            raise ConfigurationError("client ids must be unique")
        if len(ids) < 2:
            raise ConfigurationError("an aggregation needs at least two clients")
        return tuple(sorted(ids))

    def _checked_graph(self, graph: object) -> dict[int, frozenset[int]]:
        if not isinstance(graph, Mapping):
            raise ConfigurationError("neighbours must map client id -> frozenset of ids")
        validate_graph(graph, self.clients)
        normalized = {int(u): frozenset(int(v) for v in peers) for u, peers in graph.items()}
        degrees = {len(peers) for peers in normalized.values()}
        if len(degrees) != 1:
            raise ConfigurationError(f"the graph must be regular, got degrees {sorted(degrees)}")
        if degrees == {0}:
            raise ConfigurationError("the graph has no edges")
        return normalized

    def _checked_identities(self, identities: object) -> dict[int, bytes] | None:
        if self.mode == SEMI_HONEST:
            if identities is not None:
                raise ConfigurationError("identities are only used in active mode")
            return None
        if not isinstance(identities, Mapping):
            raise ConfigurationError("active mode needs identities: client id -> verify key")
        if set(identities) != set(self.clients):
            raise ConfigurationError("identities must hold exactly one verify key per client")
        checked: dict[int, bytes] = {}
        for client, key in identities.items():
            if not isinstance(key, bytes) or len(key) != VERIFY_KEY_BYTES:
                raise ConfigurationError(
                    f"the verify key of client {client} must be {VERIFY_KEY_BYTES} bytes"
                )
            checked[int(client)] = key
        return checked

    def _check_threshold(self) -> None:
        t, holders = self.threshold, self.degree + 1
        if t > holders:
            raise ConfigurationError(
                f"threshold {t} exceeds the {holders} share holders of a neighbourhood"
            )
        if t < 2:
            raise ConfigurationError("threshold must be at least 2")
        if self.is_complete:
            # Bonawitz et al.: semi-honest t > n/2, active t > 2n/3 (integer forms).
            if self.mode == ACTIVE and 3 * t <= 2 * holders:
                raise ConfigurationError(
                    f"active mode needs t > 2n/3: t = {t} is too small for n = {holders}"
                )
            if self.mode == SEMI_HONEST and 2 * t <= holders:
                raise ConfigurationError(
                    f"semi-honest mode needs t > n/2: t = {t} is too small for n = {holders}"
                )
        elif self.mode == ACTIVE and 2 * t <= holders:
            raise ConfigurationError(
                f"active SecAgg+ needs 2t > k + 1: t = {t} is too small for k = {self.degree}"
            )

    # -- derived views -----------------------------------------------------------------

    @property
    def n(self) -> int:
        """The number of configured clients."""
        return len(self.clients)

    @cached_property
    def client_set(self) -> frozenset[int]:
        return frozenset(self.clients)

    @cached_property
    def degree(self) -> int:
        """The number of neighbours of each client (``n - 1`` for the complete graph)."""
        if self.neighbours is None:
            return self.n - 1
        return len(next(iter(self.neighbours.values())))

    @property
    def is_complete(self) -> bool:
        """True for plain SecAgg: every client neighbours every other."""
        return self.degree == self.n - 1

    def neighbours_of(self, client_id: int) -> frozenset[int]:
        """The clients ``client_id`` masks with and shares its secrets with (not itself).

        Raises ConfigurationError if ``client_id`` is not a configured client.
        """
        if client_id not in self.client_set:
            raise ConfigurationError(f"client {client_id} is not in this session")
        if self.neighbours is None:
            return self.client_set - {client_id}
        return self.neighbours[client_id]

    def holders_of(self, client_id: int) -> frozenset[int]:
        """The holders of ``client_id``'s shares: its neighbours and itself."""
        return self.neighbours_of(client_id) | {client_id}

    @property
    def dtype(self) -> np.dtype[np.unsignedinteger]:
        """Storage dtype of vectors in Z_(2^bits): uint32 up to 32 bits, uint64 above."""
        return dtype_for_bits(self.bits)

    def __repr__(self) -> str:
        graph = "complete" if self.is_complete else f"harary(k={self.degree})"
        return (
            f"ProtocolConfig(session_id={self.session_id.hex()[:16]}..., n={self.n}, "
            f"threshold={self.threshold}, bits={self.bits}, "
            f"vector_length={self.vector_length}, mode={self.mode!r}, graph={graph})"
        )

    # -- constructors --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        clients: Sequence[int],
        *,
        threshold: int,
        bits: int,
        vector_length: int,
        mode: Mode = SEMI_HONEST,
        degree: int | None = None,
        identities: Mapping[int, bytes] | None = None,
        session_id: bytes | None = None,
    ) -> ProtocolConfig:
        """A config with a fresh random session id (16 bytes of ``os.urandom``).

        ``degree`` ``None`` or ``>= n - 1`` gives plain SecAgg (complete graph); a smaller
        degree gives the SecAgg+ Harary graph permuted by a public seed derived from the
        session id, so every party rebuilds the same graph.
        Raises ConfigurationError as the constructor and :func:`harary_graph` do.
        """
        sid = os.urandom(16) if session_id is None else session_id
        neighbours = None
        if degree is not None and degree < len(clients) - 1:
            if not isinstance(sid, bytes):
                raise ConfigurationError("session_id must be bytes")
            neighbours = harary_graph(clients, degree, b"secagg/v1/graph-seed|" + sid)
        return cls(
            session_id=sid,
            clients=tuple(clients),
            threshold=threshold,
            bits=bits,
            vector_length=vector_length,
            mode=mode,
            neighbours=neighbours,
            identities=identities,
        )
