"""Configuration validation (each error names the value and the rule) and plan properties."""

from __future__ import annotations

import json
import math

import pytest

from secagg.dp import Compression, DistributedDP, DPPlan
from secagg.dp.planning import wrap_bound
from secagg.errors import ConfigurationError
from secagg.ring import packed_size
from tests.dp.plans import CLIENTS, DIM, SCHEDULE, compression_plan, config, private_plan

GOOD = {**SCHEDULE, "bits": 16}


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"epsilon": 0}, r"epsilon must be > 0, got 0"),
        ({"epsilon": -1.0}, r"epsilon must be > 0, got -1.0"),
        ({"epsilon": math.inf}, r"epsilon must be finite, got inf"),
        ({"delta": 0.0}, r"delta must be in \(0, 1\), got 0.0"),
        ({"delta": 1}, r"delta must be in \(0, 1\), got 1"),
        ({"rounds": 0}, r"rounds must be an int >= 1, got 0"),
        ({"rounds": 2.5}, r"rounds must be an int >= 1, got 2.5"),
        ({"sampling_rate": 0.0}, r"sampling_rate must be in \(0, 1\], got 0.0"),
        ({"sampling_rate": 1.5}, r"sampling_rate must be in \(0, 1\], got 1.5"),
        ({"bits": 1}, r"bits must be an int in \[2, 32\], got 1"),
        ({"bits": 33}, r"bits must be an int in \[2, 32\], got 33"),
        ({"bits": True}, r"bits must be an int in \[2, 32\], got True"),
        ({"clip": 0.0}, r"clip must be > 0, got 0.0"),
        ({"clip": math.nan}, r"clip must be finite, got nan"),
        ({"mechanism": "gauss"}, r"mechanism must be one of \('skellam', 'dgauss'\), got 'gauss'"),
        ({"rotation": "givens"}, r"rotation must be one of \('hadamard', 'dft'\), got 'givens'"),
        ({"wrap_probability": 0.0}, r"wrap_probability must be in \(0, 1\), got 0.0"),
        ({"k_stddevs": -4}, r"k_stddevs must be > 0, got -4"),
        ({"beta": 1.0}, r"beta must be in \[0, 1\), got 1.0"),
        ({"expected_clients": 0}, r"expected_clients must be an int >= 1, got 0"),
        (
            {"expected_clients": 100, "bits": 6},
            r"bits=6 is too few for 100 clients: the rule is bits >= log2\(clients\) = 6.64",
        ),
        (
            {"expected_clients": 10, "min_clients": 11},
            r"min_clients=11 must be <= expected_clients=10",
        ),
    ],
)
def test_each_bad_setting_names_value_and_rule(change: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        DistributedDP(**{**GOOD, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"bits": 40}, r"bits must be an int in \[2, 32\], got 40"),
        ({"clip": -1}, r"clip must be > 0, got -1"),
        ({"expected_clients": 1000, "bits": 9}, r"bits=9 is too few for 1000 clients"),
    ],
)
def test_compression_settings_are_validated(change: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        Compression(**{"bits": 16, "clip": 1.0, **change})  # type: ignore[arg-type]


def test_planning_errors_name_the_rule() -> None:
    with pytest.raises(ConfigurationError, match="give clients="):
        DistributedDP(**GOOD).plan(DIM)  # type: ignore[arg-type]
    # 2^16 coordinates: rounding alone needs a noise std near 128 grid steps, above 2^7 / 4.45.
    with pytest.raises(ConfigurationError, match=r"bits=8 is too few for 200 clients at"):
        DistributedDP(**{**GOOD, "bits": 8}).plan(1 << 16, clients=200)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"min_clients=30 must be <= clients=20"):
        DistributedDP(**{**GOOD, "min_clients": 30}).plan(DIM, clients=20)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"wrap probability .* at k_stddevs=1.5 exceeds"):
        Compression(bits=16, clip=1.0, k_stddevs=1.5).plan(DIM, clients=CLIENTS)


def test_private_plan_meets_its_promises() -> None:
    plan = private_plan()
    assert plan.private and plan.mechanism == "skellam"
    assert plan.epsilon is not None and plan.epsilon <= SCHEDULE["epsilon"]
    assert plan.epsilon > 0.999 * SCHEDULE["epsilon"]  # no noise wasted
    assert plan.wrap_probability <= plan.wrap_probability_bound == 1e-4
    assert plan.padded_dim == 1024 and plan.clients == CLIENTS == plan.noise_clients
    assert plan.bytes_per_client == packed_size(1024, 16)
    assert plan.bytes_per_client_32bit == 4 * DIM
    assert plan.local_noise.denominator in (256, 65536)
    expected_z = math.sqrt(CLIENTS * plan.local_noise) / (plan.scale * plan.clip)
    assert plan.noise_multiplier == pytest.approx(expected_z)
    assert plan.central_gaussian_noise_multiplier is not None
    assert plan.noise_multiplier >= plan.central_gaussian_noise_multiplier * 0.99
    assert plan.rounding_bound == plan.l2_sensitivity


def test_plan_json_round_trip() -> None:
    for plan in (private_plan(), compression_plan()):
        text = json.dumps(plan.to_dict())
        assert DPPlan.from_dict(json.loads(text)) == plan
    data = private_plan().to_dict()
    with pytest.raises(ConfigurationError, match="unknown plan fields"):
        DPPlan.from_dict({**data, "secret": 1})
    with pytest.raises(ConfigurationError, match="padded_dim"):
        DPPlan.from_dict({**data, "padded_dim": 999})
    with pytest.raises(ConfigurationError, match="bad plan"):
        DPPlan.from_dict({"mechanism": "none"})


def test_compression_plan() -> None:
    plan = compression_plan()
    assert not plan.private and plan.epsilon is None and plan.local_noise == 0
    assert plan.wrap_probability <= 1e-4
    dft = compression_plan("dft")
    assert dft.padded_dim == DIM  # the DFT rotation pads to even only
    assert dft.bytes_per_client == packed_size(DIM, 16) == dft.bytes_per_client_32bit // 2


def test_wrap_bound() -> None:
    """Chernoff: sub-Gaussian part alone gives 2 exp(-h^2 / (2 A))."""
    assert wrap_bound(bits=8, subgaussian=100.0) == pytest.approx(2 * math.exp(-(128**2) / 200))
    with_skellam = wrap_bound(bits=8, subgaussian=50.0, skellam_variance=50.0)
    assert with_skellam > wrap_bound(bits=8, subgaussian=100.0)  # heavier tail than Gaussian
    assert wrap_bound(bits=4, subgaussian=1e6) == 1.0


def test_emnist_target_skellam_16_bits() -> None:
    """The TFF EMNIST schedule at 16 bits: within 1.06x of the central Gaussian."""
    plan = DistributedDP(
        epsilon=10, delta=1 / 3400, rounds=1500, sampling_rate=100 / 3400, bits=16, clip=0.03,
        expected_clients=100,
    ).plan(1 << 20)
    assert plan.noise_multiplier is not None and plan.central_gaussian_noise_multiplier
    assert plan.noise_multiplier / plan.central_gaussian_noise_multiplier <= 1.06


@pytest.mark.slow
@pytest.mark.parametrize("bits", [12, 20])
@pytest.mark.parametrize("mechanism", ["skellam", "dgauss"])
def test_emnist_schedule_all_widths(mechanism: str, bits: int) -> None:
    plan = config(mechanism, bits=bits, epsilon=10, delta=1 / 3400, rounds=1500,
                  sampling_rate=100 / 3400, clip=0.03, expected_clients=100).plan(1 << 20)
    assert plan.epsilon is not None and plan.epsilon <= 10
    assert plan.wrap_probability <= 1e-4
    if bits >= 16:
        assert plan.noise_multiplier / plan.central_gaussian_noise_multiplier <= 1.06  # type: ignore[operator]
