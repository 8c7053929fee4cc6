"""Delivery queues are bounded in bytes, not only in documents.

A decoded document takes several times its encoded size (a 16 KB document
of 4,000 empty maps decodes to ~300 KB), so a reader that falls behind on
large matching documents must not pin ``buffer`` of them.  One node over
memory links publishing to its own subscriptions, on trio's MockClock (a
``sleep`` there ends when every task is idle); tracemalloc measures what the
queues hold.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import trio
import trio.testing

from taiinet.node import NodeConfig, memory_links
from taiinet.node.routed import DeliveryQueue
from taiinet.pubsub.actions import Deliver
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from tests.node_support import start_nodes, start_signallers

#: Values in each large document: under the decode bound (4,096), ~300 KB decoded.
MAPS = 4000


def _large(n: int) -> dict[str, Any]:
    return {"n": n, "maps": [{} for _ in range(MAPS)]}


async def test_a_slow_subscriber_holds_its_bytes_budget_not_1024_large_documents(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = NodeConfig()
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            (node, _), = await start_nodes(nursery, [[sigs[0][0].url]], memory_links(network),
                                           transport)
            async with node.subscribe({"n": {"$exists": True}}) as slow:
                tracemalloc.start()
                try:
                    before = tracemalloc.get_traced_memory()[0]
                    for n in range(150):  # ~45 MB decoded; nobody reads
                        await node.publish(_large(n))
                    await trio.sleep(0.5)
                    held = tracemalloc.get_traced_memory()[0] - before
                finally:
                    tracemalloc.stop()
                limit = config.subscription_buffer_bytes
                assert slow.queued_bytes <= limit
                # The router's own document cache (16 MB) holds the same documents.
                assert held < limit + 8 * 1024 * 1024, f"{held} bytes held"
                assert slow.dropped > 0 and slow.pending() < 150
                got = [(await slow.receive()).data["n"] for _ in range(slow.pending())]
                assert got == sorted(got) and got[-1] == 149  # the oldest were dropped
                assert slow.queued_bytes == 0
            nursery.cancel_scope.cancel()


async def test_a_blocking_subscriber_holds_its_bytes_and_the_node_queue_drops_the_rest(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    budget = 2 * 1024 * 1024
    config = NodeConfig(subscription_buffer_bytes=budget, delivery_buffer_bytes=budget)
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            sigs = await start_signallers(nursery, transport, 1)
            (node, _), = await start_nodes(nursery, [[sigs[0][0].url]], memory_links(network),
                                           transport, config)
            async with node.subscribe({"n": {"$exists": True}}, slow_policy="block") as blocking:
                for n in range(40):
                    await node.publish(_large(n))
                await trio.sleep(0.5)
                assert 0 < blocking.queued_bytes <= budget
                assert 0 < node.driver.documents.queued_bytes <= budget
                queued = blocking.pending()
                assert queued < 10
                got: list[int] = []
                with trio.move_on_after(2):
                    while True:
                        got.append((await blocking.receive()).data["n"])
                # Nothing lost past the subscription; the node's queue dropped what
                # did not fit while the delivery task waited for the reader.
                assert got == list(range(len(got))) and len(got) < 40
                assert blocking.dropped == 0
                assert node.driver.dropped_documents == 40 - len(got)
            nursery.cancel_scope.cancel()


async def test_the_delivery_queue_takes_one_document_of_any_size(autojump_clock: object) -> None:
    queue = DeliveryQueue(limit=8, limit_bytes=1000)

    def deliver(cost: int) -> Deliver:
        return Deliver(subscription_ids=(1,), document={}, publisher="p", message_id=b"m",
                       published_unix_ms=0, hops=1, cost=cost)

    assert queue.offer(deliver(5000))  # alone: taken
    assert not queue.offer(deliver(1))
    assert (await queue.receive()).cost == 5000 and queue.queued_bytes == 0
    assert [queue.offer(deliver(400)) for _ in range(3)] == [True, True, False]
    assert queue.queued_bytes == 800
