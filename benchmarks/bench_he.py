"""Homomorphic-encryption backends against their floors, measured side by side in one run.

Threshold Paillier (2048-bit key, 16-bit values packed for up to 1000 summands):

* client encryption of m values, split into the offline part (r^n mod n^2 per ciphertext,
  precomputed; or h^alpha under the short-exponent assumption) and the online part
  (packing + one modular multiplication per ciphertext). Floors: raw gmpy2 ``powmod(r, n,
  n^2)`` for the offline part and raw ``(1 + m n) rn mod n^2`` for the online part, on
  the same ciphertext count;
* unpacked ``phe`` encryption, timed on a slice and extrapolated to m (said in the table);
* one committee member's partial decryption of the m-value aggregate (with its proof),
  on 1 and 2 threads, against the floor of raw gmpy2 ``powmod(c, 2 Delta s_i, n^2)`` on the
  same ciphertexts; the server's proof verification and the combination of t partials.

CKKS (N = 8192, [60, 40, 40, 60], 2^40): secagg's chunked backend against raw TenSEAL
``ckks_vector`` on the same vector (encrypt, serialize, add, decrypt), interleaved.

Bytes per client relative to the float32 model (4 m bytes), for each backend.

Run: ``python -m benchmarks.bench_he [--quick] [--json PATH]`` (``--quick``: m = 10K for
Paillier, fewer repeats).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator

import gmpy2
import numpy as np
import tenseal as ts

from benchmarks.common import bench_parser, time_once, write_json
from secagg.bench.primes import safe_primes_2048
from secagg.he.ckks import CkksContext, CkksParameters
from secagg.he.paillier import (
    FreshRandomness,
    PrecomputedBaseRandomness,
    RandomnessPool,
    encrypt_vector,
)
from secagg.he.slots import SlotLayout, pack
from secagg.he.threshold_paillier import (
    PartialDecryption,
    combine_partials,
    deal_threshold_keys,
    verify_partial,
)
from secagg.protocols.threshold_he.blocks import assigned_blocks, block_bounds

VALUE_BITS = 16
MAX_SUMMANDS = 1000
PHE_SLICE = 40
# Anchors (docs: /work/shared/ANCHORS.md): phe 2048-bit encrypts 116 values/s; TenSEAL
# CKKS 100K floats encrypt 80 ms.
PHE_ANCHOR_PER_S = 116.0


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1: raw TenSEAL prints a C++ warning for long vectors."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _raw_context(parameters: CkksParameters) -> ts.Context:
    """A raw TenSEAL context with secagg's CKKS parameters (its own keys: same costs)."""
    context = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=parameters.poly_modulus_degree,
        coeff_mod_bit_sizes=list(parameters.coeff_mod_bit_sizes),
    )
    context.global_scale = 2.0**parameters.scale_bits
    return context


def _row(
    group: str, case: str, seconds: float, floor: float | None, **extra: object
) -> dict[str, object]:
    return {
        "group": group,
        "case": case,
        "seconds": seconds,
        "floor_seconds": floor,
        "x_floor": None if floor is None else seconds / floor,
        **extra,
    }


def _bytes_row(group: str, size: int, m: int, **extra: object) -> dict[str, object]:
    """The row of one client's upload: ``size`` bytes against a float32 model of ``m``."""
    return _row(
        group,
        "bytes per client / float32 model",
        0.0,
        None,
        bytes=size,
        ratio_to_float32=size / (4 * m),
        **extra,
    )


def bench_paillier(m: int, workers: list[int], repeats: int) -> list[dict[str, object]]:
    public, shares = deal_threshold_keys(
        2048, threshold=2, holders=3, safe_primes=safe_primes_2048()
    )
    pk = public.paillier
    n, nsquare = pk.n, pk.nsquare
    layout = SlotLayout.for_modulus(n, value_bits=VALUE_BITS, max_summands=MAX_SUMMANDS)
    count = layout.plaintexts_for(m)
    # not-secret: benchmark input values.
    x = np.random.default_rng(0).integers(0, 2**VALUE_BITS, size=m, dtype=np.uint64)
    rows: list[dict[str, object]] = []
    group = f"paillier m={m} ({count} ciphertexts, {layout.slots} slots x {layout.slot_bits} bits)"

    # Offline: r^n mod n^2, one per ciphertext.
    rs = [gmpy2.mpz(secrets.randbelow(int(n))) for _ in range(count)]
    floor_offline = time_once(lambda: [gmpy2.powmod(r, n, nsquare) for r in rs])
    pool = RandomnessPool(pk)
    offline = time_once(lambda: pool.precompute(count))
    rows.append(_row(group, "offline: precompute r^n (fresh, secure)", offline, floor_offline))
    fast_pool = RandomnessPool(pk, source=PrecomputedBaseRandomness(pk))
    fast = time_once(lambda: fast_pool.precompute(count))
    rows.append(_row(group, "offline: h^alpha (short-exponent assumption)", fast, floor_offline))

    # Online: pack + one mulmod per ciphertext with the pool already filled. Cheap, so the
    # median of several interleaved runs; the extra pool values come from the fast source
    # (the online cost does not depend on how the pool was filled).
    plaintexts = [gmpy2.mpz(p) for p in pack(x, layout)]
    rns = [FreshRandomness(pk).take() for _ in range(min(count, 64))]
    rns = (rns * (count // len(rns) + 1))[:count]  # floor only: reuse is fine for timing
    fast_pool.precompute(count * repeats)
    online_t: list[float] = []
    floor_t: list[float] = []
    pack_t: list[float] = []
    encrypted = encrypt_vector(pk, x, layout, randomness=pool)  # uses the fresh values
    for _ in range(repeats):
        floor_t.append(
            time_once(
                lambda: [(1 + p * n) * r % nsquare for p, r in zip(plaintexts, rns, strict=True)]
            )
        )
        online_t.append(time_once(lambda: encrypt_vector(pk, x, layout, randomness=fast_pool)))
        pack_t.append(time_once(lambda: pack(x, layout)))
    assert pool.fallbacks == 0 and fast_pool.fallbacks == 0
    rows.append(
        _row(
            group,
            "online: pack + encrypt (pool filled)",
            statistics.median(online_t),
            statistics.median(floor_t),
            target_seconds=3.0 * m / 100_000,
        )
    )
    rows.append(_row(group, "  of which packing", statistics.median(pack_t), None))
    upload = encrypted.to_bytes()

    # phe, unpacked: one 2048-bit encryption per value, timed on a slice.
    phe_pk = pk.to_phe()
    slice_seconds = time_once(lambda: [phe_pk.encrypt(int(v)) for v in x[:PHE_SLICE]])
    rows.append(
        _row(
            group,
            f"phe unpacked, extrapolated from {PHE_SLICE} values",
            slice_seconds * m / PHE_SLICE,
            None,
            anchor_seconds=m / PHE_ANCHOR_PER_S,
        )
    )

    # Aggregate: the server adds ciphertexts as they arrive.
    aggregate = encrypted + encrypt_vector(pk, x, layout, randomness=fast_pool)
    add_t = statistics.median(time_once(lambda: encrypted + encrypted) for _ in range(repeats))
    rows.append(_row(group, "server: add one upload", add_t, None))

    # Committee: partial decryption with proof; floor = the bare exponentiations, with an
    # exponent of the size of 2 Delta s_i (a share lives modulo n m, about n^2: the share
    # itself stays private to its holder).
    exponent = 2 * public.delta * gmpy2.mpz(secrets.randbits(int(nsquare.bit_length())))
    floor_partial = time_once(
        lambda: [gmpy2.powmod(c, exponent, nsquare) for c in aggregate.ciphertexts]
    )
    partials: list[PartialDecryption] = []
    for index, w in enumerate(workers):
        holder = shares[index % len(shares)]
        start = time.perf_counter()
        partials.append(holder.partial_decrypt(aggregate.ciphertexts, workers=w))
        seconds = time.perf_counter() - start
        rows.append(
            _row(
                group,
                f"member: partial decryption + proof, {w} thread(s)",
                seconds,
                floor_partial,
                target_seconds=10.0 * m / 100_000,
            )
        )
    # Balanced committee decryption (decryption="balanced"): each block of the aggregate
    # goes to t = 2 of the 3 members; the most loaded member's share, same floor per value.
    bounds = block_bounds(count, len(shares))
    mine = max(
        (
            [
                c
                for j in assigned_blocks(p, len(shares), 2, len(shares))
                for c in aggregate.ciphertexts[bounds[j][0] : bounds[j][1]]
            ]
            for p in range(len(shares))
        ),
        key=len,
    )
    for w in workers:
        seconds = time_once(lambda: shares[0].partial_decrypt(mine, workers=w))  # noqa: B023
        rows.append(
            _row(
                group,
                f"member, balanced 2-of-3 ({len(mine)} ciphertexts), {w} thread(s)",
                seconds,
                floor_partial * len(mine) / count,
                target_seconds=10.0 * m / 100_000,
            )
        )
    rows.append(
        _row(
            group,
            "server: verify one proof",
            time_once(lambda: verify_partial(public, aggregate.ciphertexts, partials[0])),
            None,
        )
    )
    rows.append(
        _row(
            group,
            "server: combine t = 2 partials",
            time_once(
                lambda: combine_partials(public, aggregate.ciphertexts, partials[:2], verify=False)
            ),
            None,
        )
    )
    rows.append(
        _bytes_row(group, len(upload), m, phe_ratio_to_float32=m * pk.ciphertext_bytes / (4 * m))
    )
    return rows


def bench_ckks(m: int, repeats: int) -> list[dict[str, object]]:
    secret = CkksContext.generate()
    raw_context = _raw_context(secret.parameters)
    # not-secret: benchmark input values.
    x = np.random.default_rng(1).normal(size=m)
    group = f"ckks m={m}"
    ours_vec = secret.encrypt(x)
    with _quiet_stdout():
        raw_vec = ts.ckks_vector(raw_context, x)
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "encrypt": (lambda: secret.encrypt(x), lambda: ts.ckks_vector(raw_context, x)),
        "serialize": (ours_vec.to_bytes, raw_vec.serialize),
        "add": (lambda: ours_vec + ours_vec, lambda: raw_vec + raw_vec),
        "decrypt": (lambda: secret.decrypt(ours_vec), raw_vec.decrypt),
    }
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in cases}
    for _ in range(repeats):
        for name, (ours, raw) in cases.items():  # interleaved so drift hits both alike
            with _quiet_stdout():
                samples[name][1].append(time_once(raw))
            samples[name][0].append(time_once(ours))
    rows = []
    for name, (ours_t, raw_t) in samples.items():
        rows.append(
            _row(
                group,
                f"{name} (secagg vs raw TenSEAL)",
                statistics.median(ours_t),
                statistics.median(raw_t),
            )
        )
    size = len(ours_vec.to_bytes())
    rows.append(_bytes_row(group, size, m, raw_bytes=len(raw_vec.serialize())))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "m = 10K for Paillier, 3 repeats", "also write the rows as JSON")
    args = parser.parse_args(argv)
    m_paillier = 10_000 if args.quick else 100_000
    rows = bench_paillier(m_paillier, workers=[1, 2], repeats=3 if args.quick else 7)
    rows += bench_ckks(100_000, 3 if args.quick else 7)
    print("HE backends (one run; x floor = seconds / floor seconds measured in the same run)")
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            print(f"\n{group}")
            print(f"  {'case':<52} {'seconds':>9} {'floor s':>9} {'x floor':>8}  notes")
        floor = row["floor_seconds"]
        ratio = row["x_floor"]
        notes = []
        if "ratio_to_float32" in row:
            notes.append(f"{row['bytes']} B = {float(row['ratio_to_float32']):.2f}x float32")  # type: ignore[arg-type]
            if "phe_ratio_to_float32" in row:
                notes.append(f"phe unpacked {float(row['phe_ratio_to_float32']):.0f}x")  # type: ignore[arg-type]
        if "anchor_seconds" in row:
            notes.append(f"anchor {float(row['anchor_seconds']):.0f} s")  # type: ignore[arg-type]
        if "target_seconds" in row:
            notes.append(f"target <= {float(row['target_seconds']):.1f} s")  # type: ignore[arg-type]
        seconds = "" if "ratio_to_float32" in row else f"{float(row['seconds']):9.3f}"  # type: ignore[arg-type]
        print(
            f"  {row['case']:<52} {seconds:>9} "
            f"{'' if floor is None else f'{float(floor):9.3f}':>9} "  # type: ignore[arg-type]
            f"{'' if ratio is None else f'{float(ratio):7.2f}x':>8}  {'; '.join(notes)}"  # type: ignore[arg-type]
        )
    if args.json:
        write_json(args.json, {"benchmark": "he", "rows": rows}, default=str)


if __name__ == "__main__":
    main()
