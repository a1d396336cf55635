"""Review: each fault found by probing Flower's SecAgg+ (ANCHORS.md) is absent here.

One test (or group) per fault, numbered as in ANCHORS.md "Faults found by probing it".
"""

from __future__ import annotations

import ast
import dataclasses
import pickle
import random
from pathlib import Path

import msgpack
import numpy as np
import pytest

from secagg.encoding import FixedPoint
from secagg.errors import DecodeError, HeadroomError, MaliciousRequestError, UsageError
from secagg.keys import KeyPair
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import MaskedInput, RevealedShare, decode_message
from secagg.signing import SigningKey
from tests.helpers.protocol import (
    Session,
    assert_correct,
    deliver,
    make_session,
    run_session,
    unmasking_setup,
)
from tests.helpers.tamper import garble_share, rewrite_self_mask_shares

SECAGG = Path(__file__).resolve().parents[3] / "secagg"


def _modules() -> list[tuple[Path, ast.Module, list[str]]]:
    out = []
    for path in sorted(SECAGG.rglob("*.py")):
        source = path.read_text()
        out.append((path, ast.parse(source), source.splitlines()))
    return out


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


# --- 1. masks from a weak RNG -----------------------------------------------------------


def _is_weak(name: str) -> bool:
    if name == "random" or name.startswith("random."):
        return True
    return name.split(".")[0] in ("np", "numpy") and ".random" in name


def test_1_no_weak_rng_in_secagg_unless_marked_not_secret() -> None:
    offenders = []
    for path, tree, lines in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):  # also "from numpy import random"
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Attribute):
                names = [_dotted(node)]
            else:
                continue
            # The marker sits on the line itself or on the comment line just above it.
            marked = "# not-secret" in lines[node.lineno - 1] or (
                node.lineno > 1 and lines[node.lineno - 2].strip().startswith("# not-secret")
            )
            if any(map(_is_weak, names)) and not marked:
                offenders.append(f"{path.relative_to(SECAGG)}:{node.lineno} {names[0]}")
    assert not offenders, offenders


def test_1_a_whole_session_runs_with_every_weak_rng_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = make_session(7, 4, length=16, bits=32)  # test inputs drawn before the patch

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a weak RNG was used inside the protocol")

    for name in ("default_rng", "RandomState", "seed", "random", "randint", "integers"):
        if hasattr(np.random, name):
            monkeypatch.setattr(np.random, name, forbidden)
    for name in ("random", "randint", "getrandbits", "randbytes", "Random", "seed", "choice"):
        monkeypatch.setattr(random, name, forbidden)
    result = run_session(session, drops={"masked_input": {3}})
    assert_correct(session, result)


# --- 2. both shares of a victim ---------------------------------------------------------


def test_2_a_request_listing_a_victim_dropped_and_alive_gets_nothing() -> None:
    session, requests = unmasking_setup()
    client = session.clients[1]
    request = requests[1]
    evil = dataclasses.replace(request, dropped=(*request.dropped, request.survivors[-1]))
    with pytest.raises(MaliciousRequestError):
        deliver(client, evil)
    assert client.aborted


# --- 3. the example count in clear ------------------------------------------------------


def test_3_a_masked_input_carries_only_the_masked_vector() -> None:
    session = make_session(4, 3, length=5)
    sent: list[bytes] = []

    def tap(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "masked_input":
            sent.append(data)
        return [data]

    run_session(session, tamper=tap)
    for data in sent:
        fields = msgpack.unpackb(data, raw=False)
        assert len(fields) == 8  # version, type, sender, recipient, session, bits, length, payload
        message = decode_message(data)
        assert isinstance(message, MaskedInput)
        assert (message.bits, message.length) == (16, 5)  # public configuration, nothing else
        assert len(message.payload) == 10
    # A weight travels inside the vector it scales: encode_weighted appends it as one more
    # element, masked with the rest.
    codec = FixedPoint.for_precision(bits=32, clip=1.0, max_clients=4, max_weight=100.0)
    assert codec.encode_weighted(np.zeros(5), 37.0).shape == (6,)


# --- 4. one garbled share ---------------------------------------------------------------


def test_4_one_garbled_share_does_not_crash_the_round() -> None:
    session = make_session(8, 5, length=6)

    def garble(shares: tuple[RevealedShare, ...]) -> tuple[RevealedShare, ...]:
        first, *rest = shares
        return (first._replace(share=garble_share(first.share)), *rest)

    result = run_session(session, tamper=rewrite_self_mask_shares(2, garble))
    assert_correct(session, result)
    assert result.included == session.config.client_set
    assert "other than its box's" in result.faults[2]
    assert set(result.faults) == {2}  # the liar, found from its own box: nobody else


# --- 5. dropouts before the masking round -----------------------------------------------


@pytest.mark.parametrize("round_name", ["advertise_keys", "share_keys"])
def test_5_dropouts_before_masking_are_survivable(round_name: str) -> None:
    session = make_session(9, 5, length=6)
    result = run_session(session, drops={round_name: {2, 7}})
    assert_correct(session, result)
    assert result.included == session.config.client_set - {2, 7}
    assert "dropped" in result.excluded[2]


# --- 6. odd and even share counts -------------------------------------------------------


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8])
def test_6_every_share_count_and_threshold_works(n: int) -> None:
    for t in range(n // 2 + 1, n + 1):
        for dropped in range(n - t + 1):  # shares available: n - dropped, odd and even
            session = make_session(n, t, length=3, seed=n + t + dropped)
            drops = {"masked_input": set(range(1, dropped + 1))}
            result = run_session(session, drops=drops)
            assert_correct(session, result)
            assert len(result.included) == n - dropped


# --- 7. no silent wrap with 1024 or more clients ----------------------------------------


def test_7_headroom_counts_clients_not_shares() -> None:
    # 1024 clients x 2^21 = 2^31 > 2^31 - 1: refused; 1023 clients fit.
    with pytest.raises(HeadroomError):
        FixedPoint(bits=32, clip=1.0, scale=2.0**21, max_clients=1024)
    FixedPoint(bits=32, clip=1.0, scale=2.0**21, max_clients=1023)


def test_7_a_1024_client_round_of_extreme_values_does_not_wrap() -> None:
    n, length = 1024, 3
    codec = FixedPoint.for_precision(bits=32, clip=1.0, max_clients=n)
    values = np.array([1.0, -1.0, 0.75])
    config = ProtocolConfig.create(
        list(range(1, n + 1)), threshold=5, bits=32, vector_length=length, degree=8
    )
    session = Session(config, {c: codec.encode(values) for c in config.clients})
    result = run_session(session, drops={"masked_input": {10, 1000}})
    assert len(result.included) == n - 2
    np.testing.assert_allclose(codec.decode(result.total), (n - 2) * values, rtol=1e-6)


# --- 8. pickle ---------------------------------------------------------------------------


def test_8_no_pickle_marshal_or_eval_in_secagg() -> None:
    banned_modules = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle"}
    offenders = []
    for path, tree, _ in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                hits = {alias.name.split(".")[0] for alias in node.names} & banned_modules
            elif isinstance(node, ast.ImportFrom):
                hits = {(node.module or "").split(".")[0]} & banned_modules
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                hits = {node.func.id} & {"eval", "exec", "compile", "__import__"}
            elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                hits = (
                    {"allow_pickle"}
                    if not (isinstance(node.value, ast.Constant) and node.value.value is False)
                    else set()
                )
            else:
                continue
            if hits:
                offenders.append(f"{path.relative_to(SECAGG)}:{node.lineno} {sorted(hits)}")
    assert not offenders, offenders


def test_8_pickled_bytes_are_refused_and_secrets_refuse_pickling() -> None:
    for payload in (pickle.dumps({"x": 1}), pickle.dumps([1, 2, 0, 0, bytes(16)])):
        with pytest.raises(DecodeError):
            decode_message(payload, sender=1)
    for secret in (KeyPair.generate(), SigningKey.generate()):
        with pytest.raises(UsageError):
            pickle.dumps(secret)
