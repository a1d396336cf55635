"""CKKS backend: chunking, sums and scaling within the documented bound, public vs secret."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
import tenseal as ts
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError, DecodeError, UsageError
from secagg.he.ckks import CkksContext, CkksParameters, sum_ckks

SECRET = CkksContext.generate()
PUBLIC_BYTES = SECRET.public().serialize()
AGGREGATOR = CkksContext.from_bytes(PUBLIC_BYTES)  # what the server holds
SLOTS = SECRET.parameters.slots


def test_sound_defaults() -> None:
    params = CkksParameters()
    assert params.poly_modulus_degree == 8192
    assert params.coeff_mod_bit_sizes == (60, 40, 40, 60)
    assert params.scale_bits == 40 and params.slots == 4096 and params.levels == 2
    for bad in (
        {"poly_modulus_degree": 4096},  # 200 coefficient bits > 109: insecure
        {"poly_modulus_degree": 1000},
        {"coeff_mod_bit_sizes": (60, 40, 40, 40, 40, 60)},  # 280 > 218
        {"coeff_mod_bit_sizes": (60,)},
        {"scale_bits": 60},
    ):
        with pytest.raises(ConfigurationError):
            CkksParameters(**bad)  # type: ignore[arg-type]


@given(
    st.sampled_from([0, 1, 100, SLOTS - 1, SLOTS, SLOTS + 1, 2 * SLOTS + 7]),
    st.integers(1, 4),
    st.sampled_from([1.0, 1e3, 1e5]),
    st.sampled_from([1.0, 0.25, 1e-3, -3.0]),
    st.integers(0, 2**32),
)
def test_sum_and_scale_within_documented_bound(
    length: int, summands: int, max_abs: float, factor: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-max_abs, max_abs, size=length) for _ in range(summands)]
    # Clients encrypt; the aggregator decodes with its public context, adds and scales.
    uploads = [
        AGGREGATOR.vector_from_bytes(
            SECRET.encrypt(x).to_bytes(), length=length, max_summands=1, party=i + 1
        )
        for i, x in enumerate(xs)
    ]
    total = sum_ckks(uploads)
    assert total.summands == summands and len(total.chunks) == -(-length // SLOTS)
    if factor != 1.0:
        total = total.scale(factor)
    result = SECRET.decrypt(SECRET.vector_from_bytes(total.to_bytes()))
    exact = np.sum(xs, axis=0) * factor if length else np.zeros(0)
    assert result.shape == (length,)
    bound = SECRET.parameters.error_bound(summands=summands, max_abs=max_abs, factor=factor)
    if length:
        assert np.max(np.abs(result - exact)) <= bound


def test_aggregator_cannot_decrypt() -> None:
    assert not AGGREGATOR.has_secret_key and SECRET.has_secret_key
    vector = SECRET.encrypt(np.arange(10.0))
    received = AGGREGATOR.vector_from_bytes(vector.to_bytes())
    with pytest.raises(UsageError):
        AGGREGATOR.decrypt(received)
    with pytest.raises(UsageError):
        AGGREGATOR.serialize(include_secret_key=True)
    # The public bytes carry no secret key at the TenSEAL level either.
    raw = ts.context_from(msgpack.unpackb(PUBLIC_BYTES)["ctx"])
    assert not raw.is_private()
    with pytest.raises(ValueError):
        raw.secret_key()


def test_secret_context_round_trip_for_clients() -> None:
    other_client = CkksContext.from_bytes(SECRET.serialize(include_secret_key=True))
    assert other_client.has_secret_key
    x = np.linspace(-1, 1, 33)
    np.testing.assert_allclose(other_client.decrypt(SECRET.encrypt(x)), x, atol=1e-6)
    assert "secret" in repr(SECRET) and "public" in repr(AGGREGATOR)


def test_levels_and_misuse() -> None:
    x = np.ones(5)
    once = SECRET.encrypt(x).scale(0.5)
    twice = once.scale(0.5)
    np.testing.assert_allclose(SECRET.decrypt(twice), x / 4, atol=1e-4)
    with pytest.raises(UsageError):
        twice.scale(2.0)
    with pytest.raises(UsageError):
        SECRET.encrypt(x) + once  # different levels
    with pytest.raises(UsageError):
        SECRET.encrypt(x) + SECRET.encrypt(np.ones(6))
    with pytest.raises(UsageError):
        sum_ckks([])
    with pytest.raises(ConfigurationError):
        once.scale(float("nan"))
    for bad in (np.array([np.nan]), np.ones((2, 2)), np.array(["a"])):
        with pytest.raises(ConfigurationError):
            SECRET.encrypt(bad)
    with pytest.raises(ConfigurationError):
        SECRET.parameters.error_bound(summands=0, max_abs=1.0)


def test_vector_decoding_rejects_malformed_input() -> None:
    good = SECRET.encrypt(np.arange(SLOTS + 3.0))
    data = good.to_bytes()
    obj = msgpack.unpackb(data)
    short = SECRET.encrypt(np.arange(7.0)).to_bytes()

    def tampered(**changes: object) -> bytes:
        return msgpack.packb({**obj, **changes}, use_bin_type=True)

    cases = [
        (b"\xc1", {}),
        (data, {"length": SLOTS + 4}),
        (data, {"max_summands": 0}),
        (tampered(summands=0), {}),
        (tampered(levels=3), {}),
        (tampered(chunks=obj["chunks"][:1]), {}),
        (tampered(chunks=[obj["chunks"][0], b"garbage"]), {}),
        (tampered(chunks=[obj["chunks"][0], msgpack.unpackb(short)["chunks"][0]]), {}),
        (tampered(chunks=[obj["chunks"][0], obj["chunks"][0]]), {}),  # wrong chunk size
        (tampered(v=2), {}),
    ]
    for bad, kwargs in cases:
        with pytest.raises(DecodeError) as info:
            AGGREGATOR.vector_from_bytes(bad, party=7, **kwargs)  # type: ignore[arg-type]
        assert info.value.party == 7
    with pytest.raises(DecodeError):
        CkksContext.from_bytes(b"\x81\xa1v\x01")
    with pytest.raises(DecodeError):
        CkksContext.from_bytes(
            msgpack.packb({"v": 1, "params": CkksParameters().to_dict(), "ctx": b"not a context"})
        )
