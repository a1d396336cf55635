"""A Flower App that trains with secagg's secure aggregation (see README.md)."""
