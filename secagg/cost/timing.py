"""Predicted seconds: the operation counts of a cost model times unit costs measured here.

Theory of operation
-------------------
The analytic models (:func:`secagg.cost.bonawitz.bonawitz_costs`,
:mod:`secagg.cost.threshold_he`) count operations per round and party; they say
nothing about seconds, which depend on the machine and on its load. So a prediction has
two halves: :func:`calibrate` times each operation once, right now, on this machine, with
the library's own primitives and representative operands (one PRG expansion of a long
vector, one X25519 agreement, one Shamir sharing of the model's shape, one Paillier
exponentiation with a key of the model's size...), and :func:`predict_seconds` multiplies
every count by its unit cost and sums per round and party.

What is left out: message encoding and decoding, validation, Python bookkeeping. The
prediction is therefore a lower estimate of the crypto and vector work; the project's
tests and benchmarks state it agrees with measured rounds within a factor of
:data:`TOLERANCE` (3) for the rounds that dominate a run (client share keys and masked
input, server unmasking; HE encryption, partial decryption and combination), when unit
costs and the run are measured side by side on the same machine.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secagg.errors import ConfigurationError
from secagg.extras import require

__all__ = [
    "BONAWITZ_OPERATIONS",
    "PACKED_CLIENT_ROUNDS",
    "TOLERANCE",
    "UnitCosts",
    "calibrate",
    "calibrate_ckks",
    "calibrate_paillier",
    "operations",
    "predict_seconds",
]

TOLERANCE = 3.0
"""Stated agreement of predicted and measured seconds for a dominant round: within a
factor of 3 either way (unit costs and run measured side by side)."""

PACKED_CLIENT_ROUNDS = frozenset({"masked_input"})
"""Rounds (by name, unique across the protocol families) in which a client bit-packs one
vector of ``m`` values beside the operations its model counts: the Bonawitz / SecAgg+
masked input."""

BONAWITZ_OPERATIONS = (
    "key_generations",
    "key_agreements",
    "shamir_share_evaluations",
    "shamir_reconstructions",
    "aead_seals",
    "aead_opens",
    "prg_expansions",
    "prg_elements",
    "hashes",
    "signatures",
    "signature_verifications",
    "vector_additions",
    "vector_packs",
)


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per operation, by the operation names of the cost models.

    ``context`` records what the costs were measured for (vector length, bits, Shamir
    shape, key size): a prediction for another shape is an extrapolation.
    """

    seconds: Mapping[str, float]
    context: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, other: UnitCosts) -> UnitCosts:
        """Both sets of unit costs (``other`` wins on a name measured twice)."""
        return UnitCosts({**self.seconds, **other.seconds}, {**self.context, **other.context})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {"seconds": dict(self.seconds), "context": dict(self.context)}


def _times(fn: Callable[[], object], count: int) -> Callable[[], None]:
    """``fn`` called ``count`` times in a row (for operations that return nothing)."""

    def run() -> None:
        for _ in range(count):
            fn()

    return run


def _best(fn: Callable[[], object], count: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds of ``fn()`` divided by ``count`` (ops per call)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / count


def _check_positive(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ConfigurationError(f"{name} must be an int in [1, {high}]")
    return value


def calibrate(
    *,
    m: int = 1 << 18,
    bits: int = 32,
    holders: int = 32,
    threshold: int = 17,
    reconstructions: int = 64,
) -> UnitCosts:
    """Unit costs of the Bonawitz / SecAgg+ operations, measured now (about a second).

    ``m`` and ``bits``: the vector shape of PRG expansion, packing and the server's
    addition (unit costs per element and per vector); ``holders`` and ``threshold``: the
    shape of one client's Shamir sharing (``holders = k + 1``) and of a reconstruction.
    Every measurement uses the library's own primitives (:mod:`secagg.masking`,
    :mod:`secagg.keys`, :mod:`secagg.shamir`, :mod:`secagg.channel`, :mod:`secagg.signing`,
    :mod:`secagg.packing`), each the best of three batches.

    Raises ConfigurationError for parameters out of range (``1 <= threshold <= holders``).
    """
    from secagg.channel import open_sealed, seal
    from secagg.keys import KeyPair, Purpose, agree
    from secagg.masking import apply_masks
    from secagg.packing import pack, unpack
    from secagg.prg import domain
    from secagg.ring import dtype_for_bits
    from secagg.shamir import reconstruct_secrets, share_secrets
    from secagg.signing import SigningKey, verify_signature

    m = _check_positive("m", m, 1 << 27)
    bits = _check_positive("bits", bits, 64)
    holders = _check_positive("holders", holders, 1 << 16)
    threshold = _check_positive("threshold", threshold, holders)
    reconstructions = _check_positive("reconstructions", reconstructions, 1 << 16)
    session = os.urandom(16)
    units: dict[str, float] = {}

    own, peer = KeyPair.generate(), KeyPair.generate()
    units["key_generations"] = _best(lambda: [KeyPair.generate() for _ in range(100)], 100)
    units["key_agreements"] = _best(
        lambda: [
            agree(
                own,
                peer.public_bytes,
                purpose=Purpose.MASK_SEED,
                session_id=session,
                own_id=1,
                peer_id=2,
            )
            for _ in range(100)
        ],
        100,
    )
    two = [os.urandom(32), os.urandom(32)]
    xs = list(range(1, holders + 1))
    units["shamir_share_evaluations"] = _best(
        lambda: share_secrets(two, xs, threshold), 2 * holders
    )
    many = [os.urandom(32) for _ in range(reconstructions)]
    shared = share_secrets(many, xs, threshold)
    chosen = {x: shared[x] for x in xs[:threshold]}
    units["shamir_reconstructions"] = _best(lambda: reconstruct_secrets(chosen), reconstructions)
    key = os.urandom(32)
    bundle = os.urandom(2 * 64 + 8)  # a share bundle's size: two share records
    sealed = seal(key, bundle, session_id=session, sender=1, recipient=2)
    units["aead_seals"] = _best(
        lambda: [seal(key, bundle, session_id=session, sender=1, recipient=2) for _ in range(200)],
        200,
    )
    units["aead_opens"] = _best(
        lambda: [
            open_sealed(key, sealed, session_id=session, sender=1, recipient=2) for _ in range(200)
        ],
        200,
    )
    label = domain(session, "pairwise")
    acc = np.zeros(m, dtype=dtype_for_bits(bits))
    seeds = [os.urandom(32) for _ in range(8)]
    per_element = _best(lambda: apply_masks(acc, bits=bits, domain=label, add_seeds=seeds), 8 * m)
    tiny = np.zeros(64, dtype=dtype_for_bits(bits))
    many_seeds = [os.urandom(32) for _ in range(200)]
    per_expansion = _best(
        lambda: apply_masks(tiny, bits=bits, domain=label, add_seeds=many_seeds), 200
    )
    units["prg_elements"] = per_element
    units["prg_expansions"] = max(0.0, per_expansion - 64 * per_element)
    message = os.urandom(64)
    units["hashes"] = _best(lambda: [hashlib.sha256(message).digest() for _ in range(500)], 500)
    signer = SigningKey.generate()
    signature = signer.sign(message)
    units["signatures"] = _best(lambda: [signer.sign(message) for _ in range(100)], 100)
    units["signature_verifications"] = _best(
        _times(lambda: verify_signature(signer.verify_key, message, signature), 100),
        100,
    )
    vector = acc.copy()
    packed = pack(vector, bits)
    units["vector_packs"] = _best(lambda: pack(vector, bits), 1) / m
    total = np.zeros_like(acc)
    units["vector_additions"] = (
        _best(lambda: np.add(total, unpack(packed, bits, m), out=total), 1) / m
    )
    return UnitCosts(
        units,
        {
            "m": m,
            "bits": bits,
            "holders": holders,
            "threshold": threshold,
            "per_element": ["prg_elements", "vector_packs", "vector_additions"],
        },
    )


def calibrate_paillier(public_key: Any, *, ciphertexts: int = 8) -> UnitCosts:
    """Unit costs of the threshold-Paillier operations for this key, measured now.

    ``public_key`` is a :class:`secagg.he.threshold_paillier.ThresholdPublicKey` (its
    modulus, holder count and Delta fix the operand sizes); ``ciphertexts`` the batch size
    of the proofs' multi-exponentiation (the model's ciphertext count). Exponents are random
    of the exact sizes the protocol uses. Raises ConfigurationError for a bad batch size.
    """
    require("gmpy2", feature="timing threshold Paillier")
    import gmpy2

    from secagg.he import bigint as big
    from secagg.he.paillier import encrypt_vector
    from secagg.he.slots import SlotLayout
    from secagg.he.threshold_paillier import CHALLENGE_BITS, STATISTICAL_BITS

    count = _check_positive("ciphertexts", ciphertexts, 1 << 20)
    paillier = public_key.paillier
    n, nsquare = paillier.n, paillier.nsquare
    layout = SlotLayout.for_modulus(n, value_bits=16, max_summands=2)
    values = np.zeros(2 * layout.slots, dtype=np.uint64)
    units: dict[str, float] = {}
    units["paillier_encryptions"] = _best(
        lambda: encrypt_vector(paillier, values, layout), 2, repeat=2
    )
    cts = [big.random_unit(nsquare) for _ in range(max(count, 2))]
    units["ciphertext_checks"] = _best(lambda: paillier.check_ciphertexts(cts), len(cts))
    units["ciphertext_multiplications"] = _best(
        lambda: [a * b % nsquare for a, b in zip(cts, cts[1:] + cts[:1], strict=True)],
        len(cts),
    )
    nsq_bits = int(nsquare.bit_length())
    delta = public_key.delta
    # c^(2 Delta s_i), s_i about n^2 in size (Shoup's shares live modulo n m).
    exponent = 2 * delta * big.random_bits(nsq_bits)
    units["partial_exponentiations"] = _best(
        lambda: gmpy2.powmod(cts[0], exponent, nsquare), 1, repeat=3
    )
    nonce = big.random_bits(nsq_bits + delta.bit_length() + CHALLENGE_BITS + STATISTICAL_BITS)
    units["proof_exponentiations"] = _best(
        lambda: gmpy2.powmod(cts[0], 4 * nonce, nsquare), 1, repeat=3
    )
    weights = [int.from_bytes(os.urandom(16), "big") for _ in cts]
    units["proof_multiexp_elements"] = _best(
        lambda: big.multi_powmod(cts, weights, nsquare), len(cts), repeat=2
    )
    # A Lagrange coefficient 2 Delta prod j / prod (j - i) is about 3 log2(Delta) bits.
    coefficient = 2 * delta * delta
    units["combine_exponentiations"] = _best(
        lambda: [gmpy2.powmod(c, coefficient, nsquare) for c in cts], len(cts)
    )
    return UnitCosts(units, {"key_bits": int(n.bit_length()), "ciphertexts": count})


def calibrate_ckks(parameters: Any = None, *, m: int = 1 << 14, bits: int = 32) -> UnitCosts:
    """Unit costs of the CKKS operations (per ciphertext) for these
    :class:`secagg.he.ckks.CkksParameters` (default parameters when None), measured now with
    TenSEAL through :mod:`secagg.he.ckks`; ``vector_unpacks`` per vector of ``m`` values."""
    require("tenseal", feature="timing CKKS")
    from secagg.he.ckks import CkksContext
    from secagg.packing import pack, unpack

    m = _check_positive("m", m, 1 << 27)
    bits = _check_positive("bits", bits, 64)
    secret = CkksContext.generate(parameters)
    slots = secret.parameters.slots
    raw = np.frombuffer(secrets.token_bytes(4 * slots), dtype=np.int32)
    values = (raw >> 12).astype(np.float64)  # integer-valued, like the protocol's inputs
    units: dict[str, float] = {}
    vector = secret.encrypt(values)
    units["ckks_encryptions"] = _best(lambda: secret.encrypt(values), 1)
    blob = vector.to_bytes()
    units["ckks_serializations"] = _best(vector.to_bytes, 1)
    units["ckks_deserializations"] = _best(lambda: secret.vector_from_bytes(blob), 1)
    other = secret.encrypt(values)
    units["ckks_additions"] = _best(_times(lambda: vector.add_(other), 10), 10)
    units["ckks_decryptions"] = _best(lambda: secret.decrypt(other), 1)
    packed = pack(np.zeros(m, dtype=np.uint64 if bits > 32 else np.uint32), bits)
    units["vector_unpacks"] = _best(lambda: unpack(packed, bits, m), 1)
    return UnitCosts(units, {"poly_modulus_degree": slots * 2, "m_unpack": m})


def _round_seconds(ops: Mapping[str, float], units: UnitCosts, missing: set[str]) -> float:
    total = 0.0
    for name, count in ops.items():
        if not count:
            continue
        unit = units.seconds.get(name)
        if unit is None:
            missing.add(name)
            continue
        total += count * unit
    return total


def _with_packing(round_name: str, ops: Mapping[str, float], m: int) -> dict[str, float]:
    """A client also bit-packs its vector in the rounds of :data:`PACKED_CLIENT_ROUNDS`,
    which the op-count model leaves out; per-element units turn element counts into the
    right totals."""
    out = dict(ops)
    if round_name in PACKED_CLIENT_ROUNDS:
        out["vector_packs"] = out.get("vector_packs", 0) + m
    return out


def predict_seconds(model: Mapping[str, Any], units: UnitCosts) -> dict[str, Any]:
    """Predicted seconds per round for one client (the model's per-client counts) and for
    the server, from a cost model's result and unit costs.

    Per-element units (``prg_elements``, ``vector_packs``, ``vector_additions`` counted per
    vector of ``m`` values by the model) are scaled accordingly. Returns
    ``{"rounds": {round: {"client": s, "server": s}}, "client": s, "server": s,
    "missing": [operation names without a unit cost, left out]}``.
    """
    m = int(model["parameters"]["m"])
    per_vector = {"vector_additions"}  # counted per vector by the model, unit per element
    missing: set[str] = set()
    rounds: dict[str, dict[str, float]] = {}
    for name, data in model["rounds"].items():
        sides: dict[str, float] = {}
        for side in ("client", "server"):
            ops = (
                _with_packing(name, data[f"{side}_ops"], m)
                if side == "client"
                else (dict(data[f"{side}_ops"]))
            )
            for op in per_vector & set(ops):
                ops[op] = ops[op] * m
            sides[side] = _round_seconds(ops, units, missing)
        rounds[name] = sides
    return {
        "rounds": rounds,
        "client": sum(r["client"] for r in rounds.values()),
        "server": sum(r["server"] for r in rounds.values()),
        "missing": sorted(missing),
    }


def operations(models: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every operation name the given models count (to check unit-cost coverage)."""
    names: set[str] = set()
    for model in models:
        for data in model["rounds"].values():
            names.update(data["client_ops"])
            names.update(data["server_ops"])
    return names
