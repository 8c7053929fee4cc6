# taiinet: sans-io core
"""Kademlia routing table: 256 k-buckets of contacts, least recently seen first.

Bucket i holds contacts at XOR distance [2**i, 2**(i+1)) from the local id.
A full bucket does not take a new contact at once: the newcomer waits in the
bucket's bounded replacement cache and the core pings the least recently seen
contact; if that ping times out the stale contact is evicted and the most
recent replacement takes its place (Kademlia section 2.2, with the
replacement cache of section 4.1).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

from taiinet.signal.dht_types import Contact
from taiinet.signal.ids import ID_BITS, bucket_index, node_id


@dataclass(slots=True)
class Entry:
    contact: Contact
    id: int
    last_seen: float


@dataclass(slots=True)
class Bucket:
    entries: OrderedDict[str, Entry] = field(default_factory=OrderedDict)
    replacements: OrderedDict[str, Entry] = field(default_factory=OrderedDict)
    last_lookup: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Insertion:
    """Outcome of :meth:`RoutingTable.observe`.

    ``check`` is the least recently seen contact of a full bucket that the
    core should ping (None when the contact was simply added or refreshed).
    """

    added: bool
    check: Contact | None


class RoutingTable:
    """The k-buckets of one node.  Bounded: at most 2k entries per bucket index."""

    def __init__(self, *, local_id: int, k: int) -> None:
        self.local_id = local_id
        self.k = k
        self.buckets: list[Bucket] = [Bucket() for _ in range(ID_BITS)]
        self._by_peer: dict[str, int] = {}
        self._occupied: set[int] = set()

    def __len__(self) -> int:
        return len(self._by_peer)

    def __contains__(self, peer_id: str) -> bool:
        return peer_id in self._by_peer

    def contacts(self) -> list[Contact]:
        return [e.contact for b in self.buckets for e in b.entries.values()]

    def get(self, peer_id: str) -> Entry | None:
        index = self._by_peer.get(peer_id)
        if index is None:
            return None
        return self.buckets[index].entries.get(peer_id)

    def observe(self, contact: Contact, now: float, ident: int | None = None) -> Insertion:
        """Note that ``contact`` was heard from at ``now``."""
        ident = node_id(contact.peer_id) if ident is None else ident
        index = bucket_index(self.local_id, ident)
        if index < 0:
            return Insertion(added=False, check=None)
        bucket = self.buckets[index]
        entry = bucket.entries.get(contact.peer_id)
        if entry is not None:
            entry.last_seen = now
            if entry.contact.address != contact.address and contact.address:
                entry.contact = contact
            bucket.entries.move_to_end(contact.peer_id)
            return Insertion(added=False, check=None)
        if len(bucket.entries) < self.k:
            bucket.entries[contact.peer_id] = Entry(contact=contact, id=ident, last_seen=now)
            self._by_peer[contact.peer_id] = index
            self._occupied.add(index)
            return Insertion(added=True, check=None)
        bucket.replacements.pop(contact.peer_id, None)
        bucket.replacements[contact.peer_id] = Entry(contact=contact, id=ident, last_seen=now)
        while len(bucket.replacements) > self.k:
            bucket.replacements.popitem(last=False)
        oldest = next(iter(bucket.entries.values()))
        return Insertion(added=False, check=oldest.contact)

    def remove(self, peer_id: str) -> bool:
        """Evict ``peer_id``; the freshest replacement, if any, takes its slot."""
        index = self._by_peer.pop(peer_id, None)
        if index is None:
            for bucket in self.buckets:
                bucket.replacements.pop(peer_id, None)
            return False
        bucket = self.buckets[index]
        del bucket.entries[peer_id]
        if bucket.replacements:
            _, entry = bucket.replacements.popitem(last=True)
            bucket.entries[entry.contact.peer_id] = entry
            bucket.entries.move_to_end(entry.contact.peer_id, last=False)
            self._by_peer[entry.contact.peer_id] = index
        if not bucket.entries:
            self._occupied.discard(index)
        return True

    def closest(self, target: int, count: int, exclude: str | None = None) -> list[Entry]:
        """The ``count`` known contacts nearest to ``target``, nearest first.

        Buckets are visited in order of distance to the target: first the
        target's own bucket b (distance below 2**b), then all buckets below b
        together (distance in [2**b, 2**(b+1))), then b+1, b+2, ...  Only whole
        groups are gathered, so the sort sees a few dozen entries, not the table.
        """
        home = bucket_index(self.local_id, target)
        occupied = sorted(self._occupied)
        groups: list[list[int]] = []
        if home >= 0:
            groups.append([home])
            groups.append([i for i in occupied if i < home])
        groups.extend([i] for i in occupied if i > home)
        gathered: list[Entry] = []
        for group in groups:
            for index in group:
                gathered.extend(e for e in self.buckets[index].entries.values()
                                if e.contact.peer_id != exclude)
            if len(gathered) >= count:
                break
        return heapq.nsmallest(count, gathered, key=lambda e: e.id ^ target)

    def touch_bucket_of(self, target: int, now: float) -> None:
        index = bucket_index(self.local_id, target)
        if index >= 0:
            self.buckets[index].last_lookup = now

    def lowest_occupied(self) -> int:
        return min(self._occupied, default=ID_BITS)
