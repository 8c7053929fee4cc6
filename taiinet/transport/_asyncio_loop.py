"""The asyncio loop aiortc runs on, stepped by a trio task in trio's own thread; ICE host addresses.

Theory of operation
-------------------
aiortc runs on asyncio, TaiiNet on trio.  Trio guest mode needs asyncio to be
the host loop, which a trio program cannot offer, and trio-asyncio replaces
the asyncio event loop policy process-wide.  So each trio run holds one plain
asyncio ``SelectorEventLoop`` (a ``RunVar``), shared by every
``AiortcBridge`` of the run (the first one started makes it, the last one
closed closes it), and a trio system task drives it in the trio thread:

* one iteration of the loop is ``loop.stop(); loop.run_forever()`` (asyncio
  documents that this runs the callbacks ready now, polls I/O without
  blocking and fires the timers due, then returns);
* an iteration after which callbacks are ready (asyncio runs the ones a
  callback schedules in the next iteration: a task woken by a future) or a
  socket is readable (asyncio reads one datagram per socket per iteration,
  so the rest of a burst waits; and a datagram the iteration's callbacks
  sent to another socket of this loop, both ends of a link in one process,
  is already there) is followed at once by another, up to
  ``CHAINED_STEPS``, without a trio scheduling round in between: a ping-pong
  frame between two links of one process costs two trio rounds, not five
  (the selector is polled again, level-triggered, consuming nothing);
* between iterations the driver waits in trio until the loop's selector (an
  epoll/kqueue descriptor, itself pollable) is readable, its next timer is
  due, or trio code scheduled work on it (``call_soon``/``create_task`` here,
  which wake the driver, or ``flush_soon``: the data channels' flushes of
  one iteration in one callback).

Why not a loop in its own thread (the first design): every message then
crossed threads (a lock, a wake-up socket write on each side) and, worse,
every hop waited for the GIL.  On a loaded machine a thread handing the GIL to
the other waits for the OS to schedule that thread: in ``bench/pubsub.py``
with twenty nodes p50 was 40 ms even at 10 documents/s.  With one thread there
is no GIL hand-off and no wake-up socket; asyncio callbacks and trio tasks
simply take turns.

Everything asyncio does therefore happens inside ``run_forever`` on the trio
thread: aiortc's code sees a running loop as usual, and trio code must never
call into aiortc directly (it has no running loop there): it schedules a
callback or a task with ``call_soon``/``create_task``.

Loopback and ICE: aioice leaves 127.0.0.1 out of its host candidates;
``candidate_addresses`` replaces what aioice gathers for the peer connections
of one bridge (through a context variable read by a wrapper around
``aioice.ice.get_host_addresses``; unset, aioice's own answer is used).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import select
import selectors
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aioice.ice
import trio

logger = logging.getLogger(__name__)

T = TypeVar("T")

_EPOLL: type = getattr(select, "epoll", type(None))  # Linux only

#: Seconds between iterations when the selector cannot be waited on from trio
#: (a selector without a file descriptor; epoll and kqueue have one).
POLL_INTERVAL = 0.001
#: Iterations the driver runs back to back while the previous one left callbacks
#: ready (an asyncio task woken by a future it waited on runs in the next
#: iteration) or a socket readable (one datagram per socket per iteration), before
#: trio tasks get their turn.
CHAINED_STEPS = 8

# -- candidate addresses ------------------------------------------------------

_CANDIDATE_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "taiinet_candidate_addresses", default=None
)
_aioice_get_host_addresses = aioice.ice.get_host_addresses
_install_lock = threading.Lock()


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    override = _CANDIDATE_ADDRESSES.get()
    if override is None:
        return _aioice_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in override if (use_ipv6 if ":" in a else use_ipv4)]


def _install_candidate_override() -> None:
    with _install_lock:
        if aioice.ice.get_host_addresses is not _get_host_addresses:
            aioice.ice.get_host_addresses = _get_host_addresses


# -- the hosted loop ----------------------------------------------------------


class HostedLoop:
    """One asyncio loop stepped by a trio system task; shared by the bridges of a trio run.

    Three trio tasks: the driver steps the loop and otherwise parks; the
    watcher waits until the selector's descriptor is readable and wakes the
    driver; the timer sleeps until the loop's earliest timer (one long-lived
    cancel scope whose deadline the driver moves only when that timer
    becomes earlier, see ``_set_timer``) and wakes it.  Trio code that
    schedules work wakes it directly.  No cancel scope is made or cancelled
    per iteration: that cost more than the iteration itself.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self.loop = asyncio.SelectorEventLoop(self._selector)
        # The selector's own epoll object, if it has one: asked for one event, it
        # tells whether any socket is readable without selectors' Python wrapper
        # (a key lookup and a list per event) that ``select(0)`` costs.
        raw = getattr(self._selector, "_selector", None)
        self._epoll: Any = raw if isinstance(raw, _EPOLL) else None
        self.users = 0
        #: Set once the driver has stopped and the loop is closed.
        self.finished = trio.Event()
        self._stopping = False
        self._woken = False
        self._driver: trio.lowlevel.Task | None = None
        self._driver_parked = False
        self._watcher: trio.lowlevel.Task | None = None  # parked until the next step
        self._timer_scope: trio.CancelScope | None = None
        self._timer_when = math.inf  # when the timer task wakes the driver, in loop time
        self._timer_at = math.inf  # ... in trio time
        self._flushes: list[Callable[[], object]] = []  # ``flush_soon``'s, for one callback

    # trio side

    def poke(self) -> None:
        """Make the driver run an iteration soon: trio code scheduled work on the loop."""
        self._woken = True
        self._wake_driver()

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop (inside its next iteration)."""
        self.loop.call_soon(fn, context=contextvars.Context())
        self.poke()

    def flush_soon(self, flush: Callable[[], object]) -> None:
        """Run ``flush`` in the loop's next iteration, with every flush queued before it runs.

        One loop callback (a ``Handle`` and a fresh context) for all of them,
        not one each: in a saturated ``bench/pubsub.py`` run the senders of
        some five links hand messages over between two iterations.  Flushes
        run in the order queued; one that raises does not keep the others
        from running (the loop's exception handler hears of it, as of a
        callback's).
        """
        flushes = self._flushes
        if not flushes:
            self.loop.call_soon(self._run_flushes, context=contextvars.Context())
            self.poke()
        flushes.append(flush)

    def _run_flushes(self) -> None:
        flushes, self._flushes = self._flushes, []
        for flush in flushes:
            try:
                flush()
            except Exception as exc:
                self.loop.call_exception_handler(
                    {"message": f"flush {flush!r} failed", "exception": exc})

    def create_task(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start ``coro`` as an asyncio task (in a fresh context: no trio context leaks in)."""
        task = self.loop.create_task(coro, context=contextvars.Context())
        self.poke()
        return task

    def stop(self) -> None:
        """Let the driver finish: a last iteration, then it closes the loop, sets ``finished``."""
        self._stopping = True
        self.poke()

    # the driver

    def _wake_driver(self) -> None:
        if self._driver_parked and self._driver is not None:
            self._driver_parked = False
            trio.lowlevel.reschedule(self._driver)

    def _abort_park(self, _: object) -> trio.lowlevel.Abort:
        self._driver_parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    def _step(self) -> None:
        """One iteration, then more while ``_more_to_do``, up to ``CHAINED_STEPS`` in all.

        Each iteration runs the callbacks ready now, the I/O ready now (no
        wait) and the timers due.  The loop is made the running one once for
        the chain, not per iteration: nothing but ``_more_to_do`` runs between
        them, and CPython's ``_set_running_loop`` (like ``get_running_loop``)
        costs a ``getpid`` system call.
        """
        loop: Any = self.loop
        run_once = getattr(loop, "_run_once", None)
        if run_once is None:  # the documented way, with a few us of set-up per call
            loop.stop()
            loop.run_forever()
            chained = 1
            while chained < CHAINED_STEPS and self._more_to_do():
                loop.stop()
                loop.run_forever()
                chained += 1
            return
        # What run_forever does around its iterations, less what aiortc does
        # not use (async generator hooks, coroutine origin tracking); a set
        # ``_stopping`` makes each iteration poll without blocking.
        outer = asyncio.events._get_running_loop()  # a host loop, if trio is its guest
        asyncio.events._set_running_loop(loop)
        try:
            loop._stopping = True
            run_once()
            chained = 1
            while chained < CHAINED_STEPS and self._more_to_do():
                loop._stopping = True  # as it was (a callback may have run ``stop``)
                run_once()  # callbacks the iteration made ready, datagrams waiting
                chained += 1
        finally:
            loop._stopping = False
            asyncio.events._set_running_loop(outer)

    def _more_to_do(self) -> bool:
        """Whether callbacks wait in the loop's ready queue or a socket is readable now.

        Asked after an iteration: its callbacks may have sent datagrams that a
        socket of this loop already holds (both ends of a link in one process)
        and asyncio reads one datagram per socket per iteration.  The selectors
        are level-triggered: polling consumes nothing.
        """
        if self.loop._ready:  # type: ignore[attr-defined]
            return True
        if self._epoll is not None:
            return bool(self._epoll.poll(0, 1))
        return bool(self._selector.select(0))

    def _next_timer(self) -> float:
        """The loop time of the earliest timer (inf: none); 0 if callbacks are ready."""
        loop: Any = self.loop  # the ready queue and timer heap are not public
        if loop._ready:
            return 0.0
        if loop._scheduled:
            return float(loop._scheduled[0].when())
        return math.inf

    def _set_timer(self, when: float) -> None:
        """Wake the driver by loop time ``when``: trio's deadline only ever moves earlier.

        A later timer (or none) leaves the armed deadline alone: it fires early
        once, the driver steps and arms the next.  asyncio's earliest timer is
        mostly pushed later (a SACK or retransmission timer restarted as each
        packet comes and goes), and moving a trio deadline cost more per message
        than such a wake-up costs per timer period.
        """
        if when >= self._timer_when:
            return
        self._timer_when = when
        at = math.inf if when == math.inf else trio.current_time() + (when - self.loop.time())
        self._timer_at = at
        if self._timer_scope is not None and not self._timer_scope.cancel_called:
            self._timer_scope.deadline = at

    async def drive(self) -> None:
        self._driver = trio.lowlevel.current_task()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, name="taiinet-asyncio-watcher")
                nursery.start_soon(self._time, name="taiinet-asyncio-timer")
                while True:
                    self._woken = False
                    self._step()  # and the iterations chained to it
                    if self._stopping:
                        break
                    if self._watcher is not None:  # the step consumed the ready events
                        watcher, self._watcher = self._watcher, None
                        trio.lowlevel.reschedule(watcher)
                    when = self._next_timer()
                    if self._woken or when <= self.loop.time():
                        await trio.lowlevel.checkpoint()  # trio tasks take their turn
                        continue
                    self._set_timer(when)
                    self._driver_parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                nursery.cancel_scope.cancel()
        except Exception:  # a bug: the bridges' calls now fail as on a closed endpoint
            logger.exception("the asyncio loop driver failed")
        finally:
            self.loop.close()
            self._flushes.clear()  # never run: a later ``flush_soon`` raises, as ``call_soon``
            self.finished.set()

    async def _watch(self) -> None:
        """Wake the driver whenever the loop's selector has events (it must step to clear them)."""
        try:
            fileno: int | None = self._selector.fileno()
        except AttributeError:  # a selector with no descriptor: poll instead
            fileno = None
        while True:
            if fileno is None:
                await trio.sleep(POLL_INTERVAL)
            else:
                await trio.lowlevel.wait_readable(fileno)
            self._wake_driver()
            self._watcher = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_watch)

    def _abort_watch(self, _: object) -> trio.lowlevel.Abort:
        self._watcher = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def _time(self) -> None:
        """Wake the driver when the loop's earliest timer is due."""
        while True:
            with trio.CancelScope(deadline=self._timer_at) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            if self._timer_at <= trio.current_time():
                self._timer_when = self._timer_at = math.inf
            self._wake_driver()


_HOSTED: trio.lowlevel.RunVar[HostedLoop | None] = trio.lowlevel.RunVar(
    "taiinet_hosted_asyncio_loop", default=None
)


def _acquire_loop() -> HostedLoop:
    """The running loop of this trio run (started if there is none), with one more user."""
    hosted = _HOSTED.get()
    if hosted is None:
        hosted = HostedLoop()
        _HOSTED.set(hosted)
        trio.lowlevel.spawn_system_task(hosted.drive, name="taiinet-asyncio-loop")
    hosted.users += 1
    return hosted


def _release_loop(hosted: HostedLoop) -> bool:
    """One user less; True for the last one, who must shut the loop down."""
    hosted.users -= 1
    if hosted.users:
        return False
    if _HOSTED.get() is hosted:
        _HOSTED.set(None)  # the next bridge starts a new loop
    return True
