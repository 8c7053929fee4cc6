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


#: Modules that must stay cores (a lost marker would silently drop them from the check).
EXPECTED_CORES = {
    "signal": {"address_budget.py", "client_core.py", "contacts.py", "dht.py", "dht_state.py",
               "dht_types.py", "pace.py", "records.py", "signaller_actions.py",
               "signaller_base.py", "signaller_config.py", "signaller_core.py"},
}


def test_the_expected_modules_are_checked_as_cores() -> None:
    found = {(p.parent.name, p.name) for p in core_modules()}
    missing = {(layer, name) for layer, names in EXPECTED_CORES.items() for name in names
               if (layer, name) not in found}
    assert missing == set()


def test_purity_check_catches_a_bad_core(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(f"{MARKER}\nimport trio\nimport random\nx = random.random()\n")
    assert len(violations(bad)) == 2
