"""The trio driver of the history protocol inside a node (docs/seed.md).

Theory of operation
-------------------
``HistoryService`` owns the node's side of the protocol:

* history frames reach it from the node's ``RoutedDriver`` (its links are the
  overlay's: a seeder that is not a neighbour is dialed like a HyParView
  exchange, and released when the fetch ends); it decodes them here
  (``taiinet.history.codec``); a malformed one drops the link;
* on a seeder (``serve(store)``), requests go to the ``HistoryServer`` core;
  each ``RunQuery`` reads one page from the ``SeedStore`` in a worker thread
  (``trio.to_thread.run_sync``), and the page goes back to the requester;
* a fetch (``open_fetch``) runs one ``HistoryFetch`` core in its reader's
  task: pages and refusals are routed to it by (peer, request id), timers
  are kept in a small heap, and the reader pulls ``next_batch()``; nothing
  runs while nobody reads;
* seeders are found in the peer records the signallers hand out as
  contacts: a seeder's record names the ``"seeder"`` service (signed by the
  seeder, so no signaller can make a peer a seeder).
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from taiinet.errors import TaiiNetError
from taiinet.history.client import (
    FetchAction,
    FetchTimer,
    HistoryFetch,
    HistoryFetchConfig,
    HistoryItem,
    SetFetchTimer,
    SourceFailed,
)
from taiinet.history.codec import decode_history_frame, encode_history_frame
from taiinet.history.errors import HistoryUsageError, StoreError
from taiinet.history.messages import HistoryPage, HistoryRefused, HistoryRequest
from taiinet.history.server import (
    DropPeer,
    HistoryServer,
    HistoryServerConfig,
    RunQuery,
    SendHistory,
    ServerAction,
)
from taiinet.history.store import SeedStore
from taiinet.node.routed import RoutedDriver
from taiinet.node.subscription import Message
from taiinet.pubsub import SignedDocuments
from taiinet.pubsub.query import Query
from taiinet.pubsub.query.limits import DECODED_VALUE_BYTES
from taiinet.signal.client import SignalClient
from taiinet.signal.codec import MAX_CONTACTS
from taiinet.signal.records import SEEDER_SERVICE
from taiinet.wire.peer_id import PeerId

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryConfig:
    """How a node reads history: at most ``max_seeders`` seeders asked per fetch (at least
    two when there are two: a seeder may withhold), ``max_fetches`` fetches at once, and
    the fetch core's bounds; how a seeder serves it (``server``)."""

    max_seeders: int = 3
    max_fetches: int = 16
    fetch: HistoryFetchConfig = field(default_factory=HistoryFetchConfig)
    server: HistoryServerConfig = field(default_factory=HistoryServerConfig)

    def __post_init__(self) -> None:
        if self.max_seeders < 1 or self.max_fetches < 1:
            raise HistoryUsageError("max_seeders and max_fetches must be at least 1")


def item_message(item: HistoryItem, received_at: float) -> Message:
    """A stored document as a subscription ``Message`` (``stored=True``, 0 hops)."""
    return Message(data=item.document, publisher=item.publisher, id=item.message_id.hex(),
                   received_at=received_at, published_at=item.published_unix_ms / 1000,
                   hops=0, size=item.size + item.values * DECODED_VALUE_BYTES, stored=True)


class HistoryBusy(TaiiNetError):
    """``max_fetches`` history fetches are running already: close one first."""


class HistoryService:
    """A node's history side: fetches, and serving a store on a seeder."""

    def __init__(self, driver: RoutedDriver, signal: SignalClient, config: HistoryConfig,
                 rng_seed: int) -> None:
        self._driver = driver
        self._signal = signal
        self.config = config
        self._documents = SignedDocuments()
        self._routes: dict[tuple[PeerId, int], Fetch] = {}
        self._next_request_id = rng_seed & 0xFFFF_FFFF
        self._fetches = 0
        self._nursery: trio.Nursery | None = None
        self.server: HistoryServer | None = None
        self.store: SeedStore | None = None
        #: Store reads that failed (I/O), pages of stored documents served.
        self.store_failures = 0
        #: The seeders the last ``find_seeders`` found.
        self.last_seeders: list[PeerId] = []
        driver.history_frames = self.handle_frame

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def serve(self, store: SeedStore) -> None:
        """Answer history requests from ``store`` (a seeder)."""
        self.store = store
        self.server = HistoryServer(self.config.server)

    # -- frames ---------------------------------------------------------------

    def handle_frame(self, peer: PeerId, data: bytes) -> None:
        """A history frame from ``peer``; raises ``HistoryDecodeError`` if malformed."""
        message = decode_history_frame(data)
        if isinstance(message, HistoryRequest):
            if self.server is None:
                self._send(peer, HistoryRefused(request_id=message.request_id,
                                                reason="not a seeder"))
                return
            self._apply_server(self.server.handle_request(peer, message, trio.current_time()))
        elif message is not None:
            fetch = self._routes.pop((peer, message.request_id), None)
            if fetch is not None:
                fetch.deliver(peer, message)

    def _send(self, peer: PeerId, message: HistoryRequest | HistoryPage | HistoryRefused,
              ) -> None:
        self._driver.send_frame(peer, encode_history_frame(message))

    # -- serving ----------------------------------------------------------------

    def _apply_server(self, actions: list[ServerAction]) -> None:
        for action in actions:
            if isinstance(action, SendHistory):
                self._send(action.peer, action.message)
            elif isinstance(action, RunQuery):
                if self._nursery is not None:
                    self._nursery.start_soon(self._run_query, action.peer, action.request)
            elif isinstance(action, DropPeer):
                log.warning("history: dropping %s: %s", action.peer, action.reason)
                self._driver.drop(action.peer)

    async def _run_query(self, peer: PeerId, request: HistoryRequest) -> None:
        assert self.store is not None and self.server is not None
        store = self.store
        try:
            page = await trio.to_thread.run_sync(
                lambda: store.page(request.query, since_unix_ms=request.since_unix_ms,
                                   after=request.after, limit=request.limit))
        except StoreError as exc:
            self.store_failures += 1
            log.warning("history: %s", exc)
            self._apply_server(self.server.query_failed(peer, request, "store error"))
            return
        self._apply_server(self.server.query_done(peer, request, page.envelopes, page.more,
                                                  page.cursor))

    # -- fetching ---------------------------------------------------------------

    async def find_seeders(self) -> list[PeerId]:
        """Seeders the signallers hand out for ``GetContacts{service="seeder"}``
        (at most ``max_seeders``)."""
        try:
            records = await self._signal.contacts(MAX_CONTACTS, service=SEEDER_SERVICE)
        except TaiiNetError as exc:
            log.info("history: no contacts: %s", exc)
            return []
        # In the signaller's order: seeders linked to our home first, then a
        # random sample of the mesh's (so subscribers spread over the seeders).
        found = list(dict.fromkeys(r.peer_id for r in records if SEEDER_SERVICE in r.services))
        self.last_seeders = found[:self.config.max_seeders]
        if not found:
            log.warning("history: no seeder found among %d peers: no stored documents",
                        len(records))
        return self.last_seeders

    def open_fetch(self, query: Query, seeders: Sequence[PeerId], *, since_unix_ms: int = 0,
                   limit: float = math.inf) -> Fetch:
        """A fetch of stored documents; read it with ``next_batch``, then ``close`` it."""
        if self._fetches >= self.config.max_fetches:
            raise HistoryBusy(f"{self.config.max_fetches} history fetches are open already")
        self._fetches += 1
        core = HistoryFetch(query, seeders, self._documents, self._new_request_id,
                            since_unix_ms=since_unix_ms, limit=limit, config=self.config.fetch)
        return Fetch(self, core)

    def _new_request_id(self) -> int:
        self._next_request_id = (self._next_request_id + 1) & 0xFFFF_FFFF_FFFF_FFFF
        return self._next_request_id

    def _route(self, peer: PeerId, request_id: int, fetch: Fetch) -> None:
        self._routes[(peer, request_id)] = fetch

    def _closed(self, fetch: Fetch, peers: Sequence[PeerId]) -> None:
        self._fetches -= 1
        for key in [k for k, f in self._routes.items() if f is fetch]:
            del self._routes[key]
        for peer in peers:
            self._driver.release(peer)


class Fetch:
    """One running ``HistoryFetch``, driven by its reader (``next_batch``)."""

    def __init__(self, service: HistoryService, core: HistoryFetch) -> None:
        self._service = service
        self.core = core
        self._inbox: deque[tuple[PeerId, HistoryPage | HistoryRefused]] = deque()
        self._wake = trio.Event()
        self._timers: list[tuple[float, int, FetchTimer]] = []
        self._timer_seq = 0
        self._started = False
        self._closed = False
        self._peers: set[PeerId] = set()

    def deliver(self, peer: PeerId, message: HistoryPage | HistoryRefused) -> None:
        self._inbox.append((peer, message))
        self._wake.set()

    async def next_batch(self) -> list[HistoryItem]:
        """The next documents in key order; ``[]`` once the fetch is over."""
        core = self.core
        if not self._started:
            self._started = True
            self._apply(core.start(trio.current_time()))
        while not self._closed:
            items = core.take()
            if items:
                self._apply(core.pump(trio.current_time()))
                return items
            if core.done:
                self.close()
                break
            deadline = self._timers[0][0] if self._timers else math.inf
            with trio.move_on_at(deadline):
                await self._wake.wait()
            self._wake = trio.Event()
            self._process(trio.current_time())
        await trio.lowlevel.checkpoint()
        return []

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._service._closed(self, sorted(self._peers))

    def _process(self, now: float) -> None:
        core = self.core
        while self._inbox:
            peer, message = self._inbox.popleft()
            if isinstance(message, HistoryPage):
                self._apply(core.handle_page(peer, message, now))
            else:
                self._apply(core.handle_refused(peer, message, now))
        while self._timers and self._timers[0][0] <= now:
            _at, _seq, timer = heapq.heappop(self._timers)
            self._apply(core.handle_timer(timer, now))

    def _apply(self, actions: list[FetchAction]) -> None:
        service = self._service
        for action in actions:
            if isinstance(action, SendHistory):
                peer = action.peer
                self._peers.add(peer)
                service._route(peer, action.message.request_id, self)
                service._send(peer, action.message)
            elif isinstance(action, SetFetchTimer):
                self._timer_seq += 1
                heapq.heappush(self._timers, (action.at, self._timer_seq, action.timer))
            elif isinstance(action, SourceFailed):
                log.log(logging.WARNING if action.violation else logging.INFO,
                        "history: seeder %s: %s", action.peer, action.reason)
                if action.violation:
                    service._driver.drop(action.peer)
