# taiinet: sans-io core
"""The interest table: what each neighbour wants, and what to advertise to it.

A neighbour's interest is the filters of its last accepted advert (a
neighbour that sent none wants nothing).  To a neighbour over a tree link a
node advertises the summary of its own subscriptions and of the interest of
its *other* tree links (split horizon: on a tree, exactly what the far side
of the link wants); over any other link, no filter.  Adverts from peers that
are not neighbours yet are kept (bounded) until they are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query
from taiinet.pubsub.query.nodes import MATCH_ALL
from taiinet.pubsub.summary import Keyed, Summarizer
from taiinet.wire.peer_id import PeerId


class RemoteInterest:
    """A neighbour's last advert, compiled for matching."""

    __slots__ = ("_matchers", "advert", "keyed", "keys", "match_all")

    def __init__(self, advert: InterestAdvert) -> None:
        self.advert = advert
        self.keyed: Keyed = tuple((q.key, q) for q in advert.filters)
        self.keys = frozenset(k for k, _q in self.keyed)
        self.match_all = any(q.ast == MATCH_ALL for q in advert.filters)
        self._matchers = tuple(q.matcher for q in advert.filters)

    @property
    def version(self) -> int:
        return self.advert.version

    def matches(self, document: Any) -> bool:
        if self.match_all:
            return True
        for match in self._matchers:  # noqa: SIM110 (no generator: runs for every document)
            if match(document):
                return True
        return False


class InterestTable:
    """Own subscriptions and neighbours' adverts."""

    __slots__ = ("_pending", "_summarizer", "max_pending", "own", "remote")

    def __init__(self, max_filters: int, max_pending: int) -> None:
        #: Local subscriptions' (``node_key``, query), by subscription id.
        self.own: dict[Hashable, tuple[Any, Query]] = {}
        #: Active neighbour -> its last accepted advert.
        self.remote: dict[PeerId, RemoteInterest] = {}
        self._pending: OrderedDict[PeerId, RemoteInterest] = OrderedDict()
        self.max_pending = max_pending
        self._summarizer = Summarizer(max_filters)

    def accept(self, peer: PeerId, advert: InterestAdvert, neighbour: bool) -> bool:
        """Record ``advert`` unless stale; False if ignored."""
        table = self.remote if neighbour else self._pending
        known = table.get(peer)
        if known is not None and advert.version <= known.version:
            return False
        if neighbour:
            self.remote[peer] = RemoteInterest(advert)
            return True
        if self.max_pending <= 0:
            return False
        self._pending[peer] = RemoteInterest(advert)
        self._pending.move_to_end(peer)
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        return True

    def neighbour_up(self, peer: PeerId) -> RemoteInterest | None:
        """``peer`` became a neighbour: adopt an advert it sent before, if any."""
        pending = self._pending.pop(peer, None)
        if pending is not None:
            self.remote[peer] = pending
        return pending

    def neighbour_down(self, peer: PeerId) -> None:
        self.remote.pop(peer, None)

    def wants(self, peer: PeerId, document: Any) -> bool:
        interest = self.remote.get(peer)
        return interest is not None and interest.matches(document)

    def keys_of(self, peer: PeerId) -> frozenset[Any]:
        interest = self.remote.get(peer)
        return interest.keys if interest is not None else frozenset()

    def filters_for(self, peer: PeerId, tree_link: bool, tree_links: Iterable[PeerId]) -> Keyed:
        """What to advertise to ``peer``: split horizon over tree links, else nothing."""
        if not tree_link:
            return ()
        queries: dict[Any, Query] = dict(self.own.values())
        for other in tree_links:
            if other != peer:
                interest = self.remote.get(other)
                if interest is not None:
                    queries.update(interest.keyed)
        return self._summarizer.summary(queries)
