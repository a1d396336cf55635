"""Per-round, per-party cost accounting for a transport (the simulator).

A transport records two things: the wall-clock seconds a party spent inside its protocol
object (``receive``/``start``/``close_round``) and the size of every encoded message it moved.
Directions are named from the network's point of view, for every party alike:

* ``bytes_up``: bytes travelling client -> server (a client's uploads; for the server, the
  total it received);
* ``bytes_down``: bytes travelling server -> client (a client's downloads; for the server,
  the total it sent).

So the server's ``bytes_up`` in a round equals the sum of the clients' ``bytes_up`` in that
round, and likewise down: the ledger keeps this invariant by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from secagg.errors import UsageError
from secagg.protocols.base import SERVER_ID

__all__ = ["CostLedger", "PartyCost", "RoundSummary", "format_bytes"]


@dataclass
class PartyCost:
    """What one party spent in one round (or in total)."""

    seconds: float = 0.0
    bytes_up: int = 0
    bytes_down: int = 0
    messages_up: int = 0
    messages_down: int = 0

    def add(self, other: PartyCost) -> None:
        """Accumulate ``other`` into this cost, in place."""
        self.seconds += other.seconds
        self.bytes_up += other.bytes_up
        self.bytes_down += other.bytes_down
        self.messages_up += other.messages_up
        self.messages_down += other.messages_down

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-ready copy."""
        return {
            "seconds": self.seconds,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "messages_up": self.messages_up,
            "messages_down": self.messages_down,
        }


@dataclass(frozen=True)
class RoundSummary:
    """One round's costs, the server apart and the clients aggregated."""

    round_name: str
    server: PartyCost
    clients: int
    client_seconds_total: float
    client_seconds_max: float
    client_bytes_up_max: int
    client_bytes_down_max: int

    @property
    def client_seconds_mean(self) -> float:
        return self.client_seconds_total / self.clients if self.clients else 0.0

    @property
    def client_bytes_up_mean(self) -> float:
        return self.server.bytes_up / self.clients if self.clients else 0.0

    @property
    def client_bytes_down_mean(self) -> float:
        return self.server.bytes_down / self.clients if self.clients else 0.0

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy."""
        return {
            "round": self.round_name,
            "server": self.server.to_dict(),
            "clients": self.clients,
            "client_seconds_total": self.client_seconds_total,
            "client_seconds_mean": self.client_seconds_mean,
            "client_seconds_max": self.client_seconds_max,
            "client_bytes_up_mean": self.client_bytes_up_mean,
            "client_bytes_up_max": self.client_bytes_up_max,
            "client_bytes_down_mean": self.client_bytes_down_mean,
            "client_bytes_down_max": self.client_bytes_down_max,
        }


class CostLedger:
    """Costs per round (in the order rounds were first seen) and per party id.

    Only the transport writes to a ledger; readers get copies, never the live entries.
    """

    def __init__(self) -> None:
        self._rounds: dict[str, dict[int, PartyCost]] = {}

    def _entry(self, round_name: str, party: int) -> PartyCost:
        by_party = self._rounds.setdefault(round_name, {})
        cost = by_party.get(party)
        if cost is None:
            cost = by_party[party] = PartyCost()
        return cost

    def record_time(self, round_name: str, party: int, seconds: float) -> None:
        """Charge ``seconds`` of compute to ``party`` in ``round_name``."""
        if seconds < 0:
            raise UsageError("negative duration")
        self._entry(round_name, party).seconds += seconds

    def record_message(self, round_name: str, sender: int, recipient: int, size: int) -> None:
        """Account one encoded message of ``size`` bytes moved from sender to recipient.

        A message to the server is an upload for both ends, one from the server a
        download for both ends. Raises UsageError for a message between two clients or
        from the server to itself (the protocols route everything through the server).
        """
        if size < 0:
            raise UsageError("negative message size")
        if recipient == SERVER_ID and sender != SERVER_ID:
            for party in (sender, SERVER_ID):
                entry = self._entry(round_name, party)
                entry.bytes_up += size
                entry.messages_up += 1
        elif sender == SERVER_ID and recipient != SERVER_ID:
            for party in (recipient, SERVER_ID):
                entry = self._entry(round_name, party)
                entry.bytes_down += size
                entry.messages_down += 1
        else:
            raise UsageError(f"message {sender} -> {recipient} does not involve exactly one server")

    @property
    def rounds(self) -> tuple[str, ...]:
        """Round names in the order they were first recorded."""
        return tuple(self._rounds)

    def parties(self) -> frozenset[int]:
        """Every party id with at least one entry."""
        return frozenset(p for by_party in self._rounds.values() for p in by_party)

    def cost(self, round_name: str, party: int) -> PartyCost:
        """A copy of ``party``'s cost in ``round_name`` (zero if it has none)."""
        entry = self._rounds.get(round_name, {}).get(party)
        out = PartyCost()
        if entry is not None:
            out.add(entry)
        return out

    def party_total(self, party: int) -> PartyCost:
        """``party``'s cost summed over all rounds."""
        out = PartyCost()
        for by_party in self._rounds.values():
            entry = by_party.get(party)
            if entry is not None:
                out.add(entry)
        return out

    def round_summary(self, round_name: str) -> RoundSummary:
        """The server's cost and the clients' aggregate in one round."""
        by_party = self._rounds.get(round_name, {})
        clients = [c for p, c in by_party.items() if p != SERVER_ID]
        server = self.cost(round_name, SERVER_ID)
        return RoundSummary(
            round_name=round_name,
            server=server,
            clients=len(clients),
            client_seconds_total=sum(c.seconds for c in clients),
            client_seconds_max=max((c.seconds for c in clients), default=0.0),
            client_bytes_up_max=max((c.bytes_up for c in clients), default=0),
            client_bytes_down_max=max((c.bytes_down for c in clients), default=0),
        )

    def summaries(self) -> list[RoundSummary]:
        """One summary per round, in protocol order."""
        return [self.round_summary(r) for r in self._rounds]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary: per round, plus the server's and the clients' totals.

        Per-client rows are not included (n * rounds entries); use :meth:`cost` for them.
        """
        summaries = self.summaries()
        client_ids = self.parties() - {SERVER_ID}
        totals = [self.party_total(c) for c in client_ids]
        return {
            "rounds": [s.to_dict() for s in summaries],
            "server_total": self.party_total(SERVER_ID).to_dict(),
            "clients": len(client_ids),
            "client_seconds_max": max((t.seconds for t in totals), default=0.0),
            "client_bytes_up_max": max((t.bytes_up for t in totals), default=0),
            "client_bytes_down_max": max((t.bytes_down for t in totals), default=0),
        }

    def format_table(self) -> str:
        """A fixed-width text table: one row per round and a total row."""
        header = (
            f"{'round':<18} {'server s':>9} {'client s mean':>13} {'client s max':>12} "
            f"{'up/client':>10} {'down/client':>11} {'up total':>10} {'down total':>10}"
        )
        lines = [header, "-" * len(header)]
        summaries = self.summaries()
        for s in summaries:
            lines.append(_row(s.round_name, s))
        total = _total(summaries, self)
        lines.append("-" * len(header))
        lines.append(_row("total", total))
        return "\n".join(lines)


def _row(label: str, s: RoundSummary) -> str:
    return (
        f"{label:<18} {s.server.seconds:>9.3f} {s.client_seconds_mean:>13.4f} "
        f"{s.client_seconds_max:>12.4f} {format_bytes(s.client_bytes_up_mean):>10} "
        f"{format_bytes(s.client_bytes_down_mean):>11} {format_bytes(s.server.bytes_up):>10} "
        f"{format_bytes(s.server.bytes_down):>10}"
    )


def _total(summaries: Iterable[RoundSummary], ledger: CostLedger) -> RoundSummary:
    # Per-client maxima over the whole run, not the sum of per-round maxima.
    client_ids = ledger.parties() - {SERVER_ID}
    totals = [ledger.party_total(c) for c in client_ids]
    return RoundSummary(
        round_name="total",
        server=ledger.party_total(SERVER_ID),
        clients=len(client_ids),
        client_seconds_total=sum(s.client_seconds_total for s in summaries),
        client_seconds_max=max((t.seconds for t in totals), default=0.0),
        client_bytes_up_max=max((t.bytes_up for t in totals), default=0),
        client_bytes_down_max=max((t.bytes_down for t in totals), default=0),
    )


def format_bytes(size: float) -> str:
    """``1536 -> '1.5 KiB'``: a short human-readable size."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns
