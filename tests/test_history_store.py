"""The SQLite seed store: key order, paging bounds, retention, reopening, and clear
errors for files that are not seed databases or a disk that is full."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from taiinet.history.store import (
    APPLICATION_ID,
    Entry,
    Retention,
    SeedStore,
    StoreError,
    StoreFull,
)
from taiinet.pubsub.query import Query
from tests.history_support import SIGNED, key_of, signed_envelope

ALL = Query({})


def _entry(n: int, published: int, pad: int = 0) -> Entry:
    data = signed_envelope({"n": n, "pad": "x" * pad}, published, nonce=n)
    return Entry(message_id=key_of(data, published)[1], published_unix_ms=published,
                 envelope=data)


def _numbers(store: SeedStore, query: Query = ALL, **kwargs: object) -> list[int]:
    from taiinet.history.codec import stored_document

    page = store.page(query, **kwargs)  # type: ignore[arg-type]
    return [stored_document(e)["n"] for e in page.envelopes]  # type: ignore[index]


def test_pages_come_in_key_order_from_any_key(tmp_path: Path) -> None:
    store = SeedStore.open(tmp_path / "s.db")
    entries = [_entry(n, 1000 + (n * 7) % 50) for n in range(50)]
    assert store.add(entries, now_unix_ms=1) == 50
    assert store.add(entries[:5], now_unix_ms=1) == 0  # known ids are skipped
    everything = store.page(ALL)
    keys = [key_of(e, _published(e)) for e in everything.envelopes]
    assert keys == sorted(keys) and len(keys) == 50 and not everything.more
    first = store.page(ALL, limit=10)
    assert first.more and len(first.envelopes) == 10
    rest = store.page(ALL, after=first.cursor)
    assert first.envelopes + rest.envelopes == everything.envelopes
    since = store.page(ALL, since_unix_ms=1040)
    assert all(_published(e) >= 1040 for e in since.envelopes) and len(since.envelopes) == 10
    store.close()


def _published(data: bytes) -> int:
    return SIGNED.open(data).published_unix_ms


def test_a_page_is_bounded_in_bytes_and_in_rows_scanned(tmp_path: Path) -> None:
    store = SeedStore.open(tmp_path / "s.db")
    store.add([_entry(n, 1000 + n, pad=1000) for n in range(100)], now_unix_ms=1)
    page = store.page(ALL, max_bytes=5000)
    assert 1 <= len(page.envelopes) <= 5 and page.more
    big = store.page(ALL, max_bytes=10)  # the first document always goes
    assert len(big.envelopes) == 1
    scan = store.page(Query({"n": 99}), max_scan=30)
    assert scan.envelopes == () and scan.more and scan.scanned == 30
    assert scan.cursor > (0, b"")
    store.close()


def test_the_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SeedStore.open(path)
    store.add([_entry(n, 1000 + n) for n in range(20)], now_unix_ms=1)
    store.close()
    again = SeedStore.open(path)
    assert again.count == 20 and again.bytes > 0
    assert _numbers(again, Query({"n": {"$lt": 3}})) == [0, 1, 2]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_retention_removes_the_oldest_stored_first(tmp_path: Path) -> None:
    store = SeedStore.open(tmp_path / "s.db", Retention(max_docs=10))
    # Stored in this order; published times claim the reverse.
    for n in range(25):
        store.add([_entry(n, 10_000 - n)], now_unix_ms=n)
    assert store.count == 10 and store.evicted == 15
    assert sorted(_numbers(store)) == list(range(15, 25))
    store.close()
    sized = SeedStore.open(tmp_path / "b.db", Retention(max_bytes=3000))
    sized.add([_entry(n, 1000 + n, pad=500) for n in range(20)], now_unix_ms=1)
    assert sized.bytes <= 3000 and sized.count >= 1
    assert max(_numbers(sized)) == 19
    sized.close()
    aged = SeedStore.open(tmp_path / "a.db", Retention(max_age=10.0))
    aged.add([_entry(1, 1)], now_unix_ms=0)
    aged.add([_entry(2, 2)], now_unix_ms=8_000)
    assert aged.purge(now_unix_ms=12_000) == 1
    assert _numbers(aged) == [2]
    aged.close()


def test_a_file_that_is_not_a_seed_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 100)
    with pytest.raises(StoreError, match="not a usable seed database"):
        SeedStore.open(junk)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError, match="another program's SQLite database"):
        SeedStore.open(foreign)
    newer = tmp_path / "newer.db"
    SeedStore.open(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="format 99"):
        SeedStore.open(newer)
    with pytest.raises(StoreError, match="cannot open"):
        SeedStore.open(tmp_path / "no" / "such" / "dir" / "s.db")
    assert int.from_bytes(b"TaiN", "big") == APPLICATION_ID


def test_a_full_disk_stops_storing_without_breaking_the_store(tmp_path: Path) -> None:
    store = SeedStore.open(tmp_path / "s.db")
    store.add([_entry(0, 1)], now_unix_ms=1)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages + 2}")  # a disk with two pages left
    with pytest.raises(StoreFull):
        store.add([_entry(n, 10 + n, pad=2000) for n in range(1, 50)], now_unix_ms=2)
    assert store.count == 1 and _numbers(store) == [0]  # nothing half-stored
    store._db.execute("PRAGMA max_page_count=1073741823")  # space again
    assert store.add([_entry(7, 7)], now_unix_ms=3) == 1
    store.close()
