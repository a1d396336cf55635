"""Tests of secagg.encoding: error bounds, unbiasedness, the exact headroom boundary, weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secagg import encoding
from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, HeadroomError, UsageError

reals = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def centered(fp: FixedPoint, encoded: np.ndarray) -> np.ndarray:
    """Independent centered lift: the residue in (-2^(b-1), 2^(b-1)] as Python ints."""
    modulus = 1 << fp.bits
    out = []
    for value in encoded.reshape(-1).tolist():
        value %= modulus
        out.append(value - modulus if value >= modulus // 2 else value)
    return np.array(out, dtype=object)


def sum_mod(fp: FixedPoint, encodings: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(encodings[0].shape, dtype=np.uint64)
    for e in encodings:
        total += e.astype(np.uint64)  # wraps mod 2^64, a multiple of 2^bits
    if fp.bits < 64:
        total &= np.uint64((1 << fp.bits) - 1)
    return total.astype(fp.dtype)


# --- configuration and the headroom boundary ---


def test_headroom_boundary_integer_scale() -> None:
    # ceil(1.0 * 100) = 100 per client; 327 * 100 <= 32767 < 328 * 100.
    FixedPoint(bits=16, clip=1.0, scale=100.0, max_clients=327)
    with pytest.raises(HeadroomError):
        FixedPoint(bits=16, clip=1.0, scale=100.0, max_clients=328)


def test_headroom_boundary_uses_the_rounded_up_magnitude() -> None:
    # x = clip gives v = 100.5, which stochastic rounding sends to 101: 324 * 101 = 32724 fits,
    # 325 * 101 = 32825 does not (while 325 * 100.5 = 32662.5 would have looked fine).
    fp = FixedPoint(bits=16, clip=1.0, scale=100.5, max_clients=324)
    assert fp.max_magnitude == 101
    with pytest.raises(HeadroomError):
        FixedPoint(bits=16, clip=1.0, scale=100.5, max_clients=325)


def test_sum_at_the_limit_decodes_right() -> None:
    fp = FixedPoint(bits=16, clip=1.0, scale=100.0, max_clients=327)
    top = [fp.encode(np.array([1.0, -1.0, 5.0, -7.0])) for _ in range(327)]
    total = sum_mod(fp, top)
    np.testing.assert_array_equal(fp.decode(total), [327.0, -327.0, 327.0, -327.0])
    # 32700 is within 67 of the wrap: one more client would be wrong, as the check says.
    assert int(total[0]) == 32_700 and 32_700 + 100 > 2**15 - 1
    wrapped = sum_mod(fp, [*top, fp.encode(np.array([1.0, -1.0, 1.0, -1.0]))])
    assert fp.decode(wrapped)[0] < 0  # 328 clients wrap: the setting refused above


def test_headroom_counts_weights() -> None:
    FixedPoint(bits=16, clip=1.0, scale=10.0, max_clients=327, max_weight=10.0)
    with pytest.raises(HeadroomError):
        FixedPoint(bits=16, clip=1.0, scale=10.0, max_clients=328, max_weight=10.0)
    # max_weight below 1 does not shrink the bound: plain encode has weight 1.
    assert (
        FixedPoint(bits=16, clip=1.0, scale=10.0, max_clients=1, max_weight=0.5).max_magnitude == 10
    )


@given(
    bits=st.integers(2, 64),
    clip=st.floats(1e-3, 1e3),
    scale=st.floats(1e-3, 1e15),
    max_weight=st.floats(1e-2, 1e3),
    max_clients=st.integers(1, 10**6),
)
def test_refuses_exactly_the_settings_that_could_wrap(
    bits: int, clip: float, scale: float, max_weight: float, max_clients: int
) -> None:
    worst = math.ceil(clip * (max(1.0, max_weight) * scale))
    try:
        fp = FixedPoint(bits, clip, scale, max_clients, max_weight)
    except HeadroomError:
        assert max_clients * worst > 2 ** (bits - 1) - 1
        return
    assert max_clients * worst <= 2 ** (bits - 1) - 1
    # The extreme inputs reach at most the bound, in both encoders and the weight element.
    x = np.array([clip, -clip, 2 * clip, -3 * clip])
    for encoded in (fp.encode(x), fp.encode_weighted(x, max_weight)):
        assert max(abs(v) for v in centered(fp, encoded)) <= fp.max_magnitude == worst


@given(
    bits=st.integers(2, 64),
    clip=st.floats(1e-4, 1e4),
    max_weight=st.floats(1e-2, 1e4),
    max_clients=st.integers(1, 10**6),
)
def test_for_precision_gives_the_largest_safe_scale(
    bits: int, clip: float, max_weight: float, max_clients: int
) -> None:
    assume(max_clients <= 2 ** (bits - 1) - 1)
    fp = FixedPoint.for_precision(
        bits=bits, clip=clip, max_clients=max_clients, max_weight=max_weight
    )
    assert fp.max_clients * fp.max_magnitude <= 2 ** (bits - 1) - 1
    with pytest.raises(HeadroomError):
        FixedPoint(bits, clip, math.nextafter(fp.scale, math.inf), max_clients, max_weight)


def test_for_precision_refuses_impossible_settings() -> None:
    with pytest.raises(HeadroomError):
        FixedPoint.for_precision(bits=8, clip=1.0, max_clients=128)
    assert FixedPoint.for_precision(bits=8, clip=1.0, max_clients=127).max_magnitude == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bits": 0},
        {"bits": 65},
        {"bits": True},
        {"clip": 0.0},
        {"clip": -1.0},
        {"clip": math.nan},
        {"scale": math.inf},
        {"scale": "1"},
        {"max_clients": 0},
        {"max_clients": 2.0},
        {"max_weight": 0.0},
        {"max_weight": math.nan},
    ],
)
def test_bad_configuration_raises(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"bits": 32, "clip": 1.0, "scale": 10.0, "max_clients": 10}
    base.update(kwargs)
    with pytest.raises(ConfigurationError):
        FixedPoint(**base)  # type: ignore[arg-type]


# --- encode / decode ---


@pytest.mark.parametrize("bits", [8, 16, 20, 32, 33, 48, 64])
def test_dtype_and_range(bits: int) -> None:
    fp = FixedPoint.for_precision(bits=bits, clip=2.0, max_clients=1)
    encoded = fp.encode(np.linspace(-3, 3, 101))
    assert encoded.dtype == (np.uint32 if bits <= 32 else np.uint64)
    assert int(encoded.max()) < 2**bits


@given(
    x=hnp.arrays(np.float64, st.integers(0, 300), elements=reals),
    bits=st.integers(8, 64),
    clip=st.floats(1e-2, 1e4),
    max_clients=st.integers(1, 100),
)
def test_decode_is_within_one_quantization_step(
    x: np.ndarray, bits: int, clip: float, max_clients: int
) -> None:
    fp = FixedPoint.for_precision(bits=bits, clip=clip, max_clients=max_clients)
    decoded = fp.decode(fp.encode(x))
    expected = np.clip(x, -clip, clip)
    # One step 1/scale, plus float64 representation error for very wide words.
    tolerance = (1.0 / fp.scale) * (1 + 1e-9) + 8 * np.finfo(np.float64).eps * clip
    assert decoded.shape == x.shape
    assert np.all(np.abs(decoded - expected) <= tolerance)


def test_long_vectors_cross_chunk_boundaries() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(0, 0.5, 3 * encoding._CHUNK + 123)
    fp = FixedPoint.for_precision(bits=24, clip=1.0, max_clients=4)
    decoded = fp.decode(fp.encode(x))
    assert np.all(np.abs(decoded - np.clip(x, -1, 1)) < 1 / fp.scale)
    mean, weight = fp.decode_weighted(fp.encode_weighted(x, 0.75))
    assert abs(weight - 0.75) <= 1 / fp.scale
    assert np.all(np.abs(mean - np.clip(x, -1, 1)) < 3 / fp.scale)


def test_sum_of_many_clients_decodes_to_the_sum() -> None:
    rng = np.random.default_rng(5)
    fp = FixedPoint.for_precision(bits=20, clip=1.0, max_clients=50)
    xs = [rng.uniform(-2, 2, 1000) for _ in range(50)]
    total = sum_mod(fp, [fp.encode(x) for x in xs])
    expected = np.sum([np.clip(x, -1, 1) for x in xs], axis=0)
    assert np.all(np.abs(fp.decode(total) - expected) < 50 / fp.scale)


def test_shape_is_preserved_and_input_untouched() -> None:
    fp = FixedPoint.for_precision(bits=32, clip=1.0, max_clients=3)
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 20
    before = x.copy()
    encoded = fp.encode(x)
    assert encoded.shape == (3, 4)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(fp.decode(encoded), x, atol=1 / fp.scale)
    # Integer inputs are read as reals (and clipped like them).
    np.testing.assert_allclose(fp.decode(fp.encode(np.arange(3))), [0.0, 1.0, 1.0], atol=1e-6)


def test_decode_reads_totals_modulo_2_to_the_bits() -> None:
    fp = FixedPoint(bits=8, clip=1.0, scale=10.0, max_clients=12)
    encoded = fp.encode(np.array([-1.0, 0.5, 1.0]))
    as_signed = centered(fp, encoded).astype(np.int64)
    np.testing.assert_array_equal(fp.decode(as_signed), [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(fp.decode(encoded.astype(np.uint64) + 256), [-1.0, 0.5, 1.0])


@pytest.mark.parametrize("value", [0.3, -2.7, 0.999, -0.001, 1234.25])
def test_stochastic_rounding_is_unbiased(value: float) -> None:
    fp = FixedPoint(bits=32, clip=2000.0, scale=1.0, max_clients=1)
    n = 200_000
    rounded = centered(fp, fp.encode(np.full(n, value))).astype(np.float64)
    floor = math.floor(value)
    assert set(np.unique(rounded).tolist()) <= {floor, floor + 1}
    fraction = value - floor
    standard_error = math.sqrt(fraction * (1 - fraction) / n)
    assert abs(rounded.mean() - value) < 5 * standard_error


def test_rounding_is_random_and_exact_values_are_exact() -> None:
    fp = FixedPoint(bits=32, clip=10.0, scale=1.0, max_clients=1)
    x = np.full(1000, 0.5)
    assert fp.encode(x).tolist() != fp.encode(x).tolist()
    integers = np.arange(-10, 11, dtype=np.float64)
    np.testing.assert_array_equal(fp.decode(fp.encode(integers)), integers)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_raise(bad: float) -> None:
    fp = FixedPoint.for_precision(bits=32, clip=1.0, max_clients=3)
    x = np.zeros(40_000)
    x[encoding._CHUNK + 5] = bad
    with pytest.raises(ConfigurationError):
        fp.encode(x)
    with pytest.raises(ConfigurationError):
        fp.encode_weighted(x, 1.0)
    with pytest.raises(ConfigurationError):
        fp.encode(np.array([1.0, bad]))


def test_bad_inputs_raise() -> None:
    fp = FixedPoint.for_precision(bits=32, clip=1.0, max_clients=3)
    with pytest.raises(ConfigurationError):
        fp.encode([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        fp.encode(np.array([1 + 2j]))
    with pytest.raises(ConfigurationError):
        fp.encode(np.array(["a"]))
    with pytest.raises(ConfigurationError):
        fp.decode(np.array([1.5]))
    with pytest.raises(ConfigurationError):
        fp.encode_weighted(np.zeros((2, 2)), 1.0)


# --- weighted averaging ---


@given(
    clients=st.lists(
        st.tuples(
            hnp.arrays(np.float64, 20, elements=st.floats(-3, 3)),
            st.floats(0.0, 50.0),
        ),
        min_size=1,
        max_size=8,
    ),
    bits=st.sampled_from([24, 32, 48]),
)
def test_weighted_average_matches_numpy(clients: list[tuple[np.ndarray, float]], bits: int) -> None:
    weights = [w for _, w in clients]
    assume(sum(weights) > 1.0)
    fp = FixedPoint.for_precision(bits=bits, clip=2.0, max_clients=8, max_weight=50.0)
    encodings = [fp.encode_weighted(x, w) for x, w in clients]
    assert all(e.shape == (21,) for e in encodings)
    mean, weight_sum = fp.decode_weighted(sum_mod(fp, encodings))
    k = len(clients)
    weight_error = k / (fp.clip * fp.scale)
    assert abs(weight_sum - sum(weights)) <= weight_error * (1 + 1e-9)
    expected = np.average([np.clip(x, -2, 2) for x, _ in clients], axis=0, weights=weights)
    # Each client errs by < 1/scale on w*x and by < 1/(clip*scale) on w.
    bound = (k / fp.scale + fp.clip * weight_error) / (sum(weights) - weight_error)
    assert np.all(np.abs(mean - expected) <= bound * (1 + 1e-9))


def test_weight_element_carries_only_the_weight() -> None:
    fp = FixedPoint(bits=32, clip=1.0, scale=1000.0, max_clients=10, max_weight=100.0)
    encoded = fp.encode_weighted(np.array([0.5, -0.25]), 40.0)
    lifted = centered(fp, encoded)
    assert lifted.tolist() == [20_000, -10_000, 40_000]  # w*x*scale, then w*clip*scale


@pytest.mark.parametrize("weight", [-0.1, 100.5, math.nan, math.inf, "3", True])
def test_weights_outside_the_range_raise(weight: object) -> None:
    fp = FixedPoint(bits=32, clip=1.0, scale=1000.0, max_clients=10, max_weight=100.0)
    with pytest.raises(ConfigurationError):
        fp.encode_weighted(np.zeros(3), weight)  # type: ignore[arg-type]


def test_zero_total_weight_has_no_mean() -> None:
    fp = FixedPoint(bits=32, clip=1.0, scale=1000.0, max_clients=10, max_weight=100.0)
    total = fp.encode_weighted(np.ones(3), 0.0)
    with pytest.raises(UsageError):
        fp.decode_weighted(total)
    with pytest.raises(ConfigurationError):
        fp.decode_weighted(np.zeros(0, dtype=np.uint32))
