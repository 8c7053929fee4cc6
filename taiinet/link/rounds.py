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
costs five objects (the event, its parking lot, the lot's dict and the
closure it parks with) and the lot's bookkeeping; a ``_Waiter`` is two (it
and its bound ``abort``).
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
        #: (round to wake at, seq, waiter) of every task waiting.
        self._waiters: list[tuple[int, int, _Waiter]] = []
        self._wake = trio.Event()

    async def wait(self, rounds: int) -> None:
        """Let at least ``rounds`` scheduler rounds pass (one: a plain checkpoint)."""
        if rounds <= 1:
            await trio.lowlevel.checkpoint()
            return
        waiter = _Waiter(trio.lowlevel.current_task())
        self._seq += 1
        heapq.heappush(self._waiters, (self._count + rounds + 1, self._seq, waiter))
        self._wake.set()
        await trio.lowlevel.wait_task_rescheduled(waiter.abort)

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
                task = heapq.heappop(waiters)[2].task
                if task is not None:
                    trio.lowlevel.reschedule(task)


class _Waiter:
    """A task parked in ``Rounds.wait``; ``task`` is ``None`` once its wait was
    cancelled (its entry is then dropped when its round comes)."""

    __slots__ = ("task",)

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task: trio.lowlevel.Task | None = task

    def abort(self, _raise_cancel: object) -> trio.lowlevel.Abort:
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED
