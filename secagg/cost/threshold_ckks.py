"""Analytic cost model of the threshold-CKKS protocol (:mod:`secagg.protocols.threshold_ckks`).

Theory of operation
-------------------
:func:`threshold_ckks_costs` predicts, without running anything, the bytes each of the five
rounds moves and the operations each party performs, in the JSON-ready shape of
:func:`secagg.cost.bonawitz.bonawitz_costs`. Bytes follow the wire format field by field:
a message is the msgpack array ``[version, type, sender, recipient, session_id, *fields]``
of :mod:`secagg.protocols.threshold_ckks.messages`; the records inside (public key shares,
sealed deliveries, the public key, ciphertexts, masks, decryption shares) have the exact
sizes their ``encoded_size`` functions give (:mod:`secagg.he.threshold_ckks`), a sealed
delivery adding :data:`secagg.channel.OVERHEAD_BYTES`.

The setting: clients ``1..n``, the committee the clients ``1..committee`` (the protocol's
default, the first ones), no member drops during the key setup, and ``dropouts`` clients
vanish when the input round starts (they receive nothing more; members among them are key
holders that never answer the decryption request). Every figure is exact for a given set
of dropped clients (``dropped=``, what the model of a finished run passes); with only a
count it is the expectation over a uniformly random set of that size (ids at or above 128
take more bytes), exact when nobody drops.

Operation names (unit costs: :func:`calibrate_threshold_ckks`): ``tckks_key_generations``
(a member's setup message: its key, error and the Shamir evaluation of its secret at every
member), ``key_agreements`` (X25519 + HKDF), ``aead_seals``, ``aead_opens`` (one sealed
delivery), ``tckks_key_share_sums`` (a member sums its deliveries), ``tckks_encryptions``,
``tckks_decryption_shares``, ``tckks_ciphertext_decodes``, ``tckks_additions``,
``tckks_share_decodes``, ``tckks_combinations`` (t shares to the sum) and
``tckks_consistency_checks`` (one further share checked against them), and the encodings
the rounds need (``tckks_ciphertext_encodes``, ``tckks_mask_encodes``,
``tckks_mask_decodes``, ``tckks_share_encodes``): each per chunk of ``N`` values; and once
per message ``tckks_key_decodes`` (a public key share), ``tckks_public_key_builds`` (the
server's sum and its encoding) and ``tckks_public_key_loads`` (a client decodes the key
and expands the common random polynomial).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from secagg.channel import OVERHEAD_BYTES
from secagg.cost.common import (
    array_size,
    bin_size,
    check_int,
    header_size,
    operations_of,
    round_entry,
    totals_of,
    uint_size,
)
from secagg.errors import ConfigurationError
from secagg.he.threshold_ckks import (
    Ciphertext,
    CiphertextMask,
    DecryptionShare,
    KeyShareDelivery,
    PublicKey,
    PublicKeyShare,
    ThresholdCkksParameters,
)
from secagg.keys import KEY_BYTES
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH, SESSION_ID_BYTES
from secagg.protocols.threshold_ckks import messages as wire
from secagg.protocols.threshold_ckks.config import DEFAULT_COMMITTEE, choose_parameters
from secagg.ring import packed_size

__all__ = ["threshold_ckks_costs"]


class _Alive:
    """Sums over the clients still there in the input round: exact for a given dropped
    set, else expectations over a uniformly random set of ``dropouts`` clients."""

    def __init__(self, n: int, committee: int, dropouts: int, dropped: frozenset[int] | None):
        self.n, self.committee, self.dropped = n, committee, dropped
        self.count = n - dropouts
        self.p1 = self.count / n  # P(a given client stays)
        self.p2 = self.count * (self.count - 1) / (n * (n - 1))  # P(two given clients stay)

    def alive(self, client: int) -> float:
        if self.dropped is not None:
            return 0.0 if client in self.dropped else 1.0
        return self.p1

    def members(self) -> float:
        """The members still there."""
        return sum(self.alive(m) for m in range(1, self.committee + 1))

    def sum_over(self, size: Callable[[int], int]) -> float:
        """``sum_(alive clients a) size(a)``."""
        return sum(size(a) * self.alive(a) for a in range(1, self.n + 1))

    def members_times_ids(self) -> float:
        """``sum_(alive members j) sum_(alive clients a) uint_size(a)``."""
        if self.dropped is not None:
            ids = self.sum_over(uint_size)
            return self.members() * ids
        total = sum(uint_size(a) for a in range(1, self.n + 1))
        committee = sum(uint_size(m) for m in range(1, self.committee + 1))
        return self.p1 * committee + self.p2 * (self.committee * total - committee)


def threshold_ckks_costs(
    n: int,
    m: int,
    bits: int,
    committee: int | None = None,
    threshold: int | None = None,
    dropouts: int = 0,
    *,
    dropped: Collection[int] | None = None,
    params: ThresholdCkksParameters | None = None,
    session_id_bytes: int = 16,
) -> dict[str, Any]:
    """Per-round, per-party bytes and operation counts of one threshold-CKKS session.

    ``n`` clients, vectors of ``m`` values of ``bits`` bits, a committee of ``committee``
    members (default ``min(5, n)``) with threshold ``threshold`` (default a majority),
    ``dropouts`` clients lost when the input round starts (or exactly the ids in
    ``dropped``), the scheme's ``params`` (default: chosen as the protocol does). See the
    module docstring for the setting, and in what sense the figures are exact. Client
    figures are a committee member's (the most loaded client).

    Raises ConfigurationError for a non-int or out-of-range argument, a threshold outside
    ``[1, committee]``, dropouts that leave fewer than ``threshold`` key holders or fewer
    than two inputs, ``dropped`` ids that are not ``dropouts`` clients, or parameters that
    do not fit.
    """
    n = check_int("n", n, 2, MAX_CLIENT_ID)
    m = check_int("m", m, 1, MAX_VECTOR_LENGTH)
    bits = check_int("bits", bits, 1, 64)
    c = check_int("committee", min(DEFAULT_COMMITTEE, n) if committee is None else committee, 1, n)
    t = check_int("threshold", c // 2 + 1 if threshold is None else threshold, 1, c)
    sid = check_int("session_id_bytes", session_id_bytes, *SESSION_ID_BYTES)
    if dropped is not None:
        lost = frozenset(dropped)
        if not all(isinstance(i, int) and 1 <= i <= n for i in lost):
            raise ConfigurationError("dropped must name clients 1..n")
        dropouts = len(lost)
    else:
        lost = None
    d = check_int("dropouts", dropouts, 0, n - 2)
    if lost is not None and c - len(lost & set(range(1, c + 1))) < t:
        raise ConfigurationError("too few key holders survive to decrypt: the protocol aborts")
    if lost is None and c - d * c / n < t:
        raise ConfigurationError("too few key holders survive to decrypt: the protocol aborts")
    p = params if params is not None else choose_parameters(c, n, bits)
    if p.plaintext_bits != bits or p.committee_size < c or p.max_summands < n:
        raise ConfigurationError("params do not fit this session")
    alive = _Alive(n, c, d, lost)
    chunks = p.chunks(m)
    members = range(1, c + 1)

    def head(cls: type, fields: int) -> int:
        return header_size(cls, fields, sid)

    def box(sender: int, recipient: int) -> int:
        return bin_size(KeyShareDelivery.encoded_size(p, sender, recipient) + OVERHEAD_BYTES)

    def entry(peer: int, size: int) -> int:
        return array_size(2) + uint_size(peer) + size

    # key_advertise
    adv_down = sum(head(wire.KeyAdvertiseRequest, 0) + uint_size(j) for j in members)
    adv_up = sum(head(wire.KeyAdvertise, 1) + uint_size(j) + bin_size(KEY_BYTES) for j in members)
    # key_deal
    peers = array_size(c - 1)
    deal_down = sum(
        head(wire.KeyDealRequest, 1)
        + uint_size(j)
        + peers
        + sum(entry(k, bin_size(KEY_BYTES)) for k in members if k != j)
        for j in members
    )
    deal_up = sum(
        head(wire.KeyDeal, 2)
        + uint_size(j)
        + bin_size(PublicKeyShare.encoded_size(p, j))
        + peers
        + sum(entry(k, box(j, k)) for k in members if k != j)
        for j in members
    )
    # key_check
    check_down = sum(
        head(wire.KeyCheckRequest, 1)
        + uint_size(j)
        + peers
        + sum(entry(k, box(k, j)) for k in members if k != j)
        for j in members
    )
    check_up = sum(head(wire.KeyCheck, 1) + uint_size(j) + array_size(0) for j in members)
    # encrypted_input
    key_bytes = PublicKey.encoded_size(p, list(members))
    upload = Ciphertext.encoded_size(p, m, 1)
    in_down: float = alive.count * (head(wire.InputRequest, 1) + bin_size(key_bytes))
    in_down += alive.sum_over(uint_size)
    in_up: float = alive.count * (head(wire.EncryptedInput, 1) + bin_size(upload))
    in_up += alive.sum_over(uint_size)
    # decryption
    holders = alive.members()
    mask = CiphertextMask.encoded_size(p, m, alive.count)
    dec_down = holders * (
        head(wire.DecryptionRequest, 2) + array_size(alive.count) + bin_size(mask)
    )
    dec_down += alive.members_times_ids() + sum(uint_size(j) * alive.alive(j) for j in members)
    dec_up = sum(
        (
            head(wire.DecryptionShare, 1)
            + uint_size(j)
            + bin_size(DecryptionShare.encoded_size(p, m, j))
        )
        * alive.alive(j)
        for j in members
    )
    setup_ops: dict[str, float] = {
        "tckks_key_generations": 1,
        "key_agreements": c - 1,
        "aead_seals": c - 1,
    }
    rounds = {
        wire.ROUND_KEY_ADVERTISE: round_entry(c, c, adv_up, adv_down, {}, {"key_agreements": c}),
        wire.ROUND_KEY_DEAL: round_entry(
            c, c, deal_up, deal_down, setup_ops, {"tckks_key_decodes": c}
        ),
        wire.ROUND_KEY_CHECK: round_entry(
            c, c, check_up, check_down, {"aead_opens": c - 1}, {"tckks_public_key_builds": 1}
        ),
        wire.ROUND_ENCRYPTED_INPUT: round_entry(
            alive.count,
            alive.count,
            in_up,
            in_down,
            {
                "tckks_public_key_loads": 1,
                "tckks_key_share_sums": 1,
                "tckks_encryptions": chunks,
                "tckks_ciphertext_encodes": chunks,
            },
            {
                "tckks_ciphertext_decodes": alive.count * chunks,
                "tckks_additions": (alive.count - 1) * chunks,
                "tckks_mask_encodes": chunks,
            },
        ),
        wire.ROUND_DECRYPTION: round_entry(
            holders,
            holders,
            dec_up,
            dec_down,
            {
                "tckks_mask_decodes": chunks,
                "tckks_decryption_shares": chunks,
                "tckks_share_encodes": chunks,
            },
            {
                "tckks_share_decodes": holders * chunks,
                "tckks_combinations": chunks,
                "tckks_consistency_checks": (holders - t) * chunks,
            },
        ),
    }
    plain = packed_size(m, bits)
    parameters = {
        "n": n,
        "m": m,
        "bits": bits,
        "committee": c,
        "threshold": t,
        "dropouts": d,
        "committee_dropouts": c - holders,
        "session_id_bytes": sid,
        "degree": p.degree,
        "limbs": p.limbs,
        "chunks": chunks,
        "body_bits": p.body_bits,
        "ciphertext_bytes": upload,
        "public_key_bytes": key_bytes,
        "smudging_bits": p.noise.smudging_bits,
    }
    return {
        "protocol": "threshold-ckks",
        "parameters": parameters,
        "rounds": rounds,
        "totals": {
            **totals_of(rounds, plain),
            "upload_expansion": rounds[wire.ROUND_ENCRYPTED_INPUT]["client_bytes_up"] / plain,
            "input_payload_bytes": upload,
        },
        "operations": operations_of(rounds),
    }
