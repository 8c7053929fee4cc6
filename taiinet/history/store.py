"""The seed store: signed document envelopes in one SQLite file (the standard library's
``sqlite3``), WAL mode.

Theory of operation
-------------------
One table, ``documents(seq, id, published_ms, stored_ms, envelope)``: ``seq``
is the arrival order (retention removes the lowest first), ``id`` the message
id (unique: a document is stored once), ``published_ms`` the publisher's
signed clock; an index on ``(published_ms, id)`` serves history pages in key
order from any key (keyset paging, see ``taiinet.history.messages``).  Only
envelopes verified by the node are stored; they are matched on the way out
with the project's query matcher, after being decoded again (not re-verified).

The file is marked with ``PRAGMA application_id`` (``APPLICATION_ID``) and
its format version with ``PRAGMA user_version``: opening a file that is not
SQLite, another program's database or a newer format raises ``StoreError``
with a sentence, never a traceback.  WAL with ``synchronous=NORMAL``: a
committed batch survives the process being killed (not a power cut).

Retention, checked after each batch and by ``purge``: at most ``max_docs``
documents and ``max_bytes`` envelope bytes, none stored more than
``max_age`` seconds ago (the seeder's receipt time, not the publisher's
claim, so a publisher cannot make its documents outlive others); the oldest
stored go first.  A full disk raises ``StoreFull`` and changes nothing.

Every method is blocking I/O: the node calls them in a worker thread
(``trio.to_thread.run_sync``), one at a time (the store holds a lock).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from taiinet.history.codec import stored_document
from taiinet.history.errors import HistoryDecodeError, StoreError
from taiinet.history.messages import MAX_PAGE_BYTES, MAX_PAGE_DOCUMENTS, Key
from taiinet.pubsub.query import Query

#: ``PRAGMA application_id`` of a seed database ("TaiN").
APPLICATION_ID = 0x5461694E
#: ``PRAGMA user_version``: the format this code reads and writes.
FORMAT_VERSION = 1
#: Rows one page request scans at most (a page may come back short, with ``more``).
MAX_SCAN_ROWS = 20_000
#: Rows deleted per statement when retention removes documents.
EVICT_BATCH = 1000

_SCHEMA = """
CREATE TABLE documents (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    published_ms INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX documents_by_key ON documents (published_ms, id);
CREATE INDEX documents_by_stored ON documents (stored_ms);
"""


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full: the batch was not stored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """What a store keeps: at most ``max_docs`` documents, ``max_bytes`` envelope
    bytes, each for at most ``max_age`` seconds after it was stored."""

    max_docs: int = 1_000_000
    max_bytes: int = 1 << 30
    max_age: float = math.inf

    def __post_init__(self) -> None:
        if self.max_docs < 1 or self.max_bytes < 1 or not self.max_age > 0:
            raise StoreError("retention limits must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A verified publication to store."""

    message_id: bytes
    published_unix_ms: int
    envelope: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    envelopes: tuple[bytes, ...]
    more: bool
    cursor: Key
    #: Rows read to make it.
    scanned: int


class SeedStore:
    """Stored envelopes in one SQLite file; ``open`` it, ``close`` it."""

    def __init__(self, connection: sqlite3.Connection, path: str, retention: Retention) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self.path = path
        self.retention = retention
        row = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM documents").fetchone()
        #: Documents and envelope bytes held now.
        self.count: int = row[0]
        self.bytes: int = row[1]
        #: Documents removed by retention since opened.
        self.evicted = 0

    @classmethod
    def open(cls, path: str | Path, retention: Retention | None = None) -> SeedStore:
        """Open (or create) the store at ``path``; ``StoreError`` if it cannot be one."""
        name = str(path)
        try:
            db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the seed database {name}: {exc}") from None
        try:
            _prepare(db, name)
            return cls(db, name, retention or Retention())
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(f"{name} is not a usable seed database ({exc}): give --db a new "
                             "file or one this program made") from None
        except StoreError:
            db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, entries: Sequence[Entry], now_unix_ms: int) -> int:
        """Store ``entries`` in one transaction (a known id is skipped); return how
        many were new.  Applies the retention.  ``StoreFull``/``StoreError`` on failure."""
        with self._lock:
            try:
                return self._add(entries, now_unix_ms)
            except sqlite3.OperationalError as exc:
                self._rollback()
                if "full" in str(exc):
                    raise StoreFull(f"seed database {self.path} is full: {exc}") from None
                raise StoreError(f"cannot store in {self.path}: {exc}") from None
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise StoreError(f"cannot store in {self.path}: {exc}") from None

    def page(self, query: Query, *, since_unix_ms: int = 0, after: Key = (0, b""),
             limit: int = MAX_PAGE_DOCUMENTS, max_bytes: int = MAX_PAGE_BYTES,
             max_scan: int = MAX_SCAN_ROWS) -> Page:
        """Stored envelopes matching ``query`` in key order, after ``after``, published at
        or after ``since_unix_ms``: at most ``limit`` and ``max_bytes`` (the first always),
        reading at most ``max_scan`` rows."""
        start = max(after, (since_unix_ms, b""))
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT published_ms, id, envelope FROM documents "
                    "WHERE (published_ms, id) > (?, ?) ORDER BY published_ms, id LIMIT ?",
                    (start[0], start[1], max_scan))
                return _fill_page(rows, query, start, limit, max_bytes, max_scan)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot read {self.path}: {exc}") from None

    def purge(self, now_unix_ms: int) -> int:
        """Remove what retention no longer allows; return how many were removed."""
        with self._lock:
            try:
                before = self.evicted
                self._begin()
                self._evict(now_unix_ms)
                self._db.execute("COMMIT")
                return self.evicted - before
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise StoreError(f"cannot purge {self.path}: {exc}") from None

    # -- internals -----------------------------------------------------------

    def _begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM documents").fetchone()
        self.count, self.bytes = row

    def _add(self, entries: Sequence[Entry], now_unix_ms: int) -> int:
        self._begin()
        added = 0
        added_bytes = 0
        for entry in entries:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO documents (id, published_ms, stored_ms, envelope) "
                "VALUES (?, ?, ?, ?)",
                (entry.message_id, entry.published_unix_ms, now_unix_ms, entry.envelope))
            if cursor.rowcount > 0:
                added += 1
                added_bytes += len(entry.envelope)
        self.count += added
        self.bytes += added_bytes
        self._evict(now_unix_ms)
        self._db.execute("COMMIT")
        return added

    def _evict(self, now_unix_ms: int) -> None:
        retention = self.retention
        if retention.max_age != math.inf:
            oldest = now_unix_ms - int(retention.max_age * 1000)
            self._delete_up_to(self._db.execute(
                "SELECT MAX(seq) FROM documents WHERE stored_ms < ?", (oldest,)).fetchone()[0])
        while self.count > retention.max_docs or self.bytes > retention.max_bytes:
            excess_docs = self.count - retention.max_docs
            excess_bytes = self.bytes - retention.max_bytes
            last = None
            for seq, size in self._db.execute(
                    "SELECT seq, LENGTH(envelope) FROM documents ORDER BY seq LIMIT ?",
                    (EVICT_BATCH,)):
                if excess_docs <= 0 and excess_bytes <= 0:
                    break
                last = seq
                excess_docs -= 1
                excess_bytes -= size
            if last is None:
                break
            self._delete_up_to(last)

    def _delete_up_to(self, seq: int | None) -> None:
        if seq is None:
            return
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM documents WHERE seq <= ?",
            (seq,)).fetchone()
        self._db.execute("DELETE FROM documents WHERE seq <= ?", (seq,))
        self.count -= count
        self.bytes -= size
        self.evicted += count


def _prepare(db: sqlite3.Connection, name: str) -> None:
    """Check the file is ours (or empty, then make it ours), and switch to WAL."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    if application_id != APPLICATION_ID:
        if tables or application_id:
            raise StoreError(f"{name} is another program's SQLite database, not a seed "
                             "database: give --db a new file")
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA application_id={APPLICATION_ID}; "
                         f"PRAGMA user_version={FORMAT_VERSION}; COMMIT;")
    elif version != FORMAT_VERSION:
        raise StoreError(f"{name} is a seed database of format {version}; this version "
                         f"reads format {FORMAT_VERSION}")
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"{name}: cannot use WAL mode (journal mode {mode})")
    db.execute("PRAGMA synchronous=NORMAL")


def _fill_page(rows: sqlite3.Cursor, query: Query, start: Key, limit: int, max_bytes: int,
               max_scan: int) -> Page:
    envelopes: list[bytes] = []
    size = 0
    cursor = start
    scanned = 0
    for published_ms, message_id, envelope in rows:
        scanned += 1
        try:
            document = stored_document(envelope)
        except HistoryDecodeError:
            cursor = (published_ms, message_id)
            continue
        if query.matches(document):
            if envelopes and size + len(envelope) > max_bytes:
                return Page(envelopes=tuple(envelopes), more=True, cursor=cursor,
                            scanned=scanned)
            envelopes.append(envelope)
            size += len(envelope)
            if len(envelopes) >= limit:
                return Page(envelopes=tuple(envelopes), more=True,
                            cursor=(published_ms, message_id), scanned=scanned)
        cursor = (published_ms, message_id)
    return Page(envelopes=tuple(envelopes), more=scanned >= max_scan, cursor=cursor,
                scanned=scanned)
