"""Analytic cost models of every protocol and the timing calibration that prices them.

Bytes per round and party are exact formulas of the wire encodings; seconds are operation
counts times unit costs measured on this machine (:mod:`secagg.cost.timing`).
"""
