"""Tests of secagg.cost.bonawitz: the analytic bytes must match real runs exactly."""

from __future__ import annotations

import collections
import math
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from secagg.cost.bonawitz import bonawitz_costs
from secagg.cost.common import (
    array_size,
    bin_size,
    hypergeometric_mean,
    id_size_sum,
    uint_size,
)
from secagg.errors import ConfigurationError
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.client import Client, generate_identities
from secagg.protocols.bonawitz.config import ACTIVE, SEMI_HONEST, ProtocolConfig
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_NAMES, decode_message
from secagg.protocols.bonawitz.server import Server
from secagg.signing import SigningKey
from secagg.sim.simulator import DropoutSchedule, simulate

AFTER_SHARING = ROUND_NAMES[ROUND_NAMES.index(ROUND_MASKED_INPUT) :]


def make_config(
    n: int, threshold: int, bits: int, length: int, *, active: bool, degree: int | None
) -> tuple[ProtocolConfig, dict[int, SigningKey] | None]:
    clients = list(range(1, n + 1))
    identities = generate_identities(clients) if active else None
    config = ProtocolConfig.create(
        clients,
        threshold=threshold,
        bits=bits,
        vector_length=length,
        mode=ACTIVE if active else SEMI_HONEST,
        degree=degree,
        identities={c: key.verify_key for c, key in identities.items()} if identities else None,
    )
    return config, identities


def run_and_count(
    config: ProtocolConfig,
    dropped: frozenset[int],
    identities: dict[int, SigningKey] | None = None,
    seed: int = 0,
) -> dict[str, list[int]]:
    """Run one session, moving every message as bytes; ``dropped`` clients vanish before
    the masked-input round (as the simulator does). Returns round -> [bytes up, down]."""
    rng = np.random.default_rng(seed)
    high = 1 << config.bits if config.bits < 64 else 2**63
    server = Server(config, threads=1)
    clients = {
        c: Client(
            config,
            c,
            rng.integers(0, high, config.vector_length, dtype=np.uint64),
            identities[c] if identities else None,
        )
        for c in config.clients
    }
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    outgoing = server.start()
    while True:
        replies = []
        for message in outgoing:
            round_name = message.round_name
            if message.recipient in dropped and round_name in AFTER_SHARING:
                continue
            data = message.to_bytes()
            counts[round_name][1] += len(data)
            for reply in clients[message.recipient].receive(decode_message(data)):
                encoded = reply.to_bytes()
                counts[reply.round_name][0] += len(encoded)
                replies.extend(server.receive(decode_message(encoded, sender=reply.sender)))
        if replies:
            outgoing = replies
            continue
        if server.done:
            break
        outgoing = server.close_round()
    assert server.result is not None
    assert server.result.included == frozenset(config.clients) - dropped
    return dict(counts)


def assert_matches(model: dict[str, Any], counts: dict[str, list[int]]) -> None:
    rounds = model["rounds"]
    assert set(rounds) == set(counts)
    for name, (up, down) in counts.items():
        assert rounds[name]["server_bytes_up"] == pytest.approx(up, abs=1e-6), name
        assert rounds[name]["server_bytes_down"] == pytest.approx(down, abs=1e-6), name


@st.composite
def sessions(draw: st.DrawFn) -> dict[str, Any]:
    """Small sessions whose byte counts are the same for every dropout set: ids below
    128 and, for sparse graphs, fewer than 16 holders (so no list header grows)."""
    n = draw(st.integers(3, 12))
    active = draw(st.booleans())
    if draw(st.booleans()):
        degree = None
        k = n - 1
        low = 2 * n // 3 + 1 if active else n // 2 + 1
    else:
        k = draw(st.integers(2, max(2, n - 2)).filter(lambda d: d % 2 == 0 or n % 2 == 0))
        assume(k < n - 1)
        degree = k
        low = 2 * (k + 1) // 3 + 1 if active else 2
    threshold = draw(st.integers(max(low, 2), k + 1))
    dropouts = draw(st.integers(0, n - threshold))
    return {
        "n": n,
        "threshold": threshold,
        "bits": draw(st.sampled_from([1, 7, 16, 32, 33, 64])),
        "length": draw(st.integers(1, 300)),
        "active": active,
        "degree": degree,
        "dropped": frozenset(draw(st.permutations(range(1, n + 1)))[:dropouts]),
    }


@given(sessions())
def test_model_matches_recorded_bytes(session: dict[str, Any]) -> None:
    n, t, bits, length = session["n"], session["threshold"], session["bits"], session["length"]
    active, degree, dropped = session["active"], session["degree"], session["dropped"]
    config, identities = make_config(n, t, bits, length, active=active, degree=degree)
    # The model's setting: every neighbourhood keeps t survivors (else the protocol prunes).
    survivors = frozenset(config.clients) - dropped
    assume(all(len(config.holders_of(c) & survivors) >= t for c in config.clients))
    counts = run_and_count(config, dropped, identities)
    model = bonawitz_costs(n, length, bits, t, degree, len(dropped), active=active)
    if active and dropped and degree is not None:
        # The one term that depends on which clients dropped, not only on how many:
        # survivor u receives its k - X surviving neighbours' signatures ([id, bin(64)]
        # = 68 bytes each); the model counts their expected number.
        realized = sum(len(config.neighbours_of(c) & survivors) for c in survivors)
        alive = len(survivors)
        expected = alive * degree * (alive - 1) / (n - 1)
        model["rounds"]["unmasking"]["server_bytes_down"] += 68 * (realized - expected)
    assert_matches(model, counts)


@pytest.mark.parametrize(("n", "degree"), [(200, 4), (140, 6)])
def test_model_matches_with_multibyte_ids(n: int, degree: int) -> None:
    # Ids from 128 up take 2 msgpack bytes: the id sums must count them exactly.
    config = ProtocolConfig.create(
        list(range(1, n + 1)), threshold=3, bits=12, vector_length=5, degree=degree
    )
    model = bonawitz_costs(n, 5, 12, 3, degree)
    assert_matches(model, run_and_count(config, frozenset()))


def test_model_matches_the_simulator_ledger() -> None:
    n, m, bits, t = 9, 40, 20, 6
    config = ProtocolConfig.create(list(range(1, n + 1)), threshold=t, bits=bits, vector_length=m)
    rng = np.random.default_rng(1)
    inputs = {c: rng.integers(0, 1 << bits, m, dtype=np.uint64) for c in config.clients}
    schedule = DropoutSchedule({ROUND_MASKED_INPUT: frozenset({2, 7})})
    result = simulate(config, inputs, dropouts=schedule)
    assert result.matches
    model = bonawitz_costs(n, m, bits, t, dropouts=2)
    for name in result.costs.rounds:
        summary = result.costs.round_summary(name)
        assert model["rounds"][name]["server_bytes_up"] == summary.server.bytes_up
        assert model["rounds"][name]["server_bytes_down"] == summary.server.bytes_down
        assert model["rounds"][name]["clients"] == summary.clients or name not in (
            ROUND_MASKED_INPUT,
        )


def counted(
    monkeypatch: pytest.MonkeyPatch,
    counter: collections.Counter[str],
    module: Any,
    name: str,
    measure: Any = None,
) -> None:
    """Wrap ``module.name`` so that each call adds ``measure(*args, **kwargs)`` (default 1)
    to ``counter[module short name + name]``."""
    original = getattr(module, name)
    label = f"{module.__name__.rsplit('.', 1)[-1]}.{name}"

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counter[label] += 1 if measure is None else measure(*args, **kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


@pytest.mark.parametrize(("n", "degree", "threshold", "dropouts"), [(7, None, 4, 2), (10, 4, 3, 2)])
def test_operation_counts_match_instrumented_runs(
    monkeypatch: pytest.MonkeyPatch, n: int, degree: int | None, threshold: int, dropouts: int
) -> None:
    from secagg import keys
    from secagg.protocols.bonawitz import client as client_module
    from secagg.protocols.bonawitz import server_unmasking

    config, _ = make_config(n, threshold, 8, 16, active=False, degree=degree)
    dropped = frozenset(range(1, dropouts + 1))
    survivors = frozenset(config.clients) - dropped
    assert all(len(config.holders_of(c) & survivors) >= threshold for c in config.clients)
    calls: collections.Counter[str] = collections.Counter()
    counted(monkeypatch, calls, client_module, "agree")
    counted(monkeypatch, calls, client_module, "seal_box")
    counted(monkeypatch, calls, client_module, "open_box")
    counted(monkeypatch, calls, client_module, "self_mask_commitment")
    counted(
        monkeypatch,
        calls,
        client_module,
        "deal",
        lambda mask_key, seed, holders, t: 2 * len(holders),
    )
    counted(
        monkeypatch,
        calls,
        client_module,
        "mask_checked_input",
        lambda x, **kw: len(kw["pair_seeds"]) + 1,
    )
    counted(monkeypatch, calls, server_unmasking, "agree")
    counted(monkeypatch, calls, server_unmasking, "self_mask_commitment")
    counted(
        monkeypatch,
        calls,
        server_unmasking,
        "apply_masks",
        lambda acc, **kw: len(kw.get("add_seeds", ())) + len(kw.get("sub_seeds", ())),
    )
    counted(
        monkeypatch,
        calls,
        server_unmasking,
        "interpolate",
        lambda values, holders: values.shape[1],
    )
    exchange = keys.KeyPair.exchange
    monkeypatch.setattr(
        keys.KeyPair,
        "exchange",
        lambda self, *a, **kw: (calls.update(["exchange"]), exchange(self, *a, **kw))[1],
    )
    run_and_count(config, dropped)
    model = bonawitz_costs(n, 16, 8, threshold, degree, dropouts)

    def total(party: str, op: str) -> float:
        rounds = model["rounds"].values()
        if party == "server":
            return float(sum(r["server_ops"].get(op, 0) for r in rounds))
        return float(sum(r["client_ops"].get(op, 0) * r["clients"] for r in rounds))

    masked = model["rounds"][ROUND_MASKED_INPUT]
    assert calls["client.agree"] == masked["client_ops"]["key_agreements"] * masked["clients"]
    assert calls["client.seal_box"] == total("client", "aead_seals")
    assert calls["client.open_box"] == total("client", "aead_opens")
    # One commitment per client, and one challenge derivation per client in ShareCheck.
    assert calls["client.self_mask_commitment"] == total("client", "hashes") - n
    assert calls["client.deal"] == total("client", "shamir_share_evaluations")
    assert calls["client.mask_checked_input"] == total("client", "prg_expansions")
    assert calls["server_unmasking.self_mask_commitment"] == total("server", "hashes")
    assert calls["server_unmasking.interpolate"] == total(
        "server", "shamir_reconstructions"
    )
    # The server rebuilds one pairwise mask per (dropped, surviving neighbour) pair. The
    # model counts the expected number of such pairs over random dropout sets; the
    # realized number is checked here, and equals it for the complete graph.
    pairs = sum(len(config.neighbours_of(c) & survivors) for c in dropped)
    expected_pairs = total("server", "key_agreements") - 2 * n
    assert expected_pairs == pytest.approx(dropouts * config.degree * len(survivors) / (n - 1))
    if degree is None:
        assert pairs == pytest.approx(expected_pairs)
    assert calls["server_unmasking.agree"] == pairs
    assert calls["server_unmasking.apply_masks"] == len(survivors) + pairs
    assert total("server", "prg_expansions") == pytest.approx(len(survivors) + expected_pairs)
    # Every X25519 exchange: the clients' agreements (the box channels of ShareKeys and the
    # pairwise masks), the server's key probes and rebuilds.
    assert calls["exchange"] == (
        total("client", "key_agreements") + 2 * n + calls["server_unmasking.agree"]
    )


def test_totals_and_per_client_figures_are_consistent() -> None:
    model = bonawitz_costs(1000, 100_000, 16, 17, 30, dropouts=50)
    rounds = model["rounds"]
    assert set(rounds) == {
        "advertise_keys", "share_keys", "share_check", "masked_input", "unmasking"
    }
    assert rounds["masked_input"]["clients"] == 950
    for r in rounds.values():
        assert r["client_bytes_up"] * r["clients"] == pytest.approx(r["server_bytes_up"])
    totals = model["totals"]
    assert totals["server_bytes_up"] == pytest.approx(
        sum(r["server_bytes_up"] for r in rounds.values())
    )
    # The masked input dominates a client's upload: 200 000 bytes plus a small header.
    assert 200_000 < rounds["masked_input"]["client_bytes_up"] < 200_040
    assert model["operations"]["client"]["prg_elements"] == 31 * 100_000
    server = model["operations"]["server"]
    assert server["shamir_reconstructions"] == 1000
    assert server["key_agreements"] == pytest.approx(2 * 1000 + 50 * 30 * 950 / 999)
    assert model["parameters"]["degree"] == 30 and not model["parameters"]["complete"]


def test_complete_graph_costs_grow_with_n_and_active_mode_costs_more() -> None:
    small = bonawitz_costs(100, 1000, 16, 51)
    large = bonawitz_costs(1000, 1000, 16, 501)
    assert small["parameters"]["degree"] == 99 and small["parameters"]["complete"]
    assert large["totals"]["client_bytes_up"] > 9 * small["totals"]["client_bytes_up"] / 2
    active = bonawitz_costs(100, 1000, 16, 67, active=True)
    assert "consistency_check" in active["rounds"]
    assert active["totals"]["client_bytes_down"] > small["totals"]["client_bytes_down"]
    # Two key proofs and the advertisement, a signature per holder's boxes, U3.
    assert active["operations"]["client"]["signatures"] == 3 + 100 + 1
    assert small["operations"]["client"]["signatures"] == 2


def test_dropouts_raise_server_work_only_in_unmasking() -> None:
    none = bonawitz_costs(500, 10_000, 32, 251)
    some = bonawitz_costs(500, 10_000, 32, 251, dropouts=50)
    assert none["operations"]["server"]["key_agreements"] == 2 * 500
    assert some["operations"]["server"]["key_agreements"] == pytest.approx(
        2 * 500 + 50 * 450, rel=1e-12
    )
    assert some["rounds"]["advertise_keys"] == none["rounds"]["advertise_keys"]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63])
def test_msgpack_int_sizes(value: int) -> None:
    assert uint_size(value) == len(msgpack.packb(value))


@pytest.mark.parametrize("length", [0, 1, 255, 256, 65535, 65536])
def test_msgpack_bin_and_array_sizes(length: int) -> None:
    assert bin_size(length) == len(msgpack.packb(bytes(length), use_bin_type=True))
    assert array_size(length) == len(msgpack.packb([0] * length)) - length


@given(st.integers(1, 70_000))
def test_id_size_sum(n: int) -> None:
    assert id_size_sum(n) == sum(uint_size(i) for i in range(1, n + 1))


@given(st.integers(1, 30), st.data())
def test_hypergeometric_mean_is_exact(total: int, data: st.DataObject) -> None:
    marked = data.draw(st.integers(0, total))
    draws = data.draw(st.integers(0, total))
    exact = sum(
        x * math.comb(marked, x) * math.comb(total - marked, draws - x) for x in range(0, draws + 1)
    ) / math.comb(total, draws)
    assert hypergeometric_mean(lambda x: x, total, marked, draws) == pytest.approx(exact)
    assert hypergeometric_mean(lambda x: 1, total, marked, draws) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1, 10, 16, 1), {}),
        ((10, 0, 16, 6), {}),
        ((10, 10, 0, 6), {}),
        ((10, 10, 65, 6), {}),
        ((10, 10, 16, 0), {}),
        ((10, 10, 16, 11), {}),
        ((10, 10, 16, 6, 0), {}),
        ((10, 10, 16, 4, 2), {}),  # t > k + 1
        ((10, 10, 16, 6, None, 5), {}),  # fewer than t survivors
        ((10, 10, 16, 6, None, -1), {}),
        ((10.0, 10, 16, 6), {}),
        ((10, 10, True, 6), {}),
        ((10, 10, 16, 6), {"active": 1}),
        ((10, 10, 16, 6), {"session_id_bytes": 8}),
    ],
)
def test_invalid_arguments_are_rejected(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        bonawitz_costs(*args, **kwargs)  # type: ignore[arg-type]


def test_server_id_is_zero() -> None:
    # The header size assumes the server's id encodes in one byte.
    assert uint_size(SERVER_ID) == 1
