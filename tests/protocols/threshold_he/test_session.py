"""Threshold-HE aggregation protocol: sums, dropouts, robust committee, refusals."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.encoding import FixedPoint
from secagg.errors import (
    ConfigurationError,
    DecodeError,
    ExclusionReason,
    InsufficientSharesError,
    MaliciousRequestError,
    ProtocolAbort,
    ProtocolViolation,
    UsageError,
)
from secagg.he.ckks import CkksContext
from secagg.he.paillier import EncryptedVector, encrypt_vector
from secagg.he.threshold_paillier import KeyShare, combine_partials
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.registry import SimulationParams
from secagg.protocols.threshold_he import (
    ThresholdHEClient,
    ThresholdHEConfig,
    ThresholdHEServer,
    setup_ckks,
    setup_threshold_paillier,
)
from secagg.protocols.threshold_he.messages import (
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
    decode_threshold_he_message,
)
from secagg.protocols.threshold_he.spec import (
    ThresholdHESimulation,
    ckks_spec,
    threshold_paillier_spec,
)
from secagg.sim.simulator import DropoutSchedule, simulate
from secagg.testing import ThresholdHETarget, run
from secagg.testing.strategies import client_inputs, dropout_schedules

BITS, DIM, N = 16, 200, 8
CLIENTS = list(range(1, N + 1))
COMMITTEE = [1, 2, 3, 4, 5]


@functools.cache
def paillier_setup() -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    # Test-only 512-bit key; cached so hypothesis examples share it.
    return setup_threshold_paillier(
        CLIENTS, bits=BITS, vector_length=DIM, committee=COMMITTEE, threshold=3, key_bits=512
    )


@functools.cache
def ckks_setup() -> tuple[ThresholdHEConfig, CkksContext]:
    return setup_ckks(CLIENTS, bits=BITS, vector_length=DIM, committee=[1, 2], threshold=2)


def inputs(seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 2**BITS, size=DIM, dtype=np.uint32) for c in CLIENTS}


def make_clients(
    config: ThresholdHEConfig, secrets: object, xs: dict[int, np.ndarray]
) -> dict[int, ThresholdHEClient]:
    clients = {}
    for c in config.clients:
        if isinstance(secrets, Mapping):
            clients[c] = ThresholdHEClient(config, c, xs[c], key_share=secrets.get(c))
        else:
            clients[c] = ThresholdHEClient(config, c, xs[c], ckks_secret=secrets)  # type: ignore[arg-type]
    return clients


Tamper = Callable[[Message], Message | None]


def drive(
    server: ThresholdHEServer,
    clients: dict[int, ThresholdHEClient],
    *,
    tamper: Tamper = lambda m: m,
    silent: Iterable[int] = (),
) -> None:
    """A minimal transport: every message passes through bytes; ``tamper`` may rewrite or
    drop (None) a client's reply; ``silent`` clients never answer."""
    outgoing = server.start()
    gone = set(silent)
    while not server.done:
        if not outgoing:
            outgoing = server.close_round()
            continue
        replies: list[Message] = []
        for message in outgoing:
            decoded = decode_threshold_he_message(message.to_bytes(), sender=SERVER_ID)
            if message.recipient in gone:
                continue
            for reply in clients[message.recipient].receive(decoded):
                changed = tamper(reply)
                if changed is not None:
                    replies.append(changed)
        outgoing = []
        for reply in replies:
            decoded = decode_threshold_he_message(reply.to_bytes(), sender=reply.sender)
            outgoing.extend(server.receive(decoded))


def expected_sum(xs: dict[int, np.ndarray], included: Iterable[int]) -> np.ndarray:
    total = np.zeros(DIM, dtype=np.uint64)
    for c in included:
        total += xs[c]
    return (total % 2**BITS).astype(np.uint32)


@settings(max_examples=8)
@given(st.data())
def test_paillier_sum_with_dropouts(data: st.DataObject) -> None:
    """Dropout schedules and inputs from :mod:`secagg.testing.strategies` (random, near
    either quorum, everyone after the input round, the whole committee): the harness checks
    the protocol (exact sum, abort exactly when its oracle says so, one decryption share per
    member), and the simulator must reach the same outcome."""
    config, shares = paillier_setup()
    target = ThresholdHETarget(config, key_shares=shares)
    xs = data.draw(client_inputs(target, headroom="none"), label="inputs")
    schedule = data.draw(dropout_schedules(target), label="schedule")
    report = run(target, xs, schedule)
    vanished = {c: r for r, ids in schedule.by_round.items() for c in ids}
    promised = target.predict(vanished, frozenset())
    simulation = ThresholdHESimulation(config, shares)
    if promised.aborts:
        assert report.abort is not None
        with pytest.raises(ProtocolAbort):
            simulate(simulation, xs, dropouts=schedule, protocol=threshold_paillier_spec())
        return
    result = simulate(simulation, xs, dropouts=schedule, protocol=threshold_paillier_spec())
    assert result.matches
    assert result.aggregate.included == promised.included
    assert report.result is not None and report.result.included == promised.included
    np.testing.assert_array_equal(
        result.aggregate.total, expected_sum(xs, result.aggregate.included)
    )


def test_simulated_ckks_sum_with_dropouts() -> None:
    config, secret = ckks_setup()
    simulation = ThresholdHESimulation(config, ckks_secret=secret)
    xs = inputs(3)
    schedule = DropoutSchedule({"encrypted_input": frozenset({4, 8})})
    result = simulate(simulation, xs, dropouts=schedule, protocol=ckks_spec())
    assert result.matches and result.aggregate.included == frozenset(CLIENTS) - {4, 8}
    # The CKKS committee needs both of its two members (threshold 2).
    with pytest.raises(ProtocolAbort):
        simulate(
            simulation,
            xs,
            protocol=ckks_spec(),
            dropouts=DropoutSchedule({"decryption": frozenset({2})}),
        )


def test_specs_build_configs_from_generic_parameters() -> None:
    params = SimulationParams(clients=4, dim=10, bits=12, threshold=2, degree=3)
    simulation = ThresholdHESimulation.threshold_paillier(params, key_bits=512)
    assert simulation.config.committee == (1, 2, 3) and simulation.config.threshold == 2
    assert "key_share" not in repr(simulation) and "ThresholdHEConfig" in repr(simulation)
    result = simulate(simulation, inputs_for(4, 10, 12), protocol=threshold_paillier_spec())
    assert result.matches
    ckks = ThresholdHESimulation.ckks(SimulationParams(clients=3, dim=10, bits=12))
    assert ckks.config.threshold == 1 and not ckks.config.ckks.has_secret_key  # type: ignore[union-attr]
    assert simulate(ckks, inputs_for(3, 10, 12), protocol=ckks_spec()).matches
    assert threshold_paillier_spec().accepts(simulation)  # type: ignore[misc]
    assert not ckks_spec().accepts(simulation)  # type: ignore[misc]


def inputs_for(n: int, dim: int, bits: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(n)
    return {c: rng.integers(0, 2**bits, size=dim, dtype=np.uint32) for c in range(1, n + 1)}


def _corrupt_partial(member: int) -> Tamper:
    def tamper(message: Message) -> Message | None:
        if isinstance(message, DecryptionShare) and message.sender == member:
            payload = bytearray(message.payload)
            payload[-5] ^= 1  # a flipped bit inside the proof's response
            return dataclasses.replace(message, payload=bytes(payload))
        return message

    return tamper


def test_tampered_partial_is_excluded_and_reported() -> None:
    config, shares = paillier_setup()
    xs = inputs(1)
    server = ThresholdHEServer(config, simulation=True)
    drive(server, make_clients(config, shares, xs), tamper=_corrupt_partial(1))
    result = server.result
    assert result is not None and result.included == frozenset(CLIENTS)
    np.testing.assert_array_equal(result.total, expected_sum(xs, CLIENTS))
    assert "rejected partial decryption" in result.faults[1]
    # With only t valid partials left besides the tampered one and a silent member, still
    # fine; with t - 1 valid ones it aborts instead of returning a wrong sum.
    server = ThresholdHEServer(config, simulation=True)
    drive(server, make_clients(config, shares, xs), tamper=_corrupt_partial(1), silent=[2])
    assert server.result is not None
    server = ThresholdHEServer(config, simulation=True)
    with pytest.raises(ProtocolAbort):
        drive(server, make_clients(config, shares, xs), tamper=_corrupt_partial(1), silent=[2, 3])


def test_partial_under_another_index_is_rejected() -> None:
    config, shares = paillier_setup()
    xs = inputs(2)
    stolen: dict[str, bytes] = {}

    def tamper(message: Message) -> Message | None:
        if isinstance(message, DecryptionShare):
            if message.sender == 2:
                stolen["payload"] = message.payload
            elif message.sender == 3 and "payload" in stolen:
                return dataclasses.replace(message, payload=stolen["payload"])
        return message

    server = ThresholdHEServer(config, simulation=True)
    drive(server, make_clients(config, shares, xs), tamper=tamper)
    assert server.result is not None and "another member" in server.result.faults[3]


def test_bad_upload_excludes_only_its_sender() -> None:
    config, shares = paillier_setup()
    xs = inputs(4)

    def tamper(message: Message) -> Message | None:
        if isinstance(message, EncryptedInput) and message.sender == 6:
            return dataclasses.replace(message, payload=message.payload[:-1])
        if isinstance(message, EncryptedInput) and message.sender == 7:
            return dataclasses.replace(message, payload=b"\x90")  # empty msgpack array
        return message

    server = ThresholdHEServer(config, simulation=True)
    drive(server, make_clients(config, shares, xs), tamper=tamper)
    result = server.result
    assert result is not None and result.included == frozenset(CLIENTS) - {6, 7}
    assert result.excluded[6].startswith("bad message")
    np.testing.assert_array_equal(result.total, expected_sum(xs, result.included))


def test_too_few_inputs_abort() -> None:
    config, shares = paillier_setup()
    server = ThresholdHEServer(config, simulation=True)
    with pytest.raises(ProtocolAbort, match="min_clients"):
        drive(server, make_clients(config, shares, inputs()), silent=CLIENTS[1:])


def test_aggregator_state_never_decrypts_a_client() -> None:
    config, shares = paillier_setup()
    xs = inputs(5)
    server = ThresholdHEServer(config, simulation=True)
    clients = make_clients(config, shares, xs)
    requests = server.start()
    for request in requests[:3]:
        for reply in clients[request.recipient].receive(request):
            server.receive(reply)
    # Everything the server holds is public: no key share, no secret context anywhere.
    seen: set[int] = set()

    def walk(obj: object) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        assert not isinstance(obj, KeyShare)
        assert not (isinstance(obj, CkksContext) and obj.has_secret_key)
        if isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            for value in obj:
                walk(value)
        elif hasattr(obj, "__dict__"):
            for value in vars(obj).values():
                walk(value)
        elif hasattr(obj, "__slots__"):
            for name in obj.__slots__:
                walk(getattr(obj, name, None))

    walk(server)
    # A client's ciphertext with the server's knowledge alone (zero partials): refused.
    one = encrypt_vector(config.public_key.paillier, xs[1].astype(np.uint64), config.layout)  # type: ignore[union-attr]
    with pytest.raises(InsufficientSharesError):
        combine_partials(config.public_key, one.ciphertexts, [])  # type: ignore[arg-type]
    # CKKS: the server's context is public and cannot decrypt.
    ckks_config, _ = ckks_setup()
    assert ckks_config.ckks is not None and not ckks_config.ckks.has_secret_key
    with pytest.raises(UsageError):
        ckks_config.ckks.decrypt(ckks_config.ckks.encrypt(np.ones(3)))


def test_member_only_decrypts_aggregates_once() -> None:
    config, shares = paillier_setup()
    xs = inputs(6)
    pk = config.public_key
    assert pk is not None
    sid = config.session_id
    single = encrypt_vector(pk.paillier, xs[4].astype(np.uint64), config.layout)
    pair = single + encrypt_vector(pk.paillier, xs[5].astype(np.uint64), config.layout)

    def member() -> ThresholdHEClient:
        return ThresholdHEClient(config, 1, xs[1], key_share=shares[1])

    # One client's ciphertext: fewer than min_clients.
    with pytest.raises(MaliciousRequestError):
        member().receive(DecryptionRequest(SERVER_ID, 1, sid, (4,), single.to_bytes()))
    # Claiming two summands for a single ciphertext: the count does not match.
    with pytest.raises(MaliciousRequestError):
        member().receive(DecryptionRequest(SERVER_ID, 1, sid, (4, 5), single.to_bytes()))
    with pytest.raises(MaliciousRequestError):
        member().receive(DecryptionRequest(SERVER_ID, 1, sid, (4, 99), pair.to_bytes()))
    with pytest.raises(DecodeError):
        member().receive(DecryptionRequest(SERVER_ID, 1, sid, (4, 5), b"\x90"))
    honest = member()
    (reply,) = honest.receive(DecryptionRequest(SERVER_ID, 1, sid, (4, 5), pair.to_bytes()))
    assert isinstance(reply, DecryptionShare) and honest.done
    with pytest.raises(MaliciousRequestError):
        honest.receive(DecryptionRequest(SERVER_ID, 1, sid, (4, 5), pair.to_bytes()))
    # Non-members and foreign sessions are refused.
    with pytest.raises(ProtocolViolation):
        ThresholdHEClient(config, 7, xs[7]).receive(
            DecryptionRequest(SERVER_ID, 7, sid, (4, 5), pair.to_bytes())
        )
    with pytest.raises(ProtocolViolation):
        member().receive(InputRequest(SERVER_ID, 1, b"x" * 16))
    client = member()
    client.receive(InputRequest(SERVER_ID, 1, sid))
    with pytest.raises(ProtocolViolation):
        client.receive(InputRequest(SERVER_ID, 1, sid))


def test_ckks_members_must_agree() -> None:
    """Review story (issue 15): the single-key CKKS committee aborted on any disagreement,
    so one faulty member ended every round; the majority's answer now wins and the
    dissenter is blamed, and only a tie aborts."""
    config, secret = ckks_setup()  # two members, threshold 2
    xs = inputs(7)

    def flip(member: int) -> Tamper:
        def tamper(message: Message) -> Message | None:
            if isinstance(message, DecryptionShare) and message.sender == member:
                payload = bytearray(message.payload)
                payload[0] ^= 1
                return dataclasses.replace(message, payload=bytes(payload))
            return message

        return tamper

    # Two members at threshold 2, one lies: no answer has two votes, nobody blamed.
    server = ThresholdHEServer(config, simulation=True)
    with pytest.raises(ProtocolAbort, match="identical decryptions"):
        drive(server, make_clients(config, secret, xs), tamper=flip(2))
    assert not server.faults
    server = ThresholdHEServer(config, simulation=True)
    drive(server, make_clients(config, secret, xs))
    assert server.result is not None
    np.testing.assert_array_equal(server.result.total, expected_sum(xs, CLIENTS))
    # Three members at threshold 2: the liar is outvoted and blamed, the sum is exact.
    three, _ = setup_ckks(CLIENTS, bits=BITS, vector_length=DIM, committee=[1, 2, 3], threshold=2)
    three = dataclasses.replace(three, ckks=config.ckks)  # the same key as ``secret``
    server = ThresholdHEServer(three, simulation=True)
    drive(server, make_clients(three, secret, xs), tamper=flip(3))
    assert server.result is not None
    np.testing.assert_array_equal(server.result.total, expected_sum(xs, CLIENTS))
    assert server.result.faults[3].reasons == {ExclusionReason.DISAGREEMENT}
    assert set(server.result.faults) == {3}
    # Three members at threshold 3: the two honest answers are not enough.
    strict = dataclasses.replace(three, threshold=3)
    server = ThresholdHEServer(strict, simulation=True)
    with pytest.raises(ProtocolAbort, match="identical decryptions"):
        drive(server, make_clients(strict, secret, xs), tamper=flip(3))
    # Two members at threshold 1, one lies: a one-to-one tie, nobody blamed.
    loose = dataclasses.replace(config, threshold=1)
    server = ThresholdHEServer(loose, simulation=True)
    with pytest.raises(ProtocolAbort, match="none a majority"):
        drive(server, make_clients(loose, secret, xs), tamper=flip(1))
    assert not server.faults


def test_weighted_float_updates_end_to_end() -> None:
    fixed = FixedPoint.for_precision(bits=BITS + 8, clip=1.0, max_clients=N, max_weight=4.0)
    config, shares = setup_threshold_paillier(
        CLIENTS,
        bits=fixed.bits,
        vector_length=DIM + 1,
        committee=COMMITTEE,
        threshold=3,
        key_bits=512,
    )
    rng = np.random.default_rng(8)
    updates = {c: rng.uniform(-1, 1, size=DIM) for c in CLIENTS}
    weights = {c: float(c % 4 + 1) for c in CLIENTS}
    clients = {
        c: ThresholdHEClient.from_update(
            config, c, fixed, updates[c], weights[c], key_share=shares.get(c)
        )
        for c in CLIENTS
    }
    server = ThresholdHEServer(config, simulation=True)
    drive(server, clients)
    assert server.result is not None
    mean, total_weight = fixed.decode_weighted(server.result.total)
    exact = sum(weights[c] * updates[c] for c in CLIENTS) / sum(weights.values())
    assert total_weight == pytest.approx(sum(weights.values()), rel=1e-3)
    np.testing.assert_allclose(mean, exact, atol=1e-3)
    with pytest.raises(ConfigurationError):
        ThresholdHEClient.from_update(config, 1, fixed, np.zeros(DIM - 1), 1.0)


def test_config_validation() -> None:
    config, shares = paillier_setup()
    for changes in (
        {"committee": (1, 2, 3, 4, 99)},
        {"committee": ()},
        {"threshold": 2},  # does not match the key's t
        {"min_clients": 1},
        {"clients": (1,)},
        {"session_id": b"short"},
        {"ckks": ckks_setup()[0].ckks},  # both backends at once
        {"bits": 0},
    ):
        with pytest.raises(ConfigurationError):
            dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    ckks_config, secret = ckks_setup()
    with pytest.raises(ConfigurationError):
        dataclasses.replace(ckks_config, ckks=secret)  # secret context in the shared config
    with pytest.raises(ConfigurationError):
        dataclasses.replace(ckks_config, bits=42)  # 42 + log2(8) > 44: CKKS not exact
    with pytest.raises(ConfigurationError):
        ThresholdHEClient(config, 1, np.zeros(DIM, dtype=np.uint32))  # member without share
    with pytest.raises(ConfigurationError):
        ThresholdHEClient(config, 2, np.zeros(DIM, dtype=np.uint32), key_share=shares[1])
    with pytest.raises(ConfigurationError):
        ThresholdHEClient(config, 99, np.zeros(DIM, dtype=np.uint32))
    assert "ThresholdHEConfig(backend='threshold-paillier'" in repr(config)
    server = ThresholdHEServer(config, simulation=True)
    with pytest.raises(UsageError):
        server.receive(InputRequest(SERVER_ID, 1, config.session_id))
    with pytest.raises(UsageError):
        server.close_round()
    server.start()
    with pytest.raises(UsageError):
        server.start()


def test_encrypted_vector_sizes_per_backend() -> None:
    config, _ = paillier_setup()
    client = ThresholdHEClient(config, 6, inputs()[6])
    (upload,) = client.receive(InputRequest(SERVER_ID, 6, config.session_id))
    assert isinstance(upload, EncryptedInput)
    vector = EncryptedVector.from_bytes(
        upload.payload,
        config.public_key.paillier,
        config.layout,
        length=DIM,  # type: ignore[union-attr]
    )
    assert len(vector.ciphertexts) == config.layout.plaintexts_for(DIM)
