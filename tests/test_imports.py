"""What an import costs: the root and the query language load no trio, no aiortc.

Each check runs in a fresh interpreter, so the test process's own imports do
not hide a regression.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import taiinet
import taiinet.sim
from taiinet.cli import COMMANDS, build_parser

HEAVY = ("trio", "aiortc", "trio_websocket")
#: The modules that may import aiortc: only a WebRTC link needs it.
WEBRTC_MODULES = {
    "taiinet.transport.webrtc", "taiinet.transport._asyncio_bridge",
    "taiinet.transport._asyncio_channel", "taiinet.transport._asyncio_loop",
    "taiinet.transport._asyncio_sctp", "taiinet.transport._asyncio_dtls",
    "taiinet.transport._asyncio_eager", "taiinet.transport._asyncio_sctp_rx",
    "taiinet.transport._asyncio_sctp_timers", "taiinet.transport._asyncio_sctp_tx",
    "taiinet.transport._asyncio_sctp_wrap", "taiinet.transport._asyncio_sctp_params",
    "taiinet.transport._asyncio_sctp_sound",
}


def _loaded_after(code: str) -> dict[str, bool]:
    """Which of ``HEAVY`` (and ``taiinet.node``) a fresh interpreter holds after ``code``."""
    watched = [*HEAVY, "taiinet.node"]
    script = (f"{code}\nimport json, sys\n"
              f"print(json.dumps({{m: m in sys.modules for m in {watched!r}}}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    loaded: dict[str, bool] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_import_taiinet_loads_no_layer() -> None:
    loaded = _loaded_after("import taiinet")
    assert not any(loaded.values()), loaded


def test_the_query_language_leaves_trio_out() -> None:
    loaded = _loaded_after(
        "import taiinet.pubsub.query as q\nq.Query({'a': {'$gt': 1}}).matches({'a': 2})")
    assert not any(loaded.values()), loaded


def test_a_node_loads_aiortc_only_for_webrtc_links() -> None:
    loaded = _loaded_after("import taiinet\ntaiinet.open_node\ntaiinet.InvalidSdp")
    assert loaded["trio"] and not loaded["aiortc"], loaded
    assert _loaded_after("import taiinet.node\ntaiinet.node.webrtc_links()")["aiortc"] is False


def test_no_module_but_the_webrtc_ones_imports_aiortc() -> None:
    modules = sorted(
        info.name for info in pkgutil.walk_packages(taiinet.__path__, "taiinet.")
        if info.name not in WEBRTC_MODULES and not info.name.startswith("taiinet.v1")
        and not info.name.endswith(".__main__"))
    loaded = _loaded_after("import importlib\n" + "".join(
        f"importlib.import_module({name!r})\n" for name in modules))
    assert loaded["trio"] and not loaded["aiortc"], loaded


def test_a_websocket_node_runs_without_aiortc() -> None:
    loaded = _loaded_after(
        "import trio, taiinet\n"
        "async def main():\n"
        "    async with taiinet.open_signaller(listen='127.0.0.1:0') as sig:\n"
        "        async with taiinet.open_node([sig.url], links='websocket') as node:\n"
        "            async with node.subscribe({'a': 1}) as sub:\n"
        "                await sub.send({'a': 1})\n"
        "                assert (await sub.receive()).data == {'a': 1}\n"
        "trio.run(main)")
    assert loaded["trio"] and not loaded["aiortc"], loaded


@pytest.mark.parametrize("argv", [["--help"], ["keygen", "{tmp}/key"], ["id", "{tmp}/none"]])
def test_cli_start_up_loads_no_trio(argv: list[str], tmp_path: Path) -> None:
    args = [arg.format(tmp=tmp_path) for arg in argv]
    loaded = _loaded_after(
        "import contextlib, io\nfrom taiinet.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({args!r})")
    assert not any(loaded[m] for m in HEAVY), loaded


def _type_checking_imports(package: ModuleType) -> dict[str, str]:
    """``name -> module`` of the ``if TYPE_CHECKING:`` imports of ``package``'s ``__init__``."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                found.update((alias.name, statement.module) for alias in statement.names)
    return found


@pytest.mark.parametrize("package", [taiinet, taiinet.sim], ids=lambda p: p.__name__)
def test_lazy_names_are_the_type_checked_names(package: ModuleType) -> None:
    exports: dict[str, str] = package._EXPORTS
    assert _type_checking_imports(package) == exports
    eager = {name for name in package.__all__ if name in vars(package)} - set(exports)
    assert sorted(eager | set(exports)) == sorted(package.__all__)
    for name, module in exports.items():
        assert getattr(package, name) is getattr(importlib.import_module(module), name)
    assert set(package.__all__) <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        taiinet.Nope  # noqa: B018
    assert not hasattr(taiinet, "PubsubRouter")  # cores live under their layers


def test_every_command_help_line_is_its_modules() -> None:
    parser = build_parser(full=True)
    subparsers = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction))
    lines = {action.dest: action.help for action in subparsers._choices_actions}
    assert lines == {command: help_line for command, (_, help_line) in COMMANDS.items()}
