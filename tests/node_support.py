"""Helpers for the node tests: meshes of signallers and nodes in one process.

The mesh harness itself ships in ``taiinet.testing.mesh``; ``ident`` is its
``numbered_identity``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from taiinet.node import Node, Subscription, memory_links
from taiinet.node.links import LinkFactory, LinkMeter, Links
from taiinet.signal.client import SignalClient
from taiinet.signal.transport import MemorySignalTransport
from taiinet.testing.mesh import numbered_identity as ident
from taiinet.testing.mesh import start_cm, start_nodes, start_signallers
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity

__all__ = ["collect", "ident", "lone_memory_node", "slow_dials", "start_cm", "start_nodes",
           "start_signallers", "wrapped_dials"]


@asynccontextmanager
async def lone_memory_node(nursery: trio.Nursery) -> AsyncIterator[Node]:
    """One node on memory links with its own signaller, started in ``nursery``
    (the caller cancels it): for tests of a node's local path."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    sigs = await start_signallers(nursery, transport, 1)
    (node, _), = await start_nodes(nursery, [[sigs[0][0].url]], memory_links(network), transport)
    yield node


async def collect(subscription: Subscription, expected: int, marker_key: str = "marker",
                  ) -> list[Any]:
    """Read until ``expected`` non-marker messages and one marker arrived; return them."""
    documents: list[Any] = []
    marker = False
    while not marker or len(documents) < expected:
        message = await subscription.receive()
        if isinstance(message.data, dict) and message.data.get(marker_key):
            marker = True
        else:
            documents.append(message.data)
    return documents


def wrapped_dials(inner: LinkFactory,
                  dial: Callable[[Links, str], Awaitable[Connection]]) -> LinkFactory:
    """``inner``'s links with every dial made by ``dial(links, peer_id)`` (which
    calls ``links.dial`` itself, held up as the test needs); serving unchanged."""

    class Wrapped(Links):
        kind = "memory"

        def __init__(self, links: Links) -> None:
            super().__init__(links.identity, links.signal, links.meter)
            self.inner = links

        async def dial(self, peer_id: str) -> Connection:
            return await dial(self.inner, peer_id)

        async def serve(self, accept: object) -> None:
            await self.inner.serve(accept)  # type: ignore[arg-type]

    @asynccontextmanager
    async def factory(identity: Identity, signal: SignalClient,
                      meter: LinkMeter) -> AsyncIterator[Links]:
        async with inner(identity, signal, meter) as links:
            yield Wrapped(links)

    return factory


def slow_dials(delay: float, inner: LinkFactory) -> LinkFactory:
    """Memory links whose dials return ``delay`` s after the link is up at the
    answerer: the dialer's last Noise steps held up on a loaded machine."""

    async def dial(links: Links, peer_id: str) -> Connection:
        connection = await links.dial(peer_id)
        await trio.sleep(delay)
        return connection

    return wrapped_dials(inner, dial)
