"""Analytic cost models of every protocol and the timing calibration that prices them.

Bytes per round and party are exact formulas of the wire encodings; seconds are operation
counts times unit costs measured on this machine (:mod:`secagg.cost.timing`).

Modules: :mod:`~secagg.cost.estimate` (the front door: :func:`estimate` by protocol name,
:func:`predict`), :mod:`~secagg.cost.model` (the :class:`~secagg.cost.model.CostModel` a
protocol's registry spec names), the models (:mod:`~secagg.cost.bonawitz`,
:mod:`~secagg.cost.threshold_he`) and their spec entries (``*_spec``), the shared msgpack
sizes (:mod:`~secagg.cost.common`) and :mod:`~secagg.cost.timing`.
"""

from __future__ import annotations

from secagg.cost.estimate import estimate, predict

__all__ = ["estimate", "predict"]
