"""Sans-I/O secure aggregation protocols and an in-process simulator."""
