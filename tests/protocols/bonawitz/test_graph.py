"""Tests of secagg.protocols.bonawitz.graph: seeded Harary graphs, complete graphs, validation."""

from __future__ import annotations

import collections
import random

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.graph import (
    complete_graph,
    harary_adjacency,
    harary_graph,
    ring_order,
    validate_graph,
)

SEED = bytes(range(32))


def ids(n: int, start: int = 1) -> list[int]:
    return list(range(start, start + n))


def is_connected(graph: dict[int, frozenset[int]], removed: set[int]) -> bool:
    alive = [c for c in graph if c not in removed]
    if not alive:
        return True
    seen = {alive[0]}
    stack = [alive[0]]
    while stack:
        for peer in graph[stack.pop()]:
            if peer not in removed and peer not in seen:
                seen.add(peer)
                stack.append(peer)
    return len(seen) == len(alive)


@st.composite
def graph_params(draw: st.DrawFn) -> tuple[list[int], int, bytes]:
    n = draw(st.integers(1, 60))
    degree = draw(st.integers(1, 70))
    assume(not (degree < n - 1 and degree % 2 == 1 and n % 2 == 1))
    clients = draw(st.lists(st.integers(1, 10**12), min_size=n, max_size=n, unique=True))
    seed = draw(st.binary(min_size=16, max_size=48))
    return clients, degree, seed


@given(graph_params())
def test_harary_graph_is_regular_symmetric_and_loop_free(
    params: tuple[list[int], int, bytes],
) -> None:
    clients, degree, seed = params
    graph = harary_graph(clients, degree, seed)
    validate_graph(graph, clients)
    assert set(graph) == set(clients)
    expected = min(degree, len(clients) - 1)
    for client, neighbours in graph.items():
        assert len(neighbours) == expected
        assert client not in neighbours
        assert all(client in graph[peer] for peer in neighbours)


@given(graph_params(), st.randoms(use_true_random=False))
def test_harary_graph_is_deterministic_and_order_free(
    params: tuple[list[int], int, bytes], rng: random.Random
) -> None:
    clients, degree, seed = params
    shuffled = list(clients)
    rng.shuffle(shuffled)
    assert harary_graph(clients, degree, seed) == harary_graph(shuffled, degree, seed)
    assert harary_graph(tuple(clients), degree, bytes(seed)) == harary_graph(clients, degree, seed)


@given(graph_params())
def test_adjacency_arrays_match_the_dict(params: tuple[list[int], int, bytes]) -> None:
    clients, degree, seed = params
    sorted_ids, neighbours = harary_adjacency(clients, degree, seed)
    assert sorted_ids.tolist() == sorted(clients)
    assert neighbours.shape == (len(clients), min(degree, len(clients) - 1))
    graph = harary_graph(clients, degree, seed)
    for client, row in zip(sorted_ids.tolist(), neighbours.tolist(), strict=True):
        assert frozenset(row) == graph[client]
        assert len(set(row)) == len(row)


@given(st.integers(5, 40), st.data())
def test_harary_graph_survives_removing_fewer_than_degree_clients(
    n: int, data: st.DataObject
) -> None:
    # Harary graphs are degree-connected: no set of degree - 1 vertices disconnects them.
    degree = data.draw(st.integers(2, n - 2).filter(lambda k: k % 2 == 0 or n % 2 == 0))
    clients = ids(n)
    graph = harary_graph(clients, degree, SEED)
    removed = data.draw(st.sets(st.sampled_from(clients), max_size=degree - 1))
    assert is_connected(graph, removed)


@pytest.mark.parametrize(("n", "degree"), [(10, 4), (12, 5), (30, 6), (31, 8), (8, 3)])
def test_graph_is_the_permuted_harary_ring(n: int, degree: int) -> None:
    clients = ids(n, start=101)
    ring = [clients[i] for i in ring_order(n, degree, SEED).tolist()]
    graph = harary_graph(clients, degree, SEED)
    for p, client in enumerate(ring):
        window = {ring[(p + s) % n] for s in range(1, degree // 2 + 1)}
        window |= {ring[(p - s) % n] for s in range(1, degree // 2 + 1)}
        if degree % 2 == 1:
            window.add(ring[(p + n // 2) % n])
        assert graph[client] == window


def test_different_seeds_give_different_graphs() -> None:
    clients = ids(50)
    graphs = {
        tuple(sorted((c, tuple(sorted(v))) for c, v in harary_graph(clients, 6, s).items()))
        for s in (bytes([i]) * 16 for i in range(8))
    }
    assert len(graphs) == 8


def test_permutation_is_roughly_uniform() -> None:
    # On 4 vertices a 2-regular graph is one of 3 four-cycles; a uniform permutation
    # picks each with probability 1/3. Seeds are fixed, so this test is deterministic.
    counts: collections.Counter[frozenset[frozenset[int]]] = collections.Counter()
    for i in range(600):
        graph = harary_graph([1, 2, 3, 4], 2, i.to_bytes(16, "big"))
        counts[frozenset(frozenset((c, p)) for c, v in graph.items() for p in v)] += 1
    assert len(counts) == 3
    assert all(140 <= c <= 260 for c in counts.values()), counts


def test_ring_order_is_a_permutation() -> None:
    order = ring_order(1000, 10, SEED)
    assert sorted(order.tolist()) == list(range(1000))
    assert order.tolist() != list(range(1000))


def test_known_answer_graph() -> None:
    # Pins the derivation (HKDF label, AES-CTR stream, sort, ring offsets): parties
    # running different versions of secagg must derive the same graph from one seed.
    graph = harary_graph(ids(8), 3, bytes(16))
    assert {c: sorted(v) for c, v in graph.items()} == {
        1: [2, 3, 7],
        2: [1, 6, 8],
        3: [1, 5, 6],
        4: [6, 7, 8],
        5: [3, 7, 8],
        6: [2, 3, 4],
        7: [1, 4, 5],
        8: [2, 4, 5],
    }


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20])
def test_complete_graph(n: int) -> None:
    clients = ids(n, start=5)
    graph = complete_graph(clients)
    validate_graph(graph, clients)
    for client, neighbours in graph.items():
        assert neighbours == frozenset(clients) - {client}
    assert harary_graph(clients, max(n - 1, 1), SEED) == graph
    assert harary_graph(clients, n + 5, SEED) == graph


@pytest.mark.parametrize(
    "clients",
    [[], [0, 1], [-3, 1], [1, 1, 2], [1, True], [1, 2.0], ["a"], "abc", [2**63], None],
)
def test_bad_clients_are_rejected(clients: object) -> None:
    with pytest.raises(ConfigurationError):
        harary_graph(clients, 2, SEED)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        complete_graph(clients)  # type: ignore[arg-type]


@pytest.mark.parametrize("degree", [0, -2, True, 2.0, "4", None])
def test_bad_degrees_are_rejected(degree: object) -> None:
    with pytest.raises(ConfigurationError):
        harary_graph(ids(10), degree, SEED)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [b"", bytes(15), bytes(1025), "x" * 32, bytearray(32), None])
def test_bad_seeds_are_rejected(seed: object) -> None:
    with pytest.raises(ConfigurationError):
        harary_graph(ids(10), 4, seed)  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "degree"), [(9, 3), (11, 5), (21, 7)])
def test_odd_degree_with_odd_n_is_rejected(n: int, degree: int) -> None:
    with pytest.raises(ConfigurationError, match="regular"):
        harary_graph(ids(n), degree, SEED)


def good_graph() -> dict[int, frozenset[int]]:
    return harary_graph(ids(10), 4, SEED)


def test_validate_accepts_good_graphs() -> None:
    validate_graph(good_graph(), ids(10))
    validate_graph(good_graph(), list(reversed(ids(10))))
    validate_graph({1: frozenset({2}), 2: frozenset({1}), 3: frozenset()}, [1, 2, 3])


def test_validate_rejects_asymmetric_edges() -> None:
    graph = good_graph()
    peer = min(graph[1])
    graph[peer] = graph[peer] - {1}
    with pytest.raises(ConfigurationError, match="asymmetric"):
        validate_graph(graph, ids(10))


def test_validate_rejects_self_loops() -> None:
    graph = good_graph()
    graph[3] = graph[3] | {3}
    with pytest.raises(ConfigurationError, match="own neighbour"):
        validate_graph(graph, ids(10))


@pytest.mark.parametrize("stranger", [11, 0, -1, True, "2", None])
def test_validate_rejects_unknown_neighbours(stranger: object) -> None:
    graph: dict[int, frozenset[object]] = dict(good_graph())
    graph[4] = graph[4] | {stranger}
    with pytest.raises(ConfigurationError):
        validate_graph(graph, ids(10))  # type: ignore[arg-type]


def test_validate_rejects_missing_and_extra_ids() -> None:
    graph = good_graph()
    with pytest.raises(ConfigurationError, match="missing"):
        validate_graph({c: v for c, v in graph.items() if c != 1}, ids(10))
    with pytest.raises(ConfigurationError, match="unknown"):
        validate_graph({**graph, 11: frozenset()}, ids(10))
    with pytest.raises(ConfigurationError):
        validate_graph(graph, ids(9))


@pytest.mark.parametrize("bad", [[2, 3], (2,), "23", 5, None])
def test_validate_rejects_non_set_neighbourhoods(bad: object) -> None:
    graph: dict[int, object] = dict(good_graph())
    graph[1] = bad
    with pytest.raises(ConfigurationError):
        validate_graph(graph, ids(10))  # type: ignore[arg-type]


@pytest.mark.parametrize("graph", [None, [1, 2], "graph"])
def test_validate_rejects_non_mappings(graph: object) -> None:
    with pytest.raises(ConfigurationError):
        validate_graph(graph, ids(2))  # type: ignore[arg-type]


def test_large_graph_arrays_are_regular() -> None:
    sorted_ids, neighbours = harary_adjacency(ids(20_000), 34, SEED)
    # Every id appears exactly degree times as a neighbour (regular and symmetric counts).
    counts = np.bincount(neighbours.ravel(), minlength=20_001)[1:]
    assert (counts == 34).all()
    assert not (neighbours == sorted_ids[:, None]).any()
