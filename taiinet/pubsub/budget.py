# taiinet: sans-io core
"""Per-neighbour budgets for pushed documents and interest adverts: token buckets, pure.

Theory of operation
-------------------
Every ``Gossip`` a neighbour pushes costs the receiver a SHA-256, a
signature check and a decode, whether or not anyone wants the document.  Each
neighbour has two token buckets, one counting documents and one counting
bytes (``rate`` tokens a second, holding at most ``burst``); a document is
admitted when both hold enough, and takes its tokens from both.  A document
over budget is dropped (not verified, not forwarded; a copy from another
neighbour still gets through) and is an *offence*; an invalid document is
``INVALID_DOCUMENT_OFFENCES`` offences.  Offences are taken from a third
bucket (``offence_burst``, refilled at ``offences_per_second``): a neighbour
that empties it is disconnected.  A neighbour that exceeds its budget now
and then (a burst) loses those documents only; one that keeps exceeding it,
or keeps sending invalid documents, is dropped.

Each ``InterestAdvert`` costs the receiver a decode and the compilation of
its filters, and a re-summary of its own adverts: each neighbour also has an
advert bucket (``adverts_per_second``, ``advert_burst``), charged before the
advert is decoded; an advert over it is dropped and is an offence, in the
same offence bucket as documents.

The buckets are ``taiinet.overlay.budget.RateBudgets``: kept by peer id, at
most ``MAX_TRACKED_PEERS`` (least recently active forgotten), and they
survive a disconnection, so a peer that reconnects at once does not start
with full buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.overlay.budget import MAX_TRACKED_PEERS, Rate, RateBudgets, TokenBucket, Verdict
from taiinet.pubsub.errors import PubsubUsageError

__all__ = ["INVALID_DOCUMENT_OFFENCES", "MAX_TRACKED_PEERS", "PeerBudgetConfig", "PeerBudgets",
           "TokenBucket", "Verdict"]

#: Offences an invalid document counts for (an honest relay verifies before
#: it forwards, so it never sends one; a few may come from a peer running
#: other limits).
INVALID_DOCUMENT_OFFENCES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerBudgetConfig:
    """Per-neighbour budget for pushed documents (every bound of ``budget.py``).

    A tree link carries every document its far side wants, so an honest
    neighbour pushes the publication rate plus what the repair pushes (at most
    ``PubsubConfig.restore_rate``, 200/s, after a widening): the default admits
    publication rates up to 800/s with that repair going on (the pubsub
    benchmark saturates at ~400-570/s here).  At 500/s, a parent change at
    450/s dropped the new parent's pushes over budget, unrepaired: documents
    lost with no link down (docs/pubsub.md section 2).
    """

    #: Documents a neighbour may push per second, and in one burst.
    documents_per_second: float = 1000.0
    document_burst: float = 2000.0
    #: Payload bytes a neighbour may push per second, and in one burst (at
    #: least the largest document).
    bytes_per_second: float = 2 * 1024 * 1024
    byte_burst: float = 8 * 1024 * 1024
    #: Offences forgiven per second, and how many a neighbour may have in
    #: hand before it is disconnected (a dropped document is one offence, an
    #: invalid one ``INVALID_DOCUMENT_OFFENCES``).
    offences_per_second: float = 1.0
    offence_burst: float = 50.0
    #: Interest adverts a neighbour may send per second, and in one burst
    #: (an honest one sends at most one per ``advert_delay``, and only
    #: while its active view or subscriptions change).
    adverts_per_second: float = 50.0
    advert_burst: float = 200.0

    def __post_init__(self) -> None:
        if min(self.documents_per_second, self.bytes_per_second, self.offences_per_second,
               self.adverts_per_second) <= 0:
            raise PubsubUsageError("budget rates must be positive")
        if min(self.document_burst, self.offence_burst, self.advert_burst) < 1:
            raise PubsubUsageError(
                "document_burst, advert_burst and offence_burst must be at least 1")
        if self.byte_burst < 1:
            raise PubsubUsageError("byte_burst must be at least 1")


_DOCUMENTS, _BYTES, _ADVERTS = range(3)


class PeerBudgets:
    """The budgets of every neighbour; ``admit``, ``admit_advert`` and ``offend``
    return a ``Verdict``."""

    __slots__ = ("_budgets", "config")

    def __init__(self, config: PeerBudgetConfig | None = None) -> None:
        self.config = config = config or PeerBudgetConfig()
        self._budgets = RateBudgets(
            (Rate(config.documents_per_second, config.document_burst),
             Rate(config.bytes_per_second, config.byte_burst),
             Rate(config.adverts_per_second, config.advert_burst)),
            Rate(config.offences_per_second, config.offence_burst))

    def admit(self, peer: str, size: int, now: float) -> Verdict:
        """A document of ``size`` bytes pushed by ``peer``: within budget?"""
        return self._budgets.admit_two(peer, now, _DOCUMENTS, 1, _BYTES, size)

    def admit_advert(self, peer: str, now: float) -> Verdict:
        """An interest advert (not decoded yet) from ``peer``: within budget?"""
        return self._budgets.admit(peer, now, (_ADVERTS, 1))

    def offend(self, peer: str, offences: float, now: float) -> Verdict:
        """``peer`` sent a document over budget or an invalid one (``offences`` of them)."""
        return self._budgets.offend(peer, offences, now)

    def __len__(self) -> int:
        return len(self._budgets)
