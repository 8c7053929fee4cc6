"""Helpers for the node tests: meshes of signallers and nodes in one process."""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import trio

from taiinet.node import LinkFactory, Node, NodeConfig, Subscription, open_node
from taiinet.signal.api import open_signaller
from taiinet.signal.server import Signaller
from taiinet.signal.transport import SignalTransport
from taiinet.wire.identity import Identity

T = TypeVar("T")


def ident(n: int) -> Identity:
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
    out: list[tuple[Signaller, trio.CancelScope]] = []
    for i in range(count):
        join = [out[-1][0].url] if out else []
        out.append(await start_cm(nursery, open_signaller(
            listen="127.0.0.1:0", join=join, identity=ident(1000 + i), transport=transport,
            rng=random.Random(i))))
    return out


async def start_nodes(nursery: trio.Nursery, urls: Sequence[Sequence[str]],
                      links: str | LinkFactory, transport: SignalTransport | None,
                      config: NodeConfig | None = None,
                      first: int = 1) -> list[tuple[Node, trio.CancelScope]]:
    """One node per entry of ``urls`` (its signaller URLs), opened one after another."""
    return [await start_cm(nursery, open_node(
        list(u), ident(first + i), links=links, config=config, signal_transport=transport,
        rng=random.Random(first + i))) for i, u in enumerate(urls)]


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
