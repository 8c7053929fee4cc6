# taiinet: sans-io core
"""Parameters of the pubsub router."""

from __future__ import annotations

from dataclasses import dataclass, field

from taiinet.overlay.messages import MAX_PAYLOAD_SIZE
from taiinet.pubsub.budget import PeerBudgetConfig
from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.messages import MAX_ADVERT_FILTERS

#: Interest table entries kept for peers that are not (yet) neighbours.
MAX_PENDING_ADVERTS = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class PubsubConfig:
    #: The routing tree: ``"plumtree"`` (Plumtree's traffic-driven tree, with
    #: interest gaps and catch-ups; docs/pubsub.md sections 3-6) or
    #: ``"stable"`` (a distance-vector spanning tree of the active views,
    #: repair by push on widening; docs/pubsub.md section 0).
    tree: str = "plumtree"
    #: Stable tree: seconds every document is retained for the repair (D of
    #: the contract), and the bounds on what is retained (oldest first).
    retention: float = 30.0
    retention_size: int = 4096
    retention_bytes: int = 16 * 1024 * 1024
    #: Stable tree: seconds adverts are held back after a change.  Its adverts
    #: change only with the active views and subscriptions, not with traffic,
    #: so the window is short: every hop of a reshape waits for it.
    tree_advert_delay: float = 0.01
    #: Stable tree: seconds (times 1 to 2) between checks that this node's
    #: component is not a clique cut off from the overlay (healing).
    component_check_interval: float = 2.0
    #: Stable tree: message ids remembered to drop duplicates.
    seen_size: int = 10_000
    #: Route by interest.  False: plain Plumtree broadcast (every document
    #: reaches every node; only matching subscriptions see it) - a baseline.
    routing: bool = True
    #: Propagate interest only over Plumtree's eager (tree) links; False:
    #: split horizon over every active link (measured in docs/pubsub.md).
    tree_interest: bool = True
    #: Most filters in an advert; a summary is widened (``summarize``) to fit.
    max_advert_filters: int = 8
    #: Seconds adverts are held back after a change, so bursts of changes
    #: (joins, tree repairs, subscriptions) cost one advert per link.
    advert_delay: float = 0.05
    #: A duplicate document arriving this many seconds after the first copy
    #: is dropped without pruning the link it came on (it was repaired into
    #: the sender's part of the tree, the link is not redundant).
    late_duplicate: float = 1.0
    #: Seconds a neighbour's first advert after it came up (which narrows
    #: "unknown" = everything) does not narrow forwarding yet: interest from
    #: further away reaches it hop by hop (``advert_delay`` + link delay each).
    first_advert_grace: float = 0.3
    #: Catch-up on interest widening: when a neighbour's advert matches
    #: documents its previous one did not, the documents of the last
    #: ``catch_up_window`` seconds that it now wants and has not been sent
    #: are announced to it (``IHave``), at most ``catch_up_limit`` per advert
    #: (0: off).  Repairs documents pushed before interest settled.
    catch_up_window: float = 5.0
    catch_up_limit: int = 64
    #: Documents younger than this are announced on any widening, gap or not
    #: (interest moved to a branch where this node saw no narrowing).
    catch_up_recent: float = 0.5
    #: Carry component roots in adverts and graft lazy links that join two
    #: parts of a split eager tree.  A safety net that costs adverts: every
    #: Plumtree tree swap moves roots and distances (measured in docs/pubsub.md).
    heal_splits: bool = True
    #: Seconds between two adverts to one neighbour that change only the
    #: healing root or its distance: roots move with every tree swap, and
    #: healing waits ``heal_delay`` anyway, so those adverts are paced.
    root_advert_interval: float = 0.5
    #: Seconds (times 1 to 2, at random) a lazy link must keep joining two
    #: parts of a split eager tree before this end grafts it.
    heal_delay: float = 1.0
    #: Largest document envelope published or accepted, in bytes.
    max_document_bytes: int = MAX_PAYLOAD_SIZE
    #: Documents remembered by message id, for the forwarding decisions of
    #: recent messages (pushes, IHAVEs, announcements to new neighbours,
    #: catch-ups), oldest evicted first when either bound is passed.  Only a
    #: document some neighbour or local subscription wanted when it arrived
    #: is kept decoded; it counts its encoded size plus ``DECODED_VALUE_BYTES``
    #: (72) per value toward ``document_cache_bytes``.  Others keep only their
    #: id, publisher, time and holders (``UNWANTED_DOCUMENT_BYTES`` each).
    document_cache_size: int = 2048
    document_cache_bytes: int = 16 * 1024 * 1024
    #: Per-neighbour budget for pushed documents (``taiinet.pubsub.budget``).
    budget: PeerBudgetConfig = field(default_factory=PeerBudgetConfig)
    #: Local subscriptions.
    max_subscriptions: int = 10_000
    #: Adverts remembered from peers that are not neighbours yet.
    max_pending_adverts: int = MAX_PENDING_ADVERTS

    def __post_init__(self) -> None:
        if not 1 <= self.max_advert_filters <= MAX_ADVERT_FILTERS:
            raise PubsubUsageError(f"max_advert_filters must be in 1..{MAX_ADVERT_FILTERS}")
        if (self.advert_delay <= 0 or self.heal_delay <= 0 or self.root_advert_interval < 0
                or self.first_advert_grace < 0):
            raise PubsubUsageError(
                "advert_delay and heal_delay must be positive, first_advert_grace and "
                "root_advert_interval >= 0")
        if not 0 < self.max_document_bytes <= MAX_PAYLOAD_SIZE:
            raise PubsubUsageError(f"max_document_bytes must be in 1..{MAX_PAYLOAD_SIZE}")
        if self.document_cache_size < 1 or self.max_subscriptions < 1:
            raise PubsubUsageError("cache and subscription bounds must be at least 1")
        if self.document_cache_bytes < self.max_document_bytes:
            raise PubsubUsageError("document_cache_bytes must hold the largest document "
                                   f"({self.max_document_bytes} bytes)")
        if self.budget.byte_burst < self.max_document_bytes:
            raise PubsubUsageError("budget.byte_burst must admit the largest document "
                                   f"({self.max_document_bytes} bytes)")
        if min(self.catch_up_window, self.catch_up_recent, self.catch_up_limit) < 0:
            raise PubsubUsageError("catch_up_window, catch_up_recent and catch_up_limit "
                                   "must be >= 0")
        if self.tree not in ("plumtree", "stable"):
            raise PubsubUsageError('tree must be "plumtree" or "stable"')
        if min(self.retention, self.tree_advert_delay, self.component_check_interval) <= 0:
            raise PubsubUsageError("retention, tree_advert_delay and component_check_interval "
                                   "must be positive")
        if self.retention_size < 1 or self.seen_size < self.retention_size:
            raise PubsubUsageError("retention_size >= 1 and seen_size >= retention_size")
        if self.retention_bytes < self.max_document_bytes:
            raise PubsubUsageError("retention_bytes must hold the largest document "
                                   f"({self.max_document_bytes} bytes)")
        if self.max_pending_adverts < 0:
            raise PubsubUsageError("max_pending_adverts must be >= 0")
