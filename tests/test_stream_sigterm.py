"""SIGTERM ends ``taiinet stream publish`` / ``watch`` as ``--duration`` would: the file
closed, the figures printed, exit 0 (``bench/stream_process.py`` stops its processes
so, letting every viewer watch until the kill and after, however late it arrived)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import trio

from tests.cli_support import processes, signaller, spawn


async def test_sigterm_ends_a_broadcast_and_a_watch_with_their_figures(tmp_path: Path) -> None:
    pytest.importorskip("av")
    out = tmp_path / "watched.webm"
    with trio.fail_after(90):
        async with processes() as spawned:
            _, url = await signaller(spawned)
            common = ["--signaller", url, "--links", "websocket"]
            pub = await spawn(spawned, "stream", "publish", "--name", "t", "--test-pattern",
                              "--duration", "600", "--size", "64x48", "--fps", "5", *common)
            await pub.line_containing("publishing", "err")
            watch = await spawn(spawned, "stream", "watch", "--name", "t", "--out", str(out),
                                "--duration", "600", "--find-timeout", "60", *common)
            await watch.line_containing("parent 12D3KooW", "err")
            watch.process.send_signal(signal.SIGTERM)
            code, stdout, stderr = await watch.finish()
            assert code == 0, stderr
            report = json.loads(stdout.splitlines()[-1])
            assert report["stopped"] is False
            assert report["parent_changes"] >= 1
            pub.process.send_signal(signal.SIGTERM)
            code, stdout, stderr = await pub.finish()
            assert code == 0, stderr
            assert json.loads(stdout.splitlines()[-1])["chunks"] > 0
    assert out.stat().st_size > 0
