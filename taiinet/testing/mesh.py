"""In-process meshes of signallers and nodes, for end-to-end tests of code built on TaiiNet.

Everything runs in one trio run: signallers over a ``MemorySignalTransport``
and nodes over ``memory_links`` of one ``MemoryNetwork``, so a test can use
trio's MockClock (``clock_waits_for_threads`` when seeders write to disk)
and the run does not depend on the machine's load::

    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery:
        signallers = await start_signallers(nursery, transport, 2)
        urls = [signaller.url for signaller, _ in signallers]
        nodes = await start_nodes(nursery, [urls] * 5, memory_links(network), transport)
        ...
        nursery.cancel_scope.cancel()

Each started service comes with the cancel scope that stops it (a crash or a
leave, in the middle of a test).  Identities and random generators are seeded
from the given numbers, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import trio

from taiinet.node import LinkFactory, Node, NodeConfig, open_node
from taiinet.signal.api import open_signaller
from taiinet.signal.server import Signaller
from taiinet.signal.transport import SignalTransport
from taiinet.wire.identity import Identity

T = TypeVar("T")
#: Identities of signallers started by ``start_signallers`` are numbered from here.
FIRST_SIGNALLER = 1000


def numbered_identity(n: int) -> Identity:
    """The identity numbered ``n``: the same key pair in every run."""
    return Identity.from_seed(n.to_bytes(4, "big") * 8)


async def start_cm(nursery: trio.Nursery,
                   cm: AbstractAsyncContextManager[T]) -> tuple[T, trio.CancelScope]:
    """Enter ``cm`` in a task of ``nursery``; cancel the returned scope to leave it."""

    async def runner(task_status: trio.TaskStatus[tuple[T, trio.CancelScope]]) -> None:
        with trio.CancelScope() as scope:
            async with cm as value:
                task_status.started((value, scope))
                await trio.sleep_forever()

    result: tuple[T, trio.CancelScope] = await nursery.start(runner)
    return result


async def start_signallers(nursery: trio.Nursery, transport: SignalTransport | None,
                           count: int) -> list[tuple[Signaller, trio.CancelScope]]:
    """``count`` signallers, each joining the one before (identities from ``FIRST_SIGNALLER``)."""
    out: list[tuple[Signaller, trio.CancelScope]] = []
    for i in range(count):
        join = [out[-1][0].url] if out else []
        out.append(await start_cm(nursery, open_signaller(
            listen="127.0.0.1:0", join=join, identity=numbered_identity(FIRST_SIGNALLER + i),
            transport=transport, rng=random.Random(i))))
    return out


async def start_nodes(nursery: trio.Nursery, urls: Sequence[Sequence[str]],
                      links: str | LinkFactory, transport: SignalTransport | None,
                      config: NodeConfig | None = None,
                      first: int = 1) -> list[tuple[Node, trio.CancelScope]]:
    """One node per entry of ``urls`` (its signaller URLs), opened one after another;
    node ``i`` has identity and random seed ``first + i``."""
    return [await start_cm(nursery, open_node(
        list(u), numbered_identity(first + i), links=links, config=config,
        signal_transport=transport, rng=random.Random(first + i))) for i, u in enumerate(urls)]
