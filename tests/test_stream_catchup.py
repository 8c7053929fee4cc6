"""A child owed a long backfill gets it in slices its link can hold, and every chunk in order.

Before, a parent put the whole backfill in the link's queue at once: a child
re-adopted after a repair of a few seconds was owed hundreds of chunks, the
link's per-peer queue (256 items) overflowed, the link was dropped as "too
slow", the child repaired again and was owed even more.  Over WebRTC, where
a repair takes longer, viewers of ``bench/stream_process.py`` lost their
parents in that loop until they gave up.
"""

from __future__ import annotations

import random

import trio

from taiinet.link.config import DEFAULT_SEND_QUEUE
from taiinet.media.packets import MediaPacket
from taiinet.sim.network import sim_peer_ids
from taiinet.stream import announce
from taiinet.stream.actions import Send, TickTimer
from taiinet.stream.codec import Track
from taiinet.stream.messages import (
    Adopt,
    Chunk,
    Heartbeat,
    Join,
    Leave,
    Seal,
    StallReport,
    StreamMessage,
)
from taiinet.stream.service import CATCH_UP_SLICE, NODE_TREE_CONFIG, StreamService
from taiinet.stream.tree import RelayTree
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

BROADCASTER = Identity.from_seed(bytes(32))
CHILD = Identity.from_seed(bytes([9]) * 32).peer_id


class QueueingDriver:
    """The node's links as the stream service sees them: a queue per peer that a
    writer empties at each ``flush``; the most items ever waiting are recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[PeerId, StreamMessage]] = []
        self.waiting: dict[PeerId, int] = {}
        self.most_waiting = 0
        self.wrote = trio.Event()

    def send(self, peer: PeerId, message: StreamMessage) -> None:
        self.sent.append((peer, message))
        self.waiting[peer] = self.waiting.get(peer, 0) + 1
        self.most_waiting = max(self.most_waiting, self.waiting[peer])

    def send_to_each(self, peers: list[PeerId], message: StreamMessage) -> None:
        for peer in peers:
            self.send(peer, message)

    async def writer(self) -> None:
        """The links write what waits every 50 ms."""
        while True:
            await trio.sleep(0.05)
            self.waiting.clear()
            self.wrote.set()
            self.wrote = trio.Event()

    async def flush(self, peer: PeerId) -> bool:
        await self.wrote.wait()
        return True

    def release(self, peer: PeerId) -> None:
        pass


async def test_a_long_backfill_is_paced_and_live_chunks_queue_behind_it(
        autojump_clock: object) -> None:
    driver = QueueingDriver()
    service = StreamService(driver, BROADCASTER, random.Random(0))  # type: ignore[arg-type]
    signed = announce.sign(BROADCASTER, announce.Announcement(
        name="live", broadcaster=BROADCASTER.peer_id, started=0, seq=0,
        tracks=(Track(codec="vp8", rate=10), Track(codec="opus", rate=48_000))))
    pts = 0

    def publish_for(session: object, seconds: float) -> None:
        nonlocal pts
        for _ in range(int(seconds * 10)):  # a group of 100 ms: 1 video and 5 audio packets
            packets = [MediaPacket(track=0, pts=pts, keyframe=pts % 20 == 0, data=b"v" * 900)]
            packets += [MediaPacket(track=1, pts=pts * 5 + i, keyframe=True, data=b"a" * 80)
                        for i in range(5)]
            session.publish(packets)  # type: ignore[attr-defined]
            session.flush()  # type: ignore[attr-defined]
            pts += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.writer)
        await nursery.start(service.run)
        session = service.open(signed, 2)
        for _ in range(50):  # 5 s of stream, nobody watching
            publish_for(session, 0.1)
            await trio.sleep(0.1)
        # A child that held chunk 9 is (re-)adopted: it is owed ~290 chunks and their seals.
        session.handle(CHILD, Join(slots=0, have=9), trio.current_time())
        assert CHILD in session.tree.children
        for _ in range(20):  # the stream goes on meanwhile
            publish_for(session, 0.1)
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    to_child = [m.body for peer, m in driver.sent if peer == CHILD]
    seqs = [body.seq for body in to_child if isinstance(body, Chunk)]
    assert seqs == list(range(10, session.relay_next_seq))  # all of them, in order
    assert len(seqs) > DEFAULT_SEND_QUEUE
    assert driver.most_waiting <= CATCH_UP_SLICE + 8  # a slice, and one live group
    assert not session.catch_up  # caught up: live chunks go straight to it again
    firsts = [body.first for body in to_child if isinstance(body, Seal)]
    assert firsts == sorted(firsts)


def test_on_real_links_a_child_waits_3_s_for_its_first_chunks_before_blaming_its_parent() -> None:
    """Over a fresh WebRTC link on a loaded host the backfill took over a second:
    with the simulator's 1 s stall timeout the child blamed (and banned) an honest parent."""
    root, child = sim_peer_ids(2)
    tree = RelayTree(child, root, 1, random.Random(0), NODE_TREE_CONFIG)
    tree.start(0.0)
    tree.handle_message(root, Adopt(path=(root,)), 0.1)
    assert tree.parent == root

    def blamed(now: float) -> bool:
        # The parent gets 30 chunks a second and relays none (blame counts only
        # chunks it got since it adopted the child: docs/stream.md, "Free-riders").
        heartbeat = Heartbeat(seq=500 + int(now * 30), path=(root,), standby=())
        tree.handle_message(root, heartbeat, now)
        out = tree.handle_timer(TickTimer(), now)
        return any(isinstance(a, Send) and isinstance(a.message, (Leave, StallReport))
                   for a in out)

    assert not any(blamed(0.1 + t / 2) for t in range(0, 6))  # up to 2.6 s: it waits
    assert blamed(3.7)  # ahead since 0.6 s, stalled since 0.1 s: over 3 s each


def test_a_relay_backfills_a_repair_of_15_s() -> None:
    """Over WebRTC a killed parent is noticed by the peer timeout, and standby peers
    killed with it cost failed dials: repairs took 10-12 s, past the old 10 s buffer."""
    from taiinet.media.packets import cut
    from taiinet.stream.relay import MediaRelay
    from taiinet.stream.seal import make_seal

    stream = bytes(32)
    relay = MediaRelay(stream, BROADCASTER.peer_id)
    seq = 0
    held_at_loss = -1
    for step in range(160):  # 16 s of groups of 100 ms
        now = step / 10
        payloads = [p for i in range(6) for p in cut(MediaPacket(
            track=0 if i == 0 else 1, pts=step * 6 + i, keyframe=i > 0 or step % 20 == 0,
            data=b"x" * 200))]
        relay.own_seal(make_seal(BROADCASTER, stream, seq, payloads))
        for payload in payloads:
            assert relay.chunk(Chunk(seq=seq, payload=payload), now)
            seq += 1
        if now == 1.0:
            held_at_loss = seq - 1  # the child's last chunk before its 15 s repair
    sent = [m.seq for m in relay.backfill(held_at_loss) if isinstance(m, Chunk)]
    assert sent == list(range(held_at_loss + 1, seq))


async def test_a_catch_up_survives_the_childs_link_being_replaced(autojump_clock: object) -> None:
    """``flush`` says False when the link went away under it (the child reconnected);
    before, the catch-up gave up there and the child lost everything it was owed."""
    driver = QueueingDriver()
    lost_link = [True]
    plain_flush = driver.flush

    async def flush(peer: PeerId) -> bool:
        if lost_link[0]:
            lost_link[0] = False
            await trio.sleep(0.05)
            return False
        return await plain_flush(peer)

    driver.flush = flush  # type: ignore[method-assign]
    service = StreamService(driver, BROADCASTER, random.Random(0))  # type: ignore[arg-type]
    signed = announce.sign(BROADCASTER, announce.Announcement(
        name="live", broadcaster=BROADCASTER.peer_id, started=0, seq=0,
        tracks=(Track(codec="vp8", rate=10), Track(codec="opus", rate=48_000))))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.writer)
        await nursery.start(service.run)
        session = service.open(signed, 2)
        for step in range(30):
            session.publish([MediaPacket(track=1, pts=step * 10 + i, keyframe=True, data=b"a")
                             for i in range(10)])
            session.flush()
            await trio.sleep(0.1)
        session.handle(CHILD, Join(slots=0, have=0), trio.current_time())
        await trio.sleep(2.0)
        nursery.cancel_scope.cancel()
    seqs = [m.body.seq for peer, m in driver.sent if peer == CHILD and isinstance(m.body, Chunk)]
    assert seqs == list(range(1, session.relay_next_seq))
