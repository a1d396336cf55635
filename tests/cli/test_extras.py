"""A core-only install (issue 16.3): what runs without the extras, and what fails with
one line naming the extra and the install command (exit 2).

Each case runs the command line in a fresh interpreter whose ``sitecustomize`` installs a
``sys.meta_path`` finder that makes the optional modules unimportable, as if
``pip install secagg`` had been run without ``[he]``, ``[torch]``, ``[flower]``,
``[testing]`` or ``[bench]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from secagg.errors import ConfigurationError
from secagg.extras import EXTRA_OF_MODULE, MissingExtraError, missing_extra, require

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("tenseal", "gmpy2", "phe", "torch", "flwr", "hypothesis", "matplotlib")

_SITECUSTOMIZE = """
import importlib.abc
import sys

BLOCKED = frozenset({blocked!r})


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
"""


def _without(
    tmp_path: Path, blocked: tuple[str, ...], *args: str
) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(blocked=sorted(blocked)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, env=env,
        cwd=tmp_path, check=False,
    )  # fmt: skip


def _cli(tmp_path: Path, blocked: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess[str]:
    return _without(tmp_path, blocked, "-m", "secagg", *argv)


def _one_line_missing(proc: subprocess.CompletedProcess[str], extra: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("secagg: ")
    assert f"needs the '{extra}' extra: pip install 'secagg[{extra}]'" in lines[0]


def test_the_blocker_blocks(tmp_path: Path) -> None:
    proc = _without(tmp_path, OPTIONAL, "-c", "import gmpy2")
    assert proc.returncode == 1 and "No module named 'gmpy2'" in proc.stderr


def test_threshold_paillier_runs_without_tenseal(tmp_path: Path) -> None:
    proc = _cli(tmp_path, ("tenseal",), "simulate", "--protocol", "threshold-paillier",
                "--clients", "4", "--dim", "8", "--key-bits", "512", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["matches_plaintext_sum"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["cost", "--protocol", "ckks"],
        ["cost", "--protocol", "ckks", "--clients", "50", "--degree", "3", "--json"],
        ["cost", "--protocol", "bonawitz", "--calibrate"],
        ["simulate", "--protocol", "secagg+", "--clients", "12", "--dim", "8"],
        ["simulate", "--protocol", "bonawitz", "--clients", "6", "--dim", "8", "--active"],
    ],
)
def test_core_only_runs_the_formulas_and_the_masking_protocols(
    tmp_path: Path, argv: list[str]
) -> None:
    proc = _cli(tmp_path, OPTIONAL, *argv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["simulate", "--protocol", "threshold-paillier", "--clients", "4"], "he"),
        (["simulate", "--protocol", "ckks", "--clients", "4"], "he"),
        (["cost", "--protocol", "ckks", "--calibrate"], "he"),
        (["cost", "--protocol", "threshold-paillier"], "he"),
        (["bench", "--quick", "--out", "out"], "bench"),
    ],
)
def test_a_missing_extra_is_one_line_with_the_install_command(
    tmp_path: Path, argv: list[str], extra: str
) -> None:
    _one_line_missing(_cli(tmp_path, OPTIONAL, *argv), extra)


def test_a_missing_extra_with_json_is_a_json_error(tmp_path: Path) -> None:
    proc = _cli(tmp_path, OPTIONAL, "simulate", "--protocol", "ckks", "--json")
    _one_line_missing(proc, "he")
    document = json.loads(proc.stdout)
    assert document["exit_code"] == 2 and document["kind"] == "missing_extra"
    assert document["extra"] == "he" and "pip install 'secagg[he]'" in document["error"]


def test_secagg_testing_without_hypothesis_says_what_to_install(tmp_path: Path) -> None:
    proc = _without(tmp_path, ("hypothesis",), "-c", "import secagg.testing")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("secagg.extras.MissingExtraError: secagg.testing needs the "
                           "'testing' extra: pip install 'secagg[testing]'")  # fmt: skip
    check = (
        "try:\n    import secagg.testing\nexcept ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name)\n"
    )
    proc = _without(tmp_path, ("hypothesis",), "-c", check)
    assert proc.stdout.strip() == "MissingExtraError hypothesis", proc.stderr


def test_the_package_and_the_registry_import_core_only(tmp_path: Path) -> None:
    code = (
        "import secagg, secagg.cli, secagg.cost, secagg.sim.simulator\n"
        "from secagg.protocols.registry import get_protocol, protocol_names\n"
        "for name in protocol_names():\n"
        "    get_protocol(name).option_table\n"
        "print('ok')\n"
    )
    proc = _without(tmp_path, OPTIONAL, "-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# -- the helper and the extras of pyproject.toml -------------------------------------------


def test_pyproject_extras_provide_the_modules_the_code_asks_for() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"he", "torch", "flower", "testing", "bench"} <= set(extras)
    names = {
        extra: {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in requirements}
        for extra, requirements in extras.items()
    }
    assert {"gmpy2", "phe", "tenseal"} <= names["he"]
    assert "hypothesis" in names["testing"]
    distribution = {"flwr": "flwr", "torch": "torch", "matplotlib": "matplotlib"}
    for module, extra in EXTRA_OF_MODULE.items():
        if extra == "bench":
            assert "matplotlib" in names["bench"]
            continue
        assert distribution.get(module, module) in names[extra], (module, extra)


def test_require_and_missing_extra() -> None:
    assert require("numpy", "he") is sys.modules["numpy"]  # importable: returned
    with pytest.raises(ConfigurationError, match="not an optional dependency"):
        require("no_such_module_at_all")
    with pytest.raises(MissingExtraError, match=r"pip install 'secagg\[he\]'"):
        require("no_such_module_at_all", "he", feature="this")
    error = missing_extra(ModuleNotFoundError("x", name="tenseal.sealapi"), "CKKS")
    assert isinstance(error, MissingExtraError) and isinstance(error, ImportError)
    assert str(error) == "CKKS needs the 'he' extra: pip install 'secagg[he]' " \
        "(tenseal is not installed)"  # fmt: skip
    assert missing_extra(ModuleNotFoundError("x", name="numpy"), "anything") is None
