"""The threshold-HE protocol through the same harness: another ClientProtocol/ServerProtocol.

Same strategies, same invariants as the Bonawitz tests: the sum holds exactly the clients
whose ciphertext arrived, the session aborts exactly when fewer than ``min_clients`` inputs
or fewer than t committee members remain, each member discloses at most one decryption
share, and every bad message is blamed on its sender. Keys are 512-bit (test-only size).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secagg.testing import ThresholdHETarget as Target
from secagg.testing import harness
from secagg.testing import strategies as sst


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
