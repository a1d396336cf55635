"""The protocol cost suite that ``secagg bench`` runs (extra ``bench``: matplotlib, tqdm).

For each protocol, round and party: compute seconds and bytes as n, m and the dropout rate
grow, each beside its analytic model, its predicted seconds, the floor (keystream plus add)
and Flower's SecAgg+ (extra ``flower``), all measured in the same run; then a scale study
of SecAgg+. Modules: :mod:`~secagg.bench.suite` (the plans, :func:`run_suite`),
:mod:`~secagg.bench.runs` (one measured run), :mod:`~secagg.bench.floors`,
:mod:`~secagg.bench.flower` (flwr driven directly), :mod:`~secagg.bench.metering`
(tracemalloc per party), :mod:`~secagg.bench.primes` (committed test primes),
:mod:`~secagg.bench.report` (JSON, BENCHMARKS.md, console) and :mod:`~secagg.bench.plots`.

Only the command line imports this package, lazily; it imports nothing heavy itself.
"""
