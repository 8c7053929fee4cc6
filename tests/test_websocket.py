"""The WebSocket transport: conformance, handshakes, bad peers (127.0.0.1 only)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio_websocket

from taiinet.testing import (
    CONNECTION_CHECKS,
    Suite,
    check_message_channel_pair,
)
from taiinet.transport import websocket
from taiinet.transport.connection import Connection, MessageChannel
from taiinet.transport.errors import DialError, PeerIdMismatch
from taiinet.transport.websocket import (
    SUBPROTOCOL,
    WebSocketChannel,
    WebSocketProtocolError,
    connect_websocket,
    open_websocket_listener,
)
from taiinet.wire.identity import Identity

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


@asynccontextmanager
async def raw_client(
    port: int, subprotocols: list[str] | None = None
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A bare trio-websocket client that closes its own TCP stream.

    (``open_websocket_url`` leaves the client socket open when the server
    closes first, which shows up as a ResourceWarning.)
    """
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, f"127.0.0.1:{port}", "/", subprotocols=subprotocols
            )
            yield ws
            await ws.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


@asynccontextmanager
async def open_websocket_pair(
    a: Identity, b: Identity, *, max_frame_size_a: int, max_frame_size_b: int,
    coalesce: bool = True,
) -> AsyncIterator[tuple[Connection, Connection]]:
    async with (
        open_websocket_listener(b, max_frame_size=max_frame_size_b,
                                coalesce=coalesce) as listener,
        connect_websocket(
            listener.url, a, expected_peer_id=b.peer_id, max_frame_size=max_frame_size_a,
            coalesce=coalesce,
        ) as conn_a,
    ):
        conn_b = await listener.accept()
        try:
            yield conn_a, conn_b
        finally:
            await conn_b.aclose()


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalescing", "direct"])
@pytest.mark.parametrize("check", CONNECTION_CHECKS, ids=lambda check: check.__name__)
async def test_websocket_transport_conforms(check: Callable[[Suite], Awaitable[None]],
                                            coalesce: bool) -> None:
    opener = functools.partial(open_websocket_pair, coalesce=coalesce)
    await check(Suite(opener, backpressure_bytes=8 << 20, blocked_cushion=0.05))


async def test_raw_websocket_channels_conform() -> None:
    @asynccontextmanager
    async def open_channels() -> AsyncIterator[tuple[MessageChannel, MessageChannel]]:
        accepted: trio.MemorySendChannel[WebSocketChannel]
        accepted, incoming = trio.open_memory_channel[WebSocketChannel](1)
        done = trio.Event()

        async def handler(request: trio_websocket.WebSocketRequest) -> None:
            channel = WebSocketChannel(await request.accept())
            await accepted.send(channel)
            await done.wait()

        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1",
                                         0, None)
            async with trio_websocket.open_websocket_url(
                f"ws://127.0.0.1:{server.port}", max_message_size=1 << 20
            ) as ws:
                yield WebSocketChannel(ws), await incoming.receive()
            done.set()
            nursery.cancel_scope.cancel()

    await check_message_channel_pair(open_channels)


async def test_wrong_expected_peer_id_fails_and_the_listener_goes_on() -> None:
    async with open_websocket_listener(BOB) as listener:
        with pytest.raises(PeerIdMismatch):
            async with connect_websocket(listener.url, ALICE, expected_peer_id=ALICE.peer_id):
                pass
        async with connect_websocket(listener.url, ALICE, expected_peer_id=BOB.peer_id) as conn:
            accepted = await listener.accept()
            assert (conn.remote_peer_id, accepted.remote_peer_id) == (BOB.peer_id, ALICE.peer_id)
            await conn.send(b"ping")
            assert await accepted.receive() == b"ping"


@pytest.mark.parametrize(
    "garbage", [b"\x00\x05hello", b"\x01\x2c" + b"\xff" * 300, "text, not binary"]
)
async def test_garbage_client_is_dropped_and_the_listener_goes_on(garbage: bytes | str) -> None:
    async with open_websocket_listener(BOB) as listener:
        async with raw_client(listener.port, [SUBPROTOCOL]) as ws:
            await ws.send_message(garbage)
            # The listener answers with its first handshake message or a close; either
            # way the link ends without a connection being handed out.
            with pytest.raises(trio_websocket.ConnectionClosed):
                while True:
                    await ws.get_message()
        async with connect_websocket(listener.url, ALICE) as conn:
            accepted = await listener.accept()
            assert accepted.remote_peer_id == ALICE.peer_id
            await accepted.send(b"still here")
            assert await conn.receive() == b"still here"


async def test_client_without_the_subprotocol_is_refused() -> None:
    async with open_websocket_listener(BOB) as listener:
        with pytest.RaisesGroup(
            pytest.RaisesExc(trio_websocket.ConnectionRejected,
                             check=lambda exc: exc.status_code == 400),
            flatten_subgroups=True,
        ):
            async with raw_client(listener.port):
                pass


async def test_text_message_is_a_remote_protocol_error() -> None:
    received: list[BaseException] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        channel = WebSocketChannel(await request.accept())
        try:
            await channel.receive_message()
        except WebSocketProtocolError as exc:
            received.append(exc)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0,
                                     None)
        async with raw_client(server.port) as ws:
            await ws.send_message("hello")
            with pytest.raises(trio_websocket.ConnectionClosed):
                await ws.get_message()
        nursery.cancel_scope.cancel()
    assert len(received) == 1


async def test_dialing_nobody_is_a_dial_error() -> None:
    async with open_websocket_listener(BOB) as listener:
        url = listener.url
    with pytest.raises(DialError):
        async with connect_websocket(url, ALICE):
            pass


async def test_cancelling_the_owner_of_a_link_does_not_hang_its_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelling the dialer cancels trio-websocket's reader too; the close must still end."""
    monkeypatch.setattr(websocket, "CLOSE_TIMEOUT", 0.5)
    server, client = Identity.from_seed(b"\x31" * 32), Identity.from_seed(b"\x32" * 32)
    async with open_websocket_listener(server) as listener:
        accepted = None
        with trio.fail_after(3 * websocket.CLOSE_TIMEOUT):
            async with trio.open_nursery() as nursery:
                connected = trio.Event()

                async def dial_and_wait() -> None:
                    async with connect_websocket(listener.url, client):
                        connected.set()
                        await trio.sleep_forever()

                nursery.start_soon(dial_and_wait)
                accepted = await listener.accept()
                await connected.wait()
                nursery.cancel_scope.cancel()
        await accepted.aclose()
