"""The threshold-HE cost models against real runs: bytes exact, round by round."""

from __future__ import annotations

import dataclasses
import functools
import os
import statistics
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.cost.threshold_he import (
    CKKS_DEFAULT_CIPHERTEXT_BYTES,
    ckks_ciphertext_bytes,
    ckks_costs,
    threshold_paillier_costs,
)
from secagg.errors import ConfigurationError, HeadroomError
from secagg.he.threshold_paillier import KeyShare, ThresholdPublicKey, deal_threshold_keys
from secagg.protocols.base import SERVER_ID
from secagg.protocols.registry import ProtocolSpec, SimulationParams
from secagg.protocols.threshold_he import ThresholdHEConfig
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    InputRequest,
)
from secagg.protocols.threshold_he.spec import (
    ThresholdHESimulation,
    ckks_spec,
    threshold_paillier_spec,
)
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

KEY_BITS = 512  # test-only keys: the model's formulas take the key size as a parameter


@functools.cache
def keys(threshold: int, holders: int) -> tuple[ThresholdPublicKey, list[KeyShare]]:
    return deal_threshold_keys(KEY_BITS, threshold=threshold, holders=holders)


def inputs(m: int, bits: int) -> Callable[[int], np.ndarray]:
    def make(client: int) -> np.ndarray:
        rng = np.random.default_rng(client)
        return rng.integers(0, 1 << bits, size=m, dtype=np.uint64)

    return make


def paillier_simulation(
    n: int, m: int, bits: int, committee: int, threshold: int
) -> ThresholdHESimulation:
    public, shares = keys(threshold, committee)
    clients = tuple(range(1, n + 1))
    config = ThresholdHEConfig(
        session_id=os.urandom(16),
        clients=clients,
        bits=bits,
        vector_length=m,
        committee=clients[:committee],
        threshold=threshold,
        public_key=public,
    )
    return ThresholdHESimulation(config, {c: shares[i] for i, c in enumerate(clients[:committee])})


def per_round(result: SimulationResult) -> dict[str, tuple[int, int]]:
    return {
        s.round_name: (s.server.bytes_up, s.server.bytes_down) for s in result.costs.summaries()
    }


def assert_bytes_match(model: dict[str, Any], result: SimulationResult) -> None:
    measured = per_round(result)
    assert set(measured) == set(model["rounds"])
    for name, (up, down) in measured.items():
        assert model["rounds"][name]["server_bytes_up"] == pytest.approx(up, abs=1e-6), name
        assert model["rounds"][name]["server_bytes_down"] == pytest.approx(down, abs=1e-6), name


@st.composite
def paillier_settings(draw: st.DrawFn) -> tuple[int, int, int, int, int, frozenset[int]]:
    n = draw(st.integers(2, 9))
    committee = draw(st.integers(1, min(5, n)))
    threshold = draw(st.integers(1, committee))
    # Anyone may drop before the input, as long as t members and two inputs remain.
    dropped = draw(st.sets(st.integers(1, n), max_size=n - 2))
    members_left = committee - len(dropped & set(range(1, committee + 1)))
    if members_left < threshold:
        dropped = {c for c in dropped if c > committee}
    m = draw(st.integers(1, 300))
    bits = draw(st.integers(1, 32))
    return n, m, bits, committee, threshold, frozenset(dropped)


@settings(max_examples=15)
@given(paillier_settings())
def test_threshold_paillier_bytes_are_exact(
    setting: tuple[int, int, int, int, int, frozenset[int]],
) -> None:
    n, m, bits, committee, threshold, dropped = setting
    simulation = paillier_simulation(n, m, bits, committee, threshold)
    schedule = DropoutSchedule({ROUND_ENCRYPTED_INPUT: dropped})
    result = simulate(
        simulation, inputs(m, bits), dropouts=schedule, protocol=threshold_paillier_spec()
    )
    assert result.matches
    public = simulation.config.public_key
    assert public is not None
    model = threshold_paillier_costs(
        n,
        m,
        bits,
        committee,
        threshold,
        len(dropped),
        key_bits=KEY_BITS,
        nsquare_bits=int(public.paillier.nsquare.bit_length()),
        committee_dropouts=len(dropped & set(simulation.config.committee)),
    )
    assert_bytes_match(model, result)
    assert model["parameters"]["ciphertexts"] == simulation.config.layout.plaintexts_for(m)


def test_paillier_known_answers() -> None:
    """Hand-checked sizes: the 23-byte input request and 512-byte 2048-bit ciphertexts."""
    model = threshold_paillier_costs(10, 1000, 16)
    request = InputRequest(SERVER_ID, 1, bytes(16)).to_bytes()
    assert len(request) == 23
    assert model["rounds"][ROUND_ENCRYPTED_INPUT]["client_bytes_down"] == 23
    params = model["parameters"]
    assert params["ciphertext_bytes"] == 512
    assert params["slot_bits"] == 16 + 4 + 1  # value bits, ceil(log2 10), a guard bit
    assert params["slots"] == 2047 // 21
    assert params["ciphertexts"] == -(-1000 // params["slots"])
    assert (params["committee"], params["threshold"]) == (5, 3)
    ops = model["rounds"][ROUND_DECRYPTION]["server_ops"]
    assert ops["combine_exponentiations"] == 3 * params["ciphertexts"]


class BlobRecorder:
    """Mean size of the CKKS ciphertext blobs uploaded and sent back as the aggregate."""

    def __init__(self, spec: ProtocolSpec) -> None:
        self.uploads: list[int] = []
        self.aggregate: list[int] = []

        def decode(data: bytes, sender: int) -> Any:
            message = spec.decode(data, sender)
            payload = getattr(message, "payload", None)
            upload = sender != SERVER_ID and message.round_name == ROUND_ENCRYPTED_INPUT
            if payload is not None and (upload or sender == SERVER_ID):
                sizes = [len(c) for c in msgpack.unpackb(payload, raw=False)["chunks"]]
                (self.uploads if upload else self.aggregate).extend(sizes)
            return message

        self.spec = dataclasses.replace(spec, decode=decode)


@pytest.mark.parametrize(
    ("n", "m", "bits", "committee", "threshold", "dropped"),
    [(3, 5000, 16, 2, 2, frozenset()), (6, 700, 32, 3, 1, frozenset({2, 6}))],
)
def test_ckks_bytes_are_exact_given_ciphertext_sizes(
    n: int, m: int, bits: int, committee: int, threshold: int, dropped: frozenset[int]
) -> None:
    params = SimulationParams(clients=n, dim=m, bits=bits, threshold=threshold, degree=committee)
    simulation = ThresholdHESimulation.ckks(params)
    recorder = BlobRecorder(ckks_spec())
    schedule = DropoutSchedule({ROUND_ENCRYPTED_INPUT: dropped})
    result = simulate(simulation, inputs(m, bits), dropouts=schedule, protocol=recorder.spec)
    assert result.matches
    model = ckks_costs(
        n,
        m,
        bits,
        committee,
        threshold,
        len(dropped),
        ciphertext_bytes=statistics.fmean(recorder.uploads),
        aggregate_ciphertext_bytes=statistics.fmean(recorder.aggregate),
        committee_dropouts=len(dropped & set(simulation.config.committee)),
    )
    assert_bytes_match(model, result)
    # The nominal figure, without the measured sizes, is within 1 % of every round.
    nominal = ckks_costs(
        n, m, bits, committee, threshold, len(dropped),
        committee_dropouts=len(dropped & set(simulation.config.committee)),
    )  # fmt: skip
    for name, (up, down) in per_round(result).items():
        assert nominal["rounds"][name]["server_bytes_up"] == pytest.approx(up, rel=0.01)
        assert nominal["rounds"][name]["server_bytes_down"] == pytest.approx(down, rel=0.01)


def test_nominal_ckks_ciphertext_size_matches_a_measurement() -> None:
    measured = ckks_ciphertext_bytes(samples=2)
    assert measured == pytest.approx(CKKS_DEFAULT_CIPHERTEXT_BYTES, rel=0.005)


def test_expected_committee_dropouts_interpolate() -> None:
    """Without an exact committee count the model averages over random dropout sets."""
    exact = [
        threshold_paillier_costs(10, 100, 16, 5, 2, 2, committee_dropouts=c)["totals"]
        for c in (0, 1, 2)
    ]
    expected = threshold_paillier_costs(10, 100, 16, 5, 2, 2)["totals"]
    # P(c members among 2 dropouts of 10, committee 5) = 2/9, 5/9, 2/9: the mean.
    weights = (2 / 9, 5 / 9, 2 / 9)
    for key in ("server_bytes_up", "server_bytes_down"):
        mean = sum(w * t[key] for w, t in zip(weights, exact, strict=True))
        assert expected[key] == pytest.approx(mean)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 1},
        {"m": 0},
        {"bits": 65},
        {"committee": 11},
        {"threshold": 6},
        {"threshold": 0},
        {"dropouts": 9},
        {"dropouts": 3, "committee_dropouts": 4},
        {"dropouts": 3, "committee_dropouts": 3, "threshold": 3},
        {"n": 5.0},
        {"key_bits": 100},
        {"nsquare_bits": 1000},
    ],
)
def test_paillier_model_refuses_bad_parameters(kwargs: dict[str, Any]) -> None:
    args = {"n": 10, "m": 100, "bits": 16, "committee": 5, **kwargs}
    with pytest.raises(ConfigurationError):
        threshold_paillier_costs(**args)


def test_paillier_model_refuses_what_the_protocol_refuses() -> None:
    with pytest.raises(HeadroomError):
        threshold_paillier_costs(10, 10, 32, key_bits=512, guard_bits=480)  # 516-bit slots


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poly_modulus_degree": 3000},
        {"poly_modulus_degree": 512},
        {"coeff_mod_bit_sizes": (60,)},
        {"coeff_mod_bit_sizes": (60, 10, 60)},
        {"ciphertext_bytes": 10},
        {"ciphertext_bytes": True},
        {"aggregate_ciphertext_bytes": "big"},
    ],
)
def test_ckks_model_refuses_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ckks_costs(10, 100, 16, **kwargs)
