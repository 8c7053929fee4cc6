# taiinet: sans-io core
"""HyParView's passive view: backup peers, trusted or only heard of.

An entry is *trusted* once we had a link with it (a former neighbour, or a
peer that answered a request); one named by a neighbour (a shuffle, a walk)
is *heard of* and remembers that neighbour, its *source*.  Heard-of entries
make room first, and one source holds at most ``passive_per_source`` of
them (its new entry replaces one of its own), so a lying neighbour cannot
fill the view with made-up peers (docs/overlay.md, "Defences").

The view is a list (in insertion order: runs stay reproducible) and draws
from the owner's seeded ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Container, Iterable

from taiinet.overlay.config import HyParViewConfig
from taiinet.wire.peer_id import PeerId


class PassiveView:
    """Bounded (``passive_size``) backup peers of one node; ``owner`` is never one."""

    __slots__ = ("config", "owner", "peers", "rng", "sources")

    def __init__(self, owner: PeerId, rng: random.Random, config: HyParViewConfig) -> None:
        self.owner = owner
        self.rng = rng
        self.config = config
        #: The entries, oldest first.
        self.peers: list[PeerId] = []
        #: Heard-of entry -> the neighbour that named it (trusted ones are absent).
        self.sources: dict[PeerId, PeerId] = {}

    def __contains__(self, peer: object) -> bool:
        return peer in self.peers

    def __len__(self) -> int:
        return len(self.peers)

    def drop(self, peer: PeerId) -> None:
        if peer in self.peers:
            self.peers.remove(peer)
            self.sources.pop(peer, None)

    def trust(self, peer: PeerId) -> None:
        """``peer`` answered us: it exists and is reachable."""
        self.sources.pop(peer, None)

    def add_trusted(self, peer: PeerId, active: Container[PeerId]) -> None:
        """Keep ``peer``, which we had a link with (not a neighbour in ``active``)."""
        if peer == self.owner or peer in active:
            return
        if peer in self.peers:
            self.sources.pop(peer, None)
            return
        if len(self.peers) >= self.config.passive_size:
            self._make_room([])
        self.peers.append(peer)

    def add_heard(self, peer: PeerId, source: PeerId, evict_first: list[PeerId],
                  active: Container[PeerId]) -> None:
        """Keep ``peer``, named by neighbour ``source``, as a heard-of entry;
        ``evict_first`` make room first (the entries we gave in exchange)."""
        if peer == self.owner or peer in active or peer in self.peers:
            return
        sources = self.sources
        own = [p for p, s in sources.items() if s == source]
        if len(own) >= self.config.passive_per_source:
            self.drop(own[self.rng.randrange(len(own))])
        elif len(self.peers) >= self.config.passive_size:
            self._make_room(evict_first)
        self.peers.append(peer)
        sources[peer] = source

    def add_contacts(self, peers: Iterable[PeerId], active: Container[PeerId]) -> None:
        """Keep a joiner's other contacts (the signaller named them) as heard-of entries.

        Without them, nodes that start together and join each other can close a
        component no walk or shuffle ever leads out of: its active views are not
        full (so the routing tree's healing waits) and its passive views hold only
        its own members (so refills stay inside; docs/overlay.md, "The joiner's
        other contacts").  Their source is the owner (no neighbour named them):
        they count against no neighbour's ``passive_per_source``.
        """
        for peer in peers:
            self.add_heard(peer, self.owner, [], active)

    def integrate(self, peers: tuple[PeerId, ...], evict_first: tuple[PeerId, ...],
                  source: PeerId, active: Container[PeerId]) -> None:
        """Merge a shuffle sample from ``source``; the entries we sent in exchange
        (``evict_first``) make room first."""
        evictable = [p for p in evict_first if p in self.peers]
        for peer in peers:
            self.add_heard(peer, source, evictable, active)

    def _make_room(self, evict_first: list[PeerId]) -> None:
        """Drop one entry: a heard-of one (of ``evict_first`` if any), else any."""
        heard = self.sources
        pool = [p for p in evict_first if p in heard] or list(heard)
        if not pool:
            pool = [p for p in evict_first if p in self.peers] or self.peers
        self.drop(pool[self.rng.randrange(len(pool))])
