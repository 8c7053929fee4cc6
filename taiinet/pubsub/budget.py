# taiinet: sans-io core
"""Per-neighbour budgets for pushed documents: token buckets, pure.

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

Budgets are kept by peer id, at most ``MAX_TRACKED_PEERS`` (least recently
active forgotten), and survive a disconnection, so a peer that reconnects at
once does not start with full buckets.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

from taiinet.pubsub.errors import PubsubUsageError

#: Neighbours whose buckets are remembered (least recently active forgotten first).
MAX_TRACKED_PEERS = 1024
#: Offences an invalid document counts for (an honest relay verifies before
#: it forwards, so it never sends one; a few may come from a peer running
#: other limits).
INVALID_DOCUMENT_OFFENCES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerBudgetConfig:
    """Per-neighbour budget for pushed documents (every bound of ``budget.py``).

    The defaults are several times what one neighbour sends in the pubsub
    benchmark (~130 documents/s of 256 bytes at saturation).
    """

    #: Documents a neighbour may push per second, and in one burst.
    documents_per_second: float = 500.0
    document_burst: float = 1000.0
    #: Payload bytes a neighbour may push per second, and in one burst (at
    #: least the largest document).
    bytes_per_second: float = 2 * 1024 * 1024
    byte_burst: float = 8 * 1024 * 1024
    #: Offences forgiven per second, and how many a neighbour may have in
    #: hand before it is disconnected (a dropped document is one offence, an
    #: invalid one ``INVALID_DOCUMENT_OFFENCES``).
    offences_per_second: float = 1.0
    offence_burst: float = 50.0

    def __post_init__(self) -> None:
        if min(self.documents_per_second, self.bytes_per_second, self.offences_per_second) <= 0:
            raise PubsubUsageError("budget rates must be positive")
        if min(self.document_burst, self.offence_burst) < 1:
            raise PubsubUsageError("document_burst and offence_burst must be at least 1")
        if self.byte_burst < 1:
            raise PubsubUsageError("byte_burst must be at least 1")


class TokenBucket:
    """``rate`` tokens a second, at most ``burst``; starts full."""

    __slots__ = ("burst", "level", "rate", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.burst, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def has(self, amount: float, now: float) -> bool:
        self.refill(now)
        return self.level >= amount

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if there are that many; False (and nothing taken) if not."""
        if not self.has(amount, now):
            return False
        self.level -= amount
        return True


class Verdict(enum.Enum):
    """What to do with a pushed document."""

    ADMIT = "admit"
    DROP = "drop"
    DISCONNECT = "disconnect"


class _PeerBudget:
    __slots__ = ("bytes", "documents", "offences")

    def __init__(self, config: PeerBudgetConfig, now: float) -> None:
        self.documents = TokenBucket(config.documents_per_second, config.document_burst, now)
        self.bytes = TokenBucket(config.bytes_per_second, config.byte_burst, now)
        self.offences = TokenBucket(config.offences_per_second, config.offence_burst, now)


class PeerBudgets:
    """The budgets of every neighbour; ``admit`` and ``offend`` return a ``Verdict``."""

    __slots__ = ("_peers", "config")

    def __init__(self, config: PeerBudgetConfig | None = None) -> None:
        self.config = config or PeerBudgetConfig()
        self._peers: OrderedDict[str, _PeerBudget] = OrderedDict()

    def admit(self, peer: str, size: int, now: float) -> Verdict:
        """A document of ``size`` bytes pushed by ``peer``: within budget?"""
        budget = self._budget(peer, now)
        if budget.documents.has(1, now) and budget.bytes.has(size, now):
            budget.documents.take(1, now)
            budget.bytes.take(size, now)
            return Verdict.ADMIT
        return self.offend(peer, 1, now)

    def offend(self, peer: str, offences: float, now: float) -> Verdict:
        """``peer`` sent a document over budget or an invalid one (``offences`` of them)."""
        budget = self._budget(peer, now)
        if budget.offences.take(offences, now):
            return Verdict.DROP
        budget.offences.level = 0.0  # what was left is spent
        return Verdict.DISCONNECT

    def __len__(self) -> int:
        return len(self._peers)

    def _budget(self, peer: str, now: float) -> _PeerBudget:
        peers = self._peers
        budget = peers.get(peer)
        if budget is None:
            budget = peers[peer] = _PeerBudget(self.config, now)
            if len(peers) > MAX_TRACKED_PEERS:
                peers.popitem(last=False)
        else:
            peers.move_to_end(peer)
        return budget
