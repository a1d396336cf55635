"""The SecAgg+ parameter finder: the graph degree ``k`` and Shamir threshold ``t``.

Role: setup, offline (before a session's config exists): which ``(k, t)`` to configure.

Theory of operation
-------------------
SecAgg+ (Bell et al., CCS'20) runs SecAgg on a random ``k``-regular Harary graph
(:mod:`secagg.protocols.bonawitz.graph`): each client shares its two secrets (mask seed and key
agreement key) among its ``k`` neighbours with threshold ``t``. Given ``n`` clients, of
which at most ``A = floor(corrupt_fraction * n)`` collude with the server and at most
``D = floor(dropout_fraction * n)`` drop out, :func:`find_parameters` returns the smallest
even ``k`` (and the smallest ``t`` for it) such that three bad events are unlikely. The
graph is permuted uniformly at random independently of who is corrupt or drops, so the
``k`` neighbours of a client are a uniform sample without replacement of the population:
the number of corrupt (or surviving) neighbours is *hypergeometric*. (The protocol also
hands each client a share of its own secrets, ``k + 1`` holders; like fcp, the analysis
counts only the ``k`` neighbours, which only under-counts the shares an honest survivor
contributes.)

1. **Privacy, a neighbourhood with too many corrupt clients.** ``X ~ HG(n, A, k)`` counts
   the corrupt neighbours of one client. A semi-honest server that holds ``t`` shares of
   a secret learns it, so we need ``P[X >= t] < 2^-(s+1) / n`` (``s`` = security bits;
   union bound over the ``n`` clients). A *semi-malicious* server may also lie about who
   dropped, asking half the honest neighbours for the mask-seed share and the other half
   for the key share: with ``X`` corrupt it gets both secrets once ``2(t - X) <= k - X``,
   that is ``X >= 2t - k``, so there we need ``P[X >= 2t - k] < 2^-(s+1) / n``.
2. **Privacy, the honest survivors split into pieces.** If removing the corrupt and
   dropped clients disconnects the graph, the server learns the sum of one piece. A
   Harary graph on a ring is only cut by removing two disjoint runs of ``k/2``
   consecutive ring positions, ``k`` clients in all; there are fewer than
   ``n (n - k - 1) / 2`` pairs of runs and a given set of ``k`` positions is all bad
   (``B = A + D`` bad clients) with probability ``B!/(B-k)! * (n-k)!/n!``. The union
   bound over all pairs must stay below ``2^-(s+1)``; it is 0 when ``k > B``.
3. **Failure, a neighbourhood with too few survivors.** ``S ~ HG(n, L, k)`` with
   ``L = ceil((1 - dropout_fraction) n)`` counts the surviving neighbours of a client;
   the server can unmask only if ``S >= t`` everywhere, so we need
   ``P[S <= t - 1] < 2^-f / n`` (``f`` = failure bits). Corrupt clients count as
   survivors: in these threat models they follow the protocol (the semi-malicious server
   is the one that deviates).

Events 1 and 2 share the security budget (``2^-(s+1)`` each, summing to ``2^-s``).
For each even ``k`` from 2 the finder takes ``t`` as the smallest value passing event 1
(and at least 2: a threshold of 1 would leave each secret in clear with every single
neighbour) and accepts ``k`` if that ``t`` also passes event 3. If no ``k < n - 1``
passes, it falls back to the complete graph (``k = n - 1``, plain SecAgg), where the
threshold is also raised to Bonawitz et al.'s bound over the ``n`` share holders
(neighbours plus self): ``t > n/2``, or ``t > 2n/3`` when semi-malicious.

Tails are computed from the exact probability mass function, not from a Chernoff bound:
its log at one point from :func:`math.lgamma`, the neighbouring terms by the ratio
recurrence, accumulated with ``logaddexp`` from the small end so that tails of ``2^-60``
keep their precision. Only a window of ``O(sqrt(k))`` terms around the tail is summed; the
mass outside it is bounded by Hoeffding's inequality and added, so every probability used
is a rigorous upper bound (see :class:`UpperTail`) and the finder stays fast for large
degrees (``k = 11136`` at ``n = 10**6``, 30 % corrupt and 30 % dropout: about 0.4 s).

This reproduces Google's fcp finder (``fcp/secagg/server/graph_parameter_finder.cc``),
whose analysis it follows. For 5 % corrupt and 5 % dropout, semi-honest
``n = 100, 1000, 10**4, 10**6`` give ``(k, t) = (12, 6), (30, 17), (34, 20), (38, 22)``
and semi-malicious ``n = 100, 1000`` give ``(16, 11), (52, 37)``, exactly as fcp; the 88
vectors of fcp's own test agree except two: ``n = 10`` with 33 % dropout and 0 or 5 %
corrupt, where fcp returns ``(4, 2)`` and this finder ``(6, 2)``. fcp raises its threshold
to at least 2 *after* checking the failure bound (which ``t = 1`` passed); with ``k = 4``
neighbours of which 3 may drop, ``P[S <= 1] = 1/30`` per client, far above ``2^-20``. This
finder checks the bound on the threshold it returns. Like fcp, the rates must satisfy
``corrupt + dropout <= 0.9`` (semi-honest) or ``corrupt + 2 dropout <= 0.9``
(semi-malicious). Unlike fcp, when no degree below ``n - 1`` works it returns the complete
graph when that works, instead of failing.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from secagg.errors import ConfigurationError

__all__ = ["MARGIN_BITS", "MAX_CLIENTS", "SecAggPlusParameters", "UpperTail", "find_parameters"]

#: Largest population the finder accepts (a sanity bound; lgamma stays accurate far beyond).
MAX_CLIENTS = 10**9
_MAX_BITS = 512.0
# Keeps floor(rate * n) from losing a client to binary rounding (0.05 * 100 is 5.000...1
# but 0.07 * 100 is 7.000000000000001 and 0.29 * 100 is 28.999999999999996).
_EPS = 1e-14
_LN2 = math.log(2.0)
MARGIN_BITS = 64.0
"""Tail mass neglected beyond a Hoeffding window, in bits below the probability compared."""


@dataclass(frozen=True)
class SecAggPlusParameters:
    """A SecAgg+ setting and what it achieves (all public values).

    ``degree`` is the number of neighbours of each client (``n - 1`` for the complete
    graph) and ``threshold`` the Shamir threshold, ``1 <= threshold <= degree``.
    ``achieved_security_bits`` is ``-log2`` of the union bound on events 1 and 2 of the
    module docstring and ``achieved_failure_bits`` ``-log2`` of the bound on event 3;
    they are at least the requested ``security_bits`` and ``failure_bits`` (``inf`` when
    the bad event is impossible).
    """

    n: int
    degree: int
    threshold: int
    corrupt_fraction: float
    dropout_fraction: float
    security_bits: float
    failure_bits: float
    semi_malicious: bool
    achieved_security_bits: float
    achieved_failure_bits: float

    @property
    def is_complete(self) -> bool:
        """True for the complete graph (plain SecAgg)."""
        return self.degree == self.n - 1


@dataclass(frozen=True)
class UpperTail:
    """``log P[X >= x]`` for ``X ~ HG(total, marked, draws)``, as a conservative table.

    Only the window ``lo .. hi`` of the support is summed: below ``lo = floor(mean)`` the
    tail is at least 1/2 (a hypergeometric median is within one of its mean) and is
    reported as 1; above ``hi`` Hoeffding's bound for sampling without replacement,
    ``P[X >= mean + s] <= exp(-2 s^2 / draws)``, puts less than ``exp(log_cutoff)`` of mass,
    which is added to every value. So each value is an upper bound on the true tail,
    exceeding it by at most ``exp(log_cutoff)``, and the work is ``O(sqrt(draws))``
    instead of ``O(draws)``.
    """

    lo: int
    log_tails: np.ndarray  # log P[X >= lo + i], i = 0 .. hi - lo + 1
    log_beyond: float  # bound used for hi + 1 < x <= support_high
    support_high: int

    @classmethod
    def build(cls, total: int, marked: int, draws: int, log_cutoff: float) -> UpperTail:
        support_low = max(0, draws - (total - marked))
        support_high = min(draws, marked)
        mean = draws * marked / total
        lo = max(support_low, math.floor(mean))
        hi = min(support_high, math.ceil(mean + math.sqrt(-log_cutoff * draws / 2.0)))
        # log P[X = lo] = log C(marked, lo) + log C(total-marked, draws-lo) - log C(total, draws)
        log_first = (
            math.lgamma(marked + 1)
            - math.lgamma(lo + 1)
            - math.lgamma(marked - lo + 1)
            + math.lgamma(total - marked + 1)
            - math.lgamma(draws - lo + 1)
            - math.lgamma(total - marked - draws + lo + 1)
            - math.lgamma(total + 1)
            + math.lgamma(draws + 1)
            + math.lgamma(total - draws + 1)
        )
        x = np.arange(lo, hi, dtype=np.float64)
        # P[X = x+1] / P[X = x] = (marked-x)(draws-x) / ((x+1)(total-marked-draws+x+1))
        log_pmf = np.empty(hi - lo + 1, dtype=np.float64)
        log_pmf[0] = log_first
        np.cumsum(
            np.log(marked - x)
            + np.log(draws - x)
            - np.log(x + 1)
            - np.log(total - marked - draws + x + 1),
            out=log_pmf[1:],
        )
        log_pmf[1:] += log_first
        log_tails = np.empty(hi - lo + 2, dtype=np.float64)
        log_tails[:-1] = np.logaddexp.accumulate(log_pmf[::-1])[::-1]
        log_tails[-1] = -math.inf
        log_beyond = -math.inf
        if hi < support_high:
            log_beyond = log_cutoff
            np.logaddexp(log_tails, log_cutoff, out=log_tails)
        return cls(lo=lo, log_tails=log_tails, log_beyond=log_beyond, support_high=support_high)

    def at(self, x: int) -> float:
        """An upper bound on ``log P[X >= x]`` (exact up to ``exp(log_cutoff)``)."""
        if x < self.lo:
            return 0.0
        if x > self.support_high:
            return -math.inf
        index = x - self.lo
        if index >= len(self.log_tails):
            return self.log_beyond
        return float(self.log_tails[index])

    def smallest_below(self, log_q: float) -> int:
        """The smallest ``x`` with ``log P[X >= x] < log_q``; needs ``log_cutoff < log_q``."""
        below = self.log_tails < log_q
        if not below.any():  # only when log_q <= log_beyond: the caller's contract
            raise AssertionError("tail window too narrow")
        return self.lo + int(np.argmax(below))


def _log_disconnect_bound(n: int, degree: int, bad: int) -> float:
    """Event 2: log of the union bound on the honest survivors being disconnected."""
    if degree >= n - 1 or degree > bad:
        return -math.inf
    return (
        math.log(n)
        + math.log(n - degree - 1)
        - _LN2
        + math.lgamma(bad + 1)
        - math.lgamma(bad - degree + 1)
        + math.lgamma(n - degree + 1)
        - math.lgamma(n + 1)
    )


def _bits(log_probability: float) -> float:
    return math.inf if log_probability == -math.inf else -log_probability / _LN2


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a float")
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise ConfigurationError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _check_bits(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a float")
    if not 0.0 < value <= _MAX_BITS:
        raise ConfigurationError(f"{name} must be in (0, {_MAX_BITS:g}], got {value}")
    return float(value)


def find_parameters(
    n: int,
    *,
    corrupt_fraction: float = 0.05,
    dropout_fraction: float = 0.05,
    security_bits: float = 40.0,
    failure_bits: float = 20.0,
    semi_malicious: bool = False,
) -> SecAggPlusParameters:
    """The smallest SecAgg+ degree ``k`` (and threshold ``t``) meeting the given bounds.

    Guarantees: with at most ``corrupt_fraction * n`` corrupt clients and at most
    ``dropout_fraction * n`` dropouts, a Harary graph of the returned degree permuted by a
    fresh uniform seed keeps every honest input private except with probability
    ``2^-security_bits`` and lets the server unmask except with probability
    ``2^-failure_bits`` (the bounds of the module docstring). ``degree`` is even, or
    ``n - 1`` (complete graph); ``2 <= threshold <= degree``. Deterministic; about a
    millisecond at ``n = 10**6`` for the default rates.

    Raises ConfigurationError: ``n`` not an int in ``[3, 10**9]``; a fraction outside
    ``[0, 1)``; ``corrupt + dropout > 0.9`` (semi-honest) or ``corrupt + 2 dropout > 0.9``
    (semi-malicious); bits outside ``(0, 512]``; or no degree up to ``n - 1`` meets the
    bounds (small ``n`` with high rates).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ConfigurationError("n must be an int")
    if not 3 <= n <= MAX_CLIENTS:
        raise ConfigurationError(f"n must be in [3, {MAX_CLIENTS}], got {n}")
    corrupt = _check_fraction("corrupt_fraction", corrupt_fraction)
    dropout = _check_fraction("dropout_fraction", dropout_fraction)
    security = _check_bits("security_bits", security_bits)
    failure = _check_bits("failure_bits", failure_bits)
    if not isinstance(semi_malicious, bool):
        raise ConfigurationError("semi_malicious must be a bool")
    if semi_malicious and corrupt + 2 * dropout > 0.9:
        raise ConfigurationError("semi-malicious SecAgg+ needs corrupt + 2 * dropout <= 0.9")
    if not semi_malicious and corrupt + dropout > 0.9:
        raise ConfigurationError("semi-honest SecAgg+ needs corrupt + dropout <= 0.9")

    max_corrupt = math.floor((corrupt + _EPS) * n)
    max_dropped = math.floor((dropout + _EPS) * n)
    min_survivors = math.ceil((1.0 - dropout - _EPS) * n)
    # Each privacy event gets half of the budget; the n clients share it by a union bound.
    log_event_budget = -(security + 1.0) * _LN2
    log_privacy_per_client = log_event_budget - math.log(n)
    log_failure_per_client = -failure * _LN2 - math.log(n)

    for degree in itertools.chain(range(2, n - 1, 2), (n - 1,)):
        log_disconnect = _log_disconnect_bound(n, degree, max_corrupt + max_dropped)
        if log_disconnect >= log_event_budget:
            continue
        # X = corrupt neighbours of one client.
        corrupt_tail = UpperTail.build(
            n, max_corrupt, degree, log_privacy_per_client - MARGIN_BITS * _LN2
        )
        secure_from = corrupt_tail.smallest_below(log_privacy_per_client)
        # Semi-malicious: need 2t - k >= secure_from, i.e. t >= ceil((secure_from + k) / 2).
        threshold = (secure_from + degree + 1) // 2 if semi_malicious else secure_from
        threshold = max(threshold, 2)
        if degree == n - 1:
            holders = n  # neighbours plus self
            bonawitz = 2 * holders // 3 + 1 if semi_malicious else holders // 2 + 1
            threshold = max(threshold, bonawitz)
        if threshold > degree:
            continue
        # Event 3 via the dropped neighbours Y = k - S: P[S <= t - 1] = P[Y >= k - t + 1].
        dropped_tail = UpperTail.build(
            n, n - min_survivors, degree, log_failure_per_client - MARGIN_BITS * _LN2
        )
        log_short = dropped_tail.at(degree - threshold + 1)
        if log_short >= log_failure_per_client:
            continue
        log_corrupt = corrupt_tail.at(2 * threshold - degree if semi_malicious else threshold)
        log_privacy = float(np.logaddexp(log_disconnect, log_corrupt + math.log(n)))
        return SecAggPlusParameters(
            n=n,
            degree=degree,
            threshold=threshold,
            corrupt_fraction=corrupt,
            dropout_fraction=dropout,
            security_bits=security,
            failure_bits=failure,
            semi_malicious=semi_malicious,
            achieved_security_bits=_bits(log_privacy),
            achieved_failure_bits=_bits(log_short + math.log(n)),
        )
    raise ConfigurationError(
        f"no SecAgg+ degree up to n - 1 = {n - 1} meets 2^-{security:g} security and "
        f"2^-{failure:g} failure with these corrupt and dropout fractions"
    )
