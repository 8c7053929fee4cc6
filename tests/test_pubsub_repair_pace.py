"""The repair's pace (docs/pubsub.md sections 7 and 10): what a widened neighbour is
owed goes out within a per-neighbour budget, in order, and each document is
pushed again to a neighbour at most ``max_repushes`` times.

Pushing everything owed in one step overflowed a new link's send queue (256
items) at 250 documents/s: the link was dropped as too slow, the next one was
owed it all again, and the mesh never recovered (``bench/pubsub.py --schedule``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from taiinet.overlay.actions import Send
from taiinet.overlay.messages import Gossip
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.pubsub.tree.interest import InterestTable
from taiinet.pubsub.tree.repair import Repair, RestorePace
from taiinet.pubsub.tree.retention import Retained, Retention
from taiinet.pubsub.tree.routes import SpanningTree
from taiinet.sim.network import sim_peer_ids
from tests.pubsub_harness import PubsubNet

A, C, D = sim_peer_ids(3)


def _advert(version: int, topic: int) -> InterestAdvert:
    return InterestAdvert(version=version, filters=(Query({"t": topic}),), tree_link=False,
                          root="", root_distance=0)


def _parent_wanting_t1(pace: RestorePace, docs: int) -> tuple[Repair, InterestTable]:
    """C's repair, with D its parent (a tree link) wanting ``{"t": 1}`` and ``docs``
    retained documents matching it (ids b"0", b"1", ... oldest first)."""
    tree = SpanningTree(C, since=500)
    table = InterestTable(8, 0)
    kept = Retention(30.0, 1000, 10**9, 1000)
    for i in range(docs):
        kept.add(str(i).encode(), Retained(b"x", {"t": 1}, A, 0, 0.0, 0, False, cost=1), 0.0)
    epochs = {D: 1}
    repair = Repair(Forwarding(tree, table, kept, epochs), pace)
    tree.add(D)
    table.accept(D, _advert(1, 1), neighbour=True)
    tree.offer(D, 1, A, 0, child=False)
    tree.recompute()
    return repair, table


def _pushed(out: list[Send[Any]]) -> list[bytes]:
    return [s.message.message_id for s in out]


def test_a_widened_neighbour_is_pushed_what_it_is_owed_within_its_budget_in_order() -> None:
    repair, _table = _parent_wanting_t1(RestorePace(rate=2.0, burst=3, max_repushes=1), 10)
    out: list[Send[Any]] = []
    repair.run(out, 0.0)
    assert _pushed(out) == [b"0", b"1", b"2"]  # the burst, oldest first
    assert repair.pending
    out.clear()
    repair.run(out, 0.25)
    assert out == []  # nothing changed, and half a token is not a push
    repair.drain(out, 0.5)
    assert _pushed(out) == [b"3"]  # one token a half-second
    out.clear()
    repair.drain(out, 60.0)
    assert _pushed(out) == [b"4", b"5", b"6"]  # a full bucket again, no more
    out.clear()
    repair.drain(out, 120.0)
    assert _pushed(out) == [b"7", b"8", b"9"] and not repair.pending
    assert repair.repaired == 10


def test_each_document_is_pushed_again_to_a_neighbour_at_most_max_repushes_times() -> None:
    repair, table = _parent_wanting_t1(RestorePace(rate=1e9, burst=1e9, max_repushes=2), 1)
    out: list[Send[Any]] = []
    for version in range(1, 7, 2):  # widened three times (first on the new link)
        table.accept(D, _advert(version, 1), neighbour=True)
        repair.run(out, float(version))
        table.accept(D, _advert(version + 1, 2), neighbour=True)  # narrowed: may drop it
        repair.run(out, float(version))
    assert _pushed(out) == [b"0", b"0"]
    assert repair.skipped == 1 and not repair.pending


def test_a_late_subscriber_gets_the_retained_documents_a_burst_at_a_time() -> None:
    """One step never pushes a neighbour more than ``restore_burst`` owed documents;
    the rest follow on the restore ticks, and every one arrives."""
    config = PubsubConfig(restore_burst=16, restore_rate=100.0)
    net = PubsubNet(5, 3, config=config, late=1)
    for peer in net.ids[:4]:
        net.subscribe(peer, "s", {"t": 1})
    net.run(5.0)
    mids = []
    for seq in range(200):
        mids.append(net.publish(net.ids[0], {"t": 1, "seq": seq}))
        net.run(0.005)
    net.run(2.0)
    most: Counter[str] = Counter()
    apply = net.harness.apply

    def counting(node: str, actions: Any) -> None:
        actions = list(actions)
        pushes = Counter(a.peer for a in actions
                         if isinstance(a, Send) and isinstance(a.message, Gossip))
        for peer, count in pushes.items():
            most[peer] = max(most[peer], count)
        apply(node, actions)

    net.harness.apply = counting  # type: ignore[method-assign]
    late = net.start_late()
    net.subscribe(late, "s", {"t": 1})
    net.run(10.0)
    assert 0 < most[late] <= 16
    assert sum(1 for mid in mids if late in net.deliveries_of(mid)) == 200
