"""A page that is sent a bad handshake, a malformed frame or tampered documents drops
the link they came on, delivers nothing of them, and keeps working: a good Python
neighbour's next document still reaches its subscription."""

from __future__ import annotations

import hashlib
import random
from contextlib import AsyncExitStack
from typing import Any

import trio

import taiinet
from taiinet.errors import ConnectionClosed
from taiinet.pubsub.documents import SignedDocuments
from taiinet.signal.client import SignalClient, open_signal_client
from taiinet.transport.webrtc import WebRTCEndpoint, open_webrtc
from taiinet.v1 import frame_pb2, overlay_pb2
from taiinet.wire.identity import Identity
from tests.browser.chromium import run_in_browser
from tests.browser.support import CHROMIUM, build_bundle, require
from tests.cli_support import processes, signaller

ATTACKER = Identity.from_seed(bytes([66]) * 32)


async def closed_by_the_page(receive: Any) -> None:
    """Read until the page closes the channel (it must, within the deadline)."""
    with trio.fail_after(20):
        try:
            while True:
                await receive()
        except ConnectionClosed:
            return


async def bad_handshake(client: SignalClient, endpoint: WebRTCEndpoint, page: str) -> None:
    offer = await endpoint.create_offer()
    channel = await offer.accept_raw(await client.send_offer(page, offer.sdp))
    await channel.send_message(b"\x00\x20" + bytes(range(32)))  # message 1: any 32-byte key
    await channel.receive_message()  # the page's message 2
    await channel.send_message(b"\x00\x40" + bytes(64))  # message 3 that does not decrypt
    await closed_by_the_page(channel.receive_message)


async def secure_link(client: SignalClient, endpoint: WebRTCEndpoint, page: str) -> Any:
    offer = await endpoint.create_offer()
    return await offer.accept(await client.send_offer(page, offer.sdp), expected_peer_id=page)


async def malformed_frame(client: SignalClient, endpoint: WebRTCEndpoint, page: str) -> None:
    link = await secure_link(client, endpoint, page)
    await link.send(b"\xff\xff\xff")  # not a Frame
    await closed_by_the_page(link.receive)


async def tampered_documents(client: SignalClient, endpoint: WebRTCEndpoint, page: str) -> None:
    link = await secure_link(client, endpoint, page)
    documents = SignedDocuments(ATTACKER)
    for n in range(6):
        envelope = bytearray(documents.seal({"topic": "x", "n": n}, 60 * 1024,
                                            published_unix_ms=1, nonce=n))
        envelope[-1] ^= 1  # the signature no longer verifies
        gossip = overlay_pb2.OverlayMessage.Gossip(
            message_id=hashlib.sha256(envelope).digest(), hops=1, payload=bytes(envelope))
        await link.send(frame_pb2.Frame(
            overlay=overlay_pb2.OverlayMessage(gossip=gossip)).SerializeToString())
    await closed_by_the_page(link.receive)


async def test_a_page_survives_bad_handshakes_frames_and_documents() -> None:
    require(CHROMIUM, "Debian's chromium")
    build_bundle()
    with trio.fail_after(120):
        async with processes() as spawned:
            _, url = await signaller(spawned)
            token = trio.lowlevel.current_trio_token()
            page_id: list[str] = []
            page_joined, attacks_done, finished = trio.Event(), trio.Event(), trio.Event()

            async def attacks() -> None:
                await page_joined.wait()
                async with AsyncExitStack() as stack:
                    await attack_then_publish(stack)
                    attacks_done.set()
                    await finished.wait()

            async def attack_then_publish(stack: AsyncExitStack) -> None:
                client = await stack.enter_async_context(
                    open_signal_client(ATTACKER, [url], rng=random.Random(66)))
                endpoint = await stack.enter_async_context(
                    open_webrtc(ATTACKER, candidate_addresses=["127.0.0.1"]))
                await client.wait_registered()
                for attack in (bad_handshake, malformed_frame, tampered_documents):
                    await attack(client, endpoint, page_id[0])
                good = await stack.enter_async_context(taiinet.open_node(
                    signallers=[url], identity=Identity.from_seed(bytes([67]) * 32),
                    rng=random.Random(67)))
                while page_id[0] not in good.neighbors:
                    await trio.sleep(0.05)
                await good.publish({"topic": "x", "n": 100})

            def in_browser(pages: list[Any]) -> dict[str, Any]:
                page = pages[0]
                page_id.append(page.evaluate("([s, q]) => harness.join(s, q)",
                                             [[url], {"topic": "x"}]))
                trio.from_thread.run_sync(page_joined.set, trio_token=token)
                trio.from_thread.run(attacks_done.wait, trio_token=token)
                return {"received": page.evaluate("n => harness.waitReceived(n)", 1),
                        "rejected": page.evaluate("() => harness.leave()")}

            async with trio.open_nursery() as nursery:
                nursery.start_soon(attacks)
                result = await trio.to_thread.run_sync(run_in_browser, in_browser)
                finished.set()
            assert [r["data"] for r in result["received"]] == [{"topic": "x", "n": 100}]
            assert result["rejected"] == {"malformed: MalformedFrame": 1, "invalid_envelope": 6}
