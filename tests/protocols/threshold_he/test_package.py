"""The package's public face, and what importing it loads.

A core-only install has neither TenSEAL (CKKS) nor gmpy2 (Paillier): importing
:mod:`secagg.protocols.threshold_he`, its config or its messages, and decoding a message,
must load neither. Each check runs in a fresh interpreter so earlier imports cannot hide
a load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import secagg
import secagg.protocols.threshold_he as package

HEAVY = ("tenseal", "gmpy2", "phe")


def loaded_after(code: str) -> dict[str, bool]:
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
        """
    )
    # The child imports the same secagg as this process, wherever the tests run from.
    root = str(Path(secagg.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )
    loaded: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_and_decoding_loads_no_he_backend() -> None:
    loaded = loaded_after(
        """
        import secagg.protocols.threshold_he as the
        from secagg.protocols.threshold_he.config import ThresholdHEConfig
        from secagg.protocols.threshold_he.messages import EncryptedInput
        from secagg.protocols.threshold_he.rounds import CLIENT_TRANSITIONS

        message = EncryptedInput(3, 0, bytes(16), b"ciphertext")
        assert the.decode_threshold_he_message(message.to_bytes(), sender=3) == message
        assert the.ThresholdHEConfig is ThresholdHEConfig
        """
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_paillier_sessions_and_the_registry_do_not_load_tenseal() -> None:
    loaded = loaded_after(
        """
        import secagg.testing
        from secagg.protocols.registry import get_protocol
        from secagg.protocols.threshold_he import (
            ThresholdHEClient, ThresholdHEServer, setup_ckks, setup_threshold_paillier,
        )

        for name in ("threshold-paillier", "ckks"):
            get_protocol(name)
        """
    )
    assert loaded["gmpy2"] and not loaded["tenseal"]


def test_the_public_face() -> None:
    from secagg.protocols.threshold_he.client import ThresholdHEClient
    from secagg.protocols.threshold_he.keys import (
        MemberKeyShares,
        ThresholdPaillierSetup,
        setup_ckks,
        setup_threshold_paillier,
    )
    from secagg.protocols.threshold_he.messages import decode_threshold_he_message
    from secagg.protocols.threshold_he.server import ThresholdHEServer

    assert package.ThresholdHEClient is ThresholdHEClient
    assert package.ThresholdHEServer is ThresholdHEServer
    assert package.setup_threshold_paillier is setup_threshold_paillier
    assert package.setup_ckks is setup_ckks
    assert package.decode_threshold_he_message is decode_threshold_he_message
    assert package.MemberKeyShares is MemberKeyShares
    assert package.ThresholdPaillierSetup is ThresholdPaillierSetup
    assert sorted(package.__all__) == sorted(
        [
            "MemberKeyShares",
            "ThresholdPaillierSetup",
            "ThresholdHEClient",
            "ThresholdHEConfig",
            "ThresholdHEServer",
            "decode_threshold_he_message",
            "setup_ckks",
            "setup_threshold_paillier",
        ]
    )
    with pytest.raises(AttributeError, match="not_a_name"):
        getattr(package, "not_a_name")
