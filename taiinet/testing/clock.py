"""A ``MockClock`` that waits for worker threads.

``MockClock(autojump_threshold=0)`` makes an in-process run of many nodes fast
and independent of the machine's load: whenever every task waits, time jumps
to the next deadline.  But a task waiting for ``trio.to_thread.run_sync``
(a seeder writing its SQLite store) also "waits": the clock would jump past
timeouts while the thread is still working, and how far would depend on how
slow the machine is.  Inside ``clock_waits_for_threads(clock)`` the clock
stops jumping while any worker thread started through ``trio.to_thread`` runs,
and jumps again once they have all returned::

    @pytest.fixture
    def clock():
        clock = trio.testing.MockClock(autojump_threshold=0)
        with clock_waits_for_threads(clock):
            yield clock
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
import trio.testing


@contextmanager
def clock_waits_for_threads(clock: trio.testing.MockClock) -> Iterator[None]:
    """Within, ``clock`` does not autojump while a ``trio.to_thread.run_sync`` call runs."""
    original: Callable[..., Any] = trio.to_thread.run_sync
    threshold = clock.autojump_threshold
    running = 0

    async def run_sync(*args: Any, **kwargs: Any) -> Any:
        nonlocal running
        running += 1
        clock.autojump_threshold = math.inf
        try:
            return await original(*args, **kwargs)
        finally:
            running -= 1
            if not running:
                clock.autojump_threshold = threshold

    trio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    try:
        yield
    finally:
        trio.to_thread.run_sync = original  # type: ignore[assignment]
