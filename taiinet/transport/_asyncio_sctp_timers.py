"""SCTP's retransmission timer (T3-rtx) moved lazily: one loop timer per RTO, not two per packet.

aiortc (1.16) starts T3 (``call_later(rto)``, at least 1 s) when a DATA
chunk leaves with none outstanding, cancels it when a SACK acknowledges
everything and restarts it (cancel, ``call_later``) when a SACK acknowledges
the earliest chunk.  On a link that sends a message and gets it acknowledged
before the next, that is a timer made and a timer cancelled per packet: a
``TimerHandle``, a push on the loop's heap, later a pop of the cancelled one,
and, whenever the earliest timer changes, a new deadline for the trio task
that wakes the loop.

``lazy_t3`` keeps aiortc's rules (RFC 9260 section 6.3.2) and its expiry
(``_t3_expired``) but moves only a deadline: starting or restarting T3 sets
it, cancelling clears it, and one loop timer stays armed at or before it.
When that timer fires it re-arms for a deadline that moved later, does
nothing if T3 was cancelled, and otherwise calls aiortc's ``_t3_expired`` as
aiortc's own timer would have.  ``_t3_handle`` still tells aiortc whether T3
runs (it only tests it).  The timer never fires late; it may fire early and
re-arm, at most once per RTO while data flows.  ``LazyDeadline`` is that
timer; ``_asyncio_sctp.delay_sacks`` moves its SACK delay with one too.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

_HOOKED = "_taiinet_lazy_t3"


class _Running:
    """What ``_t3_handle`` holds while T3 runs: aiortc tests it, and only our code cancels it."""

    __slots__ = ()

    def cancel(self) -> None:
        """Nothing: the loop timer is ours (``lazy_t3``), and outlives a cancelled T3."""


_RUNNING = _Running()


class LazyDeadline:
    """A deadline moved without touching the loop: one loop timer armed at or before it.

    ``set`` moves the deadline (an earlier one re-arms the loop timer; a later
    one leaves it, and it re-arms when it fires), ``clear`` forgets it (the
    armed timer fires and does nothing), ``stop`` also cancels the loop timer.
    When the deadline is reached, it is cleared and ``expire`` runs.

    Each arm makes one ``TimerHandle`` and nothing else: the callback is bound
    once and runs in one context copied when the deadline is made (the
    association's), where ``call_at`` would bind a method and copy the current
    context every time.  Arms are per packet on a busy link (the SACK delay),
    and what a timer holds is often still alive when the collector runs.
    """

    __slots__ = ("_armed_for", "_context", "_loop", "_on_due", "_timer", "deadline", "expire")

    def __init__(self, expire: Callable[[], None]) -> None:
        #: What runs when the deadline is reached.
        self.expire = expire
        #: Loop time at which ``expire`` runs; None: not set.
        self.deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = 0.0  # the deadline ``_timer`` was armed for
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_due = self._fired
        self._context = contextvars.copy_context()

    def set(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self.deadline = deadline
        self._arm(loop, deadline)

    def clear(self) -> None:
        self.deadline = None

    def stop(self) -> None:
        """``clear``, and nothing left on the loop."""
        self.deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._timer is not None:
            if self._armed_for <= deadline:
                return  # fires first, then re-arms for the deadline
            self._timer.cancel()  # an earlier deadline
        self._armed_for = deadline
        self._loop = loop
        self._timer = loop.call_at(deadline, self._on_due, context=self._context)

    def _fired(self) -> None:
        self._timer = None
        deadline = self.deadline
        if deadline is None:
            return  # cleared meanwhile
        if deadline > self._armed_for:
            assert self._loop is not None
            self._arm(self._loop, deadline)  # moved later meanwhile
            return
        self.deadline = None
        self.expire()


def lazy_t3(sctp: Any) -> bool:
    """Move ``sctp``'s T3 timer lazily; False if aiortc lacks a hook."""
    if (
        getattr(sctp, _HOOKED, False)
        or not all(
            hasattr(sctp, a)
            for a in ("_t3_start", "_t3_restart", "_t3_cancel", "_t3_expired", "_t3_handle",
                      "_rto", "_loop", "_association_state", "State")
        )
        or not (sctp._t3_handle is None or isinstance(sctp._t3_handle, asyncio.TimerHandle))
    ):
        return False
    loop: asyncio.AbstractEventLoop = sctp._loop
    closed = sctp.State.CLOSED
    # At expiry, aiortc's: clears _t3_handle, marks for retransmission, may start T3.
    t3 = LazyDeadline(sctp._t3_expired)

    def start() -> None:
        assert sctp._t3_handle is None  # as aiortc's _t3_start
        restart()

    def restart() -> None:
        sctp._t3_handle = _RUNNING
        t3.set(loop, loop.time() + sctp._rto)

    def cancel() -> None:
        sctp._t3_handle = None
        if sctp._association_state == closed:
            t3.stop()  # nothing will start it again: leave nothing on the loop
        else:
            t3.clear()

    running: asyncio.TimerHandle | None = sctp._t3_handle
    if running is not None:  # aiortc's timer runs (the answerer's, for its DCEP ACK): take it over
        running.cancel()
        sctp._t3_handle = _RUNNING
        t3.set(loop, running.when())
    sctp._t3_start = start
    sctp._t3_restart = restart
    sctp._t3_cancel = cancel
    setattr(sctp, _HOOKED, True)
    return True
