# taiinet: sans-io core
"""Documents retained for the repair, their holders, and the seen ids.

Every document a node published or accepted *and had a use for* (see
``TreeRouter._keeps``) is kept for ``retention`` seconds (bounded in number
and bytes, oldest first), with its *holders*: the neighbours it came from
(``holders``) and those it was pushed to (``pushed``), each tagged with the
link (epoch) it happened on, so a push on a link that later went down is
not trusted.  Message ids are remembered longer (``seen_size`` of them),
with whether the document was delivered here: a copy of a retained or
delivered document is a duplicate, which is what makes delivery exactly
once; a copy of one seen but not kept is taken again.  Evicting a document
or an id younger than ``retention`` voids the contract for it and is
counted (docs/pubsub.md, section 1 condition 3).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from taiinet.pubsub.query.limits import DECODED_VALUE_BYTES
from taiinet.wire.peer_id import PeerId

#: What a retained document counts besides its envelope and values: record, holders.
RECORD_BYTES = 512


@dataclass(slots=True)
class Retained:
    payload: bytes
    document: Any
    publisher: str
    published_unix_ms: int
    #: When this node first had it.
    at: float
    #: Links it had crossed here (0 at the publisher).
    hops: int
    #: Published by this node (its parent must hold it, whatever its interest).
    own: bool
    #: Neighbour -> epoch of the link on which it sent us this document.  The maps
    #: of neighbours here are keyed by ``plain_key(peer)`` (untracked by the GC).
    holders: dict[str, int] = field(default_factory=dict)
    #: Neighbour -> epoch of the link on which we pushed it this document.
    pushed: dict[str, int] = field(default_factory=dict)
    #: What it counts toward ``retention_bytes``.
    cost: int = RECORD_BYTES
    #: Neighbour -> times restores pushed it this document again (each at most
    #: ``RestorePace.max_repushes``); ``None`` until the first restore.
    repushes: dict[str, int] | None = None

    def held_by(self, peer: PeerId, epoch: int) -> bool:
        return self.holders.get(peer) == epoch or self.pushed.get(peer) == epoch


def retained_cost(size: int, values: int) -> int:
    """What a decoded document counts toward ``retention_bytes``."""
    return RECORD_BYTES + size + values * DECODED_VALUE_BYTES


class Retention:
    """Retained documents by message id, and seen ids; all bounded."""

    __slots__ = ("_bytes", "_docs", "_now", "_seen", "evicted_young", "max_bytes", "max_size",
                 "retention", "seen_evicted_young", "seen_size")

    def __init__(self, retention: float, max_size: int, max_bytes: int, seen_size: int) -> None:
        self.retention = retention
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.seen_size = seen_size
        self._docs: OrderedDict[bytes, Retained] = OrderedDict()
        #: Message id -> (when first seen, delivered here).
        self._seen: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()
        self._bytes = 0
        self._now = 0.0
        #: Documents / seen ids evicted by a bound before ``retention`` had passed.
        self.evicted_young = 0
        self.seen_evicted_young = 0

    def seen(self, mid: bytes) -> bool:
        return mid in self._seen

    def duplicate(self, mid: bytes) -> bool:
        """A copy of ``mid`` changes nothing: it is retained, was delivered here, or
        is older than ``retention`` (a copy not kept is otherwise taken again)."""
        seen = self._seen.get(mid)
        if seen is None:
            return False
        return mid in self._docs or seen[1] or seen[0] <= self._now - self.retention

    def delivered(self, mid: bytes) -> bool:
        seen = self._seen.get(mid)
        return seen is not None and seen[1]

    def get(self, mid: bytes) -> Retained | None:
        return self._docs.get(mid)

    def see(self, mid: bytes, now: float, delivered: bool) -> None:
        """Remember ``mid`` (first sight time kept; delivered once stays delivered)."""
        self._now = now
        seen = self._seen
        old = seen.get(mid)
        if old is not None:
            seen[mid] = (old[0], old[1] or delivered)
            return
        seen[mid] = (now, delivered)
        while len(seen) > self.seen_size:
            _mid, (at, _delivered) = seen.popitem(last=False)
            if at > now - self.retention:
                self.seen_evicted_young += 1

    def add(self, mid: bytes, doc: Retained, now: float) -> None:
        """Retain ``doc``, evicting the oldest past either bound."""
        self.expire(now)
        docs = self._docs
        docs[mid] = doc
        self._bytes += doc.cost
        while len(docs) > self.max_size or self._bytes > self.max_bytes:
            _mid, old = docs.popitem(last=False)
            self._bytes -= old.cost
            if old.at > now - self.retention:
                self.evicted_young += 1

    def expire(self, now: float) -> None:
        """Drop documents older than ``retention`` (their ids stay seen)."""
        self._now = now
        docs = self._docs
        oldest = now - self.retention
        while docs:
            mid, doc = next(iter(docs.items()))
            if doc.at >= oldest:
                break
            del docs[mid]
            self._bytes -= doc.cost

    def items(self) -> Iterator[tuple[bytes, Retained]]:
        return iter(list(self._docs.items()))

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def bytes(self) -> int:
        return self._bytes
