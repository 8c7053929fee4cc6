"""MemoryNetwork: listening, dialing, killing nodes, many nodes."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet import ConnectionClosed, Identity
from taiinet.errors import LocalProtocolError
from taiinet.transport.connection import Connection
from taiinet.transport.errors import DialError
from taiinet.transport.memory import MemoryNetwork, memory_channel_pair


def identities(count: int) -> list[Identity]:
    return [Identity.from_seed(index.to_bytes(32, "big")) for index in range(1, count + 1)]


async def test_dial_and_accept(autojump_clock: object) -> None:
    alice, bob = identities(2)
    network = MemoryNetwork()
    listener = network.listen(bob)
    conn = await network.dial(alice, bob.peer_id)
    accepted = await listener.accept()
    assert (conn.local_peer_id, conn.remote_peer_id) == (alice.peer_id, bob.peer_id)
    assert (accepted.local_peer_id, accepted.remote_peer_id) == (bob.peer_id, alice.peer_id)
    await conn.send(b"ping")
    assert await accepted.receive() == b"ping"
    await accepted.send(b"pong")
    assert await conn.receive() == b"pong"


async def test_dial_nobody(autojump_clock: object) -> None:
    alice, bob = identities(2)
    with pytest.raises(DialError):
        await MemoryNetwork().dial(alice, bob.peer_id)


async def test_listen_twice(autojump_clock: object) -> None:
    (alice,) = identities(1)
    network = MemoryNetwork()
    network.listen(alice)
    with pytest.raises(LocalProtocolError):
        network.listen(alice)


async def test_backlog_is_bounded(autojump_clock: object) -> None:
    alice, bob = identities(2)
    network = MemoryNetwork(backlog=2)
    network.listen(bob)
    await network.dial(alice, bob.peer_id)
    await network.dial(alice, bob.peer_id)
    with pytest.raises(DialError, match="not accepting"):
        await network.dial(alice, bob.peer_id)


async def test_kill_closes_listener_and_links(autojump_clock: object) -> None:
    alice, bob, carol = identities(3)
    network = MemoryNetwork()
    bob_listener = network.listen(bob)
    carol_listener = network.listen(carol)
    to_bob = await network.dial(alice, bob.peer_id)
    from_bob = await network.dial(bob, carol.peer_id)
    at_carol = await carol_listener.accept()
    pending_at_bob = await bob_listener.accept()
    accepted_at_bob: list[object] = []

    async def accept_loop() -> None:
        async for connection in bob_listener:
            accepted_at_bob.append(connection)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_loop)
        await trio.testing.wait_all_tasks_blocked()
        await network.kill(bob.peer_id)
    assert accepted_at_bob == []  # the iteration ended
    for conn in (to_bob, at_carol, pending_at_bob, from_bob):
        with pytest.raises(ConnectionClosed):
            await conn.receive()
    with pytest.raises(DialError):
        await network.dial(alice, bob.peer_id)
    # Carol is unaffected; Bob can come back.
    network.listen(bob)
    assert network.is_listening(carol.peer_id)
    conn = await network.dial(alice, bob.peer_id)
    assert conn.remote_peer_id == bob.peer_id


async def test_many_nodes(autojump_clock: object) -> None:
    nodes = identities(40)
    network = MemoryNetwork()
    listeners = {node.peer_id: network.listen(node) for node in nodes}
    rng = random.Random(4)
    received: dict[str, list[bytes]] = {node.peer_id: [] for node in nodes}
    expected: dict[str, list[bytes]] = {node.peer_id: [] for node in nodes}

    async def serve(peer_id: str) -> None:
        async with trio.open_nursery() as nursery:
            async for conn in listeners[peer_id]:
                async def drain(conn=conn) -> None:  # type: ignore[no-untyped-def]
                    async for frame in conn:
                        received[peer_id].append(frame)
                nursery.start_soon(drain)

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(serve, node.peer_id)
        for node in nodes:
            for target in rng.sample([n for n in nodes if n is not node], 3):
                conn = await network.dial(node, target.peer_id)
                message = f"{node.peer_id}->{target.peer_id}".encode()
                await conn.send(message)
                expected[target.peer_id].append(message)
                await conn.aclose()
        await trio.testing.wait_all_tasks_blocked()
        for node in nodes:
            await network.kill(node.peer_id)
    assert {k: sorted(v) for k, v in received.items()} == {
        k: sorted(v) for k, v in expected.items()}


def test_channel_capacity_must_be_finite() -> None:
    with pytest.raises(LocalProtocolError):
        memory_channel_pair(float("inf"))  # type: ignore[arg-type]


async def test_channel_rejects_too_large_messages(autojump_clock: object) -> None:
    a, _ = memory_channel_pair()
    with pytest.raises(LocalProtocolError):
        await a.send_message(bytes(a.max_message_size + 1))


async def test_cut_closes_only_the_links_between_two_nodes(autojump_clock: object) -> None:
    alice, bob, carol = identities(3)
    network = MemoryNetwork()
    bob_listener, carol_listener = network.listen(bob), network.listen(carol)
    alice_bob = await network.dial(alice, bob.peer_id)
    bob_alice = await bob_listener.accept()
    alice_carol = await network.dial(alice, carol.peer_id)
    carol_alice = await carol_listener.accept()
    assert {c.remote_peer_id for c in network.links(alice.peer_id)} == {bob.peer_id,
                                                                         carol.peer_id}
    await network.cut(bob.peer_id, alice.peer_id)
    for conn in (alice_bob, bob_alice):
        with pytest.raises(ConnectionClosed):
            await conn.receive()
    await alice_carol.send(b"still here")
    assert await carol_alice.receive() == b"still here"
    assert [c.remote_peer_id for c in network.links(alice.peer_id)] == [carol.peer_id]


async def test_listener_as_context_manager(autojump_clock: object) -> None:
    alice, bob = identities(2)
    network = MemoryNetwork()
    async with network.listen(bob) as listener:
        conn = await network.dial(alice, bob.peer_id)
        assert network.is_listening(bob.peer_id)
    assert not network.is_listening(bob.peer_id)
    with pytest.raises(ConnectionClosed):  # the unaccepted connection was closed
        await conn.receive()
    with pytest.raises(ConnectionClosed):
        await listener.accept()


operations = st.lists(st.tuples(st.sampled_from(["listen", "dial", "kill", "cut", "close"]),
                                st.integers(0, 3), st.integers(0, 3)), max_size=25)


@settings(max_examples=40)
@given(operations)
def test_network_model(ops: list[tuple[str, int, int]]) -> None:
    """Random listen/dial/kill/cut/close sequences against a model of which links are up:
    every link the model thinks up carries frames both ways, every other one is closed."""
    nodes = identities(4)

    async def main() -> None:
        network = MemoryNetwork(backlog=100)
        listeners: dict[int, object] = {}
        links: list[tuple[int, int, Connection, Connection]] = []
        up: list[bool] = []

        for op, x, y in ops:
            if op == "listen":
                if x in listeners:
                    with pytest.raises(LocalProtocolError):
                        network.listen(nodes[x])
                else:
                    listeners[x] = network.listen(nodes[x])
            elif op == "dial":
                if y not in listeners:
                    with pytest.raises(DialError):
                        await network.dial(nodes[x], nodes[y].peer_id)
                else:
                    dialed = await network.dial(nodes[x], nodes[y].peer_id)
                    accepted = await listeners[y].accept()  # type: ignore[attr-defined]
                    links.append((x, y, dialed, accepted))
                    up.append(True)
            elif op == "kill":
                await network.kill(nodes[x].peer_id)
                listeners.pop(x, None)
                for index, (a, b, _, _) in enumerate(links):
                    if x in (a, b):
                        up[index] = False
            elif op == "cut":
                await network.cut(nodes[x].peer_id, nodes[y].peer_id)
                for index, (a, b, _, _) in enumerate(links):
                    if {a, b} == {x, y} or (x == y == a == b):
                        up[index] = False
            elif op == "close" and links:
                index = x % len(links)
                await links[index][2 + y % 2].aclose()
                up[index] = False
        for (_, _, dialed, accepted), is_up in zip(links, up, strict=True):
            if is_up:
                await dialed.send(b"ping")
                assert await accepted.receive() == b"ping"
                await accepted.send(b"pong")
                assert await dialed.receive() == b"pong"
            else:
                for end in (dialed, accepted):
                    with pytest.raises(ConnectionClosed):
                        await end.receive()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
