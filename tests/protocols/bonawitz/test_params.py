"""Tests of secagg.protocols.bonawitz.params: the SecAgg+ (k, t) finder.

Three kinds of evidence: fcp's published values (the reference implementation), an
independent re-derivation in exact rational arithmetic for small ``n`` (which checks
both that the bounds hold and that ``k`` is minimal), and structural properties.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.params import SecAggPlusParameters, UpperTail, find_parameters

# (n, corrupt, dropout, semi_malicious, k, t): fcp's graph_parameter_finder_test.cc.
# Every entry equals fcp's except the two marked "fcp: (4, 2)" (see params.py docstring).
FCP_VECTORS = [
    (100, 0.45, 0.45, False, 92, 46),
    (1000, 0.45, 0.45, False, 822, 417),
    (10000, 0.45, 0.45, False, 3494, 1771),
    (100000, 0.45, 0.45, False, 5508, 2788),
    (1000000, 0.45, 0.45, False, 6240, 3156),
    (10, 0.33, 0.33, False, 8, 4),
    (100, 0.33, 0.33, False, 68, 34),
    (1000, 0.33, 0.33, False, 286, 150),
    (10000, 0.33, 0.33, False, 422, 221),
    (100000, 0.33, 0.33, False, 480, 251),
    (1000000, 0.33, 0.33, False, 518, 270),
    (100, 0.3, 0.3, True, 92, 62),
    (1000, 0.3, 0.3, True, 872, 584),
    (10000, 0.3, 0.3, True, 4822, 3230),
    (100000, 0.3, 0.3, True, 9388, 6286),
    (1000000, 0.3, 0.3, True, 11136, 7454),
    (10, 0.05, 0.33, False, 6, 2),  # fcp: (4, 2)
    (100, 0.05, 0.33, False, 28, 6),
    (1000, 0.05, 0.33, False, 72, 24),
    (10000, 0.05, 0.33, False, 86, 29),
    (100000, 0.05, 0.33, False, 96, 32),
    (1000000, 0.05, 0.33, False, 102, 34),
    (10, 0.05, 0.33, True, 8, 5),
    (100, 0.05, 0.33, True, 72, 39),
    (1000, 0.05, 0.33, True, 398, 223),
    (10000, 0.05, 0.33, True, 746, 420),
    (100000, 0.05, 0.33, True, 882, 496),
    (1000000, 0.05, 0.33, True, 970, 545),
    (10, 0.33, 0.05, False, 4, 4),
    (100, 0.33, 0.05, False, 34, 29),
    (1000, 0.33, 0.05, False, 78, 60),
    (10000, 0.33, 0.05, False, 92, 70),
    (100000, 0.33, 0.05, False, 102, 77),
    (1000000, 0.33, 0.05, False, 110, 83),
    (10, 0.33, 0.05, True, 4, 4),
    (100, 0.33, 0.05, True, 42, 37),
    (1000, 0.33, 0.05, True, 132, 109),
    (10000, 0.33, 0.05, True, 178, 146),
    (100000, 0.33, 0.05, True, 196, 160),
    (1000000, 0.33, 0.05, True, 212, 173),
    (10, 0.05, 0.05, False, 2, 2),
    (100000, 0.05, 0.05, False, 36, 21),
    (10, 0.05, 0.05, True, 2, 2),
    (10000, 0.05, 0.05, True, 62, 44),
    (100000, 0.05, 0.05, True, 68, 48),
    (1000000, 0.05, 0.05, True, 74, 52),
    (10, 0.33, 0.0, False, 4, 4),
    (100, 0.33, 0.0, False, 26, 25),
    (1000, 0.33, 0.0, False, 38, 36),
    (10000, 0.33, 0.0, False, 42, 40),
    (100000, 0.33, 0.0, False, 46, 44),
    (1000000, 0.33, 0.0, False, 50, 47),
    (10, 0.33, 0.0, True, 4, 4),
    (100, 0.33, 0.0, True, 26, 26),
    (1000, 0.33, 0.0, True, 38, 37),
    (10000, 0.33, 0.0, True, 42, 41),
    (100000, 0.33, 0.0, True, 46, 45),
    (1000000, 0.33, 0.0, True, 50, 49),
    (10, 0.0, 0.33, False, 6, 2),  # fcp: (4, 2)
    (100, 0.0, 0.33, False, 26, 2),
    (1000, 0.0, 0.33, False, 38, 2),
    (10000, 0.0, 0.33, False, 42, 2),
    (100000, 0.0, 0.33, False, 46, 2),
    (1000000, 0.0, 0.33, False, 50, 2),
    (10, 0.0, 0.33, True, 8, 5),
    (100, 0.0, 0.33, True, 68, 35),
    (1000, 0.0, 0.33, True, 228, 115),
    (10000, 0.0, 0.33, True, 326, 164),
    (100000, 0.0, 0.33, True, 372, 187),
    (1000000, 0.0, 0.33, True, 410, 206),
    (10, 0.0, 0.0, False, 2, 2),
    (1000000, 0.0, 0.0, False, 2, 2),
    (10, 0.0, 0.0, True, 2, 2),
    (1000000, 0.0, 0.0, True, 2, 2),
]


@pytest.mark.parametrize(
    ("n", "semi_malicious", "expected"),
    [
        (100, False, (12, 6)),
        (1000, False, (30, 17)),
        (10_000, False, (34, 20)),
        (1_000_000, False, (38, 22)),
        (100, True, (16, 11)),
        (1000, True, (52, 37)),
    ],
)
def test_anchor_table_of_fcp(n: int, semi_malicious: bool, expected: tuple[int, int]) -> None:
    params = find_parameters(n, semi_malicious=semi_malicious)
    assert (params.degree, params.threshold) == expected
    assert params.n == n
    assert params.corrupt_fraction == 0.05
    assert params.dropout_fraction == 0.05
    assert params.security_bits == 40.0
    assert params.failure_bits == 20.0
    assert params.semi_malicious is semi_malicious
    assert params.achieved_security_bits >= 40.0
    assert params.achieved_failure_bits >= 20.0
    assert not params.is_complete


@pytest.mark.parametrize(("n", "corrupt", "dropout", "semi_malicious", "k", "t"), FCP_VECTORS)
def test_fcp_test_vectors(
    n: int, corrupt: float, dropout: float, semi_malicious: bool, k: int, t: int
) -> None:
    params = find_parameters(
        n, corrupt_fraction=corrupt, dropout_fraction=dropout, semi_malicious=semi_malicious
    )
    assert (params.degree, params.threshold) == (k, t)


# --- an independent finder in exact rational arithmetic (small n) -----------------------


def tail_at_least(total: int, marked: int, draws: int, x: int) -> Fraction:
    """P[X >= x] for X ~ HG(total, marked, draws), exactly."""
    numerator = sum(
        math.comb(marked, i) * math.comb(total - marked, draws - i)
        for i in range(max(x, 0), draws + 1)
    )
    return Fraction(numerator, math.comb(total, draws))


def reference(
    n: int, corrupt: float, dropout: float, semi_malicious: bool, sec: int, fail: int
) -> tuple[int, int] | None:
    corrupt_max = math.floor((corrupt + 1e-14) * n)
    dropped_max = math.floor((dropout + 1e-14) * n)
    dropped_bound = n - math.ceil((1 - dropout - 1e-14) * n)
    event_budget = Fraction(1, 2 ** (sec + 1))
    for k in [*range(2, n - 1, 2), n - 1]:
        bad = corrupt_max + dropped_max
        if k < n - 1 and k <= bad:
            disconnect = Fraction(n * (n - k - 1), 2) * Fraction(math.perm(bad, k), math.perm(n, k))
            if disconnect >= event_budget:
                continue
        secure_from = next(
            t for t in range(k + 2) if n * tail_at_least(n, corrupt_max, k, t) < event_budget
        )
        t = (secure_from + k + 1) // 2 if semi_malicious else secure_from
        t = max(t, 2)
        if k == n - 1:
            t = max(t, 2 * n // 3 + 1 if semi_malicious else n // 2 + 1)
        if t > k:
            continue
        # P[S <= t - 1] = P[dropped neighbours >= k - t + 1]
        if n * tail_at_least(n, dropped_bound, k, k - t + 1) >= Fraction(1, 2**fail):
            continue
        return k, t
    return None


@given(
    n=st.integers(3, 160),
    corrupt=st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.33]),
    dropout=st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.2, 0.3]),
    semi_malicious=st.booleans(),
    sec=st.integers(8, 48),
    fail=st.integers(4, 24),
)
def test_agrees_with_exact_reference(
    n: int, corrupt: float, dropout: float, semi_malicious: bool, sec: int, fail: int
) -> None:
    expected = reference(n, corrupt, dropout, semi_malicious, sec, fail)
    kwargs = {
        "corrupt_fraction": corrupt,
        "dropout_fraction": dropout,
        "semi_malicious": semi_malicious,
        "security_bits": float(sec),
        "failure_bits": float(fail),
    }
    if semi_malicious and corrupt + 2 * dropout > 0.9:
        expected = None
    if expected is None:
        with pytest.raises(ConfigurationError):
            find_parameters(n, **kwargs)  # type: ignore[arg-type]
    else:
        params = find_parameters(n, **kwargs)  # type: ignore[arg-type]
        assert (params.degree, params.threshold) == expected


@given(
    total=st.integers(1, 400),
    data=st.data(),
    cutoff_bits=st.integers(30, 120),
)
def test_windowed_tail_is_a_tight_upper_bound(
    total: int, data: st.DataObject, cutoff_bits: int
) -> None:
    marked = data.draw(st.integers(0, total))
    draws = data.draw(st.integers(0, total))
    x = data.draw(st.integers(-1, draws + 2))
    cutoff = 2.0**-cutoff_bits
    table = UpperTail.build(total, marked, draws, math.log(cutoff))
    exact = float(tail_at_least(total, marked, draws, x))
    bound = math.exp(table.at(x))
    assert bound >= exact * (1 - 1e-9)
    if x >= table.lo:
        # Above the window's floor (below it the tail is >= 1/2 and reported as 1), the
        # bound is exact up to the neglected cutoff mass.
        assert bound <= (exact + cutoff) * (1 + 1e-9)
    if x > min(marked, draws):
        assert bound == 0.0


# --- structural properties --------------------------------------------------------------

rates = st.floats(0.0, 0.3, allow_nan=False)


@given(
    n=st.integers(3, 1_000_000),
    corrupt=rates,
    dropout=rates,
    extra=st.floats(0.0, 0.2),
    semi_malicious=st.booleans(),
)
def test_more_corruption_or_dropout_never_lowers_the_degree(
    n: int, corrupt: float, dropout: float, extra: float, semi_malicious: bool
) -> None:
    try:
        base = find_parameters(
            n, corrupt_fraction=corrupt, dropout_fraction=dropout, semi_malicious=semi_malicious
        )
    except ConfigurationError:
        return
    for more_corrupt, more_dropout in ((corrupt + extra, dropout), (corrupt, dropout + extra)):
        try:
            harder = find_parameters(
                n,
                corrupt_fraction=more_corrupt,
                dropout_fraction=more_dropout,
                semi_malicious=semi_malicious,
            )
        except ConfigurationError:
            continue
        assert harder.degree >= base.degree


@given(
    n=st.integers(3, 1_000_000),
    corrupt=rates,
    dropout=rates,
    semi_malicious=st.booleans(),
    sec=st.floats(1.0, 80.0),
    fail=st.floats(1.0, 40.0),
)
def test_returned_parameters_are_consistent(
    n: int, corrupt: float, dropout: float, semi_malicious: bool, sec: float, fail: float
) -> None:
    try:
        params = find_parameters(
            n,
            corrupt_fraction=corrupt,
            dropout_fraction=dropout,
            semi_malicious=semi_malicious,
            security_bits=sec,
            failure_bits=fail,
        )
    except ConfigurationError:
        return
    assert 1 <= params.threshold <= params.degree <= n - 1
    assert params.threshold >= 2
    assert params.degree % 2 == 0 or params.is_complete
    assert params.achieved_security_bits >= sec
    assert params.achieved_failure_bits >= fail
    stricter = find_parameters(
        n,
        corrupt_fraction=corrupt,
        dropout_fraction=dropout,
        semi_malicious=semi_malicious,
        security_bits=min(sec, 40.0),
        failure_bits=min(fail, 20.0),
    )
    assert stricter.degree <= params.degree


def test_small_populations_fall_back_to_the_complete_graph() -> None:
    params = find_parameters(5, corrupt_fraction=0.2, dropout_fraction=0.2)
    assert params.is_complete
    assert (params.degree, params.threshold) == (4, 3)
    # Bonawitz et al.: t > n/2 over the n holders of the complete graph.
    assert params.threshold > 5 / 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"corrupt_fraction": 0.5, "dropout_fraction": 0.5},
        {"corrupt_fraction": 0.33, "dropout_fraction": 0.33, "semi_malicious": True},
        {"corrupt_fraction": 1.0},
        {"corrupt_fraction": -0.1},
        {"dropout_fraction": 1.0},
        {"dropout_fraction": float("nan")},
        {"corrupt_fraction": float("inf")},
        {"corrupt_fraction": "0.1"},
        {"corrupt_fraction": True},
        {"security_bits": 0.0},
        {"security_bits": -40.0},
        {"security_bits": float("nan")},
        {"security_bits": 1000.0},
        {"failure_bits": 0.0},
        {"failure_bits": float("inf")},
        {"failure_bits": None},
        {"semi_malicious": 1},
        {"semi_malicious": "yes"},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        find_parameters(1000, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, 1, 2, -5, 10**9 + 1, 100.0, True, "100", None])
def test_invalid_populations_are_rejected(n: object) -> None:
    with pytest.raises(ConfigurationError):
        find_parameters(n)  # type: ignore[arg-type]


def test_infeasible_small_instance_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="no SecAgg"):
        find_parameters(3, semi_malicious=True)


def test_parameters_are_frozen_and_public() -> None:
    params = find_parameters(1000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.degree = 4  # type: ignore[misc]
    assert "degree=30" in repr(params)
    assert isinstance(params, SecAggPlusParameters)
