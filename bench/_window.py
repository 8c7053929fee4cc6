"""The measured window and the figures every row of ``bench/transport.py`` reports.

Standard library only: ``_raw_aiolibdatachannel.py`` imports it in a child
process under another interpreter, where TaiiNet is not installed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

#: Messages/s, MB/s, p50 and p99 round trip (ms), CPU µs per message (both ends).
Figures = tuple[float, float, float, float, float]


class Window:
    """Counts the messages that arrive from ``warmup`` to ``warmup + seconds`` after it
    is made (when the first message arrived), and with ``cpu`` the process CPU time
    they took.

    The CPU clock is read twice, at the first message counted and at the first
    one after the window (a system call per message would add to every row's
    cost): the figure is that span's CPU time over the messages it holds.
    """

    def __init__(self, warmup: float, seconds: float, *, cpu: bool = True) -> None:
        self.start = time.perf_counter() + warmup
        self.end = self.start + seconds
        self.counted = 0
        self._cpu = cpu
        self._first = self._last = self._cpu_first = 0.0
        self._cpu_last: float | None = None

    def arrived(self) -> None:
        now = time.perf_counter()
        if self.start <= now <= self.end:
            if self.counted == 0:
                self._first = now
                if self._cpu:
                    self._cpu_first = time.process_time()
            self.counted += 1
            self._last = now
        elif now > self.end and self._cpu and self.counted and self._cpu_last is None:
            self._cpu_last = time.process_time()

    @property
    def rate(self) -> float:
        """Messages/s between the first and the last message counted."""
        span = self._last - self._first
        return (self.counted - 1) / span if span > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        """CPU µs per message over the window (0 without ``cpu``, or if none came after)."""
        if self._cpu_last is None or not self.counted:
            return 0.0
        return (self._cpu_last - self._cpu_first) / self.counted * 1e6


def figures(window: Window, size: int, round_trips: list[float]) -> Figures:
    quantiles = statistics.quantiles(round_trips, n=100)
    rate = window.rate
    return rate, rate * size / 1e6, quantiles[49] * 1e3, quantiles[98] * 1e3, window.cpu_us


async def measure_asyncio(send_a: Callable[[bytes], Awaitable[None]],
                          receive_a: Callable[[], Awaitable[bytes]],
                          send_b: Callable[[bytes], Awaitable[None]],
                          receive_b: Callable[[], Awaitable[bytes]],
                          size: int, warmup: float, seconds: float, pings: int) -> Figures:
    """A raw asyncio channel pair's row: a to b flat out, counted in the window, then
    ``pings`` round trips a -> b -> a."""
    import asyncio  # (the trio rows never need it)

    payload = b"\x00" + bytes(size - 1)

    async def sender() -> None:
        deadline = time.perf_counter() + warmup + seconds + 0.2
        while time.perf_counter() < deadline:
            await send_a(payload)
        await send_a(b"\x01" + bytes(size - 1))

    async def receiver() -> Window:
        message = await receive_b()
        window = Window(warmup, seconds)
        while message[0] == 0:
            window.arrived()
            message = await receive_b()
        return window

    _, window = await asyncio.gather(sender(), receiver())
    round_trips = []
    ping = b"\x02" + bytes(size - 1)
    for _ in range(pings):
        began = time.perf_counter()
        await send_a(ping)
        await send_b(await receive_b())
        await receive_a()
        round_trips.append(time.perf_counter() - began)
    return figures(window, size, round_trips)
