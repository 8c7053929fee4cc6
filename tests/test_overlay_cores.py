"""Unit tests of the HyParView and Plumtree cores, input by input."""

from __future__ import annotations

import random

import pytest

from taiinet.overlay import (
    CloseLink,
    Deliver,
    HyParView,
    HyParViewConfig,
    MissingTimer,
    NeighborDown,
    NeighborUp,
    Overlay,
    OverlayConfig,
    OverlayUsageError,
    Plumtree,
    PlumtreeConfig,
    ProbeLink,
    Send,
    SetTimer,
    ShuffleTimer,
)
from taiinet.overlay.actions import KeepaliveTimer, LazyFlushTimer
from taiinet.overlay.messages import (
    MAX_PAYLOAD_SIZE,
    Disconnect,
    ForwardJoin,
    Gossip,
    Graft,
    IHave,
    Join,
    Neighbor,
    NeighborReply,
    Prune,
    Shuffle,
    ShuffleReply,
)


def sends(actions: list[object]) -> list[tuple[str, object]]:
    return [(a.peer, a.message) for a in actions if isinstance(a, Send)]


def flushed(t: Plumtree, actions: list[object]) -> list[object]:
    """``actions`` and what the lazy queue sends when the flush timers they set fire
    (``IHave``s are held ``lazy_delay`` by default, see ``taiinet.overlay.lazy``)."""
    out = list(actions)
    for a in actions:
        if isinstance(a, SetTimer) and isinstance(a.timer, LazyFlushTimer):
            out += t.handle_timer(a.timer, a.at)
    return out


def hpv(peer: str = "me", **config: int) -> HyParView:
    return HyParView(peer, random.Random(1), HyParViewConfig(**config))  # type: ignore[arg-type]


def learn(node: HyParView, neighbour: str, *peers: str, now: float = 0.0) -> None:
    """Fill ``node``'s passive view the protocol's way: a shuffle from
    ``neighbour`` ends at ``node`` (origin ``peers[0]``, sample the rest)."""
    node.handle_message(neighbour, Shuffle(origin=peers[0], ttl=1, peers=peers[1:]), now)


# --- HyParView ---------------------------------------------------------------


def test_join_takes_the_contact_and_sends_join() -> None:
    node = hpv()
    out = node.join("c", 0.0)
    assert node.active == ["c"]
    assert NeighborUp(peer="c") in out
    assert sends(out) == [("c", Join())]


def test_contact_forwards_join_to_its_other_neighbours() -> None:
    node = hpv(arwl=6)
    for peer in ("a", "b"):
        node.handle_message(peer, Neighbor(high_priority=True), 0.0)
    out = node.handle_message("new", Join(), 0.0)
    assert node.active == ["a", "b", "new"]
    assert sorted(sends(out), key=str) == [("a", ForwardJoin(peer="new", ttl=6)),
                                           ("b", ForwardJoin(peer="new", ttl=6))]


def test_forward_join_ends_at_ttl_zero_with_a_high_priority_neighbor() -> None:
    node = hpv()
    node.handle_message("a", Neighbor(high_priority=True), 0.0)
    node.handle_message("b", Neighbor(high_priority=True), 0.0)
    out = node.handle_message("a", ForwardJoin(peer="new", ttl=0), 0.0)
    assert "new" in node.active
    assert ("new", Neighbor(high_priority=True)) in sends(out)


def test_forward_join_walks_on_and_drops_the_newcomer_in_the_passive_view_at_prwl() -> None:
    node = hpv(arwl=6, prwl=3)
    for peer in ("a", "b", "c"):
        node.handle_message(peer, Neighbor(high_priority=True), 0.0)
    out = node.handle_message("a", ForwardJoin(peer="new", ttl=3), 0.0)
    assert node.passive == ["new"]
    [(target, message)] = sends(out)
    assert target in ("b", "c") and message == ForwardJoin(peer="new", ttl=2)


def test_full_active_view_drops_a_random_neighbour_to_the_passive_view() -> None:
    node = hpv(active_size=2)
    node.handle_message("a", Neighbor(high_priority=True), 0.0)
    node.handle_message("b", Neighbor(high_priority=True), 0.0)
    out = node.handle_message("c", Neighbor(high_priority=True), 0.0)
    assert len(node.active) == 2 and "c" in node.active
    [victim] = [p for p in ("a", "b") if p not in node.active]
    assert node.passive == [victim]
    assert (victim, Disconnect()) in sends(out)
    assert NeighborDown(peer=victim) in out and CloseLink(peer=victim) in out


def test_low_priority_neighbor_is_refused_when_full() -> None:
    node = hpv(active_size=1)
    node.handle_message("a", Neighbor(high_priority=True), 0.0)
    out = node.handle_message("b", Neighbor(high_priority=False), 0.0)
    assert node.active == ["a"]
    assert sends(out) == [("b", NeighborReply(accepted=False))]


def test_failed_neighbour_is_replaced_from_the_passive_view() -> None:
    node = hpv(active_size=2)
    node.join("c", 0.0)
    learn(node, "c", "p1", "p2")
    out = node.handle_link_down("c", 1.0)
    assert node.active == [] and "c" not in node.passive
    requests = sends(out)
    assert len(requests) == 2
    # The first request is high priority (no neighbour left); the second is not.
    assert requests[0][1] == Neighbor(high_priority=True)
    assert requests[1][1] == Neighbor(high_priority=False)
    accepted = requests[0][0]
    node.handle_message(accepted, NeighborReply(accepted=True), 1.1)
    assert node.active == [accepted]


def test_unreachable_candidate_is_forgotten_and_the_next_one_asked() -> None:
    node = hpv(active_size=1)
    node.join("c", 0.0)
    learn(node, "c", "p1", "p2")
    out = node.handle_link_down("c", 1.0)
    [(first, _)] = sends(out)
    out = node.handle_link_down(first, 1.5)
    assert first not in node.passive
    [(second, message)] = sends(out)
    assert second != first and message == Neighbor(high_priority=True)


def test_an_accepting_reply_nobody_asked_for_is_answered_with_disconnect() -> None:
    """(A request that timed out, or a confirmation that crossed our Disconnect.)
    The replier holds us now and we do not hold it: it is told so."""
    node = hpv()
    out = node.handle_message("a", NeighborReply(accepted=True), 0.0)
    assert sends(out) == [("a", Disconnect())] and CloseLink(peer="a") in out
    assert node.active == [] and node.passive == []
    # A refusal from a non-neighbour changes nothing.
    assert node.handle_message("b", NeighborReply(accepted=False), 0.0) == []


def _half_open(peer_has_room: bool) -> tuple[HyParView, HyParView]:
    """``a`` holds ``b`` but ``b`` does not hold ``a``: b's failure report of
    their link overtook a's ``Join``, which ``a`` had sent through ``b``."""
    a = hpv("a", active_size=3)
    b = hpv("b", active_size=3)
    b.join("x", 0.0)
    if not peer_has_room:
        b.join("y", 0.0)
        b.join("z", 0.0)
    a.join("b", 0.0)  # a holds b; its Join is lost with the link
    b.handle_link_down("a", 0.1)
    assert a.active == ["b"] and "a" not in b.active
    return a, b


def test_a_half_open_neighbour_that_is_full_refuses_the_confirmation_and_is_dropped() -> None:
    a, b = _half_open(peer_has_room=False)
    # The link answers a's probes (b's link layer sends the Pong): before
    # confirmations, a kept b for ever.  Each keep-alive tick asks one
    # neighbour, here the only one, whether it still holds a.
    out = a.handle_timer(KeepaliveTimer(), 2.0)
    assert ("b", Neighbor(high_priority=False)) in sends(out)
    reply = b.handle_message("a", Neighbor(high_priority=False), 2.1)
    assert sends(reply) == [("a", NeighborReply(accepted=False))]
    assert b.active == ["x", "y", "z"]
    out = a.handle_message("b", NeighborReply(accepted=False), 2.2)
    assert a.active == [] and a.passive == ["b"]
    assert NeighborDown(peer="b") in out and CloseLink(peer="b") in out
    # With no neighbour left it asks again with high priority, which b takes.
    assert sends(out) == [("b", Neighbor(high_priority=True))]
    answer = b.handle_message("a", Neighbor(high_priority=True), 2.3)
    assert sends(answer)[-1] == ("a", NeighborReply(accepted=True)) and "a" in b.active
    a.handle_message("b", NeighborReply(accepted=True), 2.4)
    assert a.active == ["b"]


def test_a_half_open_neighbour_with_room_takes_the_confirmation_and_the_views_agree() -> None:
    a, b = _half_open(peer_has_room=True)
    out = a.handle_timer(KeepaliveTimer(), 2.0)
    reply = b.handle_message("a", Neighbor(high_priority=False), 2.1)
    assert sends(reply) == [("a", NeighborReply(accepted=True))] and "a" in b.active
    a.handle_message("b", NeighborReply(accepted=True), 2.2)
    assert a.active == ["b"] and ("b", Neighbor(high_priority=False)) in sends(out)


def test_each_tick_confirms_the_neighbour_asked_longest_ago() -> None:
    node = hpv(keepalive_interval=2.0)  # type: ignore[arg-type]
    for peer in ("a", "b", "c"):
        node.join(peer, 0.0)
    asked = []
    for tick in range(1, 7):
        out = node.handle_timer(KeepaliveTimer(), 2.0 * tick)
        asked += [p for p, m in sends(out) if m == Neighbor(high_priority=False)]
        for peer in node.active:
            node.heard_from(peer, 2.0 * tick + 0.1)  # (their answers)
    assert asked == ["a", "b", "c", "a", "b", "c"]
    # A neighbour that holds us answers with acceptance: nothing changes.
    assert node.handle_message("a", NeighborReply(accepted=True), 13.0) == []
    assert node.active == ["a", "b", "c"]


def test_disconnect_moves_the_peer_to_the_passive_view() -> None:
    node = hpv()
    node.join("c", 0.0)
    out = node.handle_message("c", Disconnect(), 1.0)
    assert node.active == [] and node.passive == ["c"]
    assert NeighborDown(peer="c") in out


def test_shuffle_tick_sends_a_sample_walk_and_the_end_replies() -> None:
    node = hpv(arwl=6, shuffle_active=3, shuffle_passive=4)
    node.join("c", 0.0)
    learn(node, "c", "p1", "p2", "p3")
    out = node.handle_timer(ShuffleTimer(), 10.0)
    assert SetTimer(at=20.0, timer=ShuffleTimer()) in out
    [(target, walk)] = sends(out)
    assert target == "c" and isinstance(walk, Shuffle)
    assert walk.origin == "me" and walk.ttl == 6 and set(walk.peers) == {"p1", "p2", "p3"}
    # The end of the walk (a node with a single neighbour) replies and integrates.
    end = hpv("end")
    end.join("me", 0.0)
    learn(end, "me", "q1")
    out = end.handle_message("me", walk, 10.1)
    assert ("me", ShuffleReply(peers=("q1",))) in sends(out)
    assert set(end.passive) == {"p1", "p2", "p3", "q1"}
    # The origin takes the answer to its shuffle, from the walk's end.
    node.handle_message("end", ShuffleReply(peers=("q1",)), 10.2)
    assert "q1" in node.passive


def test_keepalive_probes_idle_neighbours_only() -> None:
    node = hpv(keepalive_interval=2.0)  # type: ignore[arg-type]
    node.join("a", 0.0)
    node.join("b", 0.0)
    node.handle_message("a", ShuffleReply(peers=()), 1.5)
    out = node.handle_timer(KeepaliveTimer(), 2.0)
    assert ProbeLink(peer="b") in out and ProbeLink(peer="a") not in out


def _silent_b_setup(**config: float) -> HyParView:
    """Neighbours a and b (joined at 0), passive peer p; a talks, b stays silent."""
    node = hpv(keepalive_interval=2.0, active_size=2, **config)  # type: ignore[arg-type]
    node.join("a", 0.0)
    node.join("b", 0.0)
    learn(node, "a", "p", now=0.5)
    assert node.passive == ["p"]
    return node


def test_a_neighbour_silent_after_a_probe_is_failed_and_replaced() -> None:
    node = _silent_b_setup()  # probe_timeout: 2 x keepalive_interval = 4 s
    assert ProbeLink(peer="b") in node.handle_timer(KeepaliveTimer(), 2.0)
    node.heard_from("a", 3.0)
    out = node.handle_timer(KeepaliveTimer(), 4.0)  # 2 s after the probe: not yet
    assert node.active == ["a", "b"] and ProbeLink(peer="b") in out
    node.heard_from("a", 5.0)
    out = node.handle_timer(KeepaliveTimer(), 6.0)  # 4 s after the first probe
    assert node.active == ["a"] and "b" not in node.passive
    assert NeighborDown(peer="b") in out and CloseLink(peer="b", failed=True) in out
    assert ProbeLink(peer="b") not in out and ProbeLink(peer="a") not in out
    # (a, the one neighbour left, is asked to confirm it holds us.)
    assert sends(out) == [("a", Neighbor(high_priority=False)),
                          ("p", Neighbor(high_priority=False))]
    # The replacement is taken as usual.
    out = node.handle_message("p", NeighborReply(accepted=True), 6.1)
    assert node.active == ["a", "p"] and NeighborUp(peer="p") in out


def test_a_late_tick_does_not_count_the_time_this_node_read_nothing_as_silence() -> None:
    """A node paused (or short of CPU) for 5 s read nothing meanwhile: its
    neighbours' frames wait in its buffers.  The late tick moves the pending probe
    on by its lateness; a neighbour still silent fails one on-time tick later."""
    node = _silent_b_setup()  # probe_timeout: 2 x keepalive_interval = 4 s
    assert ProbeLink(peer="b") in node.handle_timer(KeepaliveTimer(), 2.0)
    node.heard_from("a", 3.0)
    out = node.handle_timer(KeepaliveTimer(), 9.0)  # due at 4.0: 5 s late
    assert node.active == ["a", "b"] and CloseLink(peer="b", failed=True) not in out
    node.heard_from("a", 9.5)  # the backlog read after the pause (nothing from b)
    out = node.handle_timer(KeepaliveTimer(), 11.0)  # on time: b silent 4 s of reading
    assert node.active == ["a"] and CloseLink(peer="b", failed=True) in out


def test_a_frame_read_after_a_late_tick_keeps_the_neighbour() -> None:
    node = _silent_b_setup()
    node.handle_timer(KeepaliveTimer(), 2.0)
    node.handle_timer(KeepaliveTimer(), 9.0)  # 5 s late
    node.heard_from("a", 9.5)
    node.heard_from("b", 9.5)  # its Pong, read once the node runs again
    node.handle_timer(KeepaliveTimer(), 11.0)
    node.handle_timer(KeepaliveTimer(), 13.0)
    assert node.active == ["a", "b"]


def test_any_frame_after_the_probe_keeps_the_neighbour() -> None:
    overlay = Overlay("me", random.Random(1), OverlayConfig(
        membership=HyParViewConfig(keepalive_interval=2.0)))
    overlay.join("a", 0.0)
    overlay.handle_timer(KeepaliveTimer(), 2.0)
    overlay.heard_from("a", 2.1)  # its Pong (or any other frame)
    for now in (4.0, 6.0, 8.0, 10.0):  # idle again: probed, answers each time
        out = overlay.handle_timer(KeepaliveTimer(), now)
        overlay.heard_from("a", now + 0.1)
        assert overlay.active_view == ["a"] and not any(
            isinstance(a, NeighborDown | CloseLink) for a in out)


def test_the_probe_timeout_is_configurable() -> None:
    node = _silent_b_setup(probe_timeout=1.0)
    node.handle_timer(KeepaliveTimer(), 2.0)
    node.heard_from("a", 3.5)
    node.handle_timer(KeepaliveTimer(), 4.0)  # first tick 1 s or more after the probe
    assert node.active == ["a"]
    with pytest.raises(OverlayUsageError):
        HyParViewConfig(probe_timeout=0.0)


# --- HyParView: defences against strangers -------------------------------------


def full(node: HyParView, *peers: str, now: float = 0.0) -> None:
    """Fill ``node``'s active view with ``peers``, oldest first."""
    for peer in peers:
        node.handle_message(peer, Neighbor(high_priority=True), now)
    assert node.active == list(peers)


def test_forward_join_from_a_non_neighbour_is_ignored() -> None:
    node = hpv(active_size=2)
    full(node, "a", "b")
    for ttl in (0, 3):
        assert node.handle_message("stranger", ForwardJoin(peer="x", ttl=ttl), 1.0) == []
    assert node.active == ["a", "b"] and node.passive == []


def test_shuffle_from_a_non_neighbour_is_ignored() -> None:
    node = hpv()
    node.join("a", 0.0)
    walk = Shuffle(origin="stranger", ttl=1, peers=("ghost1", "ghost2"))
    assert node.handle_message("stranger", walk, 1.0) == []
    assert node.passive == []


def test_a_shuffle_reply_is_taken_only_as_the_answer_to_our_shuffle() -> None:
    node = hpv(shuffle_active=3, shuffle_passive=4)
    node.join("a", 0.0)
    node.handle_message("x", ShuffleReply(peers=("ghost1", "ghost2")), 1.0)
    assert node.passive == []  # unsolicited
    node.handle_timer(ShuffleTimer(), 10.0)  # our sample is empty: one entry back
    node.handle_message("end", ShuffleReply(peers=("p1", "ghost3", "ghost4")), 10.5)
    assert node.passive == ["p1"]
    node.handle_message("end", ShuffleReply(peers=("ghost5",)), 10.6)  # one answer only
    assert node.passive == ["p1"]
    node.handle_timer(ShuffleTimer(), 20.0)
    node.handle_message("end", ShuffleReply(peers=("p2",)), 20.5)
    assert node.passive == ["p1", "p2"]


def test_a_join_storm_of_fresh_identities_cannot_displace_the_oldest_neighbours() -> None:
    for request in (Join(), Neighbor(high_priority=True)):
        node = hpv(active_size=5, protected_neighbors=3)
        full(node, "h1", "h2", "h3", "h4", "h5")
        for i in range(200):  # neighbours for 30 s and more: protected
            node.handle_message(f"sybil{i}", request, 30.0 + i * 0.5)
            assert node.active[:3] == ["h1", "h2", "h3"]
        assert len(node.active) == 5


def test_by_default_a_newcomer_displaces_only_the_youngest_settled_neighbour() -> None:
    node = hpv(active_size=5)
    full(node, "h1", "h2", "h3", "h4", "h5")
    node.handle_message("s1", Join(), 40.0)
    assert node.active == ["h1", "h2", "h3", "h4", "s1"]
    node.handle_message("s2", Join(), 41.0)
    assert node.active == ["h1", "h2", "h3", "h4", "s2"]


def test_young_neighbours_are_not_protected() -> None:
    node = hpv(active_size=2, protected_neighbors=1, protect_after=30)
    full(node, "a", "b", now=0.0)
    for i in range(20):  # a is only 10 s old: either it or the newest goes
        node.handle_message(f"s{i}", Join(), 10.0)
    assert "a" not in node.active


def test_walks_ending_here_cannot_displace_the_oldest_neighbours() -> None:
    node = hpv(active_size=5)
    full(node, "h1", "h2", "h3", "h4", "h5")
    for i in range(200):  # a hostile neighbour walks fake peers to their end here
        node.handle_message(node.active[-1], ForwardJoin(peer=f"ghost{i}", ttl=0), 30.0 + i)
        assert node.active[:4] == ["h1", "h2", "h3", "h4"]


def test_displacing_neighbours_for_newcomers_is_rate_limited() -> None:
    node = hpv(active_size=5, eviction_burst=2, eviction_interval=1.0,  # type: ignore[arg-type]
               protect_after=0.0)
    full(node, "h1", "h2", "h3", "h4", "h5")
    taken = [f"s{i}" for i in range(4)
             if node.handle_message(f"s{i}", Join(), 0.0) and f"s{i}" in node.active]
    assert taken == ["s0", "s1"]
    out = node.handle_message("s9", Join(), 0.0)
    assert "s9" not in node.active
    assert sends(out) == [("s9", Disconnect())] and CloseLink(peer="s9") in out
    node.handle_message("s8", Join(), 0.5)
    assert "s8" not in node.active
    node.handle_message("s7", Join(), 1.0)  # a token back after a second
    assert "s7" in node.active
    # A node left with no neighbour is never refused for lack of budget.
    youngest = node.active[-1]
    out = node.handle_message("lonely", Neighbor(high_priority=True), 1.0)
    assert sends(out) == [(youngest, Disconnect()), ("lonely", NeighborReply(accepted=True))]


def test_the_eviction_budget_starts_with_protection() -> None:
    node = hpv(active_size=2, eviction_burst=1, eviction_interval=100.0)  # type: ignore[arg-type]
    node.start(0.0)
    full(node, "a", "b")
    for i in range(3):  # a young node forms its view as the paper's
        node.handle_message(f"young{i}", Join(), 10.0)
        assert f"young{i}" in node.active
    node.handle_message("late0", Join(), 40.0)  # 30 s in: one token, then none
    node.handle_message("late1", Join(), 40.0)
    assert "late0" in node.active and "late1" not in node.active


def test_a_peer_cannot_join_again_within_the_repeat_interval() -> None:
    node = hpv(join_repeat_interval=60.0)  # type: ignore[arg-type]
    node.join("a", 0.0)
    node.handle_message("s", Join(), 0.0)
    assert "s" in node.active
    node.handle_link_down("s", 1.0)
    out = node.handle_message("s", Join(), 10.0)
    assert "s" not in node.active
    assert sends(out) == [("s", Disconnect())]  # and no walk on its behalf
    out = node.handle_message("s", Join(), 60.5)
    assert "s" in node.active and ("a", ForwardJoin(peer="s", ttl=6)) in sends(out)


def test_a_neighbour_repeating_its_join_starts_no_more_walks_and_stays() -> None:
    node = hpv()
    node.join("a", 0.0)
    node.handle_message("s", Join(), 1.0)
    assert node.handle_message("s", Join(), 2.0) == []
    assert node.active == ["a", "s"]


def test_join_memory_is_bounded() -> None:
    node = hpv(join_memory=2, active_size=8)
    node.join("a", 0.0)
    for peer in ("s1", "s2", "s3"):
        node.handle_message(peer, Join(), 0.0)
        node.handle_link_down(peer, 0.0)
    node.handle_message("s1", Join(), 1.0)  # forgotten: the oldest of three
    node.handle_message("s3", Join(), 1.0)  # remembered
    assert "s1" in node.active and "s3" not in node.active


def test_walk_ttls_are_capped_at_the_active_walk_length() -> None:
    node = hpv(arwl=6)
    full(node, "a", "b", "c")
    [(_, walk)] = sends(node.handle_message("a", ForwardJoin(peer="new", ttl=200), 0.0))
    assert walk == ForwardJoin(peer="new", ttl=5)
    many = tuple(f"x{i}" for i in range(64))
    [(_, shuffle)] = sends(node.handle_message("a", Shuffle(origin="o", ttl=200, peers=many), 0.0))
    # Only an honest sample's worth (ka + kp = 7 entries) goes on.
    assert isinstance(shuffle, Shuffle) and shuffle.ttl == 5 and shuffle.peers == many[:7]


def test_one_neighbour_holds_a_bounded_share_of_the_passive_view() -> None:
    node = hpv(passive_size=30, passive_per_source=8)  # type: ignore[arg-type]
    node.join("honest", 0.0)
    learn(node, "honest", "p1", "p2", "p3")
    node.join("liar", 0.0)
    for i in range(50):
        learn(node, "liar", *(f"ghost{i}_{j}" for j in range(7)), now=1.0 + i)
    ghosts = [p for p in node.passive if p.startswith("ghost")]
    assert len(ghosts) == 8
    assert {"p1", "p2", "p3"} <= set(node.passive)


def test_entries_only_heard_of_make_room_first() -> None:
    node = hpv(active_size=1, passive_size=4, passive_per_source=8)  # type: ignore[arg-type]
    node.join("t1", 0.0)
    node.handle_message("a", Neighbor(high_priority=True), 0.0)  # t1 displaced: trusted
    assert node.active == ["a"] and node.passive == ["t1"]
    learn(node, "a", "h1", "h2", "h3", "h4", "h5", "h6")
    assert "t1" in node.passive and len(node.passive) == 4
    [(asked, _)] = sends(node.handle_link_down("a", 1.0))
    node.handle_message(asked, NeighborReply(accepted=True), 1.1)
    learn(node, asked, "h7", "h8", "h9", "h10", now=2.0)
    assert "t1" in node.passive and len(set(node.passive) & {"h7", "h8", "h9", "h10"}) == 3


def test_a_neighbor_request_left_unanswered_is_failed_and_the_next_peer_asked() -> None:
    node = hpv(active_size=1, keepalive_interval=2.0)  # type: ignore[arg-type]
    node.join("c", 0.0)
    learn(node, "c", "p1", "p2")
    [(silent, _)] = sends(node.handle_link_down("c", 1.0))  # it never answers
    out = node.handle_timer(KeepaliveTimer(), 4.0)  # 3 s: under probe_timeout (4 s)
    assert not sends(out) and silent in node.passive
    out = node.handle_timer(KeepaliveTimer(), 5.0)
    assert CloseLink(peer=silent, failed=True) in out and silent not in node.passive
    [(other, request)] = sends(out)
    assert other != silent and request == Neighbor(high_priority=True)


def test_joining_through_itself_is_a_usage_error() -> None:
    with pytest.raises(OverlayUsageError):
        hpv().join("me", 0.0)


# --- Plumtree ----------------------------------------------------------------


def tree(peer: str = "me", **config: object) -> Plumtree:
    t = Plumtree(peer, random.Random(1), PlumtreeConfig(**config))  # type: ignore[arg-type]
    for n in ("a", "b", "c"):
        t.neighbor_up(n, 0.0)
    return t


def test_broadcast_delivers_locally_and_pushes_to_eager_neighbours() -> None:
    t = tree()
    out = t.broadcast(b"m1", b"hello", 0.0)
    assert out[0] == Deliver(message_id=b"m1", payload=b"hello", sender=None, hops=0)
    assert sorted(sends(out), key=str) == [
        (p, Gossip(message_id=b"m1", hops=1, payload=b"hello", origin="me"))
        for p in ("a", "b", "c")]
    assert t.broadcast(b"m1", b"hello", 0.0) == []


def test_duplicate_prunes_the_sender_and_is_not_delivered_again() -> None:
    t = tree()
    out = t.handle_message("a", Gossip(message_id=b"m", hops=1, payload=b"p"), 0.0)
    assert [a for a in out if isinstance(a, Deliver)] == [
        Deliver(message_id=b"m", payload=b"p", sender="a", hops=1)]
    assert sorted(sends(out), key=str) == [
        (p, Gossip(message_id=b"m", hops=2, payload=b"p")) for p in ("b", "c")]
    out = t.handle_message("b", Gossip(message_id=b"m", hops=1, payload=b"p"), 0.1)
    assert sends(out) == [("b", Prune())]
    assert "b" in t.lazy and "b" not in t.eager
    # Lazy neighbours now get announcements instead of payloads.
    out = t.broadcast(b"m2", b"q", 1.0)
    assert ("b", IHave(message_id=b"m2", hops=1)) not in sends(out)  # held, then sent
    assert ("b", IHave(message_id=b"m2", hops=1)) in sends(flushed(t, out))


def test_prune_makes_the_link_lazy() -> None:
    t = tree()
    t.handle_message("a", Prune(), 0.0)
    assert list(t.lazy) == ["a"] and "a" not in t.eager


def test_missing_message_is_grafted_from_announcers_in_turn() -> None:
    t = tree(ihave_timeout=0.4, graft_timeout=0.2)
    t.handle_message("a", Prune(), 0.0)
    t.handle_message("b", Prune(), 0.0)
    out = t.handle_message("a", IHave(message_id=b"m", hops=2), 1.0)
    assert out == [SetTimer(at=1.4, timer=MissingTimer(message_id=b"m"))]
    assert t.handle_message("b", IHave(message_id=b"m", hops=2), 1.1) == []
    out = t.handle_timer(MissingTimer(message_id=b"m"), 1.4)
    assert ("a", Graft(message_id=b"m")) in sends(out)
    assert SetTimer(at=pytest.approx(1.6), timer=MissingTimer(message_id=b"m")) in out
    assert "a" in t.eager
    out = t.handle_timer(MissingTimer(message_id=b"m"), 1.6)
    assert sends(out) == [("b", Graft(message_id=b"m"))]
    # Once the message arrives, a stale timer does nothing.
    t.handle_message("b", Gossip(message_id=b"m", hops=3, payload=b"p"), 1.7)
    assert t.handle_timer(MissingTimer(message_id=b"m"), 1.8) == []


def test_graft_is_answered_with_the_cached_payload() -> None:
    t = tree()
    t.handle_message("a", Gossip(message_id=b"m", hops=4, payload=b"p"), 0.0)
    t.handle_message("b", Prune(), 0.0)
    out = t.handle_message("b", Graft(message_id=b"m"), 1.0)
    assert sends(out) == [("b", Gossip(message_id=b"m", hops=5, payload=b"p"))]
    assert "b" in t.eager


def gossip(mid: bytes, origin: str, hops: int = 3) -> Gossip:
    return Gossip(message_id=mid, hops=hops, payload=b"p", origin=origin)


def test_second_message_of_an_origin_starts_its_own_tree() -> None:
    t = tree()
    t.handle_message("b", Prune(), 0.0)  # the default tree: a, c eager; b lazy
    out = flushed(t, t.handle_message("a", gossip(b"m1", "o"), 1.0))
    assert sends(out) == [("c", gossip(b"m1", "o", 4)), ("b", IHave(message_id=b"m1", hops=4))]
    assert t.origin_trees == []
    # Its second message floods on a tree of its own, all neighbours eager.
    out = t.handle_message("a", gossip(b"m2", "o"), 2.0)
    assert sorted(sends(out), key=str) == [(p, gossip(b"m2", "o", 4)) for p in ("b", "c")]
    assert t.origin_trees == ["o"]
    # Its duplicates prune its tree only, and the Prune names the origin.
    out = t.handle_message("c", gossip(b"m2", "o", 2), 2.1)
    assert sends(out) == [("c", Prune(origin="o"))]
    assert t.tree("o") == (["a", "b"], ["c"])
    assert t.tree("") == (["a", "c"], ["b"]) == (list(t.eager), list(t.lazy))
    t.handle_message("a", Prune(origin="o"), 2.2)
    t.handle_message("c", Graft(message_id=b"", origin="o"), 2.3)
    assert t.tree("o") == (["b", "c"], ["a"])
    assert t.tree("x") == t.tree("") == (["a", "c"], ["b"])
    # A graft for a cached message acts on that message's tree.
    out = t.handle_message("a", Graft(message_id=b"m2"), 2.4)
    assert sends(out) == [("a", gossip(b"m2", "o", 4))]
    assert t.tree("o") == (["b", "c", "a"], [])
    # Neighbours come and go in every tree.
    t.neighbor_down("b")
    t.neighbor_up("d", 3.0)
    assert t.tree("o") == (["c", "a", "d"], [])
    assert t.tree("") == (["a", "c", "d"], [])


def test_tree_optimisation_names_the_origin() -> None:
    t = tree(optimization_threshold=2)
    t.handle_message("a", gossip(b"m1", "o"), 1.0)
    t.handle_message("a", gossip(b"m2", "o", 6), 2.0)  # the tree of "o" starts
    t.handle_message("b", gossip(b"m2", "o", 5), 2.1)
    t.handle_message("c", gossip(b"m2", "o", 5), 2.1)
    assert t.tree("o") == (["a"], ["b", "c"])
    out = t.handle_message("b", IHave(message_id=b"m2", hops=4), 2.2)
    assert sends(out) == [("b", Graft(message_id=b"", origin="o")), ("a", Prune(origin="o"))]
    assert t.tree("o") == (["b"], ["c", "a"])


def test_origin_trees_are_bounded_least_recently_used_first() -> None:
    t = tree(origin_trees=2, origins_seen=2)
    for i, origin in enumerate(["x", "y", "z", "x"]):
        t.handle_message("a", gossip(b"m%d" % i, origin), float(i))
    assert t.origin_trees == []  # x was forgotten as seen once when z came
    t = tree(origin_trees=2, origins_seen=4)
    for i, origin in enumerate(["x", "y", "z", "x", "y", "z", "w", "x", "x"]):
        t.handle_message("a", gossip(b"m%d" % i, origin), float(i))
    # x, y, z each started a tree at their second message, and z evicted x;
    # x, seen once more, starts a fresh tree at its next message and evicts y.
    assert t.origin_trees == ["z", "x"]
    assert t.tree("y") == t.tree("")


def test_no_origin_trees_when_disabled_or_flooding() -> None:
    for config in ({"origin_trees": 0}, {"flood": True}):
        t = tree(**config)
        for i in range(3):
            t.handle_message("a", gossip(b"m%d" % i, "o"), float(i))
        assert t.origin_trees == []


def test_seen_cache_is_bounded() -> None:
    t = tree(seen_cache_size=2)
    for i in range(3):
        t.broadcast(b"m%d" % i, b"p", 0.0)
    assert not t.has_seen(b"m0") and t.has_seen(b"m1") and t.has_seen(b"m2")


def test_payloads_kept_for_grafts_are_bounded_in_bytes_oldest_first() -> None:
    big = MAX_PAYLOAD_SIZE
    t = tree(payload_cache_bytes=3 * big)
    for i in range(10):
        t.handle_message("a", Gossip(message_id=b"m%d" % i, hops=1, payload=bytes([i]) * big),
                         float(i))
    assert t.payload_bytes <= 3 * big
    assert all(t.has_seen(b"m%d" % i) for i in range(10))  # ids stay: duplicates still dropped
    t.handle_message("b", Prune(), 10.0)
    # The newest are still answered (the repair path); an evicted one only
    # makes the link eager, so the grafter moves on to its next announcer.
    out = t.handle_message("b", Graft(message_id=b"m9"), 10.1)
    assert sends(out) == [("b", Gossip(message_id=b"m9", hops=2, payload=bytes([9]) * big))]
    t.handle_message("b", Prune(), 10.2)
    assert sends(t.handle_message("b", Graft(message_id=b"m0"), 10.3)) == []
    assert "b" in t.eager
    # A new neighbour hears only of messages it could graft.
    announced = {m.message_id for _p, m in sends(t.neighbor_up("d", 10.5))}
    assert announced == {b"m7", b"m8", b"m9"}
    with pytest.raises(OverlayUsageError):
        PlumtreeConfig(payload_cache_bytes=big - 1)


def test_a_dropped_payload_is_neither_grafted_nor_announced() -> None:
    t = tree()
    t.handle_message("a", Gossip(message_id=b"m", hops=1, payload=b"p" * 100), 0.0)
    assert t.payload_bytes == 100
    t.drop_payload(b"m")
    assert t.payload_bytes == 0 and t.has_seen(b"m") and not t.has_payload(b"m")
    assert sends(t.handle_message("b", Graft(message_id=b"m"), 1.0)) == []
    assert sends(t.neighbor_up("d", 1.0)) == []


def test_forward_filter_restricts_who_gets_a_message() -> None:
    t = Plumtree("me", random.Random(1), forward_filter=lambda mid, payload, peer: peer != "b")
    for n in ("a", "b"):
        t.neighbor_up(n, 0.0)
    out = t.broadcast(b"m", b"p", 0.0)
    assert [p for p, _ in sends(out)] == ["a"]


def test_new_neighbour_hears_of_recent_messages() -> None:
    t = tree(announce_window=5.0)
    t.broadcast(b"old", b"p", 0.0)
    t.broadcast(b"new", b"p", 8.0)
    out = t.neighbor_up("d", 10.0)
    assert sends(out) == [("d", IHave(message_id=b"new", hops=1))]


def test_bad_message_id_is_a_usage_error() -> None:
    with pytest.raises(OverlayUsageError):
        tree().broadcast(b"", b"p", 0.0)


def test_overlay_feeds_neighbour_changes_to_the_tree() -> None:
    node = Overlay("me", random.Random(1))
    node.join("c", 0.0)
    assert list(node.broadcast_core.eager) == ["c"]
    node.handle_link_down("c", 1.0)
    assert list(node.broadcast_core.eager) == []


# --- Plumtree flood prefix -------------------------------------------------------


def prefixed(**config: object) -> Plumtree:
    """A node with neighbours a, b, c, a flood prefix of 2 hops, and one tree for all."""
    return tree(flood_prefix=2, **{"origin_trees": 0, **config})


def copy(mid: bytes, hops: int, entry: int = 0) -> Gossip:
    return Gossip(message_id=mid, hops=hops, payload=b"p", origin="o", entry=entry)


def test_prefix_pushes_to_every_neighbour_then_enters_the_tree() -> None:
    t = prefixed()
    t.handle_message("c", Prune(), 0.0)  # c lazy: a, b eager
    out = t.broadcast(b"m0", b"p", 0.0)
    # Within the prefix, the payload goes to lazy neighbours too, untagged.
    assert sorted(p for p, m in sends(out) if isinstance(m, Gossip)) == ["a", "b", "c"]
    assert all(m.entry == 0 for _, m in sends(out) if isinstance(m, Gossip))
    out = t.handle_message("a", copy(b"m1", 1), 1.0)  # hop 1 < 2: still the prefix
    assert sorted(p for p, m in sends(out) if isinstance(m, Gossip) and m.entry == 0) == [
        "b", "c"]
    out = flushed(t, t.handle_message("a", copy(b"m2", 2), 2.0))  # hop 2: enters the tree
    assert ("b", copy(b"m2", 3, t.entry_tag)) in sends(out)
    assert ("c", IHave(message_id=b"m2", hops=3)) in sends(out)
    # A tagged copy keeps its tag along the tree.
    out = t.handle_message("a", copy(b"m3", 7, entry=42), 3.0)
    assert ("b", copy(b"m3", 8, 42)) in sends(out)
    assert "c" in t.lazy  # prefix copies from a lazy link never made it eager


def test_a_node_in_no_tree_joins_below_the_node_that_brings_a_message() -> None:
    t = prefixed()
    out = t.handle_message("b", copy(b"m", 5, entry=7), 0.0)
    assert ("b", Graft(message_id=b"")) in sends(out)  # "you are my parent"
    assert t.tree_links == {"b"}
    # Joined: the next message does not change the parent.
    out = t.handle_message("a", copy(b"m2", 5, entry=7), 1.0)
    assert ("a", Graft(message_id=b"")) not in sends(out)
    assert t.tree_links == {"b"}
    t.handle_message("c", Graft(message_id=b""), 2.0)  # c joins below this node
    assert t.tree_links == {"b", "c"}


def test_copies_from_different_entries_do_not_prune_tree_links() -> None:
    t = prefixed()
    t.handle_message("b", copy(b"m", 5, entry=7), 0.0)  # parent b
    t.handle_message("c", Graft(message_id=b""), 0.0)  # child c
    # Another entry's copy meets this one on a tree link: both links stay.
    assert sends(t.handle_message("c", copy(b"m", 6, entry=9), 0.1)) == []
    # A prefix copy arriving late prunes nothing either.
    assert sends(t.handle_message("c", copy(b"m", 2), 0.2)) == []
    # A copy from the same entry closes a cycle: that tree link is cut.
    out = t.handle_message("c", copy(b"m", 8, entry=7), 0.3)
    assert sends(out) == [("c", Prune(origin="o"))]
    assert t.tree_links == {"b"} and "c" in t.lazy
    # A duplicate over a link off the tree prunes it, whatever its entry.
    out = t.handle_message("a", copy(b"m", 6, entry=9), 0.4)
    assert sends(out) == [("a", Prune(origin="o"))]


def test_losing_the_parent_cuts_the_subtree_off_until_it_joins_again() -> None:
    t = prefixed()
    t.handle_message("b", copy(b"m", 5, entry=7), 0.0)  # parent b
    t.handle_message("c", Graft(message_id=b""), 0.0)  # child c
    out = t.neighbor_down("b")
    assert sends(out) == [("c", Prune())]  # the cut goes down the subtree
    assert t.tree_links == set() and "c" in t.lazy
    # Cut off, it takes no child (a tree below it would hang off nothing).
    out = t.handle_message("a", Graft(message_id=b""), 1.0)
    assert sends(out) == [("a", Prune())] and t.tree_links == set()
    # It joins again below the node that brings the next message.
    t.neighbor_up("d", 1.5)
    out = t.handle_message("d", copy(b"m2", 4, entry=3), 2.0)
    assert ("d", Graft(message_id=b"")) in sends(out) and t.tree_links == {"d"}
    assert sends(t.handle_message("a", Graft(message_id=b""), 3.0)) == []
    assert t.tree_links == {"d", "a"}


def test_a_child_link_pruned_is_only_forgotten() -> None:
    t = prefixed()
    t.handle_message("b", copy(b"m", 5, entry=7), 0.0)
    t.handle_message("c", Graft(message_id=b""), 0.0)
    assert sends(t.handle_message("c", Prune(), 1.0)) == []
    assert t.tree_links == {"b"}


def test_graft_answers_are_tree_copies_and_no_prefix_on_origin_trees() -> None:
    t = prefixed(origin_trees=8)
    t.broadcast(b"m", b"p", 0.0)
    out = t.handle_message("a", Graft(message_id=b"m"), 1.0)
    assert sends(out) == [("a", Gossip(message_id=b"m", hops=1, payload=b"p", origin="me",
                                       entry=t.entry_tag))]
    t.broadcast(b"m2", b"p", 2.0)  # the origin's second message: its own tree
    out = t.broadcast(b"m3", b"p", 3.0)  # on its own tree: no prefix, no tag
    assert all(m.entry == 0 for _, m in sends(out) if isinstance(m, Gossip))


def test_prefix_off_keeps_the_papers_rules() -> None:
    t = tree()
    out = t.handle_message("a", copy(b"m", 1), 0.0)
    assert t.tree_links == set() and not any(isinstance(m, Graft) for _, m in sends(out))
    assert sends(t.handle_message("b", copy(b"m", 1), 0.1)) == [("b", Prune(origin="o"))]


def test_flood_prefix_is_bounded() -> None:
    with pytest.raises(OverlayUsageError):
        PlumtreeConfig(flood_prefix=17)
