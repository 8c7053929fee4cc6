# taiinet: sans-io core
"""Parameters of HyParView and Plumtree, with the papers' defaults."""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.messages import MAX_PAYLOAD_SIZE


@dataclass(frozen=True, slots=True, kw_only=True)
class HyParViewConfig:
    #: Active view size (log10(N) + 1 in the paper; 5 suits up to ~10^4 nodes).
    active_size: int = 5
    #: Passive view size.
    passive_size: int = 30
    #: Active random walk length: TTL of ForwardJoin and Shuffle walks.
    arwl: int = 6
    #: Passive random walk length: a ForwardJoin adds the new peer to the
    #: passive view of the node where its TTL equals this.
    prwl: int = 3
    #: Active peers (ka) and passive peers (kp) sampled into a Shuffle.
    shuffle_active: int = 3
    shuffle_passive: int = 4
    #: Seconds between two shuffles.
    shuffle_interval: float = 10.0
    #: Seconds between two keep-alive ticks, at which neighbours not heard
    #: from for ``keepalive_interval`` are probed and a short active view is
    #: refilled.
    keepalive_interval: float = 2.0
    #: Seconds a probed neighbour may stay silent (no frame at all from it,
    #: not even the ``Pong``) before it is treated as failed: a hung peer
    #: whose link is still open.  Checked at keep-alive ticks, so the failure
    #: is noticed at the first tick at least this long after the probe.
    #: ``None``: twice ``keepalive_interval``.
    probe_timeout: float | None = None
    #: Rejected low-priority Neighbor requests tolerated per keep-alive tick
    #: before a short active view waits for the next tick to try again.
    rejections_per_interval: int = 3
    #: Longest pause of the keep-alive ticks' refill after ticks whose every
    #: request was refused (doubling from 2 ticks; ``taiinet.overlay.refill``).
    refill_backoff: float = 32.0
    # --- defences against strangers (docs/overlay.md, "Defences") ---------
    #: The oldest neighbours (by time they entered the active view) that a
    #: newcomer (``Join``, high-priority ``Neighbor``, a ``ForwardJoin``
    #: ending here) can never displace, once they have been neighbours for
    #: ``protect_after`` seconds: a full view makes room by dropping a
    #: random one of the others.  ``None``: all but one (4 of 5: a newcomer
    #: displaces the youngest neighbour); always capped at ``active_size - 1``.
    protected_neighbors: int | None = None
    #: Seconds a neighbour must have been one before it is protected (so a
    #: young overlay still mixes as the paper's, with random evictions).
    protect_after: float = 30.0
    #: Neighbours displaced to make room for newcomers: a bucket of
    #: ``eviction_burst`` tokens, one more every ``eviction_interval``
    #: seconds, from ``protect_after`` seconds after the node started (a
    #: young overlay forms as the paper's).  A ``Join`` or walk end that finds
    #: the view full and the bucket empty is refused (the ``Join`` is
    #: answered with ``Disconnect`` and starts no walk; the walk ends without
    #: the newcomer); a high-priority ``Neighbor`` is outside the budget.
    eviction_burst: int = 10
    eviction_interval: float = 1.0
    #: Seconds during which a peer whose ``Join`` was taken cannot join again
    #: (its ``Join`` is answered with ``Disconnect``, nothing is forwarded).
    join_repeat_interval: float = 60.0
    #: Peers remembered for ``join_repeat_interval`` (the oldest forgotten first).
    join_memory: int = 1024
    #: Seconds after a neighbour left the active view during which walks
    #: (``ForwardJoin``, ``Shuffle``) from it are still taken: it sent them
    #: before it knew.  Walks from any other non-neighbour are dropped.  (At
    #: most ``2 * active_size`` former neighbours are remembered.)
    walk_grace: float = 2.0
    #: Passive entries that one peer's shuffles and walks may hold at once; a
    #: further entry from it replaces one of its own.
    passive_per_source: int = 8
    #: Active neighbours whose links come from one network address (an IPv4
    #: address or an IPv6 /64, as the driver reports with
    #: ``handle_link_address``): a newcomer from a full address is refused
    #: (``Join`` answered with ``Disconnect``, ``Neighbor`` rejected), and a
    #: neighbour whose link turns out to come from one is dropped, so many
    #: identities on one host hold at most this many of our slots.
    max_neighbors_per_address: int = 2
    #: Seconds after a newcomer from one address displaced a neighbour during
    #: which no other newcomer from that address may displace one (the
    #: eviction budget per address; ``join_memory`` addresses remembered).
    address_eviction_interval: float = 30.0
    #: The host's own loopback address (127.0.0.1, ::1) is outside the
    #: address limits: every node of a one-machine test or ``taiinet demo``
    #: shares it.  Other 127.x.y.z addresses stand for other hosts and count.
    exempt_loopback: bool = True
    #: Shuffle replies to a shuffle's origin that is neither a neighbour nor
    #: asked to be one, which would open a short-lived link to it (the paper's
    #: temporary connection): a bucket of ``exchange_reply_burst``, one more
    #: every ``exchange_reply_interval`` seconds; past it the reply is not
    #: sent (``exchange_replies_refused``), so a burst of shuffles naming many
    #: origins cannot make a node dial them all.  0 (the default): never; the
    #: exchange is one-way (the walk's end merges the origin's sample), since
    #: a link set up for one reply costs far more than the reply (a WebRTC
    #: link ~9 ms of CPU) and a node's passive view is refreshed by the
    #: shuffles that end at it anyway (docs/overlay.md, "Transport").
    exchange_reply_burst: int = 0
    exchange_reply_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.active_size < 1 or self.passive_size < 1:
            raise OverlayUsageError("view sizes must be at least 1")
        if not 0 <= self.prwl <= self.arwl:
            raise OverlayUsageError("need 0 <= prwl <= arwl")
        if self.shuffle_interval <= 0 or self.keepalive_interval <= 0:
            raise OverlayUsageError("shuffle and keep-alive intervals must be positive")
        if self.probe_timeout is not None and self.probe_timeout <= 0:
            raise OverlayUsageError("the probe timeout must be positive")
        if self.refill_backoff < 0:
            raise OverlayUsageError("refill_backoff must be >= 0")
        if self.shuffle_active < 0 or self.shuffle_passive < 0:
            raise OverlayUsageError("shuffle sample sizes must be >= 0")
        if self.protected_neighbors is not None and self.protected_neighbors < 0:
            raise OverlayUsageError("protected neighbours must be >= 0")
        if self.protect_after < 0:
            raise OverlayUsageError("protect_after must be >= 0")
        if self.eviction_burst < 0 or self.eviction_interval <= 0:
            raise OverlayUsageError("need eviction_burst >= 0 and eviction_interval > 0")
        if self.join_repeat_interval < 0 or self.join_memory < 0:
            raise OverlayUsageError("join limits must be >= 0")
        if self.walk_grace < 0:
            raise OverlayUsageError("walk_grace must be >= 0")
        if self.passive_per_source < 1:
            raise OverlayUsageError("passive_per_source must be at least 1")
        if self.exchange_reply_burst < 0 or self.exchange_reply_interval <= 0:
            raise OverlayUsageError(
                "need exchange_reply_burst >= 0 and exchange_reply_interval > 0")
        if self.max_neighbors_per_address < 1 or self.address_eviction_interval < 0:
            raise OverlayUsageError(
                "need max_neighbors_per_address >= 1 and address_eviction_interval >= 0")

    @property
    def protected_count(self) -> int:
        """``protected_neighbors`` or its default, at most ``active_size - 1``."""
        wanted = self.protected_neighbors
        if wanted is None:
            return self.active_size - 1
        return min(wanted, self.active_size - 1)

    @property
    def probe_deadline(self) -> float:
        """``probe_timeout``, or its default of two keep-alive intervals."""
        if self.probe_timeout is None:
            return 2 * self.keepalive_interval
        return self.probe_timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class PlumtreeConfig:
    #: Seconds to wait after the first IHAVE before grafting a missing message.
    ihave_timeout: float = 0.4
    #: Seconds to wait after a GRAFT before grafting from the next announcer.
    graft_timeout: float = 0.2
    #: Message ids remembered, to drop duplicates.  A duplicate arriving
    #: after its id was evicted would be delivered again.  Ids only: an entry
    #: costs about 250 bytes (a 32-byte id, its tuple and dict slot; measured
    #: with tracemalloc), ~2.5 MB at the default.
    seen_cache_size: int = 10_000
    #: Bytes of payload kept to answer GRAFTs (oldest evicted first; at least
    #: the largest payload).  A GRAFT for a message whose payload was evicted
    #: only makes the link eager; the grafter then grafts the next announcer.
    #: The default holds the last ~5 s of 60 KB payloads at 50/s, or every
    #: seen id's payload at 1.6 KB.
    payload_cache_bytes: int = 16 * 1024 * 1024
    #: Missing messages tracked at once; further IHAVEs are ignored.
    max_missing: int = 1024
    #: Announcers remembered per missing message.
    max_announcers: int = 16
    #: Tree optimisation: when a lazy neighbour announces a message at least
    #: this many hops sooner than the eager path brought it, graft that link
    #: and prune the eager one (0 disables).
    optimization_threshold: int = 3
    #: Per-origin trees: an origin whose second message arrives gets eager and
    #: lazy sets of its own (all neighbours eager: that message floods and
    #: builds the origin's tree of fastest paths), used for its messages only.
    #: At most this many origins have a tree (least recently used evicted);
    #: other origins use the default, shared sets (0 disables).
    origin_trees: int = 64
    #: Origins remembered as seen once, to start a tree at their second message.
    origins_seen: int = 1024
    #: Flood prefix: a message on the shared tree is pushed to every neighbour
    #: (eager and lazy) for its first this many hops, then along the tree
    #: from each node it reached, so it enters the tree at many places at
    #: once and its last delivery hop no longer depends on where its origin
    #: sits in the tree.  Costs about twice the nodes at the prefix's edge in
    #: extra payloads per message (0 disables: the paper's behaviour).
    flood_prefix: int = 0
    #: Messages announced (IHave) to a new neighbour: the ones delivered in
    #: the last ``announce_window`` seconds, at most ``announce_limit`` of them,
    #: so a message lost on a failed link reaches the part of the tree behind it.
    announce_window: float = 5.0
    announce_limit: int = 8
    #: Never prune: push payloads on every link (plain flooding over the same
    #: membership).  A baseline for measurements, not for deployments.
    flood: bool = False
    #: The lazy queue (``taiinet.overlay.lazy``): ``IHave``s for one peer are
    #: held and sent together ``lazy_delay`` seconds after the first, no
    #: sooner than ``lazy_interval`` after that link's previous flush, at once
    #: when ``lazy_batch`` are held (the node and the simulator run this same
    #: pacing).  ``lazy_delay = 0``: no queue, each goes at once as
    #: ``Send(lazy=True)``, which the link layer may hold to share a write
    #: (pacing the simulator does not model).
    lazy_delay: float = 0.05
    lazy_interval: float = 0.25
    lazy_batch: int = 128

    def __post_init__(self) -> None:
        if self.lazy_delay < 0 or self.lazy_interval < 0 or self.lazy_batch < 1:
            raise OverlayUsageError("need lazy_delay, lazy_interval >= 0 and lazy_batch >= 1")
        if self.ihave_timeout <= 0 or self.graft_timeout <= 0:
            raise OverlayUsageError("Plumtree timeouts must be positive")
        if self.seen_cache_size < 1 or self.max_missing < 1 or self.max_announcers < 1:
            raise OverlayUsageError("Plumtree bounds must be at least 1")
        if self.payload_cache_bytes < MAX_PAYLOAD_SIZE:
            raise OverlayUsageError(
                f"payload_cache_bytes must hold the largest payload ({MAX_PAYLOAD_SIZE} bytes)")
        if self.origin_trees < 0 or self.origins_seen < 0:
            raise OverlayUsageError("origin bounds must be >= 0")
        if not 0 <= self.flood_prefix <= 16:
            raise OverlayUsageError("flood prefix must be in 0..16 hops")
        if self.optimization_threshold < 0:
            raise OverlayUsageError("optimisation threshold must be >= 0")
