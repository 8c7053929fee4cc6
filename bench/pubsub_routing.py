"""Messages per publication: interest routing against plain Plumtree broadcast.

For each share of interested nodes (1 %, 10 %, 100 % by default) the same
seeded scenario (``taiinet.sim.pubsub``) runs twice, once with interest
routing and once with plain Plumtree broadcast, and one table puts them side
by side with their ratio.  Default size is 1,000 nodes so that ``make bench``
stays short; the README figures use ``--nodes 10000 --jobs 3``.

    python bench/pubsub_routing.py [--nodes N] [--interest 0.01,0.1,1] [--jobs J]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from taiinet.pubsub.config import PubsubConfig
from taiinet.sim.pubsub import PubsubSimConfig, simulate


def one(nodes: int, interest: float, routing: bool, seed: int, messages: int) -> dict[str, Any]:
    config = PubsubSimConfig(nodes=nodes, interest=interest, messages=messages, seed=seed,
                             pubsub=PubsubConfig(routing=routing))
    started = time.perf_counter()
    summary = simulate(config).summary()
    summary["runtime_seconds"] = round(time.perf_counter() - started, 1)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--interest", default="0.01,0.1,1")
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="parallel simulations")
    args = parser.parse_args()
    levels = [float(x) for x in args.interest.split(",")]
    jobs = [(args.nodes, level, routing, args.seed, args.messages)
            for level in levels for routing in (True, False)]
    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, *zip(*jobs, strict=True)))
    else:
        results = [one(*job) for job in jobs]
    elapsed = time.perf_counter() - started
    print(f"{args.nodes} nodes, 10 topics, {args.messages} publications after 10 warm-up, "
          f"seed {args.seed}; payload = Gossip, control = IHAVE + GRAFT + PRUNE + adverts")
    print(f"{'interest':>8} {'mode':>9} {'delivery':>9} {'false':>6} {'payload/pub':>12} "
          f"{'control/pub':>12} {'payload/deliv':>14} {'ratio payload':>14} {'runtime s':>10}")
    for index, level in enumerate(levels):
        routed, flooded = results[2 * index], results[2 * index + 1]
        for name, s in (("interest", routed), ("broadcast", flooded)):
            control = (s["ihaves_per_publication"] + s["tree_control_per_publication"]
                       + s["adverts_per_publication"])
            ratio = s["payloads_per_publication"] / max(flooded["payloads_per_publication"], 1e-9)
            print(f"{level:>8.0%} {name:>9} {s['delivery_ratio']:>9.4f} "
                  f"{s['false_deliveries']:>6} {s['payloads_per_publication']:>12.1f} "
                  f"{control:>12.1f} {s['payloads_per_delivery']:>14.3f} {ratio:>14.3f} "
                  f"{s['runtime_seconds']:>10.1f}")
    print(f"total wall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
