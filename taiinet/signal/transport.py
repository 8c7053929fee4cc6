"""How signallers and peers reach each other: a listener and a dialer per transport.

The signaller and client use only this interface, so the same code runs on
the in-memory network (tests, many nodes in one process) and on secure
WebSockets (real deployments).  Both yield authenticated ``Connection``s.
"""

from __future__ import annotations

import abc
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from taiinet.signal.errors import NoSignallerAvailable, SignalUsageError
from taiinet.transport.connection import Connection
from taiinet.transport.limits import ListenerLimits
from taiinet.transport.memory import MemoryNetwork
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from taiinet.wire.identity import Identity

MEMORY_SCHEME = "mem://"
SIGNAL_MAX_FRAME_SIZE = 128 * 1024
"""Largest frame on a signal link.  The largest signal message is a ``Contacts`` of
32 records of at most 2 KiB (about 66 KB); session envelopes are at most 32 KiB and
DHT messages 16 KiB.  It bounds the partial frame a stranger can pin per link."""
DIAL_TIMEOUT = 10.0
"""Seconds to open a WebSocket and finish the Noise handshake."""


class SignalListener(Protocol):
    @property
    def url(self) -> str: ...

    async def accept(self) -> Connection: ...


class SignalTransport(abc.ABC):
    """Listen at / dial a signaller URL.  Failures to dial raise a TaiiNetError."""

    @abc.abstractmethod
    def listen(self, identity: Identity, address: str, *,
               ssl_context: ssl.SSLContext | None = None,
               ) -> AbstractAsyncContextManager[SignalListener]:
        """Listen at ``address``; with a server ``ssl_context``, behind TLS
        (``SignalUsageError`` where the transport has no TLS)."""

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
    async def listen(self, identity: Identity, address: str = "", *,
                     ssl_context: ssl.SSLContext | None = None,
                     ) -> AsyncIterator[SignalListener]:
        if ssl_context is not None:
            raise SignalUsageError("the in-memory transport has no TLS: give no ssl_context")
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
    """Secure WebSockets (``taiinet.transport.websocket``); URLs are ``ws://host:port``
    or ``wss://host:port`` (TLS, then the same upgrade, then Noise).

    ``limits``: the listener's deadlines and per-address budgets
    (``ListenerLimits``; defaults documented in docs/protocol.md).
    ``ssl_context``: the client context that verifies ``wss://`` signallers
    this transport dials (default: the system's CAs; give one that trusts a
    private CA with ``taiinet.transport.tls.client_context(ca_path)``).
    """

    def __init__(self, *, limits: ListenerLimits | None = None,
                 max_frame_size: int = SIGNAL_MAX_FRAME_SIZE,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.limits = limits or ListenerLimits()
        self.max_frame_size = max_frame_size
        self.ssl_context = ssl_context

    @asynccontextmanager
    async def listen(self, identity: Identity, address: str = "127.0.0.1:0", *,
                     ssl_context: ssl.SSLContext | None = None,
                     ) -> AsyncIterator[SignalListener]:
        host, port = parse_listen_address(address)
        async with open_websocket_listener(identity, host, port, limits=self.limits,
                                           max_frame_size=self.max_frame_size,
                                           ssl_context=ssl_context) as listener:
            yield listener

    @asynccontextmanager
    async def dial(self, url: str, identity: Identity,
                   expected_peer_id: str | None = None) -> AsyncIterator[Connection]:
        """``connect_websocket`` without a writer task (signalling is light), within
        ``DIAL_TIMEOUT`` per phase; ``wss://`` verified with ``ssl_context``."""
        async with connect_websocket(url, identity, expected_peer_id=expected_peer_id,
                                     handshake_timeout=DIAL_TIMEOUT,
                                     max_frame_size=self.max_frame_size, coalesce=False,
                                     ssl_context=self.ssl_context) as connection:
            yield connection


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
