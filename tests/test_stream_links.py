"""The relay-tree core closes the links it no longer uses (``CloseLink`` after an idle time).

Before, a viewer that left, a joiner the root redirected or a candidate that
never adopted kept its link for ever: the root of a stream ended up holding a
link to every viewer that ever joined through it.
"""

from __future__ import annotations

import random

import pytest

from taiinet.sim.network import sim_peer_ids
from taiinet.stream.actions import Action, CloseLink, Send, TickTimer
from taiinet.stream.config import TreeConfig
from taiinet.stream.errors import StreamUsageError
from taiinet.stream.messages import Adopt, Heartbeat, Join, Leave, Redirect, Status
from taiinet.stream.tree import RelayTree
from taiinet.wire.peer_id import PeerId

ROOT, A, B, C, D = sim_peer_ids(5)
TICK = TickTimer()
IDLE = 10.0


def tree(peer: PeerId, slots: int, **config: object) -> RelayTree:
    return RelayTree(peer, ROOT, slots, random.Random(1),
                     TreeConfig(link_idle_timeout=IDLE, **config))  # type: ignore[arg-type]


def closed(actions: list[Action]) -> list[PeerId]:
    return [a.peer for a in actions if isinstance(a, CloseLink)]


def status() -> Status:
    return Status(slots=0, children=(), free=0, seq=0, recommend=())


def run_root(root: RelayTree, until: float, children: tuple[PeerId, ...]) -> list[PeerId]:
    """Tick the root every 0.5 s up to ``until``, its children answering; the links closed."""
    out: list[PeerId] = []
    now = 0.5
    while now <= until:
        for child in children:
            root.handle_message(child, status(), now)
        out += closed(root.handle_timer(TICK, now))
        now += 0.5
    return out


def test_a_redirected_joiner_and_a_child_that_left_lose_their_links_once_idle() -> None:
    root = tree(ROOT, 1)
    root.handle_message(A, Join(slots=0), 0.0)
    assert isinstance(root.handle_message(B, Join(slots=0), 0.0)[0], Send)  # redirected
    root.handle_message(C, Join(slots=0), 0.2)  # redirected too
    assert root.has_link(B) and root.has_link(C)
    assert run_root(root, IDLE - 0.5, (A,)) == []
    assert run_root(root, IDLE + 0.5, (A,)) == [B, C]
    assert not root.has_link(B) and root.has_link(A)
    # A child leaves: no close at once (it may come back), then after the idle time.
    root.handle_message(A, Leave(), 20.0)
    assert A not in root.children and root.has_link(A)
    ticks = [20.0 + k / 2 for k in range(1, 2 * int(IDLE) + 3)]
    closes = [(now, closed(root.handle_timer(TICK, now))) for now in ticks]
    assert [(now, peers) for now, peers in closes if peers] == [(20.0 + IDLE + 0.5, [A])]


def test_a_viewer_closes_its_link_to_the_root_and_to_a_candidate_that_never_adopted() -> None:
    c = tree(C, 1)
    c.start(0.0)
    c.handle_message(ROOT, Redirect(candidates=(A, B)), 0.1)  # Join to A
    c.handle_message(A, Redirect(candidates=()), 0.2)  # Join to B
    c.handle_message(B, Adopt(path=(ROOT, B)), 0.3)
    assert c.parent == B
    out: list[PeerId] = []
    now = 0.5
    while now <= IDLE + 1.0:
        c.chunk(int(now * 10), now)
        c.handle_message(B, Heartbeat(seq=int(now * 10), path=(ROOT, B), standby=(ROOT,)), now)
        out += closed(c.handle_timer(TICK, now))
        now += 0.5
    assert out == [ROOT, A]
    assert c.parent == B and c.has_link(B)


def test_links_the_tree_needs_are_never_closed_for_idleness() -> None:
    """A parent that only sends heartbeats and a child that only sends status are in use."""
    root = tree(ROOT, 2)
    root.handle_message(A, Join(slots=1), 0.0)
    assert run_root(root, 3 * IDLE, (A,)) == []
    assert list(root.children) == [A]


def test_a_failed_link_is_forgotten_and_leaving_closes_every_link() -> None:
    b = tree(B, 2)
    b.start(0.0)
    b.handle_message(ROOT, Redirect(candidates=(A,)), 0.1)
    b.handle_message(A, Adopt(path=(ROOT, A)), 0.2)
    b.handle_message(C, Join(slots=0), 0.3)
    b.handle_message(D, Join(slots=0), 0.3)
    b.handle_link_down(D, 0.4)
    assert not b.has_link(D)
    assert sorted(closed(b.leave(1.0))) == sorted([ROOT, A, C])


def test_past_max_links_the_least_recently_used_spare_link_is_closed_at_once() -> None:
    root = tree(ROOT, 1, max_links=3)
    root.handle_message(A, Join(slots=0), 0.0)  # adopted: needed
    for i, peer in enumerate((B, C, D)):
        out = root.handle_message(peer, Join(slots=0), 0.1 * (i + 1))
    assert closed(out) == [B]
    assert root.has_link(A) and root.has_link(D) and not root.has_link(B)


def test_bad_link_bounds_are_refused() -> None:
    with pytest.raises(StreamUsageError):
        TreeConfig(link_idle_timeout=0)
    with pytest.raises(StreamUsageError):
        TreeConfig(max_links=0)


class RecordingDriver:
    """What the stream service needs of the node's links: sends and releases, recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[PeerId, object]] = []
        self.released: list[PeerId] = []

    def send(self, peer: PeerId, message: object) -> None:
        self.sent.append((peer, message))

    def send_to_each(self, peers: list[PeerId], message: object) -> None:
        self.sent.extend((peer, message) for peer in peers)

    def release(self, peer: PeerId) -> None:
        self.released.append(peer)


async def test_the_service_releases_an_idle_link_unless_another_stream_holds_it(
        autojump_clock: object) -> None:
    """A viewer of two streams of one broadcaster: when one tree is done with the
    broadcaster's link, the link stays while the other still holds it."""
    import trio
    import trio.testing

    from taiinet.stream import announce
    from taiinet.stream.service import StreamService
    from taiinet.wire.identity import Identity

    broadcaster = Identity.from_seed(bytes(32))
    viewer = Identity.from_seed(bytes([7]) * 32)
    driver = RecordingDriver()
    service = StreamService(driver, viewer, random.Random(0))  # type: ignore[arg-type]
    config = TreeConfig(link_idle_timeout=IDLE)
    sessions = []
    for name in ("one", "two"):
        signed = announce.sign(broadcaster, announce.Announcement(
            name=name, broadcaster=broadcaster.peer_id, started=0, seq=0))
        sessions.append(service.open(signed, 1, tree_config=config))
    assert [peer for peer, _ in driver.sent] == [broadcaster.peer_id] * 2  # both Joins
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run)
        await trio.sleep(0.1)
        # Stream one: the broadcaster redirects to C (who never answers); stream
        # two: the broadcaster adopts.
        now = trio.current_time()
        sessions[0].handle(broadcaster.peer_id, Redirect(candidates=(C,)), now)
        path = (broadcaster.peer_id,)
        sessions[1].handle(broadcaster.peer_id, Adopt(path=path), now)
        for _ in range(int(3 * IDLE)):
            await trio.sleep(0.5)
            sessions[1].handle(broadcaster.peer_id,
                               Heartbeat(seq=-1, path=path, standby=()), trio.current_time())
        assert driver.released == [C]  # the broadcaster's link is stream two's parent
        service.close(sessions[1])  # stream one still asks the broadcaster to adopt it
        assert driver.released == [C]
        service.close(sessions[0])
        assert driver.released == [C, broadcaster.peer_id]
        nursery.cancel_scope.cancel()


async def test_a_link_a_stream_tree_needs_survives_another_layers_close(
        autojump_clock: object) -> None:
    """The overlay (HyParView) closes links as its views change; a stream parent or
    child is often an overlay peer too, and before, that close cut the stream (the
    child lost its parent and repaired, seen over and over at load 30)."""
    import trio

    from taiinet.core import CloseLink as CoreCloseLink
    from taiinet.core import Send as CoreSend
    from taiinet.link.registry import ProtocolCodec
    from taiinet.link.runner import Runner
    from taiinet.transport.memory import memory_connection_pair
    from taiinet.wire.framing import decode_link_frame, encode_item
    from taiinet.wire.identity import Identity

    me, peer = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)

    class Closer:
        """Answers any message with ``CloseLink``, then (next message) with a send."""

        def __init__(self) -> None:
            self.calls = 0

        def start(self, now: float) -> list[object]:
            return []

        def handle_message(self, sender: PeerId, message: bytes, now: float) -> list[object]:
            self.calls += 1
            if self.calls == 1:
                return [CoreCloseLink(peer=sender)]
            return [CoreSend(peer=sender, message=b"still here")]

        def handle_timer(self, timer: object, now: float) -> list[object]:
            return []

        def handle_link_down(self, sender: PeerId, now: float) -> list[object]:
            return []

    async def no_dial(_: PeerId) -> object:
        raise AssertionError("nothing to dial")

    codec = ProtocolCodec(protocol_id=200, name="raw", message_types=(bytes,),
                          encode=lambda m: m, decode=lambda b: bytes(b))
    runner = Runner(Closer(), no_dial)  # type: ignore[arg-type]
    runner.register(codec)
    tree = tree_needing(peer.peer_id)
    runner.link_keepers.append(tree.needs_link)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        ours, theirs = await memory_connection_pair(peer, me)
        runner.add_connection(theirs)
        await ours.send(encode_item(200, b"close, please"))
        await trio.sleep(1.0)
        assert runner.links.is_linked(peer.peer_id)  # the tree needs it: kept
        await ours.send(encode_item(200, b"again"))
        assert decode_link_frame(await ours.receive()) == [(200, b"still here")]
        nursery.cancel_scope.cancel()


def tree_needing(peer: PeerId) -> RelayTree:
    """A broadcaster whose child is ``peer``."""
    root = RelayTree(ROOT, ROOT, 2, random.Random(1))
    root.start(0.0)
    root.handle_message(peer, Join(slots=0), 0.0)
    assert root.needs_link(peer)
    return root
