"""WebSocket transport: trio-websocket links upgraded with Noise XX.

Framing: the client asks for the subprotocol ``taiinet.v1``; the server
refuses (HTTP 400) a client that does not offer it.  After the upgrade the
channel carries binary WebSocket messages of at most 65537 bytes (a full Noise
message with its 2-byte length); on secured links a WebSocket message holds one
length-prefixed Noise message, or several whole ones that queued up while the
socket was busy.  A text message, or a message over the limit, is a protocol
violation: the link is closed.

Back-pressure: the writer task waits for the TCP socket, ``send_message``
waits once ``SEND_BUFFER_BYTES`` are queued, and trio-websocket
buffers at most ``RECEIVE_QUEUE_SIZE`` unread messages before it stops reading
the socket, so a reader that falls behind slows its sender.

The listener owns the connections it hands out: leaving its ``async with``
closes them.  Each TCP client is served in a task of its own that catches
whatever the client's link raises (a reset during the upgrade makes even
``getpeername`` fail): a client that fails the upgrade or the handshake
(garbage, a reset, a wrong key, a timeout) is logged and dropped; the listener
goes on.  Every phase has a deadline and every address a budget
(``ListenerLimits``): a client over its address's budget, or beyond the
listener's, is closed at once, before its HTTP request is read.

``wss://``: a listener given an ``ssl.SSLContext`` runs the TLS handshake on
each admitted TCP client before the HTTP upgrade, under the same upgrade
deadline and budgets (a client stalling in TLS holds its slot no longer than
one stalling in HTTP); a dialer of a ``wss://`` URL verifies the server's
certificate (``taiinet.transport.tls``).  Noise runs inside either way.
"""

from __future__ import annotations

import logging
import math
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_websocket

from taiinet.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    TaiiNetError,
)
from taiinet.transport._coalesce import coalesce
from taiinet.transport.connection import Connection, Listener, MessageChannel
from taiinet.transport.errors import CertificateUntrusted, DialError
from taiinet.transport.limits import (
    AddressBudget,
    LinkDeadlines,
    ListenerLimits,
    PartialFrameBudget,
    Ticket,
)
from taiinet.transport.secure import secure_channel
from taiinet.transport.tls import certificate_failure, describe_certificate_failure
from taiinet.wire.framing import DEFAULT_MAX_FRAME_SIZE
from taiinet.wire.identity import Identity

logger = logging.getLogger(__name__)

#: The WebSocket subprotocol both sides must agree on.
SUBPROTOCOL = "taiinet.v1"
#: Largest WebSocket message: one Noise message (65535 bytes) with its 2-byte length.
WEBSOCKET_MAX_MESSAGE_SIZE = 65537
#: Unread messages trio-websocket keeps per link before it stops reading the socket.
RECEIVE_QUEUE_SIZE = 16
#: Bytes ``send_message`` queues for the writer task before it waits.
SEND_BUFFER_BYTES = 256 * 1024
#: Seconds a close waits for queued messages to be written.
CLOSE_FLUSH_TIMEOUT = 5.0
#: Seconds a dialer gives the TCP connect, the HTTP upgrade and the Noise handshake each.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


#: Seconds the listener spends writing its 503 answer to a client over a budget.
REFUSE_TIMEOUT = 1.0
#: Seconds a close waits for the peer's half of the WebSocket close handshake.
CLOSE_TIMEOUT = 2.0


class WebSocketProtocolError(RemoteProtocolError):
    """The peer sent a WebSocket message TaiiNet does not allow (text, oversized)."""


class WebSocketChannel(MessageChannel):
    """A raw ``MessageChannel`` over one trio-websocket connection (unauthenticated).

    Given a nursery, the channel sends from a writer task of its own: ``send_message``
    queues (at most ``SEND_BUFFER_BYTES``, then it waits) and the writer joins what
    queued up while the socket was busy into as few WebSocket messages as possible.
    Message boundaries are then lost, which the secure channel allows (it reads a
    byte stream of length-prefixed Noise messages); it saves trio-websocket's
    per-message cost when many small frames are sent one by one (``coalesce``
    of ``connect_websocket`` and ``open_websocket_listener``).  Without one,
    ``send_message`` writes at once and returns when the socket took the
    message: one task switch less per message, for callers that batch their
    own frames (the overlay driver).
    """

    max_message_size = WEBSOCKET_MAX_MESSAGE_SIZE

    def __init__(self, ws: trio_websocket.WebSocketConnection,
                 writer_nursery: trio.Nursery | None = None) -> None:
        self._ws = ws
        self.remote_address = _peer_ip(ws)
        self._closed = trio.Event()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._wake = trio.Event()
        self._space = trio.Event()
        self._flushed = trio.Event()
        self._flushed.set()
        self._send_failed = False
        self._coalescing = writer_nursery is not None
        if writer_nursery is not None:
            writer_nursery.start_soon(self._writer)

    async def send_message(self, data: bytes) -> None:
        if len(data) > self.max_message_size:
            raise LocalProtocolError(
                f"message of {len(data)} bytes exceeds the WebSocket limit "
                f"of {self.max_message_size}"
            )
        if not self._coalescing:
            await self._send_now(bytes(data))
            return
        await trio.lowlevel.checkpoint()
        while self._pending_bytes >= SEND_BUFFER_BYTES and not self._send_failed:
            self._space = trio.Event() if self._space.is_set() else self._space
            await self._space.wait()
        if self._send_failed or self._closed.is_set():
            raise ConnectionClosed("the WebSocket is closed")
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        self._flushed = trio.Event() if self._flushed.is_set() else self._flushed
        self._wake.set()

    async def _send_now(self, data: bytes) -> None:
        try:
            await self._ws.send_message(data)
        except trio_websocket.ConnectionClosed:
            self._closed.set()
            raise ConnectionClosed("the WebSocket is closed") from None

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                batch, self._pending, self._pending_bytes = self._pending, [], 0
                self._space.set()
                for message in coalesce(batch, self.max_message_size):
                    await self._send_now(message)
                if not self._pending:
                    self._flushed.set()
        except ConnectionClosed:
            self._send_failed = True
            self._pending, self._pending_bytes = [], 0
            self._space.set()
            self._flushed.set()

    async def receive_message(self) -> bytes:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            self._closed.set()
            raise ConnectionClosed(f"the WebSocket is closed ({exc.reason})") from None
        if isinstance(message, str):
            await self.aclose()
            raise WebSocketProtocolError("the peer sent a text WebSocket message")
        return message

    async def aclose(self) -> None:
        try:
            # Shielded so a cancelled owner still closes, but bounded: a peer
            # that never answers the close handshake must not hold us forever,
            # and when we are being cancelled our reader task is cancelled too,
            # so nobody would read the peer's answer: close the stream at once.
            cancelled = trio.current_effective_deadline() == -math.inf
            with trio.CancelScope(shield=True):
                with trio.move_on_after(CLOSE_FLUSH_TIMEOUT):
                    await self._flushed.wait()  # what was sent before the close goes first
            timeout = 0.0 if cancelled else CLOSE_TIMEOUT
            with trio.CancelScope(shield=True, deadline=trio.current_time() + timeout):
                await self._ws.aclose()
        finally:
            self._closed.set()
            self._send_failed = True
            self._space.set()

    async def wait_closed(self) -> None:
        """Return once this side closed the channel or saw it closed."""
        await self._closed.wait()


class WebSocketListener(Listener):
    """A WebSocket server that hands out secured connections."""

    def __init__(self, identity: Identity, port: int, host: str,
                 receive: trio.MemoryReceiveChannel[Connection], budget: AddressBudget,
                 partial_frames: PartialFrameBudget, *, tls: bool = False) -> None:
        self._identity = identity
        self._tls = tls
        self._port = port
        self._host = host
        self._receive = receive
        #: The listener's connection counts (in all, per address, per phase).
        self.budget = budget
        #: Bytes its links hold in partial frames, against ``max_partial_frame_bytes``.
        self.partial_frames = partial_frames

    @property
    def peer_id(self) -> str:
        return self._identity.peer_id

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'wss' if self._tls else 'ws'}://{host}:{self.port}"

    async def accept(self) -> Connection:
        """Wait for the next client that completed the handshake."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed("the listener is closed") from None


@asynccontextmanager
async def open_websocket_listener(
    identity: Identity,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ListenerLimits | None = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    coalesce: bool = True,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[WebSocketListener]:
    """Listen on ``host:port`` (0: any free port; see ``listener.url``).

    ``limits``: deadlines and connection budgets (``ListenerLimits``).
    ``ssl_context``: a server context (``taiinet.transport.tls.server_context``):
    clients speak TLS first and ``listener.url`` is ``wss://``.
    ``coalesce``: send through a writer task that joins queued messages (see
    ``WebSocketChannel``); off, each send writes at once.
    """
    limits = limits or ListenerLimits()
    send, receive = trio.open_memory_channel[Connection](limits.accept_backlog)
    budget = AddressBudget(limits)
    partial_frames = PartialFrameBudget(limits.max_partial_frame_bytes)

    async def serve_client(stream: trio.SocketStream) -> None:
        """One TCP client, isolated: nothing it does reaches the listener's nursery."""
        ticket: Ticket | None = None
        remote = "?"
        try:
            remote = _remote_address(stream)
            ticket = budget.admit(remote)
            if ticket is None:
                logger.info("refusing a WebSocket client from %s: over budget", remote)
                if ssl_context is None:  # a TLS client could not read a 503 in clear
                    with trio.move_on_after(REFUSE_TIMEOUT):
                        await stream.send_all(_BUSY_RESPONSE)
                return
            await _serve_admitted(stream, remote, ticket)
        except Exception as exc:  # a stranger's link must never take the listener down
            if all(isinstance(leaf, _CLIENT_ERRORS) for leaf in _leaves(exc)):
                logger.info("dropping a WebSocket client %s: %r", remote, exc)
            else:
                logger.exception("dropping a WebSocket client %s after an unexpected error",
                                 remote)
        finally:
            if ticket is not None:
                budget.release(ticket)
            await trio.aclose_forcefully(stream)

    async def _serve_admitted(stream: trio.SocketStream, remote: str, ticket: Ticket) -> None:
        async with trio.open_nursery() as link_nursery:  # trio-websocket's reader, our writer
            try:
                ws = await _upgrade(link_nursery, stream, limits, ssl_context)
                if ws is None:
                    return
                channel = WebSocketChannel(ws, link_nursery if coalesce else None)
                try:
                    connection = await secure_channel(
                        channel, identity, initiator=False, max_frame_size=max_frame_size,
                        handshake_timeout=limits.deadlines.handshake,
                        deadlines=limits.deadlines, partial_frames=partial_frames)
                except (RemoteProtocolError, ConnectionClosed) as exc:
                    logger.info("dropping a WebSocket client %s: %r", remote, exc)
                    await channel.aclose()
                    return
                if not budget.authenticate(ticket):
                    logger.info("refusing %s from %s: too many links from that address",
                                connection.remote_peer_id, remote)
                    await connection.aclose()
                    return
                try:
                    await send.send(connection)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    await connection.aclose()
                    return
                await channel.wait_closed()
            finally:
                link_nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(port, host=host)
        try:
            await nursery.start(trio.serve_listeners, serve_client, listeners)
        except BaseException:
            for tcp_listener in listeners:
                await trio.aclose_forcefully(tcp_listener)
            raise
        bound_port = int(listeners[0].socket.getsockname()[1])
        listener = WebSocketListener(identity, bound_port, host, receive, budget,
                                     partial_frames, tls=ssl_context is not None)
        try:
            yield listener
        finally:
            receive.close()
            nursery.cancel_scope.cancel()


#: The answer to a client over a budget, sent without reading its request.
_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")


#: What a client's link may raise that is the client's (or the network's) doing.
_CLIENT_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError,
                  trio.TooSlowError, trio_websocket.ConnectionClosed,
                  trio_websocket.HandshakeError, TaiiNetError)


def _peer_ip(ws: trio_websocket.WebSocketConnection) -> str | None:
    """The IP of the socket's other end; ``None`` if not a socket or already reset."""
    try:
        remote = ws.remote
    except OSError:
        return None
    return None if isinstance(remote, str) else str(remote.address)


def _remote_address(stream: trio.SocketStream) -> str:
    """The client's IP address; ``OSError`` (``ENOTCONN``) if it already reset."""
    address = stream.socket.getpeername()
    return str(address[0])


async def _upgrade(nursery: trio.Nursery, stream: trio.SocketStream, limits: ListenerLimits,
                   ssl_context: ssl.SSLContext | None,
                   ) -> trio_websocket.WebSocketConnection | None:
    """TLS (with ``ssl_context``) then the HTTP upgrade, both bounded by
    ``upgrade_timeout`` from the TCP accept (slowloris).

    Returns ``None`` after refusing a client that does not offer ``SUBPROTOCOL``.
    """
    with trio.fail_after(limits.upgrade_timeout):
        upgraded: trio.abc.Stream = stream
        if ssl_context is not None:
            # https_compatible: browsers close without TLS close_notify.
            upgraded = trio.SSLStream(stream, ssl_context, server_side=True,
                                      https_compatible=True)
            await upgraded.do_handshake()
        request = await trio_websocket.wrap_server_stream(
            nursery, upgraded, message_queue_size=limits.receive_queue_messages,
            max_message_size=WEBSOCKET_MAX_MESSAGE_SIZE)
        if SUBPROTOCOL not in request.proposed_subprotocols:
            await request.reject(400, body=f"subprotocol {SUBPROTOCOL} required".encode())
            return None
        return await request.accept(subprotocol=SUBPROTOCOL)


@asynccontextmanager
async def _single_error_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery that raises a lone error as itself, not inside an ExceptionGroup.

    The nursery only runs trio-websocket's reader task; callers (and the code in
    their ``async with`` body) expect ``DialError``, ``HandshakeError`` and their
    own exceptions unwrapped.
    """
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _parse_url(url: str) -> tuple[str, int, str]:
    """Split ``ws://host:port/path`` (or ``wss://``) into host, port and resource."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise DialError(f"not a ws:// or wss:// URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        raise DialError(f"bad port in {url!r}") from None
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, resource


@asynccontextmanager
async def connect_websocket(
    url: str,
    identity: Identity,
    *,
    expected_peer_id: str | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    coalesce: bool = True,
    deadlines: LinkDeadlines | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Connection]:
    """Dial ``url`` (``ws://host:port`` or ``wss://``), run Noise XX, yield the
    secured connection.

    ``coalesce`` as for ``open_websocket_listener``; ``deadlines`` of the link
    (default: per-message handshake and frame deadlines, no idle deadline).
    ``ssl_context``: verifies a ``wss://`` server (default: the system's CAs).

    Raises ``DialError`` when nobody answers, the server refuses the upgrade
    or the handshake times out, ``CertificateUntrusted`` when a ``wss://``
    server's certificate fails verification, and a ``HandshakeError`` (``PeerIdMismatch``
    when the server is not ``expected_peer_id``) when the handshake fails.
    The TCP stream is opened and closed here, not by trio-websocket, so it is
    closed whichever side ends the link.
    """
    host, port, resource = _parse_url(url)
    tls = url.startswith("wss://")
    host_header = host if port == (443 if tls else 80) else f"{host}:{port}"
    try:
        with trio.fail_after(handshake_timeout):
            tcp = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise DialError(f"cannot reach {url}: {_reason(exc)}") from None
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] = tcp
    try:
        if tls:
            stream = await _tls_handshake(tcp, url, host, ssl_context, handshake_timeout)
        async with _single_error_nursery() as nursery:
            try:
                with trio.fail_after(handshake_timeout):
                    ws = await trio_websocket.wrap_client_stream(
                        nursery, stream, host_header, resource,
                        subprotocols=[SUBPROTOCOL],
                        message_queue_size=RECEIVE_QUEUE_SIZE,
                        max_message_size=WEBSOCKET_MAX_MESSAGE_SIZE,
                    )
            except (OSError, trio_websocket.HandshakeError, trio.TooSlowError) as exc:
                raise DialError(f"cannot open a WebSocket to {url}: {_reason(exc)}") from None
            channel = WebSocketChannel(ws, nursery if coalesce else None)
            try:
                if ws.subprotocol != SUBPROTOCOL:
                    raise DialError(f"{url} did not agree to the {SUBPROTOCOL} subprotocol")
                try:
                    with trio.fail_after(handshake_timeout):
                        connection = await secure_channel(
                            channel, identity, initiator=True,
                            expected_peer_id=expected_peer_id, max_frame_size=max_frame_size,
                            deadlines=deadlines or LinkDeadlines(),
                        )
                except trio.TooSlowError:
                    raise DialError(f"the handshake with {url} timed out") from None
                try:
                    yield connection
                finally:
                    await connection.aclose()
            finally:
                await channel.aclose()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(tcp)


async def _tls_handshake(tcp: trio.SocketStream, url: str, host: str,
                         ssl_context: ssl.SSLContext | None,
                         timeout: float) -> trio.SSLStream[trio.SocketStream]:
    """TLS over ``tcp`` to ``host``, verified; ``CertificateUntrusted`` / ``DialError``."""
    stream = trio.SSLStream(tcp, ssl_context or ssl.create_default_context(),
                            server_hostname=host, https_compatible=True)
    try:
        with trio.fail_after(timeout):
            await stream.do_handshake()
    except trio.TooSlowError:
        raise DialError(f"the TLS handshake with {url} timed out") from None
    except (OSError, trio.BrokenResourceError) as exc:
        failure = certificate_failure(exc)
        if failure is not None:
            raise CertificateUntrusted(
                f"{url}: {describe_certificate_failure(failure)}") from None
        raise DialError(f"the TLS handshake with {url} failed: {_reason(exc)}") from None
    return stream


def _reason(exc: BaseException) -> str:
    """The innermost cause of a failed dial ("Connection refused", "Name or
    service not known"), not a bare wrapper such as ``HandshakeError()``."""
    while True:
        inner = exc.__cause__
        if isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        if inner is None:
            break
        exc = inner
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or repr(exc)
