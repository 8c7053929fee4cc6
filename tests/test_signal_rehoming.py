"""A peer that re-homed is findable at once, and a relay to a dead home fails fast.

The races are made deterministic on the memory network under MockClock: one
signaller's handling of the re-homed peer's STORE is delayed (or dropped), as a
loaded machine would delay it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

from taiinet.signal.client import SignalClientConfig, open_signal_client
from taiinet.signal.dht_types import Contact, DhtAction, DhtMessage, Store
from taiinet.signal.errors import PeerUnreachable
from taiinet.signal.ids import id_bytes, node_id
from taiinet.signal.server import Signaller
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.memory import MemoryNetwork
from tests.test_signal_contacts import wait_until
from tests.test_signal_mesh import answer_all, ident, mesh

HandleMessage = Callable[[Contact, DhtMessage, float], list[DhtAction]]


def hold_stores(signaller: Signaller, key: bytes, nursery: trio.Nursery,
                delay: float | None) -> None:
    """Make ``signaller`` handle STOREs of ``key`` ``delay`` seconds late (never if None)."""
    assert signaller.dht is not None
    original: HandleMessage = signaller.dht.handle_message

    def handle(sender: Contact, message: DhtMessage, now: float) -> list[DhtAction]:
        if not (isinstance(message, Store) and message.record.key == key):
            return original(sender, message, now)
        if delay is not None:
            async def later() -> None:
                await trio.sleep(delay)
                assert signaller.core is not None
                signaller.core._apply(original(sender, message, trio.current_time()))
                signaller._carry(signaller.core._flush())
            nursery.start_soon(later)
        return []

    signaller.dht.handle_message = handle  # type: ignore[method-assign]


async def test_a_rehomed_peer_is_stored_everywhere_before_it_hears_registered(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack, \
            mesh(stack, transport, 5) as sigs:
        a = await stack.enter_async_context(open_signal_client(
            ident(1), [sigs[0].url, sigs[2].url], transport=transport, rng=random.Random(1)))
        await a.wait_registered()
        key = id_bytes(node_id(a.peer_id))
        hold_stores(sigs[3], key, nursery, delay=1.0)
        await network.kill(sigs[0].peer_id)
        assert await a.wait_rehomed(sigs[0].peer_id) == sigs[2].peer_id
        for sig in sigs[1:]:
            assert sig.dht is not None
            held = sig.dht.get_local(key, trio.current_time())
            assert held is not None and held.seq == a._seq, sig.url
        # So a peer homed where the STORE was slow reaches A through its new home.
        c = await stack.enter_async_context(open_signal_client(
            ident(3), [sigs[3].url], transport=transport, rng=random.Random(3)))
        await c.wait_registered()
        nursery.start_soon(answer_all, a, "a")
        with trio.fail_after(5):
            assert await c.send_offer(a.peer_id, "offer") == "a:offer"
        nursery.cancel_scope.cancel()


async def test_a_relay_that_meets_a_stale_record_looks_for_a_newer_one(
        autojump_clock: trio.testing.MockClock) -> None:
    """C's home never got the new record: its copy names A's dead home."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack, \
            mesh(stack, transport, 5) as sigs:
        a = await stack.enter_async_context(open_signal_client(
            ident(1), [sigs[0].url, sigs[2].url], transport=transport, rng=random.Random(1)))
        c = await stack.enter_async_context(open_signal_client(
            ident(3), [sigs[3].url], transport=transport, rng=random.Random(3)))
        await a.wait_registered()
        await c.wait_registered()
        key = id_bytes(node_id(a.peer_id))
        hold_stores(sigs[3], key, nursery, delay=None)
        await network.kill(sigs[0].peer_id)
        assert await a.wait_rehomed(sigs[0].peer_id) == sigs[2].peer_id
        assert sigs[3].dht is not None
        stale = sigs[3].dht.get_local(key, trio.current_time())
        assert stale is not None and stale.seq < a._seq
        nursery.start_soon(answer_all, a, "a")
        with trio.fail_after(5):
            assert await c.send_offer(a.peer_id, "offer") == "a:offer"
        nursery.cancel_scope.cancel()


async def test_an_offer_to_a_peer_whose_home_died_fails_fast_with_a_reason(
        autojump_clock: trio.testing.MockClock) -> None:
    """No newer record exists (A has nowhere to go): the sender hears so, well
    before its offer timeout, and may retry later."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = SignalClientConfig()
    async with AsyncExitStack() as stack, mesh(stack, transport, 3) as sigs:
        a = await stack.enter_async_context(open_signal_client(
            ident(1), [sigs[0].url], transport=transport, rng=random.Random(1)))
        c = await stack.enter_async_context(open_signal_client(
            ident(3), [sigs[2].url], transport=transport, rng=random.Random(3),
            config=config))
        await a.wait_registered()
        await c.wait_registered()
        await network.kill(sigs[0].peer_id)
        # Once C's home saw the link to A's home close (a relay sent on a link
        # while it dies is lost like any frame in flight, and ends at the timeout).
        await wait_until(lambda: sigs[0].peer_id not in sigs[2].core.signallers
                         if sigs[2].core is not None else False)
        with trio.fail_after(config.offer_timeout / 2), \
                pytest.raises(PeerUnreachable, match="home unreachable"):
            await c.send_offer(a.peer_id, "offer")
