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
* between iterations the driver waits in trio until the loop's selector (an
  epoll/kqueue descriptor, itself pollable) is readable, its next timer is
  due, or trio code scheduled work on it (``call_soon``/``create_task`` here,
  which wake the driver).

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
import selectors
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aioice.ice
import trio

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between iterations when the selector cannot be waited on from trio
#: (a selector without a file descriptor; epoll and kqueue have one).
POLL_INTERVAL = 0.001

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
    """One asyncio loop stepped by a trio system task; shared by the bridges of a trio run."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self.loop = asyncio.SelectorEventLoop(self._selector)
        self.users = 0
        #: Set once the driver has stopped and the loop is closed.
        self.finished = trio.Event()
        self._woken = False
        self._wake_scope: trio.CancelScope | None = None
        self._stopping = False

    # trio side

    def poke(self) -> None:
        """Make the driver run an iteration soon: trio code scheduled work on the loop."""
        self._woken = True
        if self._wake_scope is not None:
            self._wake_scope.cancel()

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop (inside its next iteration)."""
        self.loop.call_soon(fn, context=contextvars.Context())
        self.poke()

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

    def _step(self) -> None:
        self.loop.stop()
        self.loop.run_forever()

    def _delay(self) -> float:
        """Seconds until the loop has something to do without new I/O (inf: nothing)."""
        loop: Any = self.loop  # the ready queue and timer heap are not public
        if loop._ready:
            return 0.0
        if loop._scheduled:
            return max(0.0, float(loop._scheduled[0].when() - loop.time()))
        return math.inf

    async def drive(self) -> None:
        fileno: int | None
        try:
            fileno = self._selector.fileno()
        except AttributeError:
            fileno = None
        try:
            while True:
                self._woken = False
                self._step()
                if self._stopping:
                    break
                delay = self._delay()
                if self._woken or delay == 0.0:
                    await trio.lowlevel.checkpoint()  # trio tasks take their turn
                    continue
                if fileno is None:
                    delay = min(delay, POLL_INTERVAL)
                with trio.CancelScope(deadline=trio.current_time() + delay) as scope:
                    self._wake_scope = scope
                    if fileno is None:
                        await trio.sleep_forever()
                    else:
                        await trio.lowlevel.wait_readable(fileno)
                self._wake_scope = None
        except Exception:  # a bug: the bridges' calls now fail as on a closed endpoint
            logger.exception("the asyncio loop driver failed")
        finally:
            self._wake_scope = None
            self.loop.close()
            self.finished.set()


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
