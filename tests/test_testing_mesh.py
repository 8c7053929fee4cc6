"""``taiinet.testing.mesh``: an in-process mesh that a test can crash parts of."""

from __future__ import annotations

import trio
import trio.testing

from taiinet.node import memory_links
from taiinet.signal.transport import MemorySignalTransport
from taiinet.testing import numbered_identity, start_nodes, start_signallers
from taiinet.transport.memory import MemoryNetwork


async def test_a_mesh_delivers_and_a_crashed_node_leaves_it(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork()
    transport = MemorySignalTransport(network)
    async with trio.open_nursery() as nursery:
        signallers = await start_signallers(nursery, transport, 2)
        urls = [signaller.url for signaller, _ in signallers]
        assert [s.peer_id for s, _ in signallers] == [
            numbered_identity(1000).peer_id, numbered_identity(1001).peer_id]
        started = await start_nodes(nursery, [urls, urls[::-1], urls], memory_links(network),
                                    transport)
        nodes = [node for node, _ in started]
        assert [n.peer_id for n in nodes] == [numbered_identity(i).peer_id for i in (1, 2, 3)]
        for node in nodes:
            await node.wait_neighbors(1)
        async with nodes[1].subscribe({"x": 1}) as sub:
            await trio.sleep(1)  # interest reaches the publisher
            await nodes[0].publish({"x": 1})
            assert (await sub.receive()).data == {"x": 1}
        started[2][1].cancel()  # node 3 crashes
        with trio.fail_after(120):  # virtual seconds: the links' keep-alive notices
            for node in nodes[:2]:
                while nodes[2].peer_id in node.neighbors:
                    await node.membership_changed()
        nursery.cancel_scope.cancel()
