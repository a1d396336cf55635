"""The import rules of the package, enforced by reading the code (ast; nothing is imported).

Theory of operation. :func:`scan` reads every module under a root (``secagg/``,
``benchmarks/``, ``tests/``, ``examples/``) into a map ``module -> imports``: each
``import``/``from ... import`` statement, including those inside functions and under
``if TYPE_CHECKING:``, resolved to the module it names (``from secagg.he import _bigint`` names
the module ``secagg.he._bigint``; ``from secagg.prg import expand`` names ``secagg.prg`` and
takes the name ``expand``). The checks are plain functions over that map, so a test can
plant each kind of violation in a synthetic map and see it flagged:

* :func:`layer_violations`: an import against :data:`ALLOWED` (the one table of layers and
  directions, stated again in ``docs/ARCHITECTURE.md``), a protocol family importing another
  family, a shared protocol module importing a family, ``secagg.bench`` imported by anything
  but the CLI or by the CLI at import time, a module that sits in no layer;
* :func:`import_cycles`: circles of module-level imports (imports inside functions or under
  ``if TYPE_CHECKING:`` do not run at import time and cannot close a circle);
* :func:`private_imports`: a private name (``_x``, not dunder) imported from another module,
  or a private module imported from outside its package;
* :func:`outside_imports`: ``secagg`` importing the top-level ``benchmarks`` or ``tests``, or
  anything outside ``benchmarks/`` importing ``benchmarks`` (its scripts may share their own
  helpers, ``benchmarks.common``; nothing else may depend on developer scripts).

An import edge goes to the module the statement names, not to its parent packages (Python
runs a package's ``__init__`` first, but a package importing its own children is not a
circle); third-party imports are ignored.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# --- the rules --------------------------------------------------------------------------

PRIMITIVES = "primitives"
HE = "he"
DP = "dp"
PROTOCOLS = "protocols"
SIM = "sim"
COST = "cost"
INTEGRATIONS = "integrations"
TESTING = "testing"
BENCH = "bench"
CLI = "cli"

_BELOW_SIM = frozenset({PRIMITIVES, HE, PROTOCOLS})

ALLOWED: dict[str, frozenset[str]] = {
    # layer: the layers its modules may import (its own included). Read from the bottom up.
    PRIMITIVES: frozenset({PRIMITIVES}),
    HE: frozenset({PRIMITIVES, HE}),
    DP: frozenset({PRIMITIVES, DP}),
    PROTOCOLS: _BELOW_SIM,
    SIM: _BELOW_SIM | {SIM},
    COST: _BELOW_SIM | {SIM, COST},
    INTEGRATIONS: _BELOW_SIM | {SIM, DP, INTEGRATIONS},
    TESTING: _BELOW_SIM | {SIM, TESTING},
    BENCH: _BELOW_SIM | {SIM, COST, DP, INTEGRATIONS, TESTING, BENCH},
    CLI: _BELOW_SIM | {SIM, COST, DP, INTEGRATIONS, TESTING, BENCH, CLI},
}
"""The layers and the directions imports may take. ``bench`` has one more rule: only the CLI
imports it, and never at import time (:data:`LAZY_ONLY`)."""

PRIMITIVE_MODULES = frozenset(
    {
        "secagg",  # the package root: stays light, imports nothing above the primitives
        "secagg.errors",
        "secagg.ring",
        "secagg.keys",
        "secagg.channel",
        "secagg.signing",
        "secagg.curve25519",
        "secagg.prg",
        "secagg.masking",
        "secagg.encoding",
        "secagg.packing",
        "secagg.secret",
        "secagg.extras",
    }
)
"""The root modules of ``secagg/`` that are primitives: a new root module must be listed here
(or live in its layer's package), so that placing a module in a layer is a decision."""

PACKAGE_LAYERS: dict[str, str] = {
    "secagg.shamir": PRIMITIVES,
    "secagg.he": HE,
    "secagg.dp": DP,
    "secagg.protocols": PROTOCOLS,
    "secagg.sim": SIM,
    "secagg.cost": COST,
    "secagg.integrations": INTEGRATIONS,
    "secagg.testing": TESTING,
    "secagg.bench": BENCH,
    "secagg.cli": CLI,
    "secagg.__main__": CLI,
}
"""A module in one of these packages (or the module itself) is in that layer."""

SHARED_PROTOCOL_MODULES = frozenset(
    {"base", "limits", "wire", "faults", "options", "registry", "table"}
)
FAMILIES = frozenset({"bonawitz", "threshold_he", "threshold_ckks"})
"""The protocol family packages ``secagg.protocols.<family>`` (stated in
``docs/ARCHITECTURE.md`` too): a new family is added here, so that adding one is a
decision; families never import each other."""
"""``secagg.protocols.<name>`` modules every family uses; every other module of
``secagg.protocols`` belongs to a family package ``secagg.protocols.<family>``."""

LAZY_ONLY = {BENCH: frozenset({CLI})}
"""layer: the only layers that may import it, and then only inside a function (or for type
checking): ``secagg bench`` is an optional extra, loaded when the subcommand runs."""

OUTSIDE_PACKAGES = frozenset({"benchmarks", "tests"})
"""Top-level packages of the checkout that ``secagg`` never imports (they are not in the
wheel); ``benchmarks`` is imported by nothing outside itself."""


# --- the map ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One imported module, as one statement of ``importer`` names it."""

    target: str
    """The module the statement names (absolute)."""
    names: tuple[str, ...] = ()
    """The names taken from it (``from target import a, b``); empty for ``import target``."""
    line: int = 0
    lazy: bool = False
    """Inside a function: runs when the function does, not at import time."""
    type_only: bool = False
    """Under ``if TYPE_CHECKING:``: never runs."""

    @property
    def at_import_time(self) -> bool:
        return not (self.lazy or self.type_only)


ImportMap = Mapping[str, tuple[Import, ...]]


def module_name(root: Path, path: Path) -> str:
    """``secagg/he/paillier.py`` -> ``secagg.he.paillier``; a package's ``__init__`` is the
    package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(
    nodes: Iterable[ast.AST], lazy: bool = False, type_only: bool = False
) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement in ``nodes`` and below, with whether it is lazy / type-only."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy, type_only
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _statements(ast.iter_child_nodes(node), True, type_only)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, lazy, True)
            yield from _statements(node.orelse, lazy, type_only)
        else:
            yield from _statements(ast.iter_child_nodes(node), lazy, type_only)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(
    source: str, importer: str, *, is_package: bool, modules: frozenset[str]
) -> tuple[Import, ...]:
    """The imports of one module's ``source``; ``modules`` (every module scanned) tells a
    submodule taken with ``from package import sub`` from a name."""
    found: list[Import] = []
    for node, lazy, type_only in _statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            found += [Import(a.name, (), node.lineno, lazy, type_only) for a in node.names]
            continue
        base = _resolve(importer, is_package, node)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:
                found.append(Import(sub, (), node.lineno, lazy, type_only))
            else:
                found.append(Import(base, (alias.name,), node.lineno, lazy, type_only))
    return tuple(found)


def scan(root: Path, packages: Iterable[str]) -> dict[str, tuple[Import, ...]]:
    """``module -> imports`` of every ``.py`` file under ``root/<package>`` (read, never
    imported)."""
    files = {
        module_name(root, path): path
        for package in packages
        if (root / package).is_dir()
        for path in sorted((root / package).rglob("*.py"))
    }
    modules = frozenset(files)
    return {
        name: imports_of(
            path.read_text(encoding="utf-8"),
            name,
            is_package=path.name == "__init__.py",
            modules=modules,
        )
        for name, path in files.items()
    }


# --- the checks ---------------------------------------------------------------------------


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str | None:
    """The layer of a ``secagg`` module (None: it sits in no layer)."""
    if module in PRIMITIVE_MODULES:
        return PRIMITIVES
    owners = [package for package in PACKAGE_LAYERS if _within(module, package)]
    return PACKAGE_LAYERS[max(owners, key=len)] if owners else None


def family_of(module: str, families: frozenset[str]) -> str | None:
    """``bonawitz`` for ``secagg.protocols.bonawitz[.x]``; None for a shared module."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["secagg", "protocols"] and parts[2] in families:
        return parts[2]
    return None


def protocol_families(imports: ImportMap) -> frozenset[str]:
    """The family packages: ``secagg.protocols.<family>`` that hold modules."""
    return frozenset(
        module.split(".")[2]
        for module in imports
        if module.startswith("secagg.protocols.") and len(module.split(".")) >= 4
    )


def layer_violations(imports: ImportMap) -> list[str]:
    """Every import of a ``secagg`` module against the layer rules (see the module
    docstring), and every ``secagg`` module placed in no layer."""
    families = protocol_families(imports)
    found: list[str] = []
    for importer in sorted(imports):
        if not _within(importer, "secagg"):
            continue
        layer = layer_of(importer)
        if layer is None:
            found.append(
                f"{importer}: in no layer (a root module of secagg/ must be a listed "
                "primitive; else move it into its layer's package)"
            )
            continue
        family = family_of(importer, families)
        parts = importer.split(".")
        if (
            layer == PROTOCOLS
            and family is None
            and len(parts) == 3
            and parts[2] not in SHARED_PROTOCOL_MODULES
        ):
            found.append(
                f"{importer}: neither a shared protocol module "
                f"({', '.join(sorted(SHARED_PROTOCOL_MODULES))}) nor in a family package"
            )
        for item in imports[importer]:
            target = item.target
            if not _within(target, "secagg") or target == importer:
                continue
            where = f"{importer}:{item.line} imports {target}"
            target_layer = layer_of(target)
            if target_layer is None:
                continue  # reported once as the target's own "in no layer"
            if target_layer not in ALLOWED[layer]:
                found.append(f"{where}: {layer} may not import {target_layer}")
            lazy_for = LAZY_ONLY.get(target_layer)
            if lazy_for is not None and layer != target_layer:
                if layer not in lazy_for:
                    found.append(f"{where}: only {', '.join(sorted(lazy_for))} imports it")
                elif item.at_import_time:
                    found.append(f"{where}: at import time (import it inside the function)")
            target_family = family_of(target, families)
            if layer == PROTOCOLS and target_family is not None and target_family != family:
                if family is None:
                    found.append(f"{where}: a shared protocol module imports a family")
                else:
                    found.append(f"{where}: family {family} imports family {target_family}")
    return found


def import_cycles(imports: ImportMap) -> list[list[str]]:
    """One circle of module-level imports per strongly connected component, as a path that
    starts and ends at the same module (sorted: the output is stable)."""
    graph = {
        module: sorted(
            {item.target for item in items if item.at_import_time and item.target in imports}
        )
        for module, items in imports.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(start: str) -> None:
        # Tarjan's algorithm, iterative (a deep import chain must not hit the recursion limit).
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return sorted(_circle(graph, component) for component in components)


def _circle(graph: Mapping[str, list[str]], component: list[str]) -> list[str]:
    """A shortest circle through the first module of a strongly connected component."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in graph[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child in members and child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError("a strongly connected component without a circle")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(imports: ImportMap, packages: Iterable[str]) -> list[str]:
    """Private names (``_x``) imported from another module, and private modules imported
    from outside their package, by the modules of ``packages``."""
    scope = tuple(packages)
    found: list[str] = []
    for importer in sorted(imports):
        if not any(_within(importer, package) for package in scope):
            continue
        for item in imports[importer]:
            where = f"{importer}:{item.line}"
            for name in item.names:
                if _private(name) and item.target != importer:
                    found.append(f"{where} imports the private name {name} from {item.target}")
            parts = item.target.split(".")
            private_at = next((i for i, part in enumerate(parts) if _private(part)), None)
            if private_at is not None:
                owner = ".".join(parts[:private_at])
                if not _within(importer, owner):
                    found.append(f"{where} imports the private module {item.target}")
    return found


def outside_imports(imports: ImportMap) -> list[str]:
    """``secagg`` importing ``benchmarks`` or ``tests``; anything outside ``benchmarks``
    importing ``benchmarks``."""
    found: list[str] = []
    for importer in sorted(imports):
        for item in imports[importer]:
            top = item.target.split(".")[0]
            where = f"{importer}:{item.line} imports {item.target}"
            if _within(importer, "secagg") and top in OUTSIDE_PACKAGES:
                found.append(f"{where}: secagg never imports the checkout's {top}/")
            elif top == "benchmarks" and not _within(importer, "benchmarks"):
                found.append(f"{where}: nothing imports the developer benchmarks")
    return found


def violations(imports: ImportMap) -> list[str]:
    """Every violation of every rule in ``imports`` (empty: the layout keeps its rules)."""
    found = [
        *layer_violations(imports),
        *(f"import circle: {' -> '.join(circle)}" for circle in import_cycles(imports)),
        *private_imports(imports, ("secagg", "benchmarks", "examples")),
        *outside_imports(imports),
    ]
    return list(dict.fromkeys(found))  # one line per statement, not per imported name


# --- the real tree ------------------------------------------------------------------------

SCANNED = ("secagg", "tests", "benchmarks", "examples")


def test_the_package_keeps_its_layers() -> None:
    imports = scan(ROOT, SCANNED)
    assert "secagg.protocols.wire" in imports and "tests.test_layering" in imports
    found = violations(imports)
    assert not found, "\n".join(["layering violations:", *found])


def test_the_families_are_the_listed_ones() -> None:
    imports = scan(ROOT, ("secagg",))
    assert protocol_families(imports) == FAMILIES
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for family in FAMILIES:
        assert f"`protocols/{family}/`" in text, family


def test_the_architecture_document_states_the_table() -> None:
    """docs/ARCHITECTURE.md's table of layers says what :data:`ALLOWED` says."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    stated: dict[str, frozenset[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].strip("`") in ALLOWED:
            allowed = [re.sub(r"\(.*\)", "", item).strip() for item in cells[2].split(",")]
            stated[cells[0].strip("`")] = frozenset(allowed)
    assert stated == ALLOWED


def test_every_layer_is_in_the_table() -> None:
    assert set(PACKAGE_LAYERS.values()) | {PRIMITIVES} == set(ALLOWED)
    for layer, allowed in ALLOWED.items():
        assert layer in allowed and allowed <= set(ALLOWED)


# --- planted violations: every check fails when it should ---------------------------------


def _map(edges: Mapping[str, Iterable[Import | str]]) -> dict[str, tuple[Import, ...]]:
    return {
        module: tuple(item if isinstance(item, Import) else Import(item) for item in items)
        for module, items in edges.items()
    }


CLEAN: dict[str, list[Import | str]] = {
    "secagg": [],
    "secagg.errors": [],
    "secagg.prg": ["secagg.errors", "numpy"],
    "secagg.shamir": ["secagg.shamir.sharing"],
    "secagg.shamir.sharing": ["secagg.errors"],
    "secagg.he": [],
    "secagg.he._bigint": [],
    "secagg.he.paillier": ["secagg.he._bigint", "secagg.errors"],
    "secagg.protocols": [],
    "secagg.protocols.base": [],
    "secagg.protocols.wire": ["secagg.protocols.base"],
    "secagg.protocols.registry": ["secagg.protocols.base"],
    "secagg.protocols.bonawitz": ["secagg.protocols.bonawitz.client"],
    "secagg.protocols.bonawitz.client": ["secagg.protocols.wire", "secagg.prg"],
    "secagg.protocols.threshold_he": [],
    "secagg.protocols.threshold_he.client": ["secagg.he.paillier", "secagg.protocols.wire"],
    "secagg.sim": [],
    "secagg.sim.simulator": ["secagg.protocols.registry"],
    "secagg.cost": [],
    "secagg.cost.timing": ["secagg.sim.simulator"],
    "secagg.testing": ["secagg.sim.simulator"],
    "secagg.integrations": ["secagg.sim.simulator", "secagg.protocols.base"],
    "secagg.bench": ["secagg.cost.timing", "secagg.integrations"],
    "secagg.cli": ["secagg.sim.simulator", Import("secagg.bench", lazy=True)],
    "secagg.__main__": ["secagg.cli"],
    "benchmarks": [],
    "benchmarks.common": [],
    "benchmarks.bench_prg": ["benchmarks.common", "secagg.prg"],
    "tests": [],
    "tests.test_prg": ["secagg.prg", Import("secagg.prg", ("_private_helper",))],
    "examples.demo": ["secagg.sim.simulator"],
}


def test_the_clean_synthetic_tree_passes() -> None:
    assert violations(_map(CLEAN)) == []


def _plant(module: str, *items: Import | str) -> list[str]:
    tree = {name: list(edges) for name, edges in CLEAN.items()}
    tree.setdefault(module, []).extend(items)
    return violations(_map(tree))


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        # (a) layer directions, families, bench, unplaced modules
        ("secagg.prg", "secagg.protocols.wire", "primitives may not import protocols"),
        ("secagg.shamir.sharing", "secagg.he.paillier", "primitives may not import he"),
        ("secagg.prg", Import("secagg.sim.simulator", lazy=True), "may not import sim"),
        ("secagg.he.paillier", Import("secagg.protocols.base", type_only=True), "he may not"),
        ("secagg.protocols.wire", Import("secagg.sim", lazy=True), "protocols may not import sim"),
        ("secagg.protocols.bonawitz.client", "secagg.cost.timing", "protocols may not import"),
        ("secagg.protocols.registry", "secagg.integrations", "may not import integrations"),
        ("secagg.protocols.base", "secagg.testing", "protocols may not import testing"),
        ("secagg.protocols.bonawitz.client", "secagg.cli", "protocols may not import cli"),
        (
            "secagg.protocols.bonawitz.client",
            "secagg.protocols.threshold_he.client",
            "family bonawitz imports family threshold_he",
        ),
        (
            "secagg.protocols.threshold_he",
            Import("secagg.protocols.bonawitz", lazy=True),
            "family threshold_he imports family bonawitz",
        ),
        ("secagg.protocols.wire", "secagg.protocols.bonawitz", "shared protocol module imports"),
        ("secagg.protocols.flat", "secagg.protocols.base", "nor in a family package"),
        ("secagg.sim.simulator", "secagg.cost", "sim may not import cost"),
        ("secagg.sim.simulator", "secagg.integrations", "sim may not import integrations"),
        ("secagg.cost.timing", "secagg.testing", "cost may not import testing"),
        ("secagg.testing", Import("secagg.bench", lazy=True), "only cli imports it"),
        ("secagg.integrations", "secagg.cli", "integrations may not import cli"),
        ("secagg.integrations", "secagg.testing", "integrations may not import testing"),
        ("secagg.testing", "secagg.integrations", "testing may not import integrations"),
        ("secagg.testing", "secagg.cost.timing", "testing may not import cost"),
        ("secagg.bench", "secagg.cli", "bench may not import cli"),
        ("secagg.cli", "secagg.bench", "at import time"),
        ("secagg.bench_cli", "secagg.errors", "secagg.bench_cli: in no layer"),
        # (b) circles
        ("secagg.errors", "secagg.prg", "import circle: secagg.errors -> secagg.prg"),
        ("secagg.cost.timing", "secagg.cost.timing", "import circle: secagg.cost.timing ->"),
        (
            "secagg.he._bigint",
            "secagg.he.paillier",
            "import circle: secagg.he._bigint -> secagg.he.paillier -> secagg.he._bigint",
        ),
        # (c) private names and modules
        ("secagg.sim.simulator", Import("secagg.protocols.registry", ("_ids",)), "private name"),
        ("secagg.cost.timing", Import("secagg.he._bigint", lazy=True), "private module"),
        ("benchmarks.bench_prg", Import("secagg.prg", ("_x",)), "private name _x"),
        ("examples.demo", "secagg.he._bigint", "private module secagg.he._bigint"),
        # (d) the checkout's benchmarks and tests
        ("secagg.cli", Import("benchmarks.common", lazy=True), "never imports the checkout's"),
        ("secagg.testing", "tests.helpers", "never imports the checkout's tests/"),
        ("tests.test_prg", "benchmarks.common", "nothing imports the developer benchmarks"),
        ("examples.demo", "benchmarks", "nothing imports the developer benchmarks"),
    ],
)
def test_a_planted_violation_is_flagged(module: str, planted: Import | str, expected: str) -> None:
    found = _plant(module, planted)
    assert any(expected in item for item in found), found


def test_type_checking_and_function_imports_close_no_circle() -> None:
    assert _plant("secagg.errors", Import("secagg.prg", lazy=True)) == []
    assert _plant("secagg.errors", Import("secagg.prg", type_only=True)) == []
    assert _plant("secagg.cli", Import("secagg.bench", type_only=True)) == []


def test_a_long_circle_is_reported_as_its_path() -> None:
    tree = _map({f"secagg.m{i}": [f"secagg.m{(i + 1) % 4}"] for i in range(4)})
    assert import_cycles(tree) == [
        ["secagg.m0", "secagg.m1", "secagg.m2", "secagg.m3", "secagg.m0"]
    ]


def test_scan_reads_every_kind_of_import_statement(tmp_path: Path) -> None:
    """The scanner on a package written to disk: function-level, TYPE_CHECKING, relative
    and ``from package import submodule`` imports are all found, and the checks flag them."""
    package = tmp_path / "secagg"
    (package / "protocols").mkdir(parents=True)
    (package / "sim").mkdir()
    files = {
        "__init__.py": "",
        "errors.py": "",
        "prg.py": (
            "from __future__ import annotations\n"
            "from typing import TYPE_CHECKING\n"
            "from . import errors\n"
            "if TYPE_CHECKING:\n"
            "    from secagg.protocols.wire import Message\n"
            "def late():\n"
            "    import secagg.sim.simulator\n"
        ),
        "protocols/__init__.py": "",
        "protocols/wire.py": "from secagg.protocols import base\nfrom .base import _helper\n",
        "protocols/base.py": "from secagg.prg import late\n",
        "sim/__init__.py": "",
        "sim/simulator.py": "import secagg.protocols.wire as wire\n",
    }
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    imports = scan(tmp_path, ["secagg"])
    assert imports["secagg.prg"] == (
        Import("__future__", ("annotations",), 1),
        Import("typing", ("TYPE_CHECKING",), 2),
        Import("secagg.errors", (), 3),
        Import("secagg.protocols.wire", ("Message",), 5, type_only=True),
        Import("secagg.sim.simulator", (), 7, lazy=True),
    )
    assert Import("secagg.protocols.base", (), 1) in imports["secagg.protocols.wire"]
    assert Import("secagg.protocols.base", ("_helper",), 2) in imports["secagg.protocols.wire"]
    found = violations(imports)
    assert any("secagg.prg:5 imports secagg.protocols.wire" in item for item in found), found
    assert any("secagg.prg:7 imports secagg.sim.simulator" in item for item in found), found
    assert any("private name _helper" in item for item in found), found
    # prg -> (type only) wire: no circle; base -> prg -> errors: no circle either.
    assert import_cycles(imports) == []
