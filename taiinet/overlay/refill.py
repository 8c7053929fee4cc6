# taiinet: sans-io core
"""How often a short active view asks passive peers to fill it (HyParView's refill).

A view below ``active_size`` sends ``Neighbor`` requests to random passive
peers, one per free slot, after every change and at each keep-alive tick;
at most ``rejections_per_interval`` refusals per tick.  When every peer it
asks is full (a small overlay whose other nodes all hold full views: 20
nodes of view 5 can settle with one node at 4), asking again every tick
only opens and closes links: 3 a tick, ~15 per 10 s, each a dial (a WebRTC
link ~9 ms of CPU).  So a tick that finds the refusal allowance spent
starts a backoff: the tick refills are skipped for ``keepalive_interval``
x 2, 4, 8, ... up to ``refill_backoff`` seconds, and while it lasts the
allowance of a refilling tick is one refusal (one dial per pause).  Any change of the active
view (a neighbour lost or gained, which is when room may have opened
elsewhere) ends the backoff, and a node with no neighbour never backs off
(docs/overlay.md, "Refill").
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest backoff, in keep-alive intervals doubled: 2^STRIKES_MAX.
STRIKES_MAX = 16


@dataclass(slots=True)
class RefillPacing:
    """Refusals this tick, and the backoff of tick refills after refused ticks."""

    #: Requests refused since the last keep-alive tick.
    rejections: int = 0
    #: Consecutive ticks whose refusal allowance was spent.
    strikes: int = 0
    #: Tick refills wait until then.
    resume_at: float = 0.0

    def refused(self) -> None:
        self.rejections += 1

    def spent(self, allowance: int) -> bool:
        """Whether no more requests go out until the next tick (``allowance``: the
        refusals a tick may take, one while backing off)."""
        return self.rejections >= (1 if self.strikes else allowance)

    def tick(self, now: float, interval: float, allowance: int, longest: float) -> bool:
        """A keep-alive tick: whether it refills (and a new allowance of refusals)."""
        if self.spent(allowance):
            self.strikes = min(self.strikes + 1, STRIKES_MAX)
            self.resume_at = now + min(interval * 2 ** self.strikes, longest)
        self.rejections = 0
        return now >= self.resume_at

    def view_changed(self) -> None:
        """A neighbour came or went: room may have opened; refill on the next tick."""
        self.strikes = 0
        self.resume_at = 0.0
