# taiinet: sans-io core
"""Liveness of HyParView's active view: keep-alive probes and confirmations.

``Neighbour`` is what the membership core keeps of one active-view peer.  At
each keep-alive tick ``probe_idle`` probes (``ProbeLink``) the neighbours not
heard from for a whole interval and returns those still silent
``probe_deadline`` after their first probe (failed: a hung peer whose link
stays open); ``confirm_one`` picks the neighbour to ask whether it still
holds us, the one asked longest ago (docs/overlay.md, "Failure detection"
and "Confirmations").

Silence is counted only for time this node could read: a tick that comes
late (``TickClock``: the node was busy, paused or short of CPU, and read
nothing meanwhile) moves the pending probes later by its lateness, so a
busy node does not fail the neighbours whose frames wait unread in its own
buffers; a peer that is really silent fails one late tick later.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.overlay.actions import Action, ProbeLink
from taiinet.wire.peer_id import PeerId

#: Slack on deadlines (a microsecond): tick times are sums of floats.
SLACK = 1e-6


@dataclass(slots=True)
class Neighbour:
    """What the core keeps of one active-view peer."""

    #: When it became a neighbour (the oldest ones are protected).
    since: float
    #: When a frame of any layer last came from it.
    last_heard: float
    #: When it was first probed without an answer yet (cleared at the tick
    #: that sees it heard from since); ``None``: not probed.
    probed_at: float | None = None
    #: When we last asked it to confirm that it holds us (``Neighbor``), or
    #: when it became a neighbour.
    confirmed_at: float = 0.0


@dataclass(slots=True)
class TickClock:
    """When the next keep-alive tick is due, to tell how late a tick comes."""

    due: float = float("inf")

    def tick(self, now: float, interval: float) -> float:
        """A tick at ``now``: how late it is (>= 0); the next one is due an interval on."""
        late = max(0.0, now - self.due)
        self.due = now + interval
        return late


def probe_idle(neighbours: dict[PeerId, Neighbour], now: float, interval: float,
               deadline: float, out: list[Action], late: float = 0.0) -> list[PeerId]:
    """Probe the neighbours idle for ``interval`` (into ``out``); return the failed ones.

    ``late``: how late this tick is; pending probes move that much later.
    """
    idle_since = now - interval
    expired = now - deadline + SLACK
    failed: list[PeerId] = []
    for peer, neighbour in neighbours.items():
        last = neighbour.last_heard
        probe = neighbour.probed_at
        if probe is not None:
            # A peer is idle for a whole interval when probed, so anything
            # heard at or after the probe time came after it.
            if last >= probe:
                neighbour.probed_at = None
            else:
                if late:  # nothing was read meanwhile: that time is not its silence
                    neighbour.probed_at = probe = probe + late
                if probe <= expired:
                    failed.append(peer)
                    continue
        if last <= idle_since:
            if neighbour.probed_at is None:
                neighbour.probed_at = now
            out.append(ProbeLink(peer=peer))
    return failed


def _confirmed_at(item: tuple[PeerId, Neighbour]) -> float:
    return item[1].confirmed_at


def confirm_one(neighbours: dict[PeerId, Neighbour], now: float) -> PeerId | None:
    """The neighbour to ask now whether it still holds us, marked asked; ``None``: none.

    Views can disagree (a link down seen at one end only, a ``Join`` or a
    reply overtaken by a failure): a node may hold a neighbour that does not
    hold it, which sends it nothing, and whose link answers its probes.  One
    neighbour per keep-alive tick, the one asked longest ago (ties in view
    order), so each is asked at least every ``active_size`` ticks.
    """
    if not neighbours:
        return None
    peer, neighbour = min(neighbours.items(), key=_confirmed_at)
    neighbour.confirmed_at = now
    return peer
