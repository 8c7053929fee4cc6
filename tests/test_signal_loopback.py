"""End to end on loopback: 5 signallers over secure WebSockets, peers open WebRTC
data channels through relayed offers and answers, and survive the loss of a home."""

from __future__ import annotations

import random
import subprocess
import sys
from contextlib import AsyncExitStack

import trio

from taiinet.signal.api import open_signaller
from taiinet.signal.client import SignalClient, open_signal_client
from taiinet.transport.connection import Connection
from taiinet.transport.webrtc import WebRTCEndpoint, open_webrtc
from taiinet.wire.identity import Identity


def ident(n: int) -> Identity:
    return Identity.from_seed(bytes([n]) * 32)


async def connect(client: SignalClient, endpoint: WebRTCEndpoint, peer_id: str) -> Connection:
    """Offer a WebRTC link to ``peer_id`` through the mesh; return the secure link."""
    offer = await endpoint.create_offer()
    answer = await client.send_offer(peer_id, offer.sdp)
    return await offer.accept(answer, expected_peer_id=peer_id)


async def accept_one(client: SignalClient, endpoint: WebRTCEndpoint,
                     links: trio.MemorySendChannel[Connection]) -> None:
    async for offer in client.incoming_offers():
        answer_sdp, pending = await endpoint.answer(offer.sdp)
        await offer.answer(answer_sdp)
        await links.send(await pending.connected(expected_peer_id=offer.from_peer))


async def echo(link: Connection) -> None:
    async for frame in link:
        await link.send(b"echo:" + frame)


async def start_signaller(join: list[str]) -> tuple[trio.Process, str, str]:
    """``taiinet signal`` in its own process; returns it, its peer id and URL."""
    command = [sys.executable, "-m", "taiinet.cli", "signal", "--listen", "127.0.0.1:0"]
    for url in join:
        command += ["--join", url]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        chunk = await process.stdout.receive_some(1)
        assert chunk, "the signaller exited before printing its first line"
        line += chunk
    word, peer_id, url = line.decode().split()
    assert word == "signaller" and url.startswith("ws://127.0.0.1:")
    return process, peer_id, url


async def test_webrtc_through_the_mesh_and_after_home_loss() -> None:
    processes: list[trio.Process] = []
    try:
        with trio.fail_after(90):
            homes: list[tuple[str, str]] = []
            for _ in range(5):  # each joins the previous one
                process, peer_id, url = await start_signaller([homes[-1][1]] if homes else [])
                processes.append(process)
                homes.append((peer_id, url))
            await mesh_scenario(processes, homes)
    finally:
        for process in processes:
            process.kill()
            await process.wait()


async def mesh_scenario(processes: list[trio.Process], homes: list[tuple[str, str]]) -> None:
    urls = [url for _, url in homes]
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        a = await stack.enter_async_context(open_signal_client(
            ident(1), [urls[0], urls[2]], rng=random.Random(1)))
        b = await stack.enter_async_context(open_signal_client(
            ident(2), [urls[4]], rng=random.Random(2)))
        rtc_a = await stack.enter_async_context(open_webrtc(ident(1),
                                                            candidate_addresses=["127.0.0.1"]))
        rtc_b = await stack.enter_async_context(open_webrtc(ident(2),
                                                            candidate_addresses=["127.0.0.1"]))
        await a.wait_registered()
        await b.wait_registered()
        assert (a.home, b.home) == (homes[0][0], homes[4][0])
        links_send, links_receive = trio.open_memory_channel[Connection](4)
        nursery.start_soon(accept_one, b, rtc_b, links_send)
        link_ab = await connect(a, rtc_a, b.peer_id)
        link_ba = await links_receive.receive()
        assert link_ab.remote_peer_id == b.peer_id and link_ba.remote_peer_id == a.peer_id
        nursery.start_soon(echo, link_ba)
        await link_ab.send(b"hello through WebRTC")
        assert await link_ab.receive() == b"echo:hello through WebRTC"

        # A's home is killed; A re-homes on urls[2]; a new peer C homed on urls[3] reaches A.
        a_home = homes[0][0]
        processes[0].kill()
        assert await a.wait_rehomed(a_home) == homes[2][0]
        a_links_send, a_links_receive = trio.open_memory_channel[Connection](4)
        nursery.start_soon(accept_one, a, rtc_a, a_links_send)
        c = await stack.enter_async_context(open_signal_client(
            ident(3), [urls[3]], rng=random.Random(3)))
        rtc_c = await stack.enter_async_context(open_webrtc(
            ident(3), candidate_addresses=["127.0.0.1"]))
        await c.wait_registered()
        link_ca = await connect(c, rtc_c, a.peer_id)
        link_ac = await a_links_receive.receive()
        nursery.start_soon(echo, link_ac)
        await link_ca.send(b"hi A, from C")
        assert await link_ca.receive() == b"echo:hi A, from C"
        for link in (link_ab, link_ba, link_ca, link_ac):
            await link.aclose()
        nursery.cancel_scope.cancel()


async def test_a_peer_that_dials_another_name_registers_the_homes_own_url() -> None:
    """The record's signaller_url is what the home announces, not what the peer dialed."""
    with trio.fail_after(20):
        async with open_signaller(listen="127.0.0.1:0", identity=ident(90)) as sig:
            alias = sig.url.replace("127.0.0.1", "localhost")
            async with open_signal_client(ident(91), [alias], rng=random.Random(1)) as client:
                await client.wait_registered()
                assert client.home_url == sig.url
                assert sig.homed_peers == [ident(91).peer_id]
