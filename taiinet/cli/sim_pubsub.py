"""``taiinet sim pubsub``: content-based routing (the stable tree) against plain Plumtree."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from typing import Any

from taiinet.cli.sim_args import add_common, add_latency, checked, link_model
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.pubsub.config import PubsubConfig
from taiinet.sim.pubsub import PubsubSimConfig, PubsubSimResult, simulate

#: Rows of the side-by-side table: (summary key, label).
ROWS = (
    ("delivery_ratio", "delivery ratio"),
    ("false_deliveries", "false deliveries"),
    ("duplicate_deliveries", "duplicate deliveries"),
    ("payloads_per_publication", "payload msgs / publication"),
    ("payloads_per_delivery", "payload msgs / delivery"),
    ("ihaves_per_publication", "IHAVE msgs / publication"),
    ("adverts_per_publication", "interest adverts / publication"),
    ("tree_control_per_publication", "GRAFT+PRUNE msgs / publication"),
    ("routing_control_per_delivery", "IHAVE+GRAFT+PRUNE+adverts / deliv."),
    ("membership_per_publication", "HyParView msgs / publication"),
    ("relays_per_publication", "uninterested relays / publication"),
)


def register(sims: Any) -> None:
    parser: argparse.ArgumentParser = sims.add_parser(
        "pubsub", help="interest routing (stable tree) vs plain Plumtree broadcast",
        description=(
            "Each node subscribes to each of --topics topics with probability --interest; "
            "nodes join, interest settles, --warmup publications follow, then "
            "--messages documents of random topics are published from random nodes. The same "
            "run is repeated with plain Plumtree broadcast. Reports delivery ratio, false "
            "deliveries (must be 0) and messages per delivery, payload and control apart."))
    parser.add_argument("--nodes", type=int, default=1000, help="number of nodes (default 1000)")
    parser.add_argument("--interest", type=float, default=0.1,
                        help="share of nodes interested in each document (default 0.1)")
    parser.add_argument("--topics", type=int, default=10, help="distinct topics (default 10)")
    parser.add_argument("--messages", type=int, default=20,
                        help="measured publications (default 20)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="publications before measuring (default 10)")
    add_common(parser, seed=0)
    parser.add_argument("--late", type=float, default=0.0,
                        help="share of the nodes that join during the measured phase and "
                             "publish one document each at once (default 0)")
    parser.add_argument("--fail", type=float, default=0.0,
                        help="share of nodes that crash halfway through (default 0)")
    add_latency(parser)
    parser.add_argument("--active", type=int, default=5, help="active view size (default 5)")
    parser.add_argument("--mode", choices=("both", "routing", "broadcast"), default="both",
                        help="interest routing on the stable tree and plain Plumtree "
                             "broadcast side by side (default), or one of them")
    parser.add_argument("--signed", action="store_true",
                        help="sign and verify every document with Ed25519 (slower)")
    parser.add_argument("--wire", action="store_true",
                        help="encode and decode every message through protobuf (slower)")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> PubsubSimConfig:
    link = link_model(args.latency)
    return checked(lambda: PubsubSimConfig(
        nodes=args.nodes, interest=args.interest, topics=args.topics, messages=args.messages,
        warmup=args.warmup, seed=args.seed, fail=args.fail, late=args.late, link=link,
        overlay=OverlayConfig(membership=HyParViewConfig(active_size=args.active)),
        signed=args.signed, wire_codec=args.wire))


MODES = {
    "routing": PubsubConfig(),
    "broadcast": PubsubConfig(routing=False),
}


def run(args: argparse.Namespace) -> int:
    base = config_from_args(args)
    modes = ["routing", "broadcast"] if args.mode == "both" else [args.mode]
    results: dict[str, dict[str, Any]] = {}
    for mode in modes:
        started = time.perf_counter()
        result: PubsubSimResult = simulate(replace(base, pubsub=MODES[mode]))
        summary = result.summary()
        summary["runtime_seconds"] = round(time.perf_counter() - started, 1)
        results[mode] = summary
        print(f"{mode}: {result.events} events in {summary['runtime_seconds']} s",
              file=sys.stderr)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(base, results)
    return 0


def print_table(config: PubsubSimConfig, results: dict[str, dict[str, Any]]) -> None:
    modes = list(results)
    print(f"{config.nodes} nodes, interest {config.interest:g}, {config.topics} topics, "
          f"{config.messages} publications, seed {config.seed}")
    header = f"{'':34}" + "".join(f"{m:>14}" for m in modes)
    routed = next((m for m in modes if m != "broadcast"), None)
    compare = routed is not None and "broadcast" in results
    if compare:
        header += f"{'ratio':>10}"
    print(header)
    for key, label in ROWS:
        line = f"{label:34}" + "".join(f"{results[m][key]:>14}" for m in modes)
        if compare:
            mine, flooded = results[str(routed)][key], results["broadcast"][key]
            line += f"{mine / flooded:>10.3f}" if flooded else f"{'-':>10}"
        print(line)
