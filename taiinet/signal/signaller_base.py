# taiinet: sans-io core
"""The link half of the signaller core: links, hellos, signaller claims, dials, the DHT.

See :mod:`taiinet.signal.signaller_core` for the theory of operation; this
module holds what every link needs (its state record, the hello within
``hello_timeout``, proving SIGNALLER claims by dialing back, queuing DHT
messages on dials, joining the mesh, the DHT's timer) and
:class:`SignallerCore` adds what peers ask for (register, relay, contacts).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer
from taiinet.signal.address_budget import AddressBudget
from taiinet.signal.codec import (
    Dht,
    Hello,
    Register,
    Registered,
    Relay,
    Role,
    SignalMessage,
)
from taiinet.signal.contacts import ContactsJob
from taiinet.signal.dht import KademliaNode
from taiinet.signal.dht_types import (
    Contact,
    DhtAction,
    LookupFinished,
    Store,
    ValueFound,
)
from taiinet.signal.errors import RecordRejected, SignalUsageError
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.pace import ProtocolViolation, ReadPace
from taiinet.signal.records import PeerRecord, open_peer_record
from taiinet.signal.signaller_config import MAX_HELD_WHILE_VERIFYING, SignallerConfig
from taiinet.signal.signaller_timers import (
    ContactsTimer,
    DhtTimer,
    HelloTimer,
    HomeTimer,
    Joined,
    JoinTimer,
    LookupTimer,
    SignallerAction,
    SignallerTimer,
    VerifyTimer,
)
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
class RelayJob:
    """A relay to a peer homed elsewhere: finding its record, then reaching its home."""

    job: int
    link: LinkId
    address: str | None
    origin: PeerId
    message: Relay
    session_id: bytes
    stage: int = 1
    record: PeerRecord | None = None


LookupDone = Callable[[LookupFinished | None], None]


class SignallerBase:
    """Links, hellos, claims, dials and the DHT of a signaller; the requests of
    peers are :class:`~taiinet.signal.signaller_core.SignallerCore`'s."""

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
        #: The links of each peer id, in the order of ``links`` (an index).
        self._links_of: dict[PeerId, dict[LinkId, LinkState]] = {}
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
        self._relays: dict[int, RelayJob] = {}
        self._home_waits: dict[PeerId, list[int]] = {}
        self._contacts: dict[int, ContactsJob] = {}
        self._contact_requests: dict[int, int] = {}
        #: DHT key -> services its stored record names (only records naming some).
        self.service_keys: dict[bytes, tuple[str, ...]] = {}
        self._inflight_relays = 0
        self._next_id = rng.getrandbits(32)
        self._now = now
        self._out: list[SignallerAction] = []

    # -- inputs ---------------------------------------------------------------

    def start(self, now: float) -> list[SignallerAction]:
        """The first actions: the DHT's maintenance timer."""
        self._now = now
        self._apply(self.dht.start(now))
        return self._flush()

    def join(self, url: str, now: float) -> list[SignallerAction]:
        """Join the mesh through the signaller at ``url`` (a ``Joined`` ends it)."""
        self._now = now
        self._joining[url] = None
        self._out.append(Dial(address=url, peer=None))
        self._timer(now + self.config.hello_timeout, JoinTimer(url=url))
        return self._flush()

    def handle_link_up(self, link: LinkId, peer: PeerId, address: str | None,
                       dialed: str | None, now: float) -> list[SignallerAction]:
        """A link is authenticated (``dialed`` set when we dialed it)."""
        self._now = now
        c = self.config
        if dialed is None and len(self.links) >= c.max_links:
            return [CloseLink(peer=peer, link=link, failed=True,
                              reason=f"{c.max_links} links already")]
        if link in self.links:
            raise SignalUsageError(f"link id {link} is already in use (runners never reuse one)")
        state = self.links[link] = LinkState(
            link=link, peer_id=peer, address=address, dialed_url=dialed,
            pace=ReadPace(rate=c.peer_rate, burst=c.peer_burst, byte_rate=c.peer_byte_rate,
                          byte_burst=c.peer_byte_burst, refilled=now))
        self._links_of.setdefault(peer, {})[link] = state
        self._send(link, Hello(role=Role.SIGNALLER, listen_url=self.url))
        self._timer(now + c.hello_timeout, HelloTimer(link=link))
        return self._flush()

    def read_delay(self, link: LinkId, size: int, now: float) -> float:
        """Seconds to wait before reading on after a frame of ``size`` bytes.

        ``ProtocolViolation`` for a link flooding past ``flood_timeout``.
        """
        state = self.links.get(link)
        return 0.0 if state is None else state.pace.delay(size, now, self.config.flood_timeout)

    def handle_message(self, link: LinkId, message: SignalMessage,
                       now: float) -> list[SignallerAction]:
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

    def handle_link_down(self, link: LinkId, now: float) -> list[SignallerAction]:
        self._now = now
        state = self.links.pop(link, None)
        if state is None:
            return []
        of_peer = self._links_of[state.peer_id]
        del of_peer[link]
        if not of_peer:
            del self._links_of[state.peer_id]
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

    def handle_dial_failed(self, address: str, peer: PeerId | None,
                           now: float) -> list[SignallerAction]:
        self._now = now
        url = address
        if peer is not None:
            self._dial_failed(peer)
        self._join_link_failed(url)
        return self._flush()

    def handle_timer(self, timer: SignallerTimer, now: float) -> list[SignallerAction]:
        self._now = now
        if isinstance(timer, DhtTimer):
            self._apply(self.dht.handle_timer(timer.timer, now))
        elif isinstance(timer, HelloTimer):
            state = self.links.get(timer.link)
            if state is not None and state.role is None and not state.closing:
                self._drop(state, "no hello in time")
        elif isinstance(timer, LookupTimer):
            done = self._lookups.pop(timer.lookup_id, None)
            if done is not None:
                done(None)
        elif isinstance(timer, HomeTimer | ContactsTimer):
            self._job_timer(timer)
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
        for state in list(self._links_of.get(peer, {}).values()):
            if state.role is not Role.SIGNALLER or state.proven or state.closing:
                continue
            if self._verified.get(peer) == state.listen_url:
                self._promote(state)
            else:
                self._out.append(CloseLink(peer=peer, link=state.link, failed=True, reason=(
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
        self._home_reached(state.peer_id)
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


    # -- what the requests of peers add (SignallerCore) -----------------------

    def _from_peer(self, state: LinkState, message: SignalMessage) -> None:
        raise NotImplementedError

    def _from_signaller(self, state: LinkState, message: SignalMessage) -> None:
        raise NotImplementedError

    def _job_timer(self, timer: HomeTimer | ContactsTimer) -> None:
        raise NotImplementedError

    def _home_reached(self, peer: PeerId) -> None:
        """A dial to ``peer`` (a relay target's home, say) ended in a proven link."""

    def _home_failed(self, peer: PeerId) -> None:
        """A dial to ``peer`` failed."""

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
        self._out.append(Dial(address=url, peer=peer))

    def _dial_failed(self, peer: PeerId) -> None:
        self._dialing.pop(peer, None)
        if peer in self._verifying:
            self._verification_ended(peer)
        self._home_failed(peer)
        if peer not in self.signallers:
            self._apply(self.dht.handle_link_down(peer, self._now))

    def _await_lookup(self, lookup_id: int, actions: list[DhtAction], done: LookupDone) -> None:
        """Call ``done`` when the lookup ends (or ``lookup_timeout`` passes)."""
        self._lookups[lookup_id] = done
        self._timer(self._now + self.config.lookup_timeout, LookupTimer(lookup_id=lookup_id))
        self._apply(actions)

    def _apply(self, actions: list[DhtAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send_to_signaller(action.peer, action.address or "",
                                        Dht(message=action.message, sender_address=self.url))
            elif isinstance(action, SetTimer):
                self._timer(action.at, DhtTimer(timer=action.timer))
            else:
                done = self._lookups.pop(action.lookup_id, None)
                if done is not None:
                    done(action)

    # -- helpers --------------------------------------------------------------

    def unix_ms(self) -> int:
        """Wall-clock milliseconds now (what signed records' expiries are in)."""
        return math.floor((self.unix_epoch + self._now) * 1000)

    def _drop(self, state: LinkState, reason: str) -> None:
        self.links_dropped += 1
        state.closing = True
        self._out.append(CloseLink(peer=state.peer_id, link=state.link, reason=reason))

    def _send(self, link: LinkId, message: SignalMessage) -> None:
        state = self.links.get(link)
        if state is not None:
            self._out.append(Send(peer=state.peer_id, message=message, link=link))

    def _timer(self, at: float, timer: SignallerTimer) -> None:
        self._out.append(SetTimer(at=at, timer=timer))

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) % (1 << 64)
        return self._next_id

    def _flush(self) -> list[SignallerAction]:
        out, self._out = self._out, []
        return out
