"""Hypothesis strategies for aggregation protocols (this module imports hypothesis).

Everything a protocol test draws, shrinking towards the simplest case (fewest clients,
smallest threshold, 1-bit values, no dropout, zero inputs):

* :func:`protocol_configs`: Bonawitz / SecAgg+ configurations with a threshold valid for
  the threat model (semi-honest t > n/2, active t > 2n/3; SecAgg+ per neighbourhood), any
  bit width, vector length and graph degree; :func:`bonawitz_targets` wraps them for the
  harness, :func:`threshold_he_targets` draws threshold-Paillier sessions;
* :func:`client_inputs`: one vector per client that respects the headroom of the sum;
* :func:`dropout_schedules`: who vanishes in which round, with the worst cases on purpose
  (just below, at and just above the threshold; everyone after the input round; a whole
  neighbourhood at once);
* :func:`server_attacks` and :func:`client_faults`: a malicious server's moves (both-shares
  requests, inconsistent survivor lists, replays, stale requests, garbled or withheld
  shares...) and misbehaving clients' messages; :func:`delivery_orders` reorders delivery.

Every strategy that takes a ``setup`` accepts a ProtocolConfig, a target of
:mod:`secagg.testing.harness` or (for schedules and attacks) a DropoutModel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.client import generate_identities
from secagg.protocols.bonawitz.config import ACTIVE, MODES, Mode, ProtocolConfig, default_threshold
from secagg.protocols.bonawitz.messages import (
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_CHECK,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
)
from secagg.ring import dtype_for_bits
from secagg.sim.simulator import DropoutSchedule
from secagg.testing.bonawitz import BonawitzTarget
from secagg.testing.bonawitz import dropout_model as bonawitz_dropout_model
from secagg.testing.model import (
    CLIENT_FAULT_KINDS,
    SERVER_ATTACK_KINDS,
    ClientFault,
    DropoutModel,
    ServerAttack,
)
from secagg.testing.threshold_he import ThresholdHETarget

__all__ = [
    "BIT_WIDTHS",
    "DROPOUT_KINDS",
    "INPUT_PATTERNS",
    "Headroom",
    "bonawitz_targets",
    "client_faults",
    "client_inputs",
    "delivery_orders",
    "dropout_schedules",
    "protocol_configs",
    "server_attacks",
    "threshold_he_targets",
    "valid_thresholds",
]

BIT_WIDTHS: tuple[int, ...] = (1, 2, 7, 8, 16, 31, 32, 33, 63, 64)
"""The bit widths drawn by default: both storage dtypes and their edges."""
DROPOUT_KINDS: tuple[str, ...] = (
    "none",
    "random",
    "near_threshold",
    "after_input",
    "neighbourhood",
)
INPUT_PATTERNS: tuple[str, ...] = ("zeros", "maximum", "constant", "sparse", "random")
Headroom = Literal["unsigned", "signed", "none"]

# Where the Bonawitz-specific attacks act (the generic ones act in any round).
_ATTACK_ROUNDS: dict[str, str] = {
    "both_shares": ROUND_UNMASKING,
    "swap_lists": ROUND_UNMASKING,
    "split_view": ROUND_CONSISTENCY_CHECK,
    "garbled_bundle": ROUND_SHARE_CHECK,
    "withhold_bundle": ROUND_SHARE_CHECK,
    "foreign_peer": ROUND_SHARE_KEYS,
}
# Where the Bonawitz-specific client faults bite (the generic ones act in any round).
_FAULT_ROUNDS: dict[str, tuple[str, ...]] = {
    "bad_signature": (ROUND_ADVERTISE_KEYS, ROUND_CONSISTENCY_CHECK),
    "bad_key_proof": (ROUND_ADVERTISE_KEYS,),
    "duplicate_keys": (ROUND_ADVERTISE_KEYS,),
    "wrong_keys": (ROUND_ADVERTISE_KEYS,),
    "wrong_commitment": (ROUND_ADVERTISE_KEYS,),
    "bad_tag": (ROUND_SHARE_KEYS,),
    "missing_bundle": (ROUND_SHARE_KEYS,),
    "garbage_bundles": (ROUND_SHARE_KEYS,),
    "inconsistent_shares": (ROUND_SHARE_KEYS,),
    "wrong_dealt_key": (ROUND_SHARE_KEYS,),
    "false_complaint": (ROUND_SHARE_CHECK,),
    "bad_check": (ROUND_SHARE_CHECK,),
    "wrong_length": (ROUND_MASKED_INPUT,),
    "garbled_share": (ROUND_UNMASKING,),
    "junk_share": (ROUND_UNMASKING,),
}


# --- configurations ----------------------------------------------------------------------


def valid_thresholds(n: int, mode: Mode, degree: int | None = None) -> tuple[int, int]:
    """The (lowest, highest) threshold the threat model allows: complete graph semi-honest
    t > n/2, active t > 2n/3; SecAgg+ (``degree`` k < n - 1) 2 <= t <= k + 1, active
    2t > k + 1. Raises ConfigurationError if ``mode`` is unknown."""
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {MODES}, got {mode!r}")
    if degree is None or degree >= n - 1:
        return default_threshold(n, mode), n
    holders = degree + 1
    # Semi-honest SecAgg+ accepts any t >= 2; default_threshold's majority is only a default.
    low = default_threshold(holders, mode, complete=False) if mode == ACTIVE else 2
    return low, holders


@st.composite
def protocol_configs(
    draw: st.DrawFn,
    *,
    min_clients: int = 2,
    max_clients: int = 10,
    modes: Sequence[Mode] = MODES,
    bits: SearchStrategy[int] | None = None,
    min_vector_length: int = 1,
    max_vector_length: int = 16,
    sparse: bool | None = None,
) -> ProtocolConfig:
    """Bonawitz / SecAgg+ configurations valid for their threat model.

    ``sparse`` True draws only SecAgg+ Harary graphs (degree 1 .. n - 2, with n * k even,
    so at least 4 clients), False only complete graphs, None both. Active configurations
    carry fresh verify keys whose signing keys are not kept: :class:`BonawitzTarget`
    registers new ones. The session id is drawn, so the graph is reproducible from the
    example. Raises ConfigurationError (at draw time) on an empty range.
    """
    if not 2 <= min_clients <= max_clients or not 1 <= min_vector_length <= max_vector_length:
        raise ConfigurationError("empty range of clients or vector lengths")
    if not modes:
        raise ConfigurationError("modes must not be empty")
    if sparse and max_clients < 4:
        raise ConfigurationError("a sparse graph needs at least 4 clients")
    n = draw(st.integers(max(min_clients, 4) if sparse else min_clients, max_clients))
    mode = draw(st.sampled_from(list(modes)))
    degrees = [k for k in range(1, n - 1) if (n * k) % 2 == 0]
    degree: int | None = None
    if sparse is not False and degrees and (sparse or draw(st.booleans())):
        degree = draw(st.sampled_from(degrees))
    low, high = valid_thresholds(n, mode, degree)
    threshold = draw(st.one_of(st.sampled_from([low, high]), st.integers(low, high)))
    width = draw(bits if bits is not None else st.sampled_from(BIT_WIDTHS))
    length = draw(st.integers(min_vector_length, max_vector_length))
    clients = list(range(1, n + 1))
    identities = None
    if mode == ACTIVE:
        identities = {c: key.verify_key for c, key in generate_identities(clients).items()}
    # The session id is public; drawing it (instead of os.urandom) makes the SecAgg+ graph,
    # which is permuted by a seed derived from it, part of the example, so hypothesis can
    # replay and shrink a failure (a random graph changes the message flow between replays).
    session_id = draw(st.binary(min_size=16, max_size=16))
    return ProtocolConfig.create(
        clients,
        threshold=threshold,
        bits=width,
        vector_length=length,
        mode=mode,
        degree=degree,
        identities=identities,
        session_id=session_id,
    )


def bonawitz_targets(**config_options: Any) -> SearchStrategy[BonawitzTarget]:
    """:func:`protocol_configs` (same options) wrapped in a :class:`BonawitzTarget`."""
    return protocol_configs(**config_options).map(BonawitzTarget)


_MODES = ("full", "balanced")  # threshold Paillier committee decryption modes


@st.composite
def threshold_he_targets(
    draw: st.DrawFn,
    *,
    min_clients: int = 2,
    max_clients: int = 6,
    bits: SearchStrategy[int] | None = None,
    max_vector_length: int = 4,
    key_bits: int = 512,
    decryption: SearchStrategy[str] | None = None,
) -> ThresholdHETarget:
    """Threshold-Paillier sessions: committee of 1..min(5, n) members, any t of it, any
    ``min_clients``, full or balanced committee decryption (``decryption`` draws the mode);
    a fresh dealer key of ``key_bits`` (test-only size) per example."""
    n = draw(st.integers(min_clients, max_clients))
    size = draw(st.integers(1, min(5, n)))
    clients = list(range(1, n + 1))
    committee = draw(st.permutations(clients))[:size]
    return ThresholdHETarget.paillier(
        clients,
        bits=draw(bits if bits is not None else st.sampled_from((1, 8, 16, 32))),
        vector_length=draw(st.integers(1, max_vector_length)),
        committee=sorted(committee),
        threshold=draw(st.integers(1, size)),
        min_clients=draw(st.integers(2, n)),
        key_bits=key_bits,
        decryption=draw(decryption if decryption is not None else st.sampled_from(_MODES)),
    )


# --- inputs ------------------------------------------------------------------------------


def _shape(setup: Any) -> tuple[tuple[int, ...], int, int]:
    try:
        return tuple(setup.clients), int(setup.bits), int(setup.vector_length)
    except AttributeError:
        raise ConfigurationError(
            "setup needs clients, bits and vector_length (a config or a target)"
        ) from None


@st.composite
def _vector(draw: st.DrawFn, length: int, low: int, high: int, bits: int) -> np.ndarray:
    pattern = draw(st.sampled_from(INPUT_PATTERNS))
    values = np.zeros(length, dtype=np.int64 if low < 0 else np.uint64)
    if pattern == "maximum":
        values[:] = draw(st.sampled_from([high, low])) if low < 0 else high
    elif pattern == "constant":
        values[:] = draw(st.integers(low, high))
    elif pattern == "sparse":
        for index, value in draw(
            st.lists(st.tuples(st.integers(0, length - 1), st.integers(low, high)), max_size=4)
        ):
            values[index] = value
    elif pattern == "random":
        # Seeded by hypothesis so that an example replays.
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))  # not-secret: test inputs
        values = rng.integers(low, high, size=length, dtype=values.dtype, endpoint=True)
    stored = values.astype(np.uint64)  # two's complement: negative values wrap mod 2^64
    if bits < 64:
        stored &= np.uint64((1 << bits) - 1)
    return stored.astype(dtype_for_bits(bits))


def client_inputs(
    setup: Any, *, headroom: Headroom = "unsigned"
) -> SearchStrategy[dict[int, np.ndarray]]:
    """One vector per client of ``setup`` in Z_(2^bits), in the storage dtype.

    ``headroom`` "unsigned": values in [0, (2^b - 1) // n], so the plain sum of all n
    never wraps; "signed": centered values in [-c, c] with c = (2^(b-1) - 1) // n, stored
    in two's complement; "none": the whole of Z_(2^b). Each vector follows a pattern of
    :data:`INPUT_PATTERNS` (zeros, the extreme value, a constant, a few spikes, seeded
    random values), which shrinks to zeros.
    """
    clients, bits, length = _shape(setup)
    n = len(clients)
    if headroom == "unsigned":
        low, high = 0, ((1 << bits) - 1) // n
    elif headroom == "signed":
        high = ((1 << (bits - 1)) - 1) // n
        low = -high
    elif headroom == "none":
        low, high = 0, (1 << bits) - 1
    else:
        raise ConfigurationError(f"unknown headroom {headroom!r}")
    vectors = st.tuples(*[_vector(length, low, high, bits) for _ in clients])
    return vectors.map(lambda drawn: dict(zip(clients, drawn, strict=True)))


# --- dropouts ----------------------------------------------------------------------------


def _model(setup: Any) -> DropoutModel:
    if isinstance(setup, DropoutModel):
        return setup
    if isinstance(setup, ProtocolConfig):
        return bonawitz_dropout_model(setup)
    model = getattr(setup, "dropout_model", None)
    if isinstance(model, DropoutModel):
        return model
    raise ConfigurationError("setup must be a ProtocolConfig, a target or a DropoutModel")


def _schedule(by_client: dict[int, str]) -> DropoutSchedule:
    by_round: dict[str, set[int]] = {}
    for client, round_name in by_client.items():
        by_round.setdefault(round_name, set()).add(client)
    return DropoutSchedule({r: frozenset(ids) for r, ids in by_round.items()})


@st.composite
def _random_dropouts(draw: st.DrawFn, model: DropoutModel) -> DropoutSchedule:
    # Three chances in four to stay: most clients finish, a few drop anywhere.
    choice = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(model.rounds))
    assignment = draw(st.lists(choice, min_size=len(model.clients), max_size=len(model.clients)))
    return _schedule({c: r for c, r in zip(model.clients, assignment, strict=True) if r})


@st.composite
def _near_threshold(draw: st.DrawFn, model: DropoutModel) -> DropoutSchedule:
    """Exactly ``needed - 1``, ``needed`` or ``needed + 1`` of a round's quorum remain."""
    rounds = [r for r in model.rounds if r in model.quorums]
    if not rounds:
        return DropoutSchedule()
    round_name = draw(st.sampled_from(rounds))
    quorum = model.quorums[round_name]
    remain = quorum.needed + draw(st.sampled_from([-1, 0, 1]))
    members = draw(st.permutations(sorted(quorum.members)))
    leaving = members[: max(0, len(members) - max(remain, 0))]
    earlier = model.rounds[: model.rounds.index(round_name) + 1]
    return _schedule({c: draw(st.sampled_from(earlier[::-1])) for c in leaving})


@st.composite
def _after_input(draw: st.DrawFn, model: DropoutModel) -> DropoutSchedule:
    """Everyone (or all but the last round's quorum, or one fewer) vanishes after sending
    its input: their inputs are in the sum, the server must still unmask it or abort."""
    later = model.rounds_after_input
    if not later:
        return DropoutSchedule()
    n = len(model.clients)
    quorum = model.quorums.get(later[-1])
    needed = quorum.needed if quorum is not None else n
    count = draw(st.sampled_from([n, max(n - needed, 0), max(n - needed + 1, 0)]))
    leaving = draw(st.permutations(list(model.clients)))[:count]
    return _schedule({c: draw(st.sampled_from(later)) for c in leaving})


@st.composite
def _neighbourhood(draw: st.DrawFn, model: DropoutModel) -> DropoutSchedule:
    """A client's whole neighbourhood (with or without the client) vanishes in one round."""
    if not model.neighbourhoods:
        return DropoutSchedule()
    centre = draw(st.sampled_from(sorted(model.neighbourhoods)))
    group = set(model.neighbourhoods[centre])
    if draw(st.booleans()):
        group.add(centre)
    round_name = draw(st.sampled_from(model.rounds))
    return _schedule(dict.fromkeys(sorted(group), round_name))


def dropout_schedules(
    setup: Any, *, kinds: Sequence[str] = DROPOUT_KINDS
) -> SearchStrategy[DropoutSchedule]:
    """Dropout schedules for ``setup``, mixing the ``kinds`` of :data:`DROPOUT_KINDS`:
    none, random, near the threshold of a round (one below, at, one above), after the
    input round (everyone, or all but the quorum), a whole neighbourhood at once.
    Raises ConfigurationError on an unknown kind."""
    model = _model(setup)
    unknown = set(kinds) - set(DROPOUT_KINDS)
    if unknown or not kinds:
        raise ConfigurationError(f"unknown or no dropout kinds: {sorted(unknown)}")
    builders: dict[str, SearchStrategy[DropoutSchedule]] = {
        "none": st.just(DropoutSchedule()),
        "random": _random_dropouts(model),
        "near_threshold": _near_threshold(model),
        "after_input": _after_input(model),
        "neighbourhood": _neighbourhood(model),
    }
    return st.one_of(*[builders[k] for k in DROPOUT_KINDS if k in kinds])


# --- misbehaviour ------------------------------------------------------------------------


@st.composite
def server_attacks(
    draw: st.DrawFn, setup: Any, *, kinds: Sequence[str] = SERVER_ATTACK_KINDS
) -> ServerAttack:
    """One malicious-server move against some targets of ``setup``'s clients. Kinds whose
    round ``setup`` does not have (e.g. the consistency check in semi-honest mode) are left
    out. Raises ConfigurationError when no kind applies."""
    model = _model(setup)
    usable = [k for k in kinds if _ATTACK_ROUNDS.get(k, model.rounds[0]) in model.rounds]
    if not usable:
        raise ConfigurationError(f"no attack of {list(kinds)} applies to rounds {model.rounds}")
    kind = draw(st.sampled_from(usable))
    round_name = _ATTACK_ROUNDS.get(kind) or draw(st.sampled_from(model.rounds))
    targets = draw(st.frozensets(st.sampled_from(model.clients), min_size=1))
    victim = draw(st.none() | st.sampled_from(model.clients))
    return ServerAttack(kind, round_name, targets, victim)


def client_faults(
    setup: Any,
    *,
    kinds: Sequence[str] = CLIENT_FAULT_KINDS,
    max_faulty: int = 2,
    min_faulty: int = 0,
) -> SearchStrategy[list[ClientFault]]:
    """``min_faulty`` to ``max_faulty`` misbehaving clients of ``setup``, one fault each, in
    any round. (The Bonawitz-specific kinds bite only in their round, e.g. ``garbled_share``
    in Unmasking; elsewhere they change nothing.) Raises ConfigurationError on no kinds or
    an empty range."""
    model = _model(setup)
    if not kinds:
        raise ConfigurationError("kinds must not be empty")
    if not 0 <= min_faulty <= max_faulty or min_faulty > len(model.clients):
        raise ConfigurationError(f"cannot draw {min_faulty}..{max_faulty} faulty clients")

    @st.composite
    def fault(draw: st.DrawFn) -> ClientFault:
        kind = draw(st.sampled_from(list(kinds)))
        # A protocol-specific kind goes to a round where it bites, when the setup has one.
        rounds = [r for r in _FAULT_ROUNDS.get(kind, ()) if r in model.rounds] or model.rounds
        client = draw(st.sampled_from(model.clients))
        return ClientFault(client, draw(st.sampled_from(rounds)), kind)

    return st.lists(fault(), min_size=min_faulty, max_size=max_faulty, unique_by=lambda f: f.client)


def delivery_orders() -> SearchStrategy[Any]:
    """``None`` (oldest message first) or a hypothesis-controlled ``random.Random`` that
    picks which in-flight message is delivered next: reorders across clients, rounds and
    directions (pass it as ``order=`` to :func:`secagg.testing.harness.run`)."""
    return st.none() | st.randoms(use_true_random=False)
