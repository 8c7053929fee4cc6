"""What the browser-peer tests share: finding node, Chromium and coturn, building the bundle.

A test that needs a tool that is missing is skipped with the reason, except in CI
(``TAIINET_CI=1``, set by ``.ci/run``, which installs Debian's ``chromium`` and
``coturn`` first): there a missing tool fails the test, so CI always runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.cli_support import Proc

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "js"
BUNDLE = JS / "dist" / "taiinet.js"
CHROMIUM = "/usr/bin/chromium"


def in_ci() -> bool:
    return os.environ.get("TAIINET_CI") == "1"


def require(path: str | None, what: str) -> str:
    """``path`` if it exists; else skip (outside CI) or fail (in CI) naming ``what``."""
    if path and Path(path).exists():
        return path
    message = f"{what} is not installed"
    if in_ci():
        pytest.fail(f"{message}, but CI must run the browser tests (.ci/run installs it)")
    pytest.skip(f"{message} (apt-get install chromium coturn; CI installs them)")


def node() -> str:
    return require(shutil.which("node"), "node (Node.js >= 20)")


def build_bundle() -> Path:
    """Write js/dist/taiinet.js from the current sources (esbuild: well under a second)."""
    require(str(JS / "node_modules" / "esbuild"),
            "js/node_modules (run `make js-test` or `npm ci` in js/)")
    subprocess.run([node(), "scripts/build.mjs"], cwd=JS, check=True, capture_output=True)
    return BUNDLE


def websocket_flags() -> list[str]:
    """``--experimental-websocket`` where node lacks a global WebSocket (node 20)."""
    probe = subprocess.run([node(), "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                           check=False)
    return [] if probe.returncode == 0 else ["--experimental-websocket"]


class JsonLines:
    """A process that speaks JSON lines: ``send`` a command, ``expect`` an event."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    async def send(self, **command: Any) -> None:
        await self.proc.send((json.dumps(command) + "\n").encode())

    async def expect(self, event: str) -> dict[str, Any]:
        """The next event named ``event`` (others before it are skipped)."""
        while True:
            message: dict[str, Any] = json.loads(await self.proc.line())
            if message.get("event") == event:
                return message
            if message.get("event") == "error":
                raise AssertionError(f"the JS side failed: {message}")


@asynccontextmanager
async def node_script(script: Path, *args: str,
                      env: dict[str, str] | None = None) -> AsyncIterator[JsonLines]:
    """Run ``node script args`` (with WebSocket enabled on node 20); killed on exit."""
    process = await trio.lowlevel.open_process(
        [node(), *websocket_flags(), "--no-warnings", str(script), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=JS,
        env={**os.environ, **(env or {})})
    try:
        yield JsonLines(Proc(process))
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


TURNSERVER = "/usr/bin/turnserver"


@asynccontextmanager
async def turn_server(directory: Path) -> AsyncIterator[dict[str, Any]]:
    """coturn on 127.0.0.1 relaying to loopback peers (browser-to-browser links on one
    host need it: neither page offers a 127.0.0.1 candidate).  Yields an RTCIceServer."""
    from taiinet.cli.turn import turn_server as run_turn

    async with run_turn(directory, executable=require(TURNSERVER, "coturn (turnserver)")) as ice:
        yield ice
