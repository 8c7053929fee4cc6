"""The peer side of signalling: one home signaller at a time, failover, offers.

A node uses :func:`open_signal_client` and then only:

* ``await client.send_offer(peer_id, sdp) -> str``: relay a signed offer to
  ``peer_id`` through the mesh and return its answer's SDP (raises
  ``PeerUnreachable`` on refusal, failure or timeout);
* ``async for offer in client.incoming_offers()``: each
  :class:`IncomingOffer` has ``from_peer`` and ``sdp``; call
  ``await offer.answer(sdp)`` or ``await offer.reject(reason)``;
* ``await client.contacts(count) -> list[PeerRecord]``: a random sample of
  live peers across the mesh;
* ``client.home``: peer id of the current home (None while re-homing),
  ``await client.wait_registered()`` and ``await client.wait_rehomed(old_home)``.

The client keeps one link to a home.  When it dies the client tries the
other signaller URLs in turn with exponential backoff and jitter, and
re-registers a record with a higher sequence number on the new home.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from taiinet.errors import ConnectionClosed, RemoteProtocolError, TaiiNetError
from taiinet.signal.codec import (
    MAX_CONTACTS,
    Contacts,
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
from taiinet.signal.errors import (
    NoSignallerAvailable,
    PeerUnreachable,
    RecordRejected,
    SignalUsageError,
)
from taiinet.signal.records import (
    MAX_RECORD_LIFETIME_MS,
    RECORD_LIFETIME,
    RECORD_RENEWALS,
    SESSION_ID_BYTES,
    PeerRecord,
    SessionDescription,
    SessionKind,
    open_peer_record,
    open_session,
    seal_peer_record,
    seal_session,
)
from taiinet.signal.transport import SignalTransport, default_transport
from taiinet.transport.connection import Connection
from taiinet.transport.errors import CertificateUntrusted
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import encode_pong, ping_nonce
from taiinet.wire.peer_id import PeerId

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalClientConfig:
    record_lifetime: float = RECORD_LIFETIME
    """Seconds a registered record lives; renewed ``RECORD_RENEWALS`` times per life
    (a vanished peer's record is gone from the mesh this long after its last renewal)."""
    withdraw_timeout: float = 2.0
    """Seconds a clean exit waits for the home to confirm the withdrawal."""
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    offer_timeout: float = 20.0
    request_timeout: float = 10.0
    incoming_queue: int = 32
    max_pending_sessions: int = 64
    #: Services named in our peer record (``("seeder",)`` on a seeder).
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        longest = MAX_RECORD_LIFETIME_MS / 1000
        if not 0 < self.record_lifetime <= longest:
            raise SignalUsageError(f"record_lifetime must be in (0, {longest:g}] s: homes "
                                   "refuse records that expire later")


@dataclass(slots=True)
class _Session:
    event: trio.Event = field(default_factory=trio.Event)
    answer: SessionDescription | None = None
    failure: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingOffer:
    """An offer from ``from_peer``; answer it (or reject it) once."""

    from_peer: PeerId
    sdp: str
    session_id: bytes
    client: SignalClient

    async def answer(self, sdp: str) -> None:
        await self.client._reply(self, SessionKind.ANSWER, sdp)

    async def reject(self, reason: str = "") -> None:
        await self.client._reply(self, SessionKind.REJECT, reason)


class SignalClient:
    """See the module docstring.  Make one with :func:`open_signal_client`."""

    def __init__(self, identity: Identity, signallers: Sequence[str],
                 transport: SignalTransport, config: SignalClientConfig,
                 rng: random.Random) -> None:
        if not signallers:
            raise SignalUsageError("give at least one signaller URL")
        self.identity = identity
        self.signallers = list(signallers)
        self.transport = transport
        self.config = config
        self.rng = rng
        self.home: str | None = None
        self.home_url: str | None = None
        #: Why the last signaller could not be reached or kept (``"<url>: <reason>"``).
        self.last_failure = ""
        #: Set once every signaller URL failed its TLS certificate check in a row:
        #: a configuration error (a missing CA) that retrying does not fix, so
        #: callers can give up at once instead of waiting for a timeout.
        self.untrusted = trio.Event()
        self._untrusted_urls: set[str] = set()
        self._connection: Connection | None = None
        self._link: Connection | None = None
        self._registered = trio.Event()
        self._seq = 0
        self._sessions: dict[bytes, _Session] = {}
        self._requests: dict[int, tuple[trio.Event, list[SignalMessage]]] = {}
        self._next_request = rng.getrandbits(32)
        self._incoming_send, self._incoming_receive = trio.open_memory_channel[IncomingOffer](
            config.incoming_queue)
        self._send_lock = trio.Lock()
        self._closing = False
        self._home_changed = trio.Event()

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    async def wait_registered(self) -> None:
        """Wait until a home accepted our record."""
        await self._registered.wait()

    async def wait_rehomed(self, previous_home: str) -> str:
        """Wait until registered on a home other than ``previous_home``; return its id."""
        while True:
            await self._registered.wait()
            if self.home is not None and self.home != previous_home:
                return self.home
            await self._home_changed.wait()

    async def send_offer(self, peer_id: str, sdp: str) -> str:
        """Relay an offer to ``peer_id``; return the SDP of its answer.

        ``SignalUsageError`` if ``peer_id`` is not a valid peer id: nothing is sent
        (a signaller drops a link that names an invalid peer).
        """
        try:
            target = PeerId.parse(peer_id)
        except InvalidPeerId as exc:
            raise SignalUsageError(f"cannot offer to {peer_id[:60]!r}: {exc}") from None
        if len(self._sessions) >= self.config.max_pending_sessions:
            raise SignalUsageError("too many offers in flight")
        session_id = self.rng.getrandbits(8 * SESSION_ID_BYTES).to_bytes(SESSION_ID_BYTES, "big")
        session = _Session()
        self._sessions[session_id] = session
        try:
            with trio.move_on_after(self.config.offer_timeout):
                await self._send_session(target, session_id, SessionKind.OFFER, sdp)
                await session.event.wait()
        finally:
            self._sessions.pop(session_id, None)
        if session.answer is None:
            raise PeerUnreachable(f"no answer from {peer_id}: {session.failure or 'timed out'}")
        if session.answer.kind is SessionKind.REJECT:
            raise PeerUnreachable(f"{peer_id} refused the offer: {session.answer.sdp}")
        return session.answer.sdp

    def incoming_offers(self) -> AsyncIterator[IncomingOffer]:
        """Offers from other peers, in arrival order (bounded; extras are refused)."""
        return self._incoming_receive.__aiter__()

    async def contacts(self, count: int = 8) -> list[PeerRecord]:
        """A random sample of live peers (their verified records), not us."""
        request_id = self._new_request_id()
        reply = await self._request(request_id, GetContacts(
            request_id=request_id, count=min(count, MAX_CONTACTS), local_only=False))
        records: list[PeerRecord] = []
        if isinstance(reply, Contacts):
            for raw in reply.records:
                try:
                    record = open_peer_record(raw, _unix_ms())
                except RecordRejected:
                    continue
                if record.peer_id != self.peer_id and not record.withdrawn:
                    records.append(record)
        return records

    # -- internals ------------------------------------------------------------

    async def _reply(self, offer: IncomingOffer, kind: SessionKind, sdp: str) -> None:
        await self._send_session(offer.from_peer, offer.session_id, kind, sdp)

    async def _send_session(self, peer_id: PeerId, session_id: bytes, kind: SessionKind,
                            sdp: str) -> None:
        envelope = seal_session(self.identity, SessionDescription(
            from_peer=self.peer_id, to_peer=peer_id, session_id=session_id, kind=kind,
            sdp=sdp, created_unix_ms=_unix_ms()))
        await self._send(encode_signal(Relay(target_peer=peer_id, session=envelope,
                                             hops_left=0)))

    async def _send(self, frame: bytes) -> None:
        while True:
            await self._registered.wait()
            connection = self._connection
            if connection is None:
                await trio.sleep(0)
                continue
            try:
                async with self._send_lock:
                    await connection.send(frame)
                return
            except ConnectionClosed:
                await trio.sleep(self.config.backoff_initial)

    def _new_request_id(self) -> int:
        self._next_request = (self._next_request + 1) % (1 << 64)
        return self._next_request

    async def _request(self, request_id: int, message: SignalMessage) -> SignalMessage | None:
        event = trio.Event()
        replies: list[SignalMessage] = []
        self._requests[request_id] = (event, replies)
        try:
            with trio.move_on_after(self.config.request_timeout):
                await self._send(encode_signal(message))
                await event.wait()
        finally:
            self._requests.pop(request_id, None)
        return replies[0] if replies else None

    async def _run(self) -> None:
        """Keep a home: connect, register, read; on failure move to the next URL."""
        failures = 0
        order = list(self.signallers)  # in the given order: callers shuffle to spread load
        index = 0
        while True:
            url = order[index % len(order)]
            index += 1
            try:
                async with self.transport.dial(url, self.identity) as connection:
                    failures = 0
                    self._untrusted_urls.clear()
                    await self._serve_home(url, connection)
            except (TaiiNetError, OSError, trio.TooSlowError) as exc:
                logger.info("signaller %s failed: %r", url, exc)
                reason = str(exc)
                self.last_failure = reason if url in reason else f"{url}: {reason}"
                self._note_untrusted(url, exc)
            finally:
                self._registered = trio.Event() if self._registered.is_set() else self._registered
                self._connection = None
                self.home = self.home_url = None
                for session in self._sessions.values():
                    if not session.event.is_set():
                        session.failure = "home signaller lost"
            if self._closing:
                return
            failures += 1
            if (failures >= len(order) and not self.untrusted.is_set()
                    and all(s.event.is_set() for s in self._sessions.values())):
                logger.warning("no signaller reachable (last: %s); retrying", self.last_failure)
            delay = min(self.config.backoff_max,
                        self.config.backoff_initial * 2 ** min(failures, 16))
            await trio.sleep(delay * self.rng.uniform(0.5, 1.5))

    def _note_untrusted(self, url: str, error: BaseException) -> None:
        if isinstance(error, CertificateUntrusted):
            self._untrusted_urls.add(url)
            if self._untrusted_urls >= set(self.signallers):
                self.untrusted.set()
        else:
            self._untrusted_urls.discard(url)

    async def aclose(self) -> None:
        """Withdraw our record, then close the link to the home politely (the client
        stops re-homing only when its ``async with`` ends)."""
        link = self._link
        if link is None:
            return
        await self._withdraw(link)
        await link.aclose()

    async def _withdraw(self, connection: Connection) -> None:
        """Register a tombstone of our record (higher seq, ``withdrawn``): the home
        forgets us at once and replaces our record's DHT copies with it.

        Bounded by ``withdraw_timeout``; a home that does not answer only delays
        the exit.
        """
        if self._connection is not connection:
            return
        self._seq = max(self._seq + 1, _unix_ms())
        record = PeerRecord(
            peer_id=self.peer_id, signaller_peer_id=connection.remote_peer_id,
            signaller_url=self.home_url or "", addresses=(), seq=self._seq,
            expires_unix_ms=_unix_ms() + math.floor(self.config.record_lifetime * 1000),
            withdrawn=True)
        request_id = self._new_request_id()
        event = trio.Event()
        self._requests[request_id] = (event, [])
        with trio.move_on_after(self.config.withdraw_timeout):
            try:
                async with self._send_lock:
                    await connection.send(encode_signal(Register(
                        request_id=request_id, record=seal_peer_record(self.identity, record))))
                await event.wait()
            except TaiiNetError as exc:
                logger.info("withdrawal failed: %r", exc)
        self._requests.pop(request_id, None)

    async def _serve_home(self, url: str, connection: Connection) -> None:
        self._link = connection
        await connection.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        with trio.fail_after(self.config.request_timeout):
            hello = await self._next(connection)
        if not isinstance(hello, Hello) or hello.role is not Role.SIGNALLER:
            raise RemoteProtocolError("the home did not greet as a signaller")
        # The record names the URL the home announces (what other signallers
        # dial), which may differ from the one we dialed (e.g. localhost).
        home_url = hello.listen_url or url
        self.home, self.home_url = connection.remote_peer_id, home_url
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._renew_guarded, connection, home_url)
            try:
                while True:
                    self._dispatch(await self._next(connection), connection)
            except (TaiiNetError, trio.TooSlowError) as exc:
                logger.info("link to home %s ended: %r", url, exc)
            finally:
                nursery.cancel_scope.cancel()


    async def _renew_guarded(self, connection: Connection, url: str) -> None:
        try:
            await self._renew(connection, url)
        except (TaiiNetError, trio.TooSlowError) as exc:
            logger.info("registration at %s failed: %r", url, exc)
            await connection.aclose()

    async def _renew(self, connection: Connection, url: str) -> None:
        while True:
            self._seq = max(self._seq + 1, _unix_ms())
            record = PeerRecord(
                peer_id=self.peer_id, signaller_peer_id=connection.remote_peer_id,
                signaller_url=url, addresses=(), seq=self._seq,
                expires_unix_ms=_unix_ms() + math.floor(self.config.record_lifetime * 1000),
                services=self.config.services)
            request_id = self._new_request_id()
            event = trio.Event()
            replies: list[SignalMessage] = []
            self._requests[request_id] = (event, replies)
            async with self._send_lock:
                await connection.send(encode_signal(Register(
                    request_id=request_id, record=seal_peer_record(self.identity, record))))
            with trio.fail_after(self.config.request_timeout):
                await event.wait()
            reply = replies[0]
            if not isinstance(reply, Registered) or not reply.ok:
                reason = reply.reason if isinstance(reply, Registered) else "?"
                raise NoSignallerAvailable(f"{url} refused our record: {reason}")
            self._connection = connection
            self._registered.set()
            self._home_changed.set()
            self._home_changed = trio.Event()
            await trio.sleep(self.config.record_lifetime / RECORD_RENEWALS)

    async def _next(self, connection: Connection) -> SignalMessage:
        """The next signal message; the home's keep-alive ``Ping``s are answered."""
        while True:
            frame = await connection.receive()
            nonce = ping_nonce(frame)
            if nonce is not None:
                async with self._send_lock:
                    await connection.send(encode_pong(nonce))
                continue
            message = decode_signal(frame)
            if message is not None:
                return message

    def _dispatch(self, message: SignalMessage, connection: Connection) -> None:
        if isinstance(message, Registered | Contacts):
            waiter = self._requests.pop(message.request_id, None)
            if waiter is not None:
                waiter[1].append(message)
                waiter[0].set()
        elif isinstance(message, Relay):
            self._on_relay(message)
        elif isinstance(message, RelayFailed):
            session = self._sessions.get(message.session_id)
            if session is not None and message.target_peer:
                session.failure = message.reason
                session.event.set()
        else:
            raise RemoteProtocolError(f"home sent an unexpected {type(message).__name__}")

    def _on_relay(self, message: Relay) -> None:
        try:
            session = open_session(message.session)
        except RecordRejected as exc:
            logger.warning("dropping a badly signed session message: %s", exc)
            return
        if session.to_peer != self.peer_id:
            return
        if session.kind is SessionKind.OFFER:
            offer = IncomingOffer(from_peer=session.from_peer, sdp=session.sdp,
                                  session_id=session.session_id, client=self)
            try:
                self._incoming_send.send_nowait(offer)
            except trio.WouldBlock:
                logger.warning("incoming offer queue full; dropping offer from %s",
                               session.from_peer)
            return
        pending = self._sessions.get(session.session_id)
        if pending is None or session.kind is SessionKind.ICE:
            return
        if session.kind in (SessionKind.ANSWER, SessionKind.REJECT):
            pending.answer = session
            pending.event.set()


@asynccontextmanager
async def open_signal_client(identity: Identity, signallers: Sequence[str], *,
                             transport: SignalTransport | None = None,
                             config: SignalClientConfig | None = None,
                             rng: random.Random | None = None,
                             ) -> AsyncIterator[SignalClient]:
    """Connect to one of ``signallers`` (failing over among them) as ``identity``.

    ``transport`` defaults to secure WebSockets.
    """
    if transport is None:
        transport = default_transport()
    client = SignalClient(identity, signallers, transport, config or SignalClientConfig(),
                          rng or random.Random())
    # The client's task is shielded from the caller's cancellation: leaving by
    # cancellation is a clean exit too, and withdrawing needs the reader alive.
    run_scope = trio.CancelScope(shield=True)

    async def run() -> None:
        with run_scope:
            await client._run()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        try:
            yield client
        finally:
            # Withdraw and close the link before cancelling: a WebSocket's close
            # handshake needs its reader task alive too.
            client._closing = True
            try:
                with trio.CancelScope(shield=True) as closing:
                    closing.deadline = trio.current_time() + 2 * client.config.withdraw_timeout
                    await client.aclose()
            finally:
                run_scope.cancel()
                nursery.cancel_scope.cancel()


def _unix_ms() -> int:
    return math.floor(time.time() * 1000)
