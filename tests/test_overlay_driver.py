"""The trio overlay driver over the memory transport: 20 real nodes (Noise
handshakes and all), a broadcast reaches every node, and the overlay repairs
after 5 nodes are killed.  Time is trio's MockClock (autojump)."""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable

import pytest
import trio

from taiinet.errors import ConnectionClosed
from taiinet.link.registry import ProtocolCodec
from taiinet.overlay import codec
from taiinet.overlay.actions import Deliver, Send
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.driver import OverlayDriver
from taiinet.overlay.messages import Gossip, IHave, Join, Neighbor, OverlayMessage, Shuffle
from taiinet.transport.connection import Connection
from taiinet.transport.memory import MemoryNetwork, memory_connection_pair
from taiinet.wire.framing import decode_link_frame, encode_item
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import decode_control
from tests.link_support import batch, parts, ping, pong

NODES = 20


class Node:
    def __init__(self, index: int, network: MemoryNetwork,
                 config: OverlayConfig | None = None) -> None:
        self.identity = Identity.from_seed(bytes([index + 1]) * 32)
        self.peer_id = self.identity.peer_id
        self.network = network
        self.driver = OverlayDriver(self.peer_id, functools.partial(network.dial, self.identity),
                                    rng=random.Random(index), config=config)
        self.delivered: dict[bytes, int] = {}
        self.scope = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            listener = self.network.listen(self.identity)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.driver.run)
                nursery.start_soon(self.driver.serve, listener)
                nursery.start_soon(self._collect)
                task_status.started()

    async def _collect(self) -> None:
        async for deliver in self.driver.deliveries:
            assert isinstance(deliver, Deliver)
            self.delivered[deliver.message_id] = self.delivered.get(deliver.message_id, 0) + 1


def check_symmetric(nodes: list[Node]) -> None:
    by_id = {n.peer_id: n for n in nodes}
    for node in nodes:
        for peer in node.driver.neighbors:
            assert peer in by_id, "a live node keeps a dead neighbour"
            assert node.peer_id in by_id[peer].driver.neighbors


async def test_twenty_nodes_form_an_overlay_broadcast_and_repair(autojump_clock: object) -> None:
    network = MemoryNetwork()
    rng = random.Random(7)
    nodes = [Node(i, network) for i in range(NODES)]
    async with trio.open_nursery() as nursery:
        for i, node in enumerate(nodes):
            await nursery.start(node.run)
            if i:
                node.driver.join(nodes[rng.randrange(i)].peer_id)
            await trio.sleep(0.5)
        await trio.sleep(30)  # a few shuffles
        check_symmetric(nodes)
        assert all(1 <= len(n.driver.neighbors) <= 5 for n in nodes)

        for k, origin in enumerate(rng.sample(nodes, 3)):
            origin.driver.broadcast(b"before-%d" % k, b"payload")
            await trio.sleep(5)
        for node in nodes:
            assert [node.delivered.get(b"before-%d" % k) for k in range(3)] == [1, 1, 1]

        victims = rng.sample(nodes, 5)
        for victim in victims:
            victim.scope.cancel()
            await network.kill(victim.peer_id)
        live = [n for n in nodes if n not in victims]
        await trio.sleep(20)  # failures detected, passive peers promoted
        check_symmetric(live)

        for k in range(3):
            rng.choice(live).driver.broadcast(b"after-%d" % k, b"payload")
            await trio.sleep(5)
        for node in live:
            assert [node.delivered.get(b"after-%d" % k) for k in range(3)] == [1, 1, 1]
        nursery.cancel_scope.cancel()


_JOIN = codec.encode_frame(Join())


@pytest.mark.parametrize(("hello", "bad"), [
    pytest.param(_JOIN, b"\xff\xff\xff not a frame", id="garbage"),
    pytest.param(batch([_JOIN, _JOIN]), batch([_JOIN, encode_item(10, b"\xff\xff")]),
                 id="an item its codec rejects"),
    pytest.param(_JOIN, encode_item(1, b"\x0a\x00") + b"\x0a\x02\x08\x00", id="protocol 0"),
])
async def test_a_peer_that_breaks_the_protocol_is_dropped(
        autojump_clock: object, hello: bytes, bad: bytes) -> None:
    me, rogue = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)

    async def no_dial(peer: str) -> Connection:
        raise AssertionError("nothing to dial")

    driver = OverlayDriver(me.peer_id, no_dial, rng=random.Random(1))
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        ours, theirs = await memory_connection_pair(rogue, me)
        driver.add_connection(theirs)
        await ours.send(hello)
        await trio.sleep(0.1)
        assert driver.neighbors == [rogue.peer_id]
        await ours.send(bad)
        await trio.sleep(0.1)
        assert driver.neighbors == []
        # Whatever the driver sent before, the link ends closed.
        while True:
            try:
                await ours.receive()
            except ConnectionClosed:
                break
        nursery.cancel_scope.cancel()


def _ihaves(count: int) -> list[OverlayMessage]:
    return [IHave(message_id=b"m%d" % i, hops=1) for i in range(count)]


def _gossips(count: int, size: int) -> list[OverlayMessage]:
    return [Gossip(message_id=b"g%d" % i, hops=1, payload=bytes([i]) * size)
            for i in range(count)]


def _dialer(me: Identity, peer: Identity) -> tuple[
        Callable[[str], Awaitable[Connection]], list[Connection], trio.Event]:
    """A ``dial`` that links ``me`` to ``peer`` in memory, keeping the far ends."""
    far_ends: list[Connection] = []
    dialed = trio.Event()

    async def dial(peer_id: str) -> Connection:
        ours, theirs = await memory_connection_pair(me, peer)
        far_ends.append(theirs)
        dialed.set()
        return ours

    return dial, far_ends, dialed


@pytest.mark.parametrize(("messages", "link_frames"), [
    pytest.param(_ihaves(1), 1, id="one frame goes alone"),
    pytest.param(_ihaves(10), 1, id="ten small frames, one batch"),
    pytest.param(_ihaves(600), 2, id="more than MAX_FRAME_ITEMS"),
    pytest.param(_gossips(3, 25_000), 2, id="more bytes than one frame holds"),
])
async def test_frames_queued_together_arrive_in_order_in_fewer_link_frames(
        autojump_clock: object, messages: list[OverlayMessage], link_frames: int) -> None:
    me, peer = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    dial, far_ends, dialed = _dialer(me, peer)
    driver = OverlayDriver(me.peer_id, dial, rng=random.Random(1), send_queue=1024)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        # Queued in one go, as when one input makes the core send to a peer many times.
        driver._apply([Send(peer=peer.peer_id, message=m) for m in messages])
        await dialed.wait()
        received: list[OverlayMessage | bytes] = []
        frames = 0
        while len(received) < len(messages):
            data = await far_ends[0].receive()
            assert len(data) <= codec.MAX_FRAME_SIZE
            frames += 1
            received += parts(data)
        assert received == messages
        assert frames == link_frames
        nursery.cancel_scope.cancel()


async def test_lazy_frames_wait_for_an_urgent_one_and_leave_with_it(
        autojump_clock: object) -> None:
    me, peer = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    dial, far_ends, dialed = _dialer(me, peer)
    driver = OverlayDriver(me.peer_id, dial, rng=random.Random(1), lazy_delay=10.0)
    lazy = _ihaves(3)
    urgent = _gossips(1, 10)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        for message in lazy:  # one at a time, as successive documents' announcements
            driver._apply([Send(peer=peer.peer_id, message=message, lazy=True)])
            await trio.sleep(1.0)
        assert not dialed.is_set()  # still held: nothing urgent yet, the delay not over
        driver._apply([Send(peer=peer.peer_id, message=urgent[0])])
        await dialed.wait()
        assert parts(await far_ends[0].receive()) == [*lazy, *urgent]
        # Lazy frames alone leave when the lazy flusher fires.
        driver._apply([Send(peer=peer.peer_id, message=m, lazy=True) for m in _ihaves(2)])
        assert parts(await far_ends[0].receive()) == _ihaves(2)
        nursery.cancel_scope.cancel()


async def test_lazy_only_writes_are_paced_per_link(autojump_clock: object) -> None:
    me, peer = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    dial, far_ends, dialed = _dialer(me, peer)
    driver = OverlayDriver(me.peer_id, dial, rng=random.Random(1), lazy_delay=0.05,
                           lazy_interval=1.0, lazy_batch=4)
    ihaves = _ihaves(9)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        start = trio.current_time()
        driver._apply([Send(peer=peer.peer_id, message=ihaves[0], lazy=True)])
        await dialed.wait()
        assert parts(await far_ends[0].receive()) == ihaves[:1]
        # After a quiet link the first announcement waits only lazy_delay.
        assert trio.current_time() - start == pytest.approx(0.05)
        # The next ones wait for lazy_interval after that write, and leave together.
        for message in ihaves[1:3]:
            driver._apply([Send(peer=peer.peer_id, message=message, lazy=True)])
            await trio.sleep(0.1)
        assert parts(await far_ends[0].receive()) == ihaves[1:3]
        assert trio.current_time() - start == pytest.approx(1.05)
        # lazy_batch held frames go at once, whatever the pacing says.
        driver._apply([Send(peer=peer.peer_id, message=m, lazy=True) for m in ihaves[3:7]])
        assert parts(await far_ends[0].receive()) == ihaves[3:7]
        assert trio.current_time() - start == pytest.approx(1.05)
        # A frame that is not lazy never waits, and takes the held ones along.
        driver._apply([Send(peer=peer.peer_id, message=ihaves[7], lazy=True),
                       Send(peer=peer.peer_id, message=ihaves[8])])
        assert parts(await far_ends[0].receive()) == ihaves[7:9]
        assert trio.current_time() - start == pytest.approx(1.05)
        nursery.cancel_scope.cancel()


def _ping(nonce: int) -> bytes:
    return ping(nonce)


def _pong_nonce(frame: bytes) -> int:
    [(protocol, body)] = decode_link_frame(frame)
    kind, nonce = decode_control(body)
    assert (protocol, kind) == (1, "pong")
    return nonce


async def test_a_ping_is_answered_with_one_pong_per_link_frame(autojump_clock: object) -> None:
    me, peer = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    others: list[bytes] = []

    async def no_dial(peer_id: str) -> Connection:
        raise AssertionError("nothing to dial")

    driver = OverlayDriver(me.peer_id, no_dial, rng=random.Random(1))
    driver.register(ProtocolCodec(protocol_id=99, name="test", message_types=(bytes,),
                                  encode=bytes, decode=bytes),
                    lambda _peer, body, _now: others.append(body))
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        ours, theirs = await memory_connection_pair(peer, me)
        driver.add_connection(theirs)
        with trio.fail_after(10):  # (a driver that never answers fails, not hangs)
            await ours.send(_ping(42))
            assert _pong_nonce(await ours.receive()) == 42
            await ours.send(batch([_ping(7), _ping(8)]))
            assert _pong_nonce(await ours.receive()) == 8
        await ours.send(batch([pong(8), encode_item(99, b"mine"), encode_item(98, b"unknown")]))
        await trio.sleep(0.1)
        # Pings and pongs are the link's own; other protocols' items go to their
        # handlers, and items of a protocol nobody runs are skipped and counted.
        assert others == [b"mine"]
        assert driver.protocols.unknown_items == 1
        nursery.cancel_scope.cancel()


class _Watched(Connection):
    """A connection that tells when the driver closes it."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner
        self.closed = trio.Event()

    @property
    def local_peer_id(self) -> str:
        return self.inner.local_peer_id

    @property
    def remote_peer_id(self) -> str:
        return self.inner.remote_peer_id

    async def send(self, frame: bytes) -> None:
        await self.inner.send(frame)

    async def receive(self) -> bytes:
        return await self.inner.receive()

    async def aclose(self) -> None:
        self.closed.set()
        await self.inner.aclose()


async def test_a_hung_neighbour_is_dropped_after_the_probe_timeout(
        autojump_clock: object) -> None:
    """H joins A, hands it B as a passive peer, then hangs: its link stays open
    but it neither reads nor writes.  A drops H once a probe went unanswered
    for ``probe_timeout`` and promotes B, an idle neighbour that answers pings
    and so is kept."""
    network = MemoryNetwork()
    config = OverlayConfig(membership=HyParViewConfig(active_size=1, keepalive_interval=2.0))
    a, b = Node(0, network, config), Node(1, network, config)
    hung = Identity.from_seed(b"\x09" * 32)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        # A capacity of 1: A's second frame to H blocks its sender for good.
        ours, theirs = await memory_connection_pair(hung, a.identity, capacity=1)
        watched = _Watched(theirs)
        a.driver.add_connection(watched)
        await ours.send(codec.encode_frame(Join()))
        # (A shuffle walk from its new neighbour that ends at A.)
        await ours.send(codec.encode_frame(Shuffle(origin=b.peer_id, ttl=1, peers=())))
        silent_from = trio.current_time()
        await trio.sleep(0.1)
        assert a.driver.neighbors == [hung.peer_id] and a.driver.overlay.passive_view == [b.peer_id]

        with trio.fail_after(60):
            await watched.closed.wait()
        # Probed at the first tick 2 s or more into the silence, dropped 4 s
        # (2 x keepalive_interval) later: 6 to 8 s of silence in all.
        assert 6.0 <= trio.current_time() - silent_from < 8.0
        assert hung.peer_id not in a.driver.neighbors
        frames = []
        while True:
            try:
                frames.append(await ours.receive())
            except ConnectionClosed:
                break
        # Its first tick asked H to confirm (a ``Neighbor``, which fills the
        # link's capacity of 1: the ``Ping``s after it never leave); H answered
        # nothing, and the probe deadline dropped it.  The link ends closed.
        assert codec.encode_frame(Neighbor(high_priority=False)) in frames

        await trio.sleep(20)  # B promoted; both idle, each answers the other's pings
        assert a.driver.neighbors == [b.peer_id] and b.driver.neighbors == [a.peer_id]
        nursery.cancel_scope.cancel()



async def test_neighbour_changes_are_events_not_polled(autojump_clock: object) -> None:
    me, peer = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)

    async def no_dial(peer_id: str) -> Connection:
        raise AssertionError("nothing to dial")

    driver = OverlayDriver(me.peer_id, no_dial, rng=random.Random(1))
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        ours, theirs = await memory_connection_pair(peer, me)
        changed = driver.membership_changed
        driver.add_connection(theirs)
        assert changed.is_set() and driver.linked_neighbors == []  # a link, no neighbour yet
        changed = driver.membership_changed
        await ours.send(codec.encode_frame(Join()))
        with trio.fail_after(1):
            await changed.wait()  # the core's NeighborUp
        assert driver.linked_neighbors == [peer.peer_id]
        changed = driver.membership_changed
        await ours.aclose()
        with trio.fail_after(1):
            await changed.wait()  # the link went down
        await trio.sleep(0.1)
        assert driver.linked_neighbors == []
        nursery.cancel_scope.cancel()
