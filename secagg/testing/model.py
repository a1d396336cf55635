"""The vocabulary shared by :mod:`secagg.testing.strategies` and :mod:`secagg.testing.harness`.

Plain frozen dataclasses, no hypothesis: what a dropout schedule is measured against
(:class:`DropoutModel`), what a malicious server does to its requests (:class:`ServerAttack`)
and what a misbehaving client does to its answers (:class:`ClientFault`). Their reprs are
what hypothesis prints in a falsifying example, so they are short and hold no secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from secagg.errors import ConfigurationError

__all__ = [
    "CLIENT_FAULT_KINDS",
    "CONTAINED_FAULTS",
    "DEALING_FAULTS",
    "EXCLUDED_FAULTS",
    "FAULTY_CLIENT_KINDS",
    "LOSING_FAULTS",
    "SERVER_ATTACK_KINDS",
    "SHARE_FAULTS",
    "ClientFault",
    "DropoutModel",
    "Quorum",
    "ServerAttack",
]

# --- misbehaving clients -----------------------------------------------------------------

LOSING_FAULTS = frozenset(
    {
        "truncate",
        "junk",
        "impersonate",
        "wrong_length",  # Bonawitz MaskedInput: a well-formed vector one element too long
        "missing_bundle",  # Bonawitz ShareKeys: the boxes of one holder left out
        "bad_signature",  # Bonawitz active mode: AdvertiseKeys / ConsistencyCheck unsigned
        "bad_key_proof",  # Bonawitz AdvertiseKeys: a key proof that does not verify
        "duplicate_keys",  # Bonawitz AdvertiseKeys: another client's keys (and proofs)
    }
)
"""The answer is replaced by bytes the server must refuse on arrival: for the outcome it is
lost (the client acts as if it dropped in that round) and the server must blame the
sender."""
CONTAINED_FAULTS = frozenset({"duplicate", "replay", "foreign_session"})
"""The genuine answer arrives too, plus an extra bad message: the outcome is unchanged and
the server must blame the sender."""
EXCLUDED_FAULTS = frozenset(
    {
        "garbage_bundles",  # ShareKeys: every box for another holder zeroed
        "bad_tag",  # ShareKeys: the tag of one box for another holder flipped
        "wrong_keys",  # AdvertiseKeys: keys it does not use (fresh pairs, proven)
        "false_complaint",  # ShareCheck: a complaint about an honest dealer
    }
)
"""Bonawitz: the answer decodes, but ShareCheck exposes it (a holder complains about a box,
or the sender's own complaint fails): the server leaves the sender out before anyone masks
(for the outcome, as if its ShareCheck answer was lost) and blames it once ShareCheck
closes."""
SHARE_FAULTS = frozenset({"garbled_share", "junk_share"})
"""Bonawitz Unmasking: one revealed share is moved off its polynomial (``garbled_share``) or
zeroed (``junk_share``). The server checks every share against its box, blames the sender
and uses the box's share: the outcome is unchanged."""
DEALING_FAULTS = frozenset(
    {
        "inconsistent_shares",  # ShareKeys: one holder's self-mask share off the polynomial
        "wrong_dealt_key",  # ShareKeys: shares of a mask key other than the advertised one
        "wrong_commitment",  # AdvertiseKeys: a commitment to another seed (signed)
        "bad_check",  # ShareCheck: wrong check values for one dealer
    }
)
"""Bonawitz: the client deals or checks wrongly, and signs what it sends: what follows, and
whether the fault shows at all, is the target's prediction (``predict_faults``). Those of
:data:`FAULTY_CLIENT_KINDS` are the client's own behaviour (the target's
``make_faulty_client`` builds it), the others a change to its message."""
FAULTY_CLIENT_KINDS = frozenset({"inconsistent_shares", "wrong_dealt_key"})
CLIENT_FAULT_KINDS: tuple[str, ...] = (
    *sorted(LOSING_FAULTS),
    *sorted(CONTAINED_FAULTS),
    *sorted(EXCLUDED_FAULTS),
    *sorted(SHARE_FAULTS),
    *sorted(DEALING_FAULTS),
)


@dataclass(frozen=True)
class ClientFault:
    """Client ``client`` tampers with its answer of round ``round_name`` (``kind``, one of
    :data:`CLIENT_FAULT_KINDS`). Raises ConfigurationError on an unknown kind or a bad id."""

    client: int
    round_name: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in CLIENT_FAULT_KINDS:
            raise ConfigurationError(f"unknown client fault {self.kind!r}")
        if isinstance(self.client, bool) or not isinstance(self.client, int) or self.client < 1:
            raise ConfigurationError(f"a client fault needs a client id, got {self.client!r}")

    @property
    def loses_answer(self) -> bool:
        return self.kind in LOSING_FAULTS

    @property
    def must_be_blamed(self) -> bool:
        """True when the server must attribute the bad message to its sender on arrival
        (the other kinds are blamed when the server finds them out, as the target
        predicts)."""
        return self.kind in LOSING_FAULTS or self.kind in CONTAINED_FAULTS

    @property
    def faulty_client(self) -> bool:
        """True when the fault is the client's own behaviour (the target builds a faulty
        client), not a change to one of its messages."""
        return self.kind in FAULTY_CLIENT_KINDS


# --- malicious servers -------------------------------------------------------------------

SERVER_ATTACK_KINDS: tuple[str, ...] = (
    "both_shares",  # Unmasking: the victim listed as survivor and as dropped
    "swap_lists",  # Unmasking: the victim moved from the survivors to the dropped
    "split_view",  # ConsistencyCheck: the victim left out of the survivor set
    "replay",  # the same request delivered twice
    "stale",  # the previous round's request delivered again before this one
    "garbled_bundle",  # MaskedInput: one forwarded sealed share bundle has a flipped bit
    "withhold_bundle",  # MaskedInput: one forwarded bundle is left out
    "foreign_peer",  # ShareKeys: the client itself listed among its peers
    "garbled_bytes",  # one byte of the encoded request flipped
)
"""Every kind of :class:`ServerAttack`; the first seven are Bonawitz-specific and leave the
messages of other protocols as they are."""


@dataclass(frozen=True)
class ServerAttack:
    """The server tampers with its ``round_name`` requests to ``targets``; ``victim`` is the
    peer whose secrets the attack goes after (``None``: the harness picks one).

    Raises ConfigurationError on an unknown kind or an empty target set.
    """

    kind: str
    round_name: str
    targets: frozenset[int]
    victim: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SERVER_ATTACK_KINDS:
            raise ConfigurationError(f"unknown server attack {self.kind!r}")
        object.__setattr__(self, "targets", frozenset(self.targets))
        if not self.targets:
            raise ConfigurationError("a server attack needs at least one target")


# --- dropouts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quorum:
    """At least ``needed`` of ``members`` must still be there in a round for it to go on."""

    members: frozenset[int]
    needed: int


@dataclass(frozen=True)
class DropoutModel:
    """What a dropout schedule of one protocol is drawn against.

    ``rounds`` in protocol order; ``input_round`` is the round in which a client's input
    is sent (dropping after it keeps the input in the sum); ``quorums`` says, per round,
    who must remain; ``neighbourhoods`` maps a client to the peers whose loss all at once
    is the worst case for it (SecAgg+: its graph neighbours; a committee for threshold HE).
    """

    clients: tuple[int, ...]
    rounds: tuple[str, ...]
    input_round: str
    quorums: Mapping[str, Quorum]
    neighbourhoods: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_round not in self.rounds:
            raise ConfigurationError(f"input round {self.input_round!r} is not a round")
        if set(self.quorums) - set(self.rounds):
            raise ConfigurationError("a quorum names a round the protocol does not have")

    @property
    def rounds_after_input(self) -> tuple[str, ...]:
        return self.rounds[self.rounds.index(self.input_round) + 1 :]
