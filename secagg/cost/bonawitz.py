"""Analytic cost model of the Bonawitz / SecAgg+ protocol as :mod:`secagg.protocols` runs it.

Theory of operation
-------------------
:func:`bonawitz_costs` predicts, without running anything, the bytes every round moves and
the cryptographic operations every party performs. The byte counts follow the wire format
of :mod:`secagg.protocols.bonawitz.messages` (version :data:`WIRE_VERSION`) field by field: each
message is a msgpack array ``[version, type, sender, recipient, session_id, *fields]``
whose integers, byte strings and arrays take the sizes of the msgpack specification
(:mod:`secagg.cost.common`); a dealer sends each holder two AES-GCM boxes of fixed size
(:mod:`secagg.protocols.bonawitz.bundles`: 57 bytes for the self-mask share with its two
blinding values, 51 for the mask-key share), which the server stores and forwards in
ShareCheck, where each holder answers 6 bytes of check values per dealer; a revealed
share is one compact share (:data:`secagg.shamir.LIMB_SHARE_BYTES` bytes) with the 16-byte
key of its box. The model is the honest run: no complaint, no dispute or fallback wave
(those only happen when a party misbehaves, and cost a proof or a key per fault).

The setting: client ids ``1 .. n`` (how the simulator and examples number them), the
server id 0, a ``session_id_bytes``-byte session id, a ``degree``-regular graph
(complete when ``degree`` is ``None`` or ``>= n - 1``), and ``dropouts`` clients, a uniformly
random set, that vanish after ShareCheck and before sending their masked input (the case
that costs the server most: it must rebuild their pairwise masks; these clients receive
nothing from round ``masked_input`` on). Everyone else survives, and every neighbourhood
keeps at least ``threshold`` survivors (otherwise the real protocol prunes or aborts).

Exactness: with no dropouts every byte figure is exact (a server total is an integer).
With dropouts the figures are expectations over the random dropout set, still exact in
expectation: sums of id sizes use the probability that an ordered edge joins two survivors
(or a survivor and a dropout), and msgpack array headers, which grow at 16 entries, use
the hypergeometric law of a survivor's number of dropped neighbours. When all ids are
below 128 and every list has at most 15 entries, the figures are exact for every dropout
set, except in active mode on a sparse graph, where the number of consistency signatures
forwarded in Unmasking depends on how many dropouts neighbour each other.
``tests/cost/test_bonawitz.py`` checks the figures against recorded runs of the protocol.

Directions follow :mod:`secagg.sim.ledger`: ``bytes_up`` travels client -> server,
``bytes_down`` server -> client; the server's figures are the totals over all clients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from secagg.cost.common import (
    array_size,
    bin_size,
    check_int,
    header_size,
    hypergeometric_mean,
    id_size_sum,
    operations_of,
    round_entry,
    totals_of,
    uint_size,
)
from secagg.errors import ConfigurationError
from secagg.protocols.bonawitz.bundles import (
    BOX_KEY_BYTES,
    MASK_KEY_BOX_BYTES,
    SELF_MASK_BOX_BYTES,
)
from secagg.protocols.bonawitz.dealing import CHECK_BYTES, NONCE_BYTES
from secagg.protocols.bonawitz.messages import (
    KEY_BYTES,
    ROUND_ADVERTISE_KEYS,
    ROUND_CONSISTENCY_CHECK,
    ROUND_MASKED_INPUT,
    ROUND_SHARE_CHECK,
    ROUND_SHARE_KEYS,
    ROUND_UNMASKING,
    SIGNATURE_BYTES,
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyCheck,
    ConsistencyCheckRequest,
    MaskedInput,
    MaskedInputRequest,
    ShareCheck,
    ShareCheckRequest,
    ShareKeys,
    ShareKeysRequest,
    UnmaskingRequest,
    UnmaskingResponse,
)
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH, SESSION_ID_BYTES
from secagg.protocols.wire import ProtocolMessage
from secagg.ring import packed_size
from secagg.shamir import LIMB_SHARE_BYTES

__all__ = ["bonawitz_costs"]


def bonawitz_costs(
    n: int,
    m: int,
    bits: int,
    threshold: int,
    degree: int | None = None,
    dropouts: int = 0,
    *,
    active: bool = False,
    session_id_bytes: int = 16,
) -> dict[str, Any]:
    """Per-round, per-party bytes and operation counts of one Bonawitz / SecAgg+ session.

    ``n`` clients (ids ``1..n``), vectors of ``m`` values of ``bits`` bits, Shamir
    threshold ``threshold`` over each client's ``k + 1`` share holders (its ``k =
    degree`` neighbours and itself; ``degree`` ``None`` means the complete graph,
    ``k = n - 1``), ``dropouts`` clients lost between ShareCheck and MaskedInput, and
    ``active`` for the active-security mode (signatures and the consistency check).
    See the module docstring for the setting and in what sense the figures are exact.

    Returns a JSON-ready dict::

        {"parameters": {...},
         "rounds": {round name: {"clients": senders this round,
                                  "client_bytes_up": per sending client (mean),
                                  "client_bytes_down": per receiving client (mean),
                                  "server_bytes_up": total received by the server,
                                  "server_bytes_down": total sent by the server,
                                  "client_ops": {...}, "server_ops": {...}}},
         "totals": {"client_bytes_up", "client_bytes_down" (a surviving client, whole run),
                    "server_bytes_up", "server_bytes_down", "expansion"},
         "operations": {"client": {...} (a surviving client), "server": {...}}}

    Operation names: ``key_generations`` (X25519 key pairs), ``key_agreements`` (X25519
    exchanges, with HKDF when a key is derived), ``shamir_share_evaluations`` (one share of
    one 32-byte secret for one holder), ``shamir_reconstructions`` (one secret from
    ``threshold`` shares), ``aead_seals`` / ``aead_opens`` (AES-GCM share boxes),
    ``prg_expansions`` and ``prg_elements`` (mask vectors and their total length),
    ``hashes`` (SHA-256 commitments), ``signatures`` / ``signature_verifications``
    (Ed25519, active mode), ``vector_additions`` (length-``m`` additions on the server).
    ``expansion`` is a surviving client's total traffic (up and down) over its packed
    input (``ceil(m * bits / 8)`` bytes), the factor Bonawitz et al. report.

    Raises ConfigurationError: a non-int argument, ``n < 2``, ``m`` or ``bits`` out of
    range, ``degree`` below 1, ``threshold`` outside ``[1, k + 1]``, ``dropouts`` outside
    ``[0, n - threshold]``, or a session id length outside ``[16, 64]``.
    """
    n = check_int("n", n, 2, MAX_CLIENT_ID)
    m = check_int("m", m, 1, MAX_VECTOR_LENGTH)
    bits = check_int("bits", bits, 1, 64)
    k = n - 1 if degree is None else check_int("degree", degree, 1, 2**63)
    k = min(k, n - 1)
    threshold = check_int("threshold", threshold, 1, k + 1)
    dropouts = check_int("dropouts", dropouts, 0, n - threshold)
    sid = check_int("session_id_bytes", session_id_bytes, *SESSION_ID_BYTES)
    if not isinstance(active, bool):
        raise ConfigurationError("active must be a bool")

    alive = n - dropouts
    ids = id_size_sum(n)  # S: total msgpack size of all client ids
    ids_alive = ids * alive / n  # E[sum of the survivors' id sizes]
    # Ordered edges (u, v) whose both ends survive / whose u survives and v dropped.
    edges_both_alive = k * ids * alive * (alive - 1) / (n * (n - 1))
    edges_alive_dropped = k * ids * alive * dropouts / (n * (n - 1))
    edges_from_alive = k * ids * alive / n  # sum over u alive, v in N(u), of |v|

    def header(message_type: type[ProtocolMessage]) -> int:
        fields_count = len(dataclasses.fields(message_type)) - 3  # not sender/recipient/sid
        return header_size(message_type, fields_count, sid)

    signature = bin_size(SIGNATURE_BYTES if active else 0)
    proof = bin_size(SIGNATURE_BYTES if active else 0)  # forwarded key proofs: active only
    key = bin_size(KEY_BYTES)
    share = bin_size(LIMB_SHARE_BYTES)
    # Both boxes of a (dealer, holder) pair and the dealer's signature over them: the same
    # size for every pair (the ids they belong to are bound by the keys, not carried).
    box_entry = (
        array_size(4) + bin_size(SELF_MASK_BOX_BYTES) + bin_size(MASK_KEY_BOX_BYTES) + signature
    )  # + the peer's id
    holders = k + 1  # a dealer deals to its neighbours and itself
    # A survivor's number of dropped neighbours X ~ HG(n - 1, dropouts, k).
    dropped_mean = k * dropouts / (n - 1)

    def expected(fn: Callable[[int], int]) -> float:
        return hypergeometric_mean(fn, n - 1, dropouts, k)

    rounds: dict[str, dict[str, Any]] = {}

    def add_round(
        name: str,
        senders: int,
        receivers: int,
        up: float,
        down: float,
        client_ops: dict[str, float],
        server_ops: dict[str, float],
    ) -> None:
        rounds[name] = round_entry(senders, receivers, up, down, client_ops, server_ops)

    # Round 0: AdvertiseKeys (everyone): the nonce commitment down; two keys, the self-mask
    # commitment, two key proofs and (active) the identity's signature up.
    down: float = n * (header(AdvertiseKeysRequest) + key) + ids
    up: float = (
        n * (header(AdvertiseKeys) + 3 * key + 2 * bin_size(SIGNATURE_BYTES) + signature) + ids
    )
    add_round(
        ROUND_ADVERTISE_KEYS,
        n,
        n,
        up,
        down,
        {"key_generations": 2, "hashes": 1, "signatures": 2 + int(active)},
        {"key_agreements": 2 * n, "signature_verifications": (3 if active else 2) * n},
    )

    # Round 1: ShareKeys (everyone; nobody has dropped yet). Holder ids: k * S + S.
    peer_entry = array_size(7) + 3 * key + signature + 2 * proof  # + the peer's id
    down = n * (header(ShareKeysRequest) + array_size(k) + k * peer_entry)
    down += ids + k * ids
    up = n * (header(ShareKeys) + array_size(holders) + holders * box_entry)
    up += ids + (k + 1) * ids
    add_round(
        ROUND_SHARE_KEYS,
        n,
        n,
        up,
        down,
        {
            "key_agreements": holders,
            "shamir_share_evaluations": 2 * holders,
            "aead_seals": 2 * holders,
            "signatures": holders if active else 0,
            "signature_verifications": k if active else 0,
        },
        {},
    )

    # Round 2: ShareCheck (everyone): the server forwards the boxes dealt to each holder
    # with the nonce; each holder answers the check values of every dealer.
    down = n * (header(ShareCheckRequest) + bin_size(NONCE_BYTES) + array_size(holders))
    down += n * holders * box_entry + ids + (k + 1) * ids
    up = n * (header(ShareCheck) + bin_size(CHECK_BYTES * holders) + 2 * array_size(0)) + ids
    add_round(
        ROUND_SHARE_CHECK,
        n,
        n,
        up,
        down,
        {"aead_opens": 2 * holders, "hashes": 1},
        {},
    )

    # Round 3: MaskedInputCollection (survivors only: the dropouts are gone). Each is told
    # the k neighbours to mask with (every neighbour passed ShareCheck).
    down = alive * (header(MaskedInputRequest) + array_size(k))
    down += ids_alive + edges_from_alive
    payload = packed_size(m, bits)
    up = alive * (header(MaskedInput) + uint_size(bits) + uint_size(m) + bin_size(payload))
    up += ids_alive
    add_round(
        ROUND_MASKED_INPUT,
        alive,
        alive,
        up,
        down,
        {
            "key_agreements": k,
            "prg_expansions": k + 1,
            "prg_elements": (k + 1) * m,
        },
        {"vector_additions": alive},
    )

    # Round 4 (active mode): ConsistencyCheck, the survivor list to every survivor.
    if active:
        down = alive * (header(ConsistencyCheckRequest) + array_size(alive))
        down += ids_alive + alive * ids_alive
        up = alive * (header(ConsistencyCheck) + bin_size(SIGNATURE_BYTES)) + ids_alive
        add_round(
            ROUND_CONSISTENCY_CHECK,
            alive,
            alive,
            up,
            down,
            {"signatures": 1},
            {"signature_verifications": alive},
        )

    # Round 5: Unmasking. Survivor u is asked about its surviving holders (itself and
    # k - X neighbours), its X dropped neighbours, and (active) its k - X surviving
    # neighbours' signatures; it answers with one share and its box key per owner asked.
    down = alive * header(UnmaskingRequest)
    down += alive * expected(lambda x: array_size(k + 1 - x) + array_size(x))
    down += ids_alive + ids_alive + edges_both_alive + edges_alive_dropped
    if active:
        signature_entry = array_size(2) + bin_size(SIGNATURE_BYTES)  # + the signer's id
        down += alive * expected(lambda x: array_size(k - x))
        down += alive * (k - dropped_mean) * signature_entry + edges_both_alive
    else:
        down += alive * array_size(0)
    revealed_entry = array_size(3) + share + bin_size(BOX_KEY_BYTES)  # + the owner's id
    up = alive * header(UnmaskingResponse)
    up += alive * expected(lambda x: array_size(k + 1 - x) + array_size(x))
    up += alive * (k + 1) * revealed_entry
    up += ids_alive + ids_alive + edges_both_alive + edges_alive_dropped
    # Server: for each dropped client, one agreement and one PRG per surviving neighbour.
    pairwise = dropouts * k * alive / (n - 1)
    add_round(
        ROUND_UNMASKING,
        alive,
        alive,
        up,
        down,
        {"signature_verifications": (k - dropped_mean) if active else 0},
        {
            "shamir_reconstructions": n,
            "hashes": alive,
            "key_generations": dropouts,  # rebuild s_v^SK's public key to verify it
            "key_agreements": pairwise,
            "prg_expansions": alive + pairwise,
            "prg_elements": (alive + pairwise) * m,
        },
    )

    return {
        "parameters": {
            "n": n,
            "m": m,
            "bits": bits,
            "threshold": threshold,
            "degree": k,
            "complete": k == n - 1,
            "dropouts": dropouts,
            "active": active,
            "session_id_bytes": sid,
        },
        "rounds": rounds,
        "totals": totals_of(rounds, payload),
        "operations": operations_of(rounds),
    }
