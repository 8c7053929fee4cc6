"""Links: how a node opens authenticated connections to peers known only by id.

The link layer (``taiinet.link``) asks for a ``Connection`` to a peer id; a
``Links`` object makes one, and hands the connections other peers open to us
to the node.  What travels on them (frames of protocol items, queues,
keep-alive) is the link layer's; this module only opens connections.  Three
kinds, all negotiated through the signal mesh (``SignalClient.send_offer``):

* ``webrtc_links()``: an SDP offer goes through the mesh, the answer comes
  back, and the data channel is upgraded with Noise XX (``expected_peer_id``
  is the dialed peer, so a wrong answerer fails the handshake).
* ``websocket_links()``: the node listens on a WebSocket; the "offer" is the
  text ``taiinet-ws:<our url>`` and the answer ``taiinet-ws:<their url>``;
  the dialer then connects to that URL (Noise XX again proves the peer id).
  So a WebSocket node needs no address in its peer record and no extra
  signal message type; the answerer decides the URL it hands out.
* ``memory_links(network)``: an in-process ``MemoryNetwork`` (tests).

Every connection is wrapped in a ``MeteredConnection`` that counts frames and
bytes both ways into the node's ``LinkMeter``.

Two nodes of different kinds cannot link: the answerer rejects the offer
with the reason ``this node takes <kind> links only`` (``webrtc`` or
``websocket``).  Both sides count such a mismatch (``kind_mismatches``) and
log the first one as a warning, since otherwise nothing would tell the user
why a node stays alone.
"""

from __future__ import annotations

import abc
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from taiinet.errors import TaiiNetError
from taiinet.node.errors import LinkKindMismatch
from taiinet.signal.client import IncomingOffer, SignalClient
from taiinet.signal.errors import PeerUnreachable
from taiinet.signal.urls import is_wildcard
from taiinet.transport.connection import Connection, Packets
from taiinet.transport.errors import DialError
from taiinet.transport.memory import MemoryNetwork
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

if TYPE_CHECKING:  # aiortc is imported only when WebRTC links are opened
    from taiinet.transport.webrtc import IceServer, WebRTCEndpoint

log = logging.getLogger(__name__)

#: Offers being answered at once; further offers are rejected ("busy").
MAX_PENDING_ANSWERS = 16
#: Prefix of the offer/answer text of WebSocket links.
WS_OFFER_PREFIX = "taiinet-ws:"
#: Longest WebSocket URL accepted in an answer.
MAX_WS_URL = 256

#: The reason an answerer gives when it refuses an offer of another link kind.
KIND_REJECT = "this node takes {kind} links only"
_KIND_REJECTED = re.compile(r"refused the offer: this node takes (\w+) links only$")

Accept = Callable[[Connection], None]


@dataclass(slots=True)
class LinkMeter:
    """Counts of one node's link traffic (all layers, after Noise framing)."""

    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    opened: int = 0
    open_now: int = 0
    #: Open connections per remote peer (two peers may dial each other at once).
    peers: dict[str, int] = field(default_factory=dict)

    def linked_peers(self) -> int:
        """Peers we hold at least one open connection to."""
        return len(self.peers)


class MeteredConnection(Connection):
    """A ``Connection`` that counts its traffic and can be waited on until closed."""

    def __init__(self, inner: Connection, meter: LinkMeter) -> None:
        self._inner = inner
        self._meter = meter
        self._closed = trio.Event()
        meter.opened += 1
        meter.open_now += 1
        peer = inner.remote_peer_id
        meter.peers[peer] = meter.peers.get(peer, 0) + 1

    @property
    def local_peer_id(self) -> PeerId:
        return self._inner.local_peer_id

    @property
    def remote_peer_id(self) -> PeerId:
        return self._inner.remote_peer_id

    @property
    def remote_address(self) -> str | None:
        return self._inner.remote_address

    @property
    def packets(self) -> Packets | None:
        return self._inner.packets

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def send(self, frame: bytes) -> None:
        await self._inner.send(frame)
        self._meter.frames_sent += 1
        self._meter.bytes_sent += len(frame)

    async def receive(self) -> bytes:
        try:
            frame = await self._inner.receive()
        except TaiiNetError:
            self._mark_closed()
            raise
        self._meter.frames_received += 1
        self._meter.bytes_received += len(frame)
        return frame

    async def aclose(self) -> None:
        self._mark_closed()
        await self._inner.aclose()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _mark_closed(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            meter = self._meter
            meter.open_now -= 1
            peer = self._inner.remote_peer_id
            left = meter.peers.get(peer, 1) - 1
            if left > 0:
                meter.peers[peer] = left
            else:
                meter.peers.pop(peer, None)

    def __repr__(self) -> str:
        return f"<MeteredConnection {self._inner!r}>"


class Links(abc.ABC):
    """Opens links to peers by id and accepts the links peers open to us."""

    #: ``"webrtc"``, ``"websocket"`` or ``"memory"``.
    kind: str = ""

    def __init__(self, identity: Identity, signal: SignalClient, meter: LinkMeter) -> None:
        self.identity = identity
        self.signal = signal
        self.meter = meter
        #: Offers refused (either way) because the two nodes take different link kinds.
        self.kind_mismatches = 0

    def kind_mismatch(self, peer_id: str, theirs: str) -> LinkKindMismatch:
        """Count (and, the first time, warn about) a peer taking another link kind."""
        self.kind_mismatches += 1
        error = LinkKindMismatch(
            f"peer {peer_id} takes {theirs} links and this node {self.kind} links, so they "
            f"cannot link: start every peer with the same links (--links {theirs} or "
            f"--links {self.kind})")
        log.log(logging.WARNING if self.kind_mismatches == 1 else logging.INFO, "%s", error)
        return error

    async def send_offer(self, peer_id: str, offer: str) -> str:
        """Relay ``offer``; a refusal because of the link kind is a ``LinkKindMismatch``."""
        try:
            return await self.signal.send_offer(peer_id, offer)
        except PeerUnreachable as exc:
            refused = _KIND_REJECTED.search(str(exc))
            if refused is None:
                raise
            raise self.kind_mismatch(peer_id, refused.group(1)) from None

    async def reject_kind(self, offer: IncomingOffer) -> None:
        """Refuse an offer of another link kind, saying which kind this node takes."""
        theirs = "websocket" if offer.sdp.startswith(WS_OFFER_PREFIX) else "webrtc"
        self.kind_mismatch(offer.from_peer, theirs)
        await offer.reject(KIND_REJECT.format(kind=self.kind))

    @abc.abstractmethod
    async def dial(self, peer_id: str) -> Connection:
        """Open a link to ``peer_id``; raise a ``TaiiNetError`` if it cannot be done."""

    @abc.abstractmethod
    async def serve(self, accept: Accept) -> None:
        """Hand every link a peer opens to us to ``accept``; runs until cancelled."""


#: Makes a node's ``Links`` for the lifetime of an ``async with``.
LinkFactory = Callable[[Identity, SignalClient, LinkMeter], AbstractAsyncContextManager[Links]]


async def _serve_offers(signal: SignalClient, answer: Callable[[IncomingOffer], object]) -> None:
    """Answer incoming offers concurrently, at most ``MAX_PENDING_ANSWERS`` at a time."""
    pending = 0

    async def one(offer: IncomingOffer) -> None:
        nonlocal pending
        try:
            await answer(offer)  # type: ignore[misc]
        except TaiiNetError as exc:
            log.info("node: offer from %s failed: %s", offer.from_peer, exc)
        finally:
            pending -= 1

    async with trio.open_nursery() as nursery:
        async for offer in signal.incoming_offers():
            if pending >= MAX_PENDING_ANSWERS:
                with suppress(TaiiNetError):
                    await offer.reject("busy")
                continue
            pending += 1
            nursery.start_soon(one, offer)


class WebRTCLinks(Links):
    kind = "webrtc"

    def __init__(self, identity: Identity, signal: SignalClient, meter: LinkMeter,
                 endpoint: WebRTCEndpoint) -> None:
        super().__init__(identity, signal, meter)
        self.endpoint = endpoint
        self._accept: Accept | None = None

    async def dial(self, peer_id: str) -> Connection:
        started = trio.current_time()
        offer = await self.endpoint.create_offer()
        offered = trio.current_time()
        try:
            answer = await self.send_offer(peer_id, offer.sdp)
        except BaseException:
            await offer.aclose()
            raise
        answered = trio.current_time()
        connection = await offer.accept(answer, expected_peer_id=peer_id)
        log.debug("dial %s: offer made %.3f s, answered %.3f s, channel + Noise %.3f s",
                  peer_id[-6:], offered - started, answered - offered,
                  trio.current_time() - answered)
        return MeteredConnection(connection, self.meter)

    async def serve(self, accept: Accept) -> None:
        async def answer(offer: IncomingOffer) -> None:
            if offer.sdp.startswith(WS_OFFER_PREFIX):
                await self.reject_kind(offer)
                return
            started = trio.current_time()
            try:
                sdp, pending = await self.endpoint.answer(offer.sdp)
            except TaiiNetError as exc:
                await offer.reject(f"bad offer: {exc}"[:200])
                return
            answered = trio.current_time()
            try:
                await offer.answer(sdp)
                connection = await pending.connected(expected_peer_id=offer.from_peer)
            except BaseException:
                await pending.aclose()
                raise
            log.debug("answer %s: answer made %.3f s, channel + Noise %.3f s",
                      offer.from_peer[-6:], answered - started, trio.current_time() - answered)
            accept(MeteredConnection(connection, self.meter))

        await _serve_offers(self.signal, answer)


def webrtc_links(candidate_addresses: Sequence[str] | None = None,
                 ice_servers: Sequence[IceServer] = ()) -> LinkFactory:
    """WebRTC data channels (aiortc), offers relayed by the signal mesh.

    ``candidate_addresses``: local addresses offered as ICE host candidates
    (``["127.0.0.1"]`` on loopback-only setups; ``None``: what aioice finds).
    """

    @asynccontextmanager
    async def factory(identity: Identity, signal: SignalClient,
                      meter: LinkMeter) -> AsyncIterator[Links]:
        from taiinet.transport.webrtc import open_webrtc

        async with open_webrtc(identity, candidate_addresses=candidate_addresses,
                               ice_servers=ice_servers) as endpoint:
            yield WebRTCLinks(identity, signal, meter, endpoint)

    return factory


class WebSocketLinks(Links):
    kind = "websocket"

    def __init__(self, identity: Identity, signal: SignalClient, meter: LinkMeter,
                 url: str, listener: AsyncIterator[Connection], nursery: trio.Nursery,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(identity, signal, meter)
        self.url = url
        self._ssl_context = ssl_context
        self._listener = listener
        self._nursery = nursery

    async def dial(self, peer_id: str) -> Connection:
        answer = await self.send_offer(peer_id, WS_OFFER_PREFIX + self.url)
        url = answer[len(WS_OFFER_PREFIX):] if answer.startswith(WS_OFFER_PREFIX) else ""
        if not url.startswith(("ws://", "wss://")) or len(url) > MAX_WS_URL:
            raise DialError(f"{peer_id} answered with no usable WebSocket URL")
        result: Connection = await self._nursery.start(self._hold, url, peer_id)
        return result

    async def _hold(self, url: str, peer_id: str,
                    task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep ``connect_websocket``'s context open while the link lives."""
        # The overlay batches its own frames: no writer task per link (see
        # ``WebSocketChannel``).
        async with connect_websocket(url, self.identity, expected_peer_id=peer_id,
                                     coalesce=False, ssl_context=self._ssl_context) as raw:
            connection = MeteredConnection(raw, self.meter)
            task_status.started(connection)
            await connection.wait_closed()

    async def serve(self, accept: Accept) -> None:
        async def answer(offer: IncomingOffer) -> None:
            if offer.sdp.startswith(WS_OFFER_PREFIX):
                await offer.answer(WS_OFFER_PREFIX + self.url)
            else:
                await self.reject_kind(offer)

        async def incoming() -> None:
            async for connection in self._listener:
                accept(MeteredConnection(connection, self.meter))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(incoming)
            await _serve_offers(self.signal, answer)


def websocket_links(host: str = "127.0.0.1", port: int = 0,
                    advertised_host: str | None = None, *,
                    server_ssl_context: ssl.SSLContext | None = None,
                    ssl_context: ssl.SSLContext | None = None) -> LinkFactory:
    """WebSocket links: listen on ``host:port``; hand out ``ws://advertised_host:port``.

    Without ``advertised_host``, a wildcard ``host`` (``0.0.0.0``, ``::``)
    hands out this machine's host name, never the unroutable wildcard.
    ``server_ssl_context`` (``taiinet.transport.tls.server_context``): listen
    behind TLS and hand out ``wss://`` (for browser peers on https pages; the
    certificate must name ``advertised_host``).  ``ssl_context``: verifies the
    ``wss://`` URLs peers answer with (default: the system's CAs).
    """
    if advertised_host is None and is_wildcard(host):
        advertised_host = socket.gethostname()

    @asynccontextmanager
    async def factory(identity: Identity, signal: SignalClient,
                      meter: LinkMeter) -> AsyncIterator[Links]:
        async with open_websocket_listener(identity, host, port, coalesce=False,
                                           ssl_context=server_ssl_context) as listener, \
                trio.open_nursery() as nursery:
            shown = advertised_host or host
            scheme = "ws" if server_ssl_context is None else "wss"
            url = f"{scheme}://[{shown}]:{listener.port}" if ":" in shown else \
                f"{scheme}://{shown}:{listener.port}"
            try:
                yield WebSocketLinks(identity, signal, meter, url, listener.__aiter__(), nursery,
                                     ssl_context)
            finally:
                nursery.cancel_scope.cancel()

    return factory


class MemoryLinks(Links):
    kind = "memory"

    def __init__(self, identity: Identity, signal: SignalClient, meter: LinkMeter,
                 network: MemoryNetwork, listener: AsyncIterator[Connection]) -> None:
        super().__init__(identity, signal, meter)
        self.network = network
        self._listener = listener

    async def dial(self, peer_id: str) -> Connection:
        return MeteredConnection(await self.network.dial(self.identity, peer_id), self.meter)

    async def serve(self, accept: Accept) -> None:
        async for connection in self._listener:
            accept(MeteredConnection(connection, self.meter))


def memory_links(network: MemoryNetwork) -> LinkFactory:
    """Links over an in-process ``MemoryNetwork`` (tests and simulations)."""

    @asynccontextmanager
    async def factory(identity: Identity, signal: SignalClient,
                      meter: LinkMeter) -> AsyncIterator[Links]:
        listener = network.listen(identity)
        try:
            yield MemoryLinks(identity, signal, meter, network, listener.__aiter__())
        finally:
            await listener.aclose()

    return factory
