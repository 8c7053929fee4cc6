"""Scheduler rounds counted once for every task that waits some.

A link's sender lets scheduler rounds pass before it takes a batch off its
queue (``taiinet.link.manager.BATCH_ROUNDS``), so that what other tasks
queue meanwhile shares the frame.  Each sender spinning on
``trio.lowlevel.checkpoint()`` costs one task step per round per waiting
sender; the senders of one node mostly wait at the same time (a document
forwarded to several neighbours wakes their senders together).  ``Rounds``
counts the rounds in one task (one checkpoint per round while anybody
waits) and wakes each waiter once its rounds have passed: one step per
waiter instead of one per round.

A waiter is woken after at least ``rounds`` whole rounds: the count it waits
for starts at the round after the one it parked in (the counting task may
already have run in that one).  Waiting is cancellable; a cancelled waiter's
entry is dropped when its round comes (at most one entry per waiting task).
A waiter parks itself and the counting task reschedules it (trio's low-level
pair): a busy sender waits once per frame, and a ``trio.Event`` per wait
would cost three objects (the event, its parking lot and the lot's dict)
and the lot's bookkeeping each time.
"""

from __future__ import annotations

import heapq

import trio


class Rounds:
    """One task (``run``) counting scheduler rounds for every ``wait``."""

    __slots__ = ("_count", "_seq", "_waiters", "_wake")

    def __init__(self) -> None:
        self._count = 0
        self._seq = 0
        #: (round to wake at, seq, [task]) of every task waiting; the task is
        #: ``None`` once its wait was cancelled.
        self._waiters: list[tuple[int, int, list[trio.lowlevel.Task | None]]] = []
        self._wake = trio.Event()

    async def wait(self, rounds: int) -> None:
        """Let at least ``rounds`` scheduler rounds pass (one: a plain checkpoint)."""
        if rounds <= 1:
            await trio.lowlevel.checkpoint()
            return
        waiter: list[trio.lowlevel.Task | None] = [trio.lowlevel.current_task()]
        self._seq += 1
        heapq.heappush(self._waiters, (self._count + rounds + 1, self._seq, waiter))
        self._wake.set()

        def abort(_raise_cancel: object) -> trio.lowlevel.Abort:
            waiter[0] = None  # dropped when its round comes
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def run(self) -> None:
        """Count rounds while anybody waits (run it as a task, until cancelled)."""
        waiters = self._waiters
        while True:
            if not waiters:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            await trio.lowlevel.checkpoint()
            self._count += 1
            while waiters and waiters[0][0] <= self._count:
                task = heapq.heappop(waiters)[2][0]
                if task is not None:
                    trio.lowlevel.reschedule(task)
