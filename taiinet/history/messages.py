# taiinet: sans-io core
"""Domain messages of the history protocol, and its limits (wire form: history.proto).

Documents are ordered by ``Key`` = (published_unix_ms, message id): the
publisher's signed clock, ties broken by the id (SHA-256 of the envelope).
"""

from __future__ import annotations

from dataclasses import dataclass

from taiinet.overlay.codec import MAX_FRAME_SIZE
from taiinet.overlay.messages import MAX_PAYLOAD_SIZE as MAX_PAYLOAD_SIZE
from taiinet.pubsub.query import Query

#: Documents one page holds at most (``HistoryRequest.limit`` is 1..this).
MAX_PAGE_DOCUMENTS = 256
#: Envelope bytes one page holds at most (a page always takes its first
#: document, which is at most ``MAX_PAYLOAD_SIZE`` itself): with the encoding's
#: few bytes per document, a page fits one overlay link frame (``MAX_FRAME_SIZE``).
MAX_PAGE_BYTES = 56 * 1024
#: Bytes of a link frame holding a history message, at most (an overlay link's frame limit).
MAX_HISTORY_MESSAGE_BYTES = MAX_FRAME_SIZE
#: Length of a message id (SHA-256).
ID_BYTES = 32
#: Characters of a refusal reason kept.
MAX_REASON_CHARS = 200

#: (published_unix_ms, message id): the order of stored documents.
Key = tuple[int, bytes]
#: The key before every document.
START: Key = (0, b"")


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRequest:
    """Ask for the next page: documents matching ``query``, published at or after
    ``since_unix_ms``, with a key strictly after ``after``."""

    request_id: int
    query: Query
    since_unix_ms: int = 0
    after: Key = START
    limit: int = MAX_PAGE_DOCUMENTS


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPage:
    """One page of signed envelopes in key order; ``cursor``: where the scan stopped."""

    request_id: int
    documents: tuple[bytes, ...]
    more: bool
    cursor: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRefused:
    """The request was not served; ``reason`` says why (busy, rate, not a seeder)."""

    request_id: int
    reason: str


HistoryMessage = HistoryRequest | HistoryPage | HistoryRefused
