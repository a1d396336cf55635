"""The strategies of secagg.testing draw what they promise, and reach the worst cases.

Also the outcome oracles of the targets (known answers, and the complete-graph rule of
Bonawitz et al. restated independently), and that hypothesis stays out of ``import secagg``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.config import ACTIVE, SEMI_HONEST, ProtocolConfig
from secagg.protocols.bonawitz.graph import harary_graph
from secagg.sim.simulator import DropoutSchedule
from secagg.testing import BonawitzTarget, DropoutModel, ServerAttack, predict_outcome
from secagg.testing import strategies as sst
from secagg.testing.bonawitz import dropout_model

FIND = settings(max_examples=2000, suppress_health_check=list(HealthCheck))


def config(n: int = 6, t: int = 4, **options: Any) -> ProtocolConfig:
    return ProtocolConfig.create(
        list(range(1, n + 1)), threshold=t, bits=8, vector_length=4, **options
    )


# --- configurations --------------------------------------------------------------------


@given(sst.protocol_configs(max_clients=12))
def test_configs_sit_in_the_threat_models_threshold_range(cfg: ProtocolConfig) -> None:
    degree = None if cfg.is_complete else cfg.degree
    low, high = sst.valid_thresholds(cfg.n, cfg.mode, degree)
    assert low <= cfg.threshold <= high
    # The range is tight: one below or one above is refused by ProtocolConfig itself.
    for wrong in (low - 1, high + 1):
        with pytest.raises(ConfigurationError):
            dataclasses.replace(cfg, threshold=wrong)
    assert (cfg.identities is not None) == (cfg.mode == ACTIVE)


def test_configs_cover_both_modes_both_graphs_and_both_dtypes() -> None:
    configs = sst.protocol_configs(max_clients=8)
    find(configs, lambda c: c.mode == ACTIVE and not c.is_complete, settings=FIND)
    find(configs, lambda c: c.mode == SEMI_HONEST and c.is_complete, settings=FIND)
    find(configs, lambda c: c.bits > 32 and c.vector_length > 8, settings=FIND)
    sparse = sst.protocol_configs(max_clients=8, sparse=True, modes=[SEMI_HONEST])
    assert not find(sparse, lambda c: True, settings=FIND).is_complete


def test_bad_strategy_arguments() -> None:
    with pytest.raises(ConfigurationError):
        sst.valid_thresholds(5, "paranoid")  # type: ignore[arg-type]
    bad_configs = (
        sst.protocol_configs(min_clients=1),
        sst.protocol_configs(modes=[]),
        sst.protocol_configs(max_clients=3, sparse=True),
    )
    for bad in bad_configs:
        with pytest.raises(ConfigurationError):
            find(bad, lambda _: True)
    with pytest.raises(ConfigurationError):
        sst.client_inputs(config(), headroom="loose")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        sst.client_inputs("a config")
    with pytest.raises(ConfigurationError):
        sst.dropout_schedules(config(), kinds=["meteor"])
    with pytest.raises(ConfigurationError):
        sst.dropout_schedules(42)


# --- inputs ----------------------------------------------------------------------------


@given(sst.protocol_configs(max_clients=8, max_vector_length=32), st.data())
def test_inputs_respect_the_headroom_of_the_sum(cfg: ProtocolConfig, data: st.DataObject) -> None:
    bits = cfg.bits
    unsigned = data.draw(sst.client_inputs(cfg))
    signed = data.draw(sst.client_inputs(cfg, headroom="signed"))
    anything = data.draw(sst.client_inputs(cfg, headroom="none"))
    for inputs in (unsigned, signed, anything):
        assert set(inputs) == set(cfg.clients)
        for vector in inputs.values():
            assert vector.dtype == cfg.dtype and vector.shape == (cfg.vector_length,)
            assert bits == 64 or int(vector.max()) < 1 << bits
    totals = [sum(int(v[i]) for v in unsigned.values()) for i in range(cfg.vector_length)]
    assert max(totals) <= (1 << bits) - 1  # the plain sum of all n never wraps
    half = 1 << (bits - 1)
    centred = [
        [int(x) - (1 << bits) if int(x) >= half else int(x) for x in v] for v in signed.values()
    ]
    assert max(abs(sum(column)) for column in zip(*centred, strict=True)) <= half - 1


def test_input_patterns_reach_the_extremes() -> None:
    cfg = config(3, 2)
    cap = 255 // 3
    inputs = sst.client_inputs(cfg)
    find(inputs, lambda d: any(int(v.max()) == cap for v in d.values()), settings=FIND)
    find(inputs, lambda d: len({int(v[0]) for v in d.values()}) == 3, settings=FIND)


# --- dropout schedules -----------------------------------------------------------------


def remaining(cfg: ProtocolConfig, schedule: DropoutSchedule) -> int:
    return cfg.n - len(schedule.clients)


@given(sst.protocol_configs(), st.data())
def test_schedules_name_only_the_protocols_rounds_and_clients(
    cfg: ProtocolConfig, data: st.DataObject
) -> None:
    schedule = data.draw(sst.dropout_schedules(cfg))
    model = dropout_model(cfg)
    assert set(schedule.by_round) <= set(model.rounds)
    assert schedule.clients <= set(cfg.clients)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_near_threshold_schedules_leave_t_minus_one_t_and_t_plus_one(offset: int) -> None:
    cfg = config(7, 4)
    schedules = sst.dropout_schedules(cfg, kinds=["near_threshold"])
    found = find(schedules, lambda s: remaining(cfg, s) == cfg.threshold + offset, settings=FIND)
    assert (predict_outcome(cfg, by_client(found)).aborts) is (offset < 0)


def test_after_input_and_neighbourhood_schedules() -> None:
    cfg = config(6, 2, degree=2)  # a ring: neighbourhoods of two
    after = sst.dropout_schedules(cfg, kinds=["after_input"])
    everyone = find(after, lambda s: remaining(cfg, s) == 0, settings=FIND)
    assert set(everyone.by_round) <= {"unmasking"}
    spared = find(after, lambda s: remaining(cfg, s) == cfg.threshold, settings=FIND)
    assert spared.clients
    hood = sst.dropout_schedules(cfg, kinds=["neighbourhood"])
    ring = find(hood, lambda s: len(s.clients) == 2, settings=FIND)
    assert len(ring.by_round) == 1
    assert any(ring.clients == cfg.neighbours_of(c) for c in cfg.clients)


def by_client(schedule: DropoutSchedule) -> dict[int, str]:
    return {c: r for r, ids in schedule.by_round.items() for c in ids}


# --- misbehaviour ----------------------------------------------------------------------


@given(sst.protocol_configs(modes=[SEMI_HONEST]), st.data())
def test_attacks_and_faults_fit_the_protocol(cfg: ProtocolConfig, data: st.DataObject) -> None:
    attack = data.draw(sst.server_attacks(cfg))
    assert isinstance(attack, ServerAttack) and attack.kind != "split_view"
    assert attack.round_name in dropout_model(cfg).rounds
    assert attack.targets <= set(cfg.clients)
    faults = data.draw(sst.client_faults(cfg, max_faulty=3))
    assert len({f.client for f in faults}) == len(faults) <= 3


def test_generic_models_get_only_generic_attacks() -> None:
    model = DropoutModel((1, 2, 3), ("a", "b"), "a", {})
    kinds = {
        find(sst.server_attacks(model), lambda a: a.kind == k, settings=FIND).kind
        for k in ("replay", "stale", "garbled_bytes")
    }
    assert kinds == {"replay", "stale", "garbled_bytes"}
    with pytest.raises(ConfigurationError):
        find(sst.server_attacks(model, kinds=["both_shares"]), lambda _: True)


# --- the outcome oracles ---------------------------------------------------------------


def simple_complete_graph_rule(
    cfg: ProtocolConfig, dropped: dict[int, str]
) -> frozenset[int] | None:
    """Bonawitz et al.: abort iff fewer than t remain in some round; else U3 is summed."""
    live, survivors = set(cfg.clients), set()
    for round_name in dropout_model(cfg).rounds:
        live -= {c for c, r in dropped.items() if r == round_name}
        if len(live) < cfg.threshold:
            return None
        if round_name == "masked_input":
            survivors = set(live)
    return frozenset(survivors)


@given(sst.protocol_configs(max_clients=12, sparse=False), st.data())
def test_oracle_matches_the_complete_graph_rule(cfg: ProtocolConfig, data: st.DataObject) -> None:
    dropped = by_client(data.draw(sst.dropout_schedules(cfg)))
    prediction = predict_outcome(cfg, dropped)
    expected = simple_complete_graph_rule(cfg, dropped)
    assert prediction.aborts is (expected is None)
    assert prediction.included == expected


def test_oracle_known_answers_for_secagg_plus() -> None:
    clients = list(range(1, 11))
    ring = harary_graph(clients, 2, bytes(16))
    cfg = ProtocolConfig(bytes(16), tuple(clients), 2, 8, 4, neighbours=ring)
    victim = 1
    left, right = sorted(ring[victim])
    # Both neighbours gone before sharing: the victim is pruned, the others go on.
    prediction = predict_outcome(cfg, {left: "advertise_keys", right: "advertise_keys"})
    assert prediction.aborts is False
    assert prediction.included == frozenset(clients) - {victim, left, right}
    # Both neighbours gone after masking: the victim's b_u has only 1 < t holders left.
    assert predict_outcome(cfg, {left: "unmasking", right: "unmasking"}).aborts is True
    # A lost answer counts as vanishing in its round.
    assert predict_outcome(cfg, {}, {(left, "masked_input")}).included == frozenset(clients) - {
        left
    }
    with pytest.raises(ConfigurationError):
        predict_outcome(cfg, {1: "teatime"})


def test_oracle_known_answers_in_active_mode() -> None:
    cfg = config(7, 5, mode=ACTIVE, identities={c: bytes([c]) * 32 for c in range(1, 8)})
    assert predict_outcome(cfg, {2: "consistency_check", 3: "unmasking"}).included == frozenset(
        range(1, 8)
    )
    assert predict_outcome(
        cfg, {2: "consistency_check", 3: "consistency_check", 4: "unmasking"}
    ).aborts


def test_threshold_he_oracle_known_answers() -> None:
    from secagg.testing import ThresholdHETarget

    target = ThresholdHETarget.paillier(
        [1, 2, 3, 4], bits=8, vector_length=2, committee=[1, 2, 3], threshold=2, min_clients=3
    )
    assert target.predict({4: "encrypted_input"}, set()).included == frozenset({1, 2, 3})
    # An input lost on the way: not summed, but the member still decrypts.
    assert target.predict({}, {(1, "encrypted_input")}).included == frozenset({2, 3, 4})
    assert target.predict({1: "encrypted_input", 2: "decryption"}, set()).aborts
    assert target.predict({}, {(1, "encrypted_input"), (2, "encrypted_input")}).aborts


# --- packaging -------------------------------------------------------------------------


def test_importing_secagg_does_not_import_hypothesis() -> None:
    code = (
        "import sys, secagg, secagg.protocols.bonawitz.client, secagg.protocols.bonawitz.server, "
        "secagg.sim.simulator; assert 'hypothesis' not in sys.modules; "
        "import secagg.testing; assert 'hypothesis' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_active_targets_register_identities_matching_the_config() -> None:
    cfg = find(sst.protocol_configs(modes=[ACTIVE]), lambda c: True, settings=FIND)
    target = BonawitzTarget(cfg)
    assert target.identities is not None and target.config.identities is not None
    assert {c: k.verify_key for c, k in target.identities.items()} == dict(target.config.identities)
    assert dataclasses.replace(target.config, identities=cfg.identities) == cfg
