"""CPU per delivery of the shared pubsub hot path, without links or trio.

``bench/pubsub.py``'s shape (``--nodes`` signed nodes, one publisher, every
other node subscribed to ``{"seq": {"$gte": 0}}``, documents of about 256
bytes) on the simulator's harness (``tests.pubsub_harness``): every message
goes through the overlay and pubsub codecs, every document is signed and
verified, but no link, Noise, WebSocket or task switch is involved.  So it
measures what every link kind shares (documents, envelopes, the query
index, the tree router, the codecs) and is steady under machine load, since
it reports process CPU time.  To compare two trees, run it alternately with
``PYTHONPATH`` pointing at each.

    python bench/hotpath.py [--nodes 20] [--messages 2000] [--repeat 3] [--gc-stats]

``--gc-stats`` also prints what the garbage collector did in the measured
step (``_gcstats.py``: collections per 1,000 deliveries, objects walked by
full collections, GC time per delivery) and the tracked objects made during
the step and still alive at its end, by type; it adds CPU of its own.
"""

from __future__ import annotations

import argparse
import os
import time

from _gcstats import GcStats

from tests.pubsub_harness import PubsubNet


def run_once(nodes: int, messages: int, seed: int,
             gc_stats: GcStats | None = None) -> tuple[float, int]:
    """(CPU seconds, deliveries) of ``messages`` publications once the mesh settled."""
    net = PubsubNet(nodes, seed, signed=True, active_size=5)
    net.run(5.0)
    for peer in net.ids[1:]:
        net.subscribe(peer, "s", {"seq": {"$gte": 0}})
    net.run(5.0)
    publisher = net.ids[0]
    pad = "x" * 200
    before = net.delivered
    if gc_stats is not None:
        gc_stats.start()
    started = time.process_time()
    for seq in range(messages):
        net.publish(publisher, {"seq": seq, "t": 1234567.25, "pad": pad})
        net.run(0.002)
    net.run(5.0)
    cpu = time.process_time() - started
    if gc_stats is not None:
        gc_stats.stop()
    return cpu, net.delivered - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gc-stats", action="store_true",
                        help="print what the garbage collector did (adds CPU)")
    args = parser.parse_args()
    best = float("inf")
    gc_stats = GcStats() if args.gc_stats else None
    for _ in range(args.repeat):
        cpu, deliveries = run_once(args.nodes, args.messages, args.seed, gc_stats)
        expected = args.messages * (args.nodes - 1)
        per = cpu / max(deliveries, 1) * 1e6
        best = min(best, per)
        print(f"{deliveries}/{expected} delivered, CPU {per:.1f} us/delivery")
        if gc_stats is not None:
            print("  " + gc_stats.report(deliveries))
            print("  " + gc_stats.new_by_type())
    print(f"best {best:.1f} us/delivery (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
