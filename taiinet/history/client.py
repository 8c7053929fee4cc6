# taiinet: sans-io core
"""The subscriber's side of the history protocol: one fetch from several seeders.

Theory of operation
-------------------
A ``HistoryFetch`` asks each of its seeders (a *source*) for pages of
stored documents matching one query, published at or after ``since``,
in key order (``Key`` = published time, message id).  A source has at most
one request out; its *frontier* is the key it has answered up to (a page's
``cursor``; past every key once it says ``more = False``).  Every page is
verified on receipt: each envelope's signature (the injected
``DocumentCodec``), and that it matches the query, is published at or after
``since``, follows the request's key and its predecessor, and that a page
with nothing in it moves the cursor on.  A page that breaks any of these
ends that source (``SourceFailed(violation=True)``) and none of its
documents are used; what the source sent before stays (each was verified).

The sources' documents are merged: a document is *ready* once its key is at
or below every live source's frontier (no source can still send an earlier
one), so documents come out in key order, each once (two seeders' copies of
a document have the same id, hence the same key; the second is dropped).
A source that fails, refuses ("busy" and "rate" are retried after
``retry_delay``, at most ``max_retries`` times) or stays silent for
``page_timeout`` ends; the others go on: a withheld document is covered by
asking several seeders.  With a ``limit``, the first ``limit`` documents
come out and the fetch ends.

A source's first page asks for ``first_page_documents``, each later one four
times more, up to ``page_documents``: the first documents come back soon,
the rest in large pages.

Bounds: the documents held (merging plus ready, not yet taken) stop new
requests at ``max_buffered``, except from the source with the lowest
frontier, the only one whose pages can release held documents; a reader
that takes nothing stops every request (call ``pump`` after ``take``).
Timers are values (``SetFetchTimer``), never cancelled; a stale one is ignored.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from taiinet.history.errors import HistoryUsageError
from taiinet.history.messages import (
    MAX_PAGE_DOCUMENTS,
    START,
    HistoryPage,
    HistoryRefused,
    HistoryRequest,
    Key,
)
from taiinet.history.server import SendHistory
from taiinet.pubsub.documents import DocumentCodec
from taiinet.pubsub.errors import RejectedDocument
from taiinet.pubsub.query import Query
from taiinet.wire.peer_id import PeerId

#: A key after every document: a finished source's frontier.
END: Key = (1 << 64, b"")
#: Refusal reasons after which a source is asked again.
RETRIED_REASONS = frozenset({"busy", "rate"})


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryFetchConfig:
    """Bounds of one fetch: documents asked per page (``page_documents``), seconds a
    page may take (``page_timeout``), documents held before sources ahead wait
    (``max_buffered``), retries of a busy seeder (``max_retries``, ``retry_delay`` s)."""

    page_documents: int = MAX_PAGE_DOCUMENTS
    #: Documents asked in a source's first page; each later page asks four times
    #: more, up to ``page_documents`` (a small first page comes back sooner: a
    #: seeder scans until it fills the page).
    first_page_documents: int = 16
    page_timeout: float = 10.0
    max_buffered: int = 4 * MAX_PAGE_DOCUMENTS
    max_retries: int = 3
    retry_delay: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.first_page_documents <= self.page_documents <= MAX_PAGE_DOCUMENTS:
            raise HistoryUsageError(f"1 <= first_page_documents <= page_documents <= "
                             f"{MAX_PAGE_DOCUMENTS}")
        if self.page_timeout <= 0 or self.max_buffered < 1 or self.max_retries < 0 \
                or self.retry_delay <= 0:
            raise HistoryUsageError("history fetch bounds must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryItem:
    """A stored document, verified."""

    key: Key
    message_id: bytes
    publisher: str
    document: Any
    published_unix_ms: int
    #: Envelope bytes and decoded values (what it costs in memory).
    size: int
    values: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchTimer:
    """A page timeout (``retry=False``) or a retry after a refusal, for one source."""

    peer: PeerId
    request_id: int
    retry: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SetFetchTimer:
    at: float
    timer: FetchTimer


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFailed:
    """A seeder stopped answering this fetch; ``violation``: it broke the protocol."""

    peer: PeerId
    reason: str
    violation: bool = False


FetchAction = SendHistory | SetFetchTimer | SourceFailed


@dataclass(slots=True)
class _Source:
    peer: PeerId
    frontier: Key = START
    finished: bool = False
    outstanding: HistoryRequest | None = None
    waiting_retry: bool = False
    retries: int = 0
    documents: int = 0
    pages: int = 0


@dataclass(slots=True)
class _Merge:
    heap: list[tuple[Key, HistoryItem]] = field(default_factory=list)
    ids: set[bytes] = field(default_factory=set)
    ready: list[HistoryItem] = field(default_factory=list)
    last: Key = START


class HistoryFetch:
    """Stored documents matching ``query`` from ``seeders``, merged (module docstring)."""

    def __init__(self, query: Query, seeders: Sequence[PeerId], documents: DocumentCodec,
                 new_request_id: Callable[[], int], *, since_unix_ms: int = 0,
                 limit: float = math.inf, config: HistoryFetchConfig | None = None) -> None:
        if limit < 0 or since_unix_ms < 0:
            raise HistoryUsageError("limit and since must not be negative")
        self.query = query
        self.since_unix_ms = since_unix_ms
        self.limit = limit
        self.config = config or HistoryFetchConfig()
        self._documents = documents
        self._new_request_id = new_request_id
        self._sources = {peer: _Source(peer) for peer in seeders}
        self._merge = _Merge()
        #: Documents handed out by ``take``.
        self.taken = 0
        #: Documents released to ``ready`` (``taken`` plus those waiting).
        self._released = 0
        #: Sources that ended early (failed, refused, silent), by peer id: why.
        self.failures: dict[PeerId, str] = {}
        if limit == 0:
            for source in self._sources.values():
                source.finished = True

    # -- inputs ---------------------------------------------------------------

    def start(self, now: float) -> list[FetchAction]:
        return self.pump(now)

    def pump(self, now: float) -> list[FetchAction]:
        """Ask the sources that may go on for their next page (after ``take``)."""
        out: list[FetchAction] = []
        lowest = self._lowest_frontier()
        held = len(self._merge.heap) + len(self._merge.ready)
        for source in self._sources.values():
            if source.finished or source.outstanding is not None or source.waiting_retry:
                continue
            if len(self._merge.ready) >= self.config.max_buffered:
                break
            if held >= self.config.max_buffered and source.frontier != lowest:
                continue
            out += self._ask(source, now)
        return out

    def handle_page(self, peer: PeerId, page: HistoryPage, now: float) -> list[FetchAction]:
        source = self._sources.get(peer)
        if source is None or source.outstanding is None \
                or source.outstanding.request_id != page.request_id:
            return []  # stale (timed out) or not ours
        request = source.outstanding
        source.outstanding = None
        try:
            items, frontier = self._verify(request, page)
        except _Broken as exc:
            return self._fail(source, str(exc), violation=True, now=now)
        source.frontier = frontier
        source.documents += len(items)
        if frontier == END:
            source.finished = True
        merge = self._merge
        for item in items:
            if item.message_id in merge.ids or item.key <= merge.last:
                continue
            merge.ids.add(item.message_id)
            heapq.heappush(merge.heap, (item.key, item))
        self._release()
        return self.pump(now)

    def handle_refused(self, peer: PeerId, refused: HistoryRefused,
                       now: float) -> list[FetchAction]:
        source = self._sources.get(peer)
        if source is None or source.outstanding is None \
                or source.outstanding.request_id != refused.request_id:
            return []
        source.outstanding = None
        if refused.reason in RETRIED_REASONS and source.retries < self.config.max_retries:
            source.retries += 1
            source.waiting_retry = True
            return [SetFetchTimer(at=now + self.config.retry_delay * source.retries,
                                  timer=FetchTimer(peer=peer, request_id=refused.request_id,
                                                   retry=True))]
        return self._fail(source, f"refused: {refused.reason}", violation=False, now=now)

    def handle_timer(self, timer: FetchTimer, now: float) -> list[FetchAction]:
        source = self._sources.get(timer.peer)
        if source is None or source.finished:
            return []
        if timer.retry:
            if not source.waiting_retry:
                return []
            source.waiting_retry = False
            return self.pump(now)
        if source.outstanding is not None and source.outstanding.request_id == timer.request_id:
            source.outstanding = None
            return self._fail(source, "timed out", violation=False, now=now)
        return []

    def take(self, count: int | None = None) -> list[HistoryItem]:
        """Documents ready, in key order (at most ``count``); then call ``pump``."""
        ready = self._merge.ready
        n = len(ready) if count is None else min(count, len(ready))
        taken, self._merge.ready = ready[:n], ready[n:]
        self.taken += len(taken)
        return taken

    # -- state ----------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Every document this fetch will yield has been taken."""
        return not self._merge.ready and (self._released >= self.limit or (
            not self._merge.heap and all(s.finished for s in self._sources.values())))

    @property
    def sources(self) -> int:
        return len(self._sources)

    def answered(self) -> list[PeerId]:
        """Sources that finished without failing."""
        return [s.peer for s in self._sources.values()
                if s.finished and s.peer not in self.failures]

    # -- internals --------------------------------------------------------------

    def _ask(self, source: _Source, now: float) -> list[FetchAction]:
        config = self.config
        page = min(config.page_documents, config.first_page_documents * 4 ** min(source.pages, 8))
        source.pages += 1
        if self.limit != math.inf:
            page = max(1, min(page, int(self.limit) - self._released))
        request = HistoryRequest(request_id=self._new_request_id(), query=self.query,
                                 since_unix_ms=self.since_unix_ms,
                                 after=source.frontier, limit=page)
        source.outstanding = request
        return [SendHistory(peer=source.peer, message=request),
                SetFetchTimer(at=now + self.config.page_timeout,
                              timer=FetchTimer(peer=source.peer,
                                               request_id=request.request_id))]

    def _verify(self, request: HistoryRequest, page: HistoryPage) -> tuple[list[HistoryItem], Key]:
        if len(page.documents) > request.limit:
            raise _Broken(f"{len(page.documents)} documents for a page of {request.limit}")
        start = max(request.after, (request.since_unix_ms, b""))
        previous = start
        items: list[HistoryItem] = []
        for envelope in page.documents:
            message_id = hashlib.sha256(envelope).digest()
            try:
                opened = self._documents.open(envelope)
            except RejectedDocument as exc:
                raise _Broken(f"a stored document does not verify: {exc}") from None
            key = (opened.published_unix_ms, message_id)
            if key <= previous:
                raise _Broken("documents out of order or before the request's key")
            if not self.query.matches(opened.document):
                raise _Broken("a document does not match the query")
            previous = key
            items.append(HistoryItem(key=key, message_id=message_id,
                                     publisher=opened.publisher, document=opened.document,
                                     published_unix_ms=opened.published_unix_ms,
                                     size=len(envelope), values=opened.values))
        if not page.more:
            return items, END
        if page.cursor < previous or (not items and page.cursor <= start):
            raise _Broken("the page's cursor does not move on")
        return items, page.cursor

    def _fail(self, source: _Source, reason: str, *, violation: bool,
              now: float) -> list[FetchAction]:
        source.finished = True
        self.failures[source.peer] = reason
        self._release()
        return [SourceFailed(peer=source.peer, reason=reason, violation=violation),
                *self.pump(now)]

    def _lowest_frontier(self) -> Key:
        live = [s.frontier for s in self._sources.values() if not s.finished]
        return min(live) if live else END

    def _release(self) -> None:
        merge = self._merge
        bound = self._lowest_frontier()
        while merge.heap and merge.heap[0][0] <= bound and self._released < self.limit:
            key, item = heapq.heappop(merge.heap)
            merge.ids.discard(item.message_id)
            merge.last = key
            merge.ready.append(item)
            self._released += 1
        if self._released >= self.limit:
            merge.heap.clear()
            merge.ids.clear()
            for source in self._sources.values():
                source.finished = True


class _Broken(Exception):
    """A page breaks the protocol (internal: becomes ``SourceFailed``)."""
