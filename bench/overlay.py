"""Overlay benchmark: simulator throughput, and Plumtree against plain flooding.

Runs the ``taiinet sim overlay`` scenario at 10,000 nodes (by default) with no
failure, 50 % and 80 % crashes, then the no-failure and 50 % runs again with
flooding over the same HyParView membership (same seed, so the same overlay),
and prints the tables side by side with ratios.  Times are CPU seconds of
this process (the machine is shared, so wall time says little).

    .venv/bin/python bench/overlay.py                  # 10,000 nodes, 50 messages
    .venv/bin/python bench/overlay.py --nodes 2000     # quicker
"""

from __future__ import annotations

import argparse
import time

from taiinet.overlay.config import PlumtreeConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.sim.overlay import MessageResult, OverlaySimConfig, OverlaySimResult, simulate


def run(nodes: int, messages: int, fail: float, seed: int,
        flood: bool) -> tuple[OverlaySimResult, float]:
    config = OverlaySimConfig(nodes=nodes, messages=messages, fail=fail, seed=seed,
                              overlay=OverlayConfig(broadcast=PlumtreeConfig(flood=flood)))
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


def steady(messages: list[MessageResult], after_failure: bool) -> list[MessageResult]:
    """Messages once the tree has formed (from the third of the phase)."""
    return [m for m in messages if m.after_failure == after_failure][2:]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rows = []
    for fail in (0.0, 0.5, 0.8):
        for flood in (False, True):
            if flood and fail == 0.8:
                continue
            result, elapsed = run(args.nodes, args.messages, fail, args.seed, flood)
            rows.append((fail, flood, result, elapsed))
            print(f"done: fail={fail} {'flood' if flood else 'plumtree'} in {elapsed:.0f} s",
                  flush=True)

    print()
    print(f"Overlay simulation, {args.nodes} nodes, {args.messages} messages, seed {args.seed}")
    print(f"{'fail':>5} {'protocol':>9} {'rel before':>10} {'rel after':>9} {'>=0.99 from':>11} "
          f"{'min rel':>8} {'RMR':>7} {'msgs/deliv':>10} {'LDH':>5} {'max LDH':>7} "
          f"{'LCC':>6} {'events':>9} {'cpu s':>7} {'events/s':>9}")
    by_key = {}
    for fail, flood, result, elapsed in rows:
        s = result.summary()
        settled = steady(result.messages, False) + steady(result.messages, True)
        rmr = mean([m.rmr for m in settled])
        per_delivery = mean([m.payloads / max(m.delivered - 1, 1) for m in settled])
        ldh = mean([float(m.ldh) for m in settled])
        by_key[(fail, flood)] = (per_delivery, ldh)
        rel_after = s["reliability_after"]
        print(f"{fail:>5.0%} {'flood' if flood else 'plumtree':>9} "
              f"{s['reliability_before']:>10.4f} "
              f"{'-' if rel_after is None else f'{rel_after:.4f}':>9} "
              f"{first_reliable(result.messages) if fail else '-':>11} "
              f"{s['min_reliability']:>8.4f} {rmr:>7.3f} {per_delivery:>10.3f} {ldh:>5.1f} "
              f"{s['max_ldh']:>7} {s['largest_component_at_end']:>6.3f} {result.events:>9} "
              f"{elapsed:>7.1f} {result.events / elapsed:>9,.0f}")
    print()
    print("Plumtree vs flooding over the same overlay (messages from the 3rd of each phase):")
    for fail in (0.0, 0.5):
        (tree_cost, tree_ldh), (flood_cost, flood_ldh) = by_key[(fail, False)], by_key[(fail, True)]
        print(f"  fail {fail:.0%}: payload messages per delivery {tree_cost:.3f} vs "
              f"{flood_cost:.3f} ({flood_cost / tree_cost:.2f}x fewer with Plumtree); "
              f"mean LDH {tree_ldh:.1f} vs {flood_ldh:.1f} ({tree_ldh / flood_ldh:.2f}x)")


if __name__ == "__main__":
    main()
