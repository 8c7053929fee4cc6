"""Real TaiiNet processes on loopback: the victims and the legitimate pair.

A ``World`` is what every hostile test and ``bench/hostile.py`` attack: one
or more ``taiinet signal`` processes (joined in a chain) and a legitimate pair
of peers, a ``taiinet sub`` on the first signaller and a ``taiinet pub`` on the
last, both with ``--links websocket``.  The publisher is fed one document
``{"legit": true, "seq": N}`` every ``publish_interval`` seconds on its stdin
for as long as the world lives, and the subscriber's JSON lines are read as
they come, so ``Delivery`` knows when each document left and arrived.

``Memory`` samples the resident set size (``VmRSS`` of ``/proc/<pid>/status``)
of the processes an attack aims at.

Every process's stdout and stderr are drained by a task of their own (a full
pipe would stall the process and look like a successful attack); the last
lines of stderr are kept to explain a failure.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

TAIINET = [sys.executable, "-m", "taiinet.cli"]
#: The legitimate pair's query; attack documents never match it.
LEGIT_QUERY: dict[str, Any] = {"legit": True}
#: Seconds a process may take to print its first line (loaded 2-core machines).
START_TIMEOUT = 30.0
#: Seconds ``sub`` waits for a first neighbour before it says it subscribed (and
#: goes on joining in the background); the pub starts after that.
SUB_JOIN_TIMEOUT = 5.0
#: Lines of stderr kept per process for failure messages.
STDERR_TAIL = 40


def rss_mib(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Child:
    """One ``taiinet`` process whose output is drained line by line."""

    def __init__(self, name: str, process: trio.Process,
                 on_stdout: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.process = process
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self.first_stdout = trio.Event()
        self.first_stderr = trio.Event()
        self.first_stdout_line = ""
        self.first_stderr_line = ""
        self._on_stdout = on_stdout

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def rss_mib(self) -> float | None:
        return rss_mib(self.pid) if self.alive else None

    def describe(self) -> str:
        state = "alive" if self.alive else f"exited {self.process.returncode}"
        tail = "\n    ".join(self.stderr_tail)
        return f"{self.name} (pid {self.pid}, {state}); stderr tail:\n    {tail}"

    async def drain(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, self.process.stdout, self._stdout_line)
            nursery.start_soon(self._read, self.process.stderr, self._stderr_line)

    def _stdout_line(self, line: str) -> None:
        if not self.first_stdout.is_set():
            self.first_stdout_line = line
            self.first_stdout.set()
        if self._on_stdout is not None:
            self._on_stdout(line)

    def _stderr_line(self, line: str) -> None:
        self.stderr_tail.append(line)
        if not self.first_stderr.is_set():
            self.first_stderr_line = line
            self.first_stderr.set()

    @staticmethod
    async def _read(stream: trio.abc.ReceiveStream | None,
                    handle: Callable[[str], None]) -> None:
        if stream is None:
            return
        buffer = bytearray()
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                handle(line.decode(errors="replace"))


@dataclass(slots=True)
class Signaller:
    child: Child
    peer_id: str
    url: str


@dataclass
class Delivery:
    """Send and arrival times (``trio.current_time()``) of the legitimate documents."""

    sent: dict[int, float] = field(default_factory=dict)
    received: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    changed: trio.Event = field(default_factory=trio.Event)

    def on_line(self, line: str) -> None:
        try:
            data = json.loads(line)["data"]
            seq = int(data["seq"])
        except (ValueError, KeyError, TypeError):
            return
        if seq in self.received:
            self.duplicates += 1
            return
        self.received[seq] = trio.current_time()
        self.changed.set()
        self.changed = trio.Event()

    async def wait_sent_after(self, since: float, timeout: float) -> bool:
        """Wait until a document sent at ``since`` or later has arrived."""
        with trio.move_on_after(timeout):
            while not any(self.sent.get(seq, -math.inf) >= since for seq in self.received):
                await self.changed.wait()
            return True
        return False

    def window(self, start: float, end: float) -> WindowFigures:
        """Figures for the documents sent in ``[start, end)``."""
        sent = [seq for seq, at in self.sent.items() if start <= at < end]
        got = [seq for seq in sent if seq in self.received]
        latencies = sorted(self.received[seq] - self.sent[seq] for seq in got)
        arrivals = sorted(t for t in self.received.values() if start <= t <= end)
        edges = [start, *arrivals, end]
        gap = max(b - a for a, b in itertools.pairwise(edges))
        p50 = latencies[len(latencies) // 2] if latencies else math.inf
        return WindowFigures(sent=len(sent), delivered=len(got), longest_gap=gap,
                             p50_latency=p50)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    sent: int
    delivered: int
    #: Longest time without an arrival, window edges included (seconds).
    longest_gap: float
    p50_latency: float


@dataclass
class Memory:
    """RSS samples (MiB) of one process: at the start, the peak and the last one."""

    start: float = 0.0
    peak: float = 0.0
    end: float = 0.0

    @property
    def growth(self) -> float:
        return self.peak - self.start


async def sample_memory(children: Sequence[Child], into: dict[str, Memory],
                        interval: float = 0.2) -> None:
    """Sample each child's RSS every ``interval`` until cancelled."""
    for child in children:
        rss = child.rss_mib() or 0.0
        into[child.name] = Memory(start=rss, peak=rss, end=rss)
    while True:
        for child in children:
            rss = child.rss_mib()
            if rss is not None:
                memory = into[child.name]
                memory.peak = max(memory.peak, rss)
                memory.end = rss
        await trio.sleep(interval)


class World:
    """Signallers and the legitimate pair; see the module docstring."""

    def __init__(self, nursery: trio.Nursery, publish_interval: float) -> None:
        self.nursery = nursery
        self.publish_interval = publish_interval
        self.signallers: list[Signaller] = []
        self.children: list[Child] = []
        self.sub: Child | None = None
        self.sub_peer_id = ""
        self.pub: Child | None = None
        self.delivery = Delivery()
        #: Seconds from starting the pair to its first delivery (set by ``open_world``).
        self.first_delivery: float | None = None

    @property
    def signaller(self) -> Signaller:
        """The first signaller: the sub's home, the one attacks aim at by default."""
        return self.signallers[0]

    def child(self, name: str) -> Child:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    async def spawn(self, name: str, *args: str,
                    on_stdout: Callable[[str], None] | None = None) -> Child:
        process: trio.Process = await self.nursery.start(partial(
            trio.run_process, [*TAIINET, *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False))
        child = Child(name, process, on_stdout)
        self.children.append(child)
        self.nursery.start_soon(child.drain)
        return child

    async def start_signaller(self, join: Sequence[str] = ()) -> Signaller:
        name = f"signaller{len(self.signallers)}"
        joins = [arg for url in join for arg in ("--join", url)]
        child = await self.spawn(name, "signal", "--listen", "127.0.0.1:0", *joins)
        await _first(child, child.first_stdout)
        word, peer_id, url = child.first_stdout_line.split()
        assert word == "signaller", child.describe()
        signaller = Signaller(child=child, peer_id=peer_id, url=url)
        self.signallers.append(signaller)
        return signaller

    async def start_sub(self, url: str, name: str = "sub",
                        on_stdout: Callable[[str], None] | None = None) -> tuple[Child, str]:
        """A ``taiinet sub`` of ``LEGIT_QUERY``; returns it once subscribed, with its id."""
        child = await self.spawn(name, "sub", "--links", "websocket", "--signaller", url,
                                 "--join-timeout", str(SUB_JOIN_TIMEOUT),
                                 json.dumps(LEGIT_QUERY), on_stdout=on_stdout)
        await _first(child, child.first_stderr)
        word, _, peer_id = child.first_stderr_line.partition(" ")
        assert word == "subscribed", child.describe()
        return child, peer_id

    async def start_pair(self, sub_on: int = 0, pub_on: int = -1) -> None:
        """Start the legitimate sub, then the pub, and feed the pub until the world ends."""
        self.sub, self.sub_peer_id = await self.start_sub(
            self.signallers[sub_on].url, on_stdout=self.delivery.on_line)
        self.pub = await self.spawn("pub", "pub", "--links", "websocket", "--signaller",
                                    self.signallers[pub_on].url, "--wait", "0.3", "-")
        self.nursery.start_soon(self._feed)

    async def _feed(self) -> None:
        assert self.pub is not None and self.pub.process.stdin is not None
        stdin = self.pub.process.stdin
        seq = 0
        try:
            while True:
                line = json.dumps({**LEGIT_QUERY, "seq": seq}) + "\n"
                self.delivery.sent[seq] = trio.current_time()
                await stdin.send_all(line.encode())
                seq += 1
                await trio.sleep(self.publish_interval)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the publisher died: the delivery figures will say so

    async def wait_flowing(self, timeout: float = 40.0) -> None:
        """Wait until documents published from now on arrive (the pair is linked)."""
        now = trio.current_time()
        if not await self.delivery.wait_sent_after(now, timeout):
            raise AssertionError("the legitimate pair never delivered:\n"
                                 + "\n".join(c.describe() for c in self.children))

    def describe(self) -> str:
        return "\n".join(child.describe() for child in self.children)


async def _first(child: Child, event: trio.Event) -> None:
    with trio.move_on_after(START_TIMEOUT):
        while not event.is_set():
            if not child.alive:
                await trio.sleep(0.2)  # let the drain tasks read what it said
                raise AssertionError(f"{child.name} exited before starting: {child.describe()}")
            with trio.move_on_after(0.2):
                await event.wait()
    if not event.is_set():
        raise AssertionError(f"{child.name} did not start in time: {child.describe()}")


@asynccontextmanager
async def open_world(*, signallers: int = 1, pair: bool = True, sub_on: int = 0,
                     pub_on: int = -1, publish_interval: float = 0.1,
                     ) -> AsyncIterator[World]:
    """Signallers (each joining the previous one) and, with ``pair``, the legitimate
    pair, flowing; everything is killed when the ``async with`` ends."""
    async with trio.open_nursery() as nursery:
        world = World(nursery, publish_interval)
        try:
            for _ in range(signallers):
                join = [world.signallers[-1].url] if world.signallers else []
                await world.start_signaller(join)
            if pair:
                started = trio.current_time()
                await world.start_pair(sub_on, pub_on)
                await world.wait_flowing()
                world.first_delivery = trio.current_time() - started
            yield world
        finally:
            for child in world.children:
                if child.alive:
                    child.process.kill()
            nursery.cancel_scope.cancel()
