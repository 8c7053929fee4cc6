"""The repair's pace (docs/pubsub.md sections 7 and 10): what a widened neighbour is
owed goes out within a per-neighbour budget, newest first (each step's pushes in
order), and each document is pushed again to a neighbour at most ``max_repushes``
times.

Pushing everything owed in one step overflowed a new link's send queue (256
items) at 250 documents/s: the link was dropped as too slow, the next one was
owed it all again, and the mesh never recovered (``bench/pubsub.py --schedule``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from taiinet.overlay.actions import Send
from taiinet.overlay.messages import Gossip
from taiinet.pubsub.budget import PeerBudgets
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.pubsub.tree.interest import InterestTable
from taiinet.pubsub.tree.repair import Repair, RestorePace
from taiinet.pubsub.tree.retention import Retained, Retention
from taiinet.pubsub.tree.routes import SpanningTree
from taiinet.sim.network import LinkModel, sim_peer_ids
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


def test_a_widened_neighbour_is_pushed_what_it_is_owed_within_its_budget_newest_first() -> None:
    """Each step pushes the newest owed documents its budget allows, in the order they
    were taken; older ones follow on later steps."""
    repair, _table = _parent_wanting_t1(RestorePace(rate=2.0, burst=3, max_repushes=1), 10)
    out: list[Send[Any]] = []
    repair.run(out, 0.0)
    assert _pushed(out) == [b"7", b"8", b"9"]  # the burst: the newest, in order
    assert repair.pending
    out.clear()
    repair.run(out, 0.25)
    assert out == []  # nothing changed, and half a token is not a push
    repair.drain(out, 0.5)
    assert _pushed(out) == [b"6"]  # one token a half-second
    out.clear()
    repair.drain(out, 60.0)
    assert _pushed(out) == [b"3", b"4", b"5"]  # a full bucket again, no more
    out.clear()
    repair.drain(out, 120.0)
    assert _pushed(out) == [b"0", b"1", b"2"] and not repair.pending
    assert repair.repaired == 10


def test_a_backlog_within_the_burst_goes_out_in_order() -> None:
    repair, _table = _parent_wanting_t1(RestorePace(rate=2.0, burst=16, max_repushes=1), 10)
    out: list[Send[Any]] = []
    repair.run(out, 0.0)
    assert _pushed(out) == [str(i).encode() for i in range(10)] and not repair.pending


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


@pytest.mark.parametrize("seed", [0, 1])
def test_a_parent_change_under_a_stream_the_retention_cannot_hold_loses_nothing(
        seed: int) -> None:
    """Nodes that join mid-stream shorten paths, and nodes move to a parent ahead of
    their old one: the documents in flight between the two paths are the newest the
    new parent holds.  Pushed oldest first, they came after the whole backlog, and the
    count bound (300 documents: 3 s at 100 a second, the repair needing 6) had
    evicted them first (``bench/pubsub.py`` at saturation: 4,096 documents are 12.8 s
    at 320/s); seeds 0 and 1 lost 28 and 29 deliveries that way."""
    config = PubsubConfig(retention_size=300, restore_rate=50.0, restore_burst=16)
    net = PubsubNet(8, seed, config=config, late=2,
                    link=LinkModel(median_delay=0.05, delay_sigma=0.6, max_delay=0.5))
    since = dict.fromkeys(net.ids[1:6], 0.0)
    for peer in since:
        net.subscribe(peer, "s", {"t": 1})
    net.run(10.0)
    published = []
    for seq in range(1000):
        if seq in (333, 666):
            late = net.start_late()
            net.subscribe(late, "s", {"t": 1})
            since[late] = net.loop.now
        published.append((net.publish(net.ids[0], {"t": 1, "seq": seq}), net.loop.now))
        net.run(0.01)
    net.run(40.0)
    routers = net.routers.values()
    assert sum(r.stats.route_changes for r in routers) > 10
    assert all(r.retention.evicted_young > 0 for r in routers)  # the stream outran it
    missed = [(peer, mid) for mid, at in published for peer, opened in since.items()
              if opened < at and peer not in net.deliveries_of(mid)]
    assert missed == []


def test_the_default_budget_admits_a_tree_neighbour_repairing_beside_a_fast_stream() -> None:
    """A new parent pushes its child the stream (here 750 documents/s) and, with the
    default pace, its whole backlog (4,096 documents: a burst, then 200 a second).
    Every push must pass the child's default budget: one dropped there is never
    pushed again (the parent counts it held).  With 500/s the drops began 2 s in;
    in the simulator a parent change beside a 450/s stream lost documents so."""
    config = PubsubConfig()
    budgets = PeerBudgets(config.budget)
    pushes = [i / 750 for i in range(750 * 30)]  # the stream, 30 s
    pushes += [0.0] * config.restore_burst
    pushes += [i / config.restore_rate
               for i in range(1, config.retention_size - config.restore_burst + 1)]
    verdicts = Counter(budgets.admit(D, 300, at).name for at in sorted(pushes))
    assert verdicts == {"ADMIT": len(pushes)}
