"""A shuffle costs no link of its own: the walk's end answers only over a link it has.

Over WebRTC a link set up for one ``ShuffleReply`` and closed again costs
~9 ms of CPU; in the pubsub bench's steady 20-node mesh those replies were
all its link churn (15-25 links opened and closed per 10 s).  By default
(``exchange_reply_burst`` = 0) the exchange is one-way when the origin is
not linked to the walk's end (docs/overlay.md, "Transport").
"""

from __future__ import annotations

import random

from taiinet.core import CloseLink, Send
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.core import OverlayConfig
from taiinet.overlay.hyparview import HyParView
from taiinet.overlay.messages import OverlayMessage, Shuffle, ShuffleReply
from taiinet.sim.network import sim_peer_ids
from taiinet.sim.overlay import OverlaySimConfig, OverlaySimulation
from taiinet.wire.peer_id import PeerId

ME, NEIGHBOUR, ORIGIN, *OTHERS = sim_peer_ids(10)


def test_a_walk_ending_here_from_an_unlinked_origin_is_merged_without_a_dial() -> None:
    node = HyParView(ME, random.Random(1))
    node.join(NEIGHBOUR, 0.0)
    out = node.handle_message(NEIGHBOUR, Shuffle(origin=ORIGIN, ttl=1, peers=tuple(OTHERS[:3])),
                              0.5)
    # Nothing at all for the origin (a Send would dial it), no link to close.
    assert [a for a in out if isinstance(a, Send | CloseLink) and a.peer == ORIGIN] == []
    assert set(node.passive) >= {ORIGIN, *OTHERS[:3]}
    assert node.exchange_replies_refused == 1


def test_a_linked_origin_still_gets_its_reply() -> None:
    node = HyParView(ME, random.Random(1))
    node.join(NEIGHBOUR, 0.0)
    node.handle_message(NEIGHBOUR, Shuffle(origin=ORIGIN, ttl=1, peers=tuple(OTHERS[:4])), 0.5)
    out = node.handle_message(NEIGHBOUR, Shuffle(origin=NEIGHBOUR, ttl=1, peers=()), 0.6)
    sent = [a for a in out if isinstance(a, Send) and isinstance(a.message, ShuffleReply)]
    assert [s.peer for s in sent] == [NEIGHBOUR] and len(sent[0].message.peers) == 1
    assert not any(isinstance(a, CloseLink) for a in out)


def replies_from_strangers(burst: int) -> tuple[int, int, OverlaySimulation]:
    """(shuffle replies, of them from a peer not in the receiver's active view) over
    a settled 40-node overlay's 100 simulated seconds."""
    config = OverlaySimConfig(nodes=40, messages=6, seed=3, message_interval=15.0,
                              overlay=OverlayConfig(membership=HyParViewConfig(
                                  exchange_reply_burst=burst)))
    sim = OverlaySimulation(config)
    counted = sim.harness.on_message
    assert counted is not None
    tally = [0, 0]

    def watch(src: PeerId, dst: PeerId, message: OverlayMessage) -> None:
        if isinstance(message, ShuffleReply) and sim.loop.now > 30.0:
            tally[0] += 1
            tally[1] += src not in sim.cores[dst].active_view
        counted(src, dst, message)

    sim.harness.on_message = watch
    result = sim.run()
    assert all(m.reliability == 1.0 for m in result.messages)
    return tally[0], tally[1], sim


def test_a_settled_overlay_shuffles_over_its_links_only() -> None:
    replies, from_strangers, sim = replies_from_strangers(burst=0)
    assert replies > 0 and from_strangers == 0
    assert sim.largest_component() == 1.0
    # Passive views stay filled by the one-way exchanges.
    assert min(len(core.membership.passive) for core in sim.cores.values()) >= 10
    # The paper's temporary connections (a budget of them) do reach strangers.
    replies, from_strangers, _ = replies_from_strangers(burst=16)
    assert from_strangers > replies / 2
