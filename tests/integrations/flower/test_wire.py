"""The Flower transport's records: model layout, envelopes and session setups."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError
from secagg.integrations.flower.layout import ArrayLayout, ArraySpec
from secagg.integrations.flower.wire import (
    HEADER_KEY,
    PAYLOAD_KEY,
    PAYLOAD_STYPE,
    Envelope,
    FixedPointParams,
    IdentifyRequest,
    SessionSetup,
    has_envelope,
    read_envelope,
    strip_envelope,
    write_envelope,
)

SESSION = bytes(range(16))
DTYPES = ["<f4", "<f8", "<f2", "<i8", "<i4", "<u1"]


def _record(shapes: list[tuple[int, ...]], dtypes: list[str], seed: int = 0) -> ArrayRecord:
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (shape, dtype) in enumerate(zip(shapes, dtypes, strict=True)):
        values = rng.integers(0, 100, size=shape) if dtype[1] in "iu" else rng.normal(size=shape)
        arrays[f"layer{i}.w"] = Array(np.asarray(values).astype(dtype))
    return ArrayRecord(arrays)


shapes_st = st.lists(
    st.tuples(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
              st.sampled_from(DTYPES)),
    min_size=1, max_size=5,
).filter(lambda specs: sum(int(np.prod(s)) for s, _ in specs) > 0)


@given(shapes_st, st.lists(st.sampled_from(["loss", "acc", "f1"]), unique=True, max_size=3))
def test_layout_round_trip(specs: list[tuple[tuple[int, ...], str]], metrics: list[str]) -> None:
    record = _record([s for s, _ in specs], [d for _, d in specs])
    layout = ArrayLayout.from_record(record, metrics)
    values = {m: float(i) + 0.5 for i, m in enumerate(metrics)}
    vector = layout.flatten(record, values)
    assert vector.dtype == np.float64 and vector.shape == (layout.size,)
    back, back_metrics = layout.unflatten(vector)
    assert list(back.keys()) == list(record.keys())
    for name in record:
        original, restored = record[name].numpy(), back[name].numpy()
        assert restored.dtype == original.dtype and restored.shape == original.shape
        np.testing.assert_array_equal(restored, original)
    assert back_metrics == values
    assert ArrayLayout.from_wire(layout.to_wire(), max_size=layout.size) == layout


def test_layout_rejects_mismatched_models() -> None:
    record = _record([(2, 3), (4,)], ["<f4", "<f4"])
    layout = ArrayLayout.from_record(record, ["loss"])
    with pytest.raises(ConfigurationError, match="names"):
        layout.flatten(_record([(2, 3)], ["<f4"]), {"loss": 1.0})
    with pytest.raises(ConfigurationError, match="shape"):
        layout.flatten(_record([(3, 2), (4,)], ["<f4", "<f4"]), {"loss": 1.0})
    with pytest.raises(ConfigurationError, match="metric"):
        layout.flatten(record, {})
    with pytest.raises(ConfigurationError, match="metric"):
        layout.flatten(record, {"loss": "high"})
    bad = _record([(2, 3), (4,)], ["<f4", "<f4"])
    bad["layer0.w"] = Array(np.full((2, 3), np.nan, dtype="<f4"))
    with pytest.raises(ConfigurationError, match="NaN"):
        layout.flatten(bad, {"loss": 1.0})
    with pytest.raises(ConfigurationError):
        layout.unflatten(np.zeros(layout.size + 1))
    with pytest.raises(ConfigurationError, match="dtype"):
        ArrayLayout.from_record(ArrayRecord({"b": Array(np.array([True, False]))}))
    with pytest.raises(ConfigurationError, match="nothing"):
        ArrayLayout(())


def test_layout_integer_arrays_round_and_saturate() -> None:
    layout = ArrayLayout((ArraySpec("count", (3,), "<i2"),))
    back, _ = layout.unflatten(np.array([1.4, 2.6, 1e9]))
    np.testing.assert_array_equal(back["count"].numpy(), np.array([1, 3, 32767], dtype="<i2"))


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=20,
))
def test_layout_from_wire_never_crashes(obj: object) -> None:
    try:
        layout = ArrayLayout.from_wire(obj, max_size=10**6)
    except DecodeError as exc:
        assert exc.party == 0
    else:
        assert layout.size <= 10**6


def test_layout_from_wire_refuses_hostile_entries() -> None:
    good = [[["w", [2, 2], "<f4"]], []]
    assert ArrayLayout.from_wire(good, max_size=4).size == 4
    for bad in (
        [[["w", [2, 2], "|O"]], []],  # object dtype
        [[["w", [2, 2], "V8"]], []],
        [[["w", [-1], "<f4"]], []],
        [[["w", [2], "<f4"], ["w", [2], "<f4"]], []],  # duplicate names
        [[["", [2], "<f4"]], []],
        [[["w", [2], "<f4"]], ["m", "m"]],
        [[["w", [True], "<f4"]], []],
    ):
        with pytest.raises(DecodeError):
            ArrayLayout.from_wire(bad, max_size=100)
    with pytest.raises(DecodeError, match="exceeds"):
        ArrayLayout.from_wire([[["w", [2**20, 2**10], "<f4"]], []], max_size=2**20)


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.integers(0, 8),
       st.none() | st.binary(min_size=1, max_size=50))
def test_envelope_round_trip(payloads: list[bytes], stage: int, setup: bytes | None) -> None:
    base = RecordDict({"arrays": _record([(3,)], ["<f4"]), "config": ConfigRecord({"lr": 0.1})})
    content = write_envelope(base, Envelope(stage, SESSION, tuple(payloads), setup))
    assert has_envelope(content)
    envelope = read_envelope(content, party=3, max_bytes=10**6)
    assert envelope == Envelope(stage, SESSION, tuple(payloads), setup)
    stripped = strip_envelope(content)
    assert not has_envelope(stripped) and PAYLOAD_KEY not in stripped
    assert set(stripped.keys()) == {"arrays", "config"}
    assert "payloads=[" in repr(envelope) and SESSION.hex() not in repr(envelope)


def _valid_content() -> RecordDict:
    return write_envelope(RecordDict(), Envelope(1, SESSION, (b"abc", b"de")))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop(HEADER_KEY),
        lambda c: c.pop(PAYLOAD_KEY),
        lambda c: c[HEADER_KEY].__setitem__("v", 1),
        lambda c: c[HEADER_KEY].__setitem__("v", True),
        lambda c: c[HEADER_KEY].__setitem__("stage", -1),
        lambda c: c[HEADER_KEY].__setitem__("stage", "1"),
        lambda c: c[HEADER_KEY].__setitem__("session", b"short"),
        lambda c: c[HEADER_KEY].__setitem__("session", "x" * 16),
        lambda c: c[HEADER_KEY].__setitem__("extra", 1),
        lambda c: c[HEADER_KEY].__setitem__("setup", 5),
        lambda c: c[HEADER_KEY].__setitem__("identify", 5),
        lambda c: c[HEADER_KEY].__setitem__("identity", b"x" * 5000),
        # A message is a setup, an identification request or its answer, never two.
        lambda c: (c[HEADER_KEY].__setitem__("setup", b"s"),
                   c[HEADER_KEY].__setitem__("identify", b"i")),
        lambda c: c[PAYLOAD_KEY].__setitem__("7", Array(np.zeros(3, dtype=np.uint8))),
        lambda c: c[PAYLOAD_KEY].__setitem__("0", Array(np.zeros(3, dtype=np.uint8))),
        lambda c: c[PAYLOAD_KEY].__setitem__(
            "1", Array(dtype="uint8", shape=(9,), stype=PAYLOAD_STYPE, data=b"abc")),
        lambda c: c[PAYLOAD_KEY].__setitem__(
            "1", Array(dtype="float32", shape=(3,), stype=PAYLOAD_STYPE, data=b"abc")),
    ],
)
def test_read_envelope_refuses_malformed(mutate: object) -> None:
    content = _valid_content()
    mutate(content)  # type: ignore[operator]
    with pytest.raises(DecodeError) as info:
        read_envelope(content, party=5, max_bytes=10**6)
    assert info.value.party == 5


def test_read_envelope_enforces_size_limit() -> None:
    content = _valid_content()
    assert read_envelope(content, party=1, max_bytes=5).payloads == (b"abc", b"de")
    with pytest.raises(DecodeError, match="exceeds"):
        read_envelope(content, party=1, max_bytes=4)


def _setup(**changes: object) -> SessionSetup:
    fields: dict[str, object] = dict(
        session_id=SESSION, protocol="secagg+", n=5, client_id=2, bits=32,
        fixed_point=FixedPointParams(clip=4.0, scale=1000.0, max_clients=5, max_weight=10.0),
        layout=ArrayLayout((ArraySpec("w", (2, 3), "<f4"),), ("loss",)),
        weighted_by_key="num-examples", weighted=True, params=b"\x94\x03\xc0\xa1x\xc0",
    )
    fields.update(changes)
    return SessionSetup(**fields)  # type: ignore[arg-type]


def test_setup_round_trip_and_repr() -> None:
    for setup in (_setup(), _setup(weighted=False, n=7, client_id=7, metric_scale=0.5,
                                   report_clipping=True, protocol="threshold-paillier")):
        data = setup.to_bytes()
        assert SessionSetup.from_bytes(data, max_vector_length=100) == setup
    assert _setup().vector_length == 8
    assert _setup(report_clipping=True).vector_length == 10  # two clipping indicators
    assert SESSION.hex() not in repr(_setup())


def test_setup_refuses_bad_values() -> None:
    obj = msgpack.unpackb(_setup().to_bytes(), raw=False)

    def encoded(index: int, value: object) -> bytes:
        changed = list(obj)
        changed[index] = value
        return bytes(msgpack.packb(changed, use_bin_type=True))

    bad = [
        encoded(0, 1), encoded(1, "s"), encoded(1, b"short"), encoded(2, ""),
        encoded(2, "x" * 65), encoded(2, 3), encoded(3, 0), encoded(4, 6), encoded(4, 0),
        encoded(5, 65), encoded(5, 0), encoded(5, True),
        encoded(6, [4.0, -1.0, 5, 10.0]), encoded(6, [4.0, float("nan"), 5, 10.0]),
        encoded(6, [4.0, 1.0, 0, 10.0]), encoded(6, [1.0]), encoded(7, [[], []]),
        encoded(8, ""), encoded(9, 1), encoded(10, "params"), encoded(11, 0.0),
        encoded(11, float("inf")), encoded(11, True), encoded(12, 1),
        b"\xc1", b"", bytes(msgpack.packb([2, 2])),
    ]
    for data in bad:
        with pytest.raises(DecodeError) as info:
            SessionSetup.from_bytes(data, max_vector_length=100)
        assert info.value.party == 0
    with pytest.raises(DecodeError, match="exceeds"):
        SessionSetup.from_bytes(_setup().to_bytes(), max_vector_length=7)


def test_identify_request_round_trip_and_refusals() -> None:
    request = IdentifyRequest("secagg+", bytes(range(32)))
    assert IdentifyRequest.from_bytes(request.to_bytes()) == request
    for bad in (b"", b"\xc1", bytes(msgpack.packb([2, "secagg+", b"short"])),
                bytes(msgpack.packb([1, "secagg+", bytes(32)])),
                bytes(msgpack.packb([2, "", bytes(32)])), b"x" * 5000):
        with pytest.raises(DecodeError) as info:
            IdentifyRequest.from_bytes(bad)
        assert info.value.party == 0


@given(st.binary(max_size=200))
def test_setup_from_random_bytes_never_crashes(data: bytes) -> None:
    try:
        setup = SessionSetup.from_bytes(data, max_vector_length=1000)
    except DecodeError as exc:
        assert exc.party == 0
    else:
        assert setup.vector_length <= 1000


def test_metric_record_values_flatten() -> None:
    record = _record([(2,)], ["<f4"])
    metrics = MetricRecord({"loss": 0.25, "num-examples": 10})
    layout = ArrayLayout.from_record(record, ["loss"])
    assert layout.flatten(record, dict(metrics))[-1] == 0.25
