"""The mixed mesh of the browser peer's acceptance test: 3 ``taiinet signal`` processes,
3 Python nodes and 3 pages of headless Chromium (links through a TURN relay on
127.0.0.1, which page-to-page links on one host need).  Every peer publishes one
document; every subscriber gets exactly the documents its query matches, once; and a
page's document reaches another page straight over their link, no Python peer between."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

import taiinet
from taiinet.node.node import Node
from taiinet.pubsub.query import Query
from taiinet.wire.identity import Identity
from tests.browser.chromium import run_in_browser
from tests.browser.support import CHROMIUM, build_bundle, require, turn_server
from tests.cli_support import processes, signaller

PAGE_QUERIES: list[dict[str, Any]] = [{}, {"kind": "a"}, {"n": {"$gte": 4}}]
NODE_QUERIES: list[dict[str, Any]] = [{"kind": "b"}, {}, {"n": {"$in": [0, 1, 5]}}]


def document(n: int) -> dict[str, Any]:
    """Peer n's publication: pages are 0-2, Python nodes 3-5."""
    return {"kind": "ab"[n % 2], "n": n, "from": "page" if n < 3 else "python"}


def expected(query: dict[str, Any]) -> list[int]:
    return [n for n in range(6) if Query(query).matches(document(n))]


async def collect(node: Node, query: dict[str, Any], into: list[dict[str, Any]],
                  ready: trio.Event) -> None:
    async with node.subscribe(query) as sub:
        ready.set()
        async for message in sub:
            into.append(message.data)


async def test_three_signallers_three_python_nodes_three_pages(tmp_path: Path) -> None:
    require(CHROMIUM, "Debian's chromium")
    build_bundle()
    with trio.fail_after(180):
        async with processes() as spawned, turn_server(tmp_path) as turn, \
                trio.open_nursery() as nursery:
            _, url0 = await signaller(spawned)
            urls = [url0] + [(await signaller(spawned, "--join", url0))[1] for _ in range(2)]
            options = {"iceServers": [turn], "iceTransportPolicy": "relay"}
            token = trio.lowlevel.current_trio_token()
            nodes: list[Node] = []
            got: list[list[dict[str, Any]]] = [[], [], []]
            pages_joined, nodes_ready, publish, done = (trio.Event() for _ in range(4))

            async def python_side() -> None:
                await pages_joined.wait()
                async with AsyncExitStack() as stack:
                    for i, url in enumerate(urls):
                        nodes.append(await stack.enter_async_context(taiinet.open_node(
                            signallers=[url], identity=Identity.from_seed(bytes([60 + i]) * 32),
                            rng=random.Random(i))))
                    async with trio.open_nursery() as collectors:
                        for node, query, into in zip(nodes, NODE_QUERIES, got, strict=True):
                            ready = trio.Event()
                            collectors.start_soon(collect, node, query, into, ready)
                            await ready.wait()
                        nodes_ready.set()
                        await publish.wait()
                        for i, node in enumerate(nodes):
                            await node.publish(document(3 + i))
                        await done.wait()
                        collectors.cancel_scope.cancel()

            def in_browser(pages: list[Any]) -> dict[str, Any]:
                # The pages join first, one after the other: pages 1 and 2 link to page 0.
                ids = []
                for i, page in enumerate(pages):
                    ids.append(page.evaluate("([s, q, o]) => harness.join(s, q, o)",
                                             [[urls[i]], PAGE_QUERIES[i], options]))
                    if i > 0:
                        page.evaluate("n => harness.waitNeighbors(n)", 1)
                trio.from_thread.run_sync(pages_joined.set, trio_token=token)
                trio.from_thread.run(nodes_ready.wait, trio_token=token)
                for page in pages:
                    page.evaluate("n => harness.waitNeighbors(n)", 2)
                for i, page in enumerate(pages):
                    page.evaluate("d => harness.publish(d)", document(i))
                trio.from_thread.run_sync(publish.set, trio_token=token)
                received = [page.evaluate("n => harness.waitReceived(n)",
                                          len(expected(PAGE_QUERIES[i])))
                            for i, page in enumerate(pages)]
                return {"ids": ids, "received": received,
                        "rejected": [page.evaluate("() => harness.leave()") for page in pages]}

            nursery.start_soon(python_side)
            result = await trio.to_thread.run_sync(run_in_browser, in_browser, 3)
            with trio.fail_after(30):
                while any(len(into) < len(expected(q))
                          for into, q in zip(got, NODE_QUERIES, strict=True)):
                    await trio.sleep(0.05)
            done.set()
            for into, query in zip(got, NODE_QUERIES, strict=True):
                assert sorted(d["n"] for d in into) == expected(query), query
            for received, query in zip(result["received"], PAGE_QUERIES, strict=True):
                assert sorted(r["data"]["n"] for r in received) == expected(query), query
            assert result["rejected"] == [{}, {}, {}]
            # Browser -> browser with no Python peer between: a page's document that
            # another page got straight from the publishing page.
            pages = set(result["ids"])
            direct = [r for received in result["received"] for r in received
                      if r["publisher"] in pages and r["via"] == r["publisher"]]
            assert direct, result["received"]
