"""ProtocolConfig: validation and the threshold rules of Bonawitz et al. / SecAgg+."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.config import ACTIVE, MODES, ProtocolConfig, default_threshold
from secagg.protocols.bonawitz.graph import complete_graph, harary_graph
from secagg.protocols.bonawitz.params import find_parameters
from secagg.shamir import PRIME

SID = bytes(range(16))


def config(**overrides: object) -> ProtocolConfig:
    fields: dict[str, object] = {
        "session_id": SID,
        "clients": (1, 2, 3, 4, 5),
        "threshold": 3,
        "bits": 16,
        "vector_length": 10,
    }
    fields.update(overrides)
    return ProtocolConfig(**fields)  # type: ignore[arg-type]


@given(st.integers(2, 60), st.data())
def test_semi_honest_threshold_rule_complete_graph(n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n + 1))
    clients = tuple(range(1, n + 1))
    if 2 * t > n and 2 <= t <= n:
        assert config(clients=clients, threshold=t).threshold == t
    else:
        with pytest.raises(ConfigurationError):
            config(clients=clients, threshold=t)


@given(st.integers(2, 60), st.data())
def test_active_threshold_rule_complete_graph(n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n + 1))
    clients = tuple(range(1, n + 1))
    identities = {c: bytes([c % 256]) * 32 for c in clients}
    kwargs = {"clients": clients, "threshold": t, "mode": "active", "identities": identities}
    if 3 * t > 2 * n and t <= n:
        assert config(**kwargs).mode == "active"
    else:
        with pytest.raises(ConfigurationError):
            config(**kwargs)


def test_sparse_graph_thresholds_follow_the_neighbourhood() -> None:
    clients = tuple(range(1, 21))
    graph = harary_graph(clients, 6, bytes(16))
    assert config(clients=clients, threshold=2, neighbours=graph).degree == 6
    assert config(clients=clients, threshold=7, neighbours=graph).threshold == 7
    with pytest.raises(ConfigurationError):
        config(clients=clients, threshold=8, neighbours=graph)  # more than k + 1 holders
    identities = {c: bytes(32) for c in clients}
    assert (
        config(
            clients=clients, threshold=4, neighbours=graph, mode="active", identities=identities
        ).threshold
        == 4
    )
    with pytest.raises(ConfigurationError):  # 2t > k + 1 fails
        config(clients=clients, threshold=3, neighbours=graph, mode="active", identities=identities)


@pytest.mark.parametrize(
    ("n", "corrupt", "active"), [(100, 0.05, False), (1000, 0.05, False), (100, 0.05, True)]
)
def test_parameter_finder_output_is_accepted(n: int, corrupt: float, active: bool) -> None:
    params = find_parameters(
        n, corrupt_fraction=corrupt, dropout_fraction=0.05, semi_malicious=active
    )
    clients = list(range(1, n + 1))
    mode = "active" if active else "semi-honest"
    identities = {c: bytes(32) for c in clients} if active else None
    made = ProtocolConfig.create(
        clients,
        threshold=params.threshold,
        bits=32,
        vector_length=1,
        degree=params.degree,
        mode=mode,  # type: ignore[arg-type]
        identities=identities,
    )
    assert made.degree == min(params.degree, n - 1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"session_id": b"short"},
        {"session_id": "a string id of sixteen"},
        {"session_id": bytes(65)},
        {"clients": (1,)},
        {"clients": (1, 1, 2)},
        {"clients": (0, 1, 2)},
        {"clients": (1, 2, PRIME)},
        {"clients": (1, 2, True)},
        {"clients": "123"},
        {"bits": 0},
        {"bits": 65},
        {"bits": 16.0},
        {"vector_length": 0},
        {"threshold": 1},
        {"threshold": 6},
        {"mode": "malicious"},
        {"identities": {1: bytes(32)}},  # identities in semi-honest mode
        {"mode": "active", "threshold": 4},  # no identities
        {"mode": "active", "threshold": 4, "identities": {c: bytes(31) for c in range(1, 6)}},
        {"mode": "active", "threshold": 4, "identities": {c: bytes(32) for c in range(1, 5)}},
        {"neighbours": {1: frozenset({2}), 2: frozenset({1})}},  # missing clients
        {
            "neighbours": {
                1: frozenset({2}),
                2: frozenset({3}),
                3: frozenset({1}),
                4: frozenset({5}),
                5: frozenset({4}),
            }
        },  # asymmetric
        {
            "neighbours": {
                1: frozenset({2, 3}),
                2: frozenset({1}),
                3: frozenset({1}),
                4: frozenset({5}),
                5: frozenset({4}),
            },
            "threshold": 2,
        },  # irregular
    ],
)
def test_bad_configs_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        config(**overrides)


def test_normalization_and_views() -> None:
    made = config(clients=[5, 3, 1, 2, 4])
    assert made.clients == (1, 2, 3, 4, 5)
    assert made.is_complete and made.degree == 4
    assert made.neighbours_of(3) == frozenset({1, 2, 4, 5})
    assert made.holders_of(3) == frozenset(range(1, 6))
    with pytest.raises(ConfigurationError):
        made.neighbours_of(9)
    explicit = config(neighbours=complete_graph([1, 2, 3, 4, 5]))
    assert explicit.is_complete
    assert str(made.dtype) == "uint32" and str(config(bits=33).dtype) == "uint64"
    assert hash(made) == hash(config())
    assert SID.hex() not in repr(made)


def test_create_draws_a_fresh_session_and_a_seeded_graph() -> None:
    a = ProtocolConfig.create(range(1, 11), threshold=3, bits=8, vector_length=4, degree=4)
    b = ProtocolConfig.create(range(1, 11), threshold=3, bits=8, vector_length=4, degree=4)
    assert a.session_id != b.session_id and len(a.session_id) == 16
    assert a.degree == 4 and not a.is_complete
    same = ProtocolConfig.create(
        range(1, 11), threshold=3, bits=8, vector_length=4, degree=4, session_id=a.session_id
    )
    assert same.neighbours == a.neighbours


@given(n=st.integers(3, 40), mode=st.sampled_from(MODES), data=st.data())
def test_default_threshold_is_the_smallest_the_config_accepts(
    n: int, mode: str, data: st.DataObject
) -> None:
    """On the complete graph and on active SecAgg+ graphs, default_threshold is exactly the
    smallest accepted t; on semi-honest SecAgg+ graphs it is an accepted majority."""
    degrees = [k for k in range(2, n - 1) if (n * k) % 2 == 0]
    degree = data.draw(st.sampled_from([None, *degrees]), label="degree")
    holders = n if degree is None else degree + 1
    t = default_threshold(holders, mode, complete=degree is None)  # type: ignore[arg-type]
    ids = list(range(1, n + 1))
    identities = {c: bytes([c]) * 32 for c in ids} if mode == ACTIVE else None

    def make(threshold: int) -> ProtocolConfig:
        return ProtocolConfig.create(
            ids, threshold=threshold, bits=16, vector_length=4, mode=mode,  # type: ignore[arg-type]
            degree=degree, identities=identities,
        )

    assert make(t).threshold == t
    assert 2 * t > holders
    if t > 2 and (degree is None or mode == ACTIVE):
        with pytest.raises(ConfigurationError):
            make(t - 1)
