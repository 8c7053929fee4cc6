"""``taiinet sim overlay``: HyParView + Plumtree at thousands of nodes, with crashes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from taiinet.cli.sim_args import (
    add_common,
    add_latency,
    add_plot,
    add_progress,
    checked,
    link_model,
    progress_bar,
    pyplot,
)
from taiinet.overlay.config import HyParViewConfig, PlumtreeConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.sim.overlay import OverlaySimConfig, OverlaySimResult, simulate


def register(sims: Any) -> None:
    parser: argparse.ArgumentParser = sims.add_parser(
        "overlay", help="HyParView + Plumtree broadcast reliability under crashes",
        description=(
            "Nodes join one by one through a random live contact, the overlay stabilises, "
            "half of the broadcasts are sent from random nodes, a fraction of the nodes "
            "crash at once, then the other half is sent. Prints reliability, RMR and last "
            "delivery hop per broadcast."))
    parser.add_argument("--nodes", type=int, default=1000, help="number of nodes (default 1000)")
    parser.add_argument("--fail", type=float, default=0.0,
                        help="share of nodes that crash at half time, in [0, 1) (default 0)")
    parser.add_argument("--messages", type=int, default=50, help="broadcasts (default 50)")
    add_common(parser, seed=0)
    parser.add_argument("--sources", type=int, default=0,
                        help="publishers the broadcasts come from (default 0: a random "
                             "node each)")
    add_plot(parser, "reliability and RMR per message")
    parser.add_argument("--flood", action="store_true",
                        help="flood payloads on every link instead of Plumtree (a baseline)")
    parser.add_argument("--flood-prefix", type=int, default=0, metavar="HOPS",
                        help="push each message to every neighbour for its first HOPS hops, "
                             "then along the shared tree (default 0)")
    add_latency(parser)
    parser.add_argument("--loss", type=float, default=0.0, help="message loss rate (default 0)")
    parser.add_argument("--active", type=int, default=5, help="active view size (default 5)")
    parser.add_argument("--passive", type=int, default=30, help="passive view size (default 30)")
    parser.add_argument("--wire", action="store_true",
                        help="encode and decode every message through protobuf (slower)")
    add_progress(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> OverlaySimConfig:
    link = link_model(args.latency, args.loss)
    return checked(lambda: OverlaySimConfig(
        nodes=args.nodes, fail=args.fail, messages=args.messages, seed=args.seed,
        sources=args.sources, link=link, wire_codec=args.wire, overlay=OverlayConfig(
            membership=HyParViewConfig(active_size=args.active, passive_size=args.passive),
            broadcast=PlumtreeConfig(flood=args.flood, flood_prefix=args.flood_prefix))))


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    started = time.perf_counter()
    with progress_bar(args, f"simulating {config.nodes} nodes") as progress:
        result = simulate(config, progress)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"messages": [m.as_json() for m in result.messages],
                          "summary": result.summary()}))
    else:
        print_table(result)
    print(f"simulated {result.events} events in {elapsed:.1f} s "
          f"({result.events / max(elapsed, 1e-9):,.0f} events/s)", file=sys.stderr)
    if args.plot:
        write_plot(result, args.plot)
    return 0


def print_table(result: OverlaySimResult) -> None:
    # origin#: 1 for an origin's first broadcast, 2 for its second (it floods the
    # origin's own tree), and so on.
    print(f"{'msg':>4} {'phase':>6} {'origin#':>7} {'reliability':>11} {'rmr':>7} {'ldh':>4} "
          f"{'payloads':>9} {'ihaves':>8}")
    for m in result.messages:
        phase = "after" if m.after_failure else "before"
        print(f"{m.index:>4} {phase:>6} {m.origin_rank:>7} {m.reliability:>11.4f} "
              f"{m.rmr:>7.3f} {m.ldh:>4} {m.payloads:>9} {m.ihaves:>8}")
    for key, value in result.summary().items():
        print(f"{key}: {value}")


def write_plot(result: OverlaySimResult, path: str) -> None:
    plt = pyplot()
    index = [m.index for m in result.messages]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    top.plot(index, [m.reliability for m in result.messages], marker=".")
    top.set_ylabel("reliability")
    bottom.plot(index, [m.rmr for m in result.messages], marker=".", color="tab:orange")
    bottom.set_ylabel("RMR")
    bottom.set_xlabel("message")
    cfg = result.config
    top.set_title(f"{cfg.nodes} nodes, {cfg.fail:.0%} crash, seed {cfg.seed}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
