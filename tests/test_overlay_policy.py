"""Protocol policy that used to live in the overlay driver, now in the cores (so the
simulator measures it): the exchange-reply budget and the pacing of lazy ``IHave``s."""

from __future__ import annotations

import random

from taiinet.core import CloseLink, Send
from taiinet.overlay.config import HyParViewConfig
from taiinet.overlay.hyparview import HyParView
from taiinet.overlay.messages import Shuffle, ShuffleReply
from taiinet.sim.network import sim_peer_ids

ME, NEIGHBOUR, *ORIGINS = sim_peer_ids(40)


def replies(actions: list[object]) -> list[Send[ShuffleReply]]:
    return [a for a in actions if isinstance(a, Send) and isinstance(a.message, ShuffleReply)]


def test_a_burst_of_shuffles_cannot_make_a_node_dial_every_origin() -> None:
    node = HyParView(ME, random.Random(1), HyParViewConfig(exchange_reply_burst=16,
                                                           exchange_reply_interval=1.0))
    node.join(NEIGHBOUR, 0.0)
    out: list[object] = []
    for origin in ORIGINS[:20]:  # walks that end here (ttl 1), each naming a new origin
        out += node.handle_message(NEIGHBOUR, Shuffle(origin=origin, ttl=1, peers=()), 0.5)
    sent = replies(out)
    assert [s.peer for s in sent] == ORIGINS[:16]
    assert [a.peer for a in out if isinstance(a, CloseLink)] == ORIGINS[:16]
    assert node.exchange_replies_refused == 4
    # One more reply a second after that.
    later = node.handle_message(NEIGHBOUR, Shuffle(origin=ORIGINS[20], ttl=1, peers=()), 1.6)
    later += node.handle_message(NEIGHBOUR, Shuffle(origin=ORIGINS[21], ttl=1, peers=()), 1.6)
    assert [s.peer for s in replies(later)] == [ORIGINS[20]]


def test_a_neighbours_shuffle_is_answered_outside_the_budget() -> None:
    node = HyParView(ME, random.Random(1), HyParViewConfig(exchange_reply_burst=0))
    node.join(NEIGHBOUR, 0.0)
    out = node.handle_message(NEIGHBOUR, Shuffle(origin=NEIGHBOUR, ttl=1, peers=()), 0.5)
    assert [s.peer for s in replies(out)] == [NEIGHBOUR]
    assert not any(isinstance(a, CloseLink) for a in out)
    out = node.handle_message(NEIGHBOUR, Shuffle(origin=ORIGINS[0], ttl=1, peers=()), 0.6)
    assert replies(out) == [] and node.exchange_replies_refused == 1
