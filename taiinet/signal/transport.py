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

from taiinet.signal.errors import NoSignallerAvailable
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity

MEMORY_SCHEME = "mem://"


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


def default_transport() -> SignalTransport:
    """Secure WebSockets, the transport of real signallers."""
    raise NoSignallerAvailable("no WebSocket transport on this branch yet; pass transport=")
