"""Real ``taiinet`` processes for the CLI tests: spawn, read lines as events, finish."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

TAIINET = [sys.executable, "-m", "taiinet.cli"]


class Proc:
    """One ``taiinet`` process with its stdout and stderr read line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffers = {"out": bytearray(), "err": bytearray()}
        #: The stderr lines ``line`` returned, kept for ``copy_stderr``.
        self._err_read: list[bytes] = []

    def _stream(self, name: str) -> trio.abc.ReceiveStream:
        stream = self.process.stdout if name == "out" else self.process.stderr
        assert stream is not None
        return stream

    async def line(self, name: str = "out") -> str:
        """The next line of stdout (``"err"``: stderr); EOFError if it ends first."""
        buffer = self._buffers[name]
        while b"\n" not in buffer:
            chunk = await self._stream(name).receive_some()
            if not chunk:
                raise EOFError(f"{self.process.args!r} ended its std{name}: {bytes(buffer)!r}")
            buffer += chunk
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        if name == "err":
            self._err_read.append(line + b"\n")
        return line.decode()

    async def line_containing(self, text: str, name: str = "out") -> str:
        while True:
            line = await self.line(name)
            if text in line:
                return line

    async def copy_stderr(self, path: str) -> None:
        """Append the stderr read so far, then the rest as it comes, to ``path`` (until EOF)."""
        buffer = self._buffers["err"]
        with open(path, "ab") as out:
            out.write(b"".join(self._err_read) + bytes(buffer))
            self._err_read.clear()
            buffer.clear()
            while chunk := await self._stream("err").receive_some():
                out.write(chunk)
                out.flush()

    async def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(data)

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    async def finish(self) -> tuple[int, str, str]:
        """Wait for the exit; return the code and the rest of stdout and stderr."""

        async def drain(name: str) -> None:
            while chunk := await self._stream(name).receive_some():
                self._buffers[name] += chunk

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, "out")
            nursery.start_soon(drain, "err")
        code = await self.process.wait()
        return code, self._buffers["out"].decode(), self._buffers["err"].decode()


@asynccontextmanager
async def processes() -> AsyncIterator[list[Proc]]:
    """Spawn with ``spawn(procs, *args)``; every process still running is killed on exit."""
    spawned: list[Proc] = []
    try:
        yield spawned
    finally:
        for proc in spawned:
            if proc.process.returncode is None:
                proc.process.kill()
        with trio.CancelScope(shield=True):
            for proc in spawned:
                await proc.process.wait()


def _hear_ctrl_c() -> None:
    """In the child: Ctrl-C's default action back.  A suite started in the
    background of a shell without job control has SIGINT ignored, and an
    ignored signal stays ignored across exec: the Ctrl-C tests then waited out
    their deadlines."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def spawn(spawned: list[Proc], *args: str, stdin: bool = False) -> Proc:
    process = await trio.lowlevel.open_process(
        [*TAIINET, *args], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_hear_ctrl_c)
    proc = Proc(process)
    spawned.append(proc)
    return proc


async def signaller(spawned: list[Proc], *args: str) -> tuple[Proc, str]:
    """``taiinet signal`` with ``args``; returns it and the URL it prints."""
    proc = await spawn(spawned, "signal", *args)
    word, _peer, url = (await proc.line()).split()
    assert word == "signaller"
    return proc, url
