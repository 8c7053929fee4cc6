"""How signallers and peers reach each other: a listener and a dialer per transport.

The signaller and client use only this interface, so the same code runs on
the in-memory network (tests, many nodes in one process) and on secure
WebSockets (real deployments).  Both yield authenticated ``Connection``s.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import trio
import trio_websocket

from taiinet.signal.errors import NoSignallerAvailable, SignalUsageError
from taiinet.transport.connection import Connection
from taiinet.transport.errors import DialError
from taiinet.transport.limits import ListenerLimits
from taiinet.transport.memory import MemoryNetwork
from taiinet.transport.secure import secure_channel
from taiinet.transport.websocket import (
    RECEIVE_QUEUE_SIZE,
    SUBPROTOCOL,
    WEBSOCKET_MAX_MESSAGE_SIZE,
    WebSocketChannel,
    open_websocket_listener,
)
from taiinet.wire.identity import Identity

MEMORY_SCHEME = "mem://"
SIGNAL_RECEIVE_QUEUE_MESSAGES = 4
"""Unread WebSocket messages a signaller queues per link (4 x 64 KiB): signalling is
light, and a flooding link read at its rate limit pins no more than this."""
SIGNAL_MAX_FRAME_SIZE = 128 * 1024
"""Largest frame on a signal link.  The largest signal message is a ``Contacts`` of
32 records of at most 2 KiB (about 66 KB); session envelopes are at most 32 KiB and
DHT messages 16 KiB.  It bounds the partial frame a stranger can pin per link."""
DIAL_TIMEOUT = 10.0
"""Seconds to open a WebSocket and finish the Noise handshake."""
CLOSE_TIMEOUT = 2.0
"""Seconds a WebSocket close handshake may take before the socket is dropped."""


class SignalListener(Protocol):
    @property
    def url(self) -> str: ...

    async def accept(self) -> Connection: ...


class SignalTransport(abc.ABC):
    """Listen at / dial a signaller URL.  Failures to dial raise a TaiiNetError."""

    @abc.abstractmethod
    def listen(self, identity: Identity,
               address: str) -> AbstractAsyncContextManager[SignalListener]: ...

    @abc.abstractmethod
    def dial(self, url: str, identity: Identity,
             expected_peer_id: str | None = None) -> AbstractAsyncContextManager[Connection]: ...


class _MemoryListener:
    def __init__(self, url: str, inner: object) -> None:
        self._url = url
        self._inner = inner

    @property
    def url(self) -> str:
        return self._url

    async def accept(self) -> Connection:
        return await self._inner.accept()  # type: ignore[attr-defined, no-any-return]


class MemorySignalTransport(SignalTransport):
    """Signallers on a :class:`MemoryNetwork`; a URL is ``mem://<peer id>``."""

    def __init__(self, network: MemoryNetwork) -> None:
        self.network = network

    @asynccontextmanager
    async def listen(self, identity: Identity, address: str = "") -> AsyncIterator[SignalListener]:
        listener = self.network.listen(identity)
        try:
            yield _MemoryListener(MEMORY_SCHEME + identity.peer_id, listener)
        finally:
            await listener.aclose()

    @asynccontextmanager
    async def dial(self, url: str, identity: Identity,
                   expected_peer_id: str | None = None) -> AsyncIterator[Connection]:
        if not url.startswith(MEMORY_SCHEME):
            raise NoSignallerAvailable(f"{url!r} is not a mem:// URL")
        peer_id = url[len(MEMORY_SCHEME):]
        if expected_peer_id is not None and expected_peer_id != peer_id:
            raise NoSignallerAvailable(f"{url} is not signaller {expected_peer_id}")
        connection = await self.network.dial(identity, peer_id)
        try:
            yield connection
        finally:
            await connection.aclose()


class WebSocketSignalTransport(SignalTransport):
    """Secure WebSockets (``taiinet.transport.websocket``); URLs are ``ws://host:port``.

    ``limits``: the listener's deadlines and per-address budgets
    (``ListenerLimits``; defaults documented in docs/protocol.md).
    """

    def __init__(self, *, limits: ListenerLimits | None = None,
                 max_frame_size: int = SIGNAL_MAX_FRAME_SIZE) -> None:
        self.limits = limits or ListenerLimits(
            receive_queue_messages=SIGNAL_RECEIVE_QUEUE_MESSAGES)
        self.max_frame_size = max_frame_size

    @asynccontextmanager
    async def listen(self, identity: Identity,
                     address: str = "127.0.0.1:0") -> AsyncIterator[SignalListener]:
        host, port = parse_listen_address(address)
        async with open_websocket_listener(identity, host, port, limits=self.limits,
                                           max_frame_size=self.max_frame_size) as listener:
            yield listener

    @asynccontextmanager
    async def dial(self, url: str, identity: Identity,
                   expected_peer_id: str | None = None) -> AsyncIterator[Connection]:
        """As ``connect_websocket``, but the close handshake is bounded in time.

        (A shielded close that waits forever for the peer's answer hangs when
        the dialer is cancelled, since the WebSocket's reader task is cancelled
        too; see the report.)
        """
        opened = False
        try:
            async with trio_websocket.open_websocket_url(
                    url, subprotocols=[SUBPROTOCOL], message_queue_size=RECEIVE_QUEUE_SIZE,
                    max_message_size=WEBSOCKET_MAX_MESSAGE_SIZE,
                    connect_timeout=DIAL_TIMEOUT) as ws:
                opened = True
                channel = _BoundedCloseChannel(ws)
                if ws.subprotocol != SUBPROTOCOL:
                    raise DialError(f"{url} did not agree to the {SUBPROTOCOL} subprotocol")
                try:
                    with trio.fail_after(DIAL_TIMEOUT):
                        connection = await secure_channel(
                            channel, identity, initiator=True, expected_peer_id=expected_peer_id,
                            max_frame_size=self.max_frame_size)
                except trio.TooSlowError:
                    raise DialError(f"the handshake with {url} timed out") from None
                try:
                    yield connection
                finally:
                    await connection.aclose()
        except (OSError, trio_websocket.HandshakeError, ValueError) as exc:
            if opened:
                raise
            raise DialError(f"cannot open a WebSocket to {url}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The innermost cause of a failed dial ("Connection refused", "Name or
    service not known"), not trio-websocket's bare ``HandshakeError()``."""
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


class _BoundedCloseChannel(WebSocketChannel):
    async def aclose(self) -> None:
        try:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT):
                await self._ws.aclose()
        finally:
            self._closed.set()


def parse_listen_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); SignalUsageError if malformed."""
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SignalUsageError(f"listen address must be HOST:PORT, not {address!r}")
    return host, int(port_text)


def default_transport() -> SignalTransport:
    """Secure WebSockets, the transport of real signallers."""
    return WebSocketSignalTransport()
