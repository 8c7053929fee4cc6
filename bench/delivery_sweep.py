"""Seed sweep of the routing contract (docs/pubsub.md, section 1) in the simulator.

Each seed builds a 16-node network (active views of 3, every message through
the codecs, links with a log-normal delay of median 20 ms) running the
stable tree, then for 20 simulated seconds interleaves: subscriptions and
unsubscriptions, publications from random nodes (a third of them from a
node that has just joined, as ``taiinet pub`` does), late joiners (4
nodes), link failures and crashes (at most 2).  Then the network is quiet
for 15 s and every promised delivery is checked: a subscription open from
the publication to the end, matching the document, at a live node in the
publisher's component (a crashed publisher's documents are not promised).
Prints lost deliveries, duplicates and wrong deliveries over all seeds; the
contract says all three are 0.

    .venv/bin/python bench/delivery_sweep.py --seeds 1000 [--first 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from taiinet.pubsub.query import Query
from tests.pubsub_harness import PubsubNet

NODES = 16
LATE = 4
QUERIES: list[dict[str, Any]] = [{"topic": "a"}, {"topic": {"$in": ["a", "b"]}},
                                 {"size": {"$gte": 5}}, {}]
CHURN_SECONDS = 20.0
#: (seed, node, publisher, document, input step of the publication) of every lost delivery.
LOST: list[tuple[int, str, str, dict[str, Any], int]] = []
QUIET_SECONDS = 15.0


def _component(net: PubsubNet, start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for peer in net.routers[todo.pop()].active_view:
            if peer not in seen and peer not in net.network.crashed:
                seen.add(peer)
                todo.append(peer)
    return seen


def run_seed(seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    net = PubsubNet(NODES, seed, late=LATE)
    opened: dict[tuple[str, int], int] = {}
    crashed: set[str] = set()
    published: list[tuple[bytes, str, dict[str, Any], int]] = []
    net.run(rng.choice((0.0, 1.0, 5.0)))
    end = net.loop.now + CHURN_SECONDS
    step = 0  # inputs in order: a subscription is promised what is published after it
    while net.loop.now < end:
        step += 1
        live = [p for p in net.ids[:net.started] if p not in crashed]
        roll = rng.random()
        node = rng.choice(live)
        if roll < 0.25:
            q = rng.randrange(len(QUERIES))
            net.subscribe(node, q, QUERIES[q])
            opened.setdefault((node, q), step)
        elif roll < 0.35:
            q = rng.randrange(len(QUERIES))
            net.unsubscribe(node, q)
            opened.pop((node, q), None)
        elif roll < 0.75:
            if net.started < NODES and rng.random() < 0.3:
                node = net.start_late()  # a one-shot publisher: joins, then publishes
                net.run(0.2)
            doc = {"topic": rng.choice("abc"), "size": rng.randrange(10),
                   "seq": len(published)}
            published.append((net.publish(node, doc), node, doc, step))
        elif roll < 0.85 and net.started < NODES:
            net.start_late()
        elif roll < 0.95:
            active = net.routers[node].active_view
            if active:
                peer = rng.choice(active)
                now = net.loop.now
                net.apply(node, net.routers[node].handle_link_down(peer, now))
                net.apply(peer, net.routers[peer].handle_link_down(node, now))
        elif len(crashed) < 2:
            crashed.add(node)
            net.network.crash(node)
        net.run(rng.choice((0.0, 0.01, 0.05, 0.2, 0.5)))
    net.run(QUIET_SECONDS)
    counts: Counter[str] = Counter(promised=0, lost=0, duplicates=0, wrong=0)
    seen: Counter[tuple[str, bytes]] = Counter(
        (node, mid) for node, mid, _subs, _doc in net.deliveries)
    counts["duplicates"] = sum(n - 1 for n in seen.values() if n > 1)
    for _node, _mid, subs, doc in net.deliveries:
        counts["wrong"] += sum(1 for q in subs if not Query(QUERIES[int(str(q))]).matches(doc))
    delivered = {(node, mid): set(subs) for node, mid, subs, _doc in net.deliveries}
    for mid, publisher, doc, at in published:
        if publisher in crashed:
            continue
        for node in _component(net, publisher):
            for (owner, q), since in opened.items():
                if owner == node and since < at and Query(QUERIES[q]).matches(doc):
                    counts["promised"] += 1
                    if q not in delivered.get((node, mid), set()):
                        counts["lost"] += 1
                        LOST.append((seed, node, publisher, doc, at))
    return dict(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--progress", type=int, default=0, metavar="N",
                        help="print the running totals on stderr every N seeds")
    args = parser.parse_args()
    started = time.perf_counter()
    total: Counter[str] = Counter()
    bad: list[int] = []
    for seed in range(args.first, args.first + args.seeds):
        result = run_seed(seed)
        total.update(result)
        if result["lost"] or result["duplicates"] or result["wrong"]:
            bad.append(seed)
            print(f"seed {seed}: {result}", file=sys.stderr, flush=True)
            for lost in LOST:
                print(f"  lost: {lost}", file=sys.stderr, flush=True)
            LOST.clear()
        done = seed - args.first + 1
        if args.progress and done % args.progress == 0:
            print(f"{done} seeds: {dict(total)} ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    summary = {"seeds": args.seeds, "first": args.first, **dict(total), "failing_seeds": bad,
               "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.seeds} seeds from {args.first}: {total['promised']} promised deliveries, "
              f"{total['lost']} lost, {total['duplicates']} duplicates, {total['wrong']} wrong "
              f"({summary['seconds']} s)")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
