"""The WebRTC transport: conformance, SDP checks, bad peers (127.0.0.1 candidates only)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from taiinet.errors import ConnectionClosed, LocalProtocolError
from taiinet.testing import (
    CONNECTION_CHECKS,
    Suite,
    check_message_channel_pair,
)
from taiinet.transport._asyncio_loop import _HOSTED
from taiinet.transport.connection import Connection, MessageChannel
from taiinet.transport.errors import DialError, HandshakeError, PeerIdMismatch
from taiinet.transport.webrtc import (
    DATA_CHANNEL_LABEL,
    InvalidSdp,
    WebRTCEndpoint,
    open_webrtc,
)
from taiinet.wire.identity import Identity

LOOPBACK = ["127.0.0.1"]
ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


@asynccontextmanager
async def two_endpoints(
    a: Identity = ALICE, b: Identity = BOB, **options: int
) -> AsyncIterator[tuple[WebRTCEndpoint, WebRTCEndpoint]]:
    size_a = options.get("max_frame_size_a", 1 << 20)
    size_b = options.get("max_frame_size_b", 1 << 20)
    async with open_webrtc(a, candidate_addresses=LOOPBACK, max_frame_size=size_a) as rtc_a, \
            open_webrtc(b, candidate_addresses=LOOPBACK, max_frame_size=size_b) as rtc_b:
        yield rtc_a, rtc_b
    assert _HOSTED.get() is None  # the last endpoint closed this run's asyncio loop


async def connect(rtc_a: WebRTCEndpoint, rtc_b: WebRTCEndpoint,
                  expected_peer_id: str | None = None) -> tuple[Connection, Connection]:
    offer = await rtc_a.create_offer()
    answer_sdp, pending = await rtc_b.answer(offer.sdp)
    results: dict[str, Connection] = {}

    async def answerer() -> None:
        results["b"] = await pending.connected()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answerer)
        results["a"] = await offer.accept(answer_sdp, expected_peer_id)
    return results["a"], results["b"]


@asynccontextmanager
async def open_webrtc_pair(
    a: Identity, b: Identity, *, max_frame_size_a: int, max_frame_size_b: int
) -> AsyncIterator[tuple[Connection, Connection]]:
    async with two_endpoints(a, b, max_frame_size_a=max_frame_size_a,
                             max_frame_size_b=max_frame_size_b) as (rtc_a, rtc_b):
        conn_a, conn_b = await connect(rtc_a, rtc_b, b.peer_id)
        try:
            yield conn_a, conn_b
        finally:
            await conn_a.aclose()
            await conn_b.aclose()


@pytest.mark.parametrize("check", CONNECTION_CHECKS, ids=lambda check: check.__name__)
async def test_webrtc_transport_conforms(check: Callable[[Suite], Awaitable[None]]) -> None:
    await check(Suite(open_webrtc_pair, backpressure_bytes=4 << 20, blocked_cushion=0.1))


async def test_raw_data_channels_conform() -> None:
    @asynccontextmanager
    async def open_channels() -> AsyncIterator[tuple[MessageChannel, MessageChannel]]:
        async with two_endpoints() as (rtc_a, rtc_b):
            offer = await rtc_a.create_offer()
            answer_sdp, pending = await rtc_b.answer(offer.sdp)
            channel_a = await offer.accept_raw(answer_sdp)
            yield channel_a, await pending.connected_raw()

    await check_message_channel_pair(open_channels)


async def test_offer_carries_loopback_candidates_and_one_data_channel() -> None:
    async with open_webrtc(ALICE, candidate_addresses=LOOPBACK) as rtc:
        offer = await rtc.create_offer()
        candidates = [line for line in offer.sdp.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)
        assert sum(line.startswith("m=") for line in offer.sdp.splitlines()) == 1
        await offer.aclose()


async def test_wrong_expected_peer_id_fails_and_the_endpoint_goes_on() -> None:
    async with two_endpoints() as (rtc_a, rtc_b):
        offer = await rtc_a.create_offer()
        answer_sdp, pending = await rtc_b.answer(offer.sdp)
        async with trio.open_nursery() as nursery:
            async def answerer() -> None:
                # The offerer drops the link as soon as it sees the wrong peer id.
                with pytest.raises(DialError):
                    await pending.connected()

            nursery.start_soon(answerer)
            with pytest.raises(PeerIdMismatch):
                await offer.accept(answer_sdp, ALICE.peer_id)
        conn_a, conn_b = await connect(rtc_a, rtc_b, BOB.peer_id)
        await conn_a.send(b"ping")
        assert await conn_b.receive() == b"ping"
        assert conn_b.remote_peer_id == ALICE.peer_id
        await conn_a.aclose()


@pytest.mark.parametrize("garbage", [b"\x00\x05hello", b"\x01\x2c" + b"\xff" * 300])
async def test_garbage_over_the_data_channel_closes_only_that_link(garbage: bytes) -> None:
    async with two_endpoints() as (rtc_a, rtc_b):
        offer = await rtc_a.create_offer()
        answer_sdp, pending = await rtc_b.answer(offer.sdp)
        raw = await offer.accept_raw(answer_sdp)
        await raw.send_message(garbage)
        with pytest.raises(HandshakeError):
            await pending.connected()
        conn_a, conn_b = await connect(rtc_a, rtc_b, BOB.peer_id)
        await conn_b.send(b"still here")
        assert await conn_a.receive() == b"still here"
        await raw.aclose()
        await conn_a.aclose()


@pytest.mark.parametrize("mangle", [
    lambda sdp: "",
    lambda sdp: "hello",
    lambda sdp: sdp.replace("v=0", "v=1"),
    lambda sdp: "\n".join(x for x in sdp.splitlines() if not x.startswith("a=candidate")),
    lambda sdp: "\n".join(x for x in sdp.splitlines() if not x.startswith("a=fingerprint")),
    lambda sdp: sdp.replace("m=application", "m=audio"),
    lambda sdp: sdp + "a=x:" + "y" * 20000 + "\r\n",
    lambda sdp: sdp.replace("a=ice-pwd:", "a=ice-pwd:\x00"),
], ids=["empty", "text", "version", "no-candidate", "no-fingerprint", "audio", "huge", "nul"])
async def test_malformed_offer_is_invalid_sdp(mangle: Callable[[str], str]) -> None:
    async with two_endpoints() as (rtc_a, rtc_b):
        offer = await rtc_a.create_offer()
        with pytest.raises(InvalidSdp):
            await rtc_b.answer(mangle(offer.sdp))
        await offer.aclose()
        # A malformed answer fails the offer too, and closes its peer connection.
        offer = await rtc_a.create_offer()
        answer_sdp, pending = await rtc_b.answer(offer.sdp)
        with pytest.raises(InvalidSdp):
            await offer.accept(mangle(answer_sdp))
        await pending.aclose()
        with pytest.raises(LocalProtocolError):
            await offer.accept(answer_sdp)


async def test_an_offer_with_another_data_channel_is_refused() -> None:
    async with two_endpoints() as (rtc_a, rtc_b):
        peer = rtc_a._bridge.new_peer()
        offer_sdp = await peer.create_offer(label="not-taiinet")
        answer_sdp, pending = await rtc_b.answer(offer_sdp)
        await peer.accept_answer(answer_sdp)
        with pytest.raises(DialError, match="unexpected data channel"):
            await pending.connected()
        await peer.aclose()
        assert DATA_CHANNEL_LABEL == "taiinet"


def open_sockets() -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


async def test_leaving_the_endpoint_closes_its_links_and_sockets() -> None:
    before = open_sockets()
    async with two_endpoints() as (rtc_a, rtc_b):
        conn_a, conn_b = await connect(rtc_a, rtc_b)
        pending_offer = await rtc_a.create_offer()  # never answered
        assert pending_offer.sdp.startswith("v=0")
        assert open_sockets() > before
    # Both endpoints are gone: every socket is closed (not left to the garbage
    # collector) and the links report the close.
    assert open_sockets() == before
    with pytest.raises(ConnectionClosed):
        await conn_b.receive()
    with pytest.raises(ConnectionClosed):
        await conn_a.send(b"x")


async def test_peer_connections_are_bounded() -> None:
    async with open_webrtc(ALICE, candidate_addresses=LOOPBACK, max_peers=1) as rtc:
        offer = await rtc.create_offer()
        with pytest.raises(DialError, match="already holds 1"):
            await rtc.create_offer()
        await offer.aclose()
        await (await rtc.create_offer()).aclose()  # the slot is free again
