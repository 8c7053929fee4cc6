"""``taiinet demo``: a local mesh of signallers and peers, live on the terminal.

Three signallers and ``--peers`` nodes (default 12) run in this one process
on loopback, linked by WebRTC data channels (``--links websocket`` for
WebSocket).  Each peer subscribes with one of ``QUERIES`` (round robin; the
first is the origin example); for ``--duration`` seconds random peers publish
random documents.  The demo knows every subscription, so it counts the
deliveries it expects, and checks what arrives: delivered, duplicates, false
deliveries (documents that do not match), latency (publish to delivery, one
clock).  After publishing it waits up to ``--drain`` seconds for the last
deliveries, prints a summary (``--json``: one JSON object) and exits 0 only if
every expected delivery arrived, with no duplicate and no false delivery.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, TypeVar

import trio

from taiinet.cli.args import int_at_least, non_negative_float, positive_float
from taiinet.cli.run import run_trio
from taiinet.node.node import Node, NodeConfig, open_node
from taiinet.node.subscription import Subscription
from taiinet.pubsub.query import Query
from taiinet.signal.api import open_signaller
from taiinet.signal.server import Signaller

T = TypeVar("T")

#: Width the table is laid out for when the output is not a terminal.
TABLE_WIDTH = 80
#: Seconds between two progress lines when the output is not a terminal.
PLAIN_INTERVAL = 1.0

ORIGIN_QUERY: dict[str, Any] = {
    "key": "value", "age": {"$gt": 4},
    "$and": [{"$or": [{"name": {"$contains": "b"}}, {"name": {"$contains": "a"}}]},
             {"type": {"$in": [1, 4, 5]}}]}
QUERIES: list[dict[str, Any]] = [
    ORIGIN_QUERY,
    {"age": {"$gt": 4}},
    {"name": {"$in": ["bob", "carol"]}, "age": {"$lte": 6}},
    {"type": {"$gte": 3}, "key": {"$exists": True}},
    {"tags": {"$all": ["red"]}},
    {"$or": [{"name": {"$regex": "^e"}}, {"score": {"$lt": 0.1}}]},
]
NAMES = ["bob", "alice", "carol", "dan", "eve", "barbara", "mallory"]
TAGS = ["red", "green", "blue"]


def random_document(rng: random.Random, n: int) -> dict[str, Any]:
    document: dict[str, Any] = {
        "n": n, "age": rng.randrange(10), "name": rng.choice(NAMES), "type": rng.randrange(7),
        "score": round(rng.random(), 3), "tags": rng.sample(TAGS, rng.randrange(3))}
    if rng.random() < 0.6:
        document["key"] = rng.choice(["value", "other"])
    return document


@dataclass(slots=True)
class PeerView:
    node: Node
    query: Query
    home: int
    #: 1 + the index of ``query`` in ``QUERIES`` (the table's ``q`` column).
    number: int = 0
    delivered: int = 0
    expected: int = 0
    duplicates: int = 0
    false: int = 0
    seen: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Tally:
    peers: list[PeerView] = field(default_factory=list)
    published: int = 0
    expected: int = 0
    #: Set (and replaced) at every delivery.
    progress: trio.Event = field(default_factory=trio.Event)

    def delivered(self) -> int:
        return sum(p.delivered for p in self.peers)

    def delivered_one(self) -> None:
        self.progress.set()
        self.progress = trio.Event()

    def summary(self) -> dict[str, Any]:
        latencies = sorted(x for p in self.peers for x in p.latencies)
        return {"peers": len(self.peers), "published": self.published,
                "expected": self.expected, "delivered": self.delivered(),
                "duplicates": sum(p.duplicates for p in self.peers),
                "false_deliveries": sum(p.false for p in self.peers),
                "p50_ms": round(percentile(latencies, 0.50), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2),
                "links": sum(p.node.stats().links for p in self.peers),
                "dropped": sum(p.node.stats().dropped for p in self.peers)}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run a local mesh of signallers and peers, live on the terminal",
        description="Run 3 signallers and N peers on loopback in this process, publish "
                    "random documents to a mix of subscriptions and check every delivery.")
    parser.add_argument("--peers", type=int_at_least(2), default=None, metavar="N",
                        help="number of Python peers (default 12; with --browser 3)")
    parser.add_argument("--duration", type=non_negative_float, default=10.0, metavar="S",
                        help="seconds of publishing (default 10)")
    parser.add_argument("--rate", type=positive_float, default=8.0, metavar="R",
                        help="documents published per second, all peers together (default 8; "
                             "at 20, 12 WebRTC peers keep one core ~70%% busy)")
    parser.add_argument("--drain", type=non_negative_float, default=5.0, metavar="S",
                        help="seconds to wait for the last deliveries (default 5)")
    parser.add_argument("--links", choices=["webrtc", "websocket"], default="webrtc",
                        help="peer links (default webrtc)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the documents (default 1)")
    parser.add_argument("--json", action="store_true",
                        help="no live table; print the summary as one JSON object")
    browser = parser.add_argument_group(
        "browser", "--browser: serve a page that joins the mesh from browser tabs, until Ctrl-C")
    browser.add_argument("--browser", action="store_true",
                         help="serve the browser demo page (needs js/dist/taiinet.js: "
                              "make demo-browser builds it)")
    browser.add_argument("--http-port", type=int, default=8080, metavar="PORT",
                         help="port of the page on 127.0.0.1 (default 8080; 0: any free port)")
    browser.add_argument("--interval", type=positive_float, default=1.0, metavar="S",
                         help="seconds between two documents of the Python peers (default 1)")
    browser.add_argument("--no-turn", action="store_true",
                         help="no TURN relay even if coturn is installed (tabs then link to "
                              "the Python peers only)")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    if args.browser:
        from taiinet.cli.demo_browser import browser_demo_command

        args.peers = 3 if args.peers is None else args.peers
        return browser_demo_command(args)
    args.peers = 12 if args.peers is None else args.peers
    summary: dict[str, Any] = run_trio(lambda: run_demo(args))
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        _print_summary(summary)
    ok = (summary["delivered"] == summary["expected"] and summary["duplicates"] == 0
          and summary["false_deliveries"] == 0)
    return 0 if ok else 1


async def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tally = Tally()
    display = None if args.json else open_display(sys.stdout)
    try:
        return await _run(args, rng, tally, display)
    finally:
        if display is not None:
            display.stop(tally)


async def _run(args: argparse.Namespace, rng: random.Random, tally: Tally,
               display: Display | None) -> dict[str, Any]:
    def show(phase: str) -> None:
        if display is not None:
            display.update(tally, phase)

    async with trio.open_nursery() as nursery:
        # Every signaller and node runs in a task of this nursery, so that
        # leaving it shuts them all down at once, not one after another.
        signallers: list[Signaller] = []
        for _ in range(3):
            join = [signallers[-1].url] if signallers else []
            signallers.append(await start_in_task(
                nursery, open_signaller(listen="127.0.0.1:0", join=join)))
        urls = [s.url for s in signallers]
        config = NodeConfig()
        for i in range(args.peers):
            home = i % 3
            node = await start_in_task(nursery, open_node(
                urls[home:] + urls[:home], links=args.links, rng=random.Random(rng.random()),
                config=config))
            query = Query(QUERIES[i % len(QUERIES)])
            view = PeerView(node=node, query=query, home=home, number=1 + i % len(QUERIES))
            tally.peers.append(view)
            await nursery.start(_receive, view, node.subscribe(query), tally)
            show("joining")
        for view in tally.peers:
            with trio.move_on_after(10):
                await view.node.wait_neighbors(1)
        interval = 1.0 / args.rate
        start = trio.current_time()
        count = max(1, int(args.duration * args.rate))
        for n in range(count):
            await trio.sleep_until(start + n * interval)
            document = random_document(rng, n)
            publisher = rng.choice(tally.peers)
            for view in tally.peers:
                if view.query.matches(document):
                    view.expected += 1
                    tally.expected += 1
            await publisher.node.publish(document)
            tally.published += 1
            if n % max(1, int(args.rate / 4)) == 0:
                show("publishing")
        with trio.move_on_after(args.drain):
            while tally.delivered() < tally.expected:
                show("draining")
                with trio.move_on_after(0.25):
                    await tally.progress.wait()
        summary = tally.summary()
        show("done")
        nursery.cancel_scope.cancel()
    return summary


async def start_in_task(nursery: trio.Nursery, cm: AbstractAsyncContextManager[T]) -> T:
    """Enter ``cm`` in a new task of ``nursery`` (left when the nursery is cancelled)."""

    async def hold(task_status: trio.TaskStatus[T]) -> None:
        async with cm as value:
            task_status.started(value)
            await trio.sleep_forever()

    result: T = await nursery.start(hold)
    return result


async def _receive(view: PeerView, subscription: Subscription, tally: Tally,
                   task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with subscription:
        task_status.started()
        await _count(view, subscription, tally)


async def _count(view: PeerView, subscription: Subscription, tally: Tally) -> None:
    async for message in subscription:
        n = message.data.get("n") if isinstance(message.data, dict) else None
        if not isinstance(n, int) or n in view.seen:
            view.duplicates += 1
            continue
        view.seen.add(n)
        if not view.query.matches(message.data):
            view.false += 1
            continue
        view.delivered += 1
        view.latencies.append(max(0.0, (message.received_at - message.published_at) * 1000))
        tally.delivered_one()


class Display(Protocol):
    def update(self, tally: Tally, phase: str) -> None: ...

    def stop(self, tally: Tally) -> None: ...


def open_display(out: TextIO) -> Display:
    """A live table on a terminal; plain progress lines when ``out`` is a pipe or file."""
    if out.isatty():
        return LiveDisplay(out)
    return PlainDisplay(out)


class LiveDisplay:
    """The table, redrawn in place (rich ``Live``) at most 4 times a second."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(console=Console(file=out), refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, tally: Tally, phase: str) -> None:
        self._live.update(_table(tally, phase))

    def stop(self, tally: Tally) -> None:
        self._live.stop()


class PlainDisplay:
    """One progress line per phase change or per ``PLAIN_INTERVAL`` seconds, then
    the final table once, in ASCII, without terminal control codes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._phase = ""
        self._last = -math.inf

    def update(self, tally: Tally, phase: str) -> None:
        now = trio.current_time()
        if phase == self._phase and now - self._last < PLAIN_INTERVAL:
            return
        self._phase, self._last = phase, now
        if phase == "done":
            from rich.console import Console

            Console(file=self._out, width=TABLE_WIDTH, color_system=None).print(
                _table(tally, phase, plain=True))
        else:
            print(f"{phase}: peers {len(tally.peers)}, published {tally.published}, "
                  f"delivered {tally.delivered()}/{tally.expected}", file=self._out)
        self._out.flush()

    def stop(self, tally: Tally) -> None:
        pass


def _table(tally: Tally, phase: str, *, plain: bool = False) -> Any:
    """A table that fits ``TABLE_WIDTH`` columns: queries are numbered (``q``) and
    spelled out once, under the table."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"TaiiNet demo: {phase}, published {tally.published}, "
                        f"delivered {tally.delivered()}/{tally.expected}",
                  caption="\n".join(f"q{n}  {json.dumps(q, separators=(',', ':'))}"
                                    for n, q in enumerate(QUERIES, 1)),
                  caption_justify="left", box=_ascii_head() if plain else box.SIMPLE_HEAD)
    for column in ("peer", "home", "q", "nbrs", "links", "delivered", "dup", "false", "drop",
                   "p50 ms"):
        table.add_column(column, justify="left" if column in ("peer", "q") else "right",
                         no_wrap=True, min_width=len(column))
    for view in tally.peers:
        stats = view.node.stats()
        latencies = sorted(view.latencies)
        table.add_row(view.node.peer_id[-6:], str(view.home), f"q{view.number}",
                      str(stats.neighbors), str(stats.links), f"{view.delivered}/{view.expected}",
                      str(view.duplicates), str(view.false), str(stats.dropped),
                      f"{percentile(latencies, 0.5):.1f}")
    return table


def _ascii_head() -> Any:
    """rich's ``SIMPLE_HEAD`` box in ASCII (a pipe may not take UTF-8)."""
    from rich.box import Box

    return Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)



def _print_summary(summary: dict[str, Any]) -> None:
    width = max(len(k) for k in summary)
    print("\nsummary")
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")
    sys.stdout.flush()
