"""A page is a full peer of a Python mesh: ``TaiiNet.connect`` in headless Chromium
joins the overlay of Python nodes (HyParView over WebRTC links with Noise), documents
it publishes reach the Python subscribers, and the Python nodes' documents reach its
subscription, filtered by its query."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from typing import Any

import trio

import taiinet
from taiinet.node.node import Node
from taiinet.wire.identity import Identity
from tests.browser.chromium import run_in_browser
from tests.browser.support import CHROMIUM, build_bundle, require
from tests.cli_support import processes, signaller


async def collect(node: Node, query: dict[str, Any], into: list[dict[str, Any]],
                  ready: trio.Event) -> None:
    async with node.subscribe(query) as sub:
        ready.set()
        async for message in sub:
            into.append({"data": message.data, "publisher": message.publisher})


async def test_a_page_exchanges_documents_with_python_nodes() -> None:
    require(CHROMIUM, "Debian's chromium")
    build_bundle()
    with trio.fail_after(120):
        async with processes() as spawned, AsyncExitStack() as stack:
            _, url1 = await signaller(spawned)
            _, url2 = await signaller(spawned, "--join", url1)
            nodes = [await stack.enter_async_context(taiinet.open_node(
                signallers=[url], identity=Identity.from_seed(bytes([40 + i]) * 32),
                rng=random.Random(i))) for i, url in enumerate((url1, url2))]
            nursery = await stack.enter_async_context(trio.open_nursery())
            got: list[list[dict[str, Any]]] = [[], []]
            for node, into in zip(nodes, got, strict=True):
                ready = trio.Event()
                nursery.start_soon(collect, node, {"topic": "x"}, into, ready)
                await ready.wait()
            token = trio.lowlevel.current_trio_token()

            async def python_publishes() -> None:
                await nodes[1].publish({"topic": "y", "n": 0})  # matches no query of the page
                await nodes[1].publish({"topic": "x", "n": 1, "from": "python"})

            def in_browser(pages: list[Any]) -> dict[str, Any]:
                page = pages[0]
                peer_id = page.evaluate("([s, q]) => harness.join(s, q)", [[url2], {"topic": "x"}])
                page.evaluate("n => harness.waitNeighbors(n)", 1)
                page.evaluate("d => harness.publish(d)", {"topic": "x", "n": 2, "from": "page"})
                trio.from_thread.run(python_publishes, trio_token=token)
                received = page.evaluate("n => harness.waitReceived(n)", 2)
                return {"peer_id": peer_id, "received": received,
                        "stats": page.evaluate("() => harness.routerStats()"),
                        "rejected": page.evaluate("() => harness.leave()")}

            result = await trio.to_thread.run_sync(run_in_browser, in_browser)
            # Python -> page: the matching document, once, signed by its publisher; and the
            # page's own, which its subscription matches too (as in Python).
            by_n = {r["data"]["n"]: r for r in result["received"]}
            assert len(result["received"]) == 2 and sorted(by_n) == [1, 2]
            assert by_n[1]["data"] == {"topic": "x", "n": 1, "from": "python"}
            assert by_n[1]["publisher"] == nodes[1].peer_id
            assert by_n[2]["publisher"] == result["peer_id"]
            assert result["rejected"] == {}
            # The page routes: it advertised its interest, and its Python neighbours sent it
            # nothing it had no use for (the topic "y" document stayed on the Python side).
            stats = result["stats"]
            assert stats.get("adverts_sent", 0) >= 1 and stats.get("adverts_received", 0) >= 1
            assert stats.get("unwanted", 0) == 0, stats
            # Page -> Python: both nodes got the page's document.
            with trio.fail_after(20):
                while not all(any(m["data"].get("from") == "page" for m in into) for into in got):
                    await trio.sleep(0.05)
            for into in got:
                assert [m["publisher"] for m in into if m["data"].get("from") == "page"] == [
                    result["peer_id"]]
            nursery.cancel_scope.cancel()


async def test_a_page_that_closes_right_after_send_still_delivers() -> None:
    """``await sub.send(doc)`` resolves only once a neighbour holds the document: a page
    that joins, sends and closes at once (before it even had a neighbour when it sent)
    still reaches the Python subscriber."""
    require(CHROMIUM, "Debian's chromium")
    build_bundle()
    with trio.fail_after(120):
        async with processes() as spawned, AsyncExitStack() as stack:
            _, url = await signaller(spawned)
            node = await stack.enter_async_context(taiinet.open_node(
                signallers=[url], identity=Identity.from_seed(bytes([50]) * 32),
                rng=random.Random(5)))
            nursery = await stack.enter_async_context(trio.open_nursery())
            got: list[dict[str, Any]] = []
            ready = trio.Event()
            nursery.start_soon(collect, node, {"topic": "one-shot"}, got, ready)
            await ready.wait()

            def in_browser(pages: list[Any]) -> str:
                peer_id: str = pages[0].evaluate(
                    "([s, d]) => harness.sendAndLeave(s, d)", [[url], {"topic": "one-shot"}])
                return peer_id

            peer_id = await trio.to_thread.run_sync(run_in_browser, in_browser)
            with trio.fail_after(20):
                while not got:
                    await trio.sleep(0.05)
            assert got == [{"data": {"topic": "one-shot"}, "publisher": peer_id}]
            nursery.cancel_scope.cancel()
