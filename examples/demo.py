"""A representative secure aggregation, simulated in-process (``make demo``).

SecAgg+ with n = 100 clients and m = 100K values in Z_(2^32); the graph degree k and
threshold t come from the parameter finder for 5 % corrupt clients and 5 % dropouts. Five
clients vanish after ShareKeys (they never send their masked input, so the server must
regenerate their pairwise masks) and two more after masking (their self masks are removed
through their neighbours' shares). Prints the cost table and checks the result against the
plaintext sum of exactly the included clients; exits non-zero if it differs.
"""

from __future__ import annotations

import sys

from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_UNMASKING
from secagg.protocols.bonawitz.params import find_parameters
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, simulate


def main() -> int:
    n, m, bits, seed = 100, 100_000, 32, 2026
    found = find_parameters(n, corrupt_fraction=0.05, dropout_fraction=0.05)
    clients = list(range(1, n + 1))
    config = ProtocolConfig.create(
        clients, threshold=found.threshold, bits=bits, vector_length=m, degree=found.degree
    )
    early = DropoutSchedule.from_rate(clients, 0.05, ROUND_MASKED_INPUT, seed)
    remaining = [c for c in clients if c not in early.clients]
    late = DropoutSchedule.from_rate(remaining, 2 / len(remaining), ROUND_UNMASKING, seed + 1)
    print(
        f"SecAgg+ demo: n = {n}, m = {m:,}, Z_(2^{bits}), k = {found.degree}, "
        f"t = {found.threshold} (parameter finder: 5 % corrupt, 5 % dropout)"
    )
    print(
        f"dropping {sorted(early.clients)} after ShareKeys and {sorted(late.clients)} "
        "after masking\n"
    )
    result = simulate(
        config,
        seeded_inputs(seed, m, bits),  # lazy: one client's vector at a time
        dropouts=early | late,
        progress=sys.stderr.isatty(),
    )
    aggregate = result.aggregate
    print(result.costs.format_table())
    print(
        f"\nincluded {len(aggregate.included)} clients; excluded "
        f"{dict(sorted(aggregate.excluded.items()))}"
    )
    verdict = "OK" if result.matches else "MISMATCH"
    print(f"sum == plaintext sum of the included clients: {verdict} ({result.seconds:.1f} s)")
    return 0 if result.matches else 1


if __name__ == "__main__":
    raise SystemExit(main())
