"""The in-process transport: the simulator, its cost ledger and seeded inputs.

Above :mod:`secagg.protocols` (it drives any registered protocol through its
:class:`~secagg.protocols.registry.ProtocolSpec`), below the cost models, the benchmark
suite and the CLI.
"""
