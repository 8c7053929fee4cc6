"""Overlay benchmark: simulator throughput, and Plumtree against plain flooding.

Runs the ``taiinet sim overlay`` scenario at 10,000 nodes (by default) with no
failure, 50 % and 80 % crashes, then the no-failure and 50 % runs again with
flooding over the same HyParView membership (same seed, so the same overlay),
and prints the tables side by side with ratios.  With ``--flood-prefix H``
every Plumtree run is repeated with a flood prefix of H hops (row
``prefix H``).  Times are CPU seconds of this process (the machine is
shared, so wall time says little).

    .venv/bin/python bench/overlay.py                  # 10,000 nodes, 50 messages
    .venv/bin/python bench/overlay.py --nodes 2000     # quicker
    .venv/bin/python bench/overlay.py --sources 5      # all from 5 publishers
    .venv/bin/python bench/overlay.py --flood-prefix 3 # and Plumtree with a 3-hop prefix
    .venv/bin/python bench/overlay.py --fail 0.8 --no-flood   # one row per process
"""

from __future__ import annotations

import argparse
import time

from taiinet.overlay.config import PlumtreeConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.sim.overlay import MessageResult, OverlaySimConfig, OverlaySimResult, simulate


def run(nodes: int, messages: int, fail: float, seed: int, sources: int,
        flood: bool, prefix: int = 0) -> tuple[OverlaySimResult, float]:
    broadcast = PlumtreeConfig(flood=flood, flood_prefix=prefix)
    config = OverlaySimConfig(nodes=nodes, messages=messages, fail=fail, seed=seed,
                              sources=sources, overlay=OverlayConfig(broadcast=broadcast))
    started = time.process_time()
    result = simulate(config)
    return result, time.process_time() - started


def first_reliable(messages: list[MessageResult], threshold: float = 0.99) -> str:
    """1-based position of the first after-failure message from which all are reliable."""
    after = [m for m in messages if m.after_failure]
    for start in range(len(after)):
        if all(m.reliability >= threshold for m in after[start:]):
            return str(start + 1)
    return "never"


def settled(messages: list[MessageResult]) -> list[MessageResult]:
    """Messages from the third of each phase (the first broadcast floods and builds the tree)."""
    return ([m for m in messages if not m.after_failure][2:]
            + [m for m in messages if m.after_failure][2:])


def steady(messages: list[MessageResult]) -> list[MessageResult]:
    """Settled messages but the second of each origin (it floods and builds the origin's tree)."""
    return [m for m in settled(messages) if m.origin_rank != 2]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sources", type=int, default=0,
                        help="publishers (default 0: each message from a random node)")
    parser.add_argument("--flood-prefix", type=int, default=0, metavar="HOPS",
                        help="also run Plumtree with a flood prefix of HOPS hops")
    parser.add_argument("--fail", type=float, action="append", metavar="SHARE",
                        help="only this crash share (repeatable; default 0, 0.5 and 0.8): "
                             "rows can run as separate processes")
    parser.add_argument("--no-flood", action="store_true", help="skip the flooding rows")
    args = parser.parse_args()

    kinds = ["plumtree", *([f"prefix {args.flood_prefix}"] if args.flood_prefix else []),
             *([] if args.no_flood else ["flood"])]
    rows = []
    for fail in args.fail or (0.0, 0.5, 0.8):
        for kind in kinds:
            if kind == "flood" and fail == 0.8:
                continue
            prefix = args.flood_prefix if kind.startswith("prefix") else 0
            result, elapsed = run(args.nodes, args.messages, fail, args.seed, args.sources,
                                  kind == "flood", prefix)
            rows.append((fail, kind, result, elapsed))
            print(f"done: fail={fail} {kind} in {elapsed:.0f} s", flush=True)

    print()
    origins = f"{args.sources} publishers" if args.sources else "random sources"
    print(f"Overlay simulation, {args.nodes} nodes, {args.messages} messages, {origins}, "
          f"seed {args.seed}")
    print(f"{'fail':>5} {'protocol':>10} {'rel before':>10} {'rel after':>9} {'>=0.99 from':>11} "
          f"{'min rel':>8} {'RMR':>7} {'RMR all':>7} {'msgs/deliv':>10} {'LDH':>5} "
          f"{'max LDH':>7} "
          f"{'LCC':>6} {'events':>9} {'cpu s':>7} {'events/s':>9}")
    by_key = {}
    for fail, kind, result, elapsed in rows:
        s = result.summary()
        formed = steady(result.messages)
        rmr = mean([m.rmr for m in formed])
        rmr_all = mean([m.rmr for m in settled(result.messages)])
        per_delivery = mean([m.payloads / max(m.delivered - 1, 1) for m in formed])
        ldh = mean([float(m.ldh) for m in formed])
        by_key[(fail, kind)] = (per_delivery, ldh)
        rel_after = s["reliability_after"]
        print(f"{fail:>5.0%} {kind:>10} "
              f"{s['reliability_before']:>10.4f} "
              f"{'-' if rel_after is None else f'{rel_after:.4f}':>9} "
              f"{first_reliable(result.messages) if fail else '-':>11} "
              f"{s['min_reliability']:>8.4f} {rmr:>7.3f} {rmr_all:>7.3f} {per_delivery:>10.3f} "
              f"{ldh:>5.1f} "
              f"{s['max_ldh']:>7} {s['largest_component_at_end']:>6.3f} {result.events:>9} "
              f"{elapsed:>7.1f} {result.events / elapsed:>9,.0f}")
    if any(kind == "flood" for _, kind in by_key):
        print()
        print("Plumtree vs flooding over the same overlay (messages from the 3rd of each phase, "
              "but the 2nd of each origin):")
    for fail in (0.0, 0.5):
        if (fail, "flood") not in by_key:
            continue
        flood_cost, flood_ldh = by_key[(fail, "flood")]
        for kind in kinds[:-1]:
            tree_cost, tree_ldh = by_key[(fail, kind)]
            print(f"  fail {fail:.0%}, {kind}: payload messages per delivery {tree_cost:.3f} vs "
                  f"{flood_cost:.3f} ({flood_cost / tree_cost:.2f}x fewer); "
                  f"mean LDH {tree_ldh:.1f} vs {flood_ldh:.1f} ({tree_ldh / flood_ldh:.2f}x)")


if __name__ == "__main__":
    main()
