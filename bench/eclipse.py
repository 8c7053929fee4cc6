"""Eclipse-attack benchmark: what Sybils re-joining one node cost it, in the simulator.

Runs ``taiinet.sim.eclipse`` (200 honest nodes, 40 s to settle, a 60 s
attack on one node, a broadcast from a random node every 0.5 s) for three
attackers over several seeds and prints, per run, the victim's honest
neighbours (at the start, fewest, mean, kept to the end), the broadcasts
of others it got and its longest time without one.

    .venv/bin/python bench/eclipse.py               # seeds 0-5
    .venv/bin/python bench/eclipse.py --seeds 3
"""

from __future__ import annotations

import argparse

from taiinet.sim.eclipse import EclipseConfig, simulate_eclipse

ATTACKS: dict[str, dict[str, object]] = {
    "12 Sybils re-joining": {"sybils": 12},
    "12 fresh ids, Join/Neighbor(high)": {"sybils": 12, "fresh_identities": True,
                                          "high_priority": True},
    "24 fresh ids + ghost walks 5/s": {"sybils": 24, "fresh_identities": True,
                                       "high_priority": True, "ghost_walks": 5.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    print(f"{'attack':>34} seed victim  honest start/min/mean/kept  delivered  gap s  attempts")
    for name, attack in ATTACKS.items():
        for seed in range(args.seeds):
            r = simulate_eclipse(EclipseConfig(nodes=args.nodes, seed=seed,
                                               **attack))  # type: ignore[arg-type]
            victim = r.victim[-6:]
            print(f"{name:>34} {seed:>4} {victim:>6}  {r.honest_at_start:>5} {r.honest_min:>3}"
                  f" {r.honest_mean:>5.2f} {r.kept:>4}  {r.delivered:>4}/{r.sent:<4}"
                  f" {r.longest_gap:>6.2f} {r.attempts:>8}")


if __name__ == "__main__":
    main()
