"""Signallers and clients on the memory network: registration, relay, failover."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

from taiinet.signal.api import open_signaller
from taiinet.signal.client import SignalClient, open_signal_client
from taiinet.signal.errors import PeerUnreachable
from taiinet.signal.server import Signaller
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity


def ident(n: int) -> Identity:
    return Identity.from_seed(bytes([n]) * 32)


@asynccontextmanager
async def mesh(stack: AsyncExitStack, transport: MemorySignalTransport,
               count: int) -> AsyncIterator[list[Signaller]]:
    signallers: list[Signaller] = []
    for i in range(count):
        join = [signallers[-1].url] if signallers else []
        signallers.append(await stack.enter_async_context(open_signaller(
            join=join, identity=ident(100 + i), transport=transport, rng=random.Random(i))))
    yield signallers


async def answer_all(client: SignalClient, prefix: str) -> None:
    async for offer in client.incoming_offers():
        await offer.answer(f"{prefix}:{offer.sdp}")


async def test_offer_answer_across_five_signallers_and_failover(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack, \
            mesh(stack, transport, 5) as sigs:
        a = await stack.enter_async_context(open_signal_client(
            ident(1), [sigs[0].url, sigs[2].url], transport=transport, rng=random.Random(1)))
        b = await stack.enter_async_context(open_signal_client(
            ident(2), [sigs[4].url], transport=transport, rng=random.Random(2)))
        await a.wait_registered()
        await b.wait_registered()
        assert (a.home, b.home) == (sigs[0].peer_id, sigs[4].peer_id)
        nursery.start_soon(answer_all, b, "b")
        nursery.start_soon(answer_all, a, "a")
        assert await a.send_offer(b.peer_id, "offer-1") == "b:offer-1"
        assert await b.send_offer(a.peer_id, "offer-2") == "a:offer-2"
        contacts = await a.contacts(8)
        assert [r.peer_id for r in contacts] == [b.peer_id]
        # A's home dies: A re-homes on sigs[2]; a new peer C on sigs[3] reaches A.
        a_home = sigs[0].peer_id
        await network.kill(a_home)
        assert await a.wait_rehomed(a_home) == sigs[2].peer_id
        c = await stack.enter_async_context(open_signal_client(
            ident(3), [sigs[3].url], transport=transport, rng=random.Random(3)))
        await c.wait_registered()
        assert await c.send_offer(a.peer_id, "offer-3") == "a:offer-3"
        with pytest.raises(PeerUnreachable):
            await c.send_offer(ident(9).peer_id, "nobody")
        nursery.cancel_scope.cancel()
