"""The signaller's trio driver: sockets, queues and timers around :class:`SignallerCore`.

Every protocol decision (hello and roles, claims, registration, relay
routing, contacts, rate limits, the DHT) lives in the core
(:mod:`taiinet.signal.signaller_core`); this module only

* accepts links (and dials the ones the core asks for), reporting them up,
  down or failed;
* reads each link, waiting the core's ``read_delay`` (its token buckets) and
  answering keep-alive ``Ping``s, and hands decoded messages to the core;
* writes each link from a bounded queue (a link that lets it overflow is
  closed), with a ``Ping`` after ``keepalive_interval`` of silence;
* runs the core's timers (values, never cancelled) on a heap.

A link that sends a frame that does not decode, or floods past its limit,
is closed and counted in ``links_dropped``, and the signaller goes on.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from taiinet.core.actions import CloseLink, Dial, LinkId, Send, SetTimer
from taiinet.errors import ConnectionClosed, RemoteProtocolError, TaiiNetError
from taiinet.signal.codec import decode_signal, encode_signal
from taiinet.signal.dht import KademliaNode
from taiinet.signal.pace import ProtocolViolation
from taiinet.signal.signaller_config import FLUSH_TIMEOUT, SignallerConfig
from taiinet.signal.signaller_core import SignallerClaimRejected, SignallerCore
from taiinet.signal.signaller_timers import Joined, SignallerAction, SignallerTimer
from taiinet.signal.timer_heap import TimerHeap
from taiinet.signal.transport import SignalListener, SignalTransport
from taiinet.transport.connection import Connection
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import encode_ping, encode_pong, ping_nonce
from taiinet.wire.peer_id import PeerId

__all__ = ["FLUSH_TIMEOUT", "ProtocolViolation", "Signaller", "SignallerClaimRejected",
           "SignallerConfig"]

logger = logging.getLogger(__name__)

#: The keep-alive frame the writer sends on a quiet link.
_PING = encode_ping()


@dataclass(slots=True)
class _LinkIO:
    connection: Connection
    send: trio.MemorySendChannel[bytes]
    receive: trio.MemoryReceiveChannel[bytes]
    #: Set when the writer has sent everything (its queue was closed).
    drained: trio.Event = field(default_factory=trio.Event)
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)


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
        self.core: SignallerCore | None = None
        self._links: dict[LinkId, _LinkIO] = {}
        self._next_link = 0
        self._timers: TimerHeap[SignallerTimer] = TimerHeap()
        self._joined: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self._driver_dropped = 0

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def dht(self) -> KademliaNode | None:
        return self.core.dht if self.core is not None else None

    @property
    def homed_peers(self) -> list[PeerId]:
        return self.core.homed_peers if self.core is not None else []

    @property
    def links_dropped(self) -> int:
        """Links closed because the other side broke the protocol."""
        core = self.core.links_dropped if self.core is not None else 0
        return core + self._driver_dropped

    # -- lifecycle ------------------------------------------------------------

    async def close_links(self) -> None:
        """Close every link politely (before cancelling the signaller's tasks)."""
        for link in list(self._links.values()):
            await link.connection.aclose()

    async def serve(self, listener: SignalListener, join: Sequence[str] = (), *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: accept links, join the mesh through ``join``."""
        self.url = listener.url
        now = trio.current_time()
        self.core = SignallerCore(peer_id=self.peer_id, url=self.url, config=self.config,
                                  rng=random.Random(self.rng.getrandbits(64)), now=now,
                                  unix_epoch=time.time() - now)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._accept_loop, listener)
            nursery.start_soon(self._timer_loop)
            self._carry(self.core.start(now))
            for url in join:
                joined = self._joined.setdefault(url, trio.Event())
                self._carry(self.core.join(url, self._now()))
                with trio.move_on_after(self.config.hello_timeout + self.config.lookup_timeout):
                    await joined.wait()
            task_status.started()

    async def _accept_loop(self, listener: SignalListener) -> None:
        assert self._nursery is not None
        while True:
            try:
                connection = await listener.accept()
            except ConnectionClosed:
                return
            self._nursery.start_soon(self._run_link, connection, None)

    async def _dial(self, url: str, peer: PeerId | None) -> None:
        try:
            async with self.transport.dial(url, self.identity, peer) as connection:
                await self._run_link(connection, url)
        except (TaiiNetError, OSError, trio.TooSlowError) as exc:
            logger.info("dial %s failed: %r", url, exc)
            assert self.core is not None
            self._carry(self.core.handle_dial_failed(url, peer, self._now()))

    # -- links ----------------------------------------------------------------

    async def _run_link(self, connection: Connection, dialed_url: str | None) -> None:
        assert self.core is not None
        core = self.core
        send, receive = trio.open_memory_channel[bytes](self.config.send_queue)
        self._next_link += 1
        link = LinkId(self._next_link)
        io = _LinkIO(connection=connection, send=send, receive=receive)
        self._links[link] = io
        try:
            with io.cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, io)
                    self._carry(core.handle_link_up(link, connection.remote_peer_id,
                                                    connection.remote_address, dialed_url,
                                                    self._now()))
                    try:
                        await self._reader(link, io)
                    except ProtocolViolation as exc:
                        self._driver_dropped += 1
                        logger.warning("closing link to %s: %s", connection.remote_peer_id, exc)
                        await self._flush(io)
                    except RemoteProtocolError as exc:
                        self._driver_dropped += 1
                        logger.warning("closing link to %s: %r", connection.remote_peer_id, exc)
                    except ConnectionClosed:
                        pass
                    finally:
                        nursery.cancel_scope.cancel()
        finally:
            self._links.pop(link, None)
            self._carry(core.handle_link_down(link, self._now()))
            with trio.CancelScope(shield=True):
                await connection.aclose()

    async def _reader(self, link: LinkId, io: _LinkIO) -> None:
        assert self.core is not None
        while True:
            frame = await io.connection.receive()
            delay = self.core.read_delay(link, len(frame), self._now())
            if delay > 0:
                await trio.sleep(delay)
            nonce = ping_nonce(frame)
            if nonce is not None:
                self._enqueue(io, encode_pong(nonce))
                continue
            message = decode_signal(frame)
            if message is not None:
                self._carry(self.core.handle_message(link, message, self._now()))

    async def _writer(self, io: _LinkIO) -> None:
        """Send what is queued; a ``Ping`` after ``keepalive_interval`` of sending nothing."""
        try:
            while True:
                frame = _PING
                with trio.move_on_after(self.config.keepalive_interval):
                    try:
                        frame = await io.receive.receive()
                    except trio.EndOfChannel:
                        io.drained.set()
                        return
                await io.connection.send(frame)
        except TaiiNetError as exc:
            logger.info("sending to %s failed: %r", io.connection.remote_peer_id, exc)
            io.cancel.cancel()

    async def _flush(self, io: _LinkIO) -> None:
        """Let the writer send what is queued (at most ``FLUSH_TIMEOUT``)."""
        io.send.close()
        with trio.move_on_after(FLUSH_TIMEOUT):
            await io.drained.wait()

    async def _close(self, io: _LinkIO, flush: bool) -> None:
        if flush:
            await self._flush(io)
        io.cancel.cancel()

    def _enqueue(self, io: _LinkIO, frame: bytes) -> None:
        try:
            io.send.send_nowait(frame)
        except trio.WouldBlock:
            logger.warning("send queue to %s full; closing the link",
                           io.connection.remote_peer_id)
            io.cancel.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # -- the core's actions ---------------------------------------------------

    def _now(self) -> float:
        """The core's ``now``, its wall clock kept in step with this host's (a MockClock
        moves trio's time but not the wall clock signed records' expiries use)."""
        now = trio.current_time()
        if self.core is not None:
            self.core.unix_epoch = time.time() - now
        return now

    def _carry(self, actions: list[SignallerAction]) -> None:
        assert self._nursery is not None
        for action in actions:
            if isinstance(action, Send):
                io = self._link_of(action.link)
                if io is not None:
                    self._enqueue(io, encode_signal(action.message))
            elif isinstance(action, SetTimer):
                self._timers.add(action.at, action.timer)
            elif isinstance(action, Dial):
                self._nursery.start_soon(self._dial, action.address, action.peer)
            elif isinstance(action, CloseLink):
                io = self._link_of(action.link)
                if io is not None:
                    logger.warning("closing link to %s: %s", action.peer, action.reason)
                    self._nursery.start_soon(self._close, io, not action.failed)
            elif isinstance(action, Joined):
                if not action.ok:
                    logger.warning("could not join the mesh through %s", action.url)
                self._joined.setdefault(action.url, trio.Event()).set()

    def _link_of(self, link: LinkId | None) -> _LinkIO | None:
        """The link a ``Send`` or ``CloseLink`` names (the core always names one)."""
        return None if link is None else self._links.get(link)

    async def _timer_loop(self) -> None:
        core = self.core
        assert core is not None
        await self._timers.run(self._now, lambda timer, now: self._carry(
            core.handle_timer(timer, now)))
