"""A seeder: a node that keeps the documents matching its queries and serves them.

``open_seeder`` opens a node whose peer record names the ``"seeder"``
service, which keeps the signed envelope of each document it delivers, and
which answers history requests from a ``SeedStore`` (``taiinet.node.history``).
One subscription, the ``$or`` of the seed queries (every document when
there are none), feeds a storing task: it takes what is queued, up to
``store_batch`` documents, and adds them to the store in one transaction in
a worker thread.  The subscription blocks the node's delivery task while the
store is busy (``slow_policy="block"``), so a slow disk delays deliveries
rather than losing documents; past the node's delivery buffer they are
dropped and counted (``NodeStats.dropped``).  A write that fails (a full
disk, an I/O error) is counted in ``store_failures`` and logged, and the
seeder goes on (the next batch is tried again).  With ``max_age``
retention, stored documents are purged every ``purge_interval`` seconds.
"""

from __future__ import annotations

import logging
import math
import random
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from taiinet.history.errors import StoreError
from taiinet.history.store import Entry, SeedStore, StoreFull
from taiinet.node.links import LinkFactory
from taiinet.node.node import Node, NodeConfig, open_node
from taiinet.node.subscription import Message, Subscription
from taiinet.pubsub.query import Query
from taiinet.signal.transport import SignalTransport
from taiinet.wire.identity import Identity

log = logging.getLogger(__name__)

#: Documents added to the store in one transaction at most.
DEFAULT_STORE_BATCH = 512
#: Documents the seeding subscription queues (it blocks past them, see the module doc).
SEED_SUBSCRIPTION_BUFFER = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class SeederStats:
    #: Documents and envelope bytes in the store now.
    held: int
    held_bytes: int
    #: Documents stored since started (new ones; a known id is not counted).
    stored: int
    #: Batches that could not be written (full disk, I/O error), and their documents.
    store_failures: int
    lost: int
    #: Documents removed by retention since started.
    evicted: int
    #: History pages answered, documents in them, requests refused.
    pages_served: int
    documents_served: int
    refused: int


class Seeder:
    """A running seeder; made by ``open_seeder``."""

    def __init__(self, node: Node, store: SeedStore, query: Query, batch: int) -> None:
        self.node = node
        self.store = store
        self.query = query
        self._batch = batch
        self.stored = 0
        self.store_failures = 0
        self.lost = 0
        #: Set after every batch written (tests and reports wait on it).
        self._stored_event = trio.Event()

    def stats(self) -> SeederStats:
        server = self.node.history.server
        return SeederStats(
            held=self.store.count, held_bytes=self.store.bytes, stored=self.stored,
            store_failures=self.store_failures, lost=self.lost, evicted=self.store.evicted,
            pages_served=server.served if server else 0,
            documents_served=server.documents_sent if server else 0,
            refused=server.refused if server else 0)

    async def wait_stored(self, count: int) -> None:
        """Wait until ``count`` documents were stored since started."""
        while self.stored < count:
            await self._stored_event.wait()

    async def next_batch(self) -> None:
        """Wait until the next batch was written, or failed to be."""
        await self._stored_event.wait()

    async def _keep(self, subscription: Subscription) -> None:
        async for first in subscription:
            batch = [first]
            while subscription.pending() and len(batch) < self._batch:
                batch.append(await subscription.receive())
            await self._write(batch)

    async def _write(self, batch: list[Message]) -> None:
        entries = [Entry(message_id=bytes.fromhex(m.id),
                         published_unix_ms=math.floor(m.published_at * 1000),
                         envelope=m.envelope) for m in batch if m.envelope]
        store = self.store
        now_ms = math.floor(time.time() * 1000)
        try:
            self.stored += await trio.to_thread.run_sync(store.add, entries, now_ms)
        except StoreError as exc:
            self.store_failures += 1
            self.lost += len(entries)
            level = logging.WARNING if self.store_failures == 1 or (isinstance(
                exc, StoreFull) and self.store_failures % 100 == 1) else logging.INFO
            log.log(level, "seed: %d documents not stored (%d failures so far): %s",
                    len(entries), self.store_failures, exc)
        self._stored_event.set()
        self._stored_event = trio.Event()

    async def _purge(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            try:
                await trio.to_thread.run_sync(self.store.purge,
                                              math.floor(time.time() * 1000))
            except StoreError as exc:
                log.warning("seed: purge failed: %s", exc)


def seed_query(queries: Sequence[Any]) -> Query:
    """The one query a seeder subscribes with: the ``$or`` of ``queries`` (all: ``{}``)."""
    parsed = [q if isinstance(q, Query) else Query(q) for q in queries]
    if not parsed:
        return Query({})
    if len(parsed) == 1:
        return parsed[0]
    return Query({"$or": [q.to_json() for q in parsed]})


@asynccontextmanager
async def open_seeder(signallers: Sequence[str], store: SeedStore,
                      queries: Sequence[Any] = (), identity: Identity | None = None, *,
                      links: str | LinkFactory = "webrtc", config: NodeConfig | None = None,
                      signal_transport: SignalTransport | None = None,
                      rng: random.Random | None = None,
                      store_batch: int = DEFAULT_STORE_BATCH,
                      ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Seeder]:
    """Run a seeder for the duration of an ``async with`` (see the module docstring).

    ``ssl_context``: as for ``open_node`` (verifies ``wss://`` signallers and links).

    ``store`` stays open after it (the caller opened it, the caller closes it).
    """
    query = seed_query(queries)
    async with open_node(signallers, identity, links=links, config=config,
                         signal_transport=signal_transport, rng=rng,
                         seed_store=store, ssl_context=ssl_context) as node, \
            node.subscribe(query, buffer=SEED_SUBSCRIPTION_BUFFER,
                           slow_policy="block") as subscription, \
            trio.open_nursery() as nursery:
        seeder = Seeder(node, store, query, store_batch)
        nursery.start_soon(seeder._keep, subscription)
        max_age = store.retention.max_age
        if max_age != math.inf:
            nursery.start_soon(seeder._purge, min(60.0, max(max_age / 10, 0.5)))
        try:
            yield seeder
        finally:
            nursery.cancel_scope.cancel()
