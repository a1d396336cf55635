"""Issue 15: one misbehaving Bonawitz / SecAgg+ client only ever excludes itself.

THE property, over every client-fault kind of :mod:`secagg.testing.model` (the old ones
and those of robust dealing): any single faulty client, in any round where its fault
bites (and dropping out itself afterwards, or not), with any dropouts among the others,
ends exactly as the oracle (:func:`secagg.testing.bonawitz.predict_faults`) says, and the
oracle keeps the issue's promise, checked here against the run in which the faulty client
only drops out where its fault shows (where a refused answer is refused, ShareCheck if a
holder's complaint or its own exposes it, else where the schedule drops it): whenever that
run completes, the faulty run completes too, with (at least) the same honest clients in
the sum, the exact sum of the included clients (the
faulty one's own input when it stays in), the faulty client blamed whenever its fault
shows, and no honest client blamed (the harness's invariants). The exceptions are the two
cases the protocol docs state: a client that deals a wrong mask key and then drops, while a
survivor that masked with it does not answer Unmasking (ProtocolAbort naming it); and a
dealer whose off-polynomial self-mask shares no check could settle, rebuilt from exactly t
shares, which stays in the sum with a contribution of its own choosing.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.protocols.bonawitz.messages import ROUND_SHARE_CHECK
from secagg.sim.simulator import DropoutSchedule
from secagg.testing import BonawitzTarget as Target
from secagg.testing import harness
from secagg.testing import strategies as sst
from secagg.testing.bonawitz import predict_outcome
from secagg.testing.model import CLIENT_FAULT_KINDS, LOSING_FAULTS


# Lean for the default profile: 20 fault kinds, 8 examples each (the thorough profile
# explores more); each run checks the harness's invariants against the oracle as well.
@pytest.mark.parametrize("kind", CLIENT_FAULT_KINDS)
@settings(max_examples=8)
@given(sst.bonawitz_targets(max_clients=7), st.data())
def test_one_faulty_client_only_excludes_itself(
    kind: str, target: Target, data: st.DataObject
) -> None:
    inputs = data.draw(sst.client_inputs(target.config), label="inputs")
    fault = data.draw(sst.client_faults(target, kinds=[kind], min_faulty=1, max_faulty=1))[0]
    schedule = data.draw(
        st.just(DropoutSchedule()) | sst.dropout_schedules(target), label="schedule"
    )
    rounds = target.dropout_model.rounds
    # The faulty client may also drop out, after its fault: it misbehaves, then leaves.
    late = {r for r in rounds if rounds.index(r) > rounds.index(fault.round_name)}
    schedule = DropoutSchedule(
        {
            r: ids - ({fault.client} if r not in late else set())
            for r, ids in schedule.by_round.items()
            if ids - ({fault.client} if r not in late else set())
        }
    )
    # The run is checked against the oracle (harness invariants: the exact sum of the
    # included clients, every injected fault that shows blamed, no honest client blamed).
    report = harness.run(target, inputs, schedule, client_faults=[fault])
    c = fault.client
    gone = dict(report.log.gone)
    if report.log.injected and kind in LOSING_FAULTS:
        gone[c] = fault.round_name
    # The honest runs the faulty one is compared with: the faulty client drops out where
    # its fault showed (ShareCheck, when the server left it out there), or only where the
    # schedule drops it (a fault no check reached).
    excluded = report.result.excluded.get(c) if report.result is not None else None
    caught = excluded is not None and excluded.round_name == ROUND_SHARE_CHECK
    at_check = {**gone, c: ROUND_SHARE_CHECK} if c not in gone else gone
    if report.abort is not None:
        if kind == "wrong_dealt_key" and "dealt mask key" in str(report.abort):
            return  # the one abort the protocol docs state (docs/robust_dealing.md)
        # Never an abort that the same dropouts would not cause in an honest run.
        assert predict_outcome(target.config, gone).aborts or predict_outcome(
            target.config, at_check
        ).aborts, report
        return
    assert report.result is not None
    honest = predict_outcome(target.config, at_check if caught else gone)
    if honest.aborts:
        return
    assert honest.included is not None
    # No honest client pays for the faulty one: the same honest clients are in the sum
    # (a faulty client that stays can only keep more SecAgg+ neighbourhoods above t).
    assert honest.included - {c} <= report.result.included - {c}
