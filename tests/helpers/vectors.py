"""Known-answer and wire-format vectors kept as data under ``tests/vectors/`` (as pyca does).

Every file is a JSON object with a ``"source"`` (where its values come from: an RFC section,
or "pinned" and the generator that wrote them) and its vectors; byte strings are hex. The
RFC files are transcribed by hand; the pinned ones (``prg.json``, ``channel.json``,
``wire/*.json``) are written by ``python -m tests.vectors.generate``, which a test never
runs: the tests compare the implementation against the committed files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

__all__ = ["VECTORS_DIR", "cases", "load_vectors", "unhex"]

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"


def load_vectors(name: str) -> dict[str, Any]:
    """The vectors file ``tests/vectors/<name>`` (``.json`` may be left out; ``name`` may
    name a subfolder, ``"wire/bonawitz"``). Raises ValueError for a file without a
    ``"source"``: a vector nobody can trace back is not a known answer."""
    path = VECTORS_DIR / (name if name.endswith(".json") else f"{name}.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("source"), str):
        raise ValueError(f"{path.name}: a vectors file needs a 'source'")
    return data


def cases(data: dict[str, Any], key: str) -> list[Any]:
    """``data[key]`` as pytest parameters, each named by its ``"name"``."""
    return [pytest.param(item, id=item["name"]) for item in data[key]]


def unhex(value: str) -> bytes:
    """The bytes of a vector's hex string."""
    return bytes.fromhex(value)
