# taiinet: sans-io core
"""The spanning tree: distance-vector routes to the smallest root candidate.

Theory of operation
-------------------
Every node keeps, for each active neighbour, the route that neighbour last
advertised: its root ``(since, id)`` (when the root started, as it claims,
and its peer id), its distance, and whether it says "you are my parent"
(``child``).  A node's own route is the smallest, as ``(since, root,
distance, neighbour)``, of ``(own start, own id, 0)`` and ``(since_q,
root_q, distance_q + 1)`` over the neighbours ``q`` that offer a root, are
not its children, and are within ``MAX_ROOT_DISTANCE``.  Its parent is the
neighbour of that route.  A link is a *tree link* iff one end is the
other's parent; both ends learn it from adverts.

The oldest node is the root: a node that joins (a one-shot publisher
above all) never moves it.  With the active views fixed the routes
converge to a BFS tree rooted at the oldest node of the component; a
departed root's id counts to infinity, one hop per advert round, until its
distance passes the bound.  The tree changes only when an active view
changes, never with traffic (docs/pubsub.md, sections 4 and 9).
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.pubsub.messages import MAX_ROOT_DISTANCE, TREE_SIZE_CAP
from taiinet.wire.peer_id import PeerId

#: A route: (root's start in Unix ms, root peer id, distance in links).
Route = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class Offer:
    """What a neighbour last advertised about the tree."""

    since: int
    root: str
    distance: int
    #: The neighbour says we are its parent.
    child: bool
    #: The nodes on the neighbour's side of a tree link, when fewer than
    #: ``TREE_SIZE_CAP`` (``None``: as many or more, or not a tree link).
    members: frozenset[str] | None = None


class SpanningTree:
    """One node's view of the component's spanning tree."""

    __slots__ = ("_links", "_offers", "_parent", "peer_id", "route", "since")

    def __init__(self, peer_id: PeerId, since: int = 0) -> None:
        self.peer_id = peer_id
        #: When this node started, Unix ms (its claim as a root).
        self.since = since
        #: Active neighbour -> its last offer (``None``: no advert yet).
        self._offers: dict[PeerId, Offer | None] = {}
        self._parent: PeerId | None = None
        self.route: Route = (since, peer_id, 0)
        #: ``links()`` since the offers or the parent last changed (``None``:
        #: to be listed again): every document forwarded reads it.
        self._links: tuple[PeerId, ...] | None = None

    @property
    def offers(self) -> dict[PeerId, Offer | None]:
        """Active neighbour -> its last offer (``None``: no advert yet); read-only
        (``add``, ``remove`` and ``offer`` change it)."""
        return self._offers

    @property
    def parent(self) -> PeerId | None:
        return self._parent

    @parent.setter
    def parent(self, peer: PeerId | None) -> None:
        self._parent = peer
        self._links = None

    def add(self, peer: PeerId) -> None:
        if peer not in self._offers:
            self._offers[peer] = None
            self._links = None

    def remove(self, peer: PeerId) -> None:
        if self._offers.pop(peer, False) is not False:
            self._links = None

    def offer(self, peer: PeerId, since: int, root: str, distance: int, child: bool,
              members: tuple[str, ...] = ()) -> None:
        if peer in self._offers:
            known = frozenset(members) if 0 < len(members) < TREE_SIZE_CAP else None
            self._offers[peer] = Offer(since, root, distance, child, known)
            self._links = None

    def recompute(self) -> bool:
        """Choose the route and parent again; True if either changed."""
        best: Route = (self.since, self.peer_id, 0)
        parent: PeerId | None = None
        for peer, offer in self._offers.items():
            if offer is None or not offer.root or offer.child:
                continue
            distance = offer.distance + 1
            if distance > MAX_ROOT_DISTANCE:
                continue
            mine = (offer.since, offer.root, distance)
            if mine < best or (mine == best and parent is not None and peer < parent):
                best, parent = mine, peer
        route = best
        changed = route != self.route or parent != self._parent
        self.route = route
        if parent != self._parent:
            self.parent = parent
        return changed

    def is_tree_link(self, peer: PeerId) -> bool:
        if peer == self._parent:
            return True
        offer = self._offers.get(peer)
        return offer is not None and offer.child

    def links(self) -> tuple[PeerId, ...]:
        """The neighbours over tree links, in the order they became neighbours (kept
        until the offers or the parent change: routing reads it per document)."""
        links = self._links
        if links is None:
            links = self._links = tuple(peer for peer in self._offers if self.is_tree_link(peer))
        return links

    def members_for(self, peer: PeerId | None) -> frozenset[str] | None:
        """The nodes on this side of the tree link to ``peer`` (all tree links if
        ``None``): split horizon over tree links; ``None`` if ``TREE_SIZE_CAP`` or more
        (or some tree link's side is not known)."""
        members: set[str] = {self.peer_id}
        for other, offer in self._offers.items():
            if other == peer or not self.is_tree_link(other):
                continue
            if offer is None or offer.members is None:
                return None
            members |= offer.members
            if len(members) >= TREE_SIZE_CAP:
                return None
        return frozenset(members)

    def may_be_child(self, peer: PeerId) -> bool:
        """Whether ``peer`` says we are its parent, or may have made us its parent
        already: our route, one link on, beats the one it last offered (its "you are
        my parent" can still be on the link, behind a push it made meanwhile)."""
        offer = self._offers.get(peer)
        if offer is None:
            return False
        if offer.child or not offer.root:
            return True
        since, root, distance = self.route
        return (distance < MAX_ROOT_DISTANCE
                and (since, root, distance + 1) < (offer.since, offer.root, offer.distance))

    def advertised(self) -> Route:
        return self.route
