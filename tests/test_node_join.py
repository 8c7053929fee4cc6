"""Joining through contacts that may be dead: several are dialed at once, and a
neighbour counts only once its link is up."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio
import trio.testing

from taiinet.node import NodeConfig, memory_links
from taiinet.node.links import LinkFactory, LinkMeter, Links
from taiinet.node.node import Node
from taiinet.signal.client import SignalClient, open_signal_client
from taiinet.signal.transport import MemorySignalTransport
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.identity import Identity
from tests.node_support import (
    ident,
    slow_dials,
    start_cm,
    start_nodes,
    start_signallers,
    wrapped_dials,
)
from tests.test_signal_contacts import forge_records, hold_forever

TAIINET = [sys.executable, "-m", "taiinet.cli"]


def relayed(inner: LinkFactory) -> LinkFactory:
    """Memory links that first relay an offer through the signallers (and answer
    the offers relayed to them), as WebSocket and WebRTC links do."""

    class Relayed(Links):
        kind = "memory"

        def __init__(self, links: Links) -> None:
            super().__init__(links.identity, links.signal, links.meter)
            self.inner = links

        async def dial(self, peer_id: str) -> Connection:
            await self.signal.send_offer(peer_id, "memory")
            return await self.inner.dial(peer_id)

        async def serve(self, accept: object) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._answer)
                await self.inner.serve(accept)  # type: ignore[arg-type]

        async def _answer(self) -> None:
            async for offer in self.signal.incoming_offers():
                await offer.answer("memory")

    @asynccontextmanager
    async def factory(identity: Identity, signal: SignalClient,
                      meter: LinkMeter) -> AsyncIterator[Links]:
        async with inner(identity, signal, meter) as links:
            yield Relayed(links)

    return factory


def hanging_for(hung: set[str], inner: LinkFactory) -> LinkFactory:
    """Memory links whose dials to ``hung`` peers never complete: peers that are
    registered with their home but never answer an offer (paused, wedged)."""

    async def dial(links: Links, peer_id: str) -> Connection:
        if peer_id in hung:
            await trio.sleep_forever()
        return await links.dial(peer_id)

    return wrapped_dials(inner, dial)


async def register_only(nursery: trio.Nursery, transport: MemorySignalTransport, url: str,
                        numbers: range) -> list[str]:
    """Peers that register (and renew) with the signaller but run no node."""
    ids = []
    for n in numbers:
        client, _ = await start_cm(nursery, open_signal_client(
            ident(n), [url], transport=transport, rng=random.Random(n)))
        await client.wait_registered()
        ids.append(client.peer_id)
    return ids


async def live_node_and_hung(nursery: trio.Nursery, network: MemoryNetwork,
                             transport: MemorySignalTransport, config: NodeConfig,
                             numbers: range) -> tuple[str, Node, set[str]]:
    """A signaller (its url), one live node and the hung peers ``numbers`` registered
    with it: a joiner's contacts are the live node and the hung ones."""
    (sig, _), = await start_signallers(nursery, transport, 1)
    (live, _), = await start_nodes(nursery, [[sig.url]], memory_links(network), transport,
                                   config, first=1)
    return sig.url, live, set(await register_only(nursery, transport, sig.url, numbers))


async def test_joins_through_the_live_contact_when_most_are_hung(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = NodeConfig(join_timeout=5.0)
    async with trio.open_nursery() as nursery:
        url, live, hung = await live_node_and_hung(nursery, network, transport, config,
                                                   range(50, 55))
        # Several joiners (seeds), each alone with the live node and the hung ones.
        for first in (2, 3, 4):
            (joiner, scope), = await start_nodes(nursery, [[url]],
                                                 hanging_for(hung, memory_links(network)),
                                                 transport, config, first=first)
            assert joiner.neighbors == [live.peer_id]
            # Only neighbours with a live link count, here and in the stats.
            assert joiner.stats().neighbors == joiner.stats().links == 1
            scope.cancel()
            with trio.fail_after(30):
                while live.neighbors:
                    await live.membership_changed()
        nursery.cancel_scope.cancel()


async def test_a_contact_being_dialed_is_not_a_neighbour(
        autojump_clock: trio.testing.MockClock) -> None:
    """``open_node`` and ``wait_neighbors`` do not count a contact whose link is
    not up: with only a hung contact the node has no neighbour."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = NodeConfig(join_timeout=3.0)
    async with trio.open_nursery() as nursery:
        (sig, _), = await start_signallers(nursery, transport, 1)
        hung = set(await register_only(nursery, transport, sig.url, range(50, 51)))
        (node, _), = await start_nodes(nursery, [[sig.url]],
                                       hanging_for(hung, memory_links(network)),
                                       transport, config, first=2)
        assert node.neighbors == []
        with trio.move_on_after(20) as waited:
            await node.wait_neighbors(1)
        assert waited.cancelled_caught
        nursery.cancel_scope.cancel()


async def test_a_joiner_hands_its_other_contacts_to_the_overlay(
        autojump_clock: trio.testing.MockClock) -> None:
    """The contacts a node did not join through become passive entries of its
    overlay (docs/overlay.md, "The joiner's other contacts"): nodes that joined
    each other find the rest of the mesh through them.  The hung contacts run
    no node, so only the joiner's own join can have put them there."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    config = NodeConfig(join_timeout=5.0)
    async with trio.open_nursery() as nursery:
        url, live, hung = await live_node_and_hung(nursery, network, transport, config,
                                                   range(50, 53))
        (joiner, _), = await start_nodes(nursery, [[url]],
                                         hanging_for(hung, memory_links(network)),
                                         transport, config, first=2)
        assert joiner.neighbors == [live.peer_id]
        overlay = joiner.driver.driver_core.overlay  # type: ignore[attr-defined]
        assert hung <= set(overlay.passive_view)
        nursery.cancel_scope.cancel()


async def _read_line(stream: trio.abc.ReceiveStream) -> str:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            raise EOFError(bytes(data).decode())
        data += chunk
    return data.decode().strip()


async def test_pub_exits_non_zero_when_no_neighbour_is_live() -> None:
    """A real signaller and a subscriber that is registered but paused (SIGSTOP):
    it is a contact, yet never answers. ``pub`` must not report success."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            async def spawn(*args: str) -> trio.Process:
                process: trio.Process = await nursery.start(lambda task_status: trio.run_process(
                    [*TAIINET, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    check=False, task_status=task_status))
                return process

            signaller = await spawn("signal", "--listen", "127.0.0.1:0")
            assert signaller.stdout is not None
            url = (await _read_line(signaller.stdout)).split()[2]
            sub = await spawn("sub", "--signaller", url, "--links", "websocket",
                              "--join-timeout", "1", "{}")
            assert sub.stderr is not None
            while not (await _read_line(sub.stderr)).startswith("subscribed"):
                pass
            os.kill(sub.pid, signal.SIGSTOP)
            try:
                result = await trio.run_process(
                    [*TAIINET, "pub", "--signaller", url, "--links", "websocket",
                     "--join-timeout", "3", '{"x": 1}'],
                    capture_stdout=True, capture_stderr=True, check=False)
            finally:
                os.kill(sub.pid, signal.SIGCONT)
                sub.kill()
                signaller.kill()
            err = result.stderr.decode()
            assert result.returncode != 0, err
            assert err.count("\n") == 1 and "neighbour" in err, err


def test_join_settings_are_checked() -> None:
    import pytest

    from taiinet.node.errors import NodeError
    with pytest.raises(NodeError, match="join_parallel"):
        NodeConfig(join_parallel=0)
    with pytest.raises(NodeError, match="join_parallel"):
        NodeConfig(join_dial_timeout=0)



async def two_neighbours(nursery: trio.Nursery, network: MemoryNetwork,
                         b_links: LinkFactory) -> tuple[Node, Node]:
    """Node ``a`` on one signaller, then ``b`` (dialing through ``b_links``) joined to
    it, a second after their link came up."""
    transport = MemorySignalTransport(network)
    (sig, _), = await start_signallers(nursery, transport, 1)
    config = NodeConfig(join_timeout=5.0)
    (a, _), = await start_nodes(nursery, [[sig.url]], memory_links(network), transport,
                                config, first=1)
    (b, _), = await start_nodes(nursery, [[sig.url]], b_links, transport, config, first=2)
    await b.wait_neighbors(1)
    await trio.sleep(1)
    return a, b


async def test_a_redundant_dial_to_a_neighbour_loses_no_frame(
        autojump_clock: trio.testing.MockClock) -> None:
    """A join attempt whose contact became a neighbour meanwhile (two nodes
    joining each other at once) hands the connection it dialed to the link
    layer instead of closing it: the contact took it as its newest connection
    and sends on it (docs/protocol.md 4.3), so closing it alone would lose
    those frames while the link stays up on the other connection.  Found by
    the delivery soak: an interest advert lost that way kept two documents
    from a subscriber until the tree changed."""
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await two_neighbours(nursery, network, slow_dials(1.0, memory_links(network)))

        async def change_interest_while_the_dial_completes() -> None:
            await trio.sleep(0.5)  # a has taken the new connection by now
            await stack.enter_async_context(a.subscribe({"x": 1}))

        async with AsyncExitStack() as stack, trio.open_nursery() as racing:
            racing.start_soon(change_interest_while_the_dial_completes)
            await b._join_through([a.peer_id])  # the retry that raced the other's join
            await trio.sleep(1)
            assert b.driver.router.interest_of(a.peer_id) == a.driver.router.advert_for(b.peer_id)
            assert a.neighbors == [b.peer_id] and b.neighbors == [a.peer_id]
        nursery.cancel_scope.cancel()


async def test_a_join_under_forged_records_takes_one_attempt(
        autojump_clock: trio.testing.MockClock) -> None:
    """Both signallers hold 40 forged records naming a home that accepts links and
    never answers (a tarpit: each relay towards it holds a lookup slot until
    ``hello_timeout``); the one live node is homed on s1.  Joiners on s2 (several
    seeds) join it in their first attempt: the live contact is handed out first
    (not shuffled in with the forged ones) and its relay, needing no lookup, is
    not refused "signaller busy" behind the relays stuck on the tarpit."""
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery:
        (s1, _), (s2, _) = await start_signallers(nursery, transport, 2)
        listener = await forge_records(nursery, network, [s1, s2], home=ident(67))
        tarpit = network.listen(ident(67))
        nursery.start_soon(hold_forever, tarpit)
        (live, _), = await start_nodes(nursery, [[s1.url]], relayed(memory_links(network)),
                                       transport, NodeConfig(join_timeout=0.5), first=1)
        for first in range(2, 8):
            started = trio.current_time()
            (joiner, scope), = await start_nodes(nursery, [[s2.url]],
                                                 relayed(memory_links(network)),
                                                 transport, NodeConfig(join_timeout=30.0),
                                                 first=first)
            # One GetContacts (the fan-out waits out a silent signaller: 2 s),
            # no join_retry (1 s) after a failed attempt.
            assert joiner.neighbors == [live.peer_id]
            assert trio.current_time() - started < 2.0 + 1.0
            scope.cancel()
            with trio.fail_after(30):
                while live.neighbors:
                    await live.membership_changed()
        await listener.aclose()
        await tarpit.aclose()
        nursery.cancel_scope.cancel()


async def test_a_join_dial_closed_after_the_contacts_handshake_loses_no_advert(
        autojump_clock: trio.testing.MockClock) -> None:
    """The race left by the test above: a join dial cancelled just after the
    contact finished its handshake.  The contact took the new connection as
    its newest and wrote an interest advert on it; the dialer closes it
    unread.  The contact's link layer then fails the whole link (frames
    written since the peer's last frame on that connection may be lost,
    docs/protocol.md 4.3): both cores see the neighbour go and come back, and
    the advert is sent again, instead of it staying lost while the link stays
    up."""
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        a, b = await two_neighbours(nursery, network, memory_links(network))
        cancelled = await b.links.dial(a.peer_id)  # a has finished its handshake
        async with a.subscribe({"x": 1}):
            await trio.sleep(0.1)  # a writes the advert on its newest connection
            await cancelled.aclose()  # b's join attempt was cancelled: closed unread
            await trio.sleep(20)
            assert b.driver.router.interest_of(a.peer_id) == a.driver.router.advert_for(b.peer_id)
            assert a.neighbors == [b.peer_id] and b.neighbors == [a.peer_id]
        nursery.cancel_scope.cancel()
