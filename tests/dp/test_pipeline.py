"""End to end (encodings summed mod 2^b, no masking): error within the stated bound, planned
noise variance, typed errors, the privacy ledger."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.dp import (
    NonFiniteUpdateError,
    PrivacyLedger,
    RandomSource,
    decode,
    encode,
    exact_variance,
    noise_sampler,
    prepare,
    quantize,
)
from secagg.dp import accounting as acc
from secagg.dp.quantization import from_ring
from secagg.errors import ConfigurationError
from secagg.ring import check_values, dtype_for_bits
from tests.dp.plans import CLIENTS, DIM, SCHEDULE, compression_plan, floor_plan, private_plan

SEED = bytes(range(32))


def updates(count: int, norm: float, tag: int) -> list[np.ndarray]:
    gen = np.random.default_rng(tag)  # not-secret: test data
    out = []
    for _ in range(count):
        x = gen.standard_normal(DIM)
        out.append(x * (norm * gen.uniform(0.2, 1.0) / np.linalg.norm(x)))
    return out


def modular_sum(encodings: list[np.ndarray], bits: int) -> np.ndarray:
    total = np.zeros(encodings[0].size, dtype=np.uint64)
    for e in encodings:
        total += e.astype(np.uint64)
    total &= np.uint64((1 << bits) - 1)
    return total.astype(dtype_for_bits(bits))


@pytest.mark.parametrize(
    ("plan_name", "mechanism", "rotation"),
    [("private", "skellam", "hadamard"), ("private", "dgauss", "dft"),
     ("compression", None, "hadamard"), ("compression", None, "dft")],
)
def test_decoded_mean_is_within_the_stated_error(
    plan_name: str, mechanism: str | None, rotation: str
) -> None:
    plan = (
        private_plan(mechanism, rotation) if plan_name == "private"  # type: ignore[arg-type]
        else compression_plan(rotation)
    )
    data = updates(CLIENTS, plan.clip, 1)
    rng = RandomSource(bytes([2]) * 32)
    encodings = [encode(x, plan, SEED, rng=rng) for x in data]
    for e in encodings:
        check_values(e, plan.bits, plan.padded_dim, "an encoding")
    mean, report = decode(modular_sum(encodings, plan.bits), plan, SEED, CLIENTS)
    assert report is None
    error = float(np.linalg.norm(mean - np.mean(data, axis=0)))
    # E||error||^2 <= padded_dim * sum_error_variance / n^2; with ~1000 coordinates the
    # squared norm concentrates within a few percent of its mean.
    assert error <= 1.2 * plan.mean_error_rms(CLIENTS)
    total, _ = decode(modular_sum(encodings, plan.bits), plan, SEED, CLIENTS, average=False)
    assert np.allclose(total, mean * CLIENTS)


@pytest.mark.parametrize("mechanism", ["skellam", "dgauss"])
def test_honest_noise_has_the_planned_variance(mechanism: str) -> None:
    """Zero updates round to zero, so the decoded integers are exactly the summed noise."""
    plan = private_plan(mechanism)
    rng = RandomSource(bytes([3]) * 32)
    zeros = np.zeros(DIM)
    rounds = 8
    sums = []
    for r in range(rounds):
        seed = bytes([r]) * 32
        encodings = [encode(zeros, plan, seed, rng=rng) for _ in range(CLIENTS)]
        sums.append(from_ring(modular_sum(encodings, plan.bits), plan.bits))
    values = np.concatenate(sums).astype(float)
    planned = CLIENTS * exact_variance(mechanism, plan.local_noise)
    n = values.size
    # sample variance of (nearly) Gaussian values: standard error sqrt(2 / n) relative
    assert abs(values.var() / planned - 1) < 6 * math.sqrt(2.2 / n)
    assert abs(values.mean()) < 6 * math.sqrt(planned / n)


def test_prepare_builds_the_noise_table() -> None:
    plan = private_plan()
    prepare(plan)
    prepare(compression_plan())  # nothing to build
    assert noise_sampler(plan.mechanism, plan.local_noise) is noise_sampler(
        plan.mechanism, plan.local_noise
    )


def test_quantize_and_encode_agree() -> None:
    plan = private_plan()
    x = updates(1, 0.5, 4)[0]
    ints = quantize(x, plan, SEED, rng=RandomSource(bytes(32)))
    ring = encode(x, plan, SEED, rng=RandomSource(bytes(32)))
    assert np.array_equal(from_ring(ring, plan.bits), ints)
    again = quantize(x, plan, SEED, rng=RandomSource(bytes(32)))
    assert np.array_equal(again, ints)  # results are fresh arrays, not shared scratch


def test_updates_above_the_clip_are_clipped() -> None:
    plan = compression_plan()
    big = updates(1, 50.0, 5)[0] * 40 / np.linalg.norm(updates(1, 50.0, 5)[0])
    ints = quantize(big, plan, SEED, rng=RandomSource(bytes(32)))
    assert float(np.linalg.norm(ints)) <= plan.scale * plan.clip + math.sqrt(plan.padded_dim)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_updates_raise_a_typed_error(bad: float) -> None:
    x = np.zeros(DIM)
    x[7] = bad
    with pytest.raises(NonFiniteUpdateError):
        encode(x, private_plan(), SEED)
    with pytest.raises(NonFiniteUpdateError):
        encode(np.full(DIM, 1e300), private_plan(), SEED)  # the norm overflows


def test_bad_updates_and_totals() -> None:
    plan = private_plan()
    with pytest.raises(ConfigurationError, match="1000"):
        encode(np.zeros(DIM + 1), plan, SEED)
    with pytest.raises(ConfigurationError, match="numpy array"):
        encode([0.0] * DIM, plan, SEED)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="32 bytes"):
        encode(np.zeros(DIM), plan, b"seed")
    good = np.zeros(plan.padded_dim, dtype=np.uint32)
    with pytest.raises(ConfigurationError, match="shape"):
        decode(good[:-1], plan, SEED, 3)
    with pytest.raises(ConfigurationError, match=r"\[0, 2\^16\)"):
        decode(good + np.uint32(1 << 16), plan, SEED, 3)
    with pytest.raises(ConfigurationError, match="integer dtype"):
        decode(good.astype(float), plan, SEED, 3)
    with pytest.raises(ConfigurationError, match="included"):
        decode(good, plan, SEED, 0)
    with pytest.raises(ConfigurationError, match="different plan"):
        decode(good, plan, SEED, 3, ledger=PrivacyLedger(floor_plan()))
    with pytest.raises(ConfigurationError, match="needs a plan with noise"):
        PrivacyLedger(compression_plan())


def test_encoding_never_touches_numpy_random(monkeypatch: pytest.MonkeyPatch) -> None:
    x = updates(1, 0.5, 6)[0]

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy.random used")

    for name in ("default_rng", "random", "randint", "normal", "poisson", "RandomState",
                 "Generator", "seed", "uniform", "binomial", "standard_normal"):
        monkeypatch.setattr(np.random, name, forbidden, raising=False)
    for plan in (private_plan(), private_plan("dgauss", "dft"), compression_plan()):
        encode(x, plan, SEED)


def test_ledger_reports_what_each_round_spent() -> None:
    plan = private_plan()
    ledger = PrivacyLedger(plan)
    reports = [ledger.record(CLIENTS) for _ in range(SCHEDULE["rounds"])]  # type: ignore[call-overload]
    assert [r.round_index for r in reports] == list(range(len(reports)))
    spent = [r.epsilon_spent for r in reports]
    assert spent == sorted(spent)
    assert reports[-1].epsilon_spent == pytest.approx(plan.epsilon, rel=1e-9)
    assert not reports[-1].over_budget and not reports[-1].below_floor
    # one more round goes over the budget
    extra = ledger.record(CLIENTS)
    assert extra.over_budget and extra.epsilon_spent > plan.epsilon  # type: ignore[operator]
    assert ledger.epsilon_spent == extra.epsilon_spent and ledger.rounds_recorded == 11
    assert extra.to_dict()["included"] == CLIENTS
    assert "epsilon_spent" in repr(ledger)


def test_fewer_clients_spend_more_and_the_floor_protects() -> None:
    plan = private_plan()
    ledger = PrivacyLedger(plan)
    full = ledger.preview(CLIENTS)
    half = ledger.preview(CLIENTS // 2)
    assert half > full
    report = ledger.record(CLIENTS // 2)
    assert report.below_floor and report.noise_multiplier < plan.noise_multiplier  # type: ignore[operator]
    # With a floor of 10, clients add noise for 10: 10 included still meets the plan.
    floored = floor_plan()
    assert floored.noise_clients == 10 and floored.clients == CLIENTS
    floor_ledger = PrivacyLedger(floored)
    for _ in range(SCHEDULE["rounds"]):  # type: ignore[call-overload]
        last = floor_ledger.record(10)
    assert last.epsilon_spent <= SCHEDULE["epsilon"] and not last.below_floor
    assert floored.local_noise > plan.local_noise


def test_round_report_is_returned_by_decode() -> None:
    plan = private_plan()
    ledger = PrivacyLedger(plan)
    data = updates(3, plan.clip, 7)
    encodings = [encode(x, plan, SEED) for x in data]
    _mean, report = decode(modular_sum(encodings, plan.bits), plan, SEED, 3, ledger=ledger)
    assert report is not None and report.included == 3 and report.round_index == 0
    single = acc.rdp_epsilon(ledger.round_rdp(3), plan.delta)  # type: ignore[arg-type]
    assert report.epsilon_round == pytest.approx(single)


def test_fused_and_whole_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache-sized fused kernel and the whole-vector path use the randomness in a
    different order, so compare outcomes: both decode within the stated error."""
    import secagg.dp.pipeline as pipeline

    plan = private_plan()
    assert pipeline._chunkable(plan)
    data = updates(CLIENTS, plan.clip, 9)
    monkeypatch.setattr(pipeline, "_CHUNK", 1 << 7)  # many chunks, a ragged last one
    fused = [encode(x, plan, SEED, rng=RandomSource(bytes([i]) * 32)) for i, x in enumerate(data)]
    monkeypatch.setattr(pipeline, "_chunkable", lambda plan: False)
    whole = [encode(x, plan, SEED, rng=RandomSource(bytes([i]) * 32)) for i, x in enumerate(data)]
    truth = np.mean(data, axis=0)
    for encodings in (fused, whole):
        mean, _ = decode(modular_sum(encodings, plan.bits), plan, SEED, CLIENTS)
        assert float(np.linalg.norm(mean - truth)) <= 1.2 * plan.mean_error_rms(CLIENTS)
