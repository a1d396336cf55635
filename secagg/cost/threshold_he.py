"""Analytic cost model of the threshold-HE protocols (threshold Paillier and CKKS).

Theory of operation
-------------------
:func:`threshold_paillier_costs` and :func:`ckks_costs` predict, without running anything
(and without generating a key), the bytes each round of
:mod:`secagg.protocols.threshold_he` moves and the operations each party performs.
They return the same JSON-ready shape as
:func:`secagg.cost.bonawitz.bonawitz_costs`, so one report, one plot and one time
model (:mod:`secagg.cost.timing`) serve every protocol.

Bytes follow the version-1 wire format field by field: a message is the msgpack array
``[version, type, sender, recipient, session_id, *fields]`` of
:mod:`secagg.protocols.threshold_he.messages`; a Paillier payload is the msgpack map of
:meth:`secagg.he.paillier.EncryptedVector.to_bytes` (fixed-width ciphertexts of
``ceil(bits(n^2) / 8)`` bytes, ``ceil(m / slots)`` of them for the slot layout of
:class:`secagg.he.slots.SlotLayout`) or of
:meth:`secagg.he.threshold_paillier.PartialDecryption.to_bytes`; a CKKS payload is the map of
:meth:`secagg.he.ckks.CkksVector.to_bytes`, one TenSEAL blob per ``N / 2`` values.

The setting: clients ``1..n``, the server 0, the committee the clients ``1..committee``
(the protocol's default, the first members), ``dropouts`` clients (a uniformly random set)
that vanish before sending their input and receive nothing, ``committee_dropouts`` of them
on the committee (default: the expectation ``dropouts * committee / n``). Every surviving
member answers the decryption request; the server verifies and combines the first
``threshold`` valid answers and ignores the rest.

Decryption modes (``decryption``, as
:class:`~secagg.protocols.threshold_he.config.ThresholdHEConfig`):
``"full"``: every surviving member decrypts every ciphertext. ``"balanced"``: the c
ciphertexts are cut into l blocks (:mod:`secagg.protocols.threshold_he.blocks`), member
at sorted position p decrypts the blocks p-t+1..p (mod l), and the server verifies every
member's partial and combines each block from its t holders; members whose blocks are all
empty (c < l) are not asked. A fallback wave (a member lost DURING the decryption round,
or a bad proof) is not modelled: the model assumes every request is answered.

Exactness: every Paillier byte figure is exact when no committee member drops or when all
ids and holder indices are below 128 (else an expectation over the dropout set, as in the
Bonawitz model). Balanced mode is exact only when no committee member drops: a member
lost before its input still gets a request the transport never delivers, and the
protocol then sends a fallback wave for its blocks; the model instead scales the
no-dropout figures by the surviving fraction of the committee (an estimate).

The width of a ciphertext and the size of a decryption proof depend on
the bit length of ``n^2`` (``2 * key_bits`` or one less, by key): pass ``nsquare_bits``
(``public_key.paillier.nsquare.bit_length()``) to be exact for a given key. CKKS blobs are
zstd-compressed by SEAL, so their size varies by a few hundred bytes from one ciphertext to
the next: pass the measured mean as ``ciphertext_bytes`` (see :func:`ckks_ciphertext_bytes`)
and every other byte of every message is exact; the default is a nominal figure measured
for the default parameters (within 0.5 % per ciphertext), scaled by coefficient bits for
others (an estimate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from secagg.cost.common import (
    array_size,
    bin_size,
    check_int,
    header_size,
    id_size_sum,
    operations_of,
    round_entry,
    totals_of,
    uint_size,
)
from secagg.errors import ConfigurationError
from secagg.he.slots import SlotLayout
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH, SESSION_ID_BYTES
from secagg.protocols.threshold_he.blocks import assigned_blocks, block_bounds
from secagg.protocols.threshold_he.config import (
    BALANCED,
    DECRYPTION_MODES,
    DEFAULT_DECRYPTION,
)
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    DecryptionRequest,
    DecryptionShare,
    EncryptedInput,
    InputRequest,
)
from secagg.ring import packed_size

__all__ = [
    "CKKS_DEFAULT_CIPHERTEXT_BYTES",
    "ckks_ciphertext_bytes",
    "ckks_costs",
    "threshold_paillier_costs",
]

CKKS_DEFAULT_CIPHERTEXT_BYTES = 331_300
"""Mean serialized size of one fresh TenSEAL CKKS ciphertext at the default parameters
(N = 8192, [60, 40, 40, 60]): measured 330.4K to 331.7K (zstd inside SEAL)."""
_CKKS_DEFAULT_DATA_BITS = 2 * 8192 * (60 + 40 + 40)
_FINGERPRINT_CHARS = 16  # PaillierPublicKey.fingerprint: 16 hex digits
_VECTOR_VERSION = 1  # secagg.he.paillier / ckks / threshold_paillier payload versions


def _str(text: str) -> int:
    """Bytes of a msgpack str (map keys and the key fingerprint)."""
    size = len(text.encode())
    if size <= 31:
        return 1 + size
    if size < 2**8:
        return 2 + size
    return 3 + size if size < 2**16 else 5 + size


def _map_entry(key: str, value_bytes: float) -> float:
    return _str(key) + value_bytes


class _Setting:
    """The common, validated parameters and the id-size sums both models use."""

    def __init__(
        self,
        n: int,
        m: int,
        bits: int,
        committee: int | None,
        threshold: int | None,
        dropouts: int,
        committee_dropouts: float | None,
        session_id_bytes: int,
        default_threshold: int | None = None,
        max_committee: int | None = None,
    ) -> None:
        self.n = check_int("n", n, 2, MAX_CLIENT_ID)
        self.m = check_int("m", m, 1, MAX_VECTOR_LENGTH)
        self.bits = check_int("bits", bits, 1, 64)
        size = min(5, self.n) if committee is None else committee
        most = self.n if max_committee is None else min(self.n, max_committee)
        self.committee = check_int("committee", size, 1, most)
        majority = self.committee // 2 + 1
        t = (default_threshold or majority) if threshold is None else threshold
        self.threshold = check_int("threshold", t, 1, self.committee)
        self.dropouts = check_int("dropouts", dropouts, 0, self.n - 2)
        if committee_dropouts is None:
            self.committee_dropouts: float = self.dropouts * self.committee / self.n
        else:
            low = max(0, self.dropouts - (self.n - self.committee))
            high = min(self.dropouts, self.committee)
            self.committee_dropouts = check_int("committee_dropouts", committee_dropouts, low, high)
        if self.committee - self.committee_dropouts < self.threshold:
            raise ConfigurationError(
                "too few committee members survive to decrypt: the protocol aborts"
            )
        self.sid = check_int("session_id_bytes", session_id_bytes, *SESSION_ID_BYTES)
        self.alive = self.n - self.dropouts
        ids = id_size_sum(self.n)
        self.ids_alive = ids * self.alive / self.n  # E[sum of the survivors' id sizes]
        members_ids = id_size_sum(self.committee)
        self.members_alive = self.committee - self.committee_dropouts
        # Members are clients 1..committee: their ids are also their holder indices.
        self.member_ids_alive = members_ids * self.members_alive / self.committee

    def parameters(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "m": self.m,
            "bits": self.bits,
            "committee": self.committee,
            "threshold": self.threshold,
            "dropouts": self.dropouts,
            "committee_dropouts": self.committee_dropouts,
            "session_id_bytes": self.sid,
        }


def _assemble(
    protocol: str,
    setting: _Setting,
    extra: dict[str, Any],
    input_payload: float,
    rounds: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The JSON-ready result. A client's totals are a committee member's (the most loaded
    client); ``upload_expansion`` is an input upload over the packed plaintext."""
    plain = packed_size(setting.m, setting.bits)
    return {
        "protocol": protocol,
        "parameters": {**setting.parameters(), **extra},
        "rounds": rounds,
        "totals": {
            **totals_of(rounds, plain),
            "upload_expansion": rounds[ROUND_ENCRYPTED_INPUT]["client_bytes_up"] / plain,
            "input_payload_bytes": input_payload,
        },
        "operations": operations_of(rounds),
    }


def _messages(
    setting: _Setting,
    input_payload: float,
    aggregate_payload: float,
    share_payload: Callable[[int], float],
) -> tuple[float, float, float, float]:
    """(input up, input down, decryption up, decryption down) bytes in total."""
    s = setting
    down_input = s.alive * header_size(InputRequest, 0, s.sid) + s.ids_alive
    up_input: float = s.alive * (
        header_size(EncryptedInput, 1, s.sid) + bin_size(int(input_payload))
    )
    up_input += s.ids_alive + s.alive * (input_payload - int(input_payload))
    down_dec = s.members_alive * (
        header_size(DecryptionRequest, 2, s.sid)
        + array_size(s.alive)
        + bin_size(int(aggregate_payload))
    )
    down_dec += s.member_ids_alive + s.members_alive * s.ids_alive
    down_dec += s.members_alive * (aggregate_payload - int(aggregate_payload))
    # A member's share may depend on its holder index (Paillier): average over survivors.
    shares = sum(
        header_size(DecryptionShare, 1, s.sid)
        + bin_size(int(share_payload(i)))
        + share_payload(i)
        - int(share_payload(i))
        for i in range(1, s.committee + 1)
    )
    up_dec = shares * s.members_alive / s.committee + s.member_ids_alive
    return up_input, down_input, up_dec, down_dec


def paillier_vector_bytes(
    *,
    bits: int,
    n: int,
    capacity_bits: int,
    guard_bits: int,
    m: int,
    summands: int,
    ciphertexts: int,
    width: int,
) -> int:
    """Bytes of :meth:`EncryptedVector.to_bytes` for these fields (a msgpack map of 6)."""
    layout = (
        1
        + _map_entry("value_bits", uint_size(bits))
        + _map_entry("max_summands", uint_size(n))
        + _map_entry("capacity_bits", uint_size(capacity_bits))
        + _map_entry("guard_bits", uint_size(guard_bits))
    )
    return int(
        1
        + _map_entry("v", uint_size(_VECTOR_VERSION))
        + _map_entry("key", _str("0" * _FINGERPRINT_CHARS))
        + _map_entry("layout", layout)
        + _map_entry("length", uint_size(m))
        + _map_entry("summands", uint_size(summands))
        + _map_entry("c", bin_size(ciphertexts * width))
    )


def threshold_paillier_costs(
    n: int,
    m: int,
    bits: int,
    committee: int | None = None,
    threshold: int | None = None,
    dropouts: int = 0,
    *,
    key_bits: int = 2048,
    guard_bits: int = 1,
    nsquare_bits: int | None = None,
    committee_dropouts: int | None = None,
    session_id_bytes: int = 16,
    decryption: str = DEFAULT_DECRYPTION,
) -> dict[str, Any]:
    """Per-round, per-party bytes and operation counts of one threshold-Paillier session.

    ``n`` clients, vectors of ``m`` values of ``bits`` bits packed into the slots of a
    ``key_bits``-bit key (each slot ``bits + ceil(log2 n) + guard_bits`` bits wide), a
    decryption committee of ``committee`` members (default ``min(5, n)``) with threshold
    ``threshold`` (default a majority), ``dropouts`` clients lost before their input. See
    the module docstring for the setting and in what sense the figures are exact.

    Returns the shape of :func:`~secagg.cost.bonawitz.bonawitz_costs` plus
    ``"protocol"``; in round ``decryption`` the client figures are a committee member's.
    Operation names: ``paillier_encryptions`` (one r^n mod n^2 and one packing per
    ciphertext), ``ciphertext_checks`` (a unit test mod n^2 of one decoded ciphertext),
    ``ciphertext_multiplications`` (one homomorphic addition), ``partial_exponentiations``
    (c^(2 Delta s_i) mod n^2), ``proof_multiexp_elements`` (one base of a batched proof
    multi-exponentiation with 128-bit weights), ``proof_exponentiations`` (a full-size
    exponentiation of a proof), ``combine_exponentiations`` (a partial raised to its
    Lagrange coefficient). The ciphertext count is ``parameters["ciphertexts"]``.
    ``decryption`` is the committee's mode (``"full"`` or ``"balanced"``); the client
    figures of round ``decryption`` are then the most loaded member's, and
    ``parameters["member_ciphertexts"]`` lists how many ciphertexts each member (sorted
    ids) partially decrypts: its partial exponentiations. A fallback wave is not modelled
    (module docstring).

    Raises ConfigurationError for a non-int or out-of-range argument, a threshold outside
    ``[1, committee]``, dropouts that leave fewer than ``threshold`` members; HeadroomError
    when one slot does not fit the key (as the protocol's own configuration).
    """
    # gmpy2 (the 'he' extra) comes with these constants; the CKKS formulas do without it.
    from secagg.he.threshold_paillier import CHALLENGE_BITS, MAX_HOLDERS, STATISTICAL_BITS

    s = _Setting(
        n,
        m,
        bits,
        committee,
        threshold,
        dropouts,
        committee_dropouts,
        session_id_bytes,
        max_committee=MAX_HOLDERS,
    )
    if not isinstance(decryption, str) or decryption not in DECRYPTION_MODES:
        raise ConfigurationError(f"decryption must be one of {DECRYPTION_MODES}")
    key_bits = check_int("key_bits", key_bits, 512, 2**16)
    guard_bits = check_int("guard_bits", guard_bits, 0, key_bits)
    nsq = 2 * key_bits if nsquare_bits is None else nsquare_bits
    nsq = check_int("nsquare_bits", nsq, 2 * key_bits - 1, 2 * key_bits)
    layout = SlotLayout(
        value_bits=s.bits, max_summands=s.n, capacity_bits=key_bits - 1, guard_bits=guard_bits
    )
    c = layout.plaintexts_for(s.m)
    width = (nsq + 7) // 8
    delta = math.factorial(s.committee)
    response = (nsq + delta.bit_length() + CHALLENGE_BITS + STATISTICAL_BITS + 1 + 7) // 8

    def vector(summands: int) -> int:
        return paillier_vector_bytes(
            bits=s.bits,
            n=s.n,
            capacity_bits=key_bits - 1,
            guard_bits=guard_bits,
            m=s.m,
            summands=summands,
            ciphertexts=c,
            width=width,
        )

    def partial(index: int, count: int = c) -> float:
        return (
            1
            + _map_entry("v", uint_size(_VECTOR_VERSION))
            + _map_entry("i", uint_size(index))
            + _map_entry("c", bin_size(count * width))
            + _map_entry("e", bin_size(CHALLENGE_BITS // 8))
            + _map_entry("z", bin_size(response))
        )

    input_payload = vector(1)
    up_in, down_in, up_dec, down_dec = _messages(s, input_payload, vector(s.alive), partial)
    proof_elements = 2 * c if c > 1 else 0  # one pair needs no batching
    loads = [c] * s.committee
    member_ops: dict[str, float] = {
        "ciphertext_checks": 2 * c,  # decoding the aggregate, then partial_decrypt
        "partial_exponentiations": c,
        "proof_multiexp_elements": proof_elements,
        "proof_exponentiations": 2,
    }
    server_proofs = proof_elements * s.threshold, 2 * s.threshold, 2 * c * s.threshold
    if decryption == BALANCED and s.committee > 1:
        balanced = _balanced_decryption(s, c, vector(s.alive), partial)
        up_dec, down_dec, loads = balanced.up, balanced.down, balanced.loads
        most = max(loads)
        member_ops = {
            "ciphertext_checks": c + most,
            "partial_exponentiations": most,
            "proof_multiexp_elements": 2 * most if most > 1 else 0,
            "proof_exponentiations": 2,
        }
        # Every asked member's partial is verified: each block has exactly t holders.
        multiexp = sum(2 * k for k in loads if k > 1)
        asked = sum(1 for k in loads if k)
        server_proofs = multiexp, 2 * asked, 2 * sum(loads)
    rounds = {
        ROUND_ENCRYPTED_INPUT: round_entry(
            s.alive,
            s.alive,
            up_in,
            down_in,
            {"paillier_encryptions": c},
            {"ciphertext_checks": s.alive * c, "ciphertext_multiplications": (s.alive - 1) * c},
        ),
        ROUND_DECRYPTION: round_entry(
            s.members_alive,
            s.members_alive,
            up_dec,
            down_dec,
            member_ops,
            {
                "ciphertext_checks": server_proofs[2],  # decoding, then verify_partial
                "proof_multiexp_elements": server_proofs[0],
                "proof_exponentiations": server_proofs[1],  # and two short (256-bit) ones
                "combine_exponentiations": c * s.threshold,
                "ciphertext_multiplications": c * s.threshold,
            },
        ),
    }
    extra = {
        "key_bits": key_bits,
        "nsquare_bits": nsq,
        "guard_bits": guard_bits,
        "slots": layout.slots,
        "slot_bits": layout.slot_bits,
        "ciphertexts": c,
        "ciphertext_bytes": width,
        "decryption": decryption,
        "member_ciphertexts": loads,
    }
    return _assemble("threshold-paillier", s, extra, input_payload, rounds)


class _Balanced:
    """Round ``decryption`` of balanced mode: bytes up and down, per-member loads."""

    def __init__(self, up: float, down: float, loads: list[int]) -> None:
        self.up, self.down, self.loads = up, down, loads


def _balanced_decryption(
    s: _Setting, c: int, aggregate_payload: int, partial: Callable[[int, int], float]
) -> _Balanced:
    """Balanced mode, every request answered: member at sorted position p (client p + 1,
    holder index p + 1) gets a 4-field request naming its non-empty blocks and answers with
    a partial of exactly their ciphertexts. Exact without committee dropouts, else scaled
    by the surviving fraction of the committee (fallback waves not modelled)."""
    members, t = s.committee, s.threshold
    sizes = [stop - start for start, stop in block_bounds(c, members)]
    scale = s.members_alive / members
    up = down = 0.0
    loads = []
    for p in range(members):
        blocks = [j for j in assigned_blocks(p, members, t, members) if sizes[j]]
        loads.append(sum(sizes[j] for j in blocks))
        if not blocks:
            continue  # nothing to decrypt: never asked
        member = uint_size(p + 1)
        down += scale * (
            header_size(DecryptionRequest, 4, s.sid)
            + member
            + array_size(s.alive)
            + s.ids_alive
            + bin_size(aggregate_payload)
            + array_size(len(blocks))
            + sum(uint_size(j) for j in blocks)
            + uint_size(members)
        )
        share = partial(p + 1, loads[-1])
        up += scale * (header_size(DecryptionShare, 1, s.sid) + member + bin_size(int(share)))
    return _Balanced(up, down, loads)


def ckks_costs(
    n: int,
    m: int,
    bits: int,
    committee: int | None = None,
    threshold: int | None = None,
    dropouts: int = 0,
    *,
    poly_modulus_degree: int = 8192,
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 40, 60),
    ciphertext_bytes: float | None = None,
    aggregate_ciphertext_bytes: float | None = None,
    committee_dropouts: int | None = None,
    session_id_bytes: int = 16,
) -> dict[str, Any]:
    """Per-round, per-party bytes and operation counts of one CKKS session.

    ``n`` clients, ``m`` values of ``bits`` bits (sent as centered integers), one CKKS
    ciphertext per ``poly_modulus_degree / 2`` values, a committee of key holders of size
    ``committee`` (default ``min(5, n)``) of which the server needs ``threshold`` (default
    1, as :func:`~secagg.protocols.threshold_he.keys.setup_ckks`) identical decryptions.
    ``ciphertext_bytes`` is the mean size of one serialized ciphertext (default:
    :data:`CKKS_DEFAULT_CIPHERTEXT_BYTES` for the default parameters, else that figure
    scaled by the coefficient bits, an estimate);
    ``aggregate_ciphertext_bytes`` the same for the summed ciphertexts the server sends to
    the committee (default: ``ciphertext_bytes``; SEAL compresses them a little differently).

    Same return shape as :func:`threshold_paillier_costs`. Operation names:
    ``ckks_encryptions``, ``ckks_serializations``, ``ckks_deserializations``,
    ``ckks_additions``, ``ckks_decryptions`` (each on one ciphertext), ``vector_unpacks``.

    Raises ConfigurationError for a non-int or out-of-range argument, a threshold outside
    ``[1, committee]``, dropouts that leave fewer than ``threshold`` members, or a
    ``poly_modulus_degree`` that is not a power of two in [1024, 32768].
    """
    s = _Setting(
        n, m, bits, committee, threshold, dropouts, committee_dropouts, session_id_bytes, 1
    )
    degree = check_int("poly_modulus_degree", poly_modulus_degree, 1024, 32768)
    if degree & (degree - 1):
        raise ConfigurationError("poly_modulus_degree must be a power of two")
    sizes = tuple(coeff_mod_bit_sizes)
    if len(sizes) < 2 or not all(isinstance(b, int) and 20 <= b <= 60 for b in sizes):
        raise ConfigurationError("coefficient moduli: at least two sizes in [20, 60] bits")
    if ciphertext_bytes is None:
        data_bits = 2 * degree * sum(sizes[:-1])  # the special prime is not in a ciphertext
        blob = CKKS_DEFAULT_CIPHERTEXT_BYTES * data_bits / _CKKS_DEFAULT_DATA_BITS
    else:
        blob = _blob_size("ciphertext_bytes", ciphertext_bytes)
    summed = blob
    if aggregate_ciphertext_bytes is not None:
        summed = _blob_size("aggregate_ciphertext_bytes", aggregate_ciphertext_bytes)
    slots = degree // 2
    c = -(-s.m // slots)
    levels = len(sizes) - 2

    def vector(summands: int) -> float:
        size = blob if summands == 1 else summed
        chunk = bin_size(int(size)) + size - int(size)  # bin32 header: every blob is >= 64 KiB
        return (
            1
            + _map_entry("v", uint_size(_VECTOR_VERSION))
            + _map_entry("length", uint_size(s.m))
            + _map_entry("summands", uint_size(summands))
            + _map_entry("levels", uint_size(levels))
            + _map_entry("chunks", array_size(c) + c * chunk)
        )

    input_payload = vector(1)
    decrypted = packed_size(s.m, s.bits)
    up_in, down_in, up_dec, down_dec = _messages(
        s, input_payload, vector(s.alive), lambda _index: decrypted
    )
    rounds = {
        ROUND_ENCRYPTED_INPUT: round_entry(
            s.alive,
            s.alive,
            up_in,
            down_in,
            {"ckks_encryptions": c, "ckks_serializations": c},
            {
                "ckks_deserializations": s.alive * c,
                "ckks_additions": (s.alive - 1) * c,
                "ckks_serializations": c,  # the aggregate, once the round completes
            },
        ),
        ROUND_DECRYPTION: round_entry(
            s.members_alive,
            s.members_alive,
            up_dec,
            down_dec,
            {"ckks_deserializations": c, "ckks_decryptions": c},
            {"vector_unpacks": s.threshold},
        ),
    }
    extra = {
        "poly_modulus_degree": degree,
        "coeff_mod_bit_sizes": list(sizes),
        "slots": slots,
        "ciphertexts": c,
        "ciphertext_bytes": blob,
        "aggregate_ciphertext_bytes": summed,
    }
    return _assemble("ckks", s, extra, input_payload, rounds)


def _blob_size(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number")
    if not 2**16 <= value < 2**31:
        raise ConfigurationError(f"{name} must be in [65536, 2^31)")
    return float(value)


def ckks_ciphertext_bytes(
    poly_modulus_degree: int = 8192,
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 40, 60),
    *,
    samples: int = 4,
) -> float:
    """The mean serialized size of a fresh CKKS ciphertext, measured: a fresh context
    encrypts ``samples`` full vectors of random integers (TenSEAL; a second or so).

    Raises ConfigurationError for invalid parameters or ``samples`` outside [1, 64].
    """
    import secrets

    import numpy as np

    from secagg.he.ckks import CkksContext, CkksParameters

    count = check_int("samples", samples, 1, 64)
    params = CkksParameters(poly_modulus_degree, tuple(coeff_mod_bit_sizes))
    context = CkksContext.generate(params).public()
    sizes: list[int] = []
    for _ in range(count):
        # Values like the protocol's (centered integers); from secrets: never a
        # non-cryptographic generator in secagg/.
        raw = np.frombuffer(secrets.token_bytes(4 * params.slots), dtype=np.int32)
        vector = context.encrypt((raw >> 12).astype(np.float64))
        sizes.extend(len(chunk.serialize()) for chunk in vector.chunks)
    return sum(sizes) / len(sizes)
