"""The node end to end in one process: signallers, nodes, links, subscriptions.

Memory links and trio's MockClock (autojump), so the runs do not depend on the
machine's load; the WebRTC test runs aiortc in a thread and keeps the real clock.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
import trio
import trio.testing

from taiinet.node import NodeConfig, memory_links, webrtc_links
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.pubsub import DOCUMENT_PAYLOAD_TYPE, PubsubConfig, SignedDocuments
from taiinet.pubsub.query import InvalidDocument, InvalidQuery, Query
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.envelope import Envelope
from tests.node_support import collect, ident, start_nodes, start_signallers

ORIGIN_QUERY = {"key": "value", "age": {"$gt": 4},
                "$and": [{"$or": [{"name": {"$contains": "b"}}, {"name": {"$contains": "a"}}]},
                         {"type": {"$in": [1, 4, 5]}}]}
QUERIES: list[Any] = [
    ORIGIN_QUERY,
    {"age": {"$gt": 4}},
    {"name": {"$in": ["bob", "carol"]}},
    {"type": {"$gte": 3}, "key": {"$exists": True}},
]
NAMES = ["bob", "alice", "carol", "dan", "eve"]


def marked(query: Any) -> dict[str, Any]:
    return {"$or": [query, {"marker": True}]}


def random_document(rng: random.Random, n: int) -> dict[str, Any]:
    document: dict[str, Any] = {"n": n, "age": rng.randrange(10), "name": rng.choice(NAMES),
                                "type": rng.randrange(7)}
    if rng.random() < 0.5:
        document["key"] = rng.choice(["value", "other"])
    return document


async def test_twenty_nodes_exact_delivery_links_bounded_and_churn(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    rng = random.Random(7)
    config = NodeConfig()
    active_size = config.overlay.membership.active_size
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 3)
            urls = [s.url for s, _ in sigs]
            started = await start_nodes(
                nursery, [urls[i % 3:] + urls[:i % 3] for i in range(20)],
                memory_links(network), transport, config)
            nodes = [node for node, _ in started]
            for node, scope in started:
                nursery.start_soon(_check_links_on_every_change, node, scope, active_size)
            subscriptions = [await nursery.start(_hold_subscription, node, marked(QUERIES[i % 4]))
                             for i, node in enumerate(nodes)]
            publishers = [nodes[0], nodes[7], nodes[13]]

            async def round_of(first: int, alive: list[int]) -> None:
                documents = [random_document(rng, first + k) for k in range(30)]
                for k, document in enumerate(documents):
                    await publishers[k % 3].publish(document)
                await publishers[0].publish({"marker": True})
                for i in alive:
                    expected = [d for d in documents if Query(QUERIES[i % 4]).matches(d)]
                    got = await collect(subscriptions[i], len(expected))
                    assert sorted(got, key=lambda d: d["n"]) == expected, i

            await round_of(0, list(range(20)))
            for node in nodes:
                stats = node.stats()
                _check_links(stats, active_size)
                assert stats.invalid == 0 and stats.dropped == 0
                # Interest adverts crossed the links (alone or in frame batches).
                assert stats.adverts_sent > 0 and stats.adverts_received > 0, stats

            # Five peers and one signaller leave; delivery goes on to the rest.
            dead = [3, 5, 9, 16, 19]
            for i in dead:
                started[i][1].cancel()
            sigs[1][1].cancel()
            dead_ids = {nodes[i].peer_id for i in dead}
            alive = [i for i in range(20) if i not in dead]
            for i in alive:
                while dead_ids & set(nodes[i].neighbors) or not nodes[i].neighbors:
                    await nodes[i].membership_changed()
            await round_of(100, alive)
            nursery.cancel_scope.cancel()


def _check_links(stats: Any, active_size: int) -> None:
    """No peer holds more links than its active view allows (docs/node.md, "Links")."""
    assert stats.neighbors <= active_size, stats
    assert stats.links <= stats.neighbors, stats


async def _check_links_on_every_change(node: Any, scope: trio.CancelScope,
                                       active_size: int) -> None:
    """Check ``_check_links`` at every change of ``node``'s active view while it runs."""
    while not scope.cancel_called:
        _check_links(node.stats(), active_size)
        await node.membership_changed()


async def _hold_subscription(node: Any, query: Any,
                             task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
                             ) -> None:
    async with node.subscribe(query) as subscription:
        task_status.started(subscription)
        await trio.sleep_forever()


async def test_webrtc_links_deliver_to_every_subscriber_and_the_publisher() -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 2)
            urls = [s.url for s, _ in sigs]
            started = await start_nodes(nursery, [[urls[i % 2]] for i in range(4)],
                                        webrtc_links(["127.0.0.1"]), transport)
            nodes = [node for node, _ in started]
            for node in nodes:
                assert node.links.kind == "webrtc"
                await node.wait_neighbors(1)
            subscriptions = [await nursery.start(_hold_subscription, node, marked(ORIGIN_QUERY))
                             for node in nodes]
            matching = {"key": "value", "age": 5, "name": "bob", "type": 4}
            await subscriptions[0].send({"key": "value", "age": 3, "name": "bob", "type": 4})
            message_id = await subscriptions[0].send(matching)
            await subscriptions[0].send({"marker": True})
            for i, subscription in enumerate(subscriptions):
                assert await collect(subscription, 1) == [matching], i
                assert subscription.pending() == 0
            assert len(message_id) == 64
            assert all(node.stats().frames_received > 0 for node in nodes)
            nursery.cancel_scope.cancel()


async def test_tampered_unsigned_oversized_documents_are_dropped_and_counted(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            config = NodeConfig(pubsub=PubsubConfig(max_document_bytes=4096))
            started = await start_nodes(nursery, [[sigs[0][0].url]] * 3, memory_links(network),
                                        transport, config)
            attacker, victim, bystander = (node for node, _ in started)
            for node in (attacker, victim, bystander):
                await node.wait_neighbors(2)
            victim_sub = await nursery.start(_hold_subscription, victim, {})
            bystander_sub = await nursery.start(_hold_subscription, bystander, {})
            good = SignedDocuments(ident(50)).seal({"a": 1}, 1 << 20, published_unix_ms=5,
                                                  nonce=7)
            tampered = good.replace(b"\x08\x01", b"\x08\x02")  # the int 1 becomes 2
            assert tampered != good
            unsigned = Envelope.seal(ident(50), "another-domain", DOCUMENT_PAYLOAD_TYPE,
                                     good[:10])
            oversized = SignedDocuments(ident(50)).seal({"blob": "x" * 10_000}, 1 << 20,
                                                       published_unix_ms=5, nonce=7)
            bad = [tampered, unsigned, oversized, b"junk"]
            bad_ids = [hashlib.sha256(payload).digest() for payload in bad]
            bad.append(good)
            bad_ids.append(b"\x01" * 32)  # a valid document under the wrong id
            # The attacker's own overlay broadcasts them, past its own checks.
            for message_id, payload in zip(bad_ids, bad, strict=True):
                attacker.driver._apply(attacker.driver.router.overlay.broadcast(
                    message_id, payload, trio.current_time()))
            await attacker.publish({"marker": True})
            for subscription in (victim_sub, bystander_sub):
                assert (await subscription.receive()).data == {"marker": True}
                assert subscription.pending() == 0
            for node in (victim, bystander):
                stats = node.stats()
                assert stats.invalid == len(bad), stats
                assert stats.received == 1
            nursery.cancel_scope.cancel()


async def test_slow_subscriber_drops_oldest_and_bad_input_is_refused(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            (node, _), = await start_nodes(nursery, [[sigs[0][0].url]], memory_links(network),
                                           transport)
            with pytest.raises(InvalidQuery):
                node.subscribe({"age": {"$bogus": 1}})
            with pytest.raises(InvalidDocument):
                await node.publish({"blob": "x" * (64 * 1024)})
            async with node.subscribe({"n": {"$exists": True}}, buffer=2) as slow, \
                    node.subscribe({"n": {"$gte": 3}}) as fast:
                for n in range(5):
                    await node.publish({"n": n})
                assert [(await fast.receive()).data["n"] for _ in range(2)] == [3, 4]
                assert [(await slow.receive()).data["n"] for _ in range(2)] == [3, 4]
                assert slow.dropped == 3
                assert node.stats().dropped == 3
                assert node.stats().published == 5
            nursery.cancel_scope.cancel()


async def test_small_overlay_config_caps_links(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = NodeConfig(overlay=OverlayConfig(membership=HyParViewConfig(active_size=2)))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            started = await start_nodes(nursery, [[sigs[0][0].url]] * 6, memory_links(network),
                                        transport, config)
            nodes = [node for node, _ in started]
            subscriptions = [await nursery.start(_hold_subscription, node, {"x": 1})
                             for node in nodes]
            await nodes[5].publish({"x": 1})
            for subscription in subscriptions:
                assert (await subscription.receive()).data == {"x": 1}
            for node in nodes:
                assert node.stats().neighbors <= 2
            nursery.cancel_scope.cancel()


async def test_blocking_subscriber_loses_nothing_and_holds_only_its_node(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            (node, _), = await start_nodes(nursery, [[sigs[0][0].url]], memory_links(network),
                                           transport)
            async with node.subscribe({"n": {"$exists": True}}, buffer=1,
                                      slow_policy="block") as blocking:
                for n in range(4):
                    await node.publish({"n": n})
                assert [(await blocking.receive()).data["n"] for _ in range(4)] == [0, 1, 2, 3]
                assert blocking.dropped == 0
                # Publishing never waits for the reader, even while it is blocked.
                for n in range(4, 8):
                    await node.publish({"n": n})
                assert node.stats().published == 8
            nursery.cancel_scope.cancel()
