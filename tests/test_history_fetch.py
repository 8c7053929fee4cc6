"""The history fetch core: pages from several seeders merged in key order, each once;
seeders that lie, stall or refuse; and the seam with the live stream (hypothesis)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from taiinet.core import Send, SetTimer
from taiinet.history.client import (
    HistoryFetch,
    HistoryFetchConfig,
    SourceFailed,
)
from taiinet.history.messages import HistoryPage, HistoryRefused, HistoryRequest
from taiinet.history.seam import Seam
from taiinet.pubsub.documents import SignedDocuments
from taiinet.pubsub.query import Query
from taiinet.wire.identity import Identity
from tests.history_support import CODEC, MemorySeeder, envelope, key_of

EVERYTHING = Query({})


def _fetch(seeders: list[str], query: Query = EVERYTHING, **kwargs: Any) -> HistoryFetch:
    ids = itertools.count(1)
    return HistoryFetch(query, seeders, CODEC, lambda: next(ids), **kwargs)


def _requests(actions: list[Any]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def _run(fetch: HistoryFetch, seeders: dict[str, MemorySeeder], rng: random.Random,
         take_every: int = 1) -> list[Any]:
    """Answer the fetch's requests in a random order; return the documents taken."""
    pending = _requests(fetch.start(0.0))
    out: list[Any] = []
    steps = 0
    while pending or not fetch.done:
        steps += 1
        assert steps < 10_000
        if pending:
            send = pending.pop(rng.randrange(len(pending)))
            request = send.message
            assert isinstance(request, HistoryRequest)
            pending += _requests(fetch.handle_page(send.peer, seeders[send.peer].answer(request),
                                                   0.0))
        if steps % take_every == 0 or not pending:
            out += [item.document for item in fetch.take()]
            pending += _requests(fetch.pump(0.0))
    return out


def test_two_seeders_give_the_union_in_order_each_once() -> None:
    a, b = MemorySeeder(), MemorySeeder()
    for i in range(0, 600):
        if i % 3 != 0:
            a.add({"n": i}, 1000 + i)
        if i % 3 != 1:
            b.add({"n": i}, 1000 + i)
    config = HistoryFetchConfig(page_documents=50, first_page_documents=50)
    fetch = _fetch(["a", "b"], config=config)
    got = _run(fetch, {"a": a, "b": b}, random.Random(1))
    assert got == [{"n": i} for i in range(600)]


def test_pages_grow_from_the_first() -> None:
    fetch = _fetch(["a"])
    request = _first_request(fetch)
    sizes = []
    for n in range(4):
        sizes.append(request.limit)
        page = _page(request, [], more=True, cursor=(n + 1, b"\x01" * 32))
        message = _requests(fetch.handle_page("a", page, 0.0))[0].message
        assert isinstance(message, HistoryRequest)
        request = message
    assert sizes == [16, 64, 256, 256]


def test_since_and_limit() -> None:
    a = MemorySeeder()
    for i in range(100):
        a.add({"n": i}, 1000 + i)
    got = _run(_fetch(["a"], since_unix_ms=1050, limit=7), {"a": a}, random.Random(2))
    assert got == [{"n": i} for i in range(50, 57)]


def test_empty_pages_with_a_moving_cursor_go_on() -> None:
    a = MemorySeeder(scan=10)
    for i in range(100):
        a.add({"n": i}, 1000 + i)
    got = _run(_fetch(["a"], Query({"n": {"$gte": 95}})), {"a": a}, random.Random(3))
    assert got == [{"n": i} for i in range(95, 100)]


def _first_request(fetch: HistoryFetch) -> HistoryRequest:
    request = _requests(fetch.start(0.0))[0].message
    assert isinstance(request, HistoryRequest)
    return request


def _page(request: HistoryRequest, documents: list[bytes], more: bool = False,
          cursor: tuple[int, bytes] = (0, b"")) -> HistoryPage:
    return HistoryPage(request_id=request.request_id, documents=tuple(documents), more=more,
                       cursor=cursor)


def test_a_seeder_that_sends_documents_out_of_order_is_dropped_and_its_page_unused() -> None:
    fetch = _fetch(["liar"])
    request = _first_request(fetch)
    actions = fetch.handle_page("liar", _page(request, [envelope({"n": 2}, 2000),
                                                        envelope({"n": 1}, 1000)]), 0.0)
    assert [a for a in actions if isinstance(a, SourceFailed)] == [
        SourceFailed(peer="liar", reason="documents out of order or before the request's key",
                     violation=True)]
    assert fetch.take() == [] and fetch.done


def test_a_seeder_that_sends_what_was_not_asked_for_is_dropped() -> None:
    fetch = _fetch(["liar"], Query({"n": 1}))
    request = _first_request(fetch)
    actions = fetch.handle_page("liar", _page(request, [envelope({"n": 2}, 2000)]), 0.0)
    assert any(isinstance(a, SourceFailed) and a.violation for a in actions)
    fetch = _fetch(["liar"], since_unix_ms=5000)
    request = _first_request(fetch)
    actions = fetch.handle_page("liar", _page(request, [envelope({"n": 2}, 2000)]), 0.0)
    assert any(isinstance(a, SourceFailed) and a.violation for a in actions)


def test_a_forged_or_altered_document_is_dropped_with_its_seeder() -> None:
    publisher = Identity.from_seed(b"p" * 32)
    signed = SignedDocuments(publisher).seal({"n": 1}, 60 * 1024, published_unix_ms=5, nonce=1)
    altered = signed.replace(b"\x01", b"\x02", 1) if b"\x01" in signed else signed[:-1] + b"x"
    ids = itertools.count(1)
    fetch = HistoryFetch(EVERYTHING, ["liar"], SignedDocuments(), lambda: next(ids))
    request = _first_request(fetch)
    actions = fetch.handle_page("liar", _page(request, [altered]), 0.0)
    assert any(isinstance(a, SourceFailed) and a.violation for a in actions)
    fetch = HistoryFetch(EVERYTHING, ["honest"], SignedDocuments(), lambda: next(ids))
    request = _first_request(fetch)
    fetch.handle_page("honest", _page(request, [signed]), 0.0)
    assert [item.document for item in fetch.take()] == [{"n": 1}]


def test_a_page_that_does_not_move_on_is_a_violation() -> None:
    fetch = _fetch(["stuck"])
    request = _first_request(fetch)
    actions = fetch.handle_page("stuck", _page(request, [], more=True, cursor=(0, b"")), 0.0)
    assert any(isinstance(a, SourceFailed) and a.violation for a in actions)


def test_a_silent_seeder_times_out_and_the_others_go_on() -> None:
    a = MemorySeeder()
    a.add({"n": 1}, 1000)
    fetch = _fetch(["a", "silent"], config=HistoryFetchConfig(page_timeout=5.0))
    actions = fetch.start(0.0)
    timers = [x for x in actions if isinstance(x, SetTimer)]
    assert {t.at for t in timers} == {5.0}
    for send in _requests(actions):
        if send.peer == "a":
            assert isinstance(send.message, HistoryRequest)
            fetch.handle_page("a", a.answer(send.message), 1.0)
    assert fetch.take() == []  # the silent one may still send an earlier document
    silent = next(t for t in timers if t.timer.peer == "silent")
    out = fetch.handle_timer(silent.timer, silent.at)
    assert SourceFailed(peer="silent", reason="timed out") in out
    assert [i.document for i in fetch.take()] == [{"n": 1}] and fetch.done
    # A stale timer (already answered) does nothing.
    assert fetch.handle_timer(next(t for t in timers if t.timer.peer == "a").timer, 9.0) == []


def test_a_busy_seeder_is_asked_again_later_then_given_up() -> None:
    fetch = _fetch(["busy"], config=HistoryFetchConfig(max_retries=1, retry_delay=1.0))
    request = _first_request(fetch)
    out = fetch.handle_refused("busy", HistoryRefused(request_id=request.request_id,
                                                      reason="busy"), 0.0)
    retry = [a for a in out if isinstance(a, SetTimer)]
    assert retry and retry[0].timer.retry and retry[0].at == 1.0
    again = _requests(fetch.handle_timer(retry[0].timer, 1.0))
    assert len(again) == 1
    assert isinstance(again[0].message, HistoryRequest)
    out = fetch.handle_refused("busy", HistoryRefused(request_id=again[0].message.request_id,
                                                      reason="busy"), 1.0)
    assert SourceFailed(peer="busy", reason="refused: busy") in out and fetch.done


def test_a_page_for_another_request_is_ignored() -> None:
    fetch = _fetch(["a"])
    request = _first_request(fetch)
    stale = HistoryPage(request_id=request.request_id + 7, documents=(), more=False,
                        cursor=(0, b""))
    assert fetch.handle_page("a", stale, 0.0) == []
    assert fetch.handle_page("b", stale, 0.0) == []
    assert not fetch.done


def test_a_reader_that_takes_nothing_stops_the_requests() -> None:
    a = MemorySeeder()
    for i in range(2000):
        a.add({"n": i}, i + 1)
    fetch = _fetch(["a"], config=HistoryFetchConfig(
        page_documents=100, first_page_documents=100, max_buffered=300))
    pending = _requests(fetch.start(0.0))
    answered = 0
    while pending:
        send = pending.pop()
        assert isinstance(send.message, HistoryRequest)
        pending += _requests(fetch.handle_page("a", a.answer(send.message), 0.0))
        answered += 1
    assert answered == 3  # 300 held: no more until the reader takes some
    assert len(fetch.take()) == 300
    assert len(_requests(fetch.pump(0.0))) == 1


# -- the merge of history and live streams, under any interleaving ------------------

@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    count = draw(st.integers(0, 40))
    times = draw(st.lists(st.integers(1, 20), min_size=count, max_size=count))
    seeders = draw(st.integers(1, 3))
    # Where each document is: stored by which seeders, and/or delivered live.
    held = draw(st.lists(st.sets(st.integers(0, seeders - 1)), min_size=count,
                         max_size=count))
    live = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    page = draw(st.integers(1, 5))
    scan = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32))
    return times, held, live, seeders, page, scan, seed


@given(_scenarios())
def test_history_then_live_yields_each_document_once_in_order(scenario: tuple[Any, ...]) -> None:
    times, held, live, seeder_count, page, scan, seed = scenario
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(seeder_count)]
    seeders = {name: MemorySeeder(scan=scan) for name in names}
    keys: dict[int, tuple[int, bytes]] = {}
    for n, (published, where) in enumerate(zip(times, held, strict=True)):
        for s in where:
            seeders[names[s]].add({"n": n}, published, nonce=n)
        data = envelope({"n": n}, published, nonce=n)
        keys[n] = key_of(data, published)
    stored = sorted({n for n, where in enumerate(held) if where}, key=lambda n: keys[n])
    live_order = [n for n, is_live in enumerate(live) if is_live]
    rng.shuffle(live_order)

    fetch = _fetch(names, config=HistoryFetchConfig(page_documents=page, first_page_documents=1,
                                                    max_buffered=4))
    seam: Seam[int] = Seam(max_held=1000)
    out: list[int] = []
    pending = _requests(fetch.start(0.0))
    arrivals = list(live_order)
    while pending or not fetch.done or arrivals:
        choice = rng.randrange(3)
        if choice == 0 and arrivals:
            n = arrivals.pop(0)
            out += seam.arrived(n, n)
        elif choice == 1 and pending:
            send = pending.pop(rng.randrange(len(pending)))
            assert isinstance(send.message, HistoryRequest)
            pending += _requests(fetch.handle_page(
                send.peer, seeders[send.peer].answer(send.message), 0.0))
        else:
            for item in fetch.take(rng.randint(1, 3)):
                out += seam.history(item.document["n"], item.document["n"])
            pending += _requests(fetch.pump(0.0))
            if fetch.done and not seam.live:
                out += seam.finish()
    out += seam.finish()
    assert out[:len(stored)] == stored
    assert sorted(out) == sorted(set(stored) | set(live_order))
    assert len(out) == len(set(out))
    assert out[len(stored):] == [n for n in live_order if n not in set(stored)]


def test_the_seam_holds_live_items_boundedly_and_counts_drops() -> None:
    seam: Seam[str] = Seam(max_held=2)
    assert seam.arrived("x", "x") == [] and seam.arrived("y", "y") == []
    assert seam.arrived("z", "z") == []
    assert seam.dropped == 1
    assert seam.history("y", "y") == ["y"]
    assert seam.finish() == ["z"]
    assert seam.duplicates == 1
    assert seam.arrived("y", "y") == [] and seam.arrived("w", "w") == ["w"]
