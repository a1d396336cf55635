"""The threshold-HE protocol through the same harness: another ClientProtocol/ServerProtocol.

Same strategies, same invariants as the Bonawitz tests: the sum holds exactly the clients
whose ciphertext arrived, the session aborts exactly when fewer than ``min_clients`` inputs
or fewer than t committee members remain, each member discloses at most one decryption
share, and every bad message is blamed on its sender. Keys are 512-bit (test-only size).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ExclusionReason
from secagg.protocols.threshold_he.messages import ROUND_DECRYPTION, THRESHOLD_HE_ROUNDS
from secagg.testing import ThresholdHETarget as Target
from secagg.testing import harness
from secagg.testing import strategies as sst
from secagg.testing.model import CLIENT_FAULT_KINDS, ClientFault


@given(sst.threshold_he_targets(), st.data())
def test_threshold_paillier_under_dropouts_and_reordering(
    target: Target, data: st.DataObject
) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="schedule")
    order = data.draw(sst.delivery_orders(), label="order")
    harness.run(target, inputs, schedule, order=order)


@given(sst.threshold_he_targets(), st.data())
def test_threshold_paillier_misbehaving_clients(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="schedule")
    faults = data.draw(sst.client_faults(target), label="faults")
    harness.run(target, inputs, schedule, client_faults=faults)


@given(sst.threshold_he_targets(), st.data())
def test_threshold_paillier_malicious_server(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    attack = data.draw(sst.server_attacks(target), label="attack")
    harness.run(target, inputs, server_attacks=[attack])


# --- issue 15: one faulty party never aborts a round while enough honest ones remain ------

_CKKS_EXAMPLES = settings(max_examples=10, deadline=None)
_DECRYPTION_FAULTS = ("garbled_share", "junk_share")


@st.composite
def ckks_targets(draw: st.DrawFn) -> Target:
    """Single-key CKKS sessions: 2 to 5 clients, a committee of 1 to 3, any threshold."""
    n = draw(st.integers(2, 5), label="clients")
    size = draw(st.integers(1, min(3, n)), label="committee size")
    clients = list(range(1, n + 1))
    return Target.ckks(
        clients,
        bits=draw(st.sampled_from((1, 8, 16)), label="bits"),
        vector_length=draw(st.integers(1, 4), label="length"),
        committee=sorted(draw(st.permutations(clients))[:size]),
        threshold=draw(st.integers(1, size), label="t"),
        min_clients=draw(st.integers(2, n), label="min_clients"),
    )


@_CKKS_EXAMPLES
@given(ckks_targets(), st.data())
def test_ckks_misbehaving_clients_and_members(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="schedule")
    # A CKKS key holder whose wrong answer is not outvoted gets it published (the trust
    # model: every key holder can corrupt the sum); member faults are drawn one at a time
    # below, where the honest answers can outvote them.
    kinds = [k for k in CLIENT_FAULT_KINDS if k not in _DECRYPTION_FAULTS]
    faults = data.draw(sst.client_faults(target, kinds=kinds), label="faults")
    harness.run(target, inputs, schedule, client_faults=faults)


def _one_faulty_party(target: Target, data: st.DataObject) -> None:
    """Any one client or member, any fault kind, any round: with t honest members (CKKS:
    also more honest answers than the faulty one) the session completes with the exact sum
    (the harness checks the sum, and blame for every bad message that reached the running
    server); a CKKS member outvoted with a wrong answer is blamed (the server counts every
    answer before it finishes; threshold Paillier may finish before a bad partial arrives)."""
    config = target.config
    kinds = list(CLIENT_FAULT_KINDS)
    if config.backend == "ckks" and len(config.committee) == 1:
        kinds = [k for k in kinds if k not in _DECRYPTION_FAULTS]  # nobody to outvote it
    kind = data.draw(st.sampled_from(kinds), label="kind")
    round_name = (
        ROUND_DECRYPTION
        if kind in _DECRYPTION_FAULTS
        else data.draw(st.sampled_from(THRESHOLD_HE_ROUNDS), label="round")
    )
    faulty = data.draw(
        st.sampled_from(config.committee if kind in _DECRYPTION_FAULTS else config.clients),
        label="faulty",
    )
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    report = harness.run(target, inputs, client_faults=[ClientFault(faulty, round_name, kind)])
    honest = [m for m in config.committee if m != faulty]
    needed = config.threshold if config.backend != "ckks" else max(config.threshold, 2)
    if len([c for c in config.clients if c != faulty]) < config.min_clients:
        return
    if len(honest) >= needed or faulty not in config.committee:
        assert report.abort is None, report.abort
        assert report.result is not None
        if report.log.injected and kind in _DECRYPTION_FAULTS and config.backend == "ckks":
            reasons = report.result.faults[faulty].reasons
            assert reasons == {ExclusionReason.DISAGREEMENT}, (kind, reasons)


@_CKKS_EXAMPLES
@given(ckks_targets(), st.data())
def test_ckks_one_faulty_party_is_contained_and_blamed(target: Target, data: st.DataObject) -> None:
    _one_faulty_party(target, data)


@settings(max_examples=10, deadline=None)
@given(sst.threshold_he_targets(max_clients=5), st.data())
def test_paillier_one_faulty_party_is_contained_and_blamed(
    target: Target, data: st.DataObject
) -> None:
    _one_faulty_party(target, data)
