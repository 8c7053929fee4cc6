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
re-arm, at most once per RTO while data flows.
"""

from __future__ import annotations

import asyncio
from typing import Any

_HOOKED = "_taiinet_lazy_t3"


class _Running:
    """What ``_t3_handle`` holds while T3 runs: aiortc tests it, and only our code cancels it."""

    __slots__ = ()

    def cancel(self) -> None:
        """Nothing: the loop timer is ours (``lazy_t3``), and outlives a cancelled T3."""


_RUNNING = _Running()


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
    expire = sctp._t3_expired
    deadline: float | None = None  # loop time at which T3 expires; None: not running
    timer: asyncio.TimerHandle | None = None
    armed_for = 0.0  # the deadline ``timer`` was armed for

    def arm() -> None:
        nonlocal timer, armed_for
        assert deadline is not None
        if timer is not None:
            if armed_for <= deadline:
                return  # fires first, then re-arms for the deadline
            timer.cancel()  # the RTO shrank: an earlier deadline
        armed_for = deadline
        timer = loop.call_at(deadline, fired)

    def fired() -> None:
        nonlocal timer, deadline
        timer = None
        if deadline is None:
            return  # cancelled meanwhile
        if deadline > armed_for:
            arm()  # restarted meanwhile
            return
        deadline = None
        expire()  # aiortc's: clears _t3_handle, marks for retransmission, may start T3

    def start() -> None:
        assert sctp._t3_handle is None  # as aiortc's _t3_start
        restart()

    def restart() -> None:
        nonlocal deadline
        deadline = loop.time() + sctp._rto
        sctp._t3_handle = _RUNNING
        arm()

    def cancel() -> None:
        nonlocal deadline, timer
        deadline = None
        sctp._t3_handle = None
        if sctp._association_state == closed and timer is not None:
            timer.cancel()  # nothing will start it again: leave nothing on the loop
            timer = None

    running: asyncio.TimerHandle | None = sctp._t3_handle
    if running is not None:  # aiortc's timer runs (the answerer's, for its DCEP ACK): take it over
        running.cancel()
        deadline = running.when()
        sctp._t3_handle = _RUNNING
        arm()
    sctp._t3_start = start
    sctp._t3_restart = restart
    sctp._t3_cancel = cancel
    setattr(sctp, _HOOKED, True)
    return True
