"""The in-process simulator: dropouts, the plaintext check, cost accounting, lazy inputs."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.config import ACTIVE, SEMI_HONEST, ProtocolConfig
from secagg.protocols.bonawitz.messages import ROUND_NAMES
from secagg.protocols.bonawitz.spec import ActiveSimulation
from secagg.protocols.registry import (
    ProtocolSpec,
    SimulationParams,
    get_protocol,
    protocol_for_config,
    register_protocol,
)
from secagg.sim.ledger import CostLedger, PartyCost, format_bytes
from secagg.sim.simulator import DropoutSchedule, simulate
from secagg.testing import SpecTarget, predict_outcome
from secagg.testing.strategies import client_inputs, dropout_schedules, protocol_configs
from tests.helpers.simulator_toy import ROUNDS, ToyConfig, decode, toy_spec

register_protocol(toy_spec(), replace=True)

TOY_BITS = st.sampled_from([1, 7, 16, 32, 33, 64])


def _inputs(n: int, m: int, bits: int, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = np.uint32 if bits <= 32 else np.uint64
    return {c: rng.integers(0, 1 << bits, m, dtype=dtype) for c in range(1, n + 1)}


def _plain_sum(inputs: dict[int, np.ndarray], ids: frozenset[int], bits: int) -> np.ndarray:
    total = np.zeros(next(iter(inputs.values())).shape, dtype=np.uint64)
    for c in ids:
        total += inputs[c].astype(np.uint64)
    return total & np.uint64((1 << bits) - 1) if bits < 64 else total


# --- dropout schedules -----------------------------------------------------------------------


def test_from_rate_is_deterministic_and_counts() -> None:
    ids = list(range(1, 101))
    a = DropoutSchedule.from_rate(ids, 0.05, "masked_input", seed=7)
    b = DropoutSchedule.from_rate(ids, 0.05, "masked_input", seed=7)
    c = DropoutSchedule.from_rate(ids, 0.05, "masked_input", seed=8)
    assert a == b
    assert len(a.by_round["masked_input"]) == 5
    assert a.clients <= set(ids)
    assert a != c  # a different seed picks a different set (fixed seeds: deterministic)
    assert DropoutSchedule.from_rate(ids, 0.0, "x", 0).clients == frozenset()
    assert DropoutSchedule.from_rate(ids, 1.0, "x", 0).clients == frozenset(ids)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_from_rate_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ConfigurationError):
        DropoutSchedule.from_rate([1, 2, 3], rate, "share_keys", 0)


def test_schedule_validation_and_union() -> None:
    with pytest.raises(ConfigurationError):
        DropoutSchedule({"a": frozenset({1}), "b": frozenset({1})})
    with pytest.raises(ConfigurationError):
        DropoutSchedule({"a": frozenset({0})})
    with pytest.raises(ConfigurationError):
        DropoutSchedule({"a": frozenset({True})})  # type: ignore[arg-type]
    merged = DropoutSchedule({"a": frozenset({1})}) | DropoutSchedule({"b": frozenset({2})})
    assert merged.by_round == {"a": {1}, "b": {2}}
    with pytest.raises(ConfigurationError):
        _ = DropoutSchedule({"a": frozenset({1})}) | DropoutSchedule({"b": frozenset({1})})


# --- the transport, on the toy protocol ------------------------------------------------------


@given(st.data())
def test_toy_matches_plaintext_sum_under_any_dropouts(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 8), label="n")
    config = ToyConfig(n, data.draw(st.integers(1, 16), label="m"), data.draw(TOY_BITS, "bits"))
    # Only uploaders that confirm are included: "confirm" is the toy's input round.
    target = SpecTarget(toy_spec(), config, threshold=1, input_round="confirm")
    inputs = data.draw(client_inputs(target, headroom="none"), label="inputs")
    schedule = data.draw(dropout_schedules(target), "drops")
    survivors = frozenset(target.clients) - schedule.clients
    if not survivors:  # below the toy's threshold of 1: the server must abort, not lie
        with pytest.raises(ProtocolAbort):
            simulate(config, inputs, dropouts=schedule)
        return
    result = simulate(config, inputs, dropouts=schedule)
    assert result.aggregate.included == survivors
    assert result.matches
    np.testing.assert_array_equal(result.expected, _plain_sum(inputs, survivors, config.bits))
    assert set(result.dropped) == schedule.clients
    assert all(result.dropped[c] == r for r, cs in schedule.by_round.items() for c in cs)


def test_wrong_total_is_detected() -> None:
    result = simulate(ToyConfig(4, 5, 16, wrong_total=True), _inputs(4, 5, 16))
    assert not result.matches
    assert result.summary()["matches_plaintext_sum"] is False


def test_too_many_dropouts_abort() -> None:
    schedule = DropoutSchedule({"upload": frozenset({1, 2, 3})})
    with pytest.raises(ProtocolAbort):
        simulate(ToyConfig(4, 5, 16, threshold=2), _inputs(4, 5, 16), dropouts=schedule)


def test_schedule_must_name_real_rounds_and_clients() -> None:
    with pytest.raises(ConfigurationError, match="no round"):
        simulate(ToyConfig(3, 2, 8), _inputs(3, 2, 8), dropouts=DropoutSchedule({"nope": {1}}))
    with pytest.raises(ConfigurationError, match="unconfigured"):
        simulate(ToyConfig(3, 2, 8), _inputs(3, 2, 8), dropouts=DropoutSchedule({"hello": {9}}))


def test_bad_inputs_are_rejected() -> None:
    good = _inputs(3, 4, 8)
    with pytest.raises(ConfigurationError):
        simulate(ToyConfig(3, 4, 8), {1: good[1], 2: good[2]})  # missing client 3
    for bad in (
        np.full(4, 256, dtype=np.uint32),  # out of range for 8 bits
        np.zeros(5, dtype=np.uint32),  # wrong length
        np.full(4, -1, dtype=np.int64),  # negative
        np.zeros(4, dtype=np.float64),  # not integers
        np.zeros((2, 2), dtype=np.uint32),  # not a vector
    ):
        with pytest.raises(ConfigurationError):
            simulate(ToyConfig(3, 4, 8), {**good, 3: bad})
    with pytest.raises(ConfigurationError):
        simulate(ToyConfig(3, 4, 8), 42)  # type: ignore[arg-type]


def test_lazy_factory_inputs() -> None:
    n, m, bits = 6, 9, 12
    table = _inputs(n, m, bits, seed=3)
    calls: Counter[int] = Counter()

    def factory(cid: int) -> np.ndarray:
        calls[cid] += 1
        return table[cid].copy()

    # 2 vanish before uploading (never asked), 5 after uploading (asked again to be taken
    # back out of the check sum), the rest are asked exactly once.
    schedule = DropoutSchedule({"upload": frozenset({2}), "confirm": frozenset({5})})
    result = simulate(ToyConfig(n, m, bits), factory, dropouts=schedule)
    assert result.matches
    assert 2 not in calls
    assert calls[5] == 2
    assert all(calls[c] == 1 for c in (1, 3, 4, 6))


# --- cost accounting -------------------------------------------------------------------------


def _recording_spec(base: ProtocolSpec, log: list[tuple[int, int, int]]) -> ProtocolSpec:
    def recording_decode(data: bytes, sender: int):  # type: ignore[no-untyped-def]
        message = base.decode(data, sender)
        log.append((message.sender, message.recipient, len(data)))
        return message

    return dataclasses.replace(base, decode=recording_decode)


def test_costs_add_up_to_the_encoded_messages() -> None:
    log: list[tuple[int, int, int]] = []
    register_protocol(_recording_spec(toy_spec(), log), replace=True)
    try:
        n = 5
        schedule = DropoutSchedule({"confirm": frozenset({4})})
        result = simulate(
            ToyConfig(n, 33, 16), _inputs(n, 33, 16), dropouts=schedule, protocol="toy"
        )
    finally:
        register_protocol(toy_spec(), replace=True)
    costs = result.costs
    assert costs.rounds == ROUNDS
    for cid in range(1, n + 1):
        up = sum(size for s, r, size in log if s == cid)
        down = sum(size for s, r, size in log if r == cid)
        total = costs.party_total(cid)
        assert total.bytes_up == up
        assert total.bytes_down == down
        assert total.messages_up == sum(1 for s, _, _ in log if s == cid)
    server = costs.party_total(SERVER_ID)
    assert server.bytes_up == sum(size for _, r, size in log if r == SERVER_ID)
    assert server.bytes_down == sum(size for s, _, size in log if s == SERVER_ID)
    # The upload round carries the vectors: 33 uint64 values plus a small header each.
    assert costs.cost("upload", 1).bytes_up > 33 * 8
    # Client 4 vanished in confirm: nothing it would have sent there was counted.
    assert costs.cost("confirm", 4).bytes_up == 0
    assert all(costs.cost(r, c).seconds >= 0 for r in ROUNDS for c in range(n + 1))
    summary = result.summary()
    assert summary["costs"]["server_total"]["bytes_up"] == server.bytes_up  # type: ignore[index]
    table = costs.format_table()
    assert all(name in table for name in ROUNDS) and "total" in table


def test_ledger_directions_and_errors() -> None:
    ledger = CostLedger()
    ledger.record_message("r", 3, SERVER_ID, 10)
    ledger.record_message("r", SERVER_ID, 3, 4)
    ledger.record_time("r", 3, 0.5)
    assert ledger.cost("r", 3) == PartyCost(0.5, 10, 4, 1, 1)
    assert ledger.cost("r", SERVER_ID) == PartyCost(0.0, 10, 4, 1, 1)
    assert ledger.cost("missing", 3) == PartyCost()
    from secagg.errors import UsageError

    with pytest.raises(UsageError):
        ledger.record_message("r", 1, 2, 5)
    with pytest.raises(UsageError):
        ledger.record_time("r", 1, -1.0)
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(12) == "12 B"


# --- the registry ------------------------------------------------------------------------------


def test_registry_lookup() -> None:
    assert get_protocol("toy").decode is decode
    with pytest.raises(ConfigurationError):
        get_protocol("no-such-protocol")
    with pytest.raises(ConfigurationError):
        register_protocol(toy_spec())  # taken
    with pytest.raises(ConfigurationError):
        protocol_for_config(object())
    # The first registered spec taking a ToyConfig wins (other test modules register
    # toy variants sharing the class, e.g. tests/cost's "toy-costed").
    assert protocol_for_config(ToyConfig(2, 1, 8)).name.startswith("toy")
    complete = ProtocolConfig.create([1, 2, 3], threshold=2, bits=16, vector_length=4)
    assert protocol_for_config(complete).name == "bonawitz"
    assert set(get_protocol("bonawitz").round_names) <= set(ROUND_NAMES)


# --- the real protocols --------------------------------------------------------------------

# Semi-honest sessions have no consistency check round: the client never sees it.
_REAL_ROUNDS = ("advertise_keys", "share_keys", "masked_input", "unmasking")


def _config(n: int, m: int, bits: int, *, degree: int | None = None, t: int | None = None):  # type: ignore[no-untyped-def]
    threshold = t if t is not None else n // 2 + 1
    return ProtocolConfig.create(
        list(range(1, n + 1)), threshold=threshold, bits=bits, vector_length=m, degree=degree
    )


def _check_against_the_oracle(
    config: ProtocolConfig,
    inputs: dict[int, np.ndarray],
    schedule: DropoutSchedule,
    simulation: ActiveSimulation | None = None,
) -> None:
    """simulate() aborts exactly when :func:`secagg.testing.predict_outcome` says so, else
    sums exactly the promised clients. ``simulation`` (active mode) is what is simulated."""
    vanished = {c: r for r, ids in schedule.by_round.items() for c in ids}
    promised = predict_outcome(config, vanished)
    run = simulation if simulation is not None else config
    if promised.aborts:
        with pytest.raises(ProtocolAbort):
            simulate(run, inputs, dropouts=schedule)
        return
    result = simulate(run, inputs, dropouts=schedule)
    assert result.protocol == ("bonawitz" if config.is_complete else "secagg+")
    assert result.aggregate.included == promised.included
    assert set(result.aggregate.excluded) == set(config.clients) - set(promised.included or ())
    assert result.matches
    np.testing.assert_array_equal(
        result.expected, _plain_sum(inputs, result.aggregate.included, config.bits)
    )


@given(st.data())
def test_bonawitz_matches_plaintext_sum_under_dropouts_at_every_round(
    data: st.DataObject,
) -> None:
    config = data.draw(
        protocol_configs(
            min_clients=3,
            max_clients=8,
            modes=[SEMI_HONEST],
            sparse=False,
            bits=st.sampled_from([1, 8, 17, 32, 40, 64]),
            max_vector_length=40,
        ),
        label="config",
    )
    inputs = data.draw(client_inputs(config, headroom="none"), label="inputs")
    _check_against_the_oracle(config, inputs, data.draw(dropout_schedules(config), "drops"))


@given(st.data())
def test_secagg_plus_under_dropout_rates(data: st.DataObject) -> None:
    config = data.draw(
        protocol_configs(
            min_clients=6,
            max_clients=10,
            modes=[SEMI_HONEST],
            sparse=True,
            bits=st.just(16),
            min_vector_length=8,
            max_vector_length=8,
        ),
        label="config",
    )
    inputs = data.draw(client_inputs(config, headroom="none"), label="inputs")
    rate = data.draw(st.floats(0.0, 0.3), label="rate")
    round_name = data.draw(st.sampled_from(_REAL_ROUNDS), label="round")
    schedule = DropoutSchedule.from_rate(
        config.clients, rate, round_name, data.draw(st.integers(0, 2**16), "seed")
    )
    _check_against_the_oracle(config, inputs, schedule)


@given(st.data())
def test_active_simulation_under_dropouts_at_every_round(data: st.DataObject) -> None:
    """ActiveSimulation (fresh identities, the simulator playing the registry) runs the
    five rounds, consistency check included, with the oracle's outcome under any dropouts."""
    n = data.draw(st.integers(3, 9), label="n")
    sparse = data.draw(st.booleans(), label="sparse")
    # Harary graphs need an even degree (or k = n - 1, the complete graph).
    degree = 2 * data.draw(st.integers(1, (n - 1) // 2), label="half k") if sparse else None
    params = SimulationParams(clients=n, dim=16, bits=20, degree=degree)
    simulation = ActiveSimulation.create(params, sparse=sparse)
    config = simulation.config
    assert config.mode == ACTIVE and len(simulation.signing_keys) == n
    inputs = data.draw(client_inputs(config, headroom="none"), label="inputs")
    # Rates, not graph-aware schedules: the graph comes from a fresh session id, and draws
    # that depend on it would differ when hypothesis replays the example.
    schedule = DropoutSchedule.from_rate(
        config.clients,
        data.draw(st.floats(0.0, 0.6), label="rate"),
        data.draw(st.sampled_from(ROUND_NAMES), label="round"),
        data.draw(st.integers(0, 2**16), label="seed"),
    )
    _check_against_the_oracle(config, inputs, schedule, simulation)


def test_active_simulation_keeps_keys_out_of_reprs_and_the_server() -> None:
    simulation = ActiveSimulation.create(
        SimulationParams(clients=4, dim=8, bits=16), sparse=False
    )
    spec = protocol_for_config(simulation)
    assert spec.name == "bonawitz" and simulation.config.threshold == 3  # t > 2n/3
    text = repr(simulation)
    for key in simulation.signing_keys.values():
        assert key.private_bytes().hex() not in text
    server = spec.make_server(simulation)
    assert not any(isinstance(v, ActiveSimulation) for v in vars(server).values())
    with pytest.raises(ConfigurationError):
        spec.make_client(simulation, 99, lambda: np.zeros(8, np.uint32))


def test_real_protocol_lazy_inputs_and_bytes() -> None:
    n, m, bits = 5, 1000, 24
    config = _config(n, m, bits)
    table = _inputs(n, m, bits, seed=11)
    calls: Counter[int] = Counter()

    def factory(cid: int) -> np.ndarray:
        calls[cid] += 1
        return table[cid]

    log: list[tuple[int, int, int]] = []
    spec = _recording_spec(get_protocol("bonawitz"), log)
    schedule = DropoutSchedule({"share_keys": frozenset({2}), "unmasking": frozenset({4})})
    result = simulate(config, factory, dropouts=schedule, protocol=spec)
    assert result.matches
    assert result.aggregate.included == {1, 3, 4, 5}
    # Each client is asked for its vector once, when it masks; 2 never got that far.
    assert calls == Counter({1: 1, 3: 1, 4: 1, 5: 1})
    costs = result.costs
    for cid in range(1, n + 1):
        assert costs.party_total(cid).bytes_up == sum(s for a, _, s in log if a == cid)
        assert costs.party_total(cid).bytes_down == sum(s for _, b, s in log if b == cid)
    # The masked input is bit-packed at exactly `bits` bits, plus a small header.
    masked = costs.cost("masked_input", 1).bytes_up
    assert m * bits // 8 <= masked <= m * bits // 8 + 64
    assert costs.cost("masked_input", 2).bytes_up == 0
    assert costs.cost("unmasking", 4).bytes_up == 0
    assert costs.party_total(SERVER_ID).seconds > 0


def test_protocol_override_must_fit_the_config() -> None:
    with pytest.raises(ConfigurationError):
        simulate(ToyConfig(3, 2, 8), _inputs(3, 2, 8), protocol="bonawitz")
    config = _config(4, 3, 8)
    result = simulate(config, _inputs(4, 3, 8), protocol="secagg+")
    assert result.protocol == "secagg+" and result.matches


def test_progress_bar_path_runs(capsys: pytest.CaptureFixture[str]) -> None:
    result = simulate(ToyConfig(3, 4, 8), _inputs(3, 4, 8), progress=True)
    assert result.matches
    assert capsys.readouterr().out == ""  # the bar only ever writes to stderr
