"""A stranger sends a node every overlay and pubsub frame variant with every field
at an invalid extreme; the node keeps running, dials only valid peer ids, and
keeps delivering documents from an honest neighbour.

Cases come from the protobuf definitions (``hostile_cases.extreme_cases``), so
a new OverlayMessage or PubsubMessage variant is covered without editing this.
"""

from __future__ import annotations

import random

import trio
from hostile_cases import extreme_cases

from taiinet.errors import ConnectionClosed
from taiinet.node.routed import RoutedDriver
from taiinet.transport.connection import Connection
from taiinet.transport.errors import DialError
from taiinet.transport.memory import memory_connection_pair
from taiinet.v1 import overlay_pb2, pubsub_pb2
from taiinet.wire.errors import InvalidPeerId
from taiinet.wire.identity import Identity
from taiinet.wire.peer_id import PeerId
from tests.link_support import item_of

VICTIM = Identity.from_seed(b"\x01" * 32)
HONEST = Identity.from_seed(b"\x02" * 32)
MALLORY = Identity.from_seed(b"\x03" * 32)
MAX_CASE_FRAME = 60_000


def hostile_frames() -> list[tuple[str, bytes]]:
    frames = [(label, item_of(10, pb))
              for label, pb in extreme_cases(overlay_pb2.OverlayMessage, big_bytes=20_000)]
    frames += [(label, item_of(12, pb))
               for label, pb in extreme_cases(pubsub_pb2.PubsubMessage, depth=3)]
    return [(label, frame) for label, frame in frames if len(frame) <= MAX_CASE_FRAME]


async def test_every_overlay_and_pubsub_frame_at_every_extreme(autojump_clock: object) -> None:
    identities = {VICTIM.peer_id: VICTIM, HONEST.peer_id: HONEST}
    drivers: dict[str, RoutedDriver] = {}
    dialed: list[str] = []

    def dialer(me: Identity):  # type: ignore[no-untyped-def]
        async def dial(peer_id: str) -> Connection:
            dialed.append(peer_id)
            other = drivers.get(peer_id)
            if other is None:
                raise DialError(f"{peer_id[:20]!r} is not on this test's network")
            ours, theirs = await memory_connection_pair(me, identities[peer_id])
            other.add_connection(theirs)
            return ours
        return dial

    for identity in (VICTIM, HONEST):
        drivers[identity.peer_id] = RoutedDriver(identity, dialer(identity),
                                                 rng=random.Random(identity.peer_id))
    victim, honest = drivers[VICTIM.peer_id], drivers[HONEST.peer_id]
    frames = hostile_frames()
    kinds = {f.name for f in overlay_pb2.OverlayMessage.DESCRIPTOR.oneofs_by_name["body"].fields}
    assert all(any(f"OverlayMessage.{kind}" in label for label, _ in frames) for kind in kinds)

    async with trio.open_nursery() as nursery:
        for driver in drivers.values():
            await nursery.start(driver.run)
        victim.subscribe("s", {"topic": "t"})
        honest.join(VICTIM.peer_id)
        with trio.fail_after(30):
            while HONEST.peer_id not in victim.neighbors:
                await trio.sleep(0.1)

        for _label, frame in frames:
            ours, theirs = await memory_connection_pair(MALLORY, VICTIM)
            victim.add_connection(theirs)
            try:
                await ours.send(frame)
                await trio.sleep(0.05)
            except ConnectionClosed:
                pass
            await ours.aclose()

        bad_dials = []
        for peer_id in dialed:
            try:
                PeerId.parse(peer_id)
            except InvalidPeerId:
                bad_dials.append(peer_id)
        assert not bad_dials, f"the node dialed invalid peer ids: {bad_dials[:5]}"
        assert HONEST.peer_id in victim.neighbors

        await trio.sleep(5)  # the victim's interest reaches the honest node
        honest.publish({"topic": "t", "n": 1}, published_unix_ms=1, nonce=1)
        with trio.fail_after(30):
            delivery = await victim.documents.receive()
        assert delivery.document == {"topic": "t", "n": 1}
        nursery.cancel_scope.cancel()
