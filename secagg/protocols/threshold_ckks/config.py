"""The public parameters of one threshold-CKKS session: :class:`ThresholdCkksConfig`.

Every party (server, clients, committee members) holds the same copy; nothing in it is
secret, and nobody deals keys: the committee generates the collective key in the session's
first three rounds. It names the clients, the committee and its threshold ``t``, the
fewest summands a member agrees to decrypt, and the scheme's parameters
(:class:`~secagg.he.threshold_ckks.ThresholdCkksParameters`: chosen for the committee size,
the number of clients and the bit width unless given).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from secagg.errors import ConfigurationError
from secagg.he.threshold_ckks import (
    MAX_COMMITTEE,
    Committee,
    ThresholdCkksParameters,
    derive_crs_seed,
)
from secagg.protocols.limits import (
    MAX_VECTOR_LENGTH,
    check_client_ids,
    check_session_id,
    is_int,
)
from secagg.ring import check_bits

__all__ = ["DEFAULT_COMMITTEE", "DEGREES", "MAX_BITS", "ThresholdCkksConfig"]

DEFAULT_COMMITTEE = 5
"""Default committee size: the first min(5, n) clients."""
DEGREES = (8192, 16384, 32768)
"""Ring degrees tried in turn when the parameters are chosen."""
MAX_BITS = 60
"""The widest plaintext the scheme takes (its body holds bits + log2(n) + 3 <= 64 bits)."""


def choose_parameters(committee: int, clients: int, bits: int) -> ThresholdCkksParameters:
    """The smallest ring (then the fewest limbs) whose noise budget fits a committee of
    ``committee`` members, ``clients`` summands and ``bits``-bit values. ConfigurationError
    when none does (too many members or bits)."""
    if bits > MAX_BITS:
        raise ConfigurationError(f"threshold CKKS takes at most {MAX_BITS}-bit values")
    last: ConfigurationError | None = None
    for degree in DEGREES:
        try:
            return ThresholdCkksParameters.choose(
                committee_size=committee, max_summands=clients, plaintext_bits=bits, degree=degree
            )
        except ConfigurationError as exc:
            last = exc
    raise ConfigurationError(f"no threshold CKKS parameters fit: {last}")


@dataclass(frozen=True)
class ThresholdCkksConfig:
    """Public parameters of one session; every party holds the same copy. No secret in it.

    ``committee`` lists the decryption committee's client ids (at most
    :data:`~secagg.he.threshold_ckks.MAX_COMMITTEE`); any ``threshold`` of them decrypt,
    fewer learn nothing. ``min_clients`` is the fewest summands a member agrees to decrypt
    (at least 2). ``params`` defaults to :func:`choose_parameters` for this committee, the
    number of clients and ``bits``; given ones must match them. Raises ConfigurationError
    on anything inconsistent.
    """

    session_id: bytes
    clients: tuple[int, ...]
    bits: int
    vector_length: int
    committee: tuple[int, ...]
    threshold: int
    min_clients: int = 2
    params: ThresholdCkksParameters | None = None

    def __post_init__(self) -> None:
        check_session_id(self.session_id)
        clients = tuple(sorted(check_client_ids(self.clients, "clients")))
        if len(clients) < 2:
            raise ConfigurationError("an aggregation needs at least two clients")
        object.__setattr__(self, "clients", clients)
        committee = tuple(sorted(check_client_ids(self.committee, "committee")))
        if not committee or not set(committee) <= set(clients):
            raise ConfigurationError("the committee must be a non-empty subset of the clients")
        if len(committee) > MAX_COMMITTEE:
            raise ConfigurationError(f"at most {MAX_COMMITTEE} committee members")
        object.__setattr__(self, "committee", committee)
        check_bits(self.bits)
        for name, value, low, high in (
            ("vector_length", self.vector_length, 1, MAX_VECTOR_LENGTH),
            ("threshold", self.threshold, 1, len(committee)),
            ("min_clients", self.min_clients, 2, len(clients)),
        ):
            if not is_int(value) or not low <= value <= high:
                raise ConfigurationError(f"{name} must be an int in [{low}, {high}]")
            object.__setattr__(self, name, int(value))
        params = self.params
        if params is None:
            params = choose_parameters(len(committee), len(clients), self.bits)
            object.__setattr__(self, "params", params)
        elif not isinstance(params, ThresholdCkksParameters):
            raise ConfigurationError("params must be ThresholdCkksParameters")
        elif (
            params.plaintext_bits != self.bits
            or params.committee_size < len(committee)
            or params.max_summands < len(clients)
        ):
            raise ConfigurationError(
                "params must have plaintext_bits = bits, committee_size >= the committee and "
                "max_summands >= the clients"
            )

    @classmethod
    def create(
        cls,
        clients: Sequence[int],
        *,
        bits: int,
        vector_length: int,
        committee: Sequence[int] | None = None,
        threshold: int | None = None,
        min_clients: int = 2,
        session_id: bytes | None = None,
        params: ThresholdCkksParameters | None = None,
    ) -> ThresholdCkksConfig:
        """A config with the defaults: a fresh random session id, the first
        min(5, n) clients as the committee, a majority of it as the threshold."""
        ordered = sorted(int(c) for c in clients)
        members = list(committee) if committee is not None else ordered[:DEFAULT_COMMITTEE]
        return cls(
            session_id=os.urandom(16) if session_id is None else session_id,
            clients=tuple(ordered),
            bits=bits,
            vector_length=vector_length,
            committee=tuple(members),
            threshold=threshold if threshold is not None else len(members) // 2 + 1,
            min_clients=min_clients,
            params=params,
        )

    @property
    def scheme(self) -> ThresholdCkksParameters:
        """The scheme's parameters (always set after construction)."""
        assert self.params is not None
        return self.params

    @cached_property
    def members(self) -> Committee:
        """The committee as the scheme sees it (ids and threshold)."""
        return Committee(self.committee, self.threshold)

    @property
    def crs_seed(self) -> bytes:
        """The public seed of the common random polynomial, derived from the session id."""
        return derive_crs_seed(self.session_id)

    @property
    def request_id(self) -> bytes:
        """What a member's one decryption of this session is filed under."""
        return b"secagg/threshold-ckks/decryption/" + self.session_id

    @property
    def n(self) -> int:
        return len(self.clients)

    def __repr__(self) -> str:
        p = self.scheme
        return (
            f"ThresholdCkksConfig(session_id={self.session_id.hex()[:16]}..., n={self.n}, "
            f"bits={self.bits}, vector_length={self.vector_length}, "
            f"committee={len(self.committee)}, threshold={self.threshold}, "
            f"N={p.degree}, limbs={p.limbs})"
        )
