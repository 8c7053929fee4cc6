"""Unit tests of the stable-tree router's parts (taiinet/pubsub/tree/), each alone."""

from __future__ import annotations

import gc
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.overlay.actions import Send
from taiinet.overlay.messages import Gossip, IHave
from taiinet.pubsub.actions import Deliver, InterestTimer
from taiinet.pubsub.config import PubsubConfig
from taiinet.pubsub.documents import UnsignedDocuments
from taiinet.pubsub.errors import PubsubUsageError
from taiinet.pubsub.messages import MAX_ROOT_DISTANCE, TREE_SIZE_CAP, InterestAdvert
from taiinet.pubsub.query import Query
from taiinet.pubsub.tree.forwarding import Forwarding
from taiinet.pubsub.tree.healing import Healing
from taiinet.pubsub.tree.interest import InterestTable
from taiinet.pubsub.tree.repair import Repair, RestorePace, _widened
from taiinet.pubsub.tree.retention import Retained, Retention
from taiinet.pubsub.tree.router import TreeRouter
from taiinet.pubsub.tree.routes import SpanningTree
from taiinet.sim.network import sim_peer_ids
from taiinet.wire.peer_id import plain_key
from tests.pubsub_harness import PubsubNet

A, B, C, D, E = sim_peer_ids(5)  # sorted: A < B < C < D < E
STABLE = PubsubConfig()
#: A pace that never holds a push back (the tests of the rule itself).
PACE = RestorePace(rate=1e9, burst=1e9, max_repushes=1000)


def _advert(version: int, *queries: object, tree_link: bool = False, root: str = "",
            distance: int = 0) -> InterestAdvert:
    return InterestAdvert(version=version, filters=tuple(Query(q) for q in queries),
                          tree_link=tree_link, root=root, root_distance=distance)


# --- routes -------------------------------------------------------------------------

def test_a_neighbour_may_be_our_child_before_it_says_so() -> None:
    """``may_be_child``: a neighbour that says we are its parent, or whose offered
    route ours, one link on, beats (it may have taken us as parent, its advert
    saying so still behind a push; delivery sweep seed 8640); not one whose route
    is as good, nor one that has not advertised."""
    tree = SpanningTree(C, since=500)
    for peer in (A, B, D, E):
        tree.add(peer)
    tree.offer(A, 100, A, 0, child=False)
    tree.recompute()
    assert tree.route == (100, A, 1)
    tree.offer(B, 900, B, 0, child=False)  # a root of its own, younger: ours beats it
    tree.offer(D, 100, A, 1, child=False)  # the same root, as near: it keeps its parent
    tree.offer(E, 100, A, 3, child=True)  # says we are its parent
    assert [tree.may_be_child(p) for p in (A, B, D, E)] == [False, True, False, True]
    tree.offer(D, 100, A, 3, child=False)  # farther than we are, one link on: it may move to us
    silent = sim_peer_ids(6)[5]  # a neighbour with no advert yet
    tree.add(silent)
    assert tree.may_be_child(D) and not tree.may_be_child(silent)
    tree.remove(D)
    tree.offer(A, 100, A, MAX_ROOT_DISTANCE - 1, child=False)
    tree.recompute()  # our distance is now the bound: no route of ours one link on
    assert tree.route[2] == MAX_ROOT_DISTANCE and not tree.may_be_child(B)


def test_route_is_the_oldest_root_then_smallest_id_then_distance() -> None:
    tree = SpanningTree(E, since=500)
    for peer in (B, C, D):
        tree.add(peer)
    tree.offer(B, 100, C, 3, child=False)
    tree.offer(C, 100, A, 2, child=False)
    tree.offer(D, 100, A, 2, child=False)
    assert tree.recompute()
    assert (tree.route, tree.parent) == ((100, A, 3), C)
    assert tree.links() == (C,)
    tree.offer(D, 100, A, 1, child=False)
    tree.recompute()
    assert (tree.route, tree.parent) == ((100, A, 2), D)
    tree.offer(B, 50, D, 9, child=False)  # an older root wins, however far
    tree.recompute()
    assert (tree.route, tree.parent) == ((50, D, 10), B)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove", "offer", "recompute"]),
                          st.sampled_from([A, B, C, D]), st.integers(0, 3), st.booleans()),
                max_size=30))
def test_the_kept_tree_links_follow_every_change(steps: list[tuple[str, str, int, bool]]) -> None:
    """``links()`` (what forwarding reads for every document) is kept between changes;
    after any of them it lists what the offers and the parent say, in order."""
    tree = SpanningTree(E, since=500)
    for kind, peer, distance, child in steps:
        if kind == "add":
            tree.add(peer)
        elif kind == "remove":
            tree.remove(peer)
        elif kind == "offer":
            tree.offer(peer, 100, A, distance, child=child)
        else:
            tree.recompute()
        fresh = tuple(p for p in tree.offers if tree.is_tree_link(p))
        assert tree.links() == fresh
        assert tree.links() is tree.links()  # kept, not listed again


def test_a_child_is_never_taken_as_parent_and_its_link_is_a_tree_link() -> None:
    tree = SpanningTree(C, since=500)
    tree.add(A)
    tree.add(D)
    tree.offer(A, 10, A, 0, child=True)  # A says: C is my parent
    tree.offer(D, 20, B, 1, child=False)
    tree.recompute()
    assert tree.parent == D
    assert sorted(tree.links()) == sorted([A, D])


def test_a_node_that_joins_never_moves_the_root() -> None:
    tree = SpanningTree(A, since=900)  # the smallest id, but the youngest
    tree.add(B)
    assert tree.route == (900, A, 0) and tree.parent is None  # alone: its own root
    tree.offer(B, 100, E, 4, child=False)
    tree.recompute()
    assert (tree.route, tree.parent) == ((100, E, 5), B)
    assert tree.advertised() == (100, E, 5)


def test_routes_beyond_the_distance_bound_are_ignored() -> None:
    tree = SpanningTree(C, since=500)
    tree.add(D)
    tree.offer(D, 1, A, MAX_ROOT_DISTANCE, child=False)
    tree.recompute()
    assert tree.route == (500, C, 0) and tree.parent is None


def test_a_departed_root_counts_to_infinity_and_the_next_oldest_takes_over() -> None:
    # B - C - D - E in a ring; the root A (B's neighbour, oldest) leaves.
    # Rounds of adverts (everyone reads everyone's last offer) end with B.
    ring = {B: [C, E], C: [B, D], D: [C, E], E: [D, B]}
    trees = {node: SpanningTree(node, since=100 if node == B else 200) for node in ring}
    for node, peers in ring.items():
        for peer in peers:
            trees[node].add(peer)
    trees[B].add(A)
    trees[B].offer(A, 1, A, 0, child=False)
    for _ in range(10):
        _round(trees, ring)
    assert all(t.route[1] == A for t in trees.values())
    trees[B].remove(A)
    rounds = 0
    while not all(t.route[1] == B for t in trees.values()):
        rounds += 1
        assert rounds <= MAX_ROOT_DISTANCE + 4, "count-to-infinity did not end"
        _round(trees, ring)
    assert {n: t.route for n, t in trees.items()} == {
        B: (100, B, 0), C: (100, B, 1), E: (100, B, 1), D: (100, B, 2)}


def _round(trees: dict[str, SpanningTree], ring: dict[str, list[str]]) -> None:
    offers = {node: (t.advertised(), t.parent) for node, t in trees.items()}
    for node, peers in ring.items():
        for peer in peers:
            (since, root, distance), parent = offers[peer]
            trees[node].offer(peer, since, root, distance,  # type: ignore[arg-type]
                              child=parent == node)
    for tree in trees.values():
        tree.recompute()


def test_small_components_know_their_members_large_ones_do_not() -> None:
    tree = SpanningTree(C, since=500)
    tree.add(A)
    tree.add(D)
    tree.offer(A, 10, A, 0, child=False, members=(A, B))
    tree.offer(D, 10, A, 1, child=True, members=(D, E))
    tree.recompute()
    assert tree.parent == A
    assert tree.members_for(A) == {C, D, E}  # what lies on our side of the link to A
    assert tree.members_for(None) == {A, B, C, D, E}
    many = tuple(sim_peer_ids(TREE_SIZE_CAP))
    tree.offer(A, 10, A, 0, child=False, members=many)
    assert tree.members_for(None) is None and tree.members_for(A) == {C, D, E}


def test_healing_reaches_out_to_a_passive_outsider_seen_twice() -> None:
    tree = SpanningTree(C, since=500)
    tree.add(A)
    tree.offer(A, 10, A, 0, child=False, members=(A,))
    tree.recompute()
    healing = Healing()
    assert healing.check(tree, [A, E], True) is None  # first sighting of E: wait
    assert healing.check(tree, [A, E], True) == E
    assert healing.check(tree, [A], True) is None and healing.reached_out == 1
    # A free slot: HyParView's own refill asks passive peers.
    assert healing.check(tree, [E], False) is None and healing.check(tree, [E], False) is None
    tree.offer(A, 10, A, 0, child=False, members=tuple(sim_peer_ids(TREE_SIZE_CAP)))
    assert healing.check(tree, [E], True) is None and healing.check(tree, [E], True) is None


# --- interest -----------------------------------------------------------------------

def test_split_horizon_over_tree_links_and_nothing_elsewhere() -> None:
    table = InterestTable(max_filters=8, max_pending=2)
    table.own["s"] = (Query({"t": 1}).key, Query({"t": 1}))
    assert table.accept(B, _advert(1, {"t": 2}), neighbour=True)
    assert table.accept(C, _advert(1, {"t": 3}), neighbour=True)
    to_b = [q.ast for _k, q in table.filters_for(B, True, [B, C])]
    assert to_b == [Query({"t": {"$in": [1, 3]}}).ast]
    assert table.filters_for(B, False, [B, C]) == ()
    assert not table.accept(B, _advert(1, {"t": 9}), neighbour=True)  # stale version
    assert table.wants(B, {"t": 2}) and not table.wants(D, {"t": 2})


def test_adverts_before_a_link_is_up_are_kept_bounded_then_adopted() -> None:
    table = InterestTable(max_filters=8, max_pending=2)
    for version, peer in enumerate((B, C, D), start=1):
        table.accept(peer, _advert(version, {"t": version}), neighbour=False)
    assert table.neighbour_up(B) is None  # the oldest was dropped
    adopted = table.neighbour_up(D)
    assert adopted is not None and table.wants(D, {"t": 3})


# --- retention ----------------------------------------------------------------------

def _doc(at: float, size: int = 10, own: bool = False) -> Retained:
    return Retained(b"x" * size, {"t": 1}, A, 0, at, 0, own, cost=size)


def test_retention_expires_by_age_and_counts_young_evictions() -> None:
    kept = Retention(retention=30.0, max_size=2, max_bytes=1000, seen_size=3)
    for i, mid in enumerate((b"1", b"2", b"3")):
        kept.see(mid, float(i), delivered=False)
        kept.add(mid, _doc(float(i)), float(i))  # b"3" is over max_size: b"1" evicted, 2 s old
    assert kept.evicted_young == 1 and kept.get(b"1") is None and kept.seen(b"1")
    assert not kept.duplicate(b"1")  # seen, not kept, young: a copy is taken again
    kept.expire(31.5)
    assert len(kept) == 1 and kept.get(b"3") is not None and kept.duplicate(b"2")  # old
    kept.see(b"4", 40.0, delivered=True)
    assert not kept.seen(b"1") and kept.seen_evicted_young == 0  # b"1" was 40 s old
    assert kept.delivered(b"4") and kept.duplicate(b"4")


def test_retained_documents_add_no_object_the_garbage_collector_tracks() -> None:
    """A retained document lives long enough to reach the collector's oldest
    generation; tracked, each one brought full collections nearer and made them
    walk further.  Records, flat documents and the neighbour maps stay untracked."""
    kept = Retention(retention=30.0, max_size=1000, max_bytes=10**9, seen_size=1000)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(500):
        doc = Retained(b"x", {"t": i, "pad": "y"}, A, 0, 0.0, 1, False, cost=1)
        doc.holders[plain_key(B)] = 1
        doc.pushed[plain_key(C)] = 2
        doc.repushes = {plain_key(C): 1}
        kept.add(str(i).encode(), doc, 0.0)
    del doc
    gc.collect()
    assert len(kept) == 500 and len(gc.get_objects()) - before < 50


def test_retained_views_share_the_stored_maps_and_dropping_a_document_drops_them() -> None:
    kept = Retention(retention=30.0, max_size=2, max_bytes=1000, seen_size=10)
    doc = _doc(0.0)
    doc.holders[plain_key(B)] = 1
    kept.add(b"1", doc, 0.0)
    view = kept.get(b"1")
    assert view is not None and view.held_by(B, 1) and view.publisher == A
    assert (view.payload, view.document, view.at, view.hops, view.own, view.cost) == (
        doc.payload, doc.document, doc.at, doc.hops, doc.own, doc.cost)
    view.pushed[plain_key(D)] = 2
    assert kept.repushes(b"1") is kept.repushes(b"1")
    kept.repushes(b"1")[plain_key(D)] = 1
    again = kept.get(b"1")
    assert again is not None and again.held_by(D, 2) and again.repushes == {D: 1}
    assert kept.holders(b"1") == {B: 1}
    kept.add(b"2", _doc(1.0), 1.0)
    kept.add(b"3", _doc(2.0), 2.0)  # over max_size: b"1" evicted with its maps
    assert kept.get(b"1") is None and kept.holders(b"1") is None
    with pytest.raises(PubsubUsageError):
        kept.repushes(b"1")  # only a retained document has one
    assert [entry[0] for entry in kept.entries()] == [b"2", b"3"] and kept.bytes == 20
    kept.expire(31.5)
    assert [entry[0] for entry in kept.entries()] == [b"3"] and kept.bytes == 10


# --- forwarding and repair ----------------------------------------------------------

def test_widening_means_a_new_link_tree_flag_parent_or_filter() -> None:
    old = (1, True, False, frozenset({"a"}))
    assert not _widened(old, (1, True, False, frozenset()))
    assert not _widened(old, (1, False, False, frozenset({"a"})))
    assert _widened(old, (2, True, False, frozenset({"a"})))
    assert _widened(old, (1, True, True, frozenset({"a"})))
    assert _widened(old, (1, True, False, frozenset({"a", "b"})))
    assert _widened((1, False, False, frozenset({"a"})), (1, True, False, frozenset({"a"})))


def test_repair_pushes_what_a_widened_neighbour_must_hold_and_only_once() -> None:
    tree = SpanningTree(C, since=500)
    table = InterestTable(8, 0)
    kept = Retention(30.0, 10, 10_000, 10)
    epochs = {B: 1, D: 2}
    forwarding = Forwarding(tree, table, kept, epochs)
    repair = Repair(forwarding, PACE)
    for peer in epochs:
        tree.add(peer)
    wanted, other = _doc(0.0), Retained(b"y", {"t": 2}, A, 0, 0.0, 0, False, cost=1)
    kept.add(b"w", wanted, 0.0)
    kept.add(b"o", other, 0.0)
    out: list[Send] = []
    repair.run(out, 0.0)
    assert out == []  # no tree link, no interest
    table.accept(D, _advert(1, {"t": 1}), neighbour=True)
    tree.offer(D, 1, A, 0, child=False)
    tree.recompute()  # D becomes the parent: a tree link wanting t=1
    repair.run(out, 0.0)
    assert [(s.peer, s.message.message_id) for s in out] == [(D, b"w")]  # type: ignore[union-attr]
    out.clear()
    repair.run(out, 0.0)
    assert out == []  # D holds it now
    epochs[D] = 3  # the link went down and came back: a push on the old one is not trusted
    repair.run(out, 0.0)
    assert [s.peer for s in out] == [D]


def test_a_narrowed_neighbour_no_longer_counts_as_holding_what_it_may_have_dropped() -> None:
    tree = SpanningTree(C, since=500)
    table = InterestTable(8, 0)
    kept = Retention(30.0, 10, 10_000, 10)
    epochs = {D: 1}
    forwarding = Forwarding(tree, table, kept, epochs)
    repair = Repair(forwarding, PACE)
    tree.add(D)
    table.accept(D, _advert(1, {"t": 1}), neighbour=True)
    tree.offer(D, 1, A, 0, child=False)
    tree.recompute()
    out: list[Send] = []
    repair.run(out, 0.0)
    doc = _doc(0.0)
    kept.add(b"w", doc, 0.0)
    forwarding.forward(b"w", doc, out)
    assert [s.peer for s in out] == [D] and doc.held_by(D, 1)
    table.accept(D, _advert(2, {"t": 2}), neighbour=True)  # D narrowed: it may drop it
    repair.run(out, 0.0)
    assert not doc.held_by(D, 1)
    out.clear()
    table.accept(D, _advert(3, {"t": 1}), neighbour=True)  # and widened again
    repair.run(out, 0.0)
    assert [s.peer for s in out] == [D]


# --- the router ---------------------------------------------------------------------

def test_a_one_shot_publisher_hands_its_document_to_its_parent_even_unwanted() -> None:
    net = PubsubNet(6, 3, config=STABLE)
    net.run(6.0)
    publisher = net.ids[5]
    router = net.routers[publisher]
    assert isinstance(router, TreeRouter) and router.tree.parent is not None
    mid, actions = router.publish({"t": "nobody"}, net.loop.now, nonce=1)
    net.apply(publisher, actions)
    pushed = [a.peer for a in actions if isinstance(a, Send) and isinstance(a.message, Gossip)]
    assert pushed == [router.tree.parent] and router.handed(mid)
    net.run(0.5)
    parent = net.routers[router.tree.parent]
    assert isinstance(parent, TreeRouter) and parent.retention.get(mid) is not None


def test_subscription_then_publication_at_once_is_delivered_once() -> None:
    net = PubsubNet(10, 5, config=STABLE)
    net.run(6.0)
    net.subscribe(net.ids[2], "s", {"t": 1})
    net.subscribe(net.ids[7], "s", {"t": {"$gt": 0}})
    mid = net.publish(net.ids[9], {"t": 1})
    net.run(5.0)
    assert net.deliveries_of(mid) == {net.ids[2]: ("s",), net.ids[7]: ("s",)}


def test_a_document_no_one_here_wants_is_not_kept_and_a_later_copy_is_taken() -> None:
    router = TreeRouter(A, random.Random(1), UnsignedDocuments(A), STABLE)
    router.start(0.0)
    payload = UnsignedDocuments(B).seal({"t": 1}, 60_000, published_unix_ms=0, nonce=1)
    mid = hashlib.sha256(payload).digest()
    assert router.handle_message(B, Gossip(message_id=mid, hops=1, payload=payload), 0.1) == []
    assert router.stats.unwanted == 1 and router.retention.get(mid) is None
    router.subscribe("s", {"t": 1}, 0.2)
    got = router.handle_message(C, Gossip(message_id=mid, hops=2, payload=payload), 0.3)
    assert [type(a) for a in got] == [Deliver] and router.retention.get(mid) is not None


def test_duplicates_and_plumtree_messages_change_nothing_but_holders() -> None:
    router = TreeRouter(A, random.Random(1), UnsignedDocuments(A), STABLE)
    router.subscribe("s", {}, 0.0)
    payload = UnsignedDocuments(B).seal({"t": 1}, 60_000, published_unix_ms=0, nonce=1)
    mid = hashlib.sha256(payload).digest()
    first = router.handle_message(B, Gossip(message_id=mid, hops=1, payload=payload), 0.1)
    assert [type(a) for a in first] == [Deliver]
    again = router.handle_message(C, Gossip(message_id=mid, hops=2, payload=payload), 0.2)
    assert again == [] and router.stats.duplicates == 1
    assert router.handle_message(C, IHave(message_id=mid, hops=1), 0.3) == []
    bad = router.handle_message(C, Gossip(message_id=b"\0" * 32, hops=1, payload=payload), 0.4)
    assert bad == [] and router.stats.rejected["id_mismatch"] == 1


def test_adverts_go_only_where_they_changed() -> None:
    net = PubsubNet(4, 1, config=STABLE)
    net.run(6.0)
    node = net.ids[0]
    router = net.routers[node]
    before = router.stats.adverts_sent
    assert isinstance(router, TreeRouter)
    actions = router.handle_timer(InterestTimer(), net.loop.now)
    adverts = [a for a in actions if isinstance(a, Send) and isinstance(a.message, InterestAdvert)]
    assert adverts == []
    assert router.stats.adverts_sent == before


def test_retained_documents_hold_no_dict_the_garbage_collector_tracks() -> None:
    """A retained document's maps of neighbours (``holders``, ``pushed``,
    ``repushes``) key by the plain ``str`` of each peer id (``plain_key``): a
    ``PeerId`` is a tracked object, so a dict keyed by one is tracked, and the
    collector's full passes would walk two more per document and node.  The
    maps still answer for ``PeerId``s, and ``handed_to`` gives ``PeerId``s."""
    import gc

    from taiinet.wire.peer_id import PeerId, plain_key

    net = PubsubNet(6, 3, config=STABLE)
    net.run(6.0)
    for peer in net.ids[1:]:
        net.subscribe(peer, "s", {"seq": {"$gte": 0}})
    net.run(6.0)
    mid = net.publish(net.ids[0], {"seq": 1})
    net.run(2.0)
    maps = 0
    for node in net.ids:
        router = net.routers[node]
        assert isinstance(router, TreeRouter)
        doc = router.retention.get(mid)
        assert doc is not None
        for held in (doc.holders, doc.pushed, doc.repushes or {}):
            assert not gc.is_tracked(held)
            assert all(type(key) is str for key in held)
            maps += bool(held)
        handed = router.handed_to(mid)
        assert handed and all(type(peer) is PeerId for peer in handed)
        assert all(doc.held_by(peer, router._epochs[peer]) for peer in handed)
    assert maps >= len(net.ids)  # the maps were filled, not just left empty
    peer = net.ids[1]
    assert plain_key(peer) == peer and hash(plain_key(peer)) == hash(peer)
    assert type(plain_key(peer)) is str and plain_key(peer) is plain_key(peer)
