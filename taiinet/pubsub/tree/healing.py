# taiinet: sans-io core
"""Healing: a component that has cut itself off from the overlay rejoins it.

HyParView can close a small group whose active views are full of each
other (seen with active views of 3 in 12-node networks: cliques of 4,
3-regular groups of 6): no failure happens inside it, so HyParView never
looks outside again.  In a component of fewer than ``TREE_SIZE_CAP`` nodes
the stable tree's adverts list the members of each side of a tree link, so
every node knows its whole component (``SpanningTree.members_for(None)``).
A passive peer that is not a member lies outside the component (or is
dead): reaching out to it (``Overlay.reach_out``, a high-priority
``Neighbor``, which cannot be refused) can only join two components.  Only
a node whose active view is full reaches out: one with a free slot already
asks passive peers on every shuffle tick (HyParView's refill).  The
check runs every ``component_check_interval`` seconds (times 1 to 2, at
random) and acts only when the same outsider was seen at two checks in a
row, so a member list still converging after a change does not move a view.
"""

from __future__ import annotations

from taiinet.pubsub.tree.routes import SpanningTree
from taiinet.wire.peer_id import PeerId


class Healing:
    """Which passive peer to reach out to, if any; one suspicion carried between checks."""

    __slots__ = ("reached_out", "suspect")

    def __init__(self) -> None:
        #: The outsider seen at the last check (``None``: none).
        self.suspect: PeerId | None = None
        #: Times this node reached out.
        self.reached_out = 0

    def check(self, tree: SpanningTree, passive: list[PeerId], full: bool) -> PeerId | None:
        """The passive peer to reach out to now, or ``None``; ``full``: the active view is."""
        members = tree.members_for(None) if full else None
        outside = [] if members is None else sorted(p for p in passive if p not in members)
        suspect = self.suspect
        if suspect is not None and suspect in outside:
            self.suspect = None
            self.reached_out += 1
            return suspect
        self.suspect = outside[0] if outside else None
        return None
