"""Seeders and subscriptions that start with the past, in one process (memory links).

Real nodes and signallers over memory links and a real SQLite file: a
publisher's documents outlive it in a seeder, a new subscriber reads them
in publication order and then the live ones, each once.  On trio's MockClock,
which waits for the store's worker threads (``thread_aware_clock``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from taiinet.history.errors import HistoryUsageError
from taiinet.history.store import Page, SeedStore
from taiinet.node import memory_links, open_node
from taiinet.node.seeder import open_seeder
from taiinet.signal.api import open_signaller
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from tests.node_support import ident


async def _publish(signaller: str, network: MemoryNetwork, transport: Any, count: int,
                   seed: int) -> list[str]:
    ids = []
    async with open_node([signaller], ident(seed), links=memory_links(network),
                         signal_transport=transport, rng=random.Random(seed)) as publisher:
        await publisher.wait_neighbors(1)
        await trio.sleep(0.5)  # interest settles
        for i in range(count):
            ids.append(await publisher.publish({"n": i, "even": i % 2 == 0}))
        await trio.sleep(0.5)
    return ids


async def test_a_new_subscriber_reads_the_stored_documents_then_the_live_ones(
        tmp_path: Path, thread_aware_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    store = SeedStore.open(tmp_path / "seed.db")
    with trio.fail_after(60):
        async with open_signaller(transport=transport, identity=ident(1000)) as sig, \
                open_seeder([sig.url], store, [{"even": True}], ident(1),
                            links=memory_links(network), signal_transport=transport,
                            rng=random.Random(1)) as seeder:
            await _publish(sig.url, network, transport, 20, seed=2)
            await seeder.wait_stored(10)
            assert store.count == 10
            async with open_node([sig.url], ident(3), links=memory_links(network),
                                 signal_transport=transport, rng=random.Random(3)) as reader, \
                    reader.subscribe({"even": True}, history=True) as sub:
                got = [await sub.receive() for _ in range(10)]
                assert [m.data["n"] for m in got] == list(range(0, 20, 2))
                assert all(m.stored for m in got)
                await reader.wait_neighbors(1)
                await trio.sleep(0.5)
                await reader.publish({"n": 100, "even": True})
                live = await sub.receive()
                assert live.data["n"] == 100 and not live.stored
                async with reader.find({"n": {"$gte": 14}}) as found:
                    assert [m.data["n"] async for m in found] == [14, 16, 18, 100]
    store.close()


async def test_a_full_disk_stops_storing_not_the_seeder(
        tmp_path: Path, thread_aware_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    store = SeedStore.open(tmp_path / "seed.db")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages + 1}")  # one page left on the "disk"
    with trio.fail_after(60):
        async with open_signaller(transport=transport, identity=ident(1000)) as sig, \
                open_seeder([sig.url], store, [], ident(1), links=memory_links(network),
                            signal_transport=transport, rng=random.Random(1)) as seeder:
            await seeder.node.publish({"pad": "x" * 20_000})
            while seeder.store_failures == 0:
                await seeder.next_batch()
            assert seeder.stats().lost == 1 and store.count == 0
            store._db.execute("PRAGMA max_page_count=1073741823")  # space again
            await seeder.node.publish({"small": True})
            await seeder.wait_stored(1)
            assert store.count == 1


async def test_history_options_are_checked_at_once(
        tmp_path: Path, thread_aware_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(30):
        async with open_signaller(transport=transport, identity=ident(1000)) as sig, \
                open_node([sig.url], ident(3), links=memory_links(network),
                          signal_transport=transport, rng=random.Random(3)) as node:
            for bad in ({"since": -1.0}, {"since": float("nan")}, {"history_limit": -1},
                        {"history_limit": True}):
                with pytest.raises(HistoryUsageError):
                    node.subscribe({}, **bad)  # type: ignore[arg-type]
            # No seeder in the mesh: the history is empty and live documents flow.
            async with node.subscribe({"n": 1}, history=True) as sub:
                await node.publish({"n": 1})
                message = await sub.receive()
                assert message.data == {"n": 1} and not message.stored
            async with node.find({}) as found:
                assert [m async for m in found] == []
            assert node.history.last_seeders == []


class _TamperingStore(SeedStore):
    """A seeder's store that alters one byte of every document it serves."""

    def page(self, *args: Any, **kwargs: Any) -> Page:
        page = super().page(*args, **kwargs)
        altered = tuple(e[:-1] + bytes([e[-1] ^ 1]) for e in page.envelopes)
        return Page(envelopes=altered, more=page.more, cursor=page.cursor,
                    scanned=page.scanned)


async def test_a_seeder_that_alters_documents_is_dropped_and_the_honest_one_suffices(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        thread_aware_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    honest = SeedStore.open(tmp_path / "honest.db")
    liar = _TamperingStore.open(tmp_path / "liar.db")
    with trio.fail_after(60):
        async with open_signaller(transport=transport, identity=ident(1000)) as sig, \
                open_seeder([sig.url], honest, [], ident(1), links=memory_links(network),
                            signal_transport=transport, rng=random.Random(1)) as first, \
                open_seeder([sig.url], liar, [], ident(4), links=memory_links(network),
                            signal_transport=transport, rng=random.Random(4)) as second:
            await _publish(sig.url, network, transport, 12, seed=2)
            await first.wait_stored(12)
            await second.wait_stored(12)
            async with open_node([sig.url], ident(3), links=memory_links(network),
                                 signal_transport=transport, rng=random.Random(3)) as reader, \
                    reader.find({}) as found:
                got = [m.data["n"] async for m in found]
                assert sorted(reader.history.last_seeders) == sorted(
                    [first.node.peer_id, second.node.peer_id])
    assert got == list(range(12))
    assert any("does not verify" in r.getMessage() for r in caplog.records)
    honest.close()
    liar.close()
