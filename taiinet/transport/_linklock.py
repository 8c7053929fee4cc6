"""The lock of a link's one sender (or reader): one attribute test when free."""

from __future__ import annotations

import trio


class LinkLock:
    """A FIFO lock that costs one attribute test when free.

    A link's send (or receive) is nearly never contended: one task sends, one
    reads.  ``trio.Lock`` tracks its owner and registers a parking-lot breaker
    on every acquire, a tenth of a 1 KiB frame's cost on a memory link.  Taking
    a free lock does not yield (every send or receive reaches a checkpoint in
    the channel anyway): ``if lock.held: await lock.wait()``, then
    ``lock.held = True``.  ``release`` hands a held lock to the first waiter.
    """

    __slots__ = ("_waiters", "held", "waiting")

    def __init__(self) -> None:
        self.held = False
        self._waiters = trio.lowlevel.ParkingLot()
        #: Tasks in ``wait``: cheaper to test than the parking lot.
        self.waiting = 0

    async def wait(self) -> None:
        """Take the lock once its holder releases it (called when ``held``)."""
        self.waiting += 1
        try:
            await self._waiters.park()
        finally:
            self.waiting -= 1

    def release(self) -> None:
        # A waiter cancelled in this round already left the parking lot but not
        # yet ``wait``: if nobody was handed the lock, it is free.
        if not (self.waiting and self._waiters.unpark()):
            self.held = False
        # (else the waiter now holds it: ``held`` stays True)
