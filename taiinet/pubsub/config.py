# taiinet: sans-io core
"""Parameters of the pubsub router (docs/pubsub.md, section 11)."""

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
    #: Route by interest on the stable tree (docs/pubsub.md section 1).
    #: False: plain Plumtree broadcast, every document to every node, only
    #: matching subscriptions see it - the baseline the bandwidth is measured
    #: against (``taiinet sim pubsub``), not for deployments.
    routing: bool = True
    #: Seconds every document is retained for the repair (D of the contract),
    #: and the bounds on what is retained (oldest evicted first; an eviction
    #: younger than ``retention`` is counted: it voids the contract for it).
    retention: float = 30.0
    retention_size: int = 4096
    retention_bytes: int = 16 * 1024 * 1024
    #: Message ids remembered to drop duplicates (at least ``retention_size``).
    seen_size: int = 10_000
    #: Seconds adverts are held back after a change, so bursts of changes cost
    #: one advert per link.  Adverts change only with the active views and
    #: subscriptions, not with traffic, so the window is short: every hop of a
    #: reshape waits for it.
    advert_delay: float = 0.01
    #: Seconds (times 1 to 2, at random) between checks that this node's
    #: component is not a clique cut off from the overlay (healing).
    component_check_interval: float = 2.0
    #: Most filters in an advert; a summary is widened (``summarize``) to fit.
    max_advert_filters: int = 8
    #: Largest document envelope published or accepted, in bytes.
    max_document_bytes: int = MAX_PAYLOAD_SIZE
    #: Per-neighbour budget for pushed documents (``taiinet.pubsub.budget``).
    budget: PeerBudgetConfig = field(default_factory=PeerBudgetConfig)
    #: Local subscriptions.
    max_subscriptions: int = 10_000
    #: Adverts remembered from peers that are not neighbours yet.
    max_pending_adverts: int = MAX_PENDING_ADVERTS
    #: The repair's pace (docs/pubsub.md section 7): documents a widened
    #: neighbour is owed are pushed at most ``restore_rate`` a second and
    #: ``restore_burst`` at once, per neighbour, the rest on ticks every
    #: ``restore_interval`` seconds; restores push each document to each
    #: neighbour at most ``max_repushes`` times.  The burst stays within half the link's send
    #: queue (256 items) and, with ordinary forwarding, the rate within what a
    #: neighbour accepts (``PeerBudgetConfig``: 500 documents/s, bursts of 1,000).
    restore_rate: float = 200.0
    restore_burst: int = 128
    restore_interval: float = 0.05
    max_repushes: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.max_advert_filters <= MAX_ADVERT_FILTERS:
            raise PubsubUsageError(f"max_advert_filters must be in 1..{MAX_ADVERT_FILTERS}")
        if not 0 < self.max_document_bytes <= MAX_PAYLOAD_SIZE:
            raise PubsubUsageError(f"max_document_bytes must be in 1..{MAX_PAYLOAD_SIZE}")
        if self.max_subscriptions < 1:
            raise PubsubUsageError("max_subscriptions must be at least 1")
        if self.budget.byte_burst < self.max_document_bytes:
            raise PubsubUsageError("budget.byte_burst must admit the largest document "
                                   f"({self.max_document_bytes} bytes)")
        if min(self.retention, self.advert_delay, self.component_check_interval) <= 0:
            raise PubsubUsageError("retention, advert_delay and component_check_interval "
                                   "must be positive")
        if self.retention_size < 1 or self.seen_size < self.retention_size:
            raise PubsubUsageError("retention_size >= 1 and seen_size >= retention_size")
        if self.retention_bytes < self.max_document_bytes:
            raise PubsubUsageError("retention_bytes must hold the largest document "
                                   f"({self.max_document_bytes} bytes)")
        if self.max_pending_adverts < 0:
            raise PubsubUsageError("max_pending_adverts must be >= 0")
        if min(self.restore_rate, self.restore_interval) <= 0:
            raise PubsubUsageError("restore_rate and restore_interval must be positive")
        if min(self.restore_burst, self.max_repushes) < 1:
            raise PubsubUsageError("restore_burst and max_repushes must be at least 1")
