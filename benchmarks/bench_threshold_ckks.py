"""Threshold CKKS beside threshold Paillier and TenSEAL single-key CKKS, in one run.

For m values (100K and 1M; ``--quick``: 100K only):

* threshold CKKS (:mod:`secagg.he.threshold_ckks`, default parameters: N = 8192, four
  32-bit primes, 32-bit plaintexts, a 3-of-5 committee, up to 1000 summands): client
  encryption, serialization, the server's addition of one upload, ONE member's decryption
  share of the aggregate, the combination of t = 3 shares, and the verified combination of
  all 5 (every further share checked); upload bytes per client and their expansion over a
  float32 model (4 m bytes); the decryption request and share sizes;
* the error of the decoded mean of 100 clients' real vectors in [-clip, clip] (through
  :func:`secagg.he.threshold_ckks.float_codec`), against the target 1e-5 of the clip;
* threshold Paillier (:mod:`secagg.he.threshold_paillier`, 2048-bit, 2-of-3, the committed
  benchmark primes, 32-bit values packed for 1000 summands): one holder's partial decryption
  with its proof, timed on slices of 4 and 16 ciphertexts and extrapolated by a straight line
  to the m-value aggregate (so the proof's fixed cost is counted once);
* TenSEAL CKKS (:mod:`secagg.he.ckks`, N = 8192, [60, 40, 40, 60], single key): encryption,
  decryption and upload bytes of the same m floats.

Times are medians of ``--repeats`` runs (best of them is in the JSON too). Ratios are
computed within the run. Run on one core for the report:
``taskset -c 1 python -m benchmarks.bench_threshold_ckks [--quick] [--json PATH]``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

import numpy as np

from benchmarks.common import bench_parser, time_once, write_json
from secagg.bench.primes import safe_primes_2048
from secagg.he.ckks import CkksContext
from secagg.he.slots import SlotLayout
from secagg.he.threshold_ckks import (
    Committee,
    CommitteeMember,
    PublicKey,
    ThresholdCkksParameters,
    collective_public_key,
    combine,
    combine_verified,
    encrypt,
    encrypt_floats,
    float_codec,
    sum_ciphertexts,
)
from secagg.he.threshold_paillier import deal_threshold_keys

MEMBERS = (1, 2, 3, 4, 5)
THRESHOLD = 3
ACCURACY_CLIENTS = 100
CLIP = 1.0
PAILLIER_SLICES = (4, 16)
# Targets (issue 14), seconds per operation at m values.
TARGETS = {
    100_000: {"encrypt": 0.5, "share": 0.2},
    1_000_000: {"encrypt": 3.0, "share": 1.0},
}
SPEEDUP_TARGET = 50.0
MEAN_ERROR_TARGET = 1e-5
TENSEAL_EXPANSION = 20.7


def _median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    samples = [time_once(fn) for _ in range(repeats)]
    return statistics.median(samples), min(samples)


def _committee(
    params: ThresholdCkksParameters,
) -> tuple[Committee, dict[int, CommitteeMember], PublicKey]:
    committee = Committee(MEMBERS, THRESHOLD)
    seed = os.urandom(32)
    members = {i: CommitteeMember(params, committee, i, seed) for i in MEMBERS}
    messages = {i: m.setup_message() for i, m in members.items()}
    for j, member in members.items():
        member.finish_setup(MEMBERS, {i: messages[i][1][j] for i in MEMBERS if i != j})
    return (
        committee,
        members,
        collective_public_key(params, seed, [m[0] for m in messages.values()]),
    )


def _row(group: str, case: str, seconds: float | None, **extra: object) -> dict[str, object]:
    return {"group": group, "case": case, "seconds": seconds, **extra}


def bench_threshold_ckks(m: int, repeats: int) -> list[dict[str, object]]:
    params = ThresholdCkksParameters()
    committee, members, public = _committee(params)
    # not-secret: benchmark inputs.
    x = np.random.default_rng(0).integers(0, 2**32, size=m, dtype=np.uint64).astype(np.uint32)
    group = f"threshold CKKS m={m} ({params.chunks(m)} ciphertexts of N={params.degree})"
    rows = []
    median, best = _median(lambda: encrypt(public, x), repeats)
    rows.append(
        _row(group, "client: encrypt", median, best=best, target=TARGETS.get(m, {}).get("encrypt"))
    )
    upload = encrypt(public, x)
    median, best = _median(upload.to_bytes, repeats)
    rows.append(_row(group, "client: serialize", median, best=best))
    aggregate = upload + encrypt(public, x)
    median, best = _median(lambda: aggregate + upload, repeats)
    rows.append(_row(group, "server: add one upload", median, best=best))
    mask = aggregate.mask_part()
    counter = iter(range(1 << 30))
    # The same ciphertext under new request ids: allowed (the identical share, recomputed).
    median, best = _median(
        lambda: members[1].decryption_share(mask, request_id=b"bench-%d" % next(counter)),
        repeats,
    )
    rows.append(
        _row(
            group,
            "member: one decryption share",
            median,
            best=best,
            target=TARGETS.get(m, {}).get("share"),
        )
    )
    shares = [members[j].decryption_share(mask, request_id=b"combine") for j in MEMBERS]
    used = shares[:THRESHOLD]
    median, best = _median(lambda: combine(committee, aggregate, used), repeats)
    rows.append(_row(group, f"server: combine t = {THRESHOLD} shares", median, best=best))
    median, best = _median(lambda: combine_verified(committee, aggregate, shares), repeats)
    rows.append(
        _row(group, f"server: verified combine of {len(MEMBERS)} shares", median, best=best)
    )
    result = combine_verified(committee, aggregate, shares)
    expected = (2 * x.astype(np.uint64)) % 2**32
    assert np.array_equal(result.values.astype(np.uint64), expected), "wrong sum"
    assert not result.faulty, "an honest share was blamed"
    size = len(upload.to_bytes())
    rows.append(
        _row(
            group,
            "upload per client",
            None,
            bytes=size,
            expansion=size / (4 * m),
            target_expansion=TENSEAL_EXPANSION,
        )
    )
    rows.append(
        _row(
            group,
            "decryption request / share per member",
            None,
            bytes=len(mask.to_bytes()),
            share_bytes=len(shares[0].to_bytes()),
            expansion=len(mask.to_bytes()) / (4 * m),
        )
    )
    return rows


def bench_accuracy(m: int) -> list[dict[str, object]]:
    params = ThresholdCkksParameters()
    committee, members, public = _committee(params)
    codec = float_codec(params, CLIP)
    rng = np.random.default_rng(1)  # not-secret: benchmark inputs
    xs = [rng.uniform(-CLIP, CLIP, size=m) for _ in range(ACCURACY_CLIENTS)]
    aggregate = sum_ciphertexts(encrypt_floats(public, x, codec) for x in xs)
    mask = aggregate.mask_part()
    shares = [members[j].decryption_share(mask, request_id=b"acc") for j in MEMBERS[:THRESHOLD]]
    mean = codec.decode(combine(committee, aggregate, shares)) / ACCURACY_CLIENTS
    error = float(np.max(np.abs(mean - np.mean(xs, axis=0))))
    group = f"accuracy: mean of {ACCURACY_CLIENTS} clients, m={m}, clip={CLIP}"
    return [
        _row(
            group,
            "max |decoded mean - mean| / clip",
            None,
            relative_error=error / CLIP,
            bound=1 / (codec.scale * CLIP),
            target_relative_error=MEAN_ERROR_TARGET,
        )
    ]


def bench_paillier(m: int, repeats: int) -> list[dict[str, object]]:
    public, shares = deal_threshold_keys(
        2048, threshold=2, holders=3, safe_primes=safe_primes_2048()
    )
    layout = SlotLayout.for_modulus(public.paillier.n, value_bits=32, max_summands=1000)
    count = layout.plaintexts_for(m)
    # not-secret: benchmark inputs.
    plaintexts = [int(v) for v in np.random.default_rng(2).integers(0, 2**62, size=16)]
    ciphertexts = [public.paillier.encrypt(p) for p in plaintexts]
    small, large = PAILLIER_SLICES
    t_small = min(
        time_once(lambda: shares[0].partial_decrypt(ciphertexts[:small])) for _ in range(repeats)
    )
    t_large = min(
        time_once(lambda: shares[0].partial_decrypt(ciphertexts[:large])) for _ in range(repeats)
    )
    per_ciphertext = max((t_large - t_small) / (large - small), t_large / large / 2)
    fixed = max(t_small - small * per_ciphertext, 0.0)
    group = f"threshold Paillier m={m} ({count} ciphertexts, {layout.slots} slots of 32-bit values)"
    return [
        _row(
            group,
            f"member: partial decryption + proof (extrapolated from {small} and {large})",
            fixed + count * per_ciphertext,
            per_ciphertext=per_ciphertext,
        ),
        _row(
            group,
            "upload per client",
            None,
            bytes=count * public.paillier.ciphertext_bytes,
            expansion=count * public.paillier.ciphertext_bytes / (4 * m),
        ),
    ]


def bench_tenseal(m: int, repeats: int) -> list[dict[str, object]]:
    context = CkksContext.generate()
    x = np.random.default_rng(3).uniform(-1, 1, size=m)  # not-secret: benchmark inputs
    group = f"TenSEAL CKKS m={m} (single key)"
    median, best = _median(lambda: context.encrypt(x), repeats)
    vector = context.encrypt(x)
    rows = [_row(group, "client: encrypt", median, best=best)]
    median, best = _median(lambda: context.decrypt(vector), repeats)
    rows.append(_row(group, "key holder: decrypt", median, best=best))
    size = len(vector.to_bytes())
    rows.append(_row(group, "upload per client", None, bytes=size, expansion=size / (4 * m)))
    return rows


def _print(rows: list[dict[str, object]]) -> None:
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            print(f"\n{group}")
        notes = []
        seconds = row.get("seconds")
        cell = "" if seconds is None else f"{float(seconds):9.4f}"  # type: ignore[arg-type]
        if "bytes" in row:
            notes.append(f"{row['bytes']} B = {float(row['expansion']):.2f}x float32")  # type: ignore[arg-type]
        if "share_bytes" in row:
            notes.append(f"share {row['share_bytes']} B")
        if "target_expansion" in row:
            notes.append(f"TenSEAL {row['target_expansion']}x")
        if row.get("target") is not None:
            notes.append(f"target <= {row['target']} s")
        if "relative_error" in row:
            notes.append(
                f"{float(row['relative_error']):.2e} (bound 1/scale {float(row['bound']):.2e}, "  # type: ignore[arg-type]
                f"target {row['target_relative_error']:.0e})"
            )
        if "per_ciphertext" in row:
            notes.append(f"{float(row['per_ciphertext']) * 1e3:.1f} ms per ciphertext")  # type: ignore[arg-type]
        print(f"  {row['case']:<66} {cell:>9}  {'; '.join(notes)}")


def _seconds(rows: list[dict[str, object]], group_prefix: str, case_prefix: str) -> float:
    for row in rows:
        if str(row["group"]).startswith(group_prefix) and str(row["case"]).startswith(case_prefix):
            return float(row["seconds"])  # type: ignore[arg-type]
    raise KeyError(case_prefix)


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "m = 100K only, fewer repeats", "also write the rows as JSON")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    repeats = args.repeats or (3 if args.quick else 5)
    rows: list[dict[str, object]] = []
    for m in sizes:
        rows += bench_threshold_ckks(m, repeats)
        rows += bench_paillier(m, 2)
        rows += bench_tenseal(m, repeats)
    rows += bench_accuracy(10_000 if args.quick else 100_000)
    print(
        f"Threshold CKKS vs threshold Paillier vs TenSEAL (one run, pid {os.getpid()}; "
        f"load {os.getloadavg()[0]:.2f})"
    )
    _print(rows)
    print("\nratios (same run)")
    for m in sizes:
        ours = _seconds(rows, f"threshold CKKS m={m}", "member: one decryption share")
        paillier = _seconds(rows, f"threshold Paillier m={m}", "member: partial")
        print(
            f"  m={m}: per-member decryption, threshold Paillier / threshold CKKS = "
            f"{paillier / ours:.0f}x (target >= {SPEEDUP_TARGET:.0f}x)"
        )
    if args.json:
        write_json(args.json, {"benchmark": "threshold_ckks", "rows": rows}, default=str)


if __name__ == "__main__":
    main()
