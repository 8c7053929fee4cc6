"""The signaller: a trio driver of the Kademlia core plus the peer-facing service.

Theory of operation
-------------------
A signaller listens on a transport (secure WebSocket, or the memory network
in tests).  Every link is authenticated by Noise, so ``remote_peer_id`` is
proven; the first frame on a link is a ``Hello`` saying whether the other
side is a PEER or a SIGNALLER (and a signaller's listen URL).

* Signaller links carry DHT messages, which go to :class:`KademliaNode`; its
  ``Send`` actions go out on an existing link or a new dial, and its
  ``SetTimer``s are kept in a heap served by one timer task.
* A peer ``Register``s a record signed by itself naming this signaller; the
  signaller keeps it (at most ``max_peers``) and ``put``s it in the DHT
  under SHA-256(peer id multihash).  ``Registered`` is sent once the put's
  STOREs were answered (or failed), so a peer that hears it -- one that just
  re-homed, say -- can be found at its new home by anyone.
* A ``Relay`` from a peer carries a signed session message (offer, answer,
  ICE, reject) for a target peer: delivered locally when the target is homed
  here, else the target's record is found in the DHT (FIND_VALUE), verified,
  and the relay is forwarded to the target's home with ``hops_left = 1``.  A
  relay from a signaller is only ever delivered locally (never forwarded
  again).  When the record's home cannot be dialed (a copy left from before
  the peer re-homed), one more FIND_VALUE asks for a newer record and the
  relay goes to its home; failing that the sender gets ``RelayFailed``, so
  one request causes at most two lookups and two forwards.
* ``GetContacts`` from a peer: a random sample of local peers plus samples
  from up to ``contacts_fanout`` random signallers of the routing table.  With
  a ``service`` (``"seeder"``), only peers whose record names it: linked ones
  first, then held DHT copies (found through a bounded index of the held keys
  whose records name services), then, while fewer than asked, samples from
  up to ``service_fanout`` other signallers, so a rare service is found at
  any mesh size.

Abuse: every link has a token-bucket rate limit (past it, the link is read
more slowly) and a bounded send queue (a link that lets it overflow is
closed); relay lookups and contact fan-outs are also budgeted per remote
address across links (``address_budget``), so one host with many identities
cannot take the global lookup slots; every signed thing is verified before
use; a link that sends anything malformed or forbidden is closed and logged,
and the signaller goes on.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from taiinet.core.actions import Send, SetTimer
from taiinet.errors import ConnectionClosed, RemoteProtocolError, TaiiNetError
from taiinet.signal.address_budget import AddressBudget, AddressLimits
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
    decode_signal,
    encode_signal,
)
from taiinet.signal.dht import DhtConfig, KademliaNode
from taiinet.signal.dht_types import (
    Contact,
    DhtAction,
    DhtRecord,
    DhtTimer,
    LookupFinished,
    Store,
    ValueFound,
)
from taiinet.signal.errors import RecordRejected, SignalError, SignalUsageError
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.records import PeerRecord, open_peer_record, open_session
from taiinet.signal.transport import SignalListener, SignalTransport
from taiinet.transport.connection import Connection
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import encode_ping, encode_pong, ping_nonce
from taiinet.wire.peer_id import PeerId

logger = logging.getLogger(__name__)

#: Seconds a link closed for a protocol violation has to send what was queued
#: for it (a ``registered{ok=false}`` saying why).
FLUSH_TIMEOUT = 1.0
#: Non-DHT messages kept from a link whose SIGNALLER claim is being checked.
MAX_HELD_WHILE_VERIFYING = 32
#: The keep-alive frame the writer sends on a quiet link.
_PING = encode_ping()


@dataclass(frozen=True, slots=True, kw_only=True)
class SignallerConfig:
    """Limits of one signaller; every queue and table bound is here."""

    max_peers: int = 10_000
    max_links: int = 20_000
    send_queue: int = 256
    peer_rate: float = 20.0
    peer_burst: float = 60.0
    signaller_rate: float = 500.0
    signaller_burst: float = 2000.0
    max_concurrent_dials: int = 32
    max_pending_per_dial: int = 64
    max_inflight_relays: int = 256
    #: Relays of one peer being looked up at once; past it the peer gets
    #: ``relay_failed`` ("busy"), so one link cannot hold the lookup slots.
    max_inflight_relays_per_link: int = 4
    #: Signaller claims being verified (dialed back) at once; past it a claim
    #: is refused and its link closed.
    max_verifications: int = 16
    #: Peer ids remembered as proven signallers (id -> URL), oldest forgotten.
    max_verified: int = 4096
    lookup_timeout: float = 10.0
    contacts_fanout: int = 2
    contacts_timeout: float = 2.0
    #: Signallers asked for a ``GetContacts`` naming a service, while this one
    #: holds fewer matching records than asked.  Up to 20 signallers each hold
    #: every record (k = 20); beyond that each asked one holds a given record
    #: with probability 20/N, besides the peers linked to it.
    service_fanout: int = 6
    #: Held DHT keys indexed by the services their records name (oldest forgotten).
    max_service_records: int = 1024
    #: Seconds since its last renewal reached us within which a peer record held
    #: for the DHT may be handed out as a contact (after the linked peers): a
    #: little more than a peer's renewal interval (``RECORD_LIFETIME /
    #: RECORD_RENEWALS`` = 30 s).
    contact_freshness: float = 40.0
    hello_timeout: float = 10.0
    #: Bytes per second a peer link is read at past ``peer_byte_burst`` (frames of all layers).
    peer_byte_rate: float = 64 * 1024
    peer_byte_burst: float = 512 * 1024
    #: The same for links to other signallers.
    signaller_byte_rate: float = 1024 * 1024
    signaller_byte_burst: float = 4 * 1024 * 1024
    #: Seconds of sending nothing on a link before the signaller sends a ``Ping``; the
    #: peer's ``Pong`` keeps the link within the listener's idle deadline (60 s).
    keepalive_interval: float = 20.0
    #: Seconds a link may be read at its rate limit without a break before it is
    #: dropped as a flood (a legitimate burst drains well within it).
    flood_timeout: float = 30.0
    #: Relay lookups and contact fan-outs per remote address, across its links.
    address_limits: AddressLimits = field(default_factory=AddressLimits)
    dht: DhtConfig = field(default_factory=DhtConfig)


class ProtocolViolation(RemoteProtocolError, SignalError):
    """A link broke the signalling protocol; it is closed."""


class SignallerClaimRejected(ProtocolViolation):
    """A link said hello as a signaller but did not prove it is one: dialing the
    URL it gave did not reach its peer id, or it tried to register as a peer."""


@dataclass(slots=True)
class _Link:
    connection: Connection
    peer_id: PeerId
    send: trio.MemorySendChannel[bytes]
    receive: trio.MemoryReceiveChannel[bytes]
    rate: float
    burst: float
    byte_rate: float
    byte_burst: float
    role: Role | None = None
    listen_url: str = ""
    #: The URL we dialed to open this link (``None``: the other side dialed us).
    dialed_url: str | None = None
    inflight_relays: int = 0
    #: The other end's network address (``Connection.remote_address``), if known.
    address: str | None = None
    #: A SIGNALLER hello proven (we reached its peer id at its URL): only then
    #: is it in the routing table, rate limited as a signaller, or heard beyond DHT.
    proven: bool = False
    #: Messages other than DHT ones from a claimant not proven yet, for later.
    held: list[SignalMessage] = field(default_factory=list)
    #: Set when the writer has sent everything (its queue was closed).
    drained: trio.Event = field(default_factory=trio.Event)
    tokens: float = 0.0
    byte_tokens: float = 0.0
    refilled: float = 0.0
    throttled_since: float | None = None
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)


@dataclass(slots=True)
class _Homed:
    record: PeerRecord
    raw: bytes
    link: _Link


class Signaller:
    """One signaller.  Run it with :meth:`serve` (or use ``open_signaller``)."""

    def __init__(self, *, identity: Identity, transport: SignalTransport,
                 config: SignallerConfig | None = None,
                 rng: random.Random | None = None) -> None:
        self.identity = identity
        self.transport = transport
        self.config = config or SignallerConfig()
        self.rng = rng or random.Random()
        self.url = ""
        self.dht: KademliaNode | None = None
        self._links: dict[int, _Link] = {}
        self._signallers: dict[str, _Link] = {}
        self._homed: dict[str, _Homed] = {}
        self._dialing: dict[str, list[bytes]] = {}
        #: Set when a dial in ``_dialing`` ends (linked or failed); bounded like it.
        self._dial_ended: dict[str, trio.Event] = {}
        #: Proven signallers: peer id -> the URL at which Noise proved that id.
        self._verified: dict[PeerId, str] = {}
        self._verifying: dict[PeerId, tuple[str, trio.Event]] = {}
        self._lookups: dict[int, tuple[trio.Event, list[LookupFinished]]] = {}
        self._contact_waits: dict[int, tuple[trio.Event, list[Contacts]]] = {}
        #: DHT key -> services its stored record names (only records naming some).
        self._service_keys: dict[bytes, tuple[str, ...]] = {}
        self._next_request = self.rng.getrandbits(32)
        self._inflight_relays = 0
        self._address_budget = AddressBudget(self.config.address_limits)
        self._wake = trio.Event()
        #: The DHT core's timers: (at, sequence, timer), earliest first.
        self._timers: list[tuple[float, int, DhtTimer]] = []
        self._timer_seq = 0
        self._nursery: trio.Nursery | None = None
        #: Links closed because the other side broke the protocol (a bad frame, a bad
        #: signed record or session, or a per-request task it made fail).
        self.links_dropped = 0

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def homed_peers(self) -> list[str]:
        return list(self._homed)

    # -- lifecycle ------------------------------------------------------------

    async def close_links(self) -> None:
        """Close every link politely (before cancelling the signaller's tasks)."""
        for link in list(self._links.values()):
            await link.connection.aclose()

    async def serve(self, listener: SignalListener, join: Sequence[str] = (), *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: accept links, join the mesh through ``join``."""
        self.url = listener.url
        self.dht = KademliaNode(local=Contact(peer_id=self.peer_id, address=self.url),
                                rng=random.Random(self.rng.getrandbits(64)),
                                now=trio.current_time(), config=self.config.dht)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._apply(self.dht.start(trio.current_time()))
            nursery.start_soon(self._accept_loop, listener)
            nursery.start_soon(self._timer_loop)
            for url in join:
                await self._join(url)
            task_status.started()

    async def _join(self, url: str) -> None:
        """Dial one known signaller, then look ourselves up to fill the table."""
        ready = trio.Event()
        assert self._nursery is not None
        self._nursery.start_soon(self._dial_url, url, None, ready)
        with trio.move_on_after(self.config.hello_timeout):
            await ready.wait()
        if self.dht is None or len(self.dht.table) == 0:
            logger.warning("could not join the mesh through %s", url)
            return
        await self._lookup(id_bytes(self.dht.local_id), want_value=False)

    async def _accept_loop(self, listener: SignalListener) -> None:
        assert self._nursery is not None
        while True:
            try:
                connection = await listener.accept()
            except ConnectionClosed:
                return
            if len(self._links) >= self.config.max_links:
                await connection.aclose()
                continue
            self._nursery.start_soon(self._run_link, connection, None)

    async def _dial_url(self, url: str, expected: PeerId | None,
                        ready: trio.Event | None) -> None:
        queued = self._dialing.get(expected) if expected is not None else None
        try:
            async with self.transport.dial(url, self.identity, expected) as connection:
                await self._run_link(connection, ready, dialed_url=url)
        except (TaiiNetError, OSError, trio.TooSlowError) as exc:
            logger.info("dial %s failed: %r", url, exc)
            if expected is not None:
                self._dial_failed(expected)
        else:
            # A link that closed before its hello: its queued frames never went out.
            if expected is not None and queued is not None \
                    and self._dialing.get(expected) is queued:
                self._dial_failed(expected)
        finally:
            if ready is not None:
                ready.set()

    def _dial_failed(self, peer_id: PeerId) -> None:
        self._dialing.pop(peer_id, None)
        self._end_dial(peer_id)
        if self.dht is not None and peer_id not in self._signallers:
            self._apply(self.dht.handle_unreachable(peer_id, trio.current_time()))

    # -- links ----------------------------------------------------------------

    async def _run_link(self, connection: Connection, ready: trio.Event | None,
                        dialed_url: str | None = None) -> None:
        send, receive = trio.open_memory_channel[bytes](self.config.send_queue)
        link = _Link(connection=connection, peer_id=connection.remote_peer_id, send=send,
                     receive=receive, rate=self.config.peer_rate, burst=self.config.peer_burst,
                     byte_rate=self.config.peer_byte_rate,
                     byte_burst=self.config.peer_byte_burst, refilled=trio.current_time(),
                     dialed_url=dialed_url, address=connection.remote_address)
        link.tokens, link.byte_tokens = link.burst, link.byte_burst
        self._links[id(link)] = link
        try:
            with link.cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, link)
                    self._enqueue(link, encode_signal(Hello(role=Role.SIGNALLER,
                                                            listen_url=self.url)))
                    try:
                        await self._reader(link, ready)
                    except ProtocolViolation as exc:
                        self.links_dropped += 1
                        logger.warning("closing link to %s: %s", link.peer_id, exc)
                        await self._flush(link)  # a refusal queued for it goes out first
                    except (RemoteProtocolError, trio.TooSlowError) as exc:
                        self.links_dropped += 1
                        logger.warning("closing link to %s: %r", link.peer_id, exc)
                    except ConnectionClosed:
                        pass
                    finally:
                        nursery.cancel_scope.cancel()
        finally:
            self._forget(link)
            with trio.CancelScope(shield=True):
                await connection.aclose()

    def _forget(self, link: _Link) -> None:
        self._links.pop(id(link), None)
        if self._signallers.get(link.peer_id) is link:
            del self._signallers[link.peer_id]
        homed = self._homed.get(link.peer_id)
        if homed is not None and homed.link is link:
            # Gone without withdrawing: no longer a contact, and our DHT copy
            # goes too (the others lapse within the record's short lifetime).
            del self._homed[link.peer_id]
            if self.dht is not None:
                self.dht.drop_local(id_bytes(node_id(link.peer_id)), homed.record.seq)

    async def _flush(self, link: _Link) -> None:
        """Let the writer send what is queued (at most ``FLUSH_TIMEOUT``)."""
        link.send.close()
        with trio.move_on_after(FLUSH_TIMEOUT):
            await link.drained.wait()

    async def _writer(self, link: _Link) -> None:
        """Send what is queued; a ``Ping`` after ``keepalive_interval`` of sending nothing."""
        try:
            while True:
                frame = _PING
                with trio.move_on_after(self.config.keepalive_interval):
                    try:
                        frame = await link.receive.receive()
                    except trio.EndOfChannel:
                        link.drained.set()
                        return
                await link.connection.send(frame)
        except TaiiNetError as exc:
            logger.info("sending to %s failed: %r", link.peer_id, exc)
            link.cancel.cancel()

    def _enqueue(self, link: _Link, frame: bytes) -> None:
        try:
            link.send.send_nowait(frame)
        except trio.WouldBlock:
            logger.warning("send queue to %s full; closing the link", link.peer_id)
            link.cancel.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _throttle(self, link: _Link, size: int) -> None:
        """Token buckets: past its bursts a link is read at ``rate`` frames/s and
        ``byte_rate`` bytes/s.

        Every frame counts (``Ping``s and other layers' frames too).  Reading
        slower pushes back on the sender through the transport's bounded
        buffers, so a flooding peer slows itself down and costs the signaller
        nothing more than its queue; one that keeps the limit busy for
        ``flood_timeout`` without a break is dropped, so it does not hold that
        queue for long either.
        """
        now = trio.current_time()
        elapsed = now - link.refilled
        link.tokens = min(link.burst, link.tokens + elapsed * link.rate)
        link.byte_tokens = min(link.byte_burst, link.byte_tokens + elapsed * link.byte_rate)
        link.refilled = now
        wait = max((1.0 - link.tokens) / link.rate, (size - link.byte_tokens) / link.byte_rate)
        if wait <= 0:
            link.throttled_since = None
        elif link.throttled_since is None:
            link.throttled_since = now
        elif now - link.throttled_since > self.config.flood_timeout:
            raise ProtocolViolation(
                f"over its rate limit for {self.config.flood_timeout} s without a break")
        if wait > 0:
            await trio.sleep(wait)
            elapsed = trio.current_time() - link.refilled
            link.tokens = min(link.burst, link.tokens + elapsed * link.rate)
            link.byte_tokens = min(link.byte_burst, link.byte_tokens + elapsed * link.byte_rate)
            link.refilled = trio.current_time()
        link.tokens -= 1.0
        link.byte_tokens -= size

    async def _reader(self, link: _Link, ready: trio.Event | None) -> None:
        with trio.fail_after(self.config.hello_timeout):
            first = await self._next_message(link)
        if not isinstance(first, Hello):
            raise ProtocolViolation("the first message must be a Hello")
        link.role = first.role
        if first.role is Role.SIGNALLER:
            if not first.listen_url:
                raise ProtocolViolation("a signaller must say its URL")
            link.listen_url = first.listen_url
            if self._claim_known(link):
                self._promote(link)
            else:
                self._spawn(self._verify_claim, link, ready)
                ready = None  # set once the claim is settled
        elif len(self._homed) >= self.config.max_peers:
            raise ProtocolViolation(f"signaller full ({self.config.max_peers} peers)")
        if ready is not None:
            ready.set()
        while True:
            message = await self._next_message(link)
            if link.role is not Role.SIGNALLER:
                self._from_peer(link, message)
            elif link.proven:
                self._from_signaller(link, message)
            else:
                self._from_claimant(link, message)

    def _promote(self, link: _Link) -> None:
        """A proven signaller: signaller rate, routing table, queued frames."""
        link.proven = True
        link.rate, link.burst = self.config.signaller_rate, self.config.signaller_burst
        link.byte_rate = self.config.signaller_byte_rate
        link.byte_burst = self.config.signaller_byte_burst
        link.tokens, link.byte_tokens = link.burst, link.byte_burst
        self._signallers[link.peer_id] = link
        for frame in self._dialing.pop(link.peer_id, []):
            self._enqueue(link, frame)
        self._end_dial(link.peer_id)
        assert self.dht is not None
        self._apply(self.dht.add_contact(
            Contact(peer_id=link.peer_id, address=link.listen_url), trio.current_time()))
        held, link.held = link.held, []
        for message in held:
            self._from_signaller(link, message)

    def _from_claimant(self, link: _Link, message: SignalMessage) -> None:
        """A link whose SIGNALLER hello is being checked: DHT requests are answered
        (its id is proven by Noise; it only stays out of the routing table),
        ``register`` is refused, the rest waits for the proof (bounded)."""
        if isinstance(message, Dht):
            self._check_dht_record(message)
            assert self.dht is not None
            sender = Contact(peer_id=link.peer_id, address=link.listen_url)
            self._apply(self.dht.handle_message(sender, message.message, trio.current_time(),
                                                observe=False))
        elif isinstance(message, Register):
            self._refuse_register(link, message)
        elif len(link.held) >= MAX_HELD_WHILE_VERIFYING:
            raise SignallerClaimRejected("too many messages before its claim was proven")
        else:
            link.held.append(message)

    def _claim_known(self, link: _Link) -> bool:
        """Whether the link's claim is proven already: we dialed it at that very
        URL (Noise proved the id there), or proved the same (id, URL) before."""
        url = link.listen_url
        if link.dialed_url == url:
            self._remember_verified(link.peer_id, url)
            return True
        return self._verified.get(link.peer_id) == url

    async def _verify_claim(self, link: _Link, ready: trio.Event | None) -> None:
        """Dial the claimed URL expecting the link's peer id; promote or close the link."""
        try:
            event = self._start_verification(link.peer_id, link.listen_url)
            if event is not None:
                with trio.move_on_after(self.config.hello_timeout):
                    await event.wait()
            if link.cancel.cancel_called or id(link) not in self._links:
                return  # the link ended meanwhile
            if self._verified.get(link.peer_id) == link.listen_url:
                try:
                    self._promote(link)
                except ProtocolViolation as exc:
                    logger.warning("closing link to %s: %s", link.peer_id, exc)
                    link.cancel.cancel()
                return
            why = ("too many signaller claims being verified" if event is None
                   else f"{link.listen_url} did not prove peer id {link.peer_id}")
            logger.warning("closing link to %s: %s", link.peer_id,
                           SignallerClaimRejected(why))
            link.cancel.cancel()
        finally:
            if ready is not None:
                ready.set()

    def _refuse_register(self, link: _Link, message: Register) -> None:
        """A link that said hello as a signaller may not register a peer record."""
        reason = "a link that says hello as a SIGNALLER cannot register; say PEER"
        self._enqueue(link, encode_signal(Registered(
            request_id=message.request_id, ok=False, reason=reason)))
        raise SignallerClaimRejected(reason)

    def _start_verification(self, peer_id: PeerId, url: str) -> trio.Event | None:
        pending = self._verifying.get(peer_id)
        if pending is not None:
            return pending[1] if pending[0] == url else None
        if len(self._verifying) >= self.config.max_verifications or self._nursery is None:
            return None
        event = trio.Event()
        self._verifying[peer_id] = (url, event)
        self._nursery.start_soon(self._verify_dial, peer_id, url, event)
        return event

    async def _verify_dial(self, peer_id: PeerId, url: str, event: trio.Event) -> None:
        """Dial ``url`` expecting ``peer_id``; the link's hello settles the claim.

        The link stays up as an ordinary signaller link when it proves the claim.
        """
        try:
            await self._dial_url(url, peer_id, event)
        finally:
            self._verifying.pop(peer_id, None)
            event.set()

    def _remember_verified(self, peer_id: PeerId, url: str) -> None:
        self._verified.pop(peer_id, None)
        self._verified[peer_id] = url
        while len(self._verified) > self.config.max_verified:
            del self._verified[next(iter(self._verified))]
        pending = self._verifying.get(peer_id)
        if pending is not None and pending[0] == url:
            pending[1].set()

    async def _next_message(self, link: _Link) -> SignalMessage:
        """The next signal message; ``Ping``s are answered, other layers' frames skipped."""
        while True:
            frame = await link.connection.receive()
            await self._throttle(link, len(frame))
            nonce = ping_nonce(frame)
            if nonce is not None:
                self._enqueue(link, encode_pong(nonce))
                continue
            message = decode_signal(frame)
            if message is not None:
                return message

    # -- peers ----------------------------------------------------------------

    def _from_peer(self, link: _Link, message: SignalMessage) -> None:
        if isinstance(message, Register):
            self._register(link, message)
        elif isinstance(message, GetContacts):
            self._spawn(self._serve_contacts, link, message)
        elif isinstance(message, Relay):
            self._relay_from_peer(link, message)
        else:
            raise ProtocolViolation(f"a peer may not send {type(message).__name__}")

    def _register(self, link: _Link, message: Register) -> None:
        try:
            record = open_peer_record(message.record, _unix_ms())
        except RecordRejected as exc:
            self._enqueue(link, encode_signal(Registered(
                request_id=message.request_id, ok=False, reason=str(exc))))
            raise ProtocolViolation(f"bad record: {exc}") from None
        if record.peer_id != link.peer_id:
            raise ProtocolViolation("a peer may register only its own record")
        if record.signaller_peer_id != self.peer_id:
            raise ProtocolViolation("the record names another signaller as home")
        if record.signaller_url != self.url:
            # Other signallers dial this URL to reach the peer: it must be the
            # one this home announced in its Hello, so relays can find it.
            self._enqueue(link, encode_signal(Registered(
                request_id=message.request_id, ok=False,
                reason=f"signaller_url must be {self.url!r}, as in the home's hello")))
            raise ProtocolViolation(f"record names signaller_url {record.signaller_url!r}")
        current = self._homed.get(link.peer_id)
        if current is not None and record.seq <= current.record.seq:
            self._enqueue(link, encode_signal(Registered(
                request_id=message.request_id, ok=False, reason="sequence number not higher")))
            return
        if record.withdrawn:
            # A clean exit: no longer a contact; the tombstone replaces (higher
            # seq) the DHT copies of the record.
            if current is not None:
                del self._homed[link.peer_id]
        elif current is None and len(self._homed) >= self.config.max_peers:
            raise ProtocolViolation("signaller full")
        else:
            self._homed[link.peer_id] = _Homed(record=record, raw=message.record, link=link)
        assert self.dht is not None
        ttl = (record.expires_unix_ms - _unix_ms()) / 1000
        dht_record = DhtRecord(key=id_bytes(node_id(record.peer_id)), value=message.record,
                               seq=record.seq, ttl=ttl)
        ack = encode_signal(Registered(request_id=message.request_id, ok=True, reason=""))
        try:
            lookup_id, actions = self.dht.put(dht_record, trio.current_time())
        except SignalUsageError as exc:
            logger.info("could not publish %s now: %s", record.peer_id, exc)
            self._enqueue(link, ack)
            return
        if any(isinstance(a, LookupFinished) and a.lookup_id == lookup_id for a in actions):
            self._apply(actions)  # nothing to wait for (no other signaller known)
            self._enqueue(link, ack)
            return
        self._spawn(self._publish, link, ack, lookup_id, actions)

    async def _publish(self, link: _Link, ack: bytes, lookup_id: int,
                       actions: list[DhtAction]) -> None:
        """Carry out the put, then acknowledge: once the peer hears
        ``Registered`` the closest signallers hold it (or could not be reached)."""
        await self._await_lookup(lookup_id, actions)
        self._enqueue(link, ack)

    def _relay_from_peer(self, link: _Link, message: Relay) -> None:
        session = self._check_session(message)
        if session.from_peer != link.peer_id:
            raise ProtocolViolation("a peer may relay only its own session messages")
        target = self._homed.get(message.target_peer)
        if target is not None:
            self._enqueue(target.link, encode_signal(
                Relay(target_peer=message.target_peer, session=message.session, hops_left=0)))
            return
        if (self._inflight_relays >= self.config.max_inflight_relays
                or link.inflight_relays >= self.config.max_inflight_relays_per_link):
            self._relay_failed(link, message, session.session_id, "signaller busy")
            return
        if not self._address_budget.start_lookup(link.address, trio.current_time()):
            self._relay_failed(link, message, session.session_id, "signaller busy")
            return
        self._inflight_relays += 1  # counted now: a burst must not pass the bounds
        link.inflight_relays += 1
        self._spawn(self._forward, link, message, session.session_id)

    def _check_session(self, message: Relay) -> SessionLike:
        try:
            session = open_session(message.session)
        except RecordRejected as exc:
            raise ProtocolViolation(f"bad session message: {exc}") from None
        if session.to_peer != message.target_peer:
            raise ProtocolViolation("relay target differs from the signed target")
        return SessionLike(from_peer=session.from_peer, session_id=session.session_id)

    def _relay_failed(self, link: _Link, message: Relay, session_id: bytes,
                      reason: str) -> None:
        self._enqueue(link, encode_signal(RelayFailed(
            target_peer=message.target_peer, session_id=session_id, reason=reason,
            origin_peer=link.peer_id)))

    async def _forward(self, link: _Link, message: Relay, session_id: bytes) -> None:
        try:
            record = await self._find_record(message.target_peer)
            if record is None or record.signaller_peer_id == self.peer_id:
                self._relay_failed(link, message, session_id, "target peer not found")
                return
            frame = encode_signal(Relay(target_peer=message.target_peer,
                                        session=message.session, hops_left=1))
            if await self._send_to_home(record, frame):
                return
            # The home is gone: the record may be a copy from before the peer re-homed.
            newer = await self._find_record(message.target_peer, min_seq=record.seq + 1)
            if (newer is not None and newer.signaller_peer_id != self.peer_id
                    and await self._send_to_home(newer, frame)):
                return
            self._relay_failed(link, message, session_id, "target peer's home unreachable")
        finally:
            self._inflight_relays -= 1
            link.inflight_relays -= 1
            self._address_budget.finish_lookup(link.address)

    async def _send_to_home(self, record: PeerRecord, frame: bytes) -> bool:
        """Send ``frame`` to the record's home; False if dialing it failed."""
        home = record.signaller_peer_id
        ended = None if home in self._signallers else self._dial_ended.setdefault(
            home, trio.Event())
        self._send_to_signaller(Contact(peer_id=home, address=record.signaller_url), frame)
        if ended is not None:
            with trio.move_on_after(self.config.hello_timeout):
                await ended.wait()
            # Still dialing after the deadline: the frame stays queued for that dial.
            return home in self._signallers or home in self._dialing
        return True

    def _end_dial(self, peer_id: str) -> None:
        ended = self._dial_ended.pop(peer_id, None)
        if ended is not None:
            ended.set()

    async def _find_record(self, peer_id: PeerId, *, min_seq: int = 0) -> PeerRecord | None:
        """The target's verified record: our copy, else a FIND_VALUE (of at least
        ``min_seq``)."""
        assert self.dht is not None
        key = id_bytes(node_id(peer_id))
        local = self.dht.get_local(key, trio.current_time())
        raw = local.value if local is not None and local.seq >= min_seq else None
        if raw is None:
            result = await self._lookup(key, want_value=True, min_seq=min_seq)
            if result is None or result.record is None:
                return None
            raw = result.record.value
        try:
            record = open_peer_record(raw, _unix_ms())
        except RecordRejected:
            return None
        return record if record.peer_id == peer_id and not record.withdrawn else None

    async def _serve_contacts(self, link: _Link, message: GetContacts) -> None:
        count = min(message.count, MAX_CONTACTS)
        service = message.service
        records = self._local_sample(count, exclude=link.peer_id, service=service)
        fanout = self.config.service_fanout if service else self.config.contacts_fanout
        remote: list[bytes] = []
        if (self.dht is not None and fanout > 0 and (not service or len(records) < count)
                and self._address_budget.take(link.address, trio.current_time())):
            # (Past its address's budget a request is answered from local peers only.)
            others = [c for c in self.dht.table.contacts() if c.peer_id != link.peer_id]
            chosen = self.rng.sample(others, min(fanout, len(others)))
            replies: list[Contacts] = []
            waits = []
            for contact in chosen:
                request_id = self._request_id()
                event = trio.Event()
                self._contact_waits[request_id] = (event, replies)
                waits.append((request_id, event))
                self._send_to_signaller(contact, encode_signal(GetContacts(
                    request_id=request_id, count=count, local_only=True, service=service)))
            with trio.move_on_after(self.config.contacts_timeout):
                for _, event in waits:
                    await event.wait()
            for request_id, _ in waits:
                self._contact_waits.pop(request_id, None)
            for reply in replies:
                for raw in reply.records:
                    try:
                        record = open_peer_record(raw, _unix_ms())
                    except RecordRejected:
                        continue
                    if (record.peer_id != link.peer_id and not record.withdrawn
                            and (not service or service in record.services)):
                        remote.append(raw)
        if service:  # scarce: ours (linked first) before the mesh's
            self.rng.shuffle(remote)
            unique = list(dict.fromkeys(records + remote))
        else:
            unique = list(dict.fromkeys(records + remote))
            self.rng.shuffle(unique)
        self._enqueue(link, encode_signal(Contacts(request_id=message.request_id,
                                                   records=tuple(unique[:count]))))

    def _local_sample(self, count: int, exclude: str, service: str = "") -> list[bytes]:
        """Up to ``count`` records of live peers (not ``exclude``), linked ones first.

        With ``service``, only records naming it; the held copies are then
        drawn from ``_service_keys`` (records naming some service), not from
        every held key, so a rare service costs no scan of the whole store.

        First the peers linked to this signaller right now (a peer whose link
        dropped left ``_homed`` at once).  Then, to fill up, records held as a
        DHT node (keys are hashes, so a uniform sample of the mesh) whose
        current version arrived within ``contact_freshness``: their peers were
        renewing a moment ago.  Withdrawn and expired records never.
        """
        now_ms = _unix_ms()
        peers = [h.raw for p, h in self._homed.items()
                 if p != exclude and h.record.expires_unix_ms > now_ms
                 and (not service or service in h.record.services)]
        chosen = self.rng.sample(peers, min(count, len(peers)))
        if len(chosen) >= count or self.dht is None:
            return chosen
        now = trio.current_time()
        skip = {id_bytes(node_id(p)) for p in (*self._homed, exclude) if p}
        if service:
            held = [k for k, names in self._service_keys.items()
                    if service in names and k not in skip]
        else:
            held = [k for k in self.dht.records if k not in skip]
        for key in self.rng.sample(held, min(2 * count, len(held))):
            age = self.dht.stored_since(key, now)
            record = self.dht.get_local(key, now)
            if record is None:
                self._service_keys.pop(key, None)
                continue
            if age is None or age > self.config.contact_freshness:
                continue
            try:
                opened = open_peer_record(record.value, now_ms)
            except RecordRejected:
                continue
            if not opened.withdrawn and (not service or service in opened.services):
                chosen.append(record.value)
            if len(chosen) >= count:
                break
        return chosen

    # -- signallers -----------------------------------------------------------

    def _from_signaller(self, link: _Link, message: SignalMessage) -> None:
        assert self.dht is not None
        if isinstance(message, Dht):
            self._check_dht_record(message)
            sender = Contact(peer_id=link.peer_id, address=link.listen_url)
            self._apply(self.dht.handle_message(sender, message.message, trio.current_time()))
        elif isinstance(message, Relay):
            session = self._check_session(message)
            if message.hops_left < 1:
                raise ProtocolViolation("relay between signallers without hops left")
            target = self._homed.get(message.target_peer)
            if target is None:
                self._enqueue(link, encode_signal(RelayFailed(
                    target_peer=message.target_peer, session_id=session.session_id,
                    reason="target peer is not homed here", origin_peer=session.from_peer)))
                return
            self._enqueue(target.link, encode_signal(
                Relay(target_peer=message.target_peer, session=message.session, hops_left=0)))
        elif isinstance(message, RelayFailed):
            origin = self._homed.get(message.origin_peer)
            if origin is not None:
                self._enqueue(origin.link, encode_signal(message))
        elif isinstance(message, GetContacts):
            if not message.local_only:
                raise ProtocolViolation("signallers ask each other only for local contacts")
            self._enqueue(link, encode_signal(Contacts(
                request_id=message.request_id, records=tuple(self._local_sample(
                    message.count, exclude="", service=message.service)))))
        elif isinstance(message, Contacts):
            waiter = self._contact_waits.pop(message.request_id, None)
            if waiter is not None:
                waiter[1].append(message)
                waiter[0].set()
        elif isinstance(message, Register):
            self._refuse_register(link, message)
        else:
            raise ProtocolViolation(f"a signaller may not send {type(message).__name__}")

    def _check_dht_record(self, message: Dht) -> None:
        """Records in STORE and VALUE must be valid signed records for their key."""
        inner = message.message
        if not isinstance(inner, Store | ValueFound):
            return
        try:
            record = open_peer_record(inner.record.value, _unix_ms())
        except RecordRejected as exc:
            raise ProtocolViolation(f"DHT record rejected: {exc}") from None
        if id_bytes(node_id(record.peer_id)) != inner.record.key or record.seq != inner.record.seq:
            raise ProtocolViolation("DHT record stored under the wrong key or sequence")
        if isinstance(inner, Store):
            self._index_services(inner.record.key, record)

    def _index_services(self, key: bytes, record: PeerRecord) -> None:
        """Remember (bounded) which held keys name services, for ``GetContacts{service}``.

        Indexed on arrival, before the DHT core decides to keep the record
        (it may hold a newer version): a query reads the held record and checks
        its services, and drops a key under which nothing is held any more.
        """
        if record.services:
            self._service_keys.pop(key, None)
            self._service_keys[key] = record.services
            while len(self._service_keys) > self.config.max_service_records:
                del self._service_keys[next(iter(self._service_keys))]

    def _send_to_signaller(self, contact: Contact, frame: bytes) -> None:
        link = self._signallers.get(contact.peer_id)
        if link is not None:
            self._enqueue(link, frame)
            return
        pending = self._dialing.get(contact.peer_id)
        if pending is not None:
            if len(pending) < self.config.max_pending_per_dial:
                pending.append(frame)
            return
        if len(self._dialing) >= self.config.max_concurrent_dials or self._nursery is None:
            self._dial_failed(contact.peer_id)
            return
        self._dialing[contact.peer_id] = [frame]
        self._nursery.start_soon(self._dial_url, contact.address, contact.peer_id, None)

    # -- DHT driver -----------------------------------------------------------

    def _apply(self, actions: list[DhtAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                contact = Contact(peer_id=action.peer, address=action.address or "")
                self._send_to_signaller(contact, encode_signal(
                    Dht(message=action.message, sender_address=self.url)))
            elif isinstance(action, SetTimer):
                self._timer_seq += 1
                heapq.heappush(self._timers, (action.at, self._timer_seq, action.timer))
            else:
                waiter = self._lookups.pop(action.lookup_id, None)
                if waiter is not None:
                    waiter[1].append(action)
                    waiter[0].set()
        self._wake.set()

    async def _lookup(self, target: bytes, *, want_value: bool,
                      min_seq: int = 0) -> LookupFinished | None:
        assert self.dht is not None
        try:
            lookup_id, actions = self.dht.start_lookup(target, trio.current_time(),
                                                       want_value=want_value, min_seq=min_seq)
        except SignalUsageError:
            return None
        return await self._await_lookup(lookup_id, actions)

    async def _await_lookup(self, lookup_id: int,
                            actions: list[DhtAction]) -> LookupFinished | None:
        """Carry out a lookup's first actions and wait (bounded) for its end."""
        event = trio.Event()
        result: list[LookupFinished] = []
        self._lookups[lookup_id] = (event, result)
        self._apply(actions)
        with trio.move_on_after(self.config.lookup_timeout):
            await event.wait()
        self._lookups.pop(lookup_id, None)
        return result[0] if result else None

    async def _timer_loop(self) -> None:
        assert self.dht is not None
        timers = self._timers
        while True:
            self._wake = trio.Event()
            with trio.move_on_at(timers[0][0] if timers else math.inf):
                await self._wake.wait()
            now = trio.current_time()
            while timers and timers[0][0] <= now:
                self._apply(self.dht.handle_timer(heapq.heappop(timers)[2], now))

    # -- helpers --------------------------------------------------------------

    def _request_id(self) -> int:
        self._next_request = (self._next_request + 1) % (1 << 64)
        return self._next_request

    def _spawn(self, fn: Callable[..., Awaitable[object]], link: _Link, *args: object) -> None:
        """Run a per-request task for ``link`` in the signaller's nursery.

        The task's failure on the peer's input ends that link, never the
        signaller: ``_guarded`` is the per-request boundary.
        """
        assert self._nursery is not None
        self._nursery.start_soon(self._guarded, fn, link, *args)

    async def _guarded(self, fn: Callable[..., Awaitable[object]], link: _Link,
                       *args: object) -> None:
        try:
            await fn(link, *args)
        except RemoteProtocolError as exc:
            self.links_dropped += 1
            logger.warning("closing link to %s: %s failed: %r", link.peer_id,
                           getattr(fn, "__name__", fn), exc)
            link.cancel.cancel()
        except ConnectionClosed:
            link.cancel.cancel()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLike:
    from_peer: PeerId
    session_id: bytes


def _unix_ms() -> int:
    return math.floor(time.time() * 1000)
