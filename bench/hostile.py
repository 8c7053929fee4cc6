"""Hostile-network benchmark: every attack of ``tests/hostile`` for a minute each.

Each attack runs against a fresh world of real loopback processes (``taiinet
signal`` and a legitimate ``sub``/``pub`` pair over WebSocket links, the
publisher sending 10 documents a second) for ``--seconds`` (default 60), and
the same world without an attack runs first as the baseline.  One row per
run, side by side:

* RSS of each attacked process at the start, its peak and at the end (MiB),
  and whether it is still alive;
* the legitimate pair's deliveries during the run: documents delivered of
  those published, the longest time without a delivery, the median latency;
  for attacks that run before the pair starts (stale or forged signaller
  state), the figures cover the pair's first ``--seconds`` and "first" says
  how long its first delivery took;
* "first": seconds from starting the pair to its first delivery (before the
  attack, or after it for the attacks that run before the pair);
* for the slot attack, whether a fresh ``sub`` got in while it went on.

Run: ``.venv/bin/python bench/hostile.py [--seconds 60] [--only NAME]... [--json]``
(about 75 s per attack at the default; ``--seconds 10`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.attacks import ATTACKS, Outcome, describe_counts, run_attack


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long each attack runs (default 60)")
    parser.add_argument("--only", action="append", choices=sorted(ATTACKS), metavar="NAME",
                        help=f"run only this attack (repeatable): {', '.join(ATTACKS)}")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unattacked run")
    parser.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    return parser.parse_args(argv)


def as_dict(outcome: Outcome) -> dict[str, Any]:
    figures = outcome.figures
    return {
        "attack": outcome.attack,
        "seconds": outcome.seconds,
        "alive": outcome.alive,
        "rss_mib": {name: {"start": round(m.start, 1), "peak": round(m.peak, 1),
                           "end": round(m.end, 1)} for name, m in outcome.memory.items()},
        "sent": figures.sent,
        "delivered": figures.delivered,
        "longest_gap_s": round(figures.longest_gap, 2),
        "p50_latency_ms": None if math.isinf(figures.p50_latency)
        else round(figures.p50_latency * 1000, 1),
        "recovered": outcome.recovered,
        "before_pair": outcome.before_pair,
        "first_delivery_s": None if outcome.first_delivery is None
        else round(outcome.first_delivery, 2),
        "newcomer": outcome.newcomer,
        "attacker": dict(outcome.counts),
    }


HEADER = ("attack", "victim: RSS start/peak/end MiB", "alive", "delivered", "gap s", "p50 ms",
          "notes")


def row(outcome: Outcome) -> tuple[str, ...]:
    data = as_dict(outcome)
    rss = "; ".join(f"{name} {m['start']:.0f}/{m['peak']:.0f}/{m['end']:.0f}"
                    for name, m in data["rss_mib"].items())
    alive = "yes" if all(outcome.alive.values()) else "DIED: " + ", ".join(outcome.dead())
    notes = []
    if outcome.first_delivery is not None:
        notes.append(f"first {outcome.first_delivery:.1f} s")
    if not outcome.recovered:
        notes.append("no delivery " + ("at all" if outcome.before_pair else "after"))
    if outcome.newcomer is not None:
        notes.append("newcomer in" if outcome.newcomer else "newcomer LOCKED OUT")
    p50 = "-" if data["p50_latency_ms"] is None else f"{data['p50_latency_ms']:.0f}"
    return (outcome.attack, rss, alive, f"{data['delivered']}/{data['sent']}",
            f"{data['longest_gap_s']:.1f}", p50, ", ".join(notes))


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for r in [HEADER, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip(),
              flush=True)


async def main(args: argparse.Namespace) -> None:
    names = args.only or list(ATTACKS)
    runs: list[str | None] = ([] if args.no_baseline else [None]) + names
    rows = []
    for name in runs:
        attack = None if name is None else ATTACKS[name]
        outcome = await run_attack(attack, args.seconds, observe=args.seconds)
        if args.json:
            print(json.dumps(as_dict(outcome)), flush=True)
        else:
            print(f"# {outcome.attack}: attacker {describe_counts(outcome.counts)}",
                  file=sys.stderr, flush=True)
            rows.append(row(outcome))
    if not args.json:
        print_table(rows)


if __name__ == "__main__":
    trio.run(main, parse(sys.argv[1:]))
