"""A busy link's frame ends at a packet boundary of its transport
(``taiinet.link.packets``): the cut rule on its own, in ``LinkManager._take_batch``,
and over memory links that report packets as a WebRTC link does.  MockClock."""

from __future__ import annotations

from collections import deque

import trio

from taiinet.link.manager import LinkManager
from taiinet.link.packets import whole_packets
from taiinet.transport.connection import Connection, Packets
from taiinet.transport.memory import memory_connection_pair
from taiinet.wire.framing import decode_link_frame, encode_item
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId

ME, PEER = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
#: Packets of 100 bytes; a frame gains 20 when sealed.
SMALL = Packets(payload=100, overhead=20)


def _sized(*sizes: int) -> list[bytes]:
    return [bytes([n]) * size for n, size in enumerate(sizes)]


def test_the_items_in_a_part_filled_last_packet_wait() -> None:
    # 100 bytes sealed 120: two packets, the second holding 20 bytes; without
    # the last item the frame is 90 bytes sealed, one packet.
    assert whole_packets(_sized(40, 30, 30), SMALL) == 2
    # The item the last packet starts in waits too: 50 alone is 70 sealed.
    assert whole_packets(_sized(50, 40, 30), SMALL) == 1
    assert SMALL.count(90 - 20) == 1 and SMALL.count(100) == 2


def test_a_frame_is_not_cut_when_that_saves_nothing() -> None:
    assert whole_packets(_sized(30, 30), SMALL) == 2  # one packet
    assert whole_packets(_sized(40, 40), SMALL) == 2  # 100 sealed: exactly full
    # The cut frame (5 bytes, 25 sealed) would waste 75 bytes of its packet,
    # more than the whole frame's last packet (65 of 100 empty).
    assert whole_packets(_sized(5, 90, 20), SMALL) == 3
    assert whole_packets(_sized(150), SMALL) == 1  # the only item always goes


def test_items_left_out_once_go_in_the_next_frame() -> None:
    assert whole_packets(_sized(50, 40, 30), SMALL, keep=2) == 3
    assert whole_packets(_sized(40, 30, 30), SMALL, keep=3) == 3


class _Handler:
    def admit_frame(self, peer: PeerId, size: int, items: int, now: float) -> bool:
        return True

    def heard_from(self, peer: PeerId, now: float) -> None:
        pass

    def handle_item(self, peer: PeerId, protocol: int, body: bytes, now: float) -> None:
        pass

    def handle_link_down(self, peer: PeerId, now: float) -> None:
        pass

    def handle_link_address(self, peer: PeerId, address: str, now: float) -> None:
        pass


async def _no_dial(peer: PeerId) -> Connection:
    raise AssertionError("nothing to dial")


def test_take_batch_leaves_the_cut_items_at_the_head_of_the_queue_in_order() -> None:
    manager = LinkManager(_no_dial, _Handler())
    items = _sized(40, 30, 30, 10)
    # Four items (110 bytes, 130 sealed): the last two wait, in order.
    queue: deque[bytes | None] = deque(items)
    assert manager._take_batch(queue, SMALL) == (items[:2], False, 2)
    assert list(queue) == items[2:]
    # Not busy (no packets): everything goes, as before.
    queue = deque(items)
    assert manager._take_batch(queue) == (items, False, 0)
    # Up to the close marker: everything goes.
    queue = deque([*items, None])
    assert manager._take_batch(queue, SMALL) == (items, True, 0)
    # What was left out once goes next time, whatever comes after it.
    queue = deque(items[2:] + _sized(80))
    assert manager._take_batch(queue, SMALL, keep=2) == (items[2:], False, 1)


def _item(n: int, size: int) -> bytes:
    """An encoded item of ``size`` bytes whose body starts with the number ``n``."""
    header = len(encode_item(200, bytes(10))) - 10  # bodies under 128 bytes
    item = encode_item(200, bytes([n]) * (size - header))
    assert len(item) == size
    return item


async def _frames(packet_payload: int | None, *, busy: bool) -> list[list[int]]:
    """The item numbers of each frame the peer gets over a memory link whose
    connections report packets of ``packet_payload`` bytes.

    ``busy``: the peer reads nothing until items 3, 4 and 5 are queued while
    the sender is writing 2; else they are queued on an idle link.
    """
    far_ends: list[Connection] = []

    async def dial(peer: PeerId) -> Connection:
        ours, theirs = await memory_connection_pair(ME, PEER, capacity=1,
                                                    packet_payload=packet_payload)
        far_ends.append(theirs)
        return ours

    manager = LinkManager(dial, _Handler())
    frames: list[list[int]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        manager.enqueue(PEER.peer_id, _item(1, 40))
        await trio.sleep(1)
        [far] = far_ends
        if busy:
            manager.enqueue(PEER.peer_id, _item(2, 40))
            await trio.sleep(1)  # 1 fills the channel: the sender is writing 2
        else:
            frames.append([body[0] for _p, body in decode_link_frame(await far.receive())])
        for n, size in ((3, 40), (4, 30), (5, 30)):
            manager.enqueue(PEER.peer_id, _item(n, size))
        while True:
            with trio.move_on_after(1):
                data = await far.receive()
                frames.append([body[0] for _p, body in decode_link_frame(data)])
                continue
            break
        nursery.cancel_scope.cancel()
    return frames


async def test_a_busy_link_ends_its_frame_at_a_packet_boundary(autojump_clock: object) -> None:
    """3, 4 and 5 (100 bytes, 120 sealed) would take two packets of 100 bytes:
    5 waits for the next frame.  A stream link, or an idle one, sends them together."""
    assert await _frames(100, busy=True) == [[1], [2], [3, 4], [5]]
    assert await _frames(None, busy=True) == [[1], [2], [3, 4, 5]]
    assert await _frames(100, busy=False) == [[1], [3, 4, 5]]


async def test_a_connection_reports_the_sealed_size_of_its_frames(
        autojump_clock: object) -> None:
    """The overhead a packet-cut connection reports is what sealing adds (frames
    of 128..16,383 bytes); a stream connection reports no packets."""
    ours, _theirs = await memory_connection_pair(ME, PEER, packet_payload=1200)
    packets = ours.packets
    assert packets == Packets(payload=1200, overhead=20)
    seal = ours._session.seal_frame  # type: ignore[attr-defined]
    for size in (128, 1180, 1181, 16_383):
        assert len(seal(bytes(size))) == size + packets.overhead
    assert packets.count(1180) == 1 and packets.count(1181) == 2
    stream, _far = await memory_connection_pair(ME, PEER)
    assert stream.packets is None
