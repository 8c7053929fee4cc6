"""A browser page is a peer: headless Chromium loads js/dist/taiinet.js, joins real
``taiinet signal`` processes, and opens Noise-secured RTCDataChannel links to and from
a Python peer (aiortc), which carry frames both ways."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio

from taiinet.signal.client import SignalClient, open_signal_client
from taiinet.transport.connection import Connection
from taiinet.transport.webrtc import WebRTCEndpoint, open_webrtc
from taiinet.wire.identity import Identity
from tests.browser.chromium import run_in_browser
from tests.browser.support import CHROMIUM, build_bundle, require, turn_server
from tests.cli_support import processes, signaller

PYTHON = Identity.from_seed(bytes([31]) * 32)
FRAMES: list[Any] = ["hello from the page", {"size": 100_000}, "", "third"]


async def serve_links(client: SignalClient, endpoint: WebRTCEndpoint) -> None:
    """Answer every offer and echo each frame of each link, prefixed ``echo:``."""
    async with trio.open_nursery() as nursery:
        async for offer in client.incoming_offers():
            answer_sdp, pending = await endpoint.answer(offer.sdp)
            await offer.answer(answer_sdp)
            nursery.start_soon(echo_link, pending.connected(expected_peer_id=offer.from_peer))


async def echo_link(connecting: Any) -> None:
    link: Connection = await connecting
    async for frame in link:
        await link.send(b"echo:" + frame)


async def dial_browser(client: SignalClient, endpoint: WebRTCEndpoint, peer_id: str) -> list[bytes]:
    offer = await endpoint.create_offer()
    link = await offer.accept(await client.send_offer(peer_id, offer.sdp), expected_peer_id=peer_id)
    replies = []
    for frame in (b"from python", bytes(70_000), b"last"):
        await link.send(frame)
        replies.append(await link.receive())
    await link.aclose()
    return replies


async def test_browser_and_python_link_over_webrtc_with_noise() -> None:
    require(CHROMIUM, "Debian's chromium")
    build_bundle()
    with trio.fail_after(120):
        async with processes() as spawned, trio.open_nursery() as nursery:
            _, url1 = await signaller(spawned)
            _, url2 = await signaller(spawned, "--join", url1)
            async with open_signal_client(PYTHON, [url2], rng=random.Random(3)) as client, \
                    open_webrtc(PYTHON, candidate_addresses=["127.0.0.1"]) as endpoint:
                await client.wait_registered()
                nursery.start_soon(serve_links, client, endpoint)
                browser_id, browser_id_out = trio.open_memory_channel[str](1)
                token = trio.lowlevel.current_trio_token()

                def in_browser(pages: list[Any]) -> dict[str, Any]:
                    page = pages[0]
                    peer_id = page.evaluate("s => harness.start(s)", [url1])
                    trio.from_thread.run_sync(browser_id.send_nowait, peer_id, trio_token=token)
                    dialed = page.evaluate("([p, f]) => harness.dialAndExchange(p, f)",
                                           [PYTHON.peer_id, FRAMES])
                    echoed = page.evaluate("n => harness.waitEchoed(n)", 3)
                    failures = page.evaluate("() => harness.stop()")
                    return {"peer_id": peer_id, "dialed": dialed, "echoed": echoed,
                            "failures": failures}

                python_replies: list[bytes] = []

                async def run_python_dial() -> None:
                    peer_id = await browser_id_out.receive()
                    python_replies.extend(await dial_browser(client, endpoint, peer_id))

                async with trio.open_nursery() as inner:
                    inner.start_soon(run_python_dial)
                    result = await trio.to_thread.run_sync(run_in_browser, in_browser)

                # Browser -> Python: the page dialed, Noise proved the Python peer, frames
                # (one of 100 kB, cut into several Noise messages) came back echoed.
                assert result["dialed"]["remote"] == PYTHON.peer_id
                assert result["dialed"]["replies"] == [
                    "echo:hello from the page", {"size": 100_005, "head": "echo:xxx"}, "echo:",
                    "echo:third"]
                # Python -> browser: the page answered, and echoed each frame.
                assert python_replies == [b"echo:from python", b"echo:" + bytes(70_000),
                                          b"echo:last"]
                assert result["echoed"] == 3
                assert result["failures"] == []
                nursery.cancel_scope.cancel()


async def test_browser_to_browser_link_through_a_turn_relay(tmp_path: Path) -> None:
    """Two pages link to each other with no Python peer between them: ICE through a TURN
    relay on 127.0.0.1 (configuration, never a public default), Noise over the channel."""
    require(CHROMIUM, "Debian's chromium")
    build_bundle()
    with trio.fail_after(120):
        async with processes() as spawned, turn_server(tmp_path) as turn:
            _, url1 = await signaller(spawned)
            _, url2 = await signaller(spawned, "--join", url1)
            options = {"iceServers": [turn], "iceTransportPolicy": "relay"}

            def in_browser(pages: list[Any]) -> dict[str, Any]:
                first, second = pages
                second_id = second.evaluate("([s, o]) => harness.start(s, o)", [[url2], options])
                first.evaluate("([s, o]) => harness.start(s, o)", [[url1], options])
                dialed = first.evaluate("([p, f, o]) => harness.dialAndExchange(p, f, o)",
                                        [second_id, FRAMES, options])
                return {"second_id": second_id, "dialed": dialed,
                        "echoed": second.evaluate("n => harness.waitEchoed(n)", len(FRAMES)),
                        "failures": [page.evaluate("() => harness.stop()") for page in pages]}

            result = await trio.to_thread.run_sync(run_in_browser, in_browser, 2)
            assert result["dialed"]["remote"] == result["second_id"]
            assert result["dialed"]["replies"] == [
                "echo:hello from the page", {"size": 100_005, "head": "echo:xxx"}, "echo:",
                "echo:third"]
            assert result["echoed"] == len(FRAMES)
            assert result["failures"] == [[], []]
