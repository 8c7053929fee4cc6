"""The TaiiNet node: signal client + links + overlay driver + local matching.

Theory of operation
-------------------
``open_node`` composes the layers, bottom up:

1. a ``SignalClient`` registers us with one of the given signallers (failing
   over among them) and relays link offers;
2. a ``Links`` object (WebRTC by default, WebSocket or memory) turns a peer id
   into an authenticated ``Connection`` through a relayed offer, and accepts
   the links other peers open to us;
3. a ``RoutedDriver`` (``taiinet.node.routed``), the link layer's
   ``Runner`` (``taiinet.link``), runs the content router
   (``taiinet.pubsub``'s ``TreeRouter``, which owns the HyParView +
   Plumtree cores) over those links, and the node composes the other
   protocols beside it by protocol id (history, docs/seed.md); the node
   joins the overlay through a contact the signallers hand out, and rejoins
   whenever its active view is empty;
4. subscribing adds the query to the router, which advertises the node's
   interest to its neighbours (``InterestAdvert`` frames); publishing hands
   the document to the router, which signs it (``PublishedDocument`` in a
   signed envelope, with the wall clock and a random nonce) and pushes it
   only along links whose advertised interest matches it.  Every node
   verifies a document (size, hash = message id, payload type, signature)
   before it forwards or delivers it, so tampered, unsigned or oversized
   documents are dropped and counted, never delivered or relayed;
5. the router delivers each document once, to the local subscriptions whose
   queries match; the node puts it on each one's bounded queue.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import trio

from taiinet._groups import unwrap_own_groups
from taiinet.errors import TaiiNetError
from taiinet.history.codec import CODEC as HISTORY_CODEC
from taiinet.history.errors import HistoryUsageError
from taiinet.history.store import SeedStore
from taiinet.node.errors import NodeClosed, NodeError
from taiinet.node.handover import HandOver
from taiinet.node.history import HistoryConfig, HistoryService, item_message
from taiinet.node.links import (
    LinkFactory,
    LinkMeter,
    Links,
    webrtc_links,
    websocket_links,
)
from taiinet.node.routed import DEFAULT_DELIVERY_BUFFER_BYTES, RoutedDriver
from taiinet.node.subscription import (
    DEFAULT_SUBSCRIPTION_BUFFER_BYTES,
    HistorySpec,
    Message,
    SlowPolicy,
    Subscription,
)
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.driver import DEFAULT_DELIVERY_BUFFER
from taiinet.pubsub import PubsubConfig, PubsubUsageError
from taiinet.pubsub.query import InvalidDocument, Query
from taiinet.signal.client import SignalClient, SignalClientConfig, open_signal_client
from taiinet.signal.records import SEEDER_SERVICE
from taiinet.signal.transport import SignalTransport, WebSocketSignalTransport
from taiinet.signal.urls import check_signaller_url
from taiinet.stream import api as stream_api
from taiinet.stream.api import Broadcast, Viewing
from taiinet.stream.codec import CODEC as STREAM_CODEC
from taiinet.stream.codec import Track
from taiinet.stream.service import StreamService
from taiinet.transport.errors import CertificateUntrusted
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    #: Content-based routing (``PubsubConfig(routing=False)``: plain broadcast).
    pubsub: PubsubConfig = field(default_factory=PubsubConfig)
    signal: SignalClientConfig = field(default_factory=SignalClientConfig)
    #: Contacts asked of the signallers when (re)joining the overlay.
    contacts: int = 8
    #: Contacts dialed at once per join attempt: the node joins through the
    #: first whose link comes up (Noise done) and closes the others, so a
    #: few dead contacts among them cost nothing but their dial.
    join_parallel: int = 8
    #: Seconds a join attempt's dials may take before it gives up on them.
    join_dial_timeout: float = 10.0
    #: Seconds ``open_node`` waits to be registered with a signaller.
    register_timeout: float = 15.0
    #: Seconds ``open_node`` waits for a first overlay neighbour before it
    #: returns anyway (it keeps trying in the background).
    join_timeout: float = 15.0
    #: Seconds between two join attempts while the active view is empty.
    join_retry: float = 1.0
    #: Messages a subscription queues before its ``slow_policy`` applies, and
    #: the bytes they may hold (``Message.size``: a decoded document counts
    #: its encoded size plus 72 bytes per value); a queue holds at least one
    #: message whatever its size.
    subscription_buffer: int = 1024
    subscription_buffer_bytes: int = DEFAULT_SUBSCRIPTION_BUFFER_BYTES
    slow_policy: SlowPolicy = "drop"
    #: Documents, and their bytes (as above), waiting for the node's delivery
    #: task to hand them to the subscriptions (it waits while a ``"block"``
    #: subscription is full); one that does not fit is dropped and counted.
    delivery_buffer: int = DEFAULT_DELIVERY_BUFFER
    delivery_buffer_bytes: int = DEFAULT_DELIVERY_BUFFER_BYTES
    #: Reading stored documents from seeders, and serving them on a seeder (docs/seed.md).
    history: HistoryConfig = field(default_factory=HistoryConfig)

    def __post_init__(self) -> None:
        if self.join_parallel < 1 or self.join_dial_timeout <= 0:
            raise NodeError("join_parallel must be at least 1 and join_dial_timeout positive")
        if min(self.contacts, self.subscription_buffer, self.subscription_buffer_bytes,
               self.delivery_buffer, self.delivery_buffer_bytes) < 1:
            raise NodeError("contacts and the buffer bounds must be at least 1")
        if min(self.register_timeout, self.join_timeout, self.join_retry) <= 0:
            raise NodeError("the node's timeouts and intervals must be positive")
        if self.slow_policy not in ("drop", "block"):
            raise NodeError(f"slow_policy is 'drop' or 'block', not {self.slow_policy!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStats:
    peer_id: str
    #: Held links: neighbours (the overlay's active view, at most
    #: ``active_size``) we have an open connection to.
    links: int
    #: Short-lived links: peers we have an open connection to that are not
    #: neighbours - a HyParView exchange (a Join, a Neighbor request, a
    #: shuffle or its reply) or a link being closed after one.  The overlay
    #: closes them after the exchange; see docs/node.md, "Links".
    exchange_links: int
    #: Open connections (a peer pair that dialed each other at once holds two).
    connections: int
    neighbors: int
    subscriptions: int
    #: Documents this node published.
    published: int
    #: Messages put on subscription queues (one per matching subscription).
    delivered: int
    #: Messages dropped: slow subscribers plus invalid envelopes plus overlay
    #: deliveries dropped because the node's delivery task lagged.
    dropped: int
    #: Envelopes rejected as tampered, unsigned or oversized.
    invalid: int
    #: Documents received from the overlay (valid, before matching).
    received: int
    #: Interest adverts sent to and accepted from neighbours (the router's).
    adverts_sent: int
    adverts_received: int
    frames_sent: int
    frames_received: int
    bytes_sent: int
    bytes_received: int
    #: Total bytes both ways on all links.
    bytes: int


class Node:
    """A running node; made by ``open_node``."""

    def __init__(self, identity: Identity, signal: SignalClient, links: Links,
                 meter: LinkMeter, config: NodeConfig, rng: random.Random, *,
                 keep_envelopes: bool = False) -> None:
        self.identity = identity
        self.signal = signal
        self.links = links
        self.config = config
        self._meter = meter
        self._rng = rng
        self.driver = RoutedDriver(identity, links.dial, rng=rng, overlay_config=config.overlay,
                                   pubsub_config=config.pubsub,
                                   delivery_buffer=config.delivery_buffer,
                                   delivery_buffer_bytes=config.delivery_buffer_bytes,
                                   keep_envelopes=keep_envelopes)
        #: The history protocol: fetches of stored documents, and serving them on a seeder.
        self.history = HistoryService(self.driver, signal, config.history, rng.getrandbits(32))
        #: Live streams this node broadcasts, watches or relays (docs/stream.md).
        self.streams = StreamService(self.driver, identity, random.Random(rng.getrandbits(64)))
        self.driver.link_keepers.append(self.streams.keeps_link)
        # The protocols run side by side over the same links, each by its id and
        # codec (docs/protocol.md section 4.1): the router registered overlay (10)
        # and pubsub (12); history (13) goes to the history service and stream (14)
        # to the stream service, which also hears of every link that goes down.
        self.driver.register(HISTORY_CODEC, self.history.handle_message)
        self.driver.register(STREAM_CODEC, self.streams.handle_message,
                             link_down=self.streams.handle_link_down)
        self._subscriptions: dict[int, Subscription] = {}
        self._neighbors: tuple[str, ...] = ()
        self._membership_changed = trio.Event()
        self._alone = False
        self._closed = False
        self._hand_over = HandOver(self.driver, self._subscriptions)
        self.dropped_slow = 0
        self._last_published_ms = 0
        #: Draws the publications' nonces.  They must differ, not be secret (the
        #: signature is what a forger lacks): one seed from ``secrets`` per node,
        #: not a system call per publication.
        self._nonces = random.Random(secrets.randbits(128))

    # -- public API ---------------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def neighbors(self) -> list[PeerId]:
        """Overlay neighbours whose link is up (authenticated): the active view
        less the peers still being dialed."""
        return self.driver.linked_neighbors

    def stats(self) -> NodeStats:
        meter = self._meter
        slow = self.dropped_slow + sum(s.dropped for s in self._subscriptions.values())
        router = self.driver.router.stats
        invalid = sum(router.rejected.values())
        neighbors = self.neighbors
        linked = meter.peers
        held = sum(1 for peer in neighbors if peer in linked)
        return NodeStats(
            peer_id=self.peer_id, links=held, exchange_links=len(linked) - held,
            connections=meter.open_now, neighbors=len(neighbors),
            subscriptions=len(self._subscriptions), published=router.published,
            delivered=self._hand_over.delivered,
            dropped=slow + invalid + self.driver.dropped_documents,
            invalid=invalid, received=router.accepted,
            adverts_sent=router.adverts_sent, adverts_received=router.adverts_received,
            frames_sent=meter.frames_sent, frames_received=meter.frames_received,
            bytes_sent=meter.bytes_sent, bytes_received=meter.bytes_received,
            bytes=meter.bytes_sent + meter.bytes_received)

    def subscribe(self, query: Query | Any, *, buffer: int | None = None,
                  slow_policy: SlowPolicy | None = None, history: bool = False,
                  since: float | None = None,
                  history_limit: int | None = None) -> Subscription:
        """A subscription to documents matching ``query`` (use with ``async with``).

        With ``history=True``, ``since`` (seconds since the epoch) or
        ``history_limit``, it first yields the matching documents the mesh's
        seeders hold (published at or after ``since``; the first
        ``history_limit`` of them), in publication order, then the live ones,
        each document once (docs/seed.md).  Raises ``InvalidQuery`` at once
        for a query that does not parse.
        """
        if self._closed:
            raise NodeClosed("the node is closed")
        parsed = query if isinstance(query, Query) else Query(query)
        spec = None
        if history or since is not None or history_limit is not None:
            spec = HistorySpec(since_unix_ms=_since_ms(since), limit=_limit(history_limit))
        return Subscription(self, parsed, buffer=buffer or self.config.subscription_buffer,
                            buffer_bytes=self.config.subscription_buffer_bytes,
                            policy=slow_policy or self.config.slow_policy,
                            on_close=self._remove_subscription, history=spec)

    @asynccontextmanager
    async def find(self, query: Query | Any, *, since: float | None = None,
                   limit: int | None = None) -> AsyncIterator[AsyncIterator[Message]]:
        """The stored documents matching ``query``, from the mesh's seeders, in
        publication order, each once: ``async with node.find(q) as found: async for m in
        found``.  ``since``: seconds since the epoch; ``limit``: the first that many."""
        if self._closed:
            raise NodeClosed("the node is closed")
        parsed = query if isinstance(query, Query) else Query(query)
        since_ms, most = _since_ms(since), _limit(limit)
        seeders = await self.history.find_seeders()
        fetch = self.history.open_fetch(parsed, seeders, since_unix_ms=since_ms, limit=most)

        async def messages() -> AsyncIterator[Message]:
            while batch := await fetch.next_batch():
                now = time.time()
                for item in batch:
                    yield item_message(item, now)

        try:
            yield messages()
        finally:
            fetch.close()

    async def publish(self, document: Any) -> str:
        """Sign and route ``document``; return its message id (hex).

        Raises ``InvalidDocument`` for a document that is not JSON-like or
        too large.  Every publication is a new message (a random nonce is
        signed with it), so an equal document published again is delivered
        again.
        """
        if self._closed:
            raise NodeClosed("the node is closed")
        # Strictly increasing per node, so that the publication order of one
        # publisher is its documents' (published_unix_ms, id) order in history.
        published_ms = max(math.floor(time.time() * 1000), self._last_published_ms + 1)
        try:
            message_id = self.driver.publish(
                document, published_unix_ms=published_ms, nonce=self._nonces.getrandbits(64))
        except PubsubUsageError as exc:
            raise InvalidDocument(str(exc)) from None
        self._last_published_ms = published_ms
        await trio.lowlevel.checkpoint()
        return message_id.hex()

    async def hand_off(self, message_id: str) -> bool:
        """Wait until a neighbour holds the document ``message_id`` (hex) and the
        frame that carried it was written to that neighbour's link.

        A publication goes to the node's parent in the routing tree whatever
        the interest, so this returns True once the node has a parent and the
        push is written: the document no longer needs this node
        (docs/pubsub.md section 1).  If the links it was pushed on go away
        first, it waits for the next push (the document is retained and pushed
        to the next parent).  With plain broadcast (``routing=False``) any
        neighbour it was pushed to counts.  Bound it with a timeout.
        """
        router = self.driver.router
        mid = bytes.fromhex(message_id)
        while True:
            # Taken before reading the router: the parent's advert, a push, a link
            # going down are all inputs of the router, and each sets it.
            stepped = self.driver.stepped()
            peers = router.handed_to(mid)
            if peers:
                flushed = [await self.driver.flush(peer) for peer in peers]
                if any(flushed):
                    return True
            await stepped.wait()

    def stream_publish(self, name: str, tracks: tuple[Track, ...], *,
                       slots: int = 4) -> AbstractAsyncContextManager[Broadcast]:
        """Broadcast a live stream (``async with``); see ``taiinet.stream.api``."""
        return stream_api.publish(self, name, tracks, slots=slots)

    def stream_watch(self, name: str, *, slots: int = 2,
                     timeout: float = 30.0) -> AbstractAsyncContextManager[Viewing]:
        """Watch (and relay to ``slots`` viewers) a live stream; see ``taiinet.stream.api``."""
        return stream_api.watch(self, name, slots=slots, timeout=timeout)

    async def wait_neighbors(self, count: int = 1) -> None:
        """Wait until at least ``count`` neighbours have a live link."""
        while len(self._neighbors) < count:
            await self._membership_changed.wait()

    async def membership_changed(self) -> None:
        """Wait for the next change of the active view."""
        await self._membership_changed.wait()

    async def wait_joined(self) -> None:
        """Wait until we have a neighbour, or know we are the only peer around."""
        while not self._neighbors and not self._alone:
            await self._membership_changed.wait()

    @property
    def delivered(self) -> int:
        """Messages put on subscription queues (one per matching subscription)."""
        return self._hand_over.delivered

    # -- subscriptions --------------------------------------------------------

    def _add_subscription(self, subscription: Subscription) -> None:
        if self._closed:
            raise NodeClosed("the node is closed")
        key = id(subscription)
        self.driver.subscribe(key, subscription.query)
        self._subscriptions[key] = subscription

    def _remove_subscription(self, subscription: Subscription) -> None:
        key = id(subscription)
        if self._subscriptions.pop(key, None) is not None:
            self.dropped_slow += subscription.dropped
            self.driver.unsubscribe(key)

    # -- tasks ------------------------------------------------------------------

    async def _watch_membership(self) -> None:
        """Follow the linked neighbours by the driver's events (never polled)."""
        while True:
            changed = self.driver.membership_changed
            current = tuple(self.driver.linked_neighbors)
            if current != self._neighbors:
                self._neighbors = current
                self._notify_membership()
            await changed.wait()

    async def _keep_joined(self) -> None:
        """Join through a contact whenever no neighbour has a live link."""
        delay = self.config.join_retry
        while True:
            if not self.driver.linked_neighbors:
                try:
                    contacts = await self.signal.contacts(self.config.contacts)
                except TaiiNetError as exc:  # no home right now: retry later
                    log.info("node: no contacts: %s", exc)
                    contacts = []
                log.debug("node: %d contacts", len(contacts))
                if contacts:
                    await self._join_through([c.peer_id for c in contacts])
                elif not self._alone:
                    self._alone = True
                    self._notify_membership()
            with trio.move_on_after(delay):
                await self.wait_neighbors(1)
            if self._neighbors:
                delay = self.config.join_retry
                while self._neighbors:
                    await self._membership_changed.wait()
            else:
                delay = min(delay * 2, 10 * self.config.join_retry)

    async def _join_through(self, contacts: list[PeerId]) -> None:
        """Dial up to ``join_parallel`` contacts at once; join through the first
        whose link comes up and close the other links.

        A contact may have left since the signaller sampled it (or lie): only a
        link that completed its handshake proves it is there.  The others are
        handed to the overlay as passive entries: nodes that start together
        may join each other, and those entries are how their component finds
        the rest of the mesh (docs/overlay.md, "Join").
        """
        chosen = self._rng.sample(contacts, min(len(contacts), self.config.join_parallel))
        joined = False

        async def attempt(peer_id: PeerId) -> None:
            nonlocal joined
            try:
                connection = await self.links.dial(peer_id)
            except (TaiiNetError, OSError, trio.TooSlowError) as exc:
                log.info("node: contact %s unreachable: %s", peer_id, exc)
                return
            if joined or peer_id in self.driver.neighbors:
                # Never close it alone: the contact has taken it as its newest
                # connection to us and may have written on it (docs/protocol.md
                # 4.3).  The link layer keeps it beside the other connection to
                # a neighbour, and closes the whole link to anyone else.
                self.driver.add_connection(connection)
                self.driver.release(peer_id)
                return
            joined = True
            log.debug("node: joining through %s", peer_id[-6:])
            self.driver.add_connection(connection)
            self.driver.join(peer_id, [c for c in contacts if c != peer_id])
            nursery.cancel_scope.cancel()

        with trio.move_on_after(self.config.join_dial_timeout):
            async with trio.open_nursery() as nursery:
                for peer_id in chosen:
                    nursery.start_soon(attempt, peer_id)

    def _notify_membership(self) -> None:
        self._membership_changed.set()
        self._membership_changed = trio.Event()

    def _close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions.values()):
            subscription._end()


def _since_ms(since: float | None) -> int:
    if since is None:
        return 0
    if not math.isfinite(since) or since < 0:
        raise HistoryUsageError(f"since must be seconds since the epoch, not {since!r}")
    return math.floor(since * 1000)


def _limit(limit: int | None) -> float:
    if limit is None:
        return math.inf
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise HistoryUsageError(f"a history limit is a count >= 0, not {limit!r}")
    return limit


def _all_loopback(urls: Sequence[str]) -> bool:
    hosts = [urlsplit(url).hostname or "" for url in urls]
    return bool(hosts) and all(h == "localhost" or h.startswith("127.") for h in hosts)


def _link_factory(links: str | LinkFactory, signallers: Sequence[str],
                  ssl_context: ssl.SSLContext | None) -> LinkFactory:
    if not isinstance(links, str):
        return links
    if links == "webrtc":
        return webrtc_links(["127.0.0.1"] if _all_loopback(signallers) else None)
    if links == "websocket":
        return websocket_links("127.0.0.1" if _all_loopback(signallers) else "0.0.0.0",
                               ssl_context=ssl_context)
    raise NodeError(f"unknown link kind {links!r}: use 'webrtc' or 'websocket'")


async def _registered_or_untrusted(signal: SignalClient) -> None:
    """Wait until ``signal`` registered, or found every signaller's certificate untrusted."""
    async with trio.open_nursery() as nursery:
        async def first(wait: Callable[[], Awaitable[None]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()
        nursery.start_soon(first, signal.wait_registered)
        nursery.start_soon(first, signal.untrusted.wait)


@unwrap_own_groups
async def open_node(signallers: Sequence[str], identity: Identity | None = None, *,
                    links: str | LinkFactory = "webrtc", config: NodeConfig | None = None,
                    signal_transport: SignalTransport | None = None,
                    rng: random.Random | None = None,
                    seed_store: SeedStore | None = None,
                    ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Node]:
    """Run a node for the duration of an ``async with``; see docs/node.md.

    ``links``: ``"webrtc"`` (default), ``"websocket"`` or a ``LinkFactory``
    (e.g. ``taiinet.node.links.memory_links(network)``).  With only loopback
    signallers, WebRTC offers 127.0.0.1 candidates and WebSocket links listen
    on 127.0.0.1.  Returns once registered with a signaller and joined to the
    overlay (or alone, or after ``config.join_timeout``).  A signaller URL
    that is not ``ws://`` or ``wss://`` raises ``InvalidSignallerUrl`` at once.
    ``ssl_context``: the client context that verifies ``wss://`` signallers and
    WebSocket links (default: the system's CAs; for a private CA,
    ``taiinet.transport.tls.client_context(ca_path)``); when no signaller's
    certificate verifies, ``CertificateUntrusted`` comes at once, without
    waiting for ``register_timeout``.  An exception
    raised in the body comes out as itself, not wrapped in the node's own
    ``ExceptionGroup``s (a group only if the node failed too).
    """
    if not signallers:
        raise NodeError("give at least one signaller URL")
    if signal_transport is None:  # WebSockets: a bad URL fails now, with its reason
        for url in signallers:
            check_signaller_url(url)
        signal_transport = WebSocketSignalTransport(ssl_context=ssl_context)
    elif ssl_context is not None:
        raise NodeError("give ssl_context to your signal_transport, not to open_node")
    identity = identity or Identity.generate()
    config = config or NodeConfig()
    if seed_store is not None and SEEDER_SERVICE not in config.signal.services:
        config = replace(config, signal=replace(
            config.signal, services=(*config.signal.services, SEEDER_SERVICE)))
    rng = rng or random.Random()
    factory = _link_factory(links, signallers, ssl_context)
    meter = LinkMeter()
    async with open_signal_client(identity, signallers, transport=signal_transport,
                                  config=config.signal,
                                  rng=random.Random(rng.getrandbits(64))) as signal:
        with trio.move_on_after(config.register_timeout) as scope:
            await _registered_or_untrusted(signal)
        if signal.untrusted.is_set() and signal.home is None:
            raise CertificateUntrusted(
                f"no signaller's TLS certificate could be verified (last: "
                f"{signal.last_failure}); trust its CA with ssl_context= (CLI: --tls-ca PEM)")
        if scope.cancelled_caught:
            raise NodeError(f"no signaller of {list(signallers)} accepted us within "
                            f"{config.register_timeout} s (last: {signal.last_failure or '-'})")
        async with factory(identity, signal, meter) as link_maker, \
                trio.open_nursery() as nursery:
            node = Node(identity, signal, link_maker, meter, config, rng,
                        keep_envelopes=seed_store is not None)
            await nursery.start(node.history.run)
            await nursery.start(node.streams.run)
            if seed_store is not None:
                node.history.serve(seed_store)
            await nursery.start(node.driver.run)
            nursery.start_soon(link_maker.serve, node.driver.add_connection)
            nursery.start_soon(node._hand_over.run)
            nursery.start_soon(node._watch_membership)
            nursery.start_soon(node._keep_joined)
            with trio.move_on_after(config.join_timeout):
                await node.wait_joined()
            try:
                yield node
            finally:
                node._close()
                nursery.cancel_scope.cancel()
