# taiinet: sans-io core
"""Sans-I/O Kademlia core (Maymounkov & Mazieres, 2002).

Theory of operation
-------------------
One :class:`KademliaNode` is one signaller's view of the DHT, a core on the
contract of ``taiinet.core`` (docs/cores.md).  The driver calls ``start``
once, then feeds it messages from other signallers (``handle_message``),
dial failures (``handle_link_down``) and timers (``handle_timer``), always
with ``now``; it answers with actions: ``Send`` (a message to a contact,
``address`` its URL), ``SetTimer`` (a request's timeout, the maintenance
tick; never cancelled: a timeout whose request was answered is ignored) and
:class:`LookupFinished`.  Commands that start a lookup return
``Started(lookup_id, actions)``.  Nothing here does I/O or reads a clock, so
the same object runs under the trio driver and under the simulator.

* Ids are 256-bit; k-buckets hold k = 20 contacts (see :mod:`routing`).
* Lookups are iterative with alpha = 3 requests in flight; a lookup ends when
  the k closest candidates not known to have failed have all answered (or
  nothing is left to ask).  FIND_VALUE ends early on the first valid value.
* ``put`` looks up the k closest nodes to the key, then STOREs on each
  (and keeps a copy when the local node is among them: at once if it is
  among the k closest it knows, so the copy does not wait for the lookup).
  Its :class:`LookupFinished` is reported only once every STORE was
  answered or failed, so a publisher that waits for it knows the closest
  nodes hold the record (a signaller acknowledges a registration only then).
* A FIND_VALUE lookup may ask for a minimum ``seq``: older copies are passed
  over (a relay whose cached record named a dead home looks for a newer one).
* Every contact we hear from is ``observe``d; a request that times out or a
  dial that fails evicts the contact (our links are reliable streams, so one
  missed answer means the signaller is gone or overloaded).
* Maintenance tick (every ``maintenance_interval``): expire records,
  republish records whose republish time came, ping contacts not heard from
  for ``refresh_interval`` (bounded per tick), and refresh buckets with no
  lookup for ``refresh_interval`` by a lookup of a random id in their range
  (bounded per tick).

Departures from the paper
-------------------------
* Records carry a remaining ``ttl`` and a ``seq``: a higher ``seq`` replaces
  a lower one, equal ``seq`` only extends the expiry.  Signature checks are
  the driver's job before a record reaches the core.
* Republish: a holder re-stores a record every ``republish_interval`` unless
  it received a STORE of it since (the paper's optimisation); the original
  publisher's re-signing is the signaller layer's job.
* Bucket refresh is rate capped per tick (``max_refresh_lookups_per_tick``)
  so a node that wakes after a long sleep does not flood the mesh.
* No node-id verification puzzle (S/Kademlia): a signaller's id is the hash
  of the key its Noise handshake proved, so ids cannot be chosen freely
  without grinding keys.
"""

from __future__ import annotations

import random

from taiinet.core.actions import Send, SetTimer, Started
from taiinet.signal.dht_state import (
    _ANSWERED,
    _FAILED,
    _PENDING,
    _UNASKED,
    ALPHA,
    DhtConfig,
    K,
    _Candidate,
    _Lookup,
    _Pending,
    _PutWait,
    _Stored,
)
from taiinet.signal.dht_types import (
    Contact,
    DhtAction,
    DhtMessage,
    DhtRecord,
    DhtTimer,
    FindNode,
    FindValue,
    LookupFinished,
    MaintenanceTick,
    Nodes,
    Ping,
    Pong,
    RequestTimeout,
    Store,
    StoreResult,
    ValueFound,
)
from taiinet.signal.errors import SignalUsageError
from taiinet.signal.ids import ID_BITS, id_bytes, key_id, node_id
from taiinet.signal.routing import Entry, RoutingTable
from taiinet.wire.peer_id import PeerId

__all__ = ["ALPHA", "DhtConfig", "K", "KademliaNode"]

_TICK = MaintenanceTick()


def _send(contact: Contact, message: DhtMessage) -> Send[DhtMessage]:
    return Send(peer=contact.peer_id, message=message, address=contact.address)


class KademliaNode:
    """One DHT participant.  See the module docstring for the protocol."""

    def __init__(self, *, local: Contact, rng: random.Random, now: float,
                 config: DhtConfig | None = None) -> None:
        self.local = local
        self.local_id = node_id(local.peer_id)
        self.config = config or DhtConfig()
        self.rng = rng
        self.table = RoutingTable(local_id=self.local_id, k=self.config.k)
        self.records: dict[bytes, _Stored] = {}
        #: Keys held per source signaller, oldest first (``max_records_per_source``).
        self._by_source: dict[str, dict[bytes, None]] = {}
        self._lookups: dict[int, _Lookup] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        #: The keys of ``_pending`` per peer, in the same order (an index, so a
        #: peer's requests are found without scanning every pending one).
        self._pending_of: dict[str, dict[tuple[str, int], None]] = {}
        #: Puts waiting for their STOREs; each holds >= 1 pending request, so the
        #: table is bounded by ``max_pending_requests``.
        self._puts: dict[int, _PutWait] = {}
        self._next_request_id = rng.getrandbits(32)
        self._next_lookup_id = 1
        for bucket in self.table.buckets:
            bucket.last_lookup = now

    # -- inputs ---------------------------------------------------------------

    def start(self, now: float) -> list[DhtAction]:
        """Arm the maintenance tick (every ``maintenance_interval``); call once, first."""
        return [SetTimer(at=now + self.config.maintenance_interval, timer=_TICK)]

    def add_contact(self, contact: Contact, now: float) -> list[DhtAction]:
        """Learn a contact out of band (a ``--join`` signaller)."""
        return self._observe(contact, now)

    def bootstrap(self, now: float) -> Started[int, DhtAction]:
        """Join: look up our own id so that our neighbourhood learns of us."""
        return self.start_lookup(id_bytes(self.local_id), now)

    def start_lookup(self, target: bytes, now: float, *, want_value: bool = False,
                     min_seq: int = 0) -> Started[int, DhtAction]:
        """Begin an iterative FIND_NODE (or FIND_VALUE) of ``target``.

        A FIND_VALUE ignores copies (ours included) with a ``seq`` below ``min_seq``.
        """
        return self._start(key_id(target), now, want_value=want_value, put_record=None,
                           report=True, min_seq=min_seq)

    def put(self, record: DhtRecord, now: float) -> Started[int, DhtAction]:
        """Store ``record`` on the k nodes closest to its key (maybe us too).

        If we are among the k closest we know, the record is kept here at
        once: the lookup waits for every candidate to answer or time out (a
        silent signaller costs ``request_timeout``), and a FIND_VALUE must
        not miss the record meanwhile.  The put's :class:`LookupFinished`
        comes once all its STOREs are answered or failed (``closest`` are the
        nodes that were asked to store).
        """
        self._check_record_size(record)
        target = key_id(record.key)
        known = self.table.closest(target, self.config.k, self.local.peer_id)
        if (len(known) < self.config.k
                or self.local_id ^ target < node_id(known[-1].contact.peer_id) ^ target):
            self._accept_record(record, now, from_store=False, source=self.local.peer_id)
        return self._start(target, now, want_value=False, put_record=record, report=True)

    def get_local(self, key: bytes, now: float) -> DhtRecord | None:
        stored = self.records.get(key)
        if stored is None or stored.expires_at <= now:
            return None
        return DhtRecord(key=stored.record.key, value=stored.record.value,
                         seq=stored.record.seq, ttl=stored.expires_at - now)

    def stored_since(self, key: bytes, now: float) -> float | None:
        """Seconds since the held version of ``key`` arrived (None: not held or expired)."""
        stored = self.records.get(key)
        if stored is None or stored.expires_at <= now:
            return None
        return now - stored.stored_at

    def drop_local(self, key: bytes, seq: int) -> None:
        """Forget our copy of ``key`` if it is version ``seq`` or older (its peer left)."""
        stored = self.records.get(key)
        if stored is not None and stored.record.seq <= seq:
            self._remove_record(key)

    def handle_message(self, sender: Contact, message: DhtMessage,
                       now: float, *, observe: bool = True) -> list[DhtAction]:
        """A message from ``sender`` (its peer id proven by the link).

        ``observe=False``: answer it, but do not take the sender into the
        routing table (the driver has not yet proven it is a signaller at
        ``sender.address``).
        """
        actions = self._observe(sender, now) if observe else []
        if isinstance(message, Ping):
            actions.append(_send(sender, Pong(request_id=message.request_id)))
        elif isinstance(message, FindNode):
            contacts = self._closest_contacts(key_id(message.target), exclude=sender.peer_id)
            actions.append(_send(sender, Nodes(
                request_id=message.request_id, contacts=contacts)))
        elif isinstance(message, FindValue):
            record = self.get_local(message.key, now)
            reply: DhtMessage
            if record is not None:
                reply = ValueFound(request_id=message.request_id, record=record)
            else:
                reply = Nodes(request_id=message.request_id, contacts=self._closest_contacts(
                    key_id(message.key), exclude=sender.peer_id))
            actions.append(_send(sender, reply))
        elif isinstance(message, Store):
            stored = self._accept_record(message.record, now, from_store=True,
                                         source=sender.peer_id)
            actions.append(_send(sender, StoreResult(
                request_id=message.request_id, stored=stored)))
        else:
            actions.extend(self._handle_response(sender, message, now))
        return actions

    def handle_link_down(self, peer: PeerId, now: float) -> list[DhtAction]:
        """The driver could not reach ``peer`` (dial failed, link died)."""
        return self.handle_unreachable(peer, now)

    def handle_unreachable(self, peer_id: str, now: float) -> list[DhtAction]:
        """The driver could not reach ``peer_id`` (``handle_link_down``)."""
        actions: list[DhtAction] = []
        for key in list(self._pending_of.get(peer_id, ())):
            actions.extend(self._fail_request(key, now))
        self.table.remove(peer_id)
        return actions

    def handle_timer(self, timer: DhtTimer, now: float) -> list[DhtAction]:
        """A request's timeout (ignored once it was answered), or the maintenance tick."""
        if isinstance(timer, RequestTimeout):
            key = (timer.peer_id, timer.request_id)
            pending = self._pending.get(key)
            if pending is None or pending.deadline > now:
                return []
            return self._fail_request(key, now)
        actions: list[DhtAction] = [
            SetTimer(at=now + self.config.maintenance_interval, timer=_TICK)]
        actions.extend(self._maintain(now))
        return actions

    @property
    def active_lookups(self) -> int:
        """Lookups in progress, the core's own (refresh, republish) included."""
        return len(self._lookups)

    # -- requests and lookups -------------------------------------------------

    def _new_request_id(self) -> int:
        self._next_request_id = (self._next_request_id + 1) & 0xFFFF_FFFF_FFFF_FFFF
        return self._next_request_id

    def _request(self, contact: Contact, message_for: type, now: float, out: list[DhtAction],
                 *, lookup_id: int | None, argument: bytes | DhtRecord | None = None,
                 put_id: int | None = None) -> bool:
        """Send a request and arm its timeout (into ``out``); ``False``: too many pending."""
        if len(self._pending) >= self.config.max_pending_requests:
            return False
        request_id = self._new_request_id()
        message: DhtMessage
        if message_for is Ping:
            message = Ping(request_id=request_id)
        elif message_for is FindNode and isinstance(argument, bytes):
            message = FindNode(request_id=request_id, target=argument)
        elif message_for is FindValue and isinstance(argument, bytes):
            message = FindValue(request_id=request_id, key=argument)
        elif message_for is Store and isinstance(argument, DhtRecord):
            message = Store(request_id=request_id, record=argument)
        else:  # pragma: no cover - internal misuse
            raise SignalUsageError(f"cannot build {message_for!r}")
        deadline = now + self.config.request_timeout
        key = (contact.peer_id, request_id)
        self._pending[key] = _Pending(
            contact=contact, deadline=deadline,
            lookup_id=lookup_id, is_ping=message_for is Ping, put_id=put_id)
        self._pending_of.setdefault(contact.peer_id, {})[key] = None
        out.append(_send(contact, message))
        out.append(SetTimer(at=deadline, timer=RequestTimeout(peer_id=contact.peer_id,
                                                              request_id=request_id)))
        return True

    def _pop_pending(self, key: tuple[str, int]) -> _Pending | None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            keys = self._pending_of[key[0]]
            del keys[key]
            if not keys:
                del self._pending_of[key[0]]
        return pending

    def _start(self, target: int, now: float, *, want_value: bool,
               put_record: DhtRecord | None, report: bool,
               min_seq: int = 0) -> Started[int, DhtAction]:
        if len(self._lookups) >= self.config.max_lookups:
            raise SignalUsageError(
                f"too many lookups in progress (max {self.config.max_lookups}); retry later")
        lookup_id = self._next_lookup_id
        self._next_lookup_id += 1
        lookup = _Lookup(lookup_id=lookup_id, target=target, want_value=want_value,
                         put_record=put_record, report=report, min_seq=min_seq)
        self._lookups[lookup_id] = lookup
        self.table.touch_bucket_of(target, now)
        for entry in self.table.closest(target, self.config.k):
            lookup.candidates[entry.contact.peer_id] = _Candidate(
                contact=entry.contact, distance=entry.id ^ target, hop=1)
            if entry.id == target:
                lookup.found_hop = 0
        if want_value:
            local = self.get_local(id_bytes(target), now)
            if local is not None and local.seq >= min_seq:
                lookup.record = local
                lookup.found_hop = 0
        return Started(lookup_id, self._advance(lookup, now))

    def _advance(self, lookup: _Lookup, now: float) -> list[DhtAction]:
        if lookup.record is not None:
            return self._finish(lookup, now)
        ordered = sorted((c for c in lookup.candidates.values() if c.state != _FAILED),
                         key=lambda c: c.distance)
        best = ordered[: self.config.k]
        if all(c.state == _ANSWERED for c in best):
            return self._finish(lookup, now)
        actions: list[DhtAction] = []
        argument = id_bytes(lookup.target)
        kind = FindValue if lookup.want_value else FindNode
        for candidate in best:
            if lookup.in_flight >= self.config.alpha:
                break
            if candidate.state != _UNASKED:
                continue
            if not self._request(candidate.contact, kind, now, actions,
                                 lookup_id=lookup.lookup_id, argument=argument):
                break
            candidate.state = _PENDING
            lookup.in_flight += 1
            lookup.requests += 1
            lookup.max_hop = max(lookup.max_hop, candidate.hop)
        if lookup.in_flight == 0:
            actions.extend(self._finish(lookup, now))
        return actions

    def _finish(self, lookup: _Lookup, now: float) -> list[DhtAction]:
        del self._lookups[lookup.lookup_id]
        answered = sorted((c for c in lookup.candidates.values() if c.state == _ANSWERED),
                          key=lambda c: c.distance)[: self.config.k]
        closest = tuple(c.contact for c in answered)
        found = lookup.record is not None if lookup.want_value else lookup.found_hop is not None
        report = LookupFinished(
            lookup_id=lookup.lookup_id, target=id_bytes(lookup.target), closest=closest,
            record=lookup.record, found=found,
            hops=lookup.found_hop if lookup.found_hop is not None else lookup.max_hop,
            requests=lookup.requests)
        actions: list[DhtAction] = []
        record = lookup.put_record
        if record is not None:
            kth = answered[-1].distance if len(answered) >= self.config.k else None
            if kth is None or (self.local_id ^ lookup.target) < kth:
                self._accept_record(record, now, from_store=False,
                                    source=self.local.peer_id)
            put_id = lookup.lookup_id if lookup.report else None
            stores = sum(self._request(contact, Store, now, actions, lookup_id=None,
                                       argument=record, put_id=put_id) for contact in closest)
            if put_id is not None and stores:
                self._puts[put_id] = _PutWait(report=report, remaining=stores)
                return actions
        if lookup.report:
            actions.insert(0, report)
        return actions

    def _store_done(self, put_id: int) -> list[DhtAction]:
        """One STORE of a put was answered or failed; report the put after the last."""
        wait = self._puts.get(put_id)
        if wait is None:
            return []
        wait.remaining -= 1
        if wait.remaining > 0:
            return []
        del self._puts[put_id]
        return [wait.report]

    def _handle_response(self, sender: Contact, message: DhtMessage,
                         now: float) -> list[DhtAction]:
        pending = self._pop_pending((sender.peer_id, message.request_id))
        if pending is not None and pending.put_id is not None:
            return self._store_done(pending.put_id)
        if pending is None or pending.lookup_id is None:
            return []  # late, unsolicited, ping or untracked store answer: nothing to do
        lookup = self._lookups.get(pending.lookup_id)
        if lookup is None:
            return []
        candidate = lookup.candidates.get(sender.peer_id)
        if candidate is None or candidate.state != _PENDING:
            return []
        lookup.in_flight -= 1
        candidate.state = _ANSWERED
        if isinstance(message, ValueFound) and lookup.want_value:
            if (key_id(message.record.key) == lookup.target
                    and message.record.seq >= lookup.min_seq):
                lookup.record = message.record
                lookup.found_hop = candidate.hop
        elif isinstance(message, Nodes):
            for contact in message.contacts[: self.config.k]:
                if contact.peer_id == self.local.peer_id or contact.peer_id in lookup.candidates:
                    continue
                ident = node_id(contact.peer_id)
                if ident == lookup.target and lookup.found_hop is None:
                    lookup.found_hop = candidate.hop
                lookup.candidates[contact.peer_id] = _Candidate(
                    contact=contact, distance=ident ^ lookup.target, hop=candidate.hop + 1)
            self._trim_candidates(lookup)
        return self._advance(lookup, now)

    def _trim_candidates(self, lookup: _Lookup) -> None:
        """Bound a lookup's memory: keep the nearest 4k candidates (and pending ones)."""
        limit = 4 * self.config.k
        if len(lookup.candidates) <= limit:
            return
        ordered = sorted(lookup.candidates.values(), key=lambda c: c.distance)
        for candidate in ordered[limit:]:
            if candidate.state != _PENDING:
                del lookup.candidates[candidate.contact.peer_id]

    def _fail_request(self, key: tuple[str, int], now: float) -> list[DhtAction]:
        pending = self._pop_pending(key)
        assert pending is not None
        self.table.remove(pending.contact.peer_id)
        if pending.put_id is not None:
            return self._store_done(pending.put_id)
        if pending.lookup_id is None:
            return []
        lookup = self._lookups.get(pending.lookup_id)
        if lookup is None:
            return []
        candidate = lookup.candidates.get(pending.contact.peer_id)
        if candidate is None or candidate.state != _PENDING:
            return []
        candidate.state = _FAILED
        lookup.in_flight -= 1
        return self._advance(lookup, now)

    # -- routing table --------------------------------------------------------

    def _observe(self, contact: Contact, now: float) -> list[DhtAction]:
        if contact.peer_id == self.local.peer_id or not contact.address:
            return []
        insertion = self.table.observe(contact, now)
        if insertion.check is None:
            return []
        stale = insertion.check
        pending = self._pending
        if any(pending[key].is_ping for key in self._pending_of.get(stale.peer_id, ())):
            return []
        actions: list[DhtAction] = []
        self._request(stale, Ping, now, actions, lookup_id=None)
        return actions

    def _closest_contacts(self, target: int, exclude: str) -> tuple[Contact, ...]:
        return tuple(e.contact for e in self.table.closest(target, self.config.k, exclude))

    # -- records --------------------------------------------------------------

    def _check_record_size(self, record: DhtRecord) -> None:
        if len(record.value) > self.config.max_record_bytes:
            raise SignalUsageError(
                f"record of {len(record.value)} bytes exceeds {self.config.max_record_bytes}")

    def _accept_record(self, record: DhtRecord, now: float, *, from_store: bool,
                       source: str) -> bool:
        if len(record.value) > self.config.max_record_bytes or record.ttl <= 0:
            return False
        ttl = min(record.ttl, self.config.max_record_ttl)
        existing = self.records.get(record.key)
        if existing is not None and existing.expires_at > now:
            if record.seq < existing.record.seq:
                return False
            if record.seq == existing.record.seq:
                if record.value != existing.record.value:
                    return False
                existing.expires_at = max(existing.expires_at, now + ttl)
                if from_store:
                    existing.republish_at = now + self.config.republish_interval
                return True
        if existing is not None:
            self._remove_record(record.key)
        if not self._make_room(source, now):
            return False
        self.records[record.key] = _Stored(
            record=DhtRecord(key=record.key, value=record.value, seq=record.seq, ttl=ttl),
            expires_at=now + ttl, republish_at=now + self.config.republish_interval,
            source=source, stored_at=now)
        self._by_source.setdefault(source, {})[record.key] = None
        return True

    def _make_room(self, source: str, now: float) -> bool:
        """Whether a new record from ``source`` fits, evicting for it if fair.

        A remote source holds at most ``max_records_per_source``; a full store
        evicts a record of the source holding the most, unless that is the
        newcomer's own source (so a flood displaces itself, not the others).
        """
        held = len(self._by_source.get(source, ()))
        if source != self.local.peer_id and held >= self.config.max_records_per_source:
            return False
        if len(self.records) < self.config.max_records:
            return True
        self._expire(now)
        if len(self.records) < self.config.max_records:
            return True
        largest = max(self._by_source, key=lambda s: len(self._by_source[s]))
        if largest == source or len(self._by_source[largest]) <= held + 1:
            return False
        self._remove_record(next(iter(self._by_source[largest])))  # its oldest
        return True

    def _remove_record(self, key: bytes) -> None:
        stored = self.records.pop(key)
        keys = self._by_source.get(stored.source)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._by_source[stored.source]

    def _expire(self, now: float) -> None:
        for key in [key for key, s in self.records.items() if s.expires_at <= now]:
            self._remove_record(key)

    # -- maintenance ----------------------------------------------------------

    def _maintain(self, now: float) -> list[DhtAction]:
        actions: list[DhtAction] = []
        self._expire(now)
        for key, stored in list(self.records.items()):
            if stored.republish_at > now or len(self._lookups) >= self.config.max_lookups:
                continue
            stored.republish_at = now + self.config.republish_interval
            record = self.get_local(key, now)
            if record is not None:
                actions.extend(self._start(key_id(key), now, want_value=False,
                                           put_record=record, report=False)[1])
        actions.extend(self._ping_stale(now))
        actions.extend(self._refresh_buckets(now))
        return actions

    def _ping_stale(self, now: float) -> list[DhtAction]:
        actions: list[DhtAction] = []
        pinged = {key[0] for key, p in self._pending.items() if p.is_ping}
        stale: list[Entry] = [e for b in self.table.buckets for e in b.entries.values()
                              if now - e.last_seen >= self.config.refresh_interval
                              and e.contact.peer_id not in pinged]
        stale.sort(key=lambda e: e.last_seen)
        for entry in stale[: self.config.max_pings_per_tick]:
            self._request(entry.contact, Ping, now, actions, lookup_id=None)
        return actions

    def _refresh_buckets(self, now: float) -> list[DhtAction]:
        actions: list[DhtAction] = []
        started = 0
        lowest = self.table.lowest_occupied()
        for index in range(ID_BITS - 1, lowest - 1, -1):
            if started >= self.config.max_refresh_lookups_per_tick:
                break
            bucket = self.table.buckets[index]
            if now - bucket.last_lookup < self.config.refresh_interval:
                continue
            if len(self._lookups) >= self.config.max_lookups:
                break
            target = self.local_id ^ ((1 << index) | self.rng.getrandbits(index))
            actions.extend(self._start(target, now, want_value=False, put_record=None,
                                       report=False)[1])
            started += 1
        return actions
