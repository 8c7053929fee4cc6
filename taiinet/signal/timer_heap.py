"""The signalling drivers' timers: the cores' ``SetTimer`` values on a heap.

Timers are never cancelled (a core ignores one that no longer matters), so
this is a heap and one task that fires what is due.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class TimerHeap(Generic[T]):
    """Timer values due at given times; :meth:`run` fires them in order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = 0
        self._wake = trio.Event()

    def add(self, at: float, timer: T) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, timer))
        if self._heap[0][1] == self._seq:
            self._wake.set()

    async def run(self, now: Callable[[], float], fire: Callable[[T, float], None]) -> None:
        """Until cancelled: call ``fire(timer, now)`` for each timer when it is due."""
        while True:
            self._wake = trio.Event()
            at = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(at):
                await self._wake.wait()
            current = now()
            while self._heap and self._heap[0][0] <= current:
                _, _, timer = heapq.heappop(self._heap)
                fire(timer, current)
