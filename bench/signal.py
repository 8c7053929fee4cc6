"""Signalling benchmarks; prints one table.

Rows so far:
* DHT core: messages handled per second by the simulator driving the real
  Kademlia cores (the CPU cost of the protocol logic, no I/O), and lookups
  of a 1,000-signaller mesh with and without 20% crashed.

Run: ``.venv/bin/python bench/signal.py``
"""

from __future__ import annotations

import time

from taiinet.sim.dht import DhtSimConfig, run_dht_simulation


def bench_dht_core(signallers: int, crash: float, lookups: int) -> dict[str, float]:
    started = time.perf_counter()
    result = run_dht_simulation(DhtSimConfig(signallers=signallers, crash=crash,
                                             lookups=lookups, seed=1))
    elapsed = time.perf_counter() - started
    phase = result.after_crash or result.steady
    return {"seconds": elapsed, "messages_per_s": result.messages / elapsed,
            "success": phase.success, "hops_p50": phase.hops_p50, "hops_p99": phase.hops_p99}


def main() -> None:
    rows = [("dht 1000 signallers", bench_dht_core(1000, 0.0, 500)),
            ("dht 1000, 20% crashed", bench_dht_core(1000, 0.2, 500))]
    base = rows[0][1]["messages_per_s"]
    print(f"{'case':<26}{'msgs/s':>10}{'ratio':>7}{'success':>9}{'p50':>5}{'p99':>5}"
          f"{'wall s':>8}")
    for name, row in rows:
        print(f"{name:<26}{row['messages_per_s']:>10.0f}{row['messages_per_s'] / base:>7.2f}"
              f"{row['success']:>9.1%}{row['hops_p50']:>5.0f}{row['hops_p99']:>5.0f}"
              f"{row['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
