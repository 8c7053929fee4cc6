"""The peer side of signalling: a trio driver of :class:`SignalClientCore`.

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

Every decision (hello, registration and renewal, failover with backoff,
sessions, timeouts) is the core's (:mod:`taiinet.signal.client_core`); this
module dials, reads and writes the one link to the home, answers keep-alive
``Ping``s, runs the core's timers and turns its results into awaitables.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer
from taiinet.errors import TaiiNetError
from taiinet.signal.client_core import (
    ClientAction,
    ClientTimer,
    HomeChanged,
    OfferReceived,
    OfferSettled,
    RequestSettled,
    SignalClientConfig,
    SignalClientCore,
)
from taiinet.signal.codec import decode_signal, encode_signal
from taiinet.signal.errors import PeerUnreachable, SignalUsageError
from taiinet.signal.records import PeerRecord, SessionKind
from taiinet.signal.timer_heap import TimerHeap
from taiinet.signal.transport import SignalTransport, default_transport
from taiinet.transport.connection import Connection
from taiinet.transport.errors import CertificateUntrusted
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import encode_pong, ping_nonce
from taiinet.wire.peer_id import PeerId

__all__ = ["IncomingOffer", "SignalClient", "SignalClientConfig", "open_signal_client"]

logger = logging.getLogger(__name__)

#: Frames queued for the home link before it is closed as stuck.
SEND_QUEUE = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingOffer:
    """An offer from ``from_peer``; answer it (or reject it) once."""

    from_peer: PeerId
    sdp: str
    session_id: bytes
    client: SignalClient

    async def answer(self, sdp: str) -> None:
        self.client._reply(self, SessionKind.ANSWER, sdp)

    async def reject(self, reason: str = "") -> None:
        self.client._reply(self, SessionKind.REJECT, reason)


class _Waiter:
    """One result the core will settle (an offer or a request)."""

    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: OfferSettled | RequestSettled | None = None


class SignalClient:
    """See the module docstring.  Make one with :func:`open_signal_client`."""

    def __init__(self, identity: Identity, signallers: Sequence[str],
                 transport: SignalTransport, config: SignalClientConfig,
                 rng: random.Random) -> None:
        now = trio.current_time()
        self.core = SignalClientCore(identity=identity, signallers=list(signallers),
                                     config=config, rng=rng, now=now,
                                     unix_epoch=time.time() - now)
        self.identity = identity
        self.signallers = list(signallers)
        self.transport = transport
        self.config = config
        self.home: str | None = None
        self.home_url: str | None = None
        #: Why the last signaller could not be reached or kept (``"<url>: <reason>"``).
        self.last_failure = ""
        #: Set once every signaller URL failed its TLS certificate check in a row:
        #: a configuration error (a missing CA) that retrying does not fix, so
        #: callers can give up at once instead of waiting for a timeout.
        self.untrusted = trio.Event()
        self._untrusted_urls: set[str] = set()
        #: The link to the home while registered there.
        self._connection: Connection | None = None
        self._link: Connection | None = None
        self._link_url = ""
        #: The id of the link to the home (ids are never reused).
        self._link_id = LinkId(0)
        #: The last link the core chose to leave (its reason is in ``last_failure``).
        self._left_link: LinkId | None = None
        self._link_scope: trio.CancelScope | None = None
        self._outgoing: trio.MemorySendChannel[bytes] | None = None
        self._registered = trio.Event()
        self._home_changed = trio.Event()
        self._waiters: dict[bytes | int, _Waiter] = {}
        self._incoming_send, self._incoming_receive = trio.open_memory_channel[IncomingOffer](
            config.incoming_queue)
        self._dials_send, self._dials = trio.open_memory_channel[str](4)
        self._timers: TimerHeap[ClientTimer] = TimerHeap()
        self._closing = False

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def _seq(self) -> int:
        """The sequence number of our latest record."""
        return self.core.seq

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
        session_id, actions = self.core.send_offer(target, sdp, self._now())
        settled = await self._settled(session_id, actions)
        assert isinstance(settled, OfferSettled)
        if settled.answer is not None:
            return settled.answer
        if settled.rejected:
            raise PeerUnreachable(settled.failure)
        raise PeerUnreachable(f"no answer from {peer_id}: {settled.failure}")

    def incoming_offers(self) -> AsyncIterator[IncomingOffer]:
        """Offers from other peers, in arrival order (bounded; extras are refused)."""
        return self._incoming_receive.__aiter__()

    async def contacts(self, count: int = 8, service: str = "") -> list[PeerRecord]:
        """A random sample of live peers (their verified records), not us.

        With ``service``, only peers whose record names it.
        """
        request_id, actions = self.core.request_contacts(count, service, self._now())
        settled = await self._settled(request_id, actions)
        return list(settled.records) if isinstance(settled, RequestSettled) else []

    async def aclose(self) -> None:
        """Withdraw our record, then close the link to the home politely (the client
        stops re-homing only when its ``async with`` ends)."""
        link = self._link
        request_id, actions = self.core.withdraw(self._now())
        if request_id is not None:
            await self._settled(request_id, actions)
        else:
            self._carry(actions)
        if link is not None:
            await link.aclose()

    # -- internals ------------------------------------------------------------

    async def _settled(self, key: bytes | int,
                       actions: list[ClientAction]) -> OfferSettled | RequestSettled | None:
        """Carry out ``actions`` and wait for the core to settle ``key`` (it always does,
        by its own timeout at the latest)."""
        waiter = self._waiters[key] = _Waiter()
        try:
            self._carry(actions)
            await waiter.event.wait()
        finally:
            self._waiters.pop(key, None)
        return waiter.result

    def _reply(self, offer: IncomingOffer, kind: SessionKind, sdp: str) -> None:
        self._carry(self.core.reply(offer.from_peer, offer.session_id, kind, sdp, self._now()))

    def _now(self) -> float:
        """The core's ``now``; its wall clock kept in step with this host's."""
        now = trio.current_time()
        self.core.unix_epoch = time.time() - now
        return now

    def _carry(self, actions: list[ClientAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if action.link == self._link_id:
                    self._enqueue(encode_signal(action.message))
            elif isinstance(action, SetTimer):
                self._timers.add(action.at, action.timer)
            elif isinstance(action, Dial):
                self._dials_send.send_nowait(action.address)
            elif isinstance(action, CloseLink):
                logger.info("leaving home %s: %s", self._link_url, action.reason)
                self.last_failure = f"{self._link_url}: {action.reason}"
                self._left_link = action.link
                if self._link_scope is not None and action.link == self._link_id:
                    self._link_scope.cancel()
            elif isinstance(action, HomeChanged):
                self._home_changed_to(action)
            elif isinstance(action, OfferReceived):
                self._offer_received(action)
            else:
                waiter = self._waiters.get(action.session_id if isinstance(action, OfferSettled)
                                           else action.request_id)
                if waiter is not None:
                    waiter.result = action
                    waiter.event.set()

    def _home_changed_to(self, action: HomeChanged) -> None:
        if action.home is None:
            self.home = self.home_url = None
            self._connection = None
            if self._registered.is_set():
                self._registered = trio.Event()
            return
        self.home, self.home_url = action.home, action.url
        self._connection = self._link
        self._registered.set()
        self._home_changed.set()
        self._home_changed = trio.Event()

    def _offer_received(self, action: OfferReceived) -> None:
        offer = IncomingOffer(from_peer=action.from_peer, sdp=action.sdp,
                              session_id=action.session_id, client=self)
        try:
            self._incoming_send.send_nowait(offer)
        except trio.WouldBlock:
            logger.warning("incoming offer queue full; dropping offer from %s", action.from_peer)

    def _enqueue(self, frame: bytes) -> None:
        if self._outgoing is None:
            return
        try:
            self._outgoing.send_nowait(frame)
        except trio.WouldBlock:
            logger.warning("send queue to the home full; closing the link")
            if self._link_scope is not None:
                self._link_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _run(self) -> None:
        """Dial the homes the core asks for; report each link up and down."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timers.run, self._now, lambda timer, now: self._carry(
                self.core.handle_timer(timer, now)))
            self._carry(self.core.start(self._now()))
            async for url in self._dials:
                self._link_id = link = LinkId(self._link_id + 1)
                try:
                    async with self.transport.dial(url, self.identity) as connection:
                        self._untrusted_urls.clear()
                        await self._serve_home(url, connection, link)
                except (TaiiNetError, OSError, trio.TooSlowError) as exc:
                    logger.info("signaller %s failed: %r", url, exc)
                    reason = str(exc)
                    self.last_failure = reason if url in reason else f"{url}: {reason}"
                    self._note_untrusted(url, exc)
                else:
                    if self._left_link != link:  # (the core's own reason stays)
                        self.last_failure = f"{url}: the signaller closed the link"
                finally:
                    up, self._link = self._link is not None, None
                    self._outgoing = self._link_scope = None
                self._carry(self.core.handle_link_down(link, self._now()) if up
                            else self.core.handle_dial_failed(url, None, self._now()))
                if self._closing:
                    break
                if (self.core.failures >= len(self.signallers) and not self.untrusted.is_set()
                        and not self._waiters):
                    logger.warning("no signaller reachable (last: %s); retrying",
                                   self.last_failure)
            nursery.cancel_scope.cancel()

    def _note_untrusted(self, url: str, error: BaseException) -> None:
        if isinstance(error, CertificateUntrusted):
            self._untrusted_urls.add(url)
            if self._untrusted_urls >= set(self.signallers):
                self.untrusted.set()
        else:
            self._untrusted_urls.discard(url)

    async def _serve_home(self, url: str, connection: Connection, link: LinkId) -> None:
        send, receive = trio.open_memory_channel[bytes](SEND_QUEUE)
        self._link, self._link_url, self._outgoing = connection, url, send
        with trio.CancelScope() as scope:
            self._link_scope = scope
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, connection, receive, scope)
                self._carry(self.core.handle_link_up(link, connection.remote_peer_id,
                                                     connection.remote_address, url,
                                                     self._now()))
                try:
                    while True:
                        frame = await connection.receive()
                        nonce = ping_nonce(frame)
                        if nonce is not None:
                            self._enqueue(encode_pong(nonce))
                            continue
                        message = decode_signal(frame)
                        if message is not None:
                            self._carry(self.core.handle_message(link, message, self._now()))
                except (TaiiNetError, trio.TooSlowError) as exc:
                    logger.info("link to home %s ended: %r", url, exc)
                finally:
                    nursery.cancel_scope.cancel()

    @staticmethod
    async def _writer(connection: Connection, frames: trio.MemoryReceiveChannel[bytes],
                      scope: trio.CancelScope) -> None:
        try:
            async for frame in frames:
                await connection.send(frame)
        except TaiiNetError as exc:
            logger.info("sending to the home failed: %r", exc)
            scope.cancel()


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
