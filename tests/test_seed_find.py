"""Seeders are found at any mesh size: ``GetContacts{service="seeder"}``.

A subscriber homed on a signaller with 40 ordinary peers and no seeder finds
the one seeder homed on another signaller (a plain sample of 32 contacts
would mostly miss it) and reads its history: with k = 20 every signaller
holds the seeder's record (its service index answers), with k = 1 only
another one does (the home asks the other signallers).

The tests run on trio's MockClock; a seeder writes its SQLite store in a
worker thread, which the clock waits for (``thread_aware_clock``).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from taiinet.history.store import SeedStore
from taiinet.node import memory_links, open_node
from taiinet.node.seeder import open_seeder
from taiinet.signal.api import open_signaller
from taiinet.signal.client import SignalClient, SignalClientConfig, open_signal_client
from taiinet.signal.codec import GetContacts, decode_signal, encode_signal
from taiinet.signal.dht import DhtConfig
from taiinet.signal.errors import MalformedSignalMessage, SignalUsageError
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.records import SEEDER_SERVICE, open_peer_record
from taiinet.signal.server import Signaller, SignallerConfig
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId
from tests.node_support import ident, start_cm

ORDINARY = 40


def _holds(sig: Signaller, peer: PeerId) -> bool:
    assert sig.dht is not None
    held = sig.dht.get_local(id_bytes(node_id(peer)), trio.current_time())
    return held is not None and not open_peer_record(held.value, int(time.time() * 1000)).withdrawn


def _seeder_identity(home: Identity, middle: Identity) -> Identity:
    """The first test identity whose record is closer to ``middle`` than to ``home``:
    with k = 1 its home (the third signaller) stores it there, not on ``home``."""
    def distance(peer: Identity, key: int) -> int:
        return key ^ int.from_bytes(id_bytes(node_id(peer.peer_id)), "big")

    for n in range(1, 1000):
        candidate = ident(n)
        key = int.from_bytes(id_bytes(node_id(candidate.peer_id)), "big")
        if distance(middle, key) < distance(home, key):
            return candidate
    raise AssertionError("no identity found")


async def _client(nursery: trio.Nursery, transport: MemorySignalTransport, n: int,
                  url: str) -> SignalClient:
    client, _ = await start_cm(nursery, open_signal_client(
        ident(n), [url], transport=transport, rng=random.Random(n)))
    with trio.fail_after(10):
        await client.wait_registered()
    return client


@pytest.mark.parametrize("k", [20, 1])
async def test_a_subscriber_finds_the_one_seeder_homed_elsewhere(
        tmp_path: Path, k: int, thread_aware_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = SignallerConfig(dht=DhtConfig(k=k))
    identities = [ident(1000 + i) for i in range(3)]
    seeder_identity = _seeder_identity(identities[0], identities[1])
    store = SeedStore.open(tmp_path / "seed.db")
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            sigs: list[Signaller] = []
            for i, identity in enumerate(identities):
                sig, _ = await start_cm(nursery, open_signaller(
                    join=[sigs[-1].url] if sigs else [], identity=identity, config=config,
                    transport=transport, rng=random.Random(i)))
                sigs.append(sig)
            home, _, elsewhere = sigs
            seeder, _ = await start_cm(nursery, open_seeder(
                [elsewhere.url], store, [], seeder_identity, links=memory_links(network),
                signal_transport=transport, rng=random.Random(1)))
            await seeder.node.publish({"n": 0})
            await seeder.node.publish({"n": 1})
            await seeder.wait_stored(2)
            for n in range(ORDINARY):
                await _client(nursery, transport, 2000 + n, home.url)
            if k == 1:  # the home holds no copy: only asking the mesh can find it
                assert not _holds(home, seeder.node.peer_id)
            async with open_node([home.url], ident(3000), links=memory_links(network),
                                 signal_transport=transport, rng=random.Random(3)) as reader:
                async with reader.find({}) as found:
                    assert [m.data["n"] async for m in found] == [0, 1]
                assert reader.history.last_seeders == [seeder.node.peer_id]
                # Every time, not by luck of the sample (a plain sample of 32 out
                # of 42 live peers leaves it out about one time in four).
                for _ in range(8):
                    assert await reader.history.find_seeders() == [seeder.node.peer_id]
            nursery.cancel_scope.cancel()
    store.close()


async def test_a_service_filter_returns_only_peers_naming_it(
        autojump_clock: trio.testing.MockClock) -> None:
    """Plain contacts stay a sample of everyone; a filtered ask only the seeders."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, open_signaller(
                identity=ident(1000), transport=transport, rng=random.Random(0)) as sig:
            seeders = []
            for n in (1, 2):
                client, _ = await start_cm(nursery, open_signal_client(
                    ident(n), [sig.url], transport=transport, rng=random.Random(n),
                    config=SignalClientConfig(services=(SEEDER_SERVICE,))))
                await client.wait_registered()
                seeders.append(client.peer_id)
            asker = await _client(nursery, transport, 10, sig.url)
            for n in range(11, 15):
                await _client(nursery, transport, n, sig.url)
            found = await asker.contacts(32, service=SEEDER_SERVICE)
            assert sorted(r.peer_id for r in found) == sorted(seeders)
            assert len(await asker.contacts(32)) == 6
            assert await asker.contacts(32, service="archive") == []
            with pytest.raises(SignalUsageError):
                await asker.contacts(32, service="x" * 33)
            nursery.cancel_scope.cancel()


def test_the_service_name_is_bounded_on_the_wire() -> None:
    message = GetContacts(request_id=1, count=32, local_only=True, service="seeder")
    assert decode_signal(encode_signal(message)) == message
    with pytest.raises(MalformedSignalMessage):
        decode_signal(encode_signal(GetContacts(request_id=1, count=1, local_only=False,
                                                service="x" * 33)))


async def test_the_service_index_is_bounded(
        autojump_clock: trio.testing.MockClock) -> None:
    """A signaller indexes at most ``max_service_records`` held keys naming services
    (the newest): with room for one and no asking of the mesh (``service_fanout``
    0), it names one of two seeders homed elsewhere; their home names both."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            sigs: list[Signaller] = []
            for i, fanout in enumerate((0, 6)):
                sig, _ = await start_cm(nursery, open_signaller(
                    join=[sigs[-1].url] if sigs else [], identity=ident(1000 + i),
                    config=SignallerConfig(max_service_records=1, service_fanout=fanout),
                    transport=transport, rng=random.Random(i)))
                sigs.append(sig)
            seeders = []
            for n in (1, 2):
                client, _ = await start_cm(nursery, open_signal_client(
                    ident(n), [sigs[1].url], transport=transport, rng=random.Random(n),
                    config=SignalClientConfig(services=(SEEDER_SERVICE,))))
                await client.wait_registered()
                seeders.append(client.peer_id)
            with trio.fail_after(10):
                while not all(_holds(sigs[0], s) for s in seeders):
                    await trio.sleep(0.01)
            asker = await _client(nursery, transport, 10, sigs[0].url)
            found = await asker.contacts(32, service=SEEDER_SERVICE)
            assert [r.peer_id for r in found] == [seeders[1]]  # the newest indexed
            other = await _client(nursery, transport, 11, sigs[1].url)
            assert len(await other.contacts(32, service=SEEDER_SERVICE)) == 2
            nursery.cancel_scope.cancel()
