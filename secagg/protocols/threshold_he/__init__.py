"""Aggregation under homomorphic encryption: threshold Paillier or single-key CKKS, sans-I/O.

The public face: :class:`ThresholdHEConfig` (the session's public parameters, every party
holds a copy), :func:`setup_threshold_paillier` (the trusted dealer: its
:class:`ThresholdPaillierSetup` keeps the public config apart from the
:class:`MemberKeyShares`) and :func:`setup_ckks` (the key holder), :class:`ThresholdHEClient`,
:class:`ThresholdHEServer` and :func:`decode_threshold_he_message`. The modules, one job each:

* :mod:`.config`: the config, backends, decryption modes;
* :mod:`.keys`: session setup (key shares, the CKKS secret context);
* :mod:`.messages`: the typed messages and their wire encoding;
* :mod:`.rounds`: states and the one transition table both parties consult;
* :mod:`.blocks`: which member decrypts which ciphertexts (balanced mode);
* :mod:`.client`, :mod:`.server`: the state machines;
* :mod:`.spec`: the registry entries ``threshold-paillier`` and ``ckks``.

Importing this package, its config or its messages loads no HE backend: the client, the
server and the setup functions (gmpy2; TenSEAL only where CKKS is used) load on first
access, so an install without the ``he`` extra can still decode threshold-HE messages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from secagg.protocols.threshold_he.config import ThresholdHEConfig
from secagg.protocols.threshold_he.messages import decode_threshold_he_message

if TYPE_CHECKING:
    from secagg.protocols.threshold_he.client import ThresholdHEClient
    from secagg.protocols.threshold_he.keys import (
        MemberKeyShares,
        ThresholdPaillierSetup,
        setup_ckks,
        setup_threshold_paillier,
    )
    from secagg.protocols.threshold_he.server import ThresholdHEServer

__all__ = [
    "MemberKeyShares",
    "ThresholdHEClient",
    "ThresholdHEConfig",
    "ThresholdHEServer",
    "ThresholdPaillierSetup",
    "decode_threshold_he_message",
    "setup_ckks",
    "setup_threshold_paillier",
]

_LAZY = {
    "MemberKeyShares": "keys",
    "ThresholdPaillierSetup": "keys",
    "ThresholdHEClient": "client",
    "ThresholdHEServer": "server",
    "setup_ckks": "keys",
    "setup_threshold_paillier": "keys",
}


def __getattr__(name: str) -> Any:
    """The names that need gmpy2, imported on first access (see the module docstring)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
