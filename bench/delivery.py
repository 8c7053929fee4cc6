"""CPU per document of a node's local delivery path, without links.

One node over memory links publishes to its own subscription while a reader
task drains it: each document is sealed (signed), routed, handed to the
subscription and read, ``--batch`` documents per scheduler round (the
reader catches up before the next batch), as a busy node's link reader
hands over the documents of one frame.  Reports process CPU per document,
so it is steady under machine load; compare two trees by running it
alternately with ``PYTHONPATH`` pointing at each.

    python bench/delivery.py [--documents 2000] [--batch 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time

import trio

from taiinet.node import Node, Subscription, memory_links
from taiinet.signal.transport import MemorySignalTransport
from taiinet.testing.mesh import start_nodes, start_signallers
from taiinet.transport.memory import MemoryNetwork


async def _read(subscription: Subscription, counter: list[int]) -> None:
    async for _message in subscription:
        counter[0] += 1


async def _run_once(node: Node, subscription: Subscription, counter: list[int],
                    documents: int, batch: int, nonce: int) -> float:
    """CPU seconds of ``documents`` publications, delivered and read."""
    start, started = counter[0], time.process_time()
    for first in range(0, documents, batch):
        for n in range(first, min(first + batch, documents)):
            node.driver.publish({"n": n, "pad": "x" * 200}, published_unix_ms=1,
                                nonce=nonce + n)
        while counter[0] < start + min(first + batch, documents):
            await trio.sleep(0)
    return time.process_time() - started


async def main(documents: int, batch: int, repeat: int) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery:
        sigs = await start_signallers(nursery, transport, 1)
        (node, _), = await start_nodes(nursery, [[sigs[0][0].url]], memory_links(network),
                                       transport)
        counter = [0]
        results = []
        async with node.subscribe({"n": {"$gte": 0}}) as subscription:
            nursery.start_soon(_read, subscription, counter)
            for run in range(repeat):
                cpu = await _run_once(node, subscription, counter, documents, batch,
                                      1 + run * documents)
                results.append(cpu / documents * 1e6)
                print(f"{documents} documents, batch {batch}: CPU {results[-1]:.1f} us/document")
            nursery.cancel_scope.cancel()
    print(f"best {min(results):.1f} us/document (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trio.run(main, args.documents, args.batch, args.repeat)
