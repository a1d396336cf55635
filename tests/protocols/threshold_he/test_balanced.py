"""Balanced committee decryption of threshold Paillier: each block of the aggregate goes to
t members, a fallback wave covers what dropped members or bad proofs left short.

Properties: the sum is exact whenever t honest members stay; the session aborts (typed)
exactly when fewer than t remain; a member never decrypts another aggregate or the same
block twice; every partial is verified against exactly the ciphertexts its member was
asked for; the cost model's bytes are exact without committee dropouts. Keys are 512-bit
(test-only size).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.cost.threshold_he import threshold_paillier_costs
from secagg.errors import (
    ConfigurationError,
    MaliciousRequestError,
    ProtocolAbort,
    ProtocolViolation,
)
from secagg.he.threshold_paillier import KeyShare, ThresholdPublicKey, deal_threshold_keys
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.registry import SimulationParams
from secagg.protocols.threshold_he import server as server_module
from secagg.protocols.threshold_he.blocks import (
    assigned_blocks,
    block_bounds,
    plan_fallback,
)
from secagg.protocols.threshold_he.client import ThresholdHEClient
from secagg.protocols.threshold_he.config import BALANCED, ThresholdHEConfig
from secagg.protocols.threshold_he.keys import setup_ckks
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    DecryptionRequest,
    DecryptionShare,
    decode_threshold_he_message,
)
from secagg.protocols.threshold_he.rounds import ClientState
from secagg.protocols.threshold_he.server import ThresholdHEServer
from secagg.protocols.threshold_he.spec import (
    ThresholdHESimulation,
    threshold_paillier_spec,
)
from secagg.sim.simulator import DropoutSchedule, simulate
from secagg.testing import ThresholdHETarget, harness
from secagg.testing import strategies as sst

KEY_BITS = 512
BITS = 16
SID = bytes(range(16))


@functools.cache
def keys(threshold: int, holders: int) -> tuple[ThresholdPublicKey, list[KeyShare]]:
    return deal_threshold_keys(KEY_BITS, threshold=threshold, holders=holders)


def make_config(
    n: int, committee: int, threshold: int, m: int, mode: str = BALANCED, *, shuffled: bool = True
) -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    public, shares = keys(threshold, committee)
    clients = tuple(range(1, n + 1))
    # By default the committee in reverse order: balanced mode sorts it, key shares follow
    # positions in the config's order.
    members = tuple(reversed(clients[:committee])) if shuffled else clients[:committee]
    config = ThresholdHEConfig(
        session_id=os.urandom(16),
        clients=clients,
        bits=BITS,
        vector_length=m,
        committee=members,
        threshold=threshold,
        public_key=public,
        decryption=mode,
    )
    return config, {c: shares[i] for i, c in enumerate(members)}


def slots(n: int) -> int:
    config, _ = make_config(n, 1, 1, 1, "full")
    return config.layout.slots


# --- the block plan -----------------------------------------------------------------------


@given(st.integers(0, 60), st.integers(1, 9))
def test_blocks_cover_the_aggregate_in_order_with_sizes_within_one(c: int, count: int) -> None:
    bounds = block_bounds(c, count)
    assert len(bounds) == count
    assert bounds[0][0] == 0 and bounds[-1][1] == c
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


@given(st.integers(1, 9).flatmap(lambda size: st.tuples(st.just(size), st.integers(1, size))))
def test_every_block_has_exactly_t_holders_and_every_member_t_blocks(size_t: Any) -> None:
    size, t = size_t
    plan = [assigned_blocks(p, size, t, size) for p in range(size)]
    assert all(len(blocks) == t and list(blocks) == sorted(set(blocks)) for blocks in plan)
    holders = Counter(j for blocks in plan for j in blocks)
    assert holders == Counter(dict.fromkeys(range(size), t))
    # Block j goes to positions j .. j + t - 1 (mod size).
    assert all(p in {(j + k) % size for k in range(t)} for p in range(size) for j in plan[p])
    assert [assigned_blocks(p, size, t, 1) for p in range(size)] == [(0,)] * size


def test_fallback_plan_prefers_unloaded_members_and_refuses_the_impossible() -> None:
    plan = plan_fallback({0: 1, 1: 1}, [1, 2, 3], {1: {0, 1}, 2: {1}, 3: set()}, [4, 4])
    assert plan == {2: [0], 3: [1]}
    assert plan_fallback({0: 2}, [1, 2], {1: {0}}, [3]) is None
    with pytest.raises(ValueError):
        assigned_blocks(0, 3, 2, 2)


# --- configuration and wire -----------------------------------------------------------------


def test_config_validates_the_mode_and_ckks_ignores_it() -> None:
    public, _ = keys(2, 3)
    base: dict[str, Any] = {
        "session_id": SID,
        "clients": (1, 2, 3, 4),
        "bits": BITS,
        "vector_length": 10,
        "committee": (1, 2, 3),
        "threshold": 2,
    }
    assert ThresholdHEConfig(**base, public_key=public, decryption="balanced").block_count == 3
    assert ThresholdHEConfig(**base, public_key=public, decryption="full").block_count == 1
    for bad in ("Balanced", "", 1, None):
        with pytest.raises(ConfigurationError):
            ThresholdHEConfig(**base, public_key=public, decryption=bad)
    config, _ = setup_ckks([1, 2, 3], bits=BITS, vector_length=4)
    small = {**base, "clients": (1, 2, 3)}
    ckks = ThresholdHEConfig(**small, ckks=config.ckks, decryption=BALANCED)
    assert ckks.block_count == 1  # CKKS always decrypts the whole aggregate
    with pytest.raises(ConfigurationError):
        ThresholdHEConfig(**small, ckks=config.ckks, decryption="half")


# --- a small driver with dropouts, bad proofs and recorded requests ---------------------------


@dataclass
class Run:
    requests: dict[int, list[DecryptionRequest]] = field(default_factory=dict)
    verified: list[tuple[int | None, int]] = field(default_factory=list)
    answered: list[tuple[int, int]] = field(default_factory=list)


def corrupt_proof(message: DecryptionShare) -> DecryptionShare:
    """Flip the last bit of the proof's response ``z`` (the record's last field)."""
    payload = message.payload[:-1] + bytes([message.payload[-1] ^ 1])
    return DecryptionShare(message.sender, message.recipient, message.session_id, payload)


def drive(
    config: ThresholdHEConfig,
    shares: dict[int, KeyShare],
    inputs: dict[int, np.ndarray],
    *,
    lost_input: frozenset[int] = frozenset(),
    lost_decryption: frozenset[int] = frozenset(),
    bad_proof: frozenset[int] = frozenset(),
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ThresholdHEServer, Run]:
    """Deliver every message through bytes; ``lost_input`` clients vanish before their
    input, ``lost_decryption`` members before any decryption answer."""
    run = Run()
    verify = server_module.verify_partial

    def counting(public: Any, ciphertexts: Any, partial: Any, **kwargs: Any) -> None:
        run.verified.append((kwargs.get("party"), len(ciphertexts)))
        verify(public, ciphertexts, partial, **kwargs)

    monkeypatch.setattr(server_module, "verify_partial", counting)
    server = ThresholdHEServer(config, simulation=True)
    clients = {
        c: ThresholdHEClient(config, c, inputs[c], key_share=shares.get(c)) for c in config.clients
    }
    gone = set(lost_input)
    queue: list[Message] = server.start()
    while True:
        while queue:
            message = decode_threshold_he_message(queue.pop(0).to_bytes(), sender=SERVER_ID)
            cid = message.recipient
            if isinstance(message, DecryptionRequest):
                run.requests.setdefault(cid, []).append(message)
                if cid in lost_decryption:
                    gone.add(cid)
            if cid in gone:
                continue
            for reply in clients[cid].receive(message):
                if isinstance(reply, DecryptionShare):
                    run.answered.append((cid, len(message.blocks)))
                    if cid in bad_proof:
                        reply = corrupt_proof(reply)
                data = reply.to_bytes()
                queue.extend(server.receive(decode_threshold_he_message(data, sender=cid)))
        if server.done:
            return server, run
        queue = server.close_round()


def expected_sum(inputs: dict[int, np.ndarray], included: frozenset[int]) -> np.ndarray:
    total = np.zeros_like(next(iter(inputs.values())), dtype=np.uint64)
    for c in included:
        total += inputs[c].astype(np.uint64)
    return total & np.uint64((1 << BITS) - 1)


@st.composite
def sessions(draw: st.DrawFn) -> dict[str, Any]:
    committee = draw(st.integers(2, 7), label="committee")
    n = draw(st.integers(committee, committee + 2), label="n")
    t = draw(st.integers(1, committee), label="t")
    per = slots(n)
    c = draw(st.integers(1, 20), label="ciphertexts")
    m = draw(st.integers((c - 1) * per + 1, c * per), label="m")
    members = list(range(1, committee + 1))
    lost_input = draw(st.sets(st.integers(1, n), max_size=n - 2), label="lost_input")
    rest = [x for x in members if x not in lost_input]
    lost_decryption = draw(st.sets(st.sampled_from(rest)) if rest else st.just(set()))
    rest = [x for x in rest if x not in lost_decryption]
    bad = draw(st.sets(st.sampled_from(rest)) if rest else st.just(set()), label="bad")
    return {
        "n": n,
        "committee": committee,
        "t": t,
        "m": m,
        "lost_input": frozenset(lost_input),
        "lost_decryption": frozenset(lost_decryption),
        "bad": frozenset(bad),
    }


@settings(max_examples=25)
@given(sessions(), st.integers(0, 2**32 - 1))
def test_balanced_sum_is_exact_iff_t_honest_members_stay(
    session: dict[str, Any], seed: int
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        check_session(session, seed, monkeypatch)


def check_session(session: dict[str, Any], seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    n, t, m = session["n"], session["t"], session["m"]
    config, shares = make_config(n, session["committee"], t, m)
    rng = np.random.default_rng(seed)  # non-secret test data
    inputs = {c: rng.integers(0, 1 << BITS, size=m, dtype=np.uint64) for c in config.clients}
    lost_input, lost_dec, bad = session["lost_input"], session["lost_decryption"], session["bad"]
    honest = set(config.committee) - lost_input - lost_dec - bad
    try:
        server, run = drive(
            config,
            shares,
            inputs,
            lost_input=lost_input,
            lost_decryption=lost_dec,
            bad_proof=bad,
            monkeypatch=monkeypatch,
        )
    except ProtocolAbort:
        assert len(honest) < t, "aborted although t honest members stayed"
        return
    assert len(honest) >= t, "finished although fewer than t honest members stayed"
    result = server.result
    assert result is not None
    assert result.included == frozenset(config.clients) - lost_input
    assert np.array_equal(result.total.astype(np.uint64), expected_sum(inputs, result.included))
    # A member only ever sees one aggregate and one included list, never a block twice.
    c = config.layout.plaintexts_for(m)
    for member, requests in run.requests.items():
        assert len({(r.payload, r.included) for r in requests}) == 1
        blocks = [j for r in requests for j in r.blocks]
        assert len(blocks) == len(set(blocks))
        assert all(r.block_count == len(config.committee) for r in requests)
        assert member in config.committee
    # Every answer that reached the server was verified against its own request's size.
    sizes = [stop - start for start, stop in block_bounds(c, len(config.committee))]
    asked = {
        (member, sum(sizes[j] for j in r.blocks))
        for member, requests in run.requests.items()
        for r in requests
    }
    assert all(v in asked for v in run.verified)
    verified_members = Counter(party for party, _ in run.verified)
    answered_members = Counter(member for member, _ in run.answered)
    assert verified_members == answered_members
    for member in bad & {member for member, _ in run.answered}:  # (c < l: some never asked)
        assert "rejected partial decryption" in result.faults.get(member, "")


def test_no_dropout_2_of_3_member_work_is_two_thirds(monkeypatch: pytest.MonkeyPatch) -> None:
    per = slots(4)
    config, shares = make_config(4, 3, 2, 9 * per)
    inputs = {c: np.full(9 * per, c, dtype=np.uint64) for c in config.clients}
    server, run = drive(config, shares, inputs, monkeypatch=monkeypatch)
    assert server.result is not None
    assert np.array_equal(server.result.total, np.full(9 * per, 10, dtype=np.uint16))
    assert sorted(run.verified) == [(1, 6), (2, 6), (3, 6)]
    assert {m: [r.blocks for r in rs] for m, rs in run.requests.items()} == {
        1: [(0, 2)],
        2: [(0, 1)],
        3: [(1, 2)],
    }


def test_full_mode_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    config, shares = make_config(4, 3, 2, 30, "full")
    inputs = {c: np.full(30, c, dtype=np.uint64) for c in config.clients}
    server, run = drive(
        config, shares, inputs, lost_decryption=frozenset({1}), monkeypatch=monkeypatch
    )
    assert server.result is not None and int(server.result.total[0]) == 10
    requests = [r for rs in run.requests.values() for r in rs]
    assert len(requests) == 3 and all(r.blocks == (0,) and r.block_count == 1 for r in requests)
    assert all(party in (2, 3) and size == 2 for party, size in run.verified)


# --- the member's guards --------------------------------------------------------------------


def first_requests(
    config: ThresholdHEConfig, shares: dict[int, KeyShare], member: int
) -> tuple[ThresholdHEClient, list[DecryptionRequest]]:
    """``member``'s client after its input, and the server's first decryption wave."""
    zeros = np.zeros(config.vector_length, dtype=np.uint64)
    clients = {
        c: ThresholdHEClient(config, c, zeros, key_share=shares.get(c)) for c in config.clients
    }
    server = ThresholdHEServer(config, simulation=True)
    wave: list[Message] = []
    for start in server.start():
        for upload in clients[start.recipient].receive(start):
            wave += server.receive(upload)
    requests = [r for r in wave if isinstance(r, DecryptionRequest)]
    return clients[member], requests


def member_after_first_answer() -> tuple[ThresholdHEClient, DecryptionRequest]:
    config, shares = make_config(3, 3, 2, 3 * slots(3))
    client, requests = first_requests(config, shares, 1)
    first = next(r for r in requests if r.recipient == 1)
    (share,) = client.receive(first)
    assert isinstance(share, DecryptionShare)
    return client, first


def replace(message: DecryptionRequest, **changes: Any) -> DecryptionRequest:
    fields = {
        "included": message.included,
        "payload": message.payload,
        "blocks": message.blocks,
        "block_count": message.block_count,
        **changes,
    }
    return DecryptionRequest(SERVER_ID, message.recipient, message.session_id, **fields)


def test_member_answers_a_fallback_wave_for_new_blocks_of_the_same_aggregate() -> None:
    client, first = member_after_first_answer()
    missing = tuple(j for j in range(3) if j not in first.blocks)
    (share,) = client.receive(replace(first, blocks=missing))
    assert isinstance(share, DecryptionShare)
    assert client.done


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: {"payload": r.payload[:-1] + bytes([r.payload[-1] ^ 1])}, MaliciousRequestError),
        (lambda r: {"included": r.included[:-1]}, MaliciousRequestError),
        (lambda r: {"blocks": r.blocks[:1]}, MaliciousRequestError),  # decrypted already
        (lambda r: {"blocks": (0,), "block_count": 1}, MaliciousRequestError),
    ],
)
def test_member_refuses_any_other_further_request_and_aborts(
    change: Callable[[DecryptionRequest], dict[str, Any]], error: type[Exception]
) -> None:
    client, first = member_after_first_answer()
    with pytest.raises(error):
        client.receive(replace(first, **change(first)))
    assert client.state is ClientState.ABORTED
    missing = tuple(j for j in range(3) if j not in first.blocks)
    with pytest.raises(ProtocolViolation):  # and it stays aborted
        client.receive(replace(first, blocks=missing))


@pytest.mark.parametrize(("blocks", "count"), [((0,), 1), ((3,), 4), ((0,), 5)])
def test_member_refuses_a_request_in_another_block_count_or_for_empty_blocks(
    blocks: tuple[int, ...], count: int
) -> None:
    config, shares = make_config(6, 5, 2, 3)  # one ciphertext: blocks 0..3 are empty
    client, requests = first_requests(config, shares, 1)
    with pytest.raises(ProtocolViolation):
        client.receive(replace(requests[0], blocks=blocks, block_count=count))
    assert client.state is ClientState.ABORTED


# --- simulator, registry and cost model -----------------------------------------------------


def uploads(m: int) -> Callable[[int], np.ndarray]:
    def make(client: int) -> np.ndarray:
        return np.random.default_rng(client).integers(0, 1 << BITS, size=m, dtype=np.uint64)

    return make


@settings(max_examples=12)
@given(
    st.integers(2, 7).flatmap(
        lambda size: st.tuples(
            st.just(size),
            st.integers(1, size),
            st.integers(size, size + 3),
            st.integers(1, 20),
        )
    ),
    st.data(),
)
def test_balanced_bytes_match_the_cost_model_exactly(shape: Any, data: st.DataObject) -> None:
    committee, t, n, c = shape
    m = c * slots(n)
    config, shares = make_config(n, committee, t, m, shuffled=False)  # the model's: 1..l
    # Only non-members drop (the model is exact without committee dropouts).
    others = list(range(committee + 1, n + 1))
    dropped = frozenset(
        data.draw(st.sets(st.sampled_from(others), max_size=n - 2) if others else st.just(set()))
    )
    result = simulate(
        ThresholdHESimulation(config, shares),
        uploads(m),
        dropouts=DropoutSchedule({ROUND_ENCRYPTED_INPUT: dropped}),
        protocol=threshold_paillier_spec(),
    )
    assert result.matches
    public = config.public_key
    assert public is not None
    model = threshold_paillier_costs(
        n,
        m,
        BITS,
        committee,
        t,
        len(dropped),
        key_bits=KEY_BITS,
        nsquare_bits=int(public.paillier.nsquare.bit_length()),
        committee_dropouts=0,
        decryption=BALANCED,
    )
    for summary in result.costs.summaries():
        name, up, down = summary.round_name, summary.server.bytes_up, summary.server.bytes_down
        assert model["rounds"][name]["server_bytes_up"] == pytest.approx(up, abs=1e-6), name
        assert model["rounds"][name]["server_bytes_down"] == pytest.approx(down, abs=1e-6), name
    loads = model["parameters"]["member_ciphertexts"]
    assert sum(loads) == t * model["parameters"]["ciphertexts"]
    assert max(loads) - min(loads) <= t


def test_cost_model_balanced_work_and_mode_validation() -> None:
    full = threshold_paillier_costs(10, 100_000, 16, 3, 2, decryption="full")
    balanced = threshold_paillier_costs(10, 100_000, 16, 3, 2, decryption=BALANCED)
    c = full["parameters"]["ciphertexts"]
    member = balanced["rounds"][ROUND_DECRYPTION]["client_ops"]["partial_exponentiations"]
    assert full["rounds"][ROUND_DECRYPTION]["client_ops"]["partial_exponentiations"] == c
    assert member == -(-2 * c // 3)
    server = balanced["rounds"][ROUND_DECRYPTION]["server_ops"]
    assert server["combine_exponentiations"] == 2 * c
    with pytest.raises(ConfigurationError):
        threshold_paillier_costs(10, 100, 16, decryption="half")


def test_registry_target_takes_the_mode() -> None:
    params = SimulationParams(clients=4, dim=40, bits=BITS, threshold=2, degree=3)
    simulation = ThresholdHESimulation.threshold_paillier(
        params, key_bits=KEY_BITS, decryption=BALANCED
    )
    assert simulation.config.decryption == BALANCED
    result = simulate(
        simulation,
        uploads(40),
        dropouts=DropoutSchedule({ROUND_DECRYPTION: frozenset({2})}),
        protocol="threshold-paillier",
    )
    assert result.matches
    assert "dropped" in result.aggregate.faults[2]


@settings(max_examples=10)
@given(st.data())
def test_harness_invariants_hold_in_balanced_mode_with_fallback_waves(
    data: st.DataObject,
) -> None:
    """Non-members drop before their input and members during the decryption round, so
    fallback waves happen; the harness counts a member's answers to further blocks of the
    same aggregate as one disclosure (its target allows one message per block)."""
    config, shares = make_config(6, 3, 2, 3 * slots(6))
    target = ThresholdHETarget(config, key_shares=shares)
    assert target.disclosing_messages == config.block_count == 3
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    lost = data.draw(st.sets(st.sampled_from([4, 5, 6]), max_size=3), label="lost")
    members = data.draw(st.sets(st.sampled_from([1, 2, 3]), max_size=2), label="members")
    order = data.draw(sst.delivery_orders(), label="order")
    schedule = DropoutSchedule(
        {ROUND_ENCRYPTED_INPUT: frozenset(lost), ROUND_DECRYPTION: frozenset(members)}
    )
    report = harness.run(target, inputs, schedule, order=order)
    assert (report.result is None) == (len(members) > 1)


@settings(max_examples=10)
@given(sst.threshold_he_targets(decryption=st.just("balanced")), st.data())
def test_generated_balanced_targets_pass_the_harness(target: Any, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="dropouts")
    harness.run(target, inputs, schedule)
