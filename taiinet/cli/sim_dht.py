"""``taiinet sim dht``: size the signallers' DHT in the simulator.

Registered by ``taiinet/cli/sim.py`` (``SIM_MODULES``): :func:`register`
adds ``dht`` to the subparsers of ``taiinet sim``.
"""

from __future__ import annotations

import argparse
import json
import time

from taiinet.cli.sim_args import BadSimArguments, add_common
from taiinet.sim.dht import MAX_SIM_SIGNALLERS, DhtSimConfig, DhtSimResult, run_dht_simulation

__all__ = ["BadSimArguments", "register", "run"]


def register(sim_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dht`` to the subparsers of ``taiinet sim``."""
    parser = sim_subparsers.add_parser(
        "dht", help="simulate the signallers' Kademlia DHT: lookup hops and success")
    parser.add_argument("--signallers", type=int, default=1000,
                        help=f"number of signallers (2..{MAX_SIM_SIGNALLERS}; default 1000)")
    parser.add_argument("--crash", type=float, default=0.0,
                        help="fraction of signallers that crash after the join (default 0)")
    parser.add_argument("--lookups", type=int, default=1000,
                        help="lookups measured in each phase (default 1000)")
    add_common(parser, seed=1)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 2 <= args.signallers <= MAX_SIM_SIGNALLERS:
        raise BadSimArguments(f"--signallers must be in 2..{MAX_SIM_SIGNALLERS}")
    if not 0.0 <= args.crash < 1.0:
        raise BadSimArguments("--crash must be a fraction in [0, 1), e.g. 0.2")
    if args.lookups < 1:
        raise BadSimArguments("--lookups must be at least 1")
    started = time.monotonic()
    result = run_dht_simulation(DhtSimConfig(
        signallers=args.signallers, crash=args.crash, lookups=args.lookups, seed=args.seed))
    runtime = time.monotonic() - started
    if args.json:
        out = result.as_json()
        out["runtime_seconds"] = round(runtime, 1)
        print(json.dumps(out))
    else:
        print(format_table(result, runtime))
    return 0


def format_table(result: DhtSimResult, runtime: float) -> str:
    lines = [f"signallers={result.signallers} crash={result.crash} lookups={result.lookups} "
             f"seed={result.seed} messages={result.messages} runtime={runtime:.1f}s",
             f"{'phase':<14}{'success':>9}{'hops p50':>10}{'hops p99':>10}{'req/lookup':>12}"]
    phases = [("steady", result.steady), ("after crash", result.after_crash),
              ("after refresh", result.after_refresh)]
    for name, phase in phases:
        if phase is None:
            continue
        lines.append(f"{name:<14}{phase.success:>9.2%}{phase.hops_p50:>10.0f}"
                     f"{phase.hops_p99:>10.0f}{phase.requests_mean:>12.1f}")
    return "\n".join(lines)
