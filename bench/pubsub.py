"""Pubsub benchmark: TaiiNet nodes next to py-libp2p and js-libp2p GossipSub, one run.

Run: ``.venv/bin/python bench/pubsub.py [--nodes 20] [--links websocket,webrtc]
[--anchors py,js] [--json]``.

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

Anchors (``--anchors py,js``; the default is both, when available), run in
the same invocation after TaiiNet, each with ``--nodes N --size S --rate R
--messages M --gossip-versions V`` (the flags printed next to its row):

* ``py``: ``pylibp2p_gossip_bench.py`` (py-libp2p 0.8.1 GossipSub, TCP), in
  its own virtualenv ``.venv-anchor/`` (made on demand with ``pip install
  libp2p==0.8.1``), also ``--spam-protection off``;
* ``js``: ``jslibp2p_gossip_bench.mjs`` (js-libp2p 3.3 with @libp2p/gossipsub
  17.1, TCP + Noise + yamux; same JSON keys, same topology for a seed), run by
  ``node`` from ``.anchor-js/`` (the harness and its lock file copied there,
  ``npm ci`` on demand) unless the anchors folder has its own
  ``jslibp2p/node_modules``.  Its library defaults stay (flood publish on).

The harnesses are looked up in ``$TAIINET_ANCHORS`` if set, else in
``../shared/anchors`` (``../../shared/anchors`` from a worktree).
``ratio_py`` / ``ratio_js`` = a row's deliveries/s over that anchor's.
CPU per delivery: for TaiiNet rows the process CPU time of the step over its
deliveries; for an anchor its whole child process (start-up, mesh forming and
teardown included, so an upper bound) over its deliveries.  ``--json`` prints
one JSON object (``rows``: ``system``, ``links``, ``kind`` = ``max`` or
``p50<50ms``, ``deliveries_per_s``, ``p50_ms``, ``p99_ms``, ``ratio_py``,
``ratio_js``, ``cpu_us_per_delivery`` and more; load averages before and
after) on stdout, progress and the table on stderr.  Timings vary with
machine load.

``--repeat-max N``: after the search, measure the rate chosen for the
``max`` row N more times (each step printed as it runs, with the same settle
and warm-up after one that lost documents).  The repeats choose no row and
change no key: the rows gain ``repeats`` (per repeat: ``rate``, ``complete``,
``delivered`` ratio, ``deliveries_per_s``, ``cpu_us_per_delivery``),
``cpu_us_per_delivery_median`` and ``deliveries_per_s_median`` (medians over
the complete repeats: 100% delivered with the publisher keeping up, the
search's criterion; None when none was or none ran), and the
table is followed by one line per repeated row.  Runs of the same code vary
by up to 1.7x on a shared machine: compare medians, not single steps.

The harness's own work per delivery is the reader's latency sample: the
step's waiter is woken once, when the count it waits for is reached, and a
document's padding is sized from a cached encoding, so the CPU figures are
the library's (subscription delivery included) and not the bench's.

``--gc-stats`` prints, after each measured step, the garbage collector's
collections per generation per 1,000 deliveries, the objects its full
collections walked, its time per delivery, and the tracked objects the step
left alive by type (``_gcstats.py``; it adds CPU of its own, so leave it off
for CPU figures).  ``--datagram-stats`` prints, the same way, the UDP datagrams
sent per delivery and the SCTP packets among them by their chunks (DATA alone,
SACK alone, SACK+DATA bundled, ...), the STUN datagrams and the DATA chunks
with the I bit (``_dgramstats.py``; WebRTC links only, CPU of its own too).

``--task-stats`` prints, after each measured step, the scheduler work per
delivery: trio task steps (wake-ups) and I/O waits, and the callbacks the
asyncio loop hosting aiortc ran, each by what ran with the time spent inside
(``_taskstats.py``; it adds CPU of its own too).

``--loss-report`` prints, after each measured step, the neighbour changes
and repair backlogs of the step, the nodes' counters that moved (budget
drops, evictions younger than the retention, skipped re-pushes, refused
frames, subscription drops) and, for every subscriber and document missing
at the step's end, the pushes of that document towards it and their fate
there; at the end of a ``--schedule`` run, which of those arrived late
(``_lossreport.py``; it wraps every push and receipt: CPU of its own).
Overload (``--schedule 250@30,250@30,62.5@0``): instead of the search, run
the given steps in order, each ``RATE@STEAL``: ``RATE`` documents/s while a
task of the bench holds the event loop for ``STEAL`` ms of every
``--steal-period-ms`` (100) ms, busy (as a profiler or a neighbour process
taking the CPU would), or nothing with ``@0``; ``RATE@STEAL!K`` also cuts
``K`` neighbour links (random, seeded) half-way through the step, as a
process too busy to answer in time would lose them.  The steps after an
overloaded one show whether the mesh recovers.  Each step also prints why
links went down meanwhile, summed over the nodes: the link layer's
``ended`` counts ("failed by the core": an unanswered probe or request, or
a broken budget, the budget ones also counted apart).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

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
PY_ANCHOR_NAME = "pylibp2p_gossip_bench.py"
JS_ANCHOR_NAME = "jslibp2p_gossip_bench.mjs"
#: What ``npm ci`` needs next to the js harness (in ``jslibp2p/``).
JS_ANCHOR_FILES = ("package.json", "package-lock.json", "deps.mjs")
#: ``../shared/anchors`` next to the main checkout, or two up from a worktree.
ANCHOR_DIRS = [ROOT.parent / "shared" / "anchors", ROOT.parent.parent / "shared" / "anchors"]
ANCHOR_VENV = ROOT / ".venv-anchor"
ANCHOR_JS_DIR = ROOT / ".anchor-js"

#: Where progress and the table go: stdout, or stderr when stdout carries ``--json``.
_OUT: TextIO = sys.stdout
#: ``--loss-report``'s log (``bench/_lossreport.py``), else None.
_LOSS: Any = None


def say(*parts: object) -> None:
    print(*parts, file=_OUT, flush=True)


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
    #: Milliseconds of every ``--steal-period-ms`` the bench held the loop busy.
    steal_ms: float = 0.0
    #: Why links went down during the step (summed over the nodes).
    link_ends: dict[str, int] = field(default_factory=dict)

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


#: Encoded size of a document with an empty pad, by the bit lengths of its step and
#: seq (all the size depends on: ``t`` is a double, 8 bytes whatever its value).
_BASE_SIZES: dict[tuple[int, int], int] = {}


def make_document(step: int, seq: int, size: int) -> dict[str, Any]:
    document: dict[str, Any] = {"step": step, "seq": seq, "t": time.perf_counter(), "pad": ""}
    shape = (step.bit_length(), seq.bit_length())
    base = _BASE_SIZES.get(shape)
    if base is None:  # the harness encodes a few documents, not one per publication
        base = _BASE_SIZES[shape] = len(document_to_value(document))
    document["pad"] = "x" * max(0, size - base - 2)
    return document


class Receivers:
    """The subscribers' reader tasks and what they saw of the current step.

    The harness's own work per delivery is kept to the latency sample: the
    step's waiter is woken once, when the count it waits for is reached
    (``wait_for``), not by an event per delivery.
    """

    def __init__(self) -> None:
        #: Only documents of this step count (stragglers of a previous step do not).
        self.step = 0
        self.latencies: list[float] = []
        self.last_at = 0.0
        self.count = 0
        #: The count ``wait_for`` waits for (``math.inf``: nobody waits).
        self.target: float = math.inf
        self.reached = trio.Event()

    def new_step(self) -> None:
        self.step += 1
        self.latencies = []
        self.count = 0
        self.target = math.inf

    async def wait_for(self, count: int) -> None:
        """Until ``count`` documents of this step arrived (bound it with a timeout)."""
        try:
            while self.count < count:
                self.reached = trio.Event()
                self.target = count
                await self.reached.wait()
        finally:
            self.target = math.inf

    async def run(self, subscription: Subscription, node_index: int = 0,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        loss = _LOSS
        async with subscription:
            task_status.started()
            while True:
                # ``receive`` rather than ``async for``: one coroutine less per wait
                # (what is waiting when the collector runs is promoted and walked).
                try:
                    message = await subscription.receive()
                except trio.EndOfChannel:
                    return
                if loss is not None:
                    loss.delivered(node_index, message.data["step"], message.data["seq"])
                if message.data["step"] != self.step:
                    continue
                now = time.perf_counter()
                self.latencies.append((now - message.data["t"]) * 1000)
                self.last_at = now
                self.count += 1
                if self.count >= self.target:
                    self.reached.set()


class Thief:
    """Holds the event loop busy for ``steal_ms`` of every ``period_ms`` (0: never):
    a deterministic stand-in for a profiler or another process taking the CPU."""

    def __init__(self, period_ms: float) -> None:
        self.period = period_ms / 1000
        self.steal_ms = 0.0

    async def run(self) -> None:
        tick = trio.current_time()
        while True:
            tick = max(tick + self.period, trio.current_time())
            await trio.sleep_until(tick)
            if self.steal_ms > 0:
                until = time.perf_counter() + self.steal_ms / 1000
                while time.perf_counter() < until:
                    pass


def link_ends(nodes: list[Node]) -> Counter[str]:
    """Why links went down so far, summed over ``nodes`` (see ``Step.link_ends``)."""
    total: Counter[str] = Counter()
    for node in nodes:
        total.update(node.driver.links.ended)
        overlay = node.driver.router.overlay
        total["of which over link budget"] += overlay.budget_stats.disconnected
        total["of which over pubsub budget"] += node.driver.router.stats.disconnected
    return total


def parse_schedule(text: str) -> list[tuple[float, float, int]]:
    """``"250@30,62.5@0!2"`` -> [(250.0, 30.0, 0), (62.5, 0.0, 2)] (rate, steal ms,
    links to cut)."""
    steps = []
    for part in text.split(","):
        part, _, cut = part.strip().partition("!")
        rate, _, steal = part.partition("@")
        steps.append((float(rate), float(steal or 0), int(cut or 0)))
    return steps


async def cut_links(nodes: list[Node], count: int, after: float, rng: random.Random) -> None:
    """After ``after`` seconds, close ``count`` neighbour links at once (as a failure:
    both ends see the link go down), as a busy process that misses a deadline would."""
    await trio.sleep(after)
    for _ in range(count):
        node = rng.choice(nodes)
        if node.neighbors:
            node.driver.links.drop(rng.choice(node.neighbors), report=True, why="cut")


async def run_links(kind: str, args: argparse.Namespace) -> tuple[list[Step], list[Step]]:
    """The steps of the search (or ``--schedule``), and the ``--repeat-max`` repeats
    of the best rate that delivered 100% (kept apart: they choose no row)."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    factory = webrtc_links(["127.0.0.1"]) if kind == "webrtc" else websocket_links()
    receivers = Receivers()
    nodes: list[Node] = []
    config = NodeConfig(subscription_buffer=100_000)
    steps: list[Step] = []
    repeats: list[Step] = []
    thief = Thief(args.steal_period_ms)
    gc_stats = None
    if args.gc_stats:
        from _gcstats import GcStats  # bench/ is the script's directory
        gc_stats = GcStats()
    datagram_stats = None
    if args.datagram_stats:
        from _dgramstats import DatagramStats
        datagram_stats = DatagramStats()
    task_stats = None
    if args.task_stats:
        from _taskstats import TaskStats  # bench/ is the script's directory
        task_stats = TaskStats()
    # The signaller outlives the nodes: they close first, so none of them
    # sees its signaller go and warns "no signaller reachable" at the end.
    async with open_signaller(identity=Identity.from_seed(bytes([200]) * 32),
                              transport=transport) as signaller, \
            trio.open_nursery() as nursery:

        async def hold(cm: Any, task_status: trio.TaskStatus[Any]) -> None:
            async with cm as value:
                task_status.started(value)
                await trio.sleep_forever()

        for i in range(args.nodes):
            node = await nursery.start(hold, open_node(
                [signaller.url], Identity.from_seed(i.to_bytes(4, "big") * 8), links=factory,
                config=config, signal_transport=transport, rng=random.Random(i)))
            nodes.append(node)
            if _LOSS is not None:
                _LOSS.add_node(node)
            if i > 0:
                subscription = node.subscribe({"seq": {"$gte": 0}})
                if _LOSS is not None:
                    _LOSS.subscriptions[i] = subscription
                await nursery.start(receivers.run, subscription, i)
        for node in nodes:
            with trio.move_on_after(10):
                await node.wait_neighbors(1)
        publisher = nodes[0]
        receivers_count = args.nodes - 1
        # Warm-up: let the Plumtree tree form (first broadcasts flood, then prune).
        await _step(publisher, nodes, receivers, receivers_count, 20.0, 20, args)

        nursery.start_soon(thief.run)

        async def measure(rate: float, steal_ms: float = 0.0, cut: int = 0,
                          into: list[Step] = steps) -> Step:
            count = max(args.min_messages, int(rate * args.seconds))
            ends_before = link_ends(nodes)
            thief.steal_ms = steal_ms
            try:
                async with trio.open_nursery() as cutting:
                    if cut:
                        cutting.start_soon(cut_links, nodes, cut, count / rate / 2,
                                           random.Random(len(into)))
                    if gc_stats is not None:
                        gc_stats.start()
                    if datagram_stats is not None:
                        datagram_stats.start()
                    if task_stats is not None:
                        task_stats.start()
                    if _LOSS is not None:
                        _LOSS.start_step()
                    step = await _step(publisher, nodes, receivers, receivers_count, rate,
                                       count, args)
            finally:
                thief.steal_ms = 0.0
                if gc_stats is not None:
                    gc_stats.stop()
                if datagram_stats is not None:
                    datagram_stats.stop()
                if task_stats is not None:
                    task_stats.stop()
            ends = link_ends(nodes)
            ends.subtract(ends_before)
            step.steal_ms = steal_ms
            step.link_ends = {why: n for why, n in sorted(ends.items()) if n}
            into.append(step)
            stolen = f" (loop {steal_ms:g}/{args.steal_period_ms:g} ms busy)" if steal_ms else ""
            if cut:
                stolen += f" ({cut} links cut)"
            say(f"  {kind:<9} rate {rate:>7.1f}/s{stolen}: {step.delivered}/{step.expected} "
                f"delivered ({step.delivered / max(step.expected, 1):.1%}), "
                  f"{step.deliveries_per_s:.0f} deliveries/s, p50 {step.p50_ms:.1f} ms, "
                  f"p99 {step.p99_ms:.1f} ms, {step.messages_per_delivery:.2f} link msgs "
                  f"({step.overlay_messages_per_delivery:.2f} overlay msgs)/delivery, "
                  f"CPU {step.cpu_us_per_delivery:.0f} us/delivery"
                f"{'' if step.kept_up else f', publisher behind ({step.published_per_s:.0f}/s)'}")
            if gc_stats is not None:
                say(f"            {gc_stats.report(step.delivered)}")
                say(f"            {gc_stats.new_by_type()}")
            if datagram_stats is not None:
                say(f"            {datagram_stats.report(step.delivered)}")
            if task_stats is not None:
                for line in task_stats.report(step.delivered):
                    say(f"            {line}")
            if _LOSS is not None:
                _LOSS.report(receivers.step, step.published, say)
            if step.link_ends:
                say("            links down: " + ", ".join(
                    f"{why} {n}" for why, n in step.link_ends.items()))
            if not step.complete:
                # Let queues drain and the overlay repair links dropped as too slow.
                await trio.sleep(args.settle)
                await _step(publisher, nodes, receivers, receivers_count, 20.0, 20, args)
            return step

        if args.schedule:
            for rate, steal_ms, cut in parse_schedule(args.schedule):
                await measure(rate, steal_ms, cut)
            if _LOSS is not None:
                await trio.sleep(args.settle)
                _LOSS.final(say)
            nursery.cancel_scope.cancel()
            return steps, repeats
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
        chosen = best(steps)
        if chosen is not None and args.repeat_max:
            say(f"  {kind:<9} measuring the max rate {chosen.rate:g}/s "
                f"{args.repeat_max} more times")
            for _ in range(args.repeat_max):
                await measure(chosen.rate, into=repeats)
        nursery.cancel_scope.cancel()
    return steps, repeats


async def _step(publisher: Node, nodes: list[Node], receivers: Receivers, receivers_count: int,
                rate: float, count: int, args: argparse.Namespace) -> Step:
    receivers.new_step()
    frames_before = sum(node.stats().frames_sent for node in nodes)
    overlay_before = sum(node.driver.frames_sent for node in nodes)
    interval = 1.0 / rate
    started = time.perf_counter()
    cpu_before = time.process_time()
    start = trio.current_time()
    give_up = start + 1.5 * count * interval
    published = 0
    for seq in range(count):
        due = start + seq * interval
        if trio.current_time() < due:
            # Late (the process is saturated): publish now.  A sleep until a time
            # already past parks the publisher for a scheduler round or two and
            # wakes it with a ``Cancelled`` raised and caught: the bench's cost,
            # and rounds a saturated process cannot spare the publisher.
            await trio.sleep_until(due)
        mid = await publisher.publish(make_document(receivers.step, seq, args.size))
        if _LOSS is not None:
            _LOSS.mids[(receivers.step, seq)] = raw = bytes.fromhex(mid)
            _LOSS.published[raw] = (receivers.step, seq, _LOSS.now())
        published += 1
        if trio.current_time() > give_up:  # far behind: this rate cannot be published
            break
    published_per_s = published / max(trio.current_time() - start, interval)
    count = published
    expected = count * receivers_count
    with trio.move_on_after(args.drain):
        await receivers.wait_for(expected)
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


@dataclass(frozen=True)
class AnchorSpec:
    """One anchor harness: where it lives and how its row is labelled."""

    key: str
    system: str
    script: str


ANCHORS = {
    "py": AnchorSpec(key="py", system="py-libp2p 0.8.1 GossipSub", script=PY_ANCHOR_NAME),
    "js": AnchorSpec(key="js", system="js-libp2p 3.3 GossipSub 17.1", script=JS_ANCHOR_NAME),
}


@dataclass
class AnchorRun:
    """What one anchor run gave: its JSON line (None if it failed), the flags it
    ran with, and the CPU time (user + sys) of its whole process if measured."""

    spec: AnchorSpec
    result: dict[str, Any] | None
    flags: list[str]
    cpu_s: float | None = None
    note: str = ""


def anchor_dirs() -> list[Path]:
    override = os.environ.get("TAIINET_ANCHORS")
    return [Path(override)] if override else ANCHOR_DIRS


def anchor_source(spec: AnchorSpec) -> Path | None:
    """The folder holding ``spec``'s harness (``TAIINET_ANCHORS`` or the shared one)."""
    for directory in anchor_dirs():
        if (directory / spec.script).is_file():
            return directory
    return None


def anchor_python() -> Path:
    python = ANCHOR_VENV / "bin" / "python"
    if not python.exists():
        say(f"  making {ANCHOR_VENV} (libp2p==0.8.1) ...")
        subprocess.run([sys.executable, "-m", "venv", str(ANCHOR_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "libp2p==0.8.1"], check=True,
                       stdout=sys.stderr)
    return python


def js_anchor_script(source: Path) -> Path:
    """The js harness next to an installed ``jslibp2p/node_modules``.

    A source folder that has one (``TAIINET_ANCHORS`` pointing at a ready
    copy) is used in place; otherwise the harness and its lock file are copied
    to ``.anchor-js/`` and ``npm ci`` installs the pinned tree there (again only
    when the lock file changed), as ``.venv-anchor/`` is made for py-libp2p.
    """
    if (source / "jslibp2p" / "node_modules").is_dir():
        return source / JS_ANCHOR_NAME
    target = ANCHOR_JS_DIR / "jslibp2p"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / JS_ANCHOR_NAME, ANCHOR_JS_DIR / JS_ANCHOR_NAME)
    for name in JS_ANCHOR_FILES:
        shutil.copyfile(source / "jslibp2p" / name, target / name)
    lock = (target / "package-lock.json").read_bytes()
    stamp = target / "node_modules" / ".taiinet-lock"
    if not stamp.is_file() or stamp.read_bytes() != lock:
        say(f"  installing js-libp2p in {target} (npm ci) ...")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=target, check=True,
                       stdout=sys.stderr)
        stamp.write_bytes(lock)
    return ANCHOR_JS_DIR / JS_ANCHOR_NAME


def anchor_unavailable(spec: AnchorSpec) -> str:
    """Why ``spec`` cannot run here ("" if it can)."""
    if anchor_source(spec) is None:
        return f"{spec.script} not found in {', '.join(map(str, anchor_dirs()))}"
    if spec.key == "js" and shutil.which("node") is None:
        return "node not found"
    return ""


def anchor_flags(spec: AnchorSpec, args: argparse.Namespace) -> list[str]:
    flags = ["--nodes", str(args.nodes), "--size", str(args.size),
             "--messages", str(args.anchor_messages), "--rate", str(args.anchor_rate),
             "--gossip-versions", args.anchor_gossip_versions]
    if spec.key == "py":
        flags += ["--spam-protection", "off"]  # js-libp2p has no per-peer publish limit
    return flags


def run_anchor(spec: AnchorSpec, args: argparse.Namespace) -> AnchorRun:
    """Run one anchor harness; its CPU time is the child's rusage, harness
    start-up, mesh forming and teardown included (so an upper bound)."""
    flags = anchor_flags(spec, args)
    source = anchor_source(spec)
    why = anchor_unavailable(spec)
    if source is None or why:
        return AnchorRun(spec=spec, result=None, flags=flags, note=why)
    try:
        if spec.key == "py":
            command = [str(anchor_python()), str(source / spec.script)]
        else:
            command = [shutil.which("node") or "node", str(js_anchor_script(source))]
    except (subprocess.SubprocessError, OSError) as exc:
        return AnchorRun(spec=spec, result=None, flags=flags, note=f"setup failed: {exc}")
    say(f"{spec.system}: {' '.join(flags)}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = subprocess.run([*command, *flags], capture_output=True, text=True,
                                timeout=args.anchor_timeout, check=False)
    except (subprocess.SubprocessError, OSError) as exc:
        return AnchorRun(spec=spec, result=None, flags=flags, note=f"failed: {exc}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return AnchorRun(spec=spec, result=None, flags=flags, cpu_s=cpu_s,
                         note=f"no output (exit {result.returncode}): {result.stderr[-300:]}")
    return AnchorRun(spec=spec, result=json.loads(lines[-1]), flags=flags, cpu_s=cpu_s)


def _ratio(value: float | None, anchor: float | None) -> float | None:
    if value is None or not anchor:
        return None
    return round(value / anchor, 2)


def repeat_keys(repeats: list[Step]) -> dict[str, Any]:
    """A row's ``--repeat-max`` keys: each repeat, and the medians over the repeats
    that were complete, as the search counts a step (None if none was, or none ran)."""
    done = [step for step in repeats if step.complete]
    return {
        "repeats": [{"rate": step.rate, "complete": step.complete,
                     "delivered": round(step.delivered / max(step.expected, 1), 4),
                     "deliveries_per_s": round(step.deliveries_per_s, 1),
                     "cpu_us_per_delivery": round(step.cpu_us_per_delivery)}
                    for step in repeats],
        "cpu_us_per_delivery_median": (round(statistics.median(
            step.cpu_us_per_delivery for step in done)) if done else None),
        "deliveries_per_s_median": (round(statistics.median(
            step.deliveries_per_s for step in done), 1) if done else None),
    }


def build_rows(results: dict[tuple[str, str], Step | None], anchors: list[AnchorRun],
               anchor_rate: float, repeated: dict[tuple[str, str], list[Step]] | None = None
               ) -> list[dict[str, Any]]:
    """The table as JSON rows: the anchors first, then TaiiNet per (links, kind).

    ``ratio_py``/``ratio_js`` are the row's deliveries/s over that anchor's
    (None when the anchor did not run or a row has no figure);
    ``cpu_us_per_delivery`` is process CPU time over deliveries.  Every row also
    has ``repeat_keys``: the ``--repeat-max`` repeats of its rate (``repeated``,
    by (links, kind); the ``max`` rows) or an empty list and None medians.
    """
    repeated = repeated or {}
    rows: list[dict[str, Any]] = []
    for run in anchors:
        result = run.result or {}
        delivered = result.get("delivered")
        rows.append({
            "system": run.spec.system, "links": "tcp", "kind": "max", "rate": anchor_rate,
            "deliveries_per_s": result.get("deliveries_per_s"),
            "p50_ms": result.get("lat_p50_ms"), "p99_ms": result.get("lat_p99_ms"),
            "delivered": result.get("delivery_ratio"),
            "messages_per_delivery": None, "overlay_messages_per_delivery": None,
            "cpu_us_per_delivery": (round(run.cpu_s * 1e6 / delivered)
                                    if run.cpu_s is not None and delivered else None),
            "flags": " ".join(run.flags), "note": run.note, **repeat_keys([])})
    for (links, kind), step in results.items():
        rows.append({
            "system": "TaiiNet", "links": links, "kind": kind,
            "rate": step.rate if step else None,
            "deliveries_per_s": round(step.deliveries_per_s, 1) if step else None,
            "p50_ms": round(step.p50_ms, 2) if step else None,
            "p99_ms": round(step.p99_ms, 2) if step else None,
            "delivered": 1.0 if step else None,
            "messages_per_delivery": round(step.messages_per_delivery, 3) if step else None,
            "overlay_messages_per_delivery": (round(step.overlay_messages_per_delivery, 3)
                                              if step else None),
            "cpu_us_per_delivery": round(step.cpu_us_per_delivery) if step else None,
            "flags": "", "note": "" if step else "no rate delivered 100%",
            **repeat_keys(repeated.get((links, kind), []))})
    anchor_rates = {run.spec.key: (run.result or {}).get("deliveries_per_s") for run in anchors}
    for row in rows:
        for key in ANCHORS:
            row[f"ratio_{key}"] = _ratio(row["deliveries_per_s"], anchor_rates.get(key))
    return rows


def _cell(value: Any, spec: str) -> str:
    return format("-", ">" + spec.split(".")[0]) if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    say()
    say(f"pubsub, {args.nodes} peers in one process on 127.0.0.1, one publisher, "
        f"{args.size} B documents")
    header = (f"{'system':<30} {'links':<9} {'kind':<9} {'rate/s':>7} {'deliv/s':>8} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'msgs/dlv':>8} {'overlay':>7} {'delivd':>6} "
              f"{'ratio py':>8} {'ratio js':>8} {'CPU us/dlv':>10}")
    say(header)
    say("-" * len(header))
    for row in rows:
        say(f"{row['system']:<30} {row['links']:<9} {row['kind']:<9} "
            f"{_cell(row['rate'], '7.0f')} {_cell(row['deliveries_per_s'], '8.0f')} "
            f"{_cell(row['p50_ms'], '8.1f')} {_cell(row['p99_ms'], '8.1f')} "
            f"{_cell(row['messages_per_delivery'], '8.2f')} "
            f"{_cell(row['overlay_messages_per_delivery'], '7.2f')} "
            f"{_cell(row['delivered'], '6.1%')} {_cell(row['ratio_py'], '8.2f')} "
            f"{_cell(row['ratio_js'], '8.2f')} {_cell(row['cpu_us_per_delivery'], '10.0f')}"
            f"{'  ' + row['note'] if row['note'] else ''}")
    for row in rows:
        if row["flags"]:
            say(f"{row['system']} flags: {row['flags']}")
    for row in rows:
        if row["repeats"]:
            say(f"{row['system']} {row['links']} {row['kind']}, {len(row['repeats'])} repeats "
                f"at {row['rate']:g}/s: CPU us/dlv "
                + ", ".join(f"{r['cpu_us_per_delivery']}{'' if r['complete'] else '*'}"
                            for r in row["repeats"])
                + f" (median {_cell(row['cpu_us_per_delivery_median'], '.0f')}); deliv/s "
                + ", ".join(f"{r['deliveries_per_s']:.0f}" for r in row["repeats"])
                + f" (median {_cell(row['deliveries_per_s_median'], '.0f')})"
                + ("; * not complete (documents lost or the publisher behind), "
                   "not in the medians"
                   if not all(r["complete"] for r in row["repeats"]) else ""))


def default_anchors() -> str:
    return ",".join(key for key, spec in ANCHORS.items() if not anchor_unavailable(spec))


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
    parser.add_argument("--anchors", default=None,
                        help="anchors to run beside TaiiNet: py, js, both (py,js: the default "
                             "when available) or '' for none")
    parser.add_argument("--anchor-messages", type=int, default=300)
    parser.add_argument("--anchor-rate", type=float, default=20.0)
    parser.add_argument("--anchor-gossip-versions", default="1.1,1.0")
    parser.add_argument("--anchor-timeout", type=float, default=300.0)
    parser.add_argument("--no-anchor", action="store_true", help="same as --anchors ''")
    parser.add_argument("--target-p50", type=float, default=50.0,
                        help="also report the highest 100%% rate with p50 under this (ms)")
    parser.add_argument("--schedule", default="",
                        help="run these steps instead of the search: RATE@STEAL_MS,... "
                             "(the loop held busy STEAL_MS of every --steal-period-ms)")
    parser.add_argument("--steal-period-ms", type=float, default=100.0)
    parser.add_argument("--gc-stats", action="store_true",
                        help="print what the garbage collector did in each measured step "
                             "(bench/_gcstats.py; adds CPU of its own)")
    parser.add_argument("--datagram-stats", action="store_true",
                        help="print the UDP datagrams sent per delivery in each measured step, "
                             "by kind (bench/_dgramstats.py; adds CPU of its own)")
    parser.add_argument("--task-stats", action="store_true",
                        help="print the trio task steps and hosted asyncio callbacks per "
                             "delivery of each measured step, by what ran "
                             "(bench/_taskstats.py; adds CPU of its own)")
    parser.add_argument("--loss-report", action="store_true",
                        help="after each measured step, say where every missing document "
                             "went: its pushes, their fate at the subscriber, neighbour "
                             "changes and counters that moved (bench/_lossreport.py; adds "
                             "CPU of its own)")
    parser.add_argument("--repeat-max", type=int, default=0, metavar="N",
                        help="after the search, measure the max rate N more times and report "
                             "each and their medians (not with --schedule)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (progress and table on stderr)")
    args = parser.parse_args(argv)
    if args.repeat_max and args.schedule:
        parser.error("--repeat-max repeats the search's max rate: not with --schedule")
    global _OUT, _LOSS
    _OUT = sys.stderr if args.json else sys.stdout
    if args.loss_report:
        from _lossreport import LossReport  # bench/ is the script's directory
        _LOSS = LossReport()
    wanted = "" if args.no_anchor else (default_anchors() if args.anchors is None
                                        else args.anchors)
    keys = [key.strip() for key in wanted.split(",") if key.strip()]
    unknown = [key for key in keys if key not in ANCHORS]
    if unknown:
        parser.error(f"unknown anchor(s) {', '.join(unknown)}: choose among py, js")
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.UTC)

    kind_max, kind_p50 = "max", f"p50<{args.target_p50:g}ms"
    results: dict[tuple[str, str], Step | None] = {}
    repeated: dict[tuple[str, str], list[Step]] = {}
    for links in args.links.split(","):
        say(f"TaiiNet over {links}: {args.nodes} peers, 1 publisher, {args.size} B documents")
        steps, repeats = trio.run(run_links, links, args)
        results[(links, kind_max)] = best(steps)
        results[(links, kind_p50)] = best(steps, args.target_p50)
        if repeats:
            repeated[(links, kind_max)] = repeats
    anchors = [run_anchor(ANCHORS[key], args) for key in keys]
    rows = build_rows(results, anchors, args.anchor_rate, repeated)
    print_table(rows, args)
    command = f".venv/bin/python bench/pubsub.py {shlex.join(argv)}".rstrip()
    say(f"command: {command}")
    if args.json:
        print(json.dumps({
            "bench": "pubsub", "command": command, "nodes": args.nodes, "size": args.size,
            "started_utc": started.isoformat(timespec="seconds"),
            "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
            "rows": rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
