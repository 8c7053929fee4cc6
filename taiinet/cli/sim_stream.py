"""``taiinet sim stream``: a live stream's relay tree at thousands of viewers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
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
from taiinet.sim.stream import (
    DEFAULT_CAPACITY_MIX,
    StreamSimConfig,
    StreamSimResult,
    parse_capacity_mix,
    simulate,
)
from taiinet.stream.config import TreeConfig


def register(sims: Any) -> None:
    mix = ",".join(f"{s}:{w}" for s, w in DEFAULT_CAPACITY_MIX)
    parser: argparse.ArgumentParser = sims.add_parser(
        "stream", help="live stream relay tree: delay, stalls, served share",
        description=(
            "Viewers join one broadcaster's relay tree, the tree settles, then a window is "
            "measured while viewers churn. Reports delay by tree depth, stall time, the share "
            "of viewers served and upload used, with the capacity ranking and (unless "
            "--no-baseline) with a random tree from the same seed."))
    parser.add_argument("--viewers", type=int, default=1000, help="viewers (default 1000)")
    parser.add_argument("--capacity-mix", default=mix, metavar="SLOTS:SHARE,...",
                        help=f"upload slots per viewer and their shares (default {mix})")
    parser.add_argument("--root-slots", type=int, default=8,
                        help="children the broadcaster feeds (default 8)")
    parser.add_argument("--churn", type=float, default=0.0,
                        help="share of viewers that crash (and are replaced) in the window")
    parser.add_argument("--free-riders", type=float, default=0.0,
                        help="share of viewers that declare slots but relay nothing")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="measured seconds (default 20)")
    add_latency(parser)
    parser.add_argument("--buffer", type=float, default=3.0,
                        help="seconds of chunks a relay keeps to backfill a re-adopted "
                             "child (default 3; 0: repairs skip the chunks missed)")
    parser.add_argument("--join-fanout", type=int, default=TreeConfig().join_fanout,
                        help="Joins a repairing viewer keeps in flight at once (default "
                             f"{TreeConfig().join_fanout}; 1: one standby peer at a time)")
    add_common(parser, seed=0)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the random-tree run (half the time)")
    add_plot(parser, "delay by depth")
    add_progress(parser)
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> StreamSimConfig:
    link = link_model(args.latency)
    return checked(lambda: StreamSimConfig(
        viewers=args.viewers, capacity_mix=parse_capacity_mix(args.capacity_mix),
        root_slots=args.root_slots, churn=args.churn, free_riders=args.free_riders,
        duration=args.duration, buffer=args.buffer, seed=args.seed, link=link,
        tree=TreeConfig(join_fanout=args.join_fanout)))


def _run_one(args: argparse.Namespace, config: StreamSimConfig, label: str) -> StreamSimResult:
    with progress_bar(args, f"{label}: {config.viewers} viewers") as progress:
        return simulate(config, progress)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    started = time.process_time()
    ranked = _run_one(args, config, "ranked tree")
    baseline = None
    if not args.no_baseline:
        random_tree = replace(config, tree=replace(config.tree, ranking=False))
        baseline = _run_one(args, random_tree, "random tree")
    cpu = time.process_time() - started
    summary: dict[str, object] = {
        "viewers": config.viewers, "churn": config.churn, "free_riders": config.free_riders,
        "buffer": config.buffer, "join_fanout": config.tree.join_fanout,
        "seed": config.seed, **ranked.summary()}
    if baseline is not None:
        summary["baseline"] = baseline.summary()
        summary["depth_gain"] = round(baseline.depth_mean - ranked.depth_mean, 4)
    summary["cpu_seconds"] = round(cpu, 1)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    print(f"simulated {ranked.events + (baseline.events if baseline else 0)} events "
          f"in {cpu:.1f} s of CPU", file=sys.stderr)
    if args.plot:
        write_plot(ranked, baseline, args.plot)
    return 0


def write_plot(ranked: StreamSimResult, baseline: StreamSimResult | None, path: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    runs = [("capacity ranking", ranked)] + ([("random tree", baseline)] if baseline else [])
    for label, result in runs:
        # (Depth 0 holds the chunks that reached a viewer between parents, the
        # backfill of a repair: not a place in the tree.)
        depths = [d for d in result.delay_by_depth if d > 0]
        ax.plot(depths, [result.delay_by_depth[d] for d in depths], marker=".",
                label=f"{label} (mean depth {result.depth_mean:.2f}, "
                      f"p99 delay {result.delay_p99:.2f} s)")
    ax.set_xlabel("tree depth")
    ax.set_ylabel("mean delay from the broadcaster (s)")
    cfg = ranked.config
    ax.set_title(f"{cfg.viewers} viewers, churn {cfg.churn:.0%}, "
                 f"free-riders {cfg.free_riders:.0%}, seed {cfg.seed}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

