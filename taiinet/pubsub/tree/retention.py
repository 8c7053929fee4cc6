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

Retained documents are kept in forms the cyclic garbage collector does not
track: each document's record is a tuple of atoms, and its decoded value
and neighbour maps sit in maps keyed by message id (a dict of ``str`` and
``int``, or a document of scalars, is untracked; one holding lists or maps
stays tracked).  A retained document lives long enough to reach the oldest
generation, so one tracked object per document and node brought full
collections on (CPython runs one when a quarter more objects than the last
one left have reached that generation), each walking every retained
document of the process.  ``Retained`` is the
view ``get`` builds, short-lived; its maps are the stored ones (``entries``
lists what the forwarding rule reads without views).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.query.limits import DECODED_VALUE_BYTES
from taiinet.wire.peer_id import PeerId, plain_key

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


#: What ``Retention`` stores of a ``Retained`` besides its value and maps (all atoms,
#: so the tuple is untracked by the GC; the publisher as ``plain_key``): payload,
#: publisher, published_unix_ms, at, hops, own, cost.
_Record = tuple[bytes, str, int, float, int, bool, int]
_AT: Final = 3
_OWN: Final = 5
_COST: Final = 6


def retained_cost(size: int, values: int) -> int:
    """What a decoded document counts toward ``retention_bytes``."""
    return RECORD_BYTES + size + values * DECODED_VALUE_BYTES


class Retention:
    """Retained documents by message id, and seen ids; all bounded."""

    __slots__ = ("_bytes", "_docs", "_holders", "_now", "_pushed", "_repushes", "_seen",
                 "_values", "evicted_young", "max_bytes", "max_size", "retention",
                 "seen_evicted_young", "seen_size")

    def __init__(self, retention: float, max_size: int, max_bytes: int, seen_size: int) -> None:
        self.retention = retention
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.seen_size = seen_size
        #: Message id -> record, oldest first; the other maps hold the same ids.
        self._docs: OrderedDict[bytes, _Record] = OrderedDict()
        self._values: dict[bytes, Any] = {}
        self._holders: dict[bytes, dict[str, int]] = {}
        self._pushed: dict[bytes, dict[str, int]] = {}
        #: Only documents restores pushed again.
        self._repushes: dict[bytes, dict[str, int]] = {}
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
        record = self._docs.get(mid)
        return None if record is None else self._view(mid, record)

    def _view(self, mid: bytes, record: _Record) -> Retained:
        payload, publisher, published_unix_ms, at, hops, own, cost = record
        return Retained(payload, self._values[mid], publisher, published_unix_ms, at, hops,
                        own, self._holders[mid], self._pushed[mid], cost,
                        self._repushes.get(mid))

    def holders(self, mid: bytes) -> dict[str, int] | None:
        """The holders map of a retained document (``Retained.holders``), else ``None``."""
        return self._holders.get(mid)

    def repushes(self, mid: bytes) -> dict[str, int]:
        """The re-push counts of a retained document (``Retained.repushes``), made on
        first use; ``PubsubUsageError`` if ``mid`` is not retained (a caller's bug:
        the map would outlive the document)."""
        repushes = self._repushes.get(mid)
        if repushes is None:
            if mid not in self._docs:
                raise PubsubUsageError(f"document {mid.hex()} is not retained")
            repushes = self._repushes[mid] = {}
        return repushes

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
        if mid in docs:
            self._drop(mid)
        docs[mid] = (doc.payload, plain_key(doc.publisher), doc.published_unix_ms, doc.at, doc.hops,
                     doc.own, doc.cost)
        self._values[mid] = doc.document
        self._holders[mid] = doc.holders
        self._pushed[mid] = doc.pushed
        if doc.repushes is not None:
            self._repushes[mid] = doc.repushes
        self._bytes += doc.cost
        while len(docs) > self.max_size or self._bytes > self.max_bytes:
            old = self._drop(next(iter(docs)))
            if old[_AT] > now - self.retention:
                self.evicted_young += 1

    def _drop(self, mid: bytes) -> _Record:
        record = self._docs.pop(mid)
        del self._values[mid], self._holders[mid], self._pushed[mid]
        if self._repushes:
            self._repushes.pop(mid, None)
        self._bytes -= record[_COST]
        return record

    def expire(self, now: float) -> None:
        """Drop documents older than ``retention`` (their ids stay seen)."""
        self._now = now
        docs = self._docs
        oldest = now - self.retention
        while docs:
            mid, record = next(iter(docs.items()))
            if record[_AT] >= oldest:
                break
            self._drop(mid)

    def entries(self) -> list[tuple[bytes, bool, Any, dict[str, int], dict[str, int]]]:
        """``(mid, own, document, holders, pushed)`` of the retained documents, oldest
        first: what the rule (I) reads of each, without building views (a snapshot:
        retaining or dropping documents meanwhile does not disturb it)."""
        values, holders, pushed = self._values, self._holders, self._pushed
        return [(mid, record[_OWN], values[mid], holders[mid], pushed[mid])
                for mid, record in self._docs.items()]

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def bytes(self) -> int:
        return self._bytes
