# taiinet: sans-io core
"""The spanning tree: distance-vector routes to the smallest root candidate.

Theory of operation
-------------------
Every node keeps, for each active neighbour, the route that neighbour last
advertised: ``(root, distance)`` and whether it says "you are my parent"
(``child``).  A node's own route is the smallest, as ``(root, distance,
neighbour)``, of ``(own id, 0)`` once it is a root *candidate* (some
seconds after it started: a one-shot publisher never moves the root) and
``(root_q, distance_q + 1)`` over the neighbours ``q`` that offer a root,
are not its children, and are within ``MAX_ROOT_DISTANCE``.  Its parent is
the neighbour of that route.  A link is a *tree link* iff one end is the
other's parent; both ends learn it from adverts.

With the active views fixed this converges to a BFS tree rooted at the
smallest candidate of the component: a departed root's id counts to
infinity, one hop per advert round, until its distance passes the bound.
The tree changes only when an active view changes or candidacy begins,
never with traffic (docs/pubsub.md, 0.2-0.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.pubsub.messages import MAX_ROOT_DISTANCE
from taiinet.wire.peer_id import PeerId

#: A route: (root peer id, distance in links).
Route = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Offer:
    """What a neighbour last advertised about the tree."""

    root: str
    distance: int
    #: The neighbour says we are its parent.
    child: bool


class SpanningTree:
    """One node's view of the component's spanning tree."""

    __slots__ = ("candidate", "offers", "parent", "peer_id", "route")

    def __init__(self, peer_id: PeerId) -> None:
        self.peer_id = peer_id
        #: Whether this node may be a root (set once, by the candidacy timer).
        self.candidate = False
        #: Active neighbour -> its last offer (``None``: no advert yet).
        self.offers: dict[PeerId, Offer | None] = {}
        self.parent: PeerId | None = None
        #: This node's route (``None``: it knows no root yet).
        self.route: Route | None = None

    def add(self, peer: PeerId) -> None:
        self.offers.setdefault(peer, None)

    def remove(self, peer: PeerId) -> None:
        self.offers.pop(peer, None)

    def offer(self, peer: PeerId, root: str, distance: int, child: bool) -> None:
        if peer in self.offers:
            self.offers[peer] = Offer(root, distance, child)

    def recompute(self) -> bool:
        """Choose the route and parent again; True if either changed."""
        best: tuple[str, int, str] | None = (
            (self.peer_id, 0, "") if self.candidate else None)
        parent: PeerId | None = None
        for peer, offer in self.offers.items():
            if offer is None or not offer.root or offer.child:
                continue
            distance = offer.distance + 1
            if distance > MAX_ROOT_DISTANCE:
                continue
            mine = (offer.root, distance, peer)
            if best is None or mine < best:
                best, parent = mine, peer
        if best is not None and best[1] == 0:
            parent = None
        route: Route | None = None if best is None else (best[0], best[1])
        changed = route != self.route or parent != self.parent
        self.route, self.parent = route, parent
        return changed

    def is_tree_link(self, peer: PeerId) -> bool:
        if peer == self.parent:
            return True
        offer = self.offers.get(peer)
        return offer is not None and offer.child

    def tree_links(self) -> list[PeerId]:
        return [peer for peer in self.offers if self.is_tree_link(peer)]

    def children(self) -> list[PeerId]:
        return [p for p, o in self.offers.items() if o is not None and o.child]

    def advertised(self) -> Route:
        """The route to advertise: ``("", 0)`` when none is known."""
        return self.route if self.route is not None else ("", 0)
