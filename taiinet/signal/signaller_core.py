# taiinet: sans-io core
"""The signaller core: every decision of a signaller, with no I/O.

Theory of operation
-------------------
A driver (:mod:`taiinet.signal.server` over sockets, :mod:`taiinet.sim.signal`
in the simulator) reports links up and down, dial failures, received
messages and timers, each with ``now``; the core answers with the contract's actions
(:mod:`taiinet.core.links`: it names links, as it may hold two to one peer
id; timers and ``Joined`` in :mod:`taiinet.signal.signaller_timers`).  Wall-clock time, which signed
records carry, is ``unix_epoch + now``.

Every link is authenticated by Noise, so its peer id is proven; the first
message on it is a ``Hello`` saying whether the other side is a PEER or a
SIGNALLER (and a signaller's listen URL), within ``hello_timeout``.

* A SIGNALLER claim is proven when we dialed that very URL and Noise proved
  the id there, or proved the same (id, URL) before; otherwise the core dials
  the URL expecting the id (at most ``max_verifications`` at once) and, until
  then, answers the claimant's DHT requests (without adding it to the routing
  table), refuses its ``Register`` and holds (bounded) its other messages.
  Only a proven signaller is in the routing table and paced as a signaller.
* DHT messages go to :class:`KademliaNode`; its sends go out on a link to the
  contact, or are queued (bounded) on a dial to its address (at most
  ``max_concurrent_dials``; a failed dial is reported to the DHT).
* A peer ``Register``s a record signed by itself naming this signaller and
  its announced URL, with a higher ``seq`` than the one it holds; the core
  keeps it (at most ``max_peers``) and ``put``s it in the DHT.
  ``Registered`` is sent once the put's STOREs were answered (or failed, or
  ``lookup_timeout`` passed).  A withdrawn record (a tombstone) forgets the
  peer at once and replaces its DHT copies.
* A ``Relay`` from a peer carries its own signed session message for a target
  peer: delivered when the target is homed here, else the target's record is
  found (our DHT copy, or FIND_VALUE), verified, and the relay forwarded to
  its home with ``hops_left = 1``.  When that home cannot be dialed, one more
  FIND_VALUE asks for a newer record (the peer may have re-homed) and the
  relay goes there; failing that the sender gets ``RelayFailed``.  So one
  request costs at most two lookups and two forwards.  A relay from a
  signaller is only ever delivered locally.  Relay lookups are bounded
  globally, per link and per address (:mod:`address_budget`).
* ``GetContacts``: see :mod:`taiinet.signal.contacts`.
* A link that breaks the protocol is closed (``CloseLink``) and counted in
  ``links_dropped``; the core goes on.
"""

from __future__ import annotations

from collections.abc import Callable

from taiinet.core.actions import LinkId
from taiinet.signal.codec import (
    MAX_CONTACTS,
    Contacts,
    Dht,
    GetContacts,
    Register,
    Registered,
    Relay,
    RelayFailed,
    SignalMessage,
)
from taiinet.signal.contacts import ContactsJob, local_sample, merge_contacts
from taiinet.signal.dht_types import (
    Contact,
    DhtRecord,
    LookupFinished,
)
from taiinet.signal.errors import RecordRejected, SignalUsageError
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.pace import ProtocolViolation
from taiinet.signal.records import PeerRecord, open_peer_record, open_session
from taiinet.signal.signaller_base import (
    LinkState,
    RelayJob,
    SignallerBase,
    SignallerClaimRejected,
    _Homed,
)
from taiinet.signal.signaller_timers import ContactsTimer, HomeTimer

__all__ = ["SignallerClaimRejected", "SignallerCore"]
from taiinet.wire.peer_id import PeerId


class SignallerCore(SignallerBase):
    """One signaller's protocol state.  See the module docstring."""

    # -- peers ----------------------------------------------------------------

    def _from_peer(self, state: LinkState, message: SignalMessage) -> None:
        if isinstance(message, Register):
            self._register(state, message)
        elif isinstance(message, GetContacts):
            self._serve_contacts(state, message)
        elif isinstance(message, Relay):
            self._relay_from_peer(state, message)
        else:
            raise ProtocolViolation(f"a peer may not send {type(message).__name__}")

    def _refused(self, state: LinkState, message: Register, reason: str) -> None:
        self._send(state.link, Registered(request_id=message.request_id, ok=False,
                                          reason=reason))

    def _register(self, state: LinkState, message: Register) -> None:
        try:
            record = open_peer_record(message.record, self.unix_ms())
        except RecordRejected as exc:
            self._refused(state, message, str(exc))
            raise ProtocolViolation(f"bad record: {exc}") from None
        if record.peer_id != state.peer_id:
            raise ProtocolViolation("a peer may register only its own record")
        if record.signaller_peer_id != self.peer_id:
            raise ProtocolViolation("the record names another signaller as home")
        if record.signaller_url != self.url:
            # Other signallers dial this URL to reach the peer: it must be the
            # one this home announced in its Hello, so relays can find it.
            self._refused(state, message,
                          f"signaller_url must be {self.url!r}, as in the home's hello")
            raise ProtocolViolation(f"record names signaller_url {record.signaller_url!r}")
        current = self.homed.get(state.peer_id)
        if current is not None and record.seq <= current.record.seq:
            self._refused(state, message, "sequence number not higher")
            return
        if record.withdrawn:
            if current is not None:
                del self.homed[state.peer_id]
        elif current is None and len(self.homed) >= self.config.max_peers:
            raise ProtocolViolation("signaller full")
        else:
            self.homed[state.peer_id] = _Homed(record=record, raw=message.record,
                                               link=state.link)
        ttl = (record.expires_unix_ms - self.unix_ms()) / 1000
        dht_record = DhtRecord(key=id_bytes(node_id(record.peer_id)), value=message.record,
                               seq=record.seq, ttl=ttl)
        ack = Registered(request_id=message.request_id, ok=True, reason="")
        try:
            lookup_id, actions = self.dht.put(dht_record, self._now)
        except SignalUsageError:
            self._send(state.link, ack)  # the DHT is busy: the next renewal publishes it
            return
        self._await_lookup(lookup_id, actions, lambda _: self._send(state.link, ack))

    def _check_session(self, message: Relay) -> tuple[PeerId, bytes]:
        try:
            session = open_session(message.session)
        except RecordRejected as exc:
            raise ProtocolViolation(f"bad session message: {exc}") from None
        if session.to_peer != message.target_peer:
            raise ProtocolViolation("relay target differs from the signed target")
        return session.from_peer, session.session_id

    def _relay_from_peer(self, state: LinkState, message: Relay) -> None:
        from_peer, session_id = self._check_session(message)
        if from_peer != state.peer_id:
            raise ProtocolViolation("a peer may relay only its own session messages")
        target = self.homed.get(message.target_peer)
        if target is not None:
            self._send(target.link, Relay(target_peer=message.target_peer,
                                          session=message.session, hops_left=0))
            return
        home = self._linked_home(message.target_peer)
        if home is not None:  # costs no lookup and no dial: never "busy"
            self._send(home.link, Relay(target_peer=message.target_peer,
                                        session=message.session, hops_left=1))
            return
        c = self.config
        if (self._inflight_relays >= c.max_inflight_relays
                or state.inflight_relays >= c.max_inflight_relays_per_link
                or not self.address_budget.start_lookup(state.address, self._now)):
            self._relay_failed(state.link, state.peer_id, message, session_id,
                               "signaller busy")
            return
        self._inflight_relays += 1
        state.inflight_relays += 1
        job = RelayJob(job=self._new_id(), link=state.link, address=state.address,
                        origin=state.peer_id, message=message, session_id=session_id)
        self._relays[job.job] = job
        self._find_record(message.target_peer, 0, lambda r: self._relay_found(job, r))

    def _linked_home(self, peer_id: PeerId) -> LinkState | None:
        """The link to ``peer_id``'s home if we hold its live record and are linked
        to that signaller: such a relay is forwarded at once, without a lookup
        slot, so relays held up by lookups and dials (towards forged homes that
        never answer) cannot crowd it out."""
        local = self.dht.get_local(id_bytes(node_id(peer_id)), self._now)
        record = None if local is None else self._live_record(local.value, peer_id)
        return None if record is None else self.signallers.get(record.signaller_peer_id)

    def _relay_failed(self, link: LinkId, origin: PeerId, message: Relay, session_id: bytes,
                      reason: str) -> None:
        self._send(link, RelayFailed(target_peer=message.target_peer, session_id=session_id,
                                     reason=reason, origin_peer=origin))

    def _relay_found(self, job: RelayJob, record: PeerRecord | None) -> None:
        if job.job not in self._relays:
            return
        if record is None or record.signaller_peer_id == self.peer_id:
            if job.stage == 1:
                self._fail_relay(job, "target peer not found")
            else:
                self._fail_relay(job, "target peer's home unreachable")
            return
        job.record = record
        home = record.signaller_peer_id
        frame = Relay(target_peer=job.message.target_peer, session=job.message.session,
                      hops_left=1)
        if home in self.signallers:
            self._send(self.signallers[home].link, frame)
            self._finish_relay(job)
            return
        self._home_waits.setdefault(home, []).append(job.job)
        self._timer(self._now + self.config.hello_timeout, HomeTimer(job=job.job,
                                                                     stage=job.stage))
        self._send_to_signaller(home, record.signaller_url, frame)

    def _home_unreachable(self, job: RelayJob) -> None:
        """The home's dial failed: the record may be a copy from before a re-homing."""
        if job.stage == 2 or job.record is None:
            self._fail_relay(job, "target peer's home unreachable")
            return
        job.stage = 2
        self._find_record(job.message.target_peer, job.record.seq + 1,
                          lambda r: self._relay_found(job, r))

    def _fail_relay(self, job: RelayJob, reason: str) -> None:
        self._relay_failed(job.link, job.origin, job.message, job.session_id, reason)
        self._finish_relay(job)

    def _finish_relay(self, job: RelayJob) -> None:
        if self._relays.pop(job.job, None) is None:
            return
        self._inflight_relays -= 1
        state = self.links.get(job.link)
        if state is not None:
            state.inflight_relays -= 1
        self.address_budget.finish_lookup(job.address)

    def _find_record(self, peer_id: PeerId, min_seq: int,
                     done: Callable[[PeerRecord | None], None]) -> None:
        """The target's verified record: our copy, else a FIND_VALUE (of at least ``min_seq``)."""
        key = id_bytes(node_id(peer_id))
        local = self.dht.get_local(key, self._now)
        if local is not None and local.seq >= min_seq:
            done(self._live_record(local.value, peer_id))
            return
        try:
            lookup_id, actions = self.dht.start_lookup(key, self._now, want_value=True,
                                                       min_seq=min_seq)
        except SignalUsageError:
            done(None)
            return

        def found(result: LookupFinished | None) -> None:
            raw = result.record.value if result is not None and result.record else None
            done(None if raw is None else self._live_record(raw, peer_id))

        self._await_lookup(lookup_id, actions, found)

    def _live_record(self, raw: bytes, peer_id: PeerId) -> PeerRecord | None:
        try:
            record = open_peer_record(raw, self.unix_ms())
        except RecordRejected:
            return None
        return record if record.peer_id == peer_id and not record.withdrawn else None

    # -- contacts -------------------------------------------------------------

    def _sample(self, count: int, exclude: str, service: str) -> list[bytes]:
        return local_sample(self, count, exclude, service)

    def _serve_contacts(self, state: LinkState, message: GetContacts) -> None:
        count = min(message.count, MAX_CONTACTS)
        service = message.service
        job = ContactsJob(job=self._new_id(), link=state.link, exclude=state.peer_id,
                          request_id=message.request_id, count=count, service=service,
                          local=self._sample(count, state.peer_id, service))
        self._contacts[job.job] = job
        fanout = self.config.service_fanout if service else self.config.contacts_fanout
        if (fanout > 0 and (not service or len(job.local) < count)
                and self.address_budget.take(state.address, self._now)):
            # (Past its address's budget a request is answered from local peers only.)
            others = [c for c in self.dht.table.contacts() if c.peer_id != state.peer_id]
            for contact in self.rng.sample(others, min(fanout, len(others))):
                request_id = self._new_id()
                job.waiting.add(request_id)
                self._contact_requests[request_id] = job.job
                self._send_to_signaller(contact.peer_id, contact.address, GetContacts(
                    request_id=request_id, count=count, local_only=True, service=service))
        if job.waiting:
            self._timer(self._now + self.config.contacts_timeout, ContactsTimer(job=job.job))
        else:
            self._answer_contacts(job.job)

    def _contacts_reply(self, message: Contacts) -> None:
        job_id = self._contact_requests.pop(message.request_id, None)
        job = self._contacts.get(job_id) if job_id is not None else None
        if job is None:
            return
        job.waiting.discard(message.request_id)
        job.replies.append(message.records)
        if not job.waiting:
            self._answer_contacts(job.job)

    def _answer_contacts(self, job_id: int) -> None:
        job = self._contacts.pop(job_id, None)
        if job is None:
            return
        for request_id in job.waiting:
            self._contact_requests.pop(request_id, None)
        records = merge_contacts(job, self.unix_ms(), self.rng,
                                 {self.peer_id, *self.signallers})
        self._send(job.link, Contacts(request_id=job.request_id, records=tuple(records)))

    # -- signallers -----------------------------------------------------------

    def _from_signaller(self, state: LinkState, message: SignalMessage) -> None:
        if isinstance(message, Dht):
            self._check_dht_record(message)
            sender = Contact(peer_id=state.peer_id, address=state.listen_url)
            self._apply(self.dht.handle_message(sender, message.message, self._now))
        elif isinstance(message, Relay):
            from_peer, session_id = self._check_session(message)
            if message.hops_left < 1:
                raise ProtocolViolation("relay between signallers without hops left")
            target = self.homed.get(message.target_peer)
            if target is None:
                self._send(state.link, RelayFailed(
                    target_peer=message.target_peer, session_id=session_id,
                    reason="target peer is not homed here", origin_peer=from_peer))
                return
            self._send(target.link, Relay(target_peer=message.target_peer,
                                          session=message.session, hops_left=0))
        elif isinstance(message, RelayFailed):
            origin = self.homed.get(message.origin_peer)
            if origin is not None:
                self._send(origin.link, message)
        elif isinstance(message, GetContacts):
            if not message.local_only:
                raise ProtocolViolation("signallers ask each other only for local contacts")
            self._send(state.link, Contacts(request_id=message.request_id, records=tuple(
                self._sample(min(message.count, MAX_CONTACTS), "", message.service))))
        elif isinstance(message, Contacts):
            self._contacts_reply(message)
        elif isinstance(message, Register):
            self._refuse_register(state, message)
        else:
            raise ProtocolViolation(f"a signaller may not send {type(message).__name__}")


    # -- hooks of the base ----------------------------------------------------

    def _job_timer(self, timer: HomeTimer | ContactsTimer) -> None:
        if isinstance(timer, ContactsTimer):
            self._answer_contacts(timer.job)
            return
        job = self._relays.get(timer.job)
        if job is not None and job.stage == timer.stage:
            self._finish_relay(job)  # still dialing: the relay stays queued on the dial

    def _home_reached(self, peer: PeerId) -> None:
        for job_id in self._home_waits.pop(peer, []):
            job = self._relays.get(job_id)
            if job is not None:
                self._finish_relay(job)

    def _home_failed(self, peer: PeerId) -> None:
        for job_id in self._home_waits.pop(peer, []):
            job = self._relays.get(job_id)
            if job is not None:
                self._home_unreachable(job)
