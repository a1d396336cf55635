"""Session setup: the trusted dealer (threshold Paillier) and the key holder (CKKS).

Each function returns the public :class:`ThresholdHEConfig` every party receives, plus the
secret material that travels over private channels only: one key share per committee
member (threshold Paillier; the dealer forgets them afterwards) or the secret CKKS context
for the clients (never for the server). TenSEAL is imported only when CKKS is set up.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from secagg.he.threshold_paillier import KeyShare, deal_threshold_keys
from secagg.protocols.threshold_he.config import (
    DEFAULT_COMMITTEE,
    DEFAULT_DECRYPTION,
    ThresholdHEConfig,
)

if TYPE_CHECKING:
    from secagg.he.ckks import CkksContext, CkksParameters

__all__ = ["setup_ckks", "setup_threshold_paillier"]


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
) -> tuple[ThresholdHEConfig, dict[int, KeyShare]]:
    """Trusted-dealer setup: the public config and each committee member's key share.

    ``committee`` defaults to the first min(5, n) clients and ``threshold`` to a majority
    of it; ``decryption`` is the committee's mode (``"full"`` or ``"balanced"``, see
    :class:`ThresholdHEConfig`). The shares (client id -> KeyShare) go to their holders
    over private channels; the dealer forgets them. Raises ConfigurationError /
    HeadroomError as the config does.
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
    return config, {member: shares[i] for i, member in enumerate(config.committee)}


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
