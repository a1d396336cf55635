"""Loaders check what they load; types are exact; errors never echo the peer (issue 15.4).

The review's findings, one test each (every one failed before the fix):

* ``CkksContext.from_bytes`` took an N = 16384 context labelled N = 8192 (and any other
  contradiction between the record's parameters and the TenSEAL data); a vector chunk at
  another level than its record declares reached the server's sum and failed inside SEAL;
* types were not exact: ``True`` passed for version 1 (Flower setup), ``2.0`` for wire
  version 2, ``40.0`` for CKKS scale bits, ``True`` for an HE record's int field;
* a key share of any width (a 100 KB "secret" made loading take seconds), a Paillier
  modulus of any size;
* Flower's envelope echoed the version the peer sent, its setup the dtype.

The sweep over every decoder with every hostile value is ``tests/fuzz/test_fuzz.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import msgpack
import numpy as np
import pytest

from secagg.errors import ConfigurationError, DecodeError
from secagg.he._records import encode_record
from secagg.he.ckks import CkksContext, CkksParameters
from secagg.he.paillier import MAX_KEY_BITS, PaillierPublicKey
from secagg.he.threshold_paillier import KeyShare, ThresholdPublicKey
from tests.fuzz.targets import MARKER, TARGETS, check, fixtures

SMALL = CkksParameters(4096, (40, 20, 40), 21)
LARGE = CkksParameters(16384, (60, 40, 40, 40, 60), 40)


def _record(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = msgpack.unpackb(data, raw=False)
    return obj


def _pack(obj: object) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


@functools.cache
def _context(parameters: CkksParameters) -> CkksContext:
    return CkksContext.generate(parameters)


# --- CKKS: declared parameters must be the data's --------------------------------------------


def test_a_ckks_context_labelled_with_other_parameters_is_refused() -> None:
    record = _record(_context(LARGE).public().serialize())
    record["params"] = CkksParameters().to_dict()  # N = 16384 data labelled N = 8192
    with pytest.raises(DecodeError, match="contradicts its declared parameters"):
        CkksContext.from_bytes(_pack(record))
    record["params"] = CkksParameters(16384, (60, 40, 40, 60, 60), 40).to_dict()  # same N
    with pytest.raises(DecodeError, match="contradicts"):
        CkksContext.from_bytes(_pack(record))


def test_a_ckks_context_loads_with_its_own_parameters_and_the_expected_ones() -> None:
    for parameters in (SMALL, LARGE):
        data = _context(parameters).public().serialize()
        loaded = CkksContext.from_bytes(data, parameters=parameters)
        assert loaded.parameters == parameters and not loaded.has_secret_key
    secret = CkksContext.from_bytes(_context(SMALL).serialize(include_secret_key=True))
    assert secret.has_secret_key
    with pytest.raises(DecodeError, match="unexpected parameters"):
        CkksContext.from_bytes(_context(SMALL).public().serialize(), parameters=LARGE)


def test_a_bfv_context_is_not_a_ckks_context() -> None:
    import tenseal as ts

    bfv = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=4096, plain_modulus=1032193)
    data = encode_record({"v": 1, "params": SMALL.to_dict(), "ctx": bfv.serialize()})
    with pytest.raises(DecodeError):
        CkksContext.from_bytes(data)


def test_a_ckks_chunk_must_sit_at_its_declared_level() -> None:
    context = _context(SMALL)
    fresh = context.encrypt(np.arange(4.0))
    scaled = fresh.scale(0.5)
    for vector, wrong_level in ((fresh, 0), (scaled, 1)):
        record = _record(vector.to_bytes())
        record["levels"] = wrong_level
        with pytest.raises(DecodeError, match="declared level"):
            context.vector_from_bytes(_pack(record))
        assert context.vector_from_bytes(vector.to_bytes()).levels_left == vector.levels_left


@pytest.mark.parametrize(
    "fields",
    [
        {"s": 21.0},
        {"s": True},
        {"n": 4096.0},
        {"n": True},
        {"q": [40.0, 20, 40]},
        {"q": [True, 20, 40]},
        {"q": [20] * 100_000},
        {"q": "ZQXJ"},
    ],
)
def test_ckks_parameters_have_exact_types(fields: dict[str, object]) -> None:
    record = {**SMALL.to_dict(), **fields}
    with pytest.raises(DecodeError) as caught:
        CkksParameters.from_dict(record)
    assert len(str(caught.value)) < 300 and "ZQXJ" not in str(caught.value)
    with pytest.raises(ConfigurationError):
        CkksParameters(SMALL.poly_modulus_degree, SMALL.coeff_mod_bit_sizes, 21.0)  # type: ignore[arg-type]


# --- HE records: exact ints, keys of their declared size ---------------------------------------


def _threshold() -> tuple[ThresholdPublicKey, bytes]:
    key_share_file = sorted(_corpus_dir("key-share").iterdir())[0]
    public = ThresholdPublicKey.from_bytes(
        bytes.fromhex(fixtures()["threshold_paillier"]["public"])
    )
    return public, key_share_file.read_bytes()


def _corpus_dir(name: str) -> Any:
    from tests.fuzz.targets import CORPUS

    return CORPUS / name


def test_he_records_refuse_a_bool_version_and_bool_ints() -> None:
    public, share_bytes = _threshold()
    assert KeyShare.from_bytes(share_bytes, public).index >= 1
    for field, value in (("v", True), ("i", True), ("v", 1.0), ("i", 1.0)):
        record = _record(share_bytes)
        record[field] = value
        with pytest.raises(DecodeError):
            KeyShare.from_bytes(_pack(record), public)
    record = _record(public.to_bytes())
    record["t"] = True
    with pytest.raises(DecodeError):
        ThresholdPublicKey.from_bytes(_pack(record))


def test_a_key_share_has_the_width_it_is_written_with() -> None:
    public, share_bytes = _threshold()
    record = _record(share_bytes)
    secret = record["s"]
    for wrong in (secret[1:], b"\x00" + secret, MARKER * 25_000):
        record["s"] = wrong
        with pytest.raises(DecodeError, match="width") as caught:
            KeyShare.from_bytes(_pack(record), public)
        assert "ZQXJ" not in str(caught.value)
    record["s"] = b"\xff" * len(secret)  # the right width, but not below n^2
    with pytest.raises(DecodeError, match="range"):
        KeyShare.from_bytes(_pack(record), public)


def test_a_paillier_modulus_has_a_bounded_size_and_an_exact_type() -> None:
    with pytest.raises(DecodeError, match="too large"):
        PaillierPublicKey.from_bytes(b"\xff" * (MAX_KEY_BITS // 8 + 1))
    with pytest.raises(ConfigurationError):
        PaillierPublicKey((1 << MAX_KEY_BITS) + 1)
    with pytest.raises(ConfigurationError):
        PaillierPublicKey(True)


# --- wire versions: exact ints --------------------------------------------------------------


def test_a_protocol_message_with_a_float_version_is_refused() -> None:
    from secagg.protocols.bonawitz.messages import decode_message

    data = sorted(_corpus_dir("message-bonawitz").iterdir())[0].read_bytes()
    decoded = msgpack.unpackb(data, raw=False)
    decode_message(data, sender=decoded[2])
    for version in (float(decoded[0]), True):
        decoded[0] = version
        with pytest.raises(DecodeError, match="version"):
            decode_message(_pack(decoded), sender=decoded[2])


def _flower_setup() -> bytes:
    return sorted(_corpus_dir("flower-setup").iterdir())[0].read_bytes()


def test_a_flower_setup_has_exact_types_and_a_sized_session_id() -> None:
    from secagg.integrations.flower.wire import SessionSetup

    SessionSetup.from_bytes(_flower_setup(), max_vector_length=4096)
    for index, value in ((0, True), (0, 1.0), (1, b"short"), (1, bytes(65))):
        obj = msgpack.unpackb(_flower_setup(), raw=False)
        obj[index] = value
        with pytest.raises(DecodeError):
            SessionSetup.from_bytes(_pack(obj), max_vector_length=4096)
    with pytest.raises(DecodeError):
        SessionSetup.from_bytes(None, max_vector_length=4096)  # type: ignore[arg-type]


def test_flower_errors_do_not_echo_the_peer() -> None:
    from secagg.integrations.flower.wire import SessionSetup

    obj = msgpack.unpackb(_flower_setup(), raw=False)
    obj[7][0][0][2] = "ZQXJ"  # the dtype of the first array
    with pytest.raises(DecodeError) as caught:
        SessionSetup.from_bytes(_pack(obj), max_vector_length=4096)
    assert "ZQXJ" not in str(caught.value)
    envelope = sorted(_corpus_dir("flower-envelope").iterdir())[0].read_bytes()
    header, arrays = msgpack.unpackb(envelope, raw=False)
    for version in ("ZQXJ" * 25_000, MARKER * 25_000, 1.0):
        header["v"] = version
        outcome = check(TARGETS["flower-envelope"], _pack([header, arrays]))
        assert outcome.startswith("DecodeError") and len(outcome) < 300


# --- crashes found by fuzzing (the inputs are also in the corpus as regression-* files) -------


def test_a_slot_layout_of_absurd_size_is_refused_not_a_memory_error() -> None:
    """make fuzz: capacity_bits and guard_bits near 2^63 made SlotLayout compute 1 << 2^63."""
    from secagg.he.slots import SlotLayout

    absurd = {"value_bits": 16, "max_summands": 8, "capacity_bits": 2**63, "guard_bits": 2**62}
    with pytest.raises(DecodeError):
        SlotLayout.from_dict(absurd)


def test_a_flower_setup_with_a_dtype_numpy_cannot_parse_is_a_decode_error() -> None:
    """make fuzz: np.dtype(",f4") raises SyntaxError, which escaped the layout decoder."""
    from secagg.integrations.flower.wire import SessionSetup

    for dtype in (",f4", "(", "[(", "f4,"):
        obj = msgpack.unpackb(_flower_setup(), raw=False)
        obj[7][0][0][2] = dtype
        with pytest.raises(DecodeError):
            SessionSetup.from_bytes(_pack(obj), max_vector_length=4096)


# A context found by `make fuzz` (atheris, target ckks-context): its second embedded SEAL
# header names zlib instead of zstd. TenSEAL's context_from made the C++ runtime abort the
# whole process (std::ios_base::failure escaping, exit 134) instead of raising.
_ABORTING_CONTEXT = (
    "g6F2AaZwYXJhbXODoW7NIAChcZQ8KCg8oXMoo2N0eMRkClVeoRAEAwIAAFUAAAAAAAAAKLUv/SCJ5QEAdAICACAA"
    "BABeoRAEAwEAAOgAAYD+/////w/A9P//wP3/AAAAAAAAAAAHAEv4xM4aT0WTnZMDjMDgCxABEgsQBxkAAAAAAABwQg=="
)


def test_a_context_that_aborts_the_native_loader_is_a_decode_error() -> None:
    import base64
    import subprocess
    import sys

    data = base64.b64decode(_ABORTING_CONTEXT)
    probe = (
        "import base64, sys\n"
        "from secagg.errors import DecodeError\n"
        "from secagg.he.ckks import CkksContext\n"
        "try:\n"
        f"    CkksContext.from_bytes(base64.b64decode({_ABORTING_CONTEXT!r}))\n"
        "except DecodeError as exc:\n"
        "    print(exc)\n"
    )
    # In a child of its own, so that a regression aborts that child, not the test run.
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stdout.strip() == "CKKS context does not deserialize"
    assert data  # the bytes themselves are committed in the fuzz corpus too
