"""Seeder benchmark: a history fetch over a real link beside a raw SQLite scan, and storing.

Run: ``.venv/bin/python bench/seed.py [--docs 100000] [--links websocket]``.

1. Fill a seed store (``taiinet.history.store``, SQLite WAL) with ``--docs``
   signed documents ``{"n", "group", "name", "tags", "pad"}`` (about 300 bytes
   signed); ``group`` is ``n % 100``, so the query ``{"group": 42}`` matches 1%.
   Reported: bulk storing rate (batches of 512, one transaction each).
2. Raw scan: ``sqlite3`` alone reads every envelope in key order, decodes the
   document and runs the same compiled query (``Query.matches``): time to the
   first match and matching documents per second, in a process of its own
   (as the seeder's scan is).  This is what a history fetch is measured
   against.
3. History fetch over a real link: a ``taiinet signal`` and a ``taiinet seed
   --db`` process (the store of step 1), and in this process a reader node
   that calls ``node.find({"group": 42})``: time to the first document (from
   the call: finding the seeder, the request, the first page) and matching
   documents per second (all of them, verified).  ``--runs`` runs of each,
   interleaved with the raw scans; the medians.
   ``ratio`` = fetch docs/s over raw-scan docs/s.
4. Storing at the pubsub bench's rate: a fresh ``taiinet seed`` process, and a
   publisher node here publishing ``--store-docs`` documents at each of
   ``--rates`` per second (123/s is the highest rate the pubsub bench
   delivered 100% of over WebSocket, README); reported: documents stored,
   stored per second, and the lag from the last publication to the last store.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import trio

from taiinet.history.codec import stored_document
from taiinet.history.store import Entry, SeedStore
from taiinet.node.node import open_node
from taiinet.pubsub.documents import SignedDocuments
from taiinet.pubsub.query import Query
from taiinet.wire.identity import Identity

TAIINET = [sys.executable, "-m", "taiinet.cli"]
QUERY = {"group": 42}


def _document(n: int) -> dict[str, Any]:
    return {"n": n, "group": n % 100, "name": f"user-{n:07d}",
            "tags": ["alpha", "beta"] if n % 3 else ["gamma"], "pad": "x" * 80}


def fill(path: Path, count: int) -> tuple[float, int]:
    """Fill a store; return the storing rate and the database size."""
    codec = SignedDocuments(Identity.from_seed(b"b" * 32))
    import hashlib

    store = SeedStore.open(path)
    base = 1_700_000_000_000
    entries: list[Entry] = []
    for n in range(count):
        data = codec.seal(_document(n), 60 * 1024, published_unix_ms=base + n, nonce=n)
        entries.append(Entry(message_id=hashlib.sha256(data).digest(),
                             published_unix_ms=base + n, envelope=data))
    started = time.perf_counter()
    for i in range(0, count, 512):
        store.add(entries[i:i + 512], now_unix_ms=base)
    elapsed = time.perf_counter() - started
    store.close()
    return count / elapsed, path.stat().st_size


def raw_scan(path: Path) -> tuple[float, float, int]:
    """Time to the first match, matching documents/s and matches of a plain scan."""
    import sqlite3

    query = Query(QUERY)
    started = time.perf_counter()
    first = math.nan
    matches = 0
    db = sqlite3.connect(path)
    for (envelope,) in db.execute("SELECT envelope FROM documents ORDER BY published_ms, id"):
        if query.matches(stored_document(envelope)):
            matches += 1
            if matches == 1:
                first = time.perf_counter() - started
    elapsed = time.perf_counter() - started
    db.close()
    return first, matches / elapsed, matches


def raw_scan_process(path: Path) -> tuple[float, float, int]:
    """``raw_scan`` in a fresh process, as the seeder's scan runs in its own."""
    out = subprocess.run([sys.executable, __file__, "--raw-scan", str(path)], check=True,
                         capture_output=True, text=True).stdout
    first, rate, matches = json.loads(out)
    return float(first), float(rate), int(matches)


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*TAIINET, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _line_with(stream: Any, text: str) -> str:
    while True:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"process ended before printing {text!r}")
        if text in line:
            return str(line)


async def fetch(url: str, links: str) -> tuple[float, float, int]:
    async with open_node([url], links=links) as node:
        started = time.perf_counter()
        first = math.nan
        count = 0
        async with node.find(QUERY) as found:
            async for _message in found:
                count += 1
                if count == 1:
                    first = time.perf_counter() - started
        elapsed = time.perf_counter() - started
    return first, count / elapsed, count


async def publish(url: str, links: str, count: int, rate: float) -> tuple[float, float]:
    """Publish ``count`` documents at ``rate``/s; return the first and last publish times."""
    async with open_node([url], links=links) as node:
        await node.wait_neighbors(1)
        await trio.sleep(1.0)
        start = time.time()
        for n in range(count):
            await trio.sleep_until(trio.current_time() + max(
                0.0, start + n / rate - time.time()))
            await node.publish(_document(n))
        last = time.time()
        await trio.sleep(0.5)
    return start, last


def storing(url: str, links: str, db: Path, count: int,
            rate: float) -> tuple[float, int, float, float]:
    """Publish to a fresh seeder process; return the rate reached, stored, stored/s and
    the lag after the last publication."""
    seed = _spawn("seed", "--signaller", url, "--links", links, "--db", str(db),
                  "--report", "0.02")
    reports: list[tuple[float, int]] = []

    def watch() -> None:  # timestamps the seeder's reports as they come
        for line in seed.stderr:  # type: ignore[union-attr]
            if " stored," in line:
                reports.append((time.time(), int(line.split(" stored,")[0].rsplit(" ", 1)[1])))

    try:
        _line_with(seed.stderr, "seeding")
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        first, last = trio.run(publish, url, links, count, rate)
        deadline = time.time() + 30
        while (not reports or reports[-1][1] < count) and time.time() < deadline:
            time.sleep(0.05)
        stored = reports[-1][1] if reports else 0
        stored_at = next(t for t, n in reports if n == stored) if reports else last
        reached = count / max(last - first, 1e-9)
        return reached, stored, stored / (stored_at - first), max(0.0, stored_at - last)
    finally:
        seed.kill()
        seed.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--links", default="websocket", choices=["websocket", "webrtc"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", default="123,1000")
    parser.add_argument("--store-docs", type=int, default=2000)
    parser.add_argument("--raw-scan", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_scan:
        print(json.dumps(raw_scan(Path(args.raw_scan))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        fill_rate, size = fill(db, args.docs)
        print(f"filled {args.docs:,} documents: {fill_rate:,.0f} documents/s stored in "
              f"batches of 512, {size / 1e6:.1f} MB")
        signal = _spawn("signal", "--listen", "127.0.0.1:0")
        try:
            url = signal.stdout.readline().split()[2]  # type: ignore[union-attr]
            seed = _spawn("seed", "--signaller", url, "--links", args.links, "--db", str(db))
            try:
                _line_with(seed.stderr, "seeding")
                scans, runs = [], []
                for _ in range(args.runs):  # interleaved: both see the same machine load
                    scans.append(raw_scan_process(db))
                    runs.append(trio.run(fetch, url, args.links))
            finally:
                seed.kill()
                seed.wait()
            scan_matches = scans[0][2]
            scan_first = statistics.median(r[0] for r in scans)
            scan_rate = statistics.median(r[1] for r in scans)
            firsts = [r[0] for r in runs]
            rates = [r[1] for r in runs]
            assert all(r[2] == scan_matches for r in runs), (runs, scan_matches)
            first, rate = statistics.median(firsts), statistics.median(rates)
            print(f"\nquery {json.dumps(QUERY)}: {scan_matches} of {args.docs:,} documents; "
                  f"median of {args.runs} runs of each, interleaved; fetch over {args.links}")
            print("| read | first document ms | documents/s | ratio |")
            print("| --- | ---: | ---: | ---: |")
            print(f"| raw sqlite3 scan + Query.matches | {scan_first * 1000:.1f} | "
                  f"{scan_rate:,.0f} | 1.0 |")
            print(f"| history fetch (find) over {args.links} | {first * 1000:.1f} | "
                  f"{rate:,.0f} | {rate / scan_rate:.2f} |")
            print("\n| publish rate asked/s | reached/s | published | stored | stored/s "
                  "| lag after last ms |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: |")
            for n, publish_rate in enumerate(float(r) for r in args.rates.split(",")):
                reached, stored, stored_rate, lag = storing(
                    url, args.links, Path(tmp) / f"s{n}.db", args.store_docs, publish_rate)
                print(f"| {publish_rate:.0f} | {reached:,.0f} | {args.store_docs} | {stored} | "
                      f"{stored_rate:,.0f} | {lag * 1000:.0f} |", flush=True)
        finally:
            signal.kill()
            signal.wait()


if __name__ == "__main__":
    main()
