"""A routed node flooded by a stranger keeps its memory bounded and keeps delivering.

Real drivers over memory links (Noise XX), trio's MockClock: a victim node
subscribed to ``topic=news``, a legitimate publisher linked to it, and a
rogue peer that joins and pushes valid signed documents nobody wants, or
documents of 14,000 empty maps.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from taiinet.errors import ConnectionClosed
from taiinet.node.routed import RoutedDriver
from taiinet.overlay import codec
from taiinet.overlay.messages import Gossip, Join
from taiinet.pubsub import SignedDocuments
from taiinet.pubsub.documents import DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE
from taiinet.transport.connection import Connection
from taiinet.transport.memory import memory_connection_pair
from taiinet.v1 import pubsub_pb2, value_pb2
from taiinet.wire.envelope import Envelope
from taiinet.wire.identity import Identity

VICTIM = Identity.from_seed(b"\x01" * 32)
PUBLISHER = Identity.from_seed(b"\x02" * 32)
ROGUE = Identity.from_seed(b"\x03" * 32)


async def _no_dial(peer_id: str) -> Connection:
    raise ConnectionClosed("nothing to dial")


@dataclass
class _Mesh:
    victim: RoutedDriver
    publisher: RoutedDriver
    rogue: Connection


async def _drain(connection: Connection) -> None:
    """The rogue reads what it is sent, so the victim never finds it slow."""
    try:
        async for _data in connection:
            pass
    except ConnectionClosed:
        pass


@asynccontextmanager
async def _mesh() -> AsyncIterator[_Mesh]:
    victim = RoutedDriver(VICTIM, _no_dial, rng=random.Random(1))

    async def dial_victim(peer_id: str) -> Connection:
        if peer_id != VICTIM.peer_id:
            # Only the victim is reachable (the rogue's id, learnt from a
            # ForwardJoin, must not become a second link to the victim).
            raise ConnectionClosed("nothing else to dial")
        ours, theirs = await memory_connection_pair(PUBLISHER, VICTIM)
        victim.add_connection(theirs)
        return ours

    publisher = RoutedDriver(PUBLISHER, dial_victim, rng=random.Random(2))
    async with trio.open_nursery() as nursery:
        await nursery.start(victim.run)
        await nursery.start(publisher.run)
        victim.subscribe("news", {"topic": "news"})
        publisher.join(VICTIM.peer_id)
        rogue, theirs = await memory_connection_pair(ROGUE, VICTIM)
        victim.add_connection(theirs)
        nursery.start_soon(_drain, rogue)
        await rogue.send(codec.encode_frame(Join()))
        await trio.sleep(2.0)  # links up, adverts exchanged
        assert sorted(victim.neighbors) == sorted([PUBLISHER.peer_id, ROGUE.peer_id])
        yield _Mesh(victim, publisher, rogue)
        nursery.cancel_scope.cancel()


def _gossip(payload: bytes) -> bytes:
    return codec.encode_frame(Gossip(message_id=hashlib.sha256(payload).digest(), hops=1,
                                     payload=payload))


def _junk(nonce: int) -> bytes:
    """A valid signed document of ~50 KB that matches no one's interest."""
    return _gossip(SignedDocuments(ROGUE).seal({"junk": "j" * 50_000}, 60 * 1024,
                                               published_unix_ms=1, nonce=nonce))


def _empty_maps(nonce: int) -> bytes:
    """A signed document of 14,000 empty maps in 56 KB (the rogue's own encoder)."""
    value = value_pb2.Value()
    for _ in range(14_000):
        value.list_value.values.add().map_value.SetInParent()
    published = pubsub_pb2.PublishedDocument(value=value.SerializeToString(),
                                             published_unix_ms=1, nonce=nonce)
    return _gossip(Envelope.seal(ROGUE, DOCUMENT_DOMAIN, DOCUMENT_PAYLOAD_TYPE,
                                 published.SerializeToString()))


async def _news_received(victim: RoutedDriver, expected: int) -> list[int]:
    got: list[int] = []
    with trio.move_on_after(30):
        while len(got) < expected:
            got.append((await victim.documents.receive()).document["n"])
    return got


async def test_unwanted_documents_leave_no_memory_behind(autojump_clock: object) -> None:
    async with _mesh() as mesh:
        router = mesh.victim.router
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(300):  # 15 MB in 15 s: within the rogue's byte budget
                await mesh.rogue.send(_junk(i))
                if i % 10 == 0:
                    mesh.publisher.publish({"topic": "news", "n": i // 10},
                                           published_unix_ms=1, nonce=i)
                await trio.sleep(0.05)
            await trio.sleep(1.0)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert held < 4 * 1024 * 1024, f"{held} bytes held after 15 MB of unwanted documents"
        # (A few may be pushed on while a tree link turns eager at one end first.)
        assert router.stats.unwanted >= 270, router.stats
        assert router.document_bytes <= router.config.retention_bytes
        tree = router.overlay.broadcast_core
        assert tree.payload_bytes <= tree.config.payload_cache_bytes
        assert await _news_received(mesh.victim, 30) == list(range(30))
        assert ROGUE.peer_id in mesh.victim.neighbors  # within budget: not disconnected


async def test_a_peer_pushing_documents_of_empty_maps_is_disconnected(
        autojump_clock: object) -> None:
    async with _mesh() as mesh:
        router = mesh.victim.router
        bad = _empty_maps(1)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            closed = False
            for i in range(20):
                if not closed:
                    try:
                        await mesh.rogue.send(bad)
                    except ConnectionClosed:
                        closed = True
                mesh.publisher.publish({"topic": "news", "n": i}, published_unix_ms=1, nonce=i)
                await trio.sleep(0.1)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert held < 2 * 1024 * 1024, f"{held} bytes held"
        assert 1 <= router.stats.rejected["invalid_document"] <= 6
        assert closed and ROGUE.peer_id not in mesh.victim.neighbors
        assert router.stats.disconnected == 1
        assert await _news_received(mesh.victim, 20) == list(range(20))
