"""End-to-end properties of the Bonawitz / SecAgg+ state machines.

The properties come from :mod:`secagg.testing` (one source of truth with the library's own
testing tools): configurations, inputs and dropout schedules are drawn by
:mod:`secagg.testing.strategies` and every session is checked by
:func:`secagg.testing.harness.run`: the total equals the plaintext sum of exactly the
included clients, or the session aborts with the typed error exactly when the protocol's
oracle says too few remain (:func:`secagg.testing.predict_outcome`, exact for the complete
graph and SecAgg+). The example tests below drive sessions by hand with the helpers of
``tests.helpers.protocol``, which the other protocol test files import too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg import masking
from secagg.errors import ExclusionReason, ProtocolAbort
from secagg.protocols.bonawitz import client as client_module
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.graph import harary_graph
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_KEYS,
)
from secagg.testing import BonawitzTarget, run
from secagg.testing.strategies import (
    bonawitz_targets,
    client_inputs,
    delivery_orders,
    dropout_schedules,
)
from tests.helpers.protocol import (
    OLD_BIT_WIDTHS,
    Session,
    assert_correct,
    make_session,
    run_session,
)


def targets(max_clients: int = 30) -> st.SearchStrategy[BonawitzTarget]:
    """n in 2..max_clients, semi-honest and active, complete and SecAgg+ graphs, the bit
    widths the protocol tests always covered, vector lengths 1..12."""
    return bonawitz_targets(
        max_clients=max_clients, bits=st.sampled_from(OLD_BIT_WIDTHS), max_vector_length=12
    )


# --- properties -------------------------------------------------------------------------


@given(st.data())
def test_sum_without_dropouts(data: st.DataObject) -> None:
    target = data.draw(targets(), label="target")
    inputs = data.draw(client_inputs(target, headroom="none"), label="inputs")
    result = run(target, inputs).result
    assert result is not None
    assert result.included == target.config.client_set
    assert not result.excluded and not result.faults


@given(st.data())
def test_sum_with_dropouts_at_every_round(data: st.DataObject) -> None:
    target = data.draw(targets(), label="target")
    inputs = data.draw(client_inputs(target, headroom="none"), label="inputs")
    schedule = data.draw(dropout_schedules(target), label="schedule")
    report = run(target, inputs, schedule)  # outcome checked against predict_outcome
    if report.result is None:
        assert report.abort is not None
        return
    before_input: set[int] = set()
    for round_name in (ROUND_ADVERTISE_KEYS, ROUND_SHARE_KEYS, ROUND_MASKED_INPUT):
        before_input |= schedule.by_round.get(round_name, frozenset())
    assert not report.result.included & before_input


@given(st.data())
def test_reordered_deliveries(data: st.DataObject) -> None:
    target = data.draw(targets(max_clients=12), label="target")
    inputs = data.draw(client_inputs(target, headroom="none"), label="inputs")
    order = data.draw(delivery_orders().filter(lambda o: o is not None), label="order")
    result = run(target, inputs, order=order).result
    assert result is not None
    assert result.included == target.config.client_set


# --- examples ---------------------------------------------------------------------------


def test_abort_when_fewer_than_t_remain() -> None:
    session = make_session(5, 3)
    with pytest.raises(ProtocolAbort):
        run_session(session, drops={"masked_input": {1, 2, 3}})
    assert session.server.result is None
    assert not session.server.done


def test_abort_when_too_few_unmask() -> None:
    session = make_session(6, 4)
    with pytest.raises(ProtocolAbort):
        run_session(session, drops={"unmasking": {1, 2, 3}})


def test_dropouts_after_masking_still_count() -> None:
    # A client that sent its masked input and then vanished is in the sum (its b_u is
    # reconstructed from the others), as the paper says.
    session = make_session(7, 5, mode="active")
    result = run_session(session, drops={"consistency_check": {2}, "unmasking": {3}})
    assert {2, 3} <= result.included
    assert_correct(session, result)


def test_secagg_plus_large_sparse_graph() -> None:
    session = make_session(40, 4, degree=6, length=32, seed=3)
    result = run_session(session, drops={"share_keys": {5}, "masked_input": {9, 17}})
    assert_correct(session, result)
    assert not result.included & {5, 9, 17}


def test_secagg_plus_prunes_a_client_whose_neighbourhood_is_gone() -> None:
    clients = list(range(1, 11))
    graph = harary_graph(clients, 2, bytes(16))  # a ring
    victim = 1
    left, right = sorted(graph[victim])
    session = make_session(10, 2, degree=2)
    config = ProtocolConfig(session.config.session_id, tuple(clients), 2, 16, 8, neighbours=graph)
    session = Session(config, session.inputs)
    result = run_session(session, drops={"advertise_keys": {left, right}})
    assert victim not in result.included
    assert "fewer than t" in result.excluded[victim]
    assert result.excluded[victim].reason is ExclusionReason.FEW_LIVE_NEIGHBOURS
    assert result.excluded[left].reason is ExclusionReason.DROPPED
    assert result.excluded[left] == "dropped in advertise_keys"
    assert_correct(session, result)


@pytest.mark.parametrize("lazy", [False, True])
def test_the_input_is_range_checked_once_at_the_clients_edge(
    monkeypatch: pytest.MonkeyPatch, lazy: bool
) -> None:
    """One range check per client (issue 12): at construction, or when a lazy input is
    called; masking does not scan the vector again."""
    session = make_session(3, 2, length=5)
    checked: list[int] = []
    real_check = client_module.check_input_values

    def counting(vector: object, *args: object, **kwargs: object) -> np.ndarray:
        checked.append(id(vector))
        return real_check(vector, *args, **kwargs)  # type: ignore[arg-type]

    def no_range_scan(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the client masks through mask_checked_input only")

    monkeypatch.setattr(client_module, "check_input_values", counting)
    monkeypatch.setattr(masking, "check_values", no_range_scan)
    inputs = session.inputs
    sources = {c: (lambda c=c: inputs[c]) if lazy else inputs[c] for c in inputs}
    session.clients = {c: Client(session.config, c, sources[c]) for c in inputs}
    assert len(checked) == (0 if lazy else 3)
    result = run_session(session)
    assert sorted(checked) == sorted(id(inputs[c]) for c in inputs)
    assert_correct(session, result)


def test_input_from_callable_is_fetched_once() -> None:
    session = make_session(3, 2, length=5)
    calls: list[int] = []

    def lazy(c: int) -> Callable[[], np.ndarray]:
        def fetch() -> np.ndarray:
            calls.append(c)
            return session.inputs[c]

        return fetch

    session.clients = {c: Client(session.config, c, lazy(c)) for c in session.config.clients}
    result = run_session(session)
    assert sorted(calls) == [1, 2, 3]
    assert_correct(session, result)
