"""Benchmarks of secagg: each module runs with `python -m benchmarks.<name> [--quick]`."""
