"""``taiinet sim signal``: offers relayed across a mesh of signallers, with churn and crashes.

Registered by ``taiinet/cli/sim.py`` (``SIM_MODULES``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from taiinet.cli.sim_args import add_common, checked
from taiinet.sim.signal import (
    MAX_SIM_PEERS,
    MAX_SIM_SIGNALLERS,
    SignalSimConfig,
    SignalSimResult,
    simulate_signal,
)


def register(sims: Any) -> None:
    """Add ``signal`` to the subparsers of ``taiinet sim``."""
    parser: argparse.ArgumentParser = sims.add_parser(
        "signal", help="simulate signalling: offer success, hops and time to answer")
    parser.add_argument("--signallers", type=int, default=1000,
                        help=f"number of signallers (2..{MAX_SIM_SIGNALLERS}; default 1000)")
    parser.add_argument("--peers", type=int, default=1000,
                        help=f"number of peers (2..{MAX_SIM_PEERS}; default 1000)")
    parser.add_argument("--crash", type=float, default=0.0,
                        help="fraction of signallers that crash at once (default 0)")
    parser.add_argument("--churn", type=float, default=0.0,
                        help="fraction of peers that leave and are replaced (default 0)")
    parser.add_argument("--offers", type=int, default=1000,
                        help="offers measured in each phase (default 1000)")
    parser.add_argument("--homes", type=int, default=3,
                        help="signaller URLs each peer may fail over among (default 3)")
    add_common(parser, seed=1)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = checked(lambda: SignalSimConfig(
        signallers=args.signallers, peers=args.peers, crash=args.crash, churn=args.churn,
        offers=args.offers, homes=args.homes, seed=args.seed))
    started = time.monotonic()
    result = simulate_signal(config)
    runtime = time.monotonic() - started
    if args.json:
        out = result.as_json()
        out["runtime_seconds"] = round(runtime, 1)
        print(json.dumps(out))
    else:
        print(format_table(result, runtime))
    return 0


def format_table(result: SignalSimResult, runtime: float) -> str:
    c = result.config
    lines = [f"signallers={c.signallers} peers={c.peers} crash={c.crash} churn={c.churn} "
             f"offers={c.offers} seed={c.seed} messages={result.messages} "
             f"runtime={runtime:.1f}s",
             f"{'phase':<14}{'success':>9}{'hops p50':>10}{'hops p99':>10}"
             f"{'answer p50':>12}{'answer p99':>12}{'unhomed':>9}"]
    for name, phase in result.phases:
        lines.append(f"{name.replace('_', ' '):<14}{phase.success:>9.2%}{phase.hops_p50:>10.0f}"
                     f"{phase.hops_p99:>10.0f}{phase.answer_p50:>11.3f}s"
                     f"{phase.answer_p99:>11.3f}s{phase.unhomed:>9}")
    return "\n".join(lines)
