"""Developer micro-benchmarks of secagg: ``python -m benchmarks.<name> [--quick] [--json PATH]``.

They import secagg's public API only (the floors and Flower runners of :mod:`secagg.bench`
among it) and nothing imports them. The protocol cost suite is :mod:`secagg.bench`
(``secagg bench``; ``python -m benchmarks`` forwards to it).
"""
