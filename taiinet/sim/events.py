"""A discrete-event loop: a heap of (time, sequence, callback, argument).

Generic and protocol-agnostic, shared by every simulation (overlay, DHT).
Events at the same time run in the order they were scheduled (the sequence
number breaks ties), so a run depends only on its inputs and seeds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

Callback = Callable[..., None]


class EventLoop:
    """Simulated time; ``schedule`` callbacks, then ``run`` them in time order."""

    __slots__ = ("_heap", "_seq", "events_run", "now")

    def __init__(self) -> None:
        self.now = 0.0
        self.events_run = 0
        self._heap: list[tuple[float, int, Callback, tuple[Any, ...]]] = []
        self._seq = 0

    def schedule(self, at: float, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` at simulated time ``at`` (not before ``now``)."""
        self._seq += 1
        heapq.heappush(self._heap, (at if at > self.now else self.now, self._seq, callback, args))

    def call_later(self, delay: float, callback: Callback, *args: Any) -> None:
        self.schedule(self.now + delay, callback, *args)

    def run(self, until: float | None = None, max_events: int | None = None) -> None:
        """Run events in time order, up to time ``until`` (inclusive) or until none is left.

        ``now`` ends at ``until`` when it is given, even if the queue ran dry.
        """
        heap = self._heap
        pop = heapq.heappop
        limit = float("inf") if until is None else until
        budget = -1 if max_events is None else max_events
        count = 0
        while heap and heap[0][0] <= limit and count != budget:
            at, _seq, callback, args = pop(heap)
            self.now = at
            callback(*args)
            count += 1
        self.events_run += count
        if until is not None and (not heap or heap[0][0] > until):
            self.now = max(self.now, until)

    @property
    def pending(self) -> int:
        return len(self._heap)
