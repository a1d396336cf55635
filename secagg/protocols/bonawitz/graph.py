"""SecAgg+ communication graphs: who shares keys and masks with whom.

Role: setup, both sides (before round 0): every party derives the same graph.

Theory of operation
-------------------
SecAgg+ (Bell et al., CCS'20) replaces the complete graph of SecAgg with a sparse,
k-regular *Harary graph* whose vertex labels are permuted by a public random seed.
Every party (server and clients) derives the same graph from the same seed and the
same client set, so the graph itself needs no transport beyond the seed.

Construction of ``H(k, n)`` on ring positions ``0 .. n-1``:

* ``k`` even: position ``p`` is joined to ``p +- 1, ..., p +- k/2`` (mod ``n``);
* ``k`` odd and ``n`` even: the same with ``(k-1)/2``, plus the diameter ``p + n/2``;
* ``k`` odd and ``n`` odd: no ``k``-regular graph exists (the degree sum ``n*k`` would be
  odd), so :func:`harary_graph` raises :class:`ConfigurationError` rather than return a
  graph in which one client has ``k + 1`` neighbours;
* ``k >= n - 1``: the complete graph.

Clients are first sorted by id (so the order in which a caller lists them does not
matter), then placed on the ring by a uniform permutation drawn from the seed: each
client gets a 128-bit AES-CTR key stream value and the ring order is a stable sort of
those values. This is the "sort by random keys" shuffle, fully vectorized; a tie between
two 128-bit values has probability below ``n**2 / 2**129`` and, because the sort is
stable, would still give every party the same graph.

Two rules this module keeps: the graph is a pure function of ``(sorted clients, degree,
seed)``, and every neighbourhood excludes the client itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secagg.errors import ConfigurationError

__all__ = [
    "MIN_SEED_BYTES",
    "complete_graph",
    "harary_adjacency",
    "harary_graph",
    "ring_order",
    "validate_graph",
]

#: A seed shorter than this could be guessed or ground by a server that picks it.
MIN_SEED_BYTES = 16
_MAX_SEED_BYTES = 1024
# Client ids travel through int64 arrays; SERVER_ID = 0 is not a client.
_MAX_CLIENT_ID = 2**63 - 1
_PERMUTATION_LABEL = b"secagg/v1/harary-permutation"


def _check_clients(clients: Sequence[int]) -> list[int]:
    """Return the client ids sorted, or raise ConfigurationError if any is invalid."""
    if isinstance(clients, (str, bytes)) or not isinstance(clients, Sequence):
        raise ConfigurationError("clients must be a sequence of int client ids")
    ids: list[int] = []
    for client in clients:
        if not isinstance(client, int) or isinstance(client, bool):
            raise ConfigurationError(f"client id {client!r} is not an int")
        if not 1 <= client <= _MAX_CLIENT_ID:
            raise ConfigurationError(f"client id {client} is outside [1, 2**63 - 1]")
        ids.append(client)
    if not ids:
        raise ConfigurationError("a graph needs at least one client")
    ids.sort()
    if len(set(ids)) != len(ids):
        raise ConfigurationError("client ids must be unique")
    return ids


def complete_graph(clients: Sequence[int]) -> dict[int, frozenset[int]]:
    """Every client is the neighbour of every other (plain SecAgg, ``k = n - 1``).

    Guarantees: a symmetric graph without self-loops in which each of the ``n``
    clients has exactly ``n - 1`` neighbours.
    Raises ConfigurationError: empty, duplicate, non-int or non-positive client ids.
    """
    ids = _check_clients(clients)
    everyone = frozenset(ids)
    return {client: everyone - {client} for client in ids}


def ring_order(n: int, degree: int, seed: bytes) -> np.ndarray:
    """A uniform permutation of ``range(n)`` determined by ``seed`` (public randomness).

    The AES-256 key is HKDF-SHA256(seed) bound to a label, ``n`` and ``degree``, so
    the same seed used elsewhere in a session yields an independent stream here.
    """
    info = _PERMUTATION_LABEL + n.to_bytes(8, "big") + degree.to_bytes(8, "big")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(seed)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    # AES-CTR over zeros is the raw key stream; update_into needs block_size - 1 spare bytes.
    out = bytearray(16 * n + 15)
    encryptor.update_into(bytes(16 * n), out)
    sort_keys = np.frombuffer(out, dtype="<u8", count=2 * n).reshape(n, 2)
    # lexsort sorts by the last key first: high word, then low word; it is stable.
    return np.lexsort((sort_keys[:, 1], sort_keys[:, 0]))


def _check_harary_inputs(clients: Sequence[int], degree: int, seed: bytes) -> list[int]:
    ids = _check_clients(clients)
    if not isinstance(degree, int) or isinstance(degree, bool):
        raise ConfigurationError("degree must be an int")
    if degree < 1:
        raise ConfigurationError(f"degree must be at least 1, got {degree}")
    if not isinstance(seed, bytes):
        raise ConfigurationError("seed must be bytes")
    if not MIN_SEED_BYTES <= len(seed) <= _MAX_SEED_BYTES:
        raise ConfigurationError(
            f"seed must be {MIN_SEED_BYTES} to {_MAX_SEED_BYTES} bytes, got {len(seed)}"
        )
    n = len(ids)
    if degree < n - 1 and degree % 2 == 1 and n % 2 == 1:
        raise ConfigurationError(
            f"no {degree}-regular graph on {n} clients exists (odd degree and odd n): "
            "use an even degree"
        )
    return ids


def harary_adjacency(
    clients: Sequence[int], degree: int, seed: bytes
) -> tuple[np.ndarray, np.ndarray]:
    """The graph of :func:`harary_graph` as arrays, for callers that work vectorized.

    Returns ``(ids, neighbours)``: ``ids`` is the sorted client ids (int64, shape
    ``(n,)``) and row ``i`` of ``neighbours`` (int64, shape ``(n, min(degree, n-1))``)
    lists the neighbours of ``ids[i]``. It creates no Python object per edge (about five
    times faster than the dict of frozensets at ``n = 10**6``). Same guarantees and errors as
    :func:`harary_graph`.
    """
    ids = _check_harary_inputs(clients, degree, seed)
    n = len(ids)
    sorted_ids = np.asarray(ids, dtype=np.int64)
    if degree >= n - 1:
        # Complete graph: row i is every id but ids[i], in increasing order.
        grid = np.broadcast_to(sorted_ids, (n, n))
        keep = ~np.eye(n, dtype=bool)
        return sorted_ids, grid[keep].reshape(n, n - 1)
    half = degree // 2
    steps = np.arange(1, half + 1, dtype=np.int64)
    offsets = np.concatenate([steps, -steps])
    if degree % 2 == 1:
        # n is even here: the diameter p <-> p + n/2 is its own reverse edge.
        offsets = np.append(offsets, n // 2)
    order = ring_order(n, degree, seed)  # ring position -> index into sorted ids
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    ring = sorted_ids[order]
    neighbours = ring[(position[:, None] + offsets[None, :]) % n]
    return sorted_ids, neighbours


def harary_graph(clients: Sequence[int], degree: int, seed: bytes) -> dict[int, frozenset[int]]:
    """The SecAgg+ graph: a ``degree``-regular Harary graph permuted by a public seed.

    Guarantees: deterministic in ``(set(clients), degree, seed)`` (the order of
    ``clients`` is irrelevant); symmetric; no self-loops; every client has exactly
    ``min(degree, n - 1)`` neighbours; ``degree >= n - 1`` gives :func:`complete_graph`.
    Harary graphs are ``degree``-connected, which the SecAgg+ privacy argument relies on
    (see :mod:`secagg.protocols.bonawitz.params`).

    Cost: the dict holds ``n * degree`` Python ints; at ``n = 10**6, degree = 38`` it
    takes seconds and gigabytes, so large simulations should use :func:`harary_adjacency`.

    Raises ConfigurationError: invalid client ids (see :func:`complete_graph`), a
    ``degree`` that is not a positive int, a ``seed`` that is not ``bytes`` of 16 to 1024
    bytes, or an odd ``degree < n - 1`` with an odd number ``n`` of clients (no regular
    graph exists).
    """
    ids = _check_harary_inputs(clients, degree, seed)
    if degree >= len(ids) - 1:
        return complete_graph(ids)
    _, neighbours = harary_adjacency(ids, degree, seed)
    rows = neighbours.tolist()
    return {client: frozenset(row) for client, row in zip(ids, rows, strict=True)}


def validate_graph(graph: Mapping[int, frozenset[int]], clients: Sequence[int]) -> None:
    """Check that ``graph`` is a well-formed communication graph over ``clients``.

    Guarantees on return: the keys of ``graph`` are exactly the (valid, unique) client
    ids; every neighbourhood is a set of client ids drawn from ``clients`` that does not
    contain its owner; and ``v in graph[u]`` exactly when ``u in graph[v]``.
    Regularity is not required (a graph may be complete or Harary).

    Raises ConfigurationError on any violation: asymmetric edges, self-loops, unknown or
    missing ids, non-int ids or neighbourhoods that are not sets.
    """
    ids = _check_clients(clients)
    if not isinstance(graph, Mapping):
        raise ConfigurationError("graph must be a mapping from client id to neighbours")
    known = frozenset(ids)
    keys = set(graph.keys())
    if keys != known:
        unknown = len(keys - known)
        missing = len(known - keys)
        raise ConfigurationError(
            f"graph ids differ from clients: {unknown} unknown, {missing} missing"
        )
    for client, neighbours in graph.items():
        if not isinstance(neighbours, Set):
            raise ConfigurationError(f"neighbours of client {client} are not a set")
        if client in neighbours:
            raise ConfigurationError(f"client {client} is its own neighbour")
        for peer in neighbours:
            if not isinstance(peer, int) or isinstance(peer, bool) or peer not in known:
                raise ConfigurationError(f"client {client} has an unknown neighbour {peer!r}")
            if client not in graph[peer]:
                raise ConfigurationError(
                    f"asymmetric edge: {peer} is a neighbour of {client} but not conversely"
                )
