"""The project's own Bonawitz / SecAgg+ properties, written with secagg.testing.

One source of truth: the configurations, inputs, dropout schedules and misbehaviour come
from :mod:`secagg.testing.strategies`, the driver and the invariants from
:mod:`secagg.testing.harness` (sum of exactly the included clients or a typed abort when
fewer than t remain, no client reveals both secrets of a peer, blame on the sender, a
uniform view of each masked input).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secagg.testing import BonawitzTarget as Target
from secagg.testing import harness
from secagg.testing import strategies as sst


@given(sst.bonawitz_targets(), st.data())
def test_any_dropout_schedule(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target.config), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target.config), label="schedule")
    harness.run(target, inputs, schedule)


@given(sst.bonawitz_targets(max_clients=8), st.data())
def test_reordered_deliveries(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target.config), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target.config), label="schedule")
    order = data.draw(sst.delivery_orders(), label="order")
    harness.run(target, inputs, schedule, order=order)


@given(sst.bonawitz_targets(max_clients=8), st.data())
def test_misbehaving_clients(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target.config), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target.config), label="schedule")
    faults = data.draw(sst.client_faults(target.config), label="faults")
    harness.run(target, inputs, schedule, client_faults=faults)


@given(sst.bonawitz_targets(max_clients=8), st.data())
def test_malicious_server(target: Target, data: st.DataObject) -> None:
    inputs = data.draw(sst.client_inputs(target.config), label="inputs")
    schedule = data.draw(sst.dropout_schedules(target.config), label="schedule")
    attack = data.draw(sst.server_attacks(target.config), label="attack")
    harness.run(target, inputs, schedule, server_attacks=[attack])


@given(sst.bonawitz_targets(max_clients=5, min_vector_length=64, max_vector_length=512), st.data())
def test_the_servers_view_of_each_masked_input_is_uniform(
    target: Target, data: st.DataObject
) -> None:
    # Inputs with headroom have their top bits at zero: unmasked, they fail the test.
    inputs = data.draw(sst.client_inputs(target.config), label="inputs")
    report = harness.run(target, inputs)
    assert set(report.log.views) == set(target.clients)
