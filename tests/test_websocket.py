"""The WebSocket transport: conformance, handshakes, bad peers (127.0.0.1 only)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Pong, Request
from wsproto.handshake import H11Handshake

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.testing import (
    CONNECTION_CHECKS,
    Suite,
    check_message_channel_pair,
)
from taiinet.transport import wsproto_channel
from taiinet.transport.connection import Connection
from taiinet.transport.errors import DialError, PeerIdMismatch
from taiinet.transport.websocket import (
    SUBPROTOCOL,
    WEBSOCKET_MAX_MESSAGE_SIZE,
    WebSocketChannel,
    WebSocketMessageTooLarge,
    WebSocketProtocolError,
    WebSocketUpgradeError,
    connect_websocket,
    open_websocket_listener,
)
from taiinet.transport.wsproto_channel import accept_websocket, connect_websocket_stream
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


@asynccontextmanager
async def channel_server(
    handler: Callable[[WebSocketChannel], Awaitable[None]],
) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that upgrades each client with ``accept_websocket``."""

    async def serve(stream: trio.SocketStream) -> None:
        channel = await accept_websocket(stream, SUBPROTOCOL)
        if channel is not None:
            await handler(channel)
            await channel.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        yield int(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_channel_pair() -> AsyncIterator[tuple[WebSocketChannel, WebSocketChannel]]:
    """A direct (non-coalescing) client channel and the server channel it reached."""
    accepted, incoming = trio.open_memory_channel[WebSocketChannel](1)
    done = trio.Event()

    async def handler(channel: WebSocketChannel) -> None:
        await accepted.send(channel)
        await done.wait()

    async with channel_server(handler) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = await connect_websocket_stream(stream, f"127.0.0.1:{port}", "/", SUBPROTOCOL)
        try:
            yield client, await incoming.receive()
        finally:
            await client.aclose()
            done.set()


async def test_raw_websocket_channels_conform() -> None:
    """Direct (non-coalescing) channels keep message boundaries."""
    await check_message_channel_pair(raw_channel_pair)


async def test_a_coalescing_writer_joins_what_queues_in_the_pass_that_woke_it() -> None:
    """Two messages sent back to back leave as one WebSocket message: the writer waits
    one scheduler pass after the first woke it (before, trio's random order of a batch
    joined them about every other time)."""
    received: trio.MemorySendChannel[bytes]
    received, arrivals = trio.open_memory_channel[bytes](16)

    async def handler(channel: WebSocketChannel) -> None:
        try:
            while True:
                await received.send(await channel.receive_message())
        except ConnectionClosed:
            pass

    async with channel_server(handler) as port, trio.open_nursery() as writer_nursery:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = await connect_websocket_stream(stream, f"127.0.0.1:{port}", "/", SUBPROTOCOL,
                                                writer_nursery=writer_nursery)
        for round_ in range(12):
            first, second = bytes([round_]) * 3, bytes([round_ + 100]) * 5
            await client.send_message(first)
            await client.send_message(second)
            assert await arrivals.receive() == first + second
        await client.aclose()
        writer_nursery.cancel_scope.cancel()


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


async def _first_receive_error(port_handler: Callable[[int], Awaitable[None]]) -> BaseException:
    """What our channel's ``receive_message`` raises while ``port_handler`` plays the client."""
    received: list[BaseException] = []

    async def handler(channel: WebSocketChannel) -> None:
        try:
            while True:
                await channel.receive_message()
        except (ConnectionClosed, RemoteProtocolError) as exc:
            received.append(exc)

    async with channel_server(handler) as port:
        await port_handler(port)
    assert len(received) == 1
    return received[0]


async def _send_then_expect_close(port: int, message: bytes | str, code: int) -> None:
    """A trio-websocket client sends ``message`` and must see a close with ``code``."""
    async with raw_client(port, [SUBPROTOCOL]) as ws:
        await ws.send_message(message)
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == code


async def test_text_message_is_a_remote_protocol_error() -> None:
    error = await _first_receive_error(
        lambda port: _send_then_expect_close(port, "hello", 1003))
    assert isinstance(error, WebSocketProtocolError)
    assert not isinstance(error, WebSocketMessageTooLarge)


async def test_oversized_message_is_rejected_with_a_typed_error() -> None:
    error = await _first_receive_error(lambda port: _send_then_expect_close(
        port, b"x" * (WEBSOCKET_MAX_MESSAGE_SIZE + 1), 1009))
    assert isinstance(error, WebSocketMessageTooLarge)


async def test_a_message_at_the_limit_in_fragments_arrives_whole() -> None:
    """Fragments (continuation frames) are joined; one byte more is over the limit."""
    got: list[bytes] = []
    errors: list[BaseException] = []

    async def handler(channel: WebSocketChannel) -> None:
        try:
            while True:
                got.append(await channel.receive_message())
        except (ConnectionClosed, RemoteProtocolError) as exc:
            errors.append(exc)

    whole = bytes(range(256)) * (WEBSOCKET_MAX_MESSAGE_SIZE // 256) + b"!"
    whole = whole[:WEBSOCKET_MAX_MESSAGE_SIZE]
    async with channel_server(handler) as port:
        stream, ws = await _wsproto_client(port)
        third = len(whole) // 3
        for start, finished in ((0, False), (third, False), (2 * third, True)):
            end = len(whole) if finished else start + third
            await stream.send_all(ws.send(Message(data=whole[start:end],
                                                  message_finished=finished)))
        await stream.send_all(ws.send(Message(data=whole, message_finished=False)))
        await stream.send_all(ws.send(Message(data=b"!", message_finished=True)))
        assert await _read_close_code(stream, ws) == 1009
        await stream.aclose()
    assert got == [whole]
    assert len(errors) == 1 and isinstance(errors[0], WebSocketMessageTooLarge)


async def _wsproto_client(port: int) -> tuple[trio.SocketStream, WSConnection]:
    """A bare wsproto client, upgraded, for frames trio-websocket will not send."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=f"127.0.0.1:{port}", target="/",
                                          subprotocols=[SUBPROTOCOL])))
    while ws.state is not ConnectionState.OPEN:
        ws.receive_data(await stream.receive_some(4096))
        list(ws.events())
    return stream, ws


async def _read_close_code(stream: trio.SocketStream, ws: WSConnection) -> int | None:
    while True:
        data = await stream.receive_some(65536)
        ws.receive_data(data or None)
        for event in ws.events():
            if isinstance(event, CloseConnection):
                return int(event.code)
        if not data:
            return None


async def test_a_peer_sending_garbage_frames_is_dropped_with_a_protocol_error() -> None:
    async def garbage(port: int) -> None:
        stream, ws = await _wsproto_client(port)
        # Reserved bits set, opcode 0xB (reserved): no valid frame.
        await stream.send_all(b"\xfb\x85" + b"\x00" * 9)
        assert await _read_close_code(stream, ws) == 1002
        await stream.aclose()

    error = await _first_receive_error(garbage)
    assert isinstance(error, WebSocketProtocolError)


async def test_ping_is_answered_and_close_is_a_handshake_both_ways() -> None:
    async def client(port: int) -> None:
        async with raw_client(port, [SUBPROTOCOL]) as ws:
            with trio.fail_after(5):
                await ws.ping(b"are you there")  # returns when the pong arrives
            await ws.send_message(b"bye")
        # raw_client closed with 1000: our receive ends with ConnectionClosed.

    error = await _first_receive_error(client)
    assert type(error) is ConnectionClosed


async def test_our_close_is_seen_by_a_trio_websocket_client_with_code_1000() -> None:
    async def handler(channel: WebSocketChannel) -> None:
        await channel.send_message(b"last")
        await channel.aclose()

    async with channel_server(handler) as port, raw_client(port, [SUBPROTOCOL]) as ws:
        assert await ws.get_message() == b"last"
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1000


async def test_a_plain_http_request_is_answered_400_and_dropped() -> None:
    async with open_websocket_listener(BOB) as listener:
        stream = await trio.open_tcp_stream("127.0.0.1", listener.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(4096):
                answer += chunk
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 400 ")
        async with connect_websocket(listener.url, ALICE) as conn:
            accepted = await listener.accept()
            await accepted.send(b"still here")
            assert await conn.receive() == b"still here"


async def test_client_upgrade_refused_or_without_subprotocol_is_a_typed_error() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        if request.path == "/refuse":
            await request.reject(403)
        else:
            await request.accept()  # no subprotocol chosen

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0,
                                     None)
        for path, status in (("/refuse", 403), ("/", None)):
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            with pytest.raises(WebSocketUpgradeError) as refused:
                await connect_websocket_stream(stream, f"127.0.0.1:{server.port}", path,
                                               SUBPROTOCOL)
            assert refused.value.status_code == status
            await stream.aclose()
        with pytest.raises(DialError):
            async with connect_websocket(f"ws://127.0.0.1:{server.port}/refuse", ALICE):
                pass
        nursery.cancel_scope.cancel()


async def test_dialing_nobody_is_a_dial_error() -> None:
    async with open_websocket_listener(BOB) as listener:
        url = listener.url
    with pytest.raises(DialError):
        async with connect_websocket(url, ALICE):
            pass


async def test_cancelling_the_owner_of_a_link_does_not_hang_its_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cancelled dialer closes at once; the close must still end."""
    monkeypatch.setattr(wsproto_channel, "CLOSE_TIMEOUT", 0.5)
    server, client = Identity.from_seed(b"\x31" * 32), Identity.from_seed(b"\x32" * 32)
    async with open_websocket_listener(server) as listener:
        accepted = None
        with trio.fail_after(3 * wsproto_channel.CLOSE_TIMEOUT):
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


async def test_a_message_left_from_an_earlier_read_is_reported_waiting() -> None:
    """Messages one read brought in are ``message_waiting`` (the secure link then takes
    them without a timeout each); an empty channel is not."""
    async with raw_channel_pair() as (client, server):
        assert not server.message_waiting()
        for n in range(3):
            await client.send_message(bytes([n]) * 10)
        # (Each send wrote its frame to the socket: on loopback the bytes are
        # in the server's socket now, and one 64 KiB read takes all three.)
        assert await server.receive_message() == bytes([0]) * 10
        assert server.message_waiting()
        assert await server.receive_message() == bytes([1]) * 10
        assert await server.receive_message() == bytes([2]) * 10
        assert not server.message_waiting()


@settings(max_examples=80, deadline=None)
@given(garbage=st.binary(max_size=400), upgraded=st.booleans())
def test_any_bytes_from_a_peer_end_in_a_typed_error(garbage: bytes, upgraded: bool) -> None:
    """Whatever a client sends, as its upgrade request or after a valid one, the
    server side ends in ``ConnectionClosed`` or a ``RemoteProtocolError``, never
    another exception, and never hangs (the client ends its stream)."""
    async def main() -> None:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        if upgraded:
            client = WSConnection(ConnectionType.CLIENT)
            await client_stream.send_all(client.send(Request(
                host="127.0.0.1", target="/", subprotocols=[SUBPROTOCOL])))
        await client_stream.send_all(garbage)
        await client_stream.send_eof()
        with trio.fail_after(60):
            try:
                channel = await accept_websocket(server_stream, SUBPROTOCOL)
                while channel is not None:
                    await channel.receive_message()
            except (ConnectionClosed, RemoteProtocolError):
                pass

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_messages_around_a_ping_cut_anywhere_arrive_in_order_and_it_is_answered() -> None:
    """Whole binary frames are read without wsproto until another kind of frame comes
    (here a ping, in the middle of a write and cut across writes): from there on
    wsproto reads, starting with the bytes of a frame the fast path left unread."""
    payloads = [bytes([n]) * (n * 97 % 300) for n in range(12)]
    got: list[bytes] = []

    async def handler(channel: WebSocketChannel) -> None:
        while len(got) < len(payloads):
            got.append(await channel.receive_message())

    async with channel_server(handler) as port:
        stream, ws = await _wsproto_client(port)
        wire = b"".join(bytes(ws.send(Message(data=p))) for p in payloads[:6])
        wire += bytes(ws.send(Ping(b"hello")))
        wire += b"".join(bytes(ws.send(Message(data=p))) for p in payloads[6:])
        for start in range(0, len(wire), 37):  # cuts through headers, keys and payloads
            await stream.send_all(wire[start:start + 37])
            await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(5):
            pongs: list[bytes] = []
            while not pongs:
                ws.receive_data(await stream.receive_some(4096))
                pongs += [bytes(e.payload) for e in ws.events() if isinstance(e, Pong)]
        assert pongs == [b"hello"]
        await stream.aclose()
    assert got == payloads


async def test_frames_a_server_sends_with_its_upgrade_answer_come_first_and_in_order() -> None:
    """What came in the read that ended the upgrade is held by wsproto: the client
    channel reads through wsproto from the start, so nothing overtakes it."""
    async def server(stream: trio.SocketStream) -> None:
        handshake = H11Handshake(ConnectionType.SERVER)
        request = None
        while request is None:
            handshake.receive_data(await stream.receive_some(4096))
            request = next((e for e in handshake.events() if isinstance(e, Request)), None)
        answer = handshake.send(AcceptConnection(subprotocol=SUBPROTOCOL))
        ws = handshake.connection
        assert ws is not None
        await stream.send_all(answer + ws.send(Message(data=b"first")))
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(ws.send(Message(data=b"second")))
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server, 0, host="127.0.0.1"))
        port = int(listeners[0].socket.getsockname()[1])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        channel = await connect_websocket_stream(stream, "127.0.0.1", "/", SUBPROTOCOL)
        with trio.fail_after(5):
            assert [await channel.receive_message() for _ in range(2)] == [b"first", b"second"]
        await channel.aclose()
        nursery.cancel_scope.cancel()
