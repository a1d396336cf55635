"""Property-testing tools for aggregation protocols, as ``hypothesis.extra.numpy`` is for arrays.

Importing this package imports hypothesis (install the ``testing`` extra:
``pip install 'secagg[testing]'``); without it the import raises
:class:`~secagg.extras.MissingExtraError` (an ImportError) saying so. Importing
:mod:`secagg` alone never imports hypothesis.

* :mod:`secagg.testing.strategies`: hypothesis strategies for protocol configurations,
  inputs that respect headroom, dropout schedules (with the worst cases) and malicious
  server and client behaviours;
* :mod:`secagg.testing.harness`: drive any sans-I/O protocol (ClientProtocol /
  ServerProtocol) through a schedule, over your own transport, and check the invariants
  of :mod:`secagg.testing.invariants`;
* targets: :class:`BonawitzTarget`, :class:`ThresholdHETarget`,
  :class:`ThresholdCkksTarget`, and :class:`SpecTarget`
  for any protocol described by a :class:`~secagg.protocols.registry.ProtocolSpec`;
  :class:`TargetDefaults` and :class:`ConfigTarget` to start a target of your own from.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401  (the testing extra: fail here, with the install line)
except ModuleNotFoundError as _missing:
    from secagg.extras import MissingExtraError

    if _missing.name != "hypothesis":
        raise
    raise MissingExtraError("secagg.testing", "testing", "hypothesis") from _missing

from secagg.testing import strategies
from secagg.testing.bonawitz import BonawitzTarget, predict_outcome
from secagg.testing.harness import Chooser, Network, Transport, as_target, run
from secagg.testing.invariants import InvariantViolation, RunReport
from secagg.testing.model import ClientFault, DropoutModel, Quorum, ServerAttack
from secagg.testing.target import (
    ConfigTarget,
    Prediction,
    ProtocolUnderTest,
    SpecTarget,
    TargetDefaults,
)
from secagg.testing.threshold_ckks import ThresholdCkksTarget
from secagg.testing.threshold_he import ThresholdHETarget
from secagg.testing.uniformity import uniformity_score

__all__ = [
    "BonawitzTarget",
    "Chooser",
    "ClientFault",
    "ConfigTarget",
    "DropoutModel",
    "InvariantViolation",
    "Network",
    "Prediction",
    "ProtocolUnderTest",
    "Quorum",
    "RunReport",
    "ServerAttack",
    "SpecTarget",
    "TargetDefaults",
    "ThresholdCkksTarget",
    "ThresholdHETarget",
    "Transport",
    "as_target",
    "predict_outcome",
    "run",
    "strategies",
    "uniformity_score",
]
