# taiinet: sans-io core
"""Parameters of the relay tree, with the defaults the simulator was sized with."""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.stream.errors import StreamUsageError
from taiinet.stream.messages import MAX_CANDIDATES, MAX_DEPTH


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeConfig:
    #: Seconds between two ticks (heartbeats down, status up, failure checks).
    tick_interval: float = 0.5
    #: A parent silent this long is lost; a child silent this long is dropped.
    peer_timeout: float = 1.5
    #: Seconds to wait for an answer to a ``Join`` before trying the next candidate.
    join_timeout: float = 0.5
    #: Redirects followed in one join before starting over at the broadcaster
    #: (per ``Join`` in flight: ``max_redirects * join_fanout`` in a repair).
    max_redirects: int = 24
    #: ``Join`` messages a repairing node keeps in flight at once (to its
    #: standby peers, then the peers they redirect to); the first ``Adopt``
    #: wins and the others are sent ``Leave``.  A newcomer asks one at a time.
    join_fanout: int = 3
    #: Seconds to wait before starting over after the broadcaster found no room.
    retry_backoff: float = 1.0
    #: Seconds without a new chunk after which a viewer counts itself stalled.
    stall_timeout: float = 1.0
    #: Chunks the parent must be ahead of a stalled child for the child to
    #: blame it (the parent has the data but does not relay it).
    blame_lag: int = 5
    #: Seconds a stalled child waits before reporting its parent to the
    #: grandparent even though the parent claims to be stalled too.
    upstream_grace: float = 4.0
    #: Seconds a child stays under a detached parent (one repairing its own
    #: position) before it leaves it and repairs by itself.
    orphan_grace: float = 3.0
    #: Chunks the grandparent must be ahead of a reporter to accept its report.
    report_lag: int = 5
    #: Seconds a stall report counts towards an eviction.
    report_window: float = 5.0
    #: Seconds a peer stays banned after it stalled this node or its children.
    ban_duration: float = 60.0
    #: Peers remembered as banned (oldest forgotten first).
    max_banned: int = 256
    #: Peers in the standby list a parent sends each child.
    standby_size: int = 4
    #: Peers in a ``Redirect``.
    redirect_size: int = 4
    #: Capacity ranking: a full parent gives a newcomer with more slots the
    #: place of its weakest child (which moves under the newcomer), and
    #: joins are steered to free slots high in the tree.  Off: a random tree
    #: (the simulator's baseline), where only a zero-slot leaf gives its place
    #: to a joiner with slots.
    ranking: bool = True
    #: Deepest position a node accepts to adopt at.
    max_depth: int = MAX_DEPTH
    #: Seconds a link the tree no longer uses (the peer is not the parent, a
    #: child or a pending join, and no tree message went either way) stays
    #: open before the core closes it (``CloseLink``): a viewer that left, a
    #: joiner that was redirected, a candidate that never adopted.  Long
    #: enough that a peer asked again soon (a repair, a reparent) finds its
    #: link still open; re-dialing through the signal mesh costs seconds.
    link_idle_timeout: float = 15.0
    #: Most idle links kept: past it, the least recently used link the tree
    #: does not need is closed at once (links in use, at most slots + the
    #: parent + the peers of one join round, come on top).
    max_links: int = 256

    def __post_init__(self) -> None:
        for name in ("tick_interval", "peer_timeout", "join_timeout", "retry_backoff",
                     "stall_timeout", "upstream_grace", "orphan_grace", "report_window",
                     "ban_duration", "link_idle_timeout"):
            if not getattr(self, name) > 0:
                raise StreamUsageError(f"{name} must be positive")
        if self.peer_timeout < self.tick_interval:
            raise StreamUsageError("peer_timeout must be at least one tick_interval")
        if self.max_redirects < 1 or self.max_banned < 0:
            raise StreamUsageError("need max_redirects >= 1 and max_banned >= 0")
        if self.max_links < 1:
            raise StreamUsageError("max_links must be at least 1")
        if self.blame_lag < 1 or self.report_lag < 0:
            raise StreamUsageError("need blame_lag >= 1 and report_lag >= 0")
        if not 1 <= self.join_fanout <= MAX_CANDIDATES:
            raise StreamUsageError(f"join_fanout must be in [1, {MAX_CANDIDATES}]")
        for name in ("standby_size", "redirect_size"):
            if not 1 <= getattr(self, name) <= MAX_CANDIDATES:
                raise StreamUsageError(f"{name} must be in [1, {MAX_CANDIDATES}]")
        if not 1 <= self.max_depth <= MAX_DEPTH:
            raise StreamUsageError(f"max_depth must be in [1, {MAX_DEPTH}]")
