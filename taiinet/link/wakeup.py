"""A flag tasks wait on, set and cleared over and over: a reusable ``trio.Event``.

A link's sender waits for "an urgent item was queued" between frames, and a
subscription's reader for "a message was queued"; those flags are set and
cleared again for every frame or message.  A ``trio.Event`` cannot be
cleared, so one was made for every use, and every wait on one makes a
closure (a function, two cells and a tuple) besides trio's own parking
objects.  Those objects live as long as the wait: a task that waits across
two young garbage collections takes them to the oldest generation, and such
promoted objects are what brings the next full collection on (one walks
every tracked object of the process).  ``Wakeup`` is one object for the
flag's whole life; the first waiter's wait makes only what trio makes to
park a task.

Any number of tasks may wait (the waiters after the first wait on an event
of their own, made then: the rare case); ``set`` wakes them all.  A waiter
woken by ``set`` returns even if ``clear`` came before it ran, as one
waiting on an event that was set and then replaced by a new one.  Waiting is
cancellable and leaves the flag as it was.
"""

from __future__ import annotations

import trio


class Wakeup:
    """A clearable flag; ``wait`` until it is set."""

    __slots__ = ("_abort", "_flag", "_more", "_task")

    def __init__(self) -> None:
        self._flag = False
        #: The first waiting task (woken by ``reschedule``, no event).
        self._task: trio.lowlevel.Task | None = None
        #: What the other waiting tasks wait on, if any do.
        self._more: trio.Event | None = None
        # Bound once: trio keeps the abort function for as long as the task waits.
        self._abort = self._aborted

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiting task."""
        self._flag = True
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)
        if self._more is not None:
            self._more.set()
            self._more = None

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        """Return once the flag is set (a checkpoint if it already is)."""
        if self._flag:
            await trio.lowlevel.checkpoint()
            return
        if self._task is None:
            self._task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
            return
        if self._more is None:
            self._more = trio.Event()
        await self._more.wait()

    def _aborted(self, _raise_cancel: object) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED
