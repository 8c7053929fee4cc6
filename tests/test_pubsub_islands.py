"""Nodes that start together and join each other find the rest of the mesh.

Seen over real processes (tests/test_stream_process.py, about 1 run in 10):
a broadcaster alone, then four viewers starting at once, each told of the
others by the signaller.  Viewers 0 and 2 dialed each other at the same
moment and joined through each other, viewer 3 joined through viewer 2,
viewer 1 through the broadcaster: two components, {broadcaster, 1} and
{0, 2, 3}.  The island's active views were not full (2 of 5), so healing
(docs/pubsub.md section 8) waited for HyParView to refill them, and its
passive views held only its own members (walks and shuffles never leave a
component), so the refills stayed inside: the viewers there never got the
stream's announcement.  A joiner now keeps its other contacts as passive
entries (docs/overlay.md, "Join"), and the island's next keep-alive refill
asks them.
"""

from __future__ import annotations

import random

from taiinet.core.actions import Send
from taiinet.overlay.actions import KeepaliveTimer
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.messages import Neighbor
from tests.pubsub_harness import PubsubNet


def components(net: PubsubNet) -> list[set[str]]:
    """The overlay's components, by links both ends hold."""
    views = {peer: set(net.routers[peer].active_view) for peer in net.ids}
    left = set(net.ids)
    out = []
    while left:
        seen = {left.pop()}
        stack = list(seen)
        while stack:
            peer = stack.pop()
            for other in views[peer]:
                if peer in views[other] and other not in seen:
                    seen.add(other)
                    stack.append(other)
        left -= seen
        out.append(seen)
    return out


def test_viewers_that_joined_each_other_merge_with_the_broadcaster() -> None:
    net = PubsubNet(5, seed=3, active_size=5, late=5)  # nobody started yet
    publisher, v0, v1, v2, v3 = net.ids
    net.apply(publisher, net.routers[publisher].start(0.0))
    net.run(1.0)
    for viewer in (v0, v1, v2, v3):  # every viewer starts at once, and subscribes
        net.apply(viewer, net.routers[viewer].start(net.loop.now))
        net.subscribe(viewer, "watch", {"stream": "bench"})
    everyone = set(net.ids)
    for viewer, contact in ((v0, v2), (v2, v0), (v3, v2), (v1, publisher)):
        # The signaller told each of every peer registered; it joined through one.
        known = sorted(everyone - {viewer, contact})
        net.apply(viewer, net.routers[viewer].join(contact, net.loop.now, known))
    got: set[str] = set()
    for _ in range(15):  # the broadcaster announces every second, as the stream API
        mid = net.publish(publisher, {"stream": "bench", "announcement": b"x"})
        net.run(1.0)
        got |= set(net.deliveries_of(mid))
    assert len(components(net)) == 1, components(net)
    assert got == {v0, v1, v2, v3}


def test_a_joiner_keeps_its_other_contacts_and_asks_them_when_its_view_has_room() -> None:
    peers = [f"p{i}" for i in range(4)]
    overlay = Overlay("me", random.Random(1), OverlayConfig(
        membership=HyParViewConfig(active_size=3, passive_size=8)))
    overlay.start(0.0)
    overlay.join(peers[0], 0.0, peers)  # the contact itself is not a passive entry
    assert sorted(overlay.passive_view) == peers[1:]
    out = overlay.handle_timer(KeepaliveTimer(), 2.0)
    asked = {a.peer for a in out if isinstance(a, Send) and isinstance(a.message, Neighbor)}
    # Two free slots: two of the known peers are asked (and the neighbour confirmed).
    assert len(asked - {peers[0]}) == 2 and asked <= set(peers)
