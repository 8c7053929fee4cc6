"""Pubsub benchmark: TaiiNet nodes next to py-libp2p GossipSub, same shape, one run.

Run: ``.venv/bin/python bench/pubsub.py [--nodes 20] [--links websocket,webrtc]``.

Shape (both systems): ``--nodes`` peers in one process on 127.0.0.1, one
publisher, every other peer subscribed, documents of ``--size`` bytes (256).
TaiiNet: the publisher's documents are ``{"seq", "t", "pad"}`` sized so the
encoded document is ``--size`` bytes; every subscriber's query matches them.
Signalling runs on an in-process memory network (it only sets links up); the
links under test are real WebSocket or WebRTC (aiortc) links with Noise XX.

For each link kind the publish rate starts at ``--start-rate`` and doubles
while 100% of the expected deliveries arrive (within ``--drain`` seconds after
the last publish); each step publishes ``--seconds`` worth of documents (at
least ``--min-messages``).  Then ``--bisect`` steps (geometric midpoints)
narrow the gap between the best rate that met a criterion and the next one
that did not, once for "100% delivered" and once for "100% with p50 under
``--target-p50``"; a step that lost documents is followed by ``--settle``
seconds and a short warm-up, so that the next step starts from a repaired
overlay.  Reported for the best rate of each criterion: deliveries/s
(deliveries / (last delivery - first publish)), latency p50/p99 (publish to
subscriber, one clock), link messages per delivery (frames written on all
links, every layer, / deliveries; an overlay batch is one link message) and
overlay messages per delivery (the overlay frames those carried, batched or
not).

The anchor is ``pylibp2p_gossip_bench.py`` (py-libp2p 0.8.1 GossipSub,
TCP), run in its own virtualenv ``.venv-anchor/`` (made on demand with
``pip install libp2p==0.8.1``) with ``--nodes N --size S --rate R
--messages M`` and the flags printed next to its row.  ``ratio`` =
our deliveries/s over the anchor's.  Timings vary with machine load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from taiinet.node import NodeConfig, open_node, webrtc_links, websocket_links
from taiinet.node.node import Node
from taiinet.node.subscription import Subscription
from taiinet.pubsub.query import document_to_value
from taiinet.signal.api import open_signaller
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_NAME = "pylibp2p_gossip_bench.py"
ANCHOR_DIRS = [ROOT.parent / "shared" / "anchors"]
ANCHOR_VENV = ROOT / ".venv-anchor"


@dataclass
class Step:
    rate: float
    published: int
    expected: int
    delivered: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    #: Link frames sent (all layers; an overlay batch is one) per delivery.
    messages_per_delivery: float
    #: Overlay frames sent (each message of a batch counts) per delivery.
    overlay_messages_per_delivery: float
    #: CPU time of the whole process per delivery (less load-dependent than rates).
    cpu_us_per_delivery: float

    #: Documents the publisher actually got out per second.
    published_per_s: float

    @property
    def kept_up(self) -> bool:
        """The publisher published at (nearly) the asked rate: the rate was really tried."""
        return self.published_per_s >= 0.9 * self.rate

    @property
    def complete(self) -> bool:
        return self.delivered == self.expected and self.kept_up


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def make_document(step: int, seq: int, size: int) -> dict[str, Any]:
    document: dict[str, Any] = {"step": step, "seq": seq, "t": time.perf_counter(), "pad": ""}
    base = len(document_to_value(document))
    document["pad"] = "x" * max(0, size - base - 2)
    return document


class Receivers:
    def __init__(self) -> None:
        #: Only documents of this step count (stragglers of a previous step do not).
        self.step = 0
        self.latencies: list[float] = []
        self.last_at = 0.0
        self.count = 0
        self.progress = trio.Event()

    async def run(self, subscription: Subscription,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with subscription:
            task_status.started()
            async for message in subscription:
                if message.data["step"] != self.step:
                    continue
                now = time.perf_counter()
                self.latencies.append((now - message.data["t"]) * 1000)
                self.last_at = now
                self.count += 1
                self.progress.set()
                self.progress = trio.Event()


async def run_links(kind: str, args: argparse.Namespace) -> list[Step]:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    factory = webrtc_links(["127.0.0.1"]) if kind == "webrtc" else websocket_links()
    receivers = Receivers()
    nodes: list[Node] = []
    config = NodeConfig(subscription_buffer=100_000)
    steps: list[Step] = []
    async with trio.open_nursery() as nursery:

        async def hold(cm: Any, task_status: trio.TaskStatus[Any]) -> None:
            async with cm as value:
                task_status.started(value)
                await trio.sleep_forever()

        signaller = await nursery.start(hold, open_signaller(
            identity=Identity.from_seed(bytes([200]) * 32), transport=transport))
        for i in range(args.nodes):
            node = await nursery.start(hold, open_node(
                [signaller.url], Identity.from_seed(i.to_bytes(4, "big") * 8), links=factory,
                config=config, signal_transport=transport, rng=random.Random(i)))
            nodes.append(node)
            if i > 0:
                await nursery.start(receivers.run, node.subscribe({"seq": {"$gte": 0}}))
        for node in nodes:
            with trio.move_on_after(10):
                await node.wait_neighbors(1)
        publisher = nodes[0]
        receivers_count = args.nodes - 1
        # Warm-up: let the Plumtree tree form (first broadcasts flood, then prune).
        await _step(publisher, nodes, receivers, receivers_count, 20.0, 20, args)

        async def measure(rate: float) -> Step:
            count = max(args.min_messages, int(rate * args.seconds))
            step = await _step(publisher, nodes, receivers, receivers_count, rate, count, args)
            steps.append(step)
            print(f"  {kind:<9} rate {rate:>7.1f}/s: {step.delivered}/{step.expected} delivered, "
                  f"{step.deliveries_per_s:.0f} deliveries/s, p50 {step.p50_ms:.1f} ms, "
                  f"p99 {step.p99_ms:.1f} ms, {step.messages_per_delivery:.2f} link msgs "
                  f"({step.overlay_messages_per_delivery:.2f} overlay msgs)/delivery, "
                  f"CPU {step.cpu_us_per_delivery:.0f} us/delivery"
                  f"{'' if step.kept_up else f', publisher behind ({step.published_per_s:.0f}/s)'}",
                  flush=True)
            if not step.complete:
                # Let queues drain and the overlay repair links dropped as too slow.
                await trio.sleep(args.settle)
                await _step(publisher, nodes, receivers, receivers_count, 20.0, 20, args)
            return step

        # Double the rate while everything arrives; if the first rate already
        # loses documents, halve it instead until one delivers 100%.
        rate = args.start_rate
        factor = 2.0
        while args.min_rate <= rate <= args.max_rate:
            step = await measure(rate)
            if len(steps) == 1 and not step.complete:
                factor = 0.5
            elif step.complete != (factor > 1):
                break
            rate *= factor
        # Then narrow down between the last good and the first bad rate, for
        # each criterion the table reports.
        def delivers_all(step: Step) -> bool:
            return step.complete

        def delivers_all_fast(step: Step) -> bool:
            return step.complete and step.p50_ms < args.target_p50

        for good in (delivers_all, delivers_all_fast):
            for _ in range(args.bisect):  # nothing met it yet: try lower rates
                lowest = min(s.rate for s in steps)
                if any(good(s) for s in steps) or lowest / 2 < args.min_rate:
                    break
                await measure(lowest / 2)
            for _ in range(args.bisect):
                low = max((s.rate for s in steps if good(s)), default=None)
                high = min((s.rate for s in steps if low is not None and s.rate > low
                            and not good(s)), default=None)
                if low is None or high is None or high / low < 1 + args.precision:
                    break
                await measure(round(math.sqrt(low * high), 1))
        nursery.cancel_scope.cancel()
    return steps


async def _step(publisher: Node, nodes: list[Node], receivers: Receivers, receivers_count: int,
                rate: float, count: int, args: argparse.Namespace) -> Step:
    receivers.step += 1
    receivers.latencies = []
    receivers.count = 0
    frames_before = sum(node.stats().frames_sent for node in nodes)
    overlay_before = sum(node.driver.frames_sent for node in nodes)
    interval = 1.0 / rate
    started = time.perf_counter()
    cpu_before = time.process_time()
    start = trio.current_time()
    give_up = start + 1.5 * count * interval
    published = 0
    for seq in range(count):
        await trio.sleep_until(start + seq * interval)
        await publisher.publish(make_document(receivers.step, seq, args.size))
        published += 1
        if trio.current_time() > give_up:  # far behind: this rate cannot be published
            break
    published_per_s = published / max(trio.current_time() - start, interval)
    count = published
    expected = count * receivers_count
    with trio.move_on_after(args.drain):
        while receivers.count < expected:
            await receivers.progress.wait()
    frames = sum(node.stats().frames_sent for node in nodes) - frames_before
    overlay_frames = sum(node.driver.frames_sent for node in nodes) - overlay_before
    cpu = time.process_time() - cpu_before
    delivered = receivers.count
    elapsed = max(receivers.last_at - started, 1e-9)
    return Step(rate=rate, published=count, expected=expected, delivered=delivered,
                published_per_s=published_per_s,
                deliveries_per_s=delivered / elapsed,
                p50_ms=percentile(receivers.latencies, 0.50),
                p99_ms=percentile(receivers.latencies, 0.99),
                messages_per_delivery=frames / max(delivered, 1),
                overlay_messages_per_delivery=overlay_frames / max(delivered, 1),
                cpu_us_per_delivery=cpu * 1e6 / max(delivered, 1))


def best(steps: list[Step], max_p50_ms: float = math.inf) -> Step | None:
    """The highest rate that delivered 100% (with p50 under ``max_p50_ms``)."""
    complete = [s for s in steps if s.complete and s.p50_ms < max_p50_ms]
    return max(complete, key=lambda s: s.rate) if complete else None


def anchor_script() -> Path | None:
    override = os.environ.get("TAIINET_ANCHORS")
    dirs = [Path(override)] if override else ANCHOR_DIRS
    for directory in dirs:
        if (directory / ANCHOR_NAME).is_file():
            return directory / ANCHOR_NAME
    return None


def anchor_python() -> Path:
    python = ANCHOR_VENV / "bin" / "python"
    if not python.exists():
        print(f"  making {ANCHOR_VENV} (libp2p==0.8.1) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(ANCHOR_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "libp2p==0.8.1"], check=True)
    return python


def run_anchor(args: argparse.Namespace) -> tuple[dict[str, Any] | None, list[str]]:
    script = anchor_script()
    if script is None:
        return None, ["anchor harness not found"]
    flags = ["--nodes", str(args.nodes), "--size", str(args.size),
             "--messages", str(args.anchor_messages), "--rate", str(args.anchor_rate),
             "--gossip-versions", args.anchor_gossip_versions, "--spam-protection", "off"]
    try:
        result = subprocess.run([str(anchor_python()), str(script), *flags], capture_output=True,
                                text=True, timeout=args.anchor_timeout, check=False)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, [*flags, f"failed: {exc}"]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return None, [*flags, f"no output (exit {result.returncode}): {result.stderr[-300:]}"]
    return json.loads(lines[-1]), flags


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--links", default="websocket,webrtc")
    parser.add_argument("--start-rate", type=float, default=10.0)
    parser.add_argument("--max-rate", type=float, default=6400.0)
    parser.add_argument("--min-rate", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--min-messages", type=int, default=50)
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait after a step that lost documents")
    parser.add_argument("--bisect", type=int, default=3,
                        help="steps narrowing each reported rate after the doubling")
    parser.add_argument("--precision", type=float, default=0.1,
                        help="stop narrowing once the bad rate is within this of the good")
    parser.add_argument("--anchor-messages", type=int, default=300)
    parser.add_argument("--anchor-rate", type=float, default=20.0)
    parser.add_argument("--anchor-gossip-versions", default="1.1,1.0")
    parser.add_argument("--anchor-timeout", type=float, default=300.0)
    parser.add_argument("--no-anchor", action="store_true")
    parser.add_argument("--target-p50", type=float, default=50.0,
                        help="also report the highest 100%% rate with p50 under this (ms)")
    args = parser.parse_args(argv)

    results: dict[str, Step | None] = {}
    for kind in args.links.split(","):
        print(f"TaiiNet over {kind}: {args.nodes} peers, 1 publisher, {args.size} B documents",
              flush=True)
        steps = trio.run(run_links, kind, args)
        results[f"{kind}, max 100%"] = best(steps)
        results[f"{kind}, p50<{args.target_p50:g}ms"] = best(steps, args.target_p50)
    anchor, flags = (None, ["skipped"]) if args.no_anchor else run_anchor(args)

    print()
    print(f"pubsub, {args.nodes} peers in one process on 127.0.0.1, one publisher, "
          f"{args.size} B documents")
    header = (f"{'system':<34} {'rate/s':>7} {'deliv/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'msgs/deliv':>10} {'overlay':>7} {'delivered':>9} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    anchor_rate = anchor["deliveries_per_s"] if anchor else None
    if anchor:
        print(f"{'py-libp2p 0.8.1 GossipSub (TCP)':<34} {args.anchor_rate:>7.0f} "
              f"{anchor['deliveries_per_s']:>8.0f} {anchor['lat_p50_ms']:>8.1f} "
              f"{anchor['lat_p99_ms']:>8.1f} {'-':>10} {'-':>7} {anchor['delivery_ratio']:>9.0%} "
              f"{1.0:>6.1f}")
    for kind, step in results.items():
        name = f"TaiiNet ({kind})"
        if step is None:
            print(f"{name:<34} no rate delivered 100%")
            continue
        ratio = f"{step.deliveries_per_s / anchor_rate:>6.1f}" if anchor_rate else f"{'-':>6}"
        print(f"{name:<34} {step.rate:>7.0f} {step.deliveries_per_s:>8.0f} {step.p50_ms:>8.1f} "
              f"{step.p99_ms:>8.1f} {step.messages_per_delivery:>10.2f} "
              f"{step.overlay_messages_per_delivery:>7.2f} {'100%':>9} {ratio}")
    print(f"anchor flags: {' '.join(flags)}")
    print(f"command: .venv/bin/python bench/pubsub.py {' '.join(argv)}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
