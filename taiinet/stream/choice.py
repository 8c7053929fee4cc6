# taiinet: sans-io core
"""What a parent knows of its children, and whom it names from them.

A full node redirects a joiner (``redirect_candidates``) and gives each child
a standby list for the day it is lost (``standby_list``); both read only the
children's ``Status`` reports.  Used by ``taiinet.stream.tree``.
"""

from __future__ import annotations

import random

from taiinet.stream.messages import Status
from taiinet.wire.peer_id import PeerId


class Child:
    """What a parent knows of one child (from its ``Join`` and ``Status`` reports)."""

    __slots__ = ("advanced", "children", "free", "heard", "recommend", "seq", "slots")

    def __init__(self, slots: int, now: float) -> None:
        self.slots = slots
        self.heard = now
        self.children: tuple[PeerId, ...] = ()
        self.free = slots
        self.seq = -1
        #: When its ``Status`` last showed a higher ``seq``: it is being fed.
        self.advanced = float("-inf")
        self.recommend: tuple[PeerId, ...] = ()

    def update(self, status: Status, now: float) -> None:
        """Take the child's latest ``Status``."""
        self.heard = now
        self.slots = status.slots
        self.children = status.children
        self.free = status.free
        if status.seq > self.seq:
            self.advanced = now
        self.seq = status.seq
        self.recommend = status.recommend

    @property
    def own_free(self) -> int:
        return self.slots - len(self.children)


def redirect_candidates(kids: dict[PeerId, Child], path: tuple[PeerId, ...], joiner: PeerId,
                        slots: int, ranking: bool, size: int,
                        rng: random.Random) -> tuple[PeerId, ...]:
    """Where a joiner with ``slots`` should go when this node is full, best first.

    Ranked: children with a free slot of their own (most slots first), the peers
    they recommend, then children whose subtree has free slots (most first).
    Random: random children with free room; with none, and a joiner with slots,
    random children with slots (it may take a leaf's place below).
    """
    if not ranking:
        pool = [c for c, info in kids.items() if info.free > 0 and c != joiner]
        if not pool and slots > 0:
            pool = [c for c, info in kids.items() if info.slots > 0 and c != joiner]
        return tuple(rng.sample(pool, min(size, len(pool))))
    direct = sorted((c for c, info in kids.items() if info.own_free > 0),
                    key=lambda c: -kids[c].slots)
    recommended = [r for info in kids.values() for r in info.recommend]
    below = sorted((c for c, info in kids.items() if info.free > 0),
                   key=lambda c: -kids[c].free)
    picked: list[PeerId] = []
    for peer in (*direct, *recommended, *below):
        if peer != joiner and peer not in picked and peer not in path:
            picked.append(peer)
            if len(picked) == size:
                break
    return tuple(picked)


def standby_list(kids: dict[PeerId, Child], parent: PeerId | None, child: PeerId,
                 ranking: bool, size: int, rng: random.Random) -> tuple[PeerId, ...]:
    """Peers ``child`` should try if this node is lost: its grandparent, then siblings
    with slots (ranked: those with a free slot first, most slots first)."""
    picked: list[PeerId] = [] if parent is None else [parent]
    siblings = [c for c in kids if c != child]
    if ranking:
        siblings.sort(key=lambda c: (kids[c].own_free <= 0, -kids[c].slots))
    else:
        rng.shuffle(siblings)
    picked.extend(s for s in siblings if kids[s].slots > 0)
    return tuple(picked[:size])
