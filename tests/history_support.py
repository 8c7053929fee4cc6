"""Helpers for the history tests: unsigned documents and an in-memory seeder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from taiinet.history.messages import HistoryPage, HistoryRequest, Key
from taiinet.pubsub.documents import SignedDocuments, UnsignedDocuments
from taiinet.wire.identity import Identity

CODEC = UnsignedDocuments("publisher")
#: Signed documents, as a store holds them.
SIGNED = SignedDocuments(Identity.from_seed(b"s" * 32))


def signed_envelope(document: Any, published_ms: int, nonce: int = 0) -> bytes:
    return SIGNED.seal(document, 60 * 1024, published_unix_ms=published_ms, nonce=nonce)


def envelope(document: Any, published_ms: int, nonce: int = 0) -> bytes:
    return CODEC.seal(document, 60 * 1024, published_unix_ms=published_ms, nonce=nonce)


def key_of(data: bytes, published_ms: int) -> Key:
    return (published_ms, hashlib.sha256(data).digest())


@dataclass
class MemorySeeder:
    """Answers requests from a list of (key, envelope, document), as a store would;
    ``scan`` bounds the rows one page reads (so pages may come back empty)."""

    rows: list[tuple[Key, bytes, Any]] = field(default_factory=list)
    scan: int = 1_000_000

    def add(self, document: Any, published_ms: int, nonce: int = 0) -> bytes:
        data = envelope(document, published_ms, nonce)
        key = key_of(data, published_ms)
        if all(k != key for k, _d, _doc in self.rows):
            self.rows.append((key, data, document))
            self.rows.sort(key=lambda row: row[0])
        return data

    def answer(self, request: HistoryRequest) -> HistoryPage:
        start = max(request.after, (request.since_unix_ms, b""))
        out: list[bytes] = []
        cursor = start
        scanned = 0
        for key, data, document in self.rows:
            if key <= start:
                continue
            if scanned >= self.scan:
                return HistoryPage(request_id=request.request_id, documents=tuple(out),
                                   more=True, cursor=cursor)
            scanned += 1
            if request.query.matches(document):
                out.append(data)
                if len(out) >= request.limit:
                    return HistoryPage(request_id=request.request_id, documents=tuple(out),
                                       more=True, cursor=key)
            cursor = key
        return HistoryPage(request_id=request.request_id, documents=tuple(out), more=False,
                           cursor=cursor)
