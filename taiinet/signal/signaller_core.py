# taiinet: sans-io core
"""The signaller core: every decision of a signaller, with no I/O.

Theory of operation
-------------------
A driver (:mod:`taiinet.signal.server` over sockets, :mod:`taiinet.sim.signal`
in the simulator) reports links up and down, dial failures, received
messages and timers, each with ``now``; the core answers with actions
(:mod:`taiinet.signal.signaller_actions`).  Wall-clock time, which signed
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

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from taiinet.signal.address_budget import AddressBudget
from taiinet.signal.codec import (
    MAX_CONTACTS,
    Contacts,
    Dht,
    GetContacts,
    Hello,
    Register,
    Registered,
    Relay,
    RelayFailed,
    Role,
    SignalMessage,
)
from taiinet.signal.contacts import ContactsJob, local_sample, merge_contacts
from taiinet.signal.dht import KademliaNode
from taiinet.signal.dht_types import (
    Contact,
    DhtAction,
    DhtRecord,
    LookupFinished,
    SendDht,
    Store,
    ValueFound,
)
from taiinet.signal.errors import RecordRejected, SignalUsageError
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.pace import ProtocolViolation, ReadPace
from taiinet.signal.records import PeerRecord, open_peer_record, open_session
from taiinet.signal.signaller_actions import (
    Action,
    CloseLink,
    ContactsTimer,
    DhtTimer,
    Dial,
    HelloTimer,
    HomeTimer,
    Joined,
    JoinTimer,
    LinkId,
    LookupTimer,
    Send,
    SetTimer,
    Timer,
    VerifyTimer,
)
from taiinet.signal.signaller_config import MAX_HELD_WHILE_VERIFYING, SignallerConfig
from taiinet.wire.peer_id import PeerId


class SignallerClaimRejected(ProtocolViolation):
    """A link said hello as a signaller but did not prove it is one: dialing the
    URL it gave did not reach its peer id, or it tried to register as a peer."""


@dataclass(slots=True)
class LinkState:
    """Everything the core knows of one link."""

    link: LinkId
    peer_id: PeerId
    address: str | None
    #: The URL we dialed to open this link (``None``: the other side dialed us).
    dialed_url: str | None
    pace: ReadPace
    role: Role | None = None
    listen_url: str = ""
    proven: bool = False
    closing: bool = False
    inflight_relays: int = 0
    held: list[SignalMessage] = field(default_factory=list)


@dataclass(slots=True)
class _Homed:
    record: PeerRecord
    raw: bytes
    link: LinkId


@dataclass(slots=True)
class _Dial:
    url: str
    messages: list[SignalMessage]


@dataclass(slots=True)
class _RelayJob:
    job: int
    link: LinkId
    address: str | None
    origin: PeerId
    message: Relay
    session_id: bytes
    stage: int = 1
    record: PeerRecord | None = None


LookupDone = Callable[[LookupFinished | None], None]


class SignallerCore:
    """One signaller's protocol state.  See the module docstring."""

    def __init__(self, *, peer_id: PeerId, url: str, config: SignallerConfig,
                 rng: random.Random, now: float, unix_epoch: float) -> None:
        self.peer_id = peer_id
        self.url = url
        self.config = config
        self.rng = rng
        self.unix_epoch = unix_epoch
        self.dht = KademliaNode(local=Contact(peer_id=peer_id, address=url),
                                rng=random.Random(rng.getrandbits(64)), now=now,
                                config=config.dht)
        self.links: dict[LinkId, LinkState] = {}
        self.signallers: dict[PeerId, LinkState] = {}
        self.homed: dict[PeerId, _Homed] = {}
        self.address_budget = AddressBudget(config.address_limits)
        #: Links closed because the other side broke the protocol.
        self.links_dropped = 0
        self._dialing: dict[PeerId, _Dial] = {}
        self._verified: dict[PeerId, str] = {}
        self._verifying: dict[PeerId, str] = {}
        self._joining: dict[str, int | None] = {}
        self._lookups: dict[int, LookupDone] = {}
        self._relays: dict[int, _RelayJob] = {}
        self._home_waits: dict[PeerId, list[int]] = {}
        self._contacts: dict[int, ContactsJob] = {}
        self._contact_requests: dict[int, int] = {}
        #: DHT key -> services its stored record names (only records naming some).
        self.service_keys: dict[bytes, tuple[str, ...]] = {}
        self._inflight_relays = 0
        self._next_id = rng.getrandbits(32)
        self._dht_alarm: float | None = None
        self._now = now
        self._out: list[Action] = []

    # -- inputs ---------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """The first actions: the DHT's maintenance timer."""
        self._now = now
        self._arm_dht()
        return self._flush()

    def join(self, url: str, now: float) -> list[Action]:
        """Join the mesh through the signaller at ``url`` (a ``Joined`` ends it)."""
        self._now = now
        self._joining[url] = None
        self._out.append(Dial(url=url, peer=None))
        self._timer(now + self.config.hello_timeout, JoinTimer(url=url))
        return self._flush()

    def handle_link_up(self, link: LinkId, peer_id: PeerId, address: str | None,
                       dialed_url: str | None, now: float) -> list[Action]:
        """A link is authenticated (``dialed_url`` set when we dialed it)."""
        self._now = now
        c = self.config
        if dialed_url is None and len(self.links) >= c.max_links:
            return [CloseLink(link=link, reason=f"{c.max_links} links already")]
        self.links[link] = LinkState(
            link=link, peer_id=peer_id, address=address, dialed_url=dialed_url,
            pace=ReadPace(rate=c.peer_rate, burst=c.peer_burst, byte_rate=c.peer_byte_rate,
                          byte_burst=c.peer_byte_burst, refilled=now))
        self._out.append(Send(link=link, message=Hello(role=Role.SIGNALLER,
                                                       listen_url=self.url)))
        self._timer(now + c.hello_timeout, HelloTimer(link=link))
        return self._flush()

    def read_delay(self, link: LinkId, size: int, now: float) -> float:
        """Seconds to wait before reading on after a frame of ``size`` bytes.

        ``ProtocolViolation`` for a link flooding past ``flood_timeout``.
        """
        state = self.links.get(link)
        return 0.0 if state is None else state.pace.delay(size, now, self.config.flood_timeout)

    def handle_message(self, link: LinkId, message: SignalMessage, now: float) -> list[Action]:
        self._now = now
        state = self.links.get(link)
        if state is None or state.closing:
            return []
        try:
            if state.role is None:
                self._hello(state, message)
            elif state.role is not Role.SIGNALLER:
                self._from_peer(state, message)
            elif state.proven:
                self._from_signaller(state, message)
            else:
                self._from_claimant(state, message)
        except ProtocolViolation as exc:
            self._drop(state, str(exc))
        return self._flush()

    def handle_link_down(self, link: LinkId, now: float) -> list[Action]:
        self._now = now
        state = self.links.pop(link, None)
        if state is None:
            return []
        if self.signallers.get(state.peer_id) is state:
            del self.signallers[state.peer_id]
        homed = self.homed.get(state.peer_id)
        if homed is not None and homed.link == link:
            # Gone without withdrawing: no longer a contact, and our DHT copy
            # goes too (the others lapse within the record's short lifetime).
            del self.homed[state.peer_id]
            self.dht.drop_local(id_bytes(node_id(state.peer_id)), homed.record.seq)
        if state.dialed_url is not None and not state.proven:
            dial = self._dialing.get(state.peer_id)
            if dial is not None and dial.url == state.dialed_url:
                self._dial_failed(state.peer_id)  # closed before its hello
            self._join_link_failed(state.dialed_url)
        return self._flush()

    def handle_dial_failed(self, url: str, peer: PeerId | None, now: float) -> list[Action]:
        self._now = now
        if peer is not None:
            self._dial_failed(peer)
        self._join_link_failed(url)
        return self._flush()

    def handle_timer(self, timer: Timer, now: float) -> list[Action]:
        self._now = now
        if isinstance(timer, DhtTimer):
            if self._dht_alarm is not None and self._dht_alarm <= now:
                self._dht_alarm = None
            if now >= self.dht.next_deadline():
                self._apply(self.dht.handle_timer(now))
            self._arm_dht()
        elif isinstance(timer, HelloTimer):
            state = self.links.get(timer.link)
            if state is not None and state.role is None and not state.closing:
                self._drop(state, "no hello in time")
        elif isinstance(timer, LookupTimer):
            done = self._lookups.pop(timer.lookup_id, None)
            if done is not None:
                done(None)
        elif isinstance(timer, HomeTimer):
            job = self._relays.get(timer.job)
            if job is not None and job.stage == timer.stage:
                self._finish_relay(job)  # still dialing: the relay stays queued on the dial
        elif isinstance(timer, ContactsTimer):
            self._answer_contacts(timer.job)
        elif isinstance(timer, VerifyTimer):
            self._verification_ended(timer.peer)
        elif self._joining.get(timer.url, 0) is None:  # JoinTimer, no lookup started yet
            self._start_join_lookup(timer.url)
        return self._flush()

    # -- queries --------------------------------------------------------------

    @property
    def now(self) -> float:
        """The ``now`` of the input being handled."""
        return self._now

    @property
    def homed_peers(self) -> list[PeerId]:
        return list(self.homed)

    def inflight_relays(self) -> int:
        return self._inflight_relays

    # -- hello and claims -----------------------------------------------------

    def _hello(self, state: LinkState, message: SignalMessage) -> None:
        if not isinstance(message, Hello):
            raise ProtocolViolation("the first message must be a Hello")
        state.role = message.role
        if message.role is Role.SIGNALLER:
            if not message.listen_url:
                raise ProtocolViolation("a signaller must say its URL")
            state.listen_url = message.listen_url
            if self._claim_known(state):
                self._promote(state)
            else:
                self._start_verification(state)
        elif len(self.homed) >= self.config.max_peers:
            raise ProtocolViolation(f"signaller full ({self.config.max_peers} peers)")

    def _claim_known(self, state: LinkState) -> bool:
        url = state.listen_url
        if state.dialed_url == url:
            self._remember_verified(state.peer_id, url)
            return True
        return self._verified.get(state.peer_id) == url

    def _remember_verified(self, peer_id: PeerId, url: str) -> None:
        self._verified.pop(peer_id, None)
        self._verified[peer_id] = url
        while len(self._verified) > self.config.max_verified:
            del self._verified[next(iter(self._verified))]

    def _start_verification(self, state: LinkState) -> None:
        pending = self._verifying.get(state.peer_id)
        if pending == state.listen_url:
            return  # settled with the verification under way
        if pending is not None or len(self._verifying) >= self.config.max_verifications:
            raise SignallerClaimRejected("too many signaller claims being verified")
        self._verifying[state.peer_id] = state.listen_url
        self._timer(self._now + self.config.hello_timeout, VerifyTimer(peer=state.peer_id))
        if state.peer_id not in self._dialing:
            self._dial(state.peer_id, state.listen_url, [])

    def _verification_ended(self, peer: PeerId) -> None:
        """Promote the claimants of ``peer`` whose URL is proven now; close the rest."""
        url = self._verifying.pop(peer, None)
        if url is None:
            return
        for state in [s for s in self.links.values() if s.peer_id == peer]:
            if state.role is not Role.SIGNALLER or state.proven or state.closing:
                continue
            if self._verified.get(peer) == state.listen_url:
                self._promote(state)
            else:
                self._out.append(CloseLink(link=state.link, reason=(
                    f"{state.listen_url} did not prove peer id {peer}")))
                state.closing = True

    def _promote(self, state: LinkState) -> None:
        """A proven signaller: signaller pace, routing table, queued messages."""
        c = self.config
        state.proven = True
        state.pace.reset(rate=c.signaller_rate, burst=c.signaller_burst,
                         byte_rate=c.signaller_byte_rate, byte_burst=c.signaller_byte_burst)
        self.signallers[state.peer_id] = state
        dial = self._dialing.pop(state.peer_id, None)
        for message in dial.messages if dial is not None else ():
            self._send(state.link, message)
        if self._verifying.get(state.peer_id) == state.listen_url:
            self._verification_ended(state.peer_id)
        for job_id in self._home_waits.pop(state.peer_id, []):
            job = self._relays.get(job_id)
            if job is not None:
                self._finish_relay(job)
        self._apply(self.dht.add_contact(
            Contact(peer_id=state.peer_id, address=state.listen_url), self._now))
        held, state.held = state.held, []
        for message in held:
            self._from_signaller(state, message)
        if state.dialed_url is not None and self._joining.get(state.dialed_url, 0) is None:
            self._start_join_lookup(state.dialed_url)

    def _from_claimant(self, state: LinkState, message: SignalMessage) -> None:
        if isinstance(message, Dht):
            self._check_dht_record(message)
            sender = Contact(peer_id=state.peer_id, address=state.listen_url)
            self._apply(self.dht.handle_message(sender, message.message, self._now,
                                                observe=False))
        elif isinstance(message, Register):
            self._refuse_register(state, message)
        elif len(state.held) >= MAX_HELD_WHILE_VERIFYING:
            raise SignallerClaimRejected("too many messages before its claim was proven")
        else:
            state.held.append(message)

    def _refuse_register(self, state: LinkState, message: Register) -> None:
        reason = "a link that says hello as a SIGNALLER cannot register; say PEER"
        self._send(state.link, Registered(request_id=message.request_id, ok=False,
                                          reason=reason))
        raise SignallerClaimRejected(reason)

    # -- joining --------------------------------------------------------------

    def _start_join_lookup(self, url: str) -> None:
        if len(self.dht.table) == 0:
            self._joining.pop(url, None)
            self._out.append(Joined(url=url, ok=False))
            return
        try:
            lookup_id, actions = self.dht.start_lookup(id_bytes(self.dht.local_id), self._now)
        except SignalUsageError:
            self._joining.pop(url, None)
            self._out.append(Joined(url=url, ok=True))
            return
        self._joining[url] = lookup_id

        def done(_: LookupFinished | None) -> None:
            self._joining.pop(url, None)
            self._out.append(Joined(url=url, ok=True))

        self._await_lookup(lookup_id, actions, done)

    def _join_link_failed(self, url: str) -> None:
        if self._joining.get(url, 0) is None and len(self.dht.table) == 0:
            self._joining.pop(url, None)
            self._out.append(Joined(url=url, ok=False))

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
        c = self.config
        if (self._inflight_relays >= c.max_inflight_relays
                or state.inflight_relays >= c.max_inflight_relays_per_link
                or not self.address_budget.start_lookup(state.address, self._now)):
            self._relay_failed(state.link, state.peer_id, message, session_id,
                               "signaller busy")
            return
        self._inflight_relays += 1
        state.inflight_relays += 1
        job = _RelayJob(job=self._new_id(), link=state.link, address=state.address,
                        origin=state.peer_id, message=message, session_id=session_id)
        self._relays[job.job] = job
        self._find_record(message.target_peer, 0, lambda r: self._relay_found(job, r))

    def _relay_failed(self, link: LinkId, origin: PeerId, message: Relay, session_id: bytes,
                      reason: str) -> None:
        self._send(link, RelayFailed(target_peer=message.target_peer, session_id=session_id,
                                     reason=reason, origin_peer=origin))

    def _relay_found(self, job: _RelayJob, record: PeerRecord | None) -> None:
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

    def _home_unreachable(self, job: _RelayJob) -> None:
        """The home's dial failed: the record may be a copy from before a re-homing."""
        if job.stage == 2 or job.record is None:
            self._fail_relay(job, "target peer's home unreachable")
            return
        job.stage = 2
        self._find_record(job.message.target_peer, job.record.seq + 1,
                          lambda r: self._relay_found(job, r))

    def _fail_relay(self, job: _RelayJob, reason: str) -> None:
        self._relay_failed(job.link, job.origin, job.message, job.session_id, reason)
        self._finish_relay(job)

    def _finish_relay(self, job: _RelayJob) -> None:
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
        records = merge_contacts(job, self.unix_ms(), self.rng)
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

    def _check_dht_record(self, message: Dht) -> None:
        """Records in STORE and VALUE must be valid signed records for their key."""
        inner = message.message
        if not isinstance(inner, Store | ValueFound):
            return
        try:
            record = open_peer_record(inner.record.value, self.unix_ms())
        except RecordRejected as exc:
            raise ProtocolViolation(f"DHT record rejected: {exc}") from None
        if id_bytes(node_id(record.peer_id)) != inner.record.key or record.seq != inner.record.seq:
            raise ProtocolViolation("DHT record stored under the wrong key or sequence")
        if isinstance(inner, Store) and record.services:
            # Indexed on arrival, before the DHT core decides to keep it: a query
            # reads the held record and drops a key under which nothing is held.
            self.service_keys.pop(inner.record.key, None)
            self.service_keys[inner.record.key] = record.services
            while len(self.service_keys) > self.config.max_service_records:
                del self.service_keys[next(iter(self.service_keys))]

    # -- dials and the DHT ----------------------------------------------------

    def _send_to_signaller(self, peer: PeerId, url: str, message: SignalMessage) -> None:
        state = self.signallers.get(peer)
        if state is not None:
            self._send(state.link, message)
            return
        pending = self._dialing.get(peer)
        if pending is not None:
            if len(pending.messages) < self.config.max_pending_per_dial:
                pending.messages.append(message)
            return
        self._dial(peer, url, [message])

    def _dial(self, peer: PeerId, url: str, messages: list[SignalMessage]) -> None:
        if len(self._dialing) >= self.config.max_concurrent_dials:
            self._dial_failed(peer)
            return
        self._dialing[peer] = _Dial(url=url, messages=messages)
        self._out.append(Dial(url=url, peer=peer))

    def _dial_failed(self, peer: PeerId) -> None:
        self._dialing.pop(peer, None)
        if peer in self._verifying:
            self._verification_ended(peer)
        for job_id in self._home_waits.pop(peer, []):
            job = self._relays.get(job_id)
            if job is not None:
                self._home_unreachable(job)
        if peer not in self.signallers:
            self._apply(self.dht.handle_unreachable(peer, self._now))

    def _await_lookup(self, lookup_id: int, actions: list[DhtAction], done: LookupDone) -> None:
        """Call ``done`` when the lookup ends (or ``lookup_timeout`` passes)."""
        self._lookups[lookup_id] = done
        self._timer(self._now + self.config.lookup_timeout, LookupTimer(lookup_id=lookup_id))
        self._apply(actions)

    def _apply(self, actions: list[DhtAction]) -> None:
        for action in actions:
            if isinstance(action, SendDht):
                self._send_to_signaller(action.to.peer_id, action.to.address,
                                        Dht(message=action.message, sender_address=self.url))
            else:
                done = self._lookups.pop(action.lookup_id, None)
                if done is not None:
                    done(action)
        self._arm_dht()

    def _arm_dht(self) -> None:
        deadline = self.dht.next_deadline()
        if self._dht_alarm is None or deadline < self._dht_alarm:
            self._dht_alarm = deadline
            self._timer(deadline, DhtTimer())

    # -- helpers --------------------------------------------------------------

    def unix_ms(self) -> int:
        """Wall-clock milliseconds now (what signed records' expiries are in)."""
        return math.floor((self.unix_epoch + self._now) * 1000)

    def _drop(self, state: LinkState, reason: str) -> None:
        self.links_dropped += 1
        state.closing = True
        self._out.append(CloseLink(link=state.link, reason=reason, flush=True))

    def _send(self, link: LinkId, message: SignalMessage) -> None:
        if link in self.links:
            self._out.append(Send(link=link, message=message))

    def _timer(self, at: float, timer: Timer) -> None:
        self._out.append(SetTimer(at=at, timer=timer))

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) % (1 << 64)
        return self._next_id

    def _flush(self) -> list[Action]:
        out, self._out = self._out, []
        return out
