"""Scheduler work during a measured step (``--task-stats``): trio task steps and
hosted asyncio callbacks, counted by what ran.

Every scheduler round a task takes (a wake-up: the step between two
checkpoints) and every callback the asyncio loop that hosts aiortc runs (a
datagram read, a flush, a timer) is counted under a key saying what ran: a
trio task's coroutine name (``LinkManager._reader``), an asyncio callback's
name (``_SelectorDatagramTransport._read_ready``) or ``task:`` and the
coroutine of an asyncio task it steps.  With the time spent inside each
(the process's CPU time around it) and trio's I/O waits (one per batch of runnable
tasks), divided by the step's deliveries, it shows which wake-ups a change
removes without timing two trees.  Opt-in: it adds CPU of its own (a trio
instrument, and a wrapper around ``asyncio.Handle._run`` while it counts).
Standard library and trio only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import trio

#: CPU time of the process, not wall time: other processes on the machine do not count.
_clock = time.process_time


def task_key(task: trio.lowlevel.Task) -> str:
    """What a trio task runs: its coroutine's qualified name (its task name if none)."""
    name = getattr(task.coro, "__qualname__", None)
    return name if isinstance(name, str) else task.name


def callback_key(callback: Callable[..., object]) -> str:
    """What an asyncio callback runs: its qualified name, or ``task:`` and the
    coroutine of the asyncio task it steps."""
    name = getattr(callback, "__qualname__", None)
    if isinstance(name, str):
        return name
    owner = getattr(callback, "__self__", None)
    get_coro = getattr(owner, "get_coro", None)
    if get_coro is not None:
        return "task:" + getattr(get_coro(), "__qualname__", type(owner).__name__)
    return type(callback).__name__


class TaskStats(trio.abc.Instrument):
    """Task steps, I/O waits and asyncio callbacks between ``start`` and ``stop``.

    ``start`` and ``stop`` are called from a trio task of the run to count.
    """

    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()
        self.step_seconds: Counter[str] = Counter()
        self.callbacks: Counter[str] = Counter()
        self.callback_seconds: Counter[str] = Counter()
        self.io_waits = 0
        self._began: float | None = None
        self._on = False
        self._run: Callable[[asyncio.Handle], object] | None = None

    def start(self) -> None:
        self.steps.clear()
        self.step_seconds.clear()
        self.callbacks.clear()
        self.callback_seconds.clear()
        self.io_waits = 0
        self._began = None  # the step running now began uncounted
        if not self._on:
            self._on = True
            trio.lowlevel.add_instrument(self)
            self._wrap_handles()

    def stop(self) -> None:
        if self._on:
            self._on = False
            trio.lowlevel.remove_instrument(self)
            if self._run is not None:
                asyncio.Handle._run = self._run  # type: ignore[method-assign]
                self._run = None

    def _wrap_handles(self) -> None:
        run = self._run = asyncio.Handle._run
        callbacks, seconds = self.callbacks, self.callback_seconds

        def counted_run(handle: asyncio.Handle) -> object:
            began = _clock()
            try:
                return run(handle)
            finally:
                key = callback_key(handle._callback)  # type: ignore[attr-defined]
                callbacks[key] += 1
                seconds[key] += _clock() - began

        asyncio.Handle._run = counted_run  # type: ignore[method-assign,assignment]

    # trio.abc.Instrument

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._began = _clock()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        began, self._began = self._began, None
        if began is not None:
            key = task_key(task)
            self.steps[key] += 1
            self.step_seconds[key] += _clock() - began

    def before_io_wait(self, timeout: float) -> None:
        self.io_waits += 1

    def report(self, deliveries: int, top: int = 8) -> list[str]:
        """Lines: per delivery, task steps and asyncio callbacks (count, CPU us inside) by key."""
        per = 1 / max(deliveries, 1)
        lines = [f"trio: {sum(self.steps.values()) * per:.3f} task steps/delivery, "
                 f"{self.io_waits * per:.3f} I/O waits/delivery"]
        lines += _by_key(self.steps, self.step_seconds, per, top)
        if self.callbacks:
            lines.append(f"asyncio: {sum(self.callbacks.values()) * per:.3f} callbacks/delivery")
            lines += _by_key(self.callbacks, self.callback_seconds, per, top)
        return lines


def _by_key(counts: Counter[str], seconds: Counter[str], per: float, top: int) -> list[str]:
    return [f"  {n * per:7.3f} ({seconds[key] * 1e6 * per:6.1f} us CPU) {key}"
            for key, n in counts.most_common(top)]
