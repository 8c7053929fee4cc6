"""A TURN relay on 127.0.0.1 (Debian's ``coturn``), run as a child process.

Two browser pages on one host cannot link to each other with host candidates
(neither offers 127.0.0.1, docs/browser.md "ICE"); a relay on 127.0.0.1 that
allows loopback peers links them.  ``taiinet demo --browser`` and the browser
tests start one with no configuration file; everything it writes goes to a
temporary folder.  Nothing here is used by the node library.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from taiinet.cli.run import CommandError

#: Relay ports start here: below Linux's ephemeral range (32768-60999), so they never
#: collide with ports the kernel hands out; each process takes its own block.
TURN_PORT_BASE = 20_000
#: Blocks of relay ports below the ephemeral range.
TURN_PORT_BLOCKS = 150
#: The demo's user and password (the relay listens on 127.0.0.1 only).
TURN_USER, TURN_PASSWORD, TURN_REALM = "taiinet", "secret", "taiinet"


def find_turnserver() -> str | None:
    """coturn's ``turnserver``, if installed."""
    return shutil.which("turnserver") or (
        "/usr/bin/turnserver" if Path("/usr/bin/turnserver").exists() else None)


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def turn_server(directory: Path, *, executable: str, block: int = 64
                      ) -> AsyncIterator[dict[str, Any]]:
    """coturn on 127.0.0.1 relaying to loopback peers, with ``block`` relay ports;
    yields the RTCIceServer a page passes as ``iceServers``.  Killed on exit."""
    port = free_tcp_port()
    blocks = max(1, (32_768 - TURN_PORT_BASE) // block)
    low = TURN_PORT_BASE + (os.getpid() % min(blocks, TURN_PORT_BLOCKS)) * block
    command = [
        executable, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        f"--listening-port={port}", f"--min-port={low}", f"--max-port={low + block - 1}",
        "--allow-loopback-peers", "--lt-cred-mech", f"--user={TURN_USER}:{TURN_PASSWORD}",
        f"--realm={TURN_REALM}", "--fingerprint", "--no-tls", "--no-dtls", "--no-cli",
        f"--userdb={directory / 'turn.db'}", f"--pidfile={directory / 'turn.pid'}",
        f"--log-file={directory / 'turn.log'}",
    ]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
    try:
        while True:  # ready once it accepts TCP on its listening port
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.aclose()
                break
            except OSError:
                if process.returncode is not None:
                    raise CommandError(f"turnserver exited at start (see {directory})") from None
                await trio.sleep(0.05)
        yield {"urls": f"turn:127.0.0.1:{port}", "username": TURN_USER,
               "credential": TURN_PASSWORD}
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
