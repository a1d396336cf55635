"""README.md is the package's long description: every Python snippet in it runs as written
(each in its own interpreter) and prints what its comments say; it starts with what a pip user
needs; it has no relative link.

* **Snippets.** Each runs in a fresh interpreter. A ``print(...)  # text`` line states its
  output: some output line must start with ``text`` cut at ``...``, or ``text`` must start with
  an output line (a comment may explain after the figure, ``# 30 17, as fcp``); ``# ~text``
  is an approximation and is not compared. So a figure in a comment cannot go stale.
* **Quick starts.** A snippet after ``<!-- readme-test: NAME -->`` (an HTML comment: not
  rendered) is also driven by the test of that name: the Flower one defines a ClientApp and a
  ServerApp, which run here in process on four nodes.
* **No relative links.** The package index renders the README without the source tree: an
  image or a link to ``docs/...`` would be broken there, and the project has no public
  repository URL to make them absolute. Files are named as paths in code text instead.
"""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)
TAGGED = dict(
    re.findall(r"<!-- readme-test: ([\w-]+) -->\n```python\n(.*?)```", TEXT, flags=re.DOTALL)
)
_STATED = re.compile(r"^\s*print\(.*\)\s+#\s*(.+)$")


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def stated_outputs(code: str) -> list[str]:
    """The outputs the snippet's ``print(...)  # text`` lines state (approximations left out)."""
    return [m.group(1).strip() for line in code.splitlines() if (m := _STATED.match(line))
            and not m.group(1).startswith("~")]  # fmt: skip


def states(comment: str, lines: list[str]) -> bool:
    """Whether some output line is what ``comment`` states (see the module docstring)."""
    head = comment.split("...")[0].rstrip()
    return any(
        line.strip() and (line.startswith(head) or comment.startswith(line.strip()))
        for line in lines
    )


def test_the_readme_has_snippets_and_quick_starts() -> None:
    assert len(SNIPPETS) >= 8
    assert {"torch-quickstart", "flower-quickstart", "one-recv", "dp"} <= set(TAGGED)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_and_prints_what_it_says(index: int, tmp_path: Path) -> None:
    code = SNIPPETS[index]
    run = _run(code, tmp_path)
    assert run.returncode == 0, f"snippet {index}:\n{code}\n{run.stdout}\n{run.stderr}"
    lines = run.stdout.splitlines()
    for comment in stated_outputs(code):
        assert states(comment, lines), f"snippet {index} states {comment!r}, prints {lines}"


def test_the_output_check_can_fail() -> None:
    code = 'print(1.056)  # ~1.08x\nprint(30, 17)  # 30 17, as fcp\nprint("a b c")  # a b ...'
    assert stated_outputs(code) == ["30 17, as fcp", "a b ..."]
    assert states("30 17, as fcp", ["30 17"]) and states("a b ...", ["a b c"])
    assert not states("1.08x traffic", ["1.056"]) and not states("[2, 3]", ["[1, 2, 3]"])


def test_a_pip_user_reads_install_and_two_quick_starts_first() -> None:
    headings = re.findall(r"^## (.+)$", TEXT, flags=re.MULTILINE)
    assert headings[:4] == ["Install", "PyTorch in 10 lines", "Flower in 10 lines", "Contents"]
    install = TEXT.split("## Install")[1].split("## PyTorch in 10 lines")[0]
    assert "pip install secagg" in install
    assert "make demo" in install and "make test" in install  # the developer's two commands
    low_level = TEXT.index("## Protocols, low level")
    assert TEXT.index("server.start()") > low_level  # the protocol loop comes later
    for name in ("torch-quickstart", "flower-quickstart"):
        code = [line for line in TAGGED[name].splitlines()
                if line.strip() and not line.lstrip().startswith(("import ", "from ", "#"))]
        assert len(code) <= 12, (name, len(code))  # "10 lines": a few more, no imports


def test_the_contents_list_every_section_in_order() -> None:
    contents = TEXT.split("## Contents")[1].split("\n## ")[0]
    listed = re.findall(r"^\d+\. \*\*(.+?)\*\*", contents, flags=re.MULTILINE)
    after = re.findall(r"^## (.+)$", TEXT.split("## Contents")[1], flags=re.MULTILINE)
    assert len(listed) == len(after), (listed, after)
    for title, heading in zip(listed, after, strict=True):
        assert heading.startswith(title), (title, heading)


def test_no_relative_links_or_images() -> None:
    """Every link or image target is an absolute https URL (there are none today)."""
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)", TEXT)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", TEXT, flags=re.MULTILINE)
    targets += re.findall(r"<(?:img|a|source)\b[^>]*?(?:src|href)\s*=\s*[\"']?([^\"' >]+)",
                          TEXT, flags=re.IGNORECASE)  # fmt: skip
    relative = [t for t in targets if not t.startswith("https://")]
    assert not relative, f"relative links break on the package index page: {relative}"
    planted = "see ![plot](docs/img/x.png) and [guide](docs/privacy.md) and [top](#install)"
    found = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)", planted)
    assert found == ["docs/img/x.png", "docs/privacy.md", "#install"]


def test_the_flower_quick_start_runs_fedavg_securely(tmp_path: Path) -> None:
    """The README's ClientApp and ServerApp, on four in-process nodes, three rounds: each
    node adds 1 to the global array, so the secure mean ends at 3."""
    from flwr.app import Context, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from secagg.integrations.flower.testing import InProcessGrid

    path = tmp_path / "quickstart.py"
    path.write_text(TAGGED["flower-quickstart"], encoding="utf-8")
    namespace = runpy.run_path(str(path))
    results = []

    class Recording(namespace["FedAvg"]):  # type: ignore[misc,name-defined]
        def start(self, *args: Any, **kwargs: Any) -> Any:
            result = super().start(*args, **kwargs)
            results.append(result)
            return result

    namespace["main"].__globals__["FedAvg"] = Recording
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    try:
        grid = InProcessGrid.create(namespace["client"], {n: {} for n in (1, 2, 3, 4)})
        namespace["main"](grid, Context(run_id=1, node_id=0, node_config={},
                                        state=RecordDict(), run_config={}))  # fmt: skip
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved
    assert len(results) == 1
    np.testing.assert_allclose(results[0].arrays["w"].numpy(), np.full(4, 3.0), atol=1e-5)
