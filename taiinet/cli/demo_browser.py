"""``taiinet demo --browser``: a local mesh that browser tabs join as peers.

Three signallers and ``--peers`` Python nodes (default 3) run in this process
on loopback, with a TURN relay (coturn) on 127.0.0.1 when ``turnserver`` is
installed; a small HTTP server on 127.0.0.1 serves the demo page
(``js/demo/``), the browser peer's bundle (``js/dist/taiinet.js``) and
``/config.json`` (the signallers, the ICE servers and the Python peers' ids).
Each tab that opens the page is one more peer of the same mesh: it lists its
neighbours, shows the documents matching its query box, and publishes what
its publish box holds.  The Python peers publish a random document every
``--interval`` seconds, so the table moves; the first Python peer
subscribes to everything and prints each document a page published.

Without the relay, a page still links to the Python peers (aiortc offers a
127.0.0.1 candidate); two tabs link to each other only if Chromium finds a
host address besides 127.0.0.1 (it offers none on loopback), and otherwise
reach each other through the Python peers.

Ctrl-C (or SIGTERM) stops the server, the peers, the signallers and the
relay, and the command exits 0.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import trio

from taiinet.cli.demo import random_document, start_in_task
from taiinet.cli.run import CommandError
from taiinet.cli.static_http import serve_static
from taiinet.cli.turn import find_turnserver, turn_server
from taiinet.node.node import Node, open_node
from taiinet.signal.api import open_signaller
from taiinet.signal.server import Signaller

#: The repository's browser peer: the page and the bundle ``npm run build`` writes.
JS = Path(__file__).resolve().parents[2] / "js"
PAGE = JS / "demo"
BUNDLE = JS / "dist" / "taiinet.js"
#: Signallers of the demo mesh.
SIGNALLERS = 3
#: Relay ports of the demo's TURN server: a page uses one per peer connection.
TURN_PORTS = 128
#: Files the HTTP server serves, by path: (file name or ``None`` for the config, type).
ROUTES: dict[str, tuple[str | None, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/demo.js": ("demo.js", "text/javascript"),
    "/taiinet.js": ("taiinet.js", "text/javascript"),
    "/config.json": (None, "application/json"),
}


def browser_demo_command(args: argparse.Namespace) -> int:
    from taiinet.cli.run import run_trio

    if not BUNDLE.exists():
        raise CommandError(f"the browser bundle {BUNDLE} is missing: run `make demo-browser`, "
                           "or `npm ci && npm run build` in js/")
    run_trio(lambda: run_browser_demo(args, out=sys.stdout))
    return 0


async def run_browser_demo(args: argparse.Namespace, *, out: Any) -> None:
    """Run until SIGINT or SIGTERM."""
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="taiinet-demo-") as scratch, \
            trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        # Two nurseries, so that the peers leave before the signallers and the relay stop
        # (the other way round, each peer would complain that no signaller answers).
        async with trio.open_nursery() as infrastructure:
            signallers: list[Signaller] = []
            for _ in range(SIGNALLERS):
                join = [signallers[-1].url] if signallers else []
                signallers.append(await start_in_task(
                    infrastructure, open_signaller(listen="127.0.0.1:0", join=join)))
            urls = [s.url for s in signallers]
            ice: list[dict[str, Any]] = []
            turnserver = None if args.no_turn else find_turnserver()
            if turnserver is not None:
                ice.append(await start_in_task(infrastructure, turn_server(
                    Path(scratch), executable=turnserver, block=TURN_PORTS)))
            async with trio.open_nursery() as nursery:
                peers: list[Node] = []
                for i in range(args.peers):
                    home = i % SIGNALLERS
                    peers.append(await start_in_task(nursery, open_node(
                        urls[home:] + urls[:home], rng=random.Random(rng.random()))))
                ids = {peer.peer_id for peer in peers}
                await nursery.start(_report_pages, peers[0], ids, say)
                config = {"signallers": urls, "iceServers": ice,
                          "iceTransportPolicy": "relay" if ice else None,
                          "pythonPeers": sorted(ids)}
                with serve_page(args.http_port, config) as page_url:
                    relay = (f"a TURN relay on {ice[0]['urls']} links tabs to each other"
                             if ice else "no TURN relay (coturn's turnserver not found, or "
                             "--no-turn): tabs link to the Python peers, and to each other "
                             "only where Chromium finds an address besides 127.0.0.1")
                    say(f"taiinet demo --browser: {SIGNALLERS} signallers ({', '.join(urls)}), "
                        f"{len(peers)} Python peers, {relay}")
                    say(f"open {page_url} in a browser (each tab is a peer); Ctrl-C stops")
                    nursery.start_soon(_trickle, peers, args.interval, rng)
                    async for _ in signals:
                        break
                    say("stopping")
                    nursery.cancel_scope.cancel()
            infrastructure.cancel_scope.cancel()
    say("stopped")


async def _trickle(peers: list[Node], interval: float, rng: random.Random) -> None:
    """A random Python peer publishes a random document every ``interval`` seconds."""
    n = 0
    while True:
        await trio.sleep(interval)
        await rng.choice(peers).publish({"from": "python", **random_document(rng, n)})
        n += 1


async def _report_pages(node: Node, python: set[str], say: Callable[[str], None],
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Print every document a page (any peer but ours) published, as ``node`` got it."""
    async with node.subscribe({}) as subscription:
        task_status.started()
        async for message in subscription:
            if message.publisher not in python:
                say(f"python peer ...{node.peer_id[-6:]} received from page "
                    f"{message.publisher}: {json.dumps(message.data, sort_keys=True)}")


@contextmanager
def serve_page(port: int, config: dict[str, Any]) -> Iterator[str]:
    """Serve the demo page, the bundle and ``/config.json`` on 127.0.0.1:``port``
    (0: any free port); yields the page's URL."""
    body = json.dumps(config).encode()
    routes = {path: (kind, (lambda: body) if name is None else _reader(name))
              for path, (name, kind) in ROUTES.items()}
    with ExitStack() as stack:
        try:
            url = stack.enter_context(serve_static(routes, port))
        except OSError as exc:
            raise CommandError(f"cannot serve the page on 127.0.0.1:{port}: {exc.strerror}; "
                               "choose another --http-port (0: any free port)") from None
        yield url


def _reader(name: str) -> Callable[[], bytes]:
    """Reads a served file at each request, so a rebuilt bundle needs no restart."""
    path = BUNDLE if name == "taiinet.js" else PAGE / name
    return path.read_bytes
