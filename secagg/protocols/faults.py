"""What a server records about the parties it set aside: typed, short and bounded.

Theory of operation. Every server of every family keeps two records, both typed with
:class:`~secagg.errors.ExclusionReason`:

* an :class:`Exclusion` per client left out of the sum (``AggregationResult.excluded``);
* a :class:`FaultLog` of misbehaviour it contained (``AggregationResult.faults``).

Both read as plain text (they are ``str`` subclasses, so ``"dropped" in excluded[c]``
works) and carry their ``reason`` and ``round_name`` for code that branches on them.

Two rules this module keeps for every server. A note is short: a peer-chosen value reaches
it only through :func:`secagg.protocols.wire.shown` and the note is cut at
:data:`MAX_NOTE_CHARS`. And a log is bounded: at most :data:`MAX_FAULT_NOTES` notes per
party, the rest only counted, so a peer that floods the server with junk cannot grow its
state.
"""

from __future__ import annotations

from collections.abc import Mapping

from secagg.errors import ExclusionReason

__all__ = ["MAX_FAULT_NOTES", "MAX_NOTE_CHARS", "Exclusion", "Fault", "FaultLog", "Faults"]

MAX_FAULT_NOTES = 32
"""Notes kept per party; further faults are only counted."""
MAX_NOTE_CHARS = 240
"""The longest detail a note keeps (error texts of decoders are already bounded)."""


def _cut(detail: str) -> str:
    return detail if len(detail) <= MAX_NOTE_CHARS else detail[:MAX_NOTE_CHARS] + "..."


class Exclusion(str):
    """Why a client is not in the sum: its text, with ``reason`` and ``round_name``.

    Texts: ``"dropped in <round>"``, ``"bad message in <round>: <detail>"``, ``"fewer than
    t live neighbours after <round>"``, else the reason's value (and the detail, if any).
    """

    reason: ExclusionReason
    round_name: str
    detail: str

    def __new__(
        cls, reason: ExclusionReason, round_name: str = "", detail: str = ""
    ) -> Exclusion:
        detail = _cut(detail)
        if reason is ExclusionReason.DROPPED and round_name:
            text = f"dropped in {round_name}"
        elif reason is ExclusionReason.BAD_MESSAGE:
            where = f" in {round_name}" if round_name else ""
            text = f"bad message{where}: {detail}"
        elif reason is ExclusionReason.FEW_LIVE_NEIGHBOURS and round_name:
            text = f"{reason.value} after {round_name}"
        else:
            text = f"{reason.value}: {detail}" if detail else reason.value
        self = super().__new__(cls, text)
        self.reason, self.round_name, self.detail = reason, round_name, detail
        return self

    def __reduce__(self) -> tuple[object, ...]:
        return (Exclusion, (self.reason, self.round_name, self.detail))


class Fault(str):
    """One recorded misbehaviour: ``"<round>: <detail>"``, with ``reason`` and ``round_name``
    (``detail`` defaults to the reason's text)."""

    reason: ExclusionReason
    round_name: str
    detail: str

    def __new__(cls, reason: ExclusionReason, round_name: str, detail: str = "") -> Fault:
        detail = _cut(detail or reason.value)
        self = super().__new__(cls, f"{round_name}: {detail}" if round_name else detail)
        self.reason, self.round_name, self.detail = reason, round_name, detail
        return self

    def __reduce__(self) -> tuple[object, ...]:
        return (Fault, (self.reason, self.round_name, self.detail))


class Faults(str):
    """Every note recorded against one party, joined with ``"; "`` (the result's view);
    ``notes`` holds them as :class:`Fault` and ``reasons`` their distinct reasons."""

    notes: tuple[Fault, ...]
    unrecorded: int
    reasons: frozenset[ExclusionReason]

    def __new__(cls, notes: tuple[Fault, ...], unrecorded: int = 0) -> Faults:
        texts = [*notes, *([f"and {unrecorded} more faults not recorded"] if unrecorded else [])]
        self = super().__new__(cls, "; ".join(texts))
        self.notes, self.unrecorded = notes, unrecorded
        self.reasons = frozenset(note.reason for note in notes)
        return self

    def __reduce__(self) -> tuple[object, ...]:
        return (Faults, (self.notes, self.unrecorded))


class FaultLog:
    """A bounded record of faults per party (see the module docstring).

    ``record`` keeps the first :data:`MAX_FAULT_NOTES` notes of each party and counts the
    rest; ``summary`` is what a server puts in ``AggregationResult.faults``.
    """

    def __init__(self) -> None:
        self._notes: dict[int, list[Fault]] = {}
        self._unrecorded: dict[int, int] = {}

    def record(
        self, party: int, reason: ExclusionReason, round_name: str, detail: str = ""
    ) -> None:
        """Note that ``party`` did ``reason`` in ``round_name`` (``detail``: what exactly;
        it must not contain a peer's bytes, see :func:`secagg.protocols.wire.shown`)."""
        notes = self._notes.setdefault(party, [])
        if len(notes) < MAX_FAULT_NOTES:
            notes.append(Fault(reason, round_name, detail))
        else:
            self._unrecorded[party] = self._unrecorded.get(party, 0) + 1

    def __contains__(self, party: object) -> bool:
        return party in self._notes

    def __len__(self) -> int:
        return len(self._notes)

    def notes(self, party: int) -> list[str]:
        """The notes of ``party`` (a copy), then one counting those not recorded."""
        notes: list[str] = list(self._notes.get(party, ()))
        if self._unrecorded.get(party):
            notes.append(f"and {self._unrecorded[party]} more faults not recorded")
        return notes

    def reasons(self, party: int) -> frozenset[ExclusionReason]:
        """The distinct reasons recorded against ``party``."""
        return frozenset(note.reason for note in self._notes.get(party, ()))

    def as_dict(self) -> dict[int, list[str]]:
        """party -> its notes (a copy), for a server's ``faults`` property."""
        return {party: self.notes(party) for party in self._notes}

    def summary(self) -> Mapping[int, Faults]:
        """party -> :class:`Faults`, sorted by party: ``AggregationResult.faults``."""
        return {
            party: Faults(tuple(self._notes[party]), self._unrecorded.get(party, 0))
            for party in sorted(self._notes)
        }
