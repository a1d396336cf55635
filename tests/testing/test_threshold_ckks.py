"""The threshold-CKKS protocol through the harness: the same strategies and invariants as
the other families (the sum holds exactly the clients whose upload arrived, the session
aborts exactly when a round keeps fewer than t members or min_clients inputs, each key
holder discloses one decryption share, every bad message is blamed on its sender), and
issue 15's rule: one faulty client or member, in any round, with t honest members left,
never aborts the session and is blamed for what reached the server."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.protocols.threshold_ckks import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import ROUND_DECRYPTION, ROUND_KEY_DEAL
from secagg.testing import ThresholdCkksTarget as Target
from secagg.testing import harness
from secagg.testing import strategies as sst
from secagg.testing.model import CLIENT_FAULT_KINDS, ClientFault

EXAMPLES = settings(max_examples=8, deadline=None)


@st.composite
def targets(draw: st.DrawFn, *, max_clients: int = 6) -> Target:
    n = draw(st.integers(2, max_clients), label="clients")
    size = draw(st.integers(1, min(4, n)), label="committee size")
    clients = list(range(1, n + 1))
    committee = sorted(draw(st.permutations(clients))[:size])
    config = ThresholdCkksConfig.create(
        clients,
        bits=draw(st.sampled_from((1, 8, 16, 32)), label="bits"),
        vector_length=draw(st.integers(1, 4), label="length"),
        committee=committee,
        threshold=draw(st.integers(1, size), label="t"),
        min_clients=draw(st.integers(2, n), label="min_clients"),
    )
    return Target(config)


@EXAMPLES
@given(targets(), st.data())
def test_under_dropouts_and_reordering(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="schedule")
    order = data.draw(sst.delivery_orders(), label="order")
    harness.run(target, inputs, schedule, order=order)


@EXAMPLES
@given(targets(), st.data())
def test_misbehaving_clients(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target), label="schedule")
    faults = data.draw(sst.client_faults(target), label="faults")
    harness.run(target, inputs, schedule, client_faults=faults)


@EXAMPLES
@given(targets(), st.data())
def test_malicious_server(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    attack = data.draw(sst.server_attacks(target), label="attack")
    harness.run(target, inputs, server_attacks=[attack])


_PROTOCOL_ROUND = {
    "wrong_length": "encrypted_input",
    "missing_bundle": ROUND_KEY_DEAL,
    "bad_tag": ROUND_KEY_DEAL,
    "garbled_share": ROUND_DECRYPTION,
    "junk_share": ROUND_DECRYPTION,
}


@EXAMPLES
@given(targets(max_clients=5), st.data())
def test_one_faulty_party_never_aborts_while_t_honest_remain(
    target: Target, data: st.DataObject
) -> None:
    config = target.config
    kind = data.draw(st.sampled_from(CLIENT_FAULT_KINDS), label="kind")
    rounds = target.dropout_model.rounds
    round_name = _PROTOCOL_ROUND.get(kind) or data.draw(st.sampled_from(rounds), label="round")
    faulty = data.draw(st.sampled_from(config.clients), label="faulty")
    inputs = data.draw(sst.client_inputs(target), label="inputs")
    report = harness.run(target, inputs, client_faults=[ClientFault(faulty, round_name, kind)])
    honest_members = [m for m in config.committee if m != faulty]
    honest_inputs = [c for c in config.clients if c != faulty]
    # A bad decryption share is located only by t + 1 honest shares that agree (shares
    # carry no proof): with t honest members left, aborting is the safe outcome.
    needed = config.threshold + (kind in ("garbled_share", "junk_share"))
    if len(honest_members) >= needed and len(honest_inputs) >= config.min_clients:
        assert report.abort is None, report.abort
        assert report.result is not None
        applied = [f for f in report.log.injected if f.client == faulty]
        if applied and applied[0].kind not in ("bad_tag",):
            # What reached the running server is blamed on its sender (a dealt box its
            # recipient cannot open is a lone complaint: nobody can tell who lied).
            assert (
                faulty in report.result.faults
                or faulty in report.result.excluded
                or faulty in report.log.transport_blamed
            ), (kind, round_name)
