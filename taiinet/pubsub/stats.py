# taiinet: sans-io core
"""Counters of a pubsub router, read by the node's ``stats()`` and the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from taiinet.pubsub.documents import REJECT_REASONS


@dataclass(slots=True)
class RouterStats:
    """Counters of one router (they only grow)."""

    published: int = 0
    #: Documents handed to the application (one per message).
    delivered: int = 0
    #: Documents verified and accepted from peers.
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    adverts_sent: int = 0
    adverts_received: int = 0
    adverts_ignored: int = 0
    #: Pubsub frames dropped undecoded: their sender was over its advert budget.
    adverts_over_budget: int = 0
    #: Copies of documents already seen (dropped; they only mark a holder).
    duplicates: int = 0
    #: Accepted documents no local subscription wanted and this node had no use
    #: for: their id is kept (as seen), not the document.
    unwanted: int = 0
    over_budget: int = 0
    disconnected: int = 0
    #: Changes of route or parent.
    route_changes: int = 0
