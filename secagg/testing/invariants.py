"""The invariants a finished run must satisfy, checked from what the harness recorded.

:class:`RunLog` is what :class:`secagg.testing.harness.Network` records while it moves the
messages; :meth:`RunReport.check` raises :class:`InvariantViolation` (an AssertionError, so
pytest and hypothesis treat it as a test failure and shrink it) for the first broken one:

1. privacy: every client sends at most one disclosing message of each type (a target may
   allow more: ``disclosing_messages``), and never shares of two secrets of one owner;
   the server never gathers the reveal threshold of two secrets of one owner;
2. uniformity: the server's view of each masked input long enough to test looks uniform;
3. outcome: with an honest server, the session aborts exactly when the target's oracle
   says so (fewer than t remain), else the sum holds exactly the promised clients;
4. sum: the total equals the plaintext sum, mod 2^bits, of exactly ``included``; every
   configured client is either included or excluded with a reason;
5. blame: every bad message that reached a running server is attributed to its sender,
   every fault the target predicts to show is blamed on its client (``Prediction.blamed``),
   and (honest server) no client that followed the protocol and stayed is blamed.

Checks made while messages move (a peer's error must be a ProtocolViolation naming that
peer, nothing else may escape a party) raise from the harness directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from secagg.errors import ProtocolAbort, ProtocolViolation
from secagg.protocols.base import AggregationResult
from secagg.ring import dtype_for_bits
from secagg.testing.model import SHARE_FAULTS, ClientFault, ServerAttack
from secagg.testing.target import Prediction, ProtocolUnderTest
from secagg.testing.uniformity import MIN_SAMPLES, Z_LIMIT, uniformity_score

__all__ = ["InvariantViolation", "RunLog", "RunReport"]


class InvariantViolation(AssertionError):
    """A protocol run broke one of the harness's invariants (a test failure, not a
    protocol error: it is not part of :mod:`secagg.errors`)."""


@dataclass
class RunLog:
    """What happened in one run (filled by the harness's Network)."""

    gone: dict[int, str] = field(default_factory=dict)  # client -> round it vanished in
    late: set[tuple[int, str]] = field(default_factory=set)  # (client, round) answers missed
    injected: list[ClientFault] = field(default_factory=list)  # faults really applied
    attacks: list[ServerAttack] = field(default_factory=list)  # attacks really applied
    reveals: dict[int, list[list[tuple[int, str]]]] = field(default_factory=dict)
    reveal_types: dict[int, list[str]] = field(default_factory=dict)  # message type of each
    views: dict[int, np.ndarray] = field(default_factory=dict)
    refusals: dict[int, ProtocolViolation] = field(default_factory=dict)
    observed: set[int] = field(default_factory=set)  # bad message reached a running server
    transport_blamed: set[int] = field(default_factory=set)  # refused at decoding
    server_faults: Mapping[int, object] = field(default_factory=dict)
    deliveries: int = 0


@dataclass(frozen=True, repr=False)
class RunReport:
    """The end of one run: the result or the abort, and everything the checks need."""

    target: ProtocolUnderTest
    inputs: Mapping[int, np.ndarray]
    log: RunLog
    result: AggregationResult | None
    abort: ProtocolAbort | None
    round_order: tuple[str, ...]

    def __repr__(self) -> str:
        outcome = f"abort={self.abort}" if self.abort else f"result={self.result!r}"
        return f"RunReport({self.target!r}, {outcome}, vanished={self.log.gone})"

    @property
    def attacked(self) -> bool:
        """True when a malicious server's move really changed a request."""
        return bool(self.log.attacks)

    @property
    def lost(self) -> frozenset[tuple[int, str]]:
        """The (client, round) answers that never reached the server: late for a deadline,
        or replaced by the client's own bad message."""
        losing = {(f.client, f.round_name) for f in self.log.injected if f.loses_answer}
        return frozenset(self.log.late | losing)

    @property
    def absent(self) -> set[int]:
        """Every client that vanished or missed an answer."""
        return set(self.log.gone) | {client for client, _ in self.lost}

    def expected_total(self, included: frozenset[int]) -> np.ndarray:
        """The plaintext sum over ``included`` mod 2^bits (uint64)."""
        bits = self.target.bits
        total = np.zeros(self.target.vector_length, dtype=np.uint64)
        for client in sorted(included):
            np.add(total, self.inputs[client].astype(np.uint64), out=total)
        if bits < 64:
            np.bitwise_and(total, np.uint64((1 << bits) - 1), out=total)
        return total

    # -- the checks ----------------------------------------------------------------------

    def check(self) -> RunReport:
        """Raise InvariantViolation for the first broken invariant; return self."""
        self.check_so_far()
        if not self.attacked:
            self._check_outcome()
        if self.result is not None:
            self._check_result(self.result)
        self._check_blame()
        return self

    def check_so_far(self) -> RunReport:
        """The invariants that hold at every moment of a run, finished or not: privacy and
        the uniformity of the masked inputs sent so far. Returns self."""
        self._check_privacy()
        self._check_uniformity()
        return self

    def _fail(self, what: str) -> InvariantViolation:
        faults = [f"{f.kind}@{f.client}/{f.round_name}" for f in self.log.injected]
        return InvariantViolation(
            f"{what}\n  target: {self.target!r}\n  vanished: {self.log.gone}\n"
            f"  lost answers: {sorted(self.lost)}\n"
            f"  client faults: {faults}\n  server attacks: {len(self.log.attacks)}"
        )

    def _predictions(self) -> tuple[Prediction, Prediction]:
        """(optimistic, pessimistic): what the target promises with the faults injected.
        A target with ``predict_faults`` predicts them exactly; otherwise a share fault may
        cost its holder's whole answer, and the outcome must lie between the two."""
        vanished, lost = self.log.gone, self.lost
        exact = getattr(self.target, "predict_faults", None)
        if callable(exact):
            prediction: Prediction = exact(vanished, lost, tuple(self.log.injected))
            return prediction, prediction
        optimistic = self.target.predict(vanished, lost)
        garbled = self._garbled()
        if garbled - lost:
            return optimistic, self.target.predict(vanished, lost | garbled)
        return optimistic, optimistic

    def _check_outcome(self) -> None:
        optimistic, pessimistic = self._predictions()
        if self.abort is not None:
            if pessimistic.aborts is False:
                raise self._fail(
                    f"the session aborted ({self.abort}) although enough clients remained "
                    f"to complete with {sorted(pessimistic.included or ())}"
                )
            return
        assert self.result is not None
        if optimistic.aborts is True:
            raise self._fail(
                f"the session completed with {sorted(self.result.included)} although too few "
                "clients remained: it must abort"
            )
        if optimistic.included is not None and self.result.included != optimistic.included:
            missing = sorted(optimistic.included - self.result.included)
            extra = sorted(self.result.included - optimistic.included)
            reasons = {c: self.result.excluded.get(c, "?") for c in missing}
            raise self._fail(
                f"the sum includes the wrong clients: missing {missing} {reasons}, "
                f"unexpected {extra}"
            )
        unblamed = sorted(optimistic.blamed - self._blamed())
        if unblamed:
            raise self._fail(f"faulty clients {unblamed} were not blamed")

    def _garbled(self) -> set[tuple[int, str]]:
        """The answers a share fault may cost (targets without ``predict_faults``): the
        faulty answer itself."""
        return {
            (fault.client, fault.round_name)
            for fault in self.log.injected
            if fault.kind in SHARE_FAULTS
        }

    def _check_result(self, result: AggregationResult) -> None:
        clients = set(self.target.clients)
        if result.included & set(result.excluded):
            raise self._fail(
                f"clients both included and excluded: {result.included & set(result.excluded)}"
            )
        if result.included | set(result.excluded) != clients:
            raise self._fail("the result does not account for every configured client")
        if self.attacked:
            return  # a malicious server can always publish a wrong sum
        prediction = self._predictions()[0]
        if prediction.free & result.included:
            return  # a faulty client's contribution the protocol does not pin
        if not prediction.pinned:
            return  # the target's trust model lets these faults change the sum unseen
        total = np.asarray(result.total)
        if total.dtype != dtype_for_bits(self.target.bits) or total.shape != (
            self.target.vector_length,
        ):
            raise self._fail(f"the total has dtype {total.dtype} and shape {total.shape}")
        expected = self.expected_total(result.included)
        if not np.array_equal(total.astype(np.uint64), expected):
            wrong = int(np.count_nonzero(total.astype(np.uint64) != expected))
            raise self._fail(
                f"the total is not the sum of the included clients {sorted(result.included)} "
                f"({wrong} of {expected.size} values differ)"
            )

    def _check_privacy(self) -> None:
        holders_of: dict[tuple[int, str], set[int]] = {}
        # A target may let one client disclose in several messages (a threshold-HE member
        # asked for further blocks of the same aggregate); the kinds are judged together.
        allowed = getattr(self.target, "disclosing_messages", 1)
        for holder, messages in self.log.reveals.items():
            types = self.log.reveal_types.get(holder, [])
            most = max((types.count(name) for name in set(types)), default=len(messages))
            if most > allowed:
                raise self._fail(f"client {holder} disclosed secrets in {most} messages")
            kinds: dict[int, set[str]] = {}
            for owner, kind in (item for message in messages for item in message):
                kinds.setdefault(owner, set()).add(kind)
                holders_of.setdefault((owner, kind), set()).add(holder)
            for owner, seen in kinds.items():
                if len(seen) > 1:
                    raise self._fail(
                        f"client {holder} disclosed shares of both {sorted(seen)} of client {owner}"
                    )
        owners = {owner for owner, _ in holders_of}
        for owner in sorted(owners):
            limit = self.target.reveal_threshold(owner, attacked=self.attacked)
            if limit is None:
                continue
            complete = [k for (o, k), hs in holders_of.items() if o == owner and len(hs) >= limit]
            if len(complete) > 1:
                raise self._fail(
                    f"the server gathered {limit} shares of each of {sorted(complete)} of "
                    f"client {owner}: it can unmask that client's input"
                )

    def _blamed(self) -> set[int]:
        if self.result is not None:
            blamed = set(self.result.faults)
            blamed |= {
                c for c, why in self.result.excluded.items() if why.startswith("bad message")
            }
        else:
            blamed = set(self.log.server_faults)
        return blamed

    def _check_blame(self) -> None:
        blamed = self._blamed()
        attributed = blamed | self.log.transport_blamed
        if self.result is not None:
            attributed |= set(self.result.excluded)
        unblamed = sorted(self.log.observed - attributed)
        if unblamed:
            raise self._fail(f"bad messages of clients {unblamed} were not attributed to them")
        if self.attacked:
            return  # a malicious server's moves can make honest clients look bad
        allowed = {f.client for f in self.log.injected} | self.absent
        wrongly = sorted(blamed - allowed)
        if wrongly:
            notes = {c: (self.result.faults.get(c) if self.result else None) for c in wrongly}
            raise self._fail(f"honest clients {wrongly} were blamed: {notes}")

    def _check_uniformity(self) -> None:
        for client, view in sorted(self.log.views.items()):
            if view.size < MIN_SAMPLES:
                continue
            score = uniformity_score(view, self.target.bits)
            if score > Z_LIMIT:
                raise self._fail(
                    f"the server's view of client {client}'s masked input is not uniform "
                    f"(|z| = {score:.1f} > {Z_LIMIT})"
                )
