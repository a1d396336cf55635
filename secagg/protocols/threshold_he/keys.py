"""Session setup: the trusted dealer (threshold Paillier) and the key holder (CKKS).

Each function returns the public :class:`ThresholdHEConfig` every party receives, plus the
secret material that travels over private channels only: one key share per committee
member (threshold Paillier; the dealer forgets them afterwards) or the secret CKKS context
for the clients (never for the server). TenSEAL is imported only when CKKS is set up.

Who must be trusted. The threshold-Paillier dealer sees the whole secret key while it deals:
whoever runs :func:`setup_threshold_paillier` can decrypt every upload of the session. It
must never be the aggregator: run it in an offline key ceremony, or on one committee member
trusted not to collude with the server. The API keeps the two parts apart: the result is a
:class:`ThresholdPaillierSetup` of the public ``config`` (for the server and every client:
it holds no share) and the :class:`MemberKeyShares` (one per member, sent privately; they
refuse pickling and printing), and :class:`~.server.ThresholdHEServer` refuses to start in a
process that still holds any share of its key, unless told it runs a simulation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from secagg.he.threshold_paillier import KeyShare, deal_threshold_keys
from secagg.protocols.threshold_he.config import (
    DEFAULT_COMMITTEE,
    DEFAULT_DECRYPTION,
    ThresholdHEConfig,
)
from secagg.secret import SecretHolder

if TYPE_CHECKING:
    from secagg.he.ckks import CkksContext, CkksParameters

__all__ = ["MemberKeyShares", "ThresholdPaillierSetup", "setup_ckks", "setup_threshold_paillier"]


class MemberKeyShares(
    SecretHolder, Mapping[int, KeyShare], export="each member's KeyShare, handed over privately"
):
    """The dealer's secret output: committee member id -> its :class:`KeyShare`.

    Hand each member its own share over a private channel, then drop this object (the
    aggregator's process must hold none: see the module docstring). Read-only; never
    printed (the repr names members and the key's fingerprint), never pickled.
    """

    __slots__ = ("_shares",)

    def __init__(self, shares: Mapping[int, KeyShare]) -> None:
        self._shares = dict(shares)

    def __getitem__(self, member: int) -> KeyShare:
        return self._shares[member]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shares)

    def __len__(self) -> int:
        return len(self._shares)

    def __repr__(self) -> str:
        keys = {share.public_key.fingerprint for share in self._shares.values()}
        return f"MemberKeyShares(members={sorted(self._shares)}, key={', '.join(sorted(keys))})"



class ThresholdPaillierSetup(NamedTuple):
    """What the dealer produces: the public ``config`` (server and every client) and the
    secret ``member_shares`` (each member its own, privately). Unpacks as
    ``config, shares = setup_threshold_paillier(...)``."""

    config: ThresholdHEConfig
    member_shares: MemberKeyShares


def setup_threshold_paillier(
    clients: Sequence[int],
    *,
    bits: int,
    vector_length: int,
    committee: Sequence[int] | None = None,
    threshold: int | None = None,
    key_bits: int = 2048,
    guard_bits: int = 1,
    min_clients: int = 2,
    session_id: bytes | None = None,
    safe_primes: tuple[int, int] | None = None,
    decryption: str = DEFAULT_DECRYPTION,
) -> ThresholdPaillierSetup:
    """Trusted-dealer setup: the public config and each committee member's key share.

    TRUST: the dealer sees the whole secret key (module docstring): never run this on the
    aggregator. ``committee`` defaults to the first min(5, n) clients and ``threshold`` to
    a majority of it; ``decryption`` is the committee's mode (``"full"`` or
    ``"balanced"``, see :class:`ThresholdHEConfig`). Returns the public config and the
    :class:`MemberKeyShares` (client id -> KeyShare), which go to their holders over
    private channels; the dealer forgets them. Raises ConfigurationError / HeadroomError as
    the config does.
    """
    ordered = sorted(int(c) for c in clients)
    members = list(committee) if committee is not None else ordered[:DEFAULT_COMMITTEE]
    t = threshold if threshold is not None else len(members) // 2 + 1
    public_key, shares = deal_threshold_keys(
        key_bits, threshold=t, holders=len(members), safe_primes=safe_primes
    )
    config = ThresholdHEConfig(
        session_id=os.urandom(16) if session_id is None else session_id,
        clients=tuple(ordered),
        bits=bits,
        vector_length=vector_length,
        committee=tuple(members),
        threshold=t,
        min_clients=min_clients,
        public_key=public_key,
        guard_bits=guard_bits,
        decryption=decryption,
    )
    member_shares = MemberKeyShares(
        {member: shares[i] for i, member in enumerate(config.committee)}
    )
    return ThresholdPaillierSetup(config, member_shares)


def setup_ckks(
    clients: Sequence[int],
    *,
    bits: int,
    vector_length: int,
    committee: Sequence[int] | None = None,
    threshold: int = 1,
    min_clients: int = 2,
    session_id: bytes | None = None,
    parameters: CkksParameters | None = None,
) -> tuple[ThresholdHEConfig, CkksContext]:
    """Key-holder setup for CKKS: the public config and the SECRET context for the clients.

    The secret context goes to the clients only (never to the server); ``committee``
    (default: the first min(5, n) clients) are the key holders the server asks to decrypt.
    """
    from secagg.he.ckks import CkksContext  # TenSEAL loads only for a CKKS session

    ordered = sorted(int(c) for c in clients)
    secret = CkksContext.generate(parameters)
    config = ThresholdHEConfig(
        session_id=os.urandom(16) if session_id is None else session_id,
        clients=tuple(ordered),
        bits=bits,
        vector_length=vector_length,
        committee=tuple(committee) if committee is not None else tuple(ordered[:DEFAULT_COMMITTEE]),
        threshold=threshold,
        min_clients=min_clients,
        ckks=secret.public(),
    )
    return config, secret
