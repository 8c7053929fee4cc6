"""Protocol cores are pure: no trio, asyncio, sockets, wall clock or global random.

A module is a core when its file starts with the marker comment
``# taiinet: sans-io core``; the check reads the source, so it cannot be
fooled by lazy imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "taiinet"
MARKER = "# taiinet: sans-io core"
FORBIDDEN_MODULES = {"trio", "trio_websocket", "asyncio", "aiortc", "aioice", "socket", "time",
                     "threading", "selectors"}


def core_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.read_text().startswith(MARKER)]


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "random":
                names += [f"random.{a.name}" for a in node.names if a.name != "Random"]
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES or name.startswith("random."):
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "random" and node.attr != "Random"):
            found.append(f"{path.name}:{node.lineno} uses the global random.{node.attr}")
    return found


def test_cores_are_pure() -> None:
    problems = [v for path in core_modules() for v in violations(path)]
    assert problems == []


def test_purity_check_catches_a_bad_core(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(f"{MARKER}\nimport trio\nimport random\nx = random.random()\n")
    assert len(violations(bad)) == 2
