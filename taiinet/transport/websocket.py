"""WebSocket transport: WebSocket links (wsproto, driven by
``taiinet.transport.wsproto_channel``) upgraded with Noise XX.

Framing: the client asks for the subprotocol ``taiinet.v1``; the server
refuses (HTTP 400) a client that does not offer it.  After the upgrade the
channel carries binary WebSocket messages of at most 65537 bytes (a full Noise
message with its 2-byte length); on secured links a WebSocket message holds one
length-prefixed Noise message, or several whole ones that queued up while the
socket was busy.  A text message, a message over the limit or a malformed
frame is a protocol violation (``WebSocketProtocolError``,
``WebSocketMessageTooLarge``): the link is closed.

Back-pressure: a send waits for the TCP socket (with a writer task,
``send_message`` waits once ``SEND_BUFFER_BYTES`` are queued), and nothing is
read from a link's socket unless its owner receives, so a reader that falls
behind slows its sender.

The listener owns the connections it hands out: leaving its ``async with``
closes them.  Each TCP client is served in a task of its own that catches
whatever the client's link raises (a reset during the upgrade makes even
``getpeername`` fail): a client that fails the upgrade or the handshake
(garbage, a reset, a wrong key, a timeout) is logged and dropped; the listener
goes on.  Every phase has a deadline and every address a budget
(``ListenerLimits``): a client over its address's budget, or beyond the
listener's, is closed at once, before its HTTP request is read.  The idle
deadline of accepted links is kept by one watchdog task per listener
(``taiinet.transport._idle``), not by a deadline around every read: a silent
link is cut between ``idle`` and ``1.25 * idle`` seconds after its last message.

``wss://``: a listener given an ``ssl.SSLContext`` runs the TLS handshake on
each admitted TCP client before the HTTP upgrade, under the same upgrade
deadline and budgets (a client stalling in TLS holds its slot no longer than
one stalling in HTTP); a dialer of a ``wss://`` URL verifies the server's
certificate (``taiinet.transport.tls``).  Noise runs inside either way.
"""

from __future__ import annotations

import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from taiinet.errors import ConnectionClosed, RemoteProtocolError, TaiiNetError
from taiinet.transport._idle import watch_idle
from taiinet.transport.connection import Connection, Listener
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
from taiinet.transport.wsproto_channel import (
    CLOSE_TIMEOUT,
    SEND_BUFFER_BYTES,
    WEBSOCKET_MAX_MESSAGE_SIZE,
    WebSocketChannel,
    WebSocketMessageTooLarge,
    WebSocketProtocolError,
    WebSocketUpgradeError,
    accept_websocket,
    connect_websocket_stream,
)
from taiinet.wire.framing import DEFAULT_MAX_FRAME_SIZE
from taiinet.wire.identity import Identity

__all__ = [
    "CLOSE_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "SEND_BUFFER_BYTES",
    "SUBPROTOCOL",
    "WEBSOCKET_MAX_MESSAGE_SIZE",
    "WebSocketChannel",
    "WebSocketListener",
    "WebSocketMessageTooLarge",
    "WebSocketProtocolError",
    "WebSocketUpgradeError",
    "connect_websocket",
    "open_websocket_listener",
]

logger = logging.getLogger(__name__)

#: The WebSocket subprotocol both sides must agree on.
SUBPROTOCOL = "taiinet.v1"
#: Seconds a dialer gives the TCP connect, the HTTP upgrade and the Noise handshake each.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: Seconds the listener spends writing its 503 answer to a client over a budget.
REFUSE_TIMEOUT = 1.0


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
    # The idle deadline is kept by one watchdog for all links (``_idle``), not
    # by a cancel scope around every read of every link.
    idle_watch, link_deadlines = watch_idle(limits.deadlines)

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
        channel: WebSocketChannel | None = None
        async with trio.open_nursery() as link_nursery:  # the writer task, if coalescing
            try:
                channel = await _upgrade(stream, remote, limits, ssl_context,
                                         link_nursery if coalesce else None)
                if channel is None:
                    return
                try:
                    connection = await secure_channel(
                        channel, identity, initiator=False, max_frame_size=max_frame_size,
                        handshake_timeout=limits.deadlines.handshake,
                        deadlines=link_deadlines, partial_frames=partial_frames)
                except (RemoteProtocolError, ConnectionClosed) as exc:
                    logger.info("dropping a WebSocket client %s: %r", remote, exc)
                    await channel.aclose()
                    return
                if not budget.authenticate(ticket):
                    logger.info("refusing %s from %s: too many links from that address",
                                connection.remote_peer_id, remote)
                    await connection.aclose()
                    return
                if idle_watch is not None:
                    idle_watch.watch(channel)
                try:
                    await send.send(connection)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    await connection.aclose()
                    return
                await channel.wait_closed()
            finally:
                if idle_watch is not None and channel is not None:
                    idle_watch.forget(channel)
                link_nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(port, host=host)
        try:
            await nursery.start(trio.serve_listeners, serve_client, listeners)
        except BaseException:
            for tcp_listener in listeners:
                await trio.aclose_forcefully(tcp_listener)
            raise
        if idle_watch is not None:
            nursery.start_soon(idle_watch.run)
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
                  trio.TooSlowError, TaiiNetError)


def _remote_address(stream: trio.SocketStream) -> str:
    """The client's IP address; ``OSError`` (``ENOTCONN``) if it already reset."""
    address = stream.socket.getpeername()
    return str(address[0])


async def _upgrade(stream: trio.SocketStream, remote: str, limits: ListenerLimits,
                   ssl_context: ssl.SSLContext | None,
                   writer_nursery: trio.Nursery | None) -> WebSocketChannel | None:
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
        return await accept_websocket(upgraded, SUBPROTOCOL, remote_address=remote,
                                      writer_nursery=writer_nursery)


@asynccontextmanager
async def _single_error_nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery that raises a lone error as itself, not inside an ExceptionGroup.

    The nursery only runs the channel's writer task; callers (and the code in
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
    The TCP stream is opened and closed here, so it is closed whichever side
    ends the link.
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
                    channel = await connect_websocket_stream(
                        stream, host_header, resource, SUBPROTOCOL,
                        remote_address=_stream_ip(tcp),
                        writer_nursery=nursery if coalesce else None)
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, ConnectionClosed,
                    WebSocketUpgradeError) as exc:
                raise DialError(f"cannot open a WebSocket to {url}: {_reason(exc)}") from None
            try:
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


def _stream_ip(tcp: trio.SocketStream) -> str | None:
    """The IP of the socket's other end; ``None`` if it already reset."""
    try:
        return _remote_address(tcp)
    except OSError:
        return None


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
