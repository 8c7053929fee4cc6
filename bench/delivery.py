"""CPU per document of a node's local delivery path, without links.

One node over memory links publishes to its own subscription while a reader
task drains it: each document is sealed (signed), routed, handed to the
subscription and read, ``--batch`` documents per scheduler round (the
reader catches up before the next batch), as a busy node's link reader
hands over the documents of one frame.  Reports process CPU per document,
so it is steady under machine load; compare two trees by running it
alternately with ``PYTHONPATH`` pointing at each.

``--publish-only``: the publisher's own work alone.  The publisher has
``--neighbours`` subscribed neighbours (memory links) and no subscription;
only its ``publish`` calls are timed (seal, route, the pushes queued on its
links), ``--batch`` at a time, the links written and read between batches
outside the timing: the publisher's share of a saturated ``bench/pubsub.py``
run.  ``--profile`` prints a cProfile of those calls (by own time).

    python bench/delivery.py [--documents 2000] [--batch 5] [--repeat 5]
    python bench/delivery.py --publish-only [--neighbours 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
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


async def _publish_once(node: Node, counters: list[list[int]], documents: int, batch: int,
                        nonce: int, profile: cProfile.Profile | None) -> float:
    """CPU seconds of the publisher's ``publish`` calls alone (``batch`` at a time;
    between batches every subscriber gets what was published, untimed)."""
    starts = [counter[0] for counter in counters]
    cpu = 0.0
    for first in range(0, documents, batch):
        last = min(first + batch, documents)
        if profile is not None:
            profile.enable()
        started = time.process_time()
        for n in range(first, last):
            node.driver.publish({"n": n, "pad": "x" * 200}, published_unix_ms=1 + nonce + n,
                                nonce=nonce + n)
        cpu += time.process_time() - started
        if profile is not None:
            profile.disable()
        # Until every subscriber has the batch: scheduler rounds first, then 1 ms
        # sleeps (a link holding a frame for more documents waits on a timer); after
        # ~1 s without progress what is missing is forgiven, so that later batches do
        # not wait for it.  Publishing this fast (over 1,000 a second) goes past what
        # a receiver lets one neighbour push (docs/pubsub.md section 11: 500 a second,
        # bursts of 1,000): it drops the rest, as designed, and counts them in its
        # router's ``over_budget``; a few per 1,000 publications here.
        idle = 0
        while any(counter[0] < start + last for counter, start in zip(counters, starts,
                                                                        strict=True)):
            seen = sum(counter[0] for counter in counters)
            await trio.sleep(0 if idle < 100 else 0.001)
            idle = 0 if sum(counter[0] for counter in counters) != seen else idle + 1
            if idle > 1100:
                starts = [min(start, counter[0] - last)
                          for counter, start in zip(counters, starts, strict=True)]
    return cpu


async def publish_only(documents: int, batch: int, repeat: int, neighbours: int,
                       profile: bool) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    profiler = cProfile.Profile() if profile else None
    async with trio.open_nursery() as nursery:
        sigs = await start_signallers(nursery, transport, 1)
        started = await start_nodes(nursery, [[sigs[0][0].url]] * (1 + neighbours),
                                    memory_links(network), transport)
        publisher, others = started[0][0], [node for node, _ in started[1:]]
        counters = [[0] for _ in others]
        for node, counter in zip(others, counters, strict=True):
            nursery.start_soon(_read, await node.subscribe({"n": {"$gte": 0}}).__aenter__(),
                               counter)
        with trio.move_on_after(10):
            await publisher.wait_neighbors(min(neighbours, 1))
        # Warm-up: until one publication reaches every subscriber (adverts travelled).
        warm = 0
        while not all(counter[0] for counter in counters) and warm < 2000:
            publisher.driver.publish({"n": -1 - warm}, published_unix_ms=1, nonce=warm)
            publisher.driver.publish({"n": warm}, published_unix_ms=1, nonce=10**6 + warm)
            warm += 1
            await trio.sleep(0.01)
        results = []
        for run in range(repeat):
            cpu = await _publish_once(publisher, counters, documents, batch,
                                      (run + 1) * 10**7, profiler)
            results.append(cpu / documents * 1e6)
            print(f"{documents} publications, {neighbours} neighbours, batch {batch}: "
                  f"CPU {results[-1]:.1f} us/publication")
        nursery.cancel_scope.cancel()
    print(f"best {min(results):.1f} us/publication (load {os.getloadavg()[0]:.2f})")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(40)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--publish-only", action="store_true",
                        help="time the publisher's publish calls alone (see the docstring)")
    parser.add_argument("--neighbours", type=int, default=3,
                        help="subscribed neighbours of the publisher (--publish-only)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the publish calls (--publish-only)")
    args = parser.parse_args()
    if args.publish_only:
        trio.run(publish_only, args.documents, args.batch, args.repeat, args.neighbours,
                 args.profile)
    else:
        trio.run(main, args.documents, args.batch, args.repeat)
