"""Unit tests of the relay-tree core, input by input."""

from __future__ import annotations

import random

import pytest

from taiinet.core.actions import CloseLink, Send, SetTimer
from taiinet.sim.network import sim_peer_ids
from taiinet.stream.actions import (
    Action,
    Evicted,
    JoinTimer,
    ParentChanged,
    TickTimer,
)
from taiinet.stream.config import TreeConfig
from taiinet.stream.errors import StreamUsageError
from taiinet.stream.messages import (
    Adopt,
    Heartbeat,
    Join,
    Leave,
    Redirect,
    Reparent,
    StallReport,
    Status,
    TreeMessage,
)
from taiinet.stream.tree import RelayTree
from taiinet.wire.peer_id import PeerId

ROOT, A, B, C, D, E, F = sim_peer_ids(7)
TICK = TickTimer()


def sends(actions: list[Action]) -> list[tuple[PeerId, TreeMessage]]:
    return [(a.peer, a.message) for a in actions if isinstance(a, Send)]


def node(peer: PeerId, slots: int, **config: object) -> RelayTree:
    return RelayTree(peer, ROOT, slots, random.Random(1), TreeConfig(**config))  # type: ignore[arg-type]


def adopted(peer: PeerId, slots: int, path: tuple[PeerId, ...], now: float = 0.0,
            **config: object) -> RelayTree:
    """A viewer whose first Join went to the root and that was adopted along ``path``."""
    tree = node(peer, slots, **config)
    tree.start(now)
    if path[-1] != ROOT:
        tree.handle_message(ROOT, Redirect(candidates=(path[-1],)), now)
    tree.handle_message(path[-1], Adopt(path=path), now)
    assert tree.parent == path[-1]
    return tree


def test_a_viewer_asks_the_broadcaster_first() -> None:
    out = node(A, 3).start(0.0)
    assert sends(out) == [(ROOT, Join(slots=3))]
    assert any(isinstance(a, SetTimer) and isinstance(a.timer, JoinTimer) for a in out)


def test_a_node_with_a_free_slot_adopts_and_sends_its_path() -> None:
    root = node(ROOT, 1)
    out = root.handle_message(A, Join(slots=2), 0.0)
    assert sends(out)[0] == (A, Adopt(path=(ROOT,)))
    assert isinstance(sends(out)[1][1], Heartbeat)
    assert list(root.children) == [A]


def test_a_full_node_redirects_to_children_with_free_slots_most_slots_first() -> None:
    root = node(ROOT, 2)
    root.handle_message(A, Join(slots=1), 0.0)
    root.handle_message(B, Join(slots=4), 0.0)
    out = root.handle_message(C, Join(slots=0), 0.0)
    assert sends(out) == [(C, Redirect(candidates=(B, A)))]
    assert len(root.children) == 2


def test_a_stronger_newcomer_takes_the_weakest_childs_place() -> None:
    root = node(ROOT, 2)
    root.handle_message(A, Join(slots=0), 0.0)
    root.handle_message(B, Join(slots=3), 0.0)
    out = root.handle_message(C, Join(slots=2), 0.0)
    assert (A, Reparent(to=C)) in sends(out)
    assert (C, Adopt(path=(ROOT,))) in sends(out)
    assert list(root.children) == [B, C]


def test_without_ranking_only_a_leaf_gives_its_place_to_a_relay() -> None:
    """A random tree whose slots all went to zero-slot leaves stopped growing (the
    10,000-viewer baseline stuck at 30 viewers); a relay may take a leaf's place."""
    root = node(ROOT, 1, ranking=False)
    root.handle_message(A, Join(slots=0), 0.0)
    assert sends(root.handle_message(D, Join(slots=0), 0.0)) == [(D, Redirect(candidates=()))]
    out = root.handle_message(C, Join(slots=5), 0.0)
    assert (A, Reparent(to=C)) in sends(out)
    assert list(root.children) == [C]
    root.handle_message(C, Status(slots=5, children=(E,), free=0, seq=1, recommend=()), 0.1)
    out = root.handle_message(B, Join(slots=9), 0.2)  # C relays: no preemption, go below
    assert sends(out) == [(B, Redirect(candidates=(C,)))]


def test_a_reparented_child_joins_its_new_parent_first() -> None:
    a = adopted(A, 0, (ROOT,))
    out = a.handle_message(ROOT, Reparent(to=C), 1.0)
    assert a.parent is None
    assert ParentChanged(parent=None) in out
    assert sends(out) == [(C, Join(slots=0))]


def test_no_adoption_of_an_ancestor_or_while_detached() -> None:
    b = adopted(B, 2, (ROOT, A))
    assert sends(b.handle_message(A, Join(slots=3), 0.0)) == [(A, Redirect(candidates=()))]
    lone = node(C, 2)
    assert sends(lone.handle_message(D, Join(slots=1), 0.0)) == [(D, Redirect(candidates=()))]


def test_an_unasked_adoption_is_declined() -> None:
    a = node(A, 1)
    a.start(0.0)
    out = a.handle_message(B, Adopt(path=(ROOT, B)), 0.1)
    assert sends(out) == [(B, Leave())]
    assert a.parent is None


def test_an_adoption_whose_path_holds_the_joiner_is_declined() -> None:
    a = node(A, 1)
    a.start(0.0)
    a.handle_message(ROOT, Redirect(candidates=(B,)), 0.0)
    out = a.handle_message(B, Adopt(path=(ROOT, A, B)), 0.1)
    assert sends(out) == [(B, Leave())]


def test_redirects_are_followed_and_an_empty_one_from_the_root_backs_off() -> None:
    a = node(A, 1, retry_backoff=2.0)
    a.start(0.0)
    out = a.handle_message(ROOT, Redirect(candidates=(B, C)), 0.0)
    assert sends(out) == [(B, Join(slots=1))]
    out = a.handle_message(B, Redirect(candidates=()), 0.1)
    assert sends(out) == [(C, Join(slots=1))]
    # C never answers: the join timer moves on, to nobody (the root was tried): back off.
    timer = next(x for x in out if isinstance(x, SetTimer))
    out = a.handle_timer(timer.timer, timer.at)
    assert sends(out) == []
    backoff = next(x for x in out if isinstance(x, SetTimer))
    assert backoff.at == pytest.approx(timer.at + 2.0)
    assert sends(a.handle_timer(backoff.timer, backoff.at)) == [(ROOT, Join(slots=1))]


def test_a_silent_parent_is_replaced_from_the_standby_list() -> None:
    b = adopted(B, 1, (ROOT, A), peer_timeout=1.5)
    b.handle_message(A, Heartbeat(seq=3, path=(ROOT, A), standby=(ROOT, C)), 0.2)
    out = b.handle_timer(TICK, 1.0)
    assert (A, Status(slots=1, children=(), free=1, seq=-1, recommend=())) in sends(out)
    out = b.handle_timer(TICK, 2.0)
    assert b.parent is None
    assert ParentChanged(parent=None) in out
    parallel = Join(slots=1, free_slot_only=True)
    assert sends(out) == [(ROOT, parallel), (C, parallel)]  # at once, free slots only


def test_a_failed_link_to_the_parent_starts_the_repair_at_once() -> None:
    b = adopted(B, 1, (ROOT, A))
    b.handle_message(A, Heartbeat(seq=3, path=(ROOT, A), standby=(C, ROOT)), 0.2)
    out = b.handle_link_down(A, 0.3)
    parallel = Join(slots=1, free_slot_only=True)
    assert sends(out) == [(C, parallel), (ROOT, parallel)]


def test_path_changes_reach_the_children_at_once_and_cycles_are_broken() -> None:
    b = adopted(B, 1, (ROOT, A))
    b.handle_message(C, Join(slots=0), 0.0)
    out = b.handle_message(A, Heartbeat(seq=0, path=(ROOT, D, A), standby=()), 0.1)
    assert (C, Heartbeat(seq=-1, path=(ROOT, D, A, B), standby=(A,))) in sends(out)
    out = b.handle_message(A, Heartbeat(seq=0, path=(ROOT, B, A), standby=()), 0.2)
    assert (A, Leave()) in sends(out)
    assert b.parent is None


def test_children_leave_a_parent_detached_longer_than_the_orphan_grace() -> None:
    b = adopted(B, 1, (ROOT, A), orphan_grace=3.0)
    b.handle_message(A, Heartbeat(seq=0, path=(), standby=()), 1.0)
    assert not b.attached
    b.handle_message(A, Heartbeat(seq=0, path=(), standby=()), 3.5)
    assert b.parent == A
    b.handle_message(A, Heartbeat(seq=0, path=(), standby=()), 4.1)
    out = b.handle_timer(TICK, 4.2)
    assert (A, Leave()) in sends(out)
    assert b.parent is None


def test_a_stalled_child_blames_a_parent_that_is_ahead_and_reports_it() -> None:
    c = adopted(C, 1, (ROOT, A, B), stall_timeout=1.0, blame_lag=5)
    c.chunk(10, 0.0)
    c.handle_message(B, Heartbeat(seq=10, path=(ROOT, A, B), standby=(A, D)), 0.0)  # with Adopt
    c.handle_message(B, Heartbeat(seq=40, path=(ROOT, A, B), standby=(A, D)), 0.1)
    out = c.handle_timer(TICK, 1.0)  # stalled, but B has held chunks C lacks for 0.9 s
    assert c.parent == B
    c.handle_message(B, Heartbeat(seq=40, path=(ROOT, A, B), standby=(A, D)), 1.0)
    out = c.handle_timer(TICK, 1.2)
    repair = Join(slots=1, have=10, free_slot_only=True)
    assert sends(out)[:4] == [(A, StallReport(parent=B, seq=10)), (B, Leave()),
                              (A, repair), (D, repair)]
    assert c.is_banned(B, 1.2)


def test_a_stall_upstream_is_not_blamed_on_the_parent() -> None:
    c = adopted(C, 1, (ROOT, A, B), stall_timeout=1.0, upstream_grace=4.0)
    c.chunk(10, 0.0)
    c.handle_message(B, Heartbeat(seq=10, path=(ROOT, A, B), standby=()), 1.0)
    out = c.handle_timer(TICK, 1.5)
    assert c.parent == B
    assert [m for _, m in sends(out) if isinstance(m, (StallReport, Leave))] == []
    # After the upstream grace it reports anyway (the parent may lie about its
    # progress), but stays: the grandparent decides.
    c.handle_message(B, Heartbeat(seq=10, path=(ROOT, A, B), standby=()), 4.4)
    out = c.handle_timer(TICK, 4.5)
    assert (A, StallReport(parent=B, seq=10)) in sends(out)
    assert c.parent == B


def grandparent_with(children_of_b: tuple[PeerId, ...], seq: int) -> RelayTree:
    a = adopted(A, 2, (ROOT,))
    a.chunk(seq, 0.0)
    a.handle_message(B, Join(slots=3), 0.0)
    a.handle_message(B, Status(slots=3, children=children_of_b, free=0, seq=seq,
                               recommend=()), 0.1)
    return a


def test_the_grandparent_evicts_on_reports_from_half_of_the_parents_children() -> None:
    a = grandparent_with((C, D, E), seq=50)
    assert sends(a.handle_message(C, StallReport(parent=B, seq=10), 1.0)) == []
    out = a.handle_message(D, StallReport(parent=B, seq=11), 1.1)
    assert (B, Leave(evicted=True)) in sends(out)
    assert Evicted(peer=B) in out and CloseLink(peer=B) in out
    assert B not in a.children
    assert sends(a.handle_message(B, Join(slots=3), 1.2)) == [(B, Redirect(candidates=()))]


def test_reports_that_do_not_check_out_are_ignored() -> None:
    a = grandparent_with((C,), seq=12)
    # The grandparent lacks the chunks too: the stall is above it.
    assert a.handle_message(C, StallReport(parent=B, seq=10), 1.0) == []
    # Not one of B's children.
    a.chunk(100, 1.0)
    assert a.handle_message(D, StallReport(parent=B, seq=10), 1.0) == []
    assert B in a.children
    # B's own Status shows it holds what C lacks, and it is being fed.
    a.handle_message(B, Status(slots=3, children=(C,), free=0, seq=100, recommend=()), 1.0)
    assert Evicted(peer=B) in a.handle_message(C, StallReport(parent=B, seq=10), 1.0)


def test_silent_children_are_dropped() -> None:
    root = node(ROOT, 2, peer_timeout=1.5)
    root.handle_message(A, Join(slots=1), 0.0)
    root.handle_message(B, Join(slots=1), 0.0)
    root.handle_message(B, Status(slots=1, children=(), free=1, seq=0, recommend=()), 1.0)
    out = root.handle_timer(TICK, 2.0)
    assert list(root.children) == [B]
    assert CloseLink(peer=A) in out


def test_leaving_tells_parent_and_children_and_ends_the_core() -> None:
    b = adopted(B, 1, (ROOT, A))
    b.handle_message(C, Join(slots=0), 0.0)
    out = b.leave(1.0)
    assert sorted(sends(out)) == sorted([(A, Leave()), (C, Leave())])
    assert b.handle_message(D, Join(slots=0), 1.1) == []
    assert b.handle_timer(TICK, 1.5) == []


def test_bad_configuration_and_slots_are_refused() -> None:
    with pytest.raises(StreamUsageError):
        TreeConfig(tick_interval=0)
    with pytest.raises(StreamUsageError):
        TreeConfig(tick_interval=1.0, peer_timeout=0.5)
    with pytest.raises(StreamUsageError):
        TreeConfig(standby_size=0)
    with pytest.raises(StreamUsageError):
        RelayTree(A, ROOT, 65, random.Random(0))


def test_a_late_adopt_from_an_earlier_candidate_is_taken_and_the_pending_one_told() -> None:
    """Over a slow link an answer may come after the join timeout moved on; before, the
    viewer refused it and could loop forever between slow candidates."""
    c = node(C, 1, join_timeout=0.5)
    out = c.start(0.0)
    out = c.handle_message(ROOT, Redirect(candidates=(A, B)), 0.1)  # Join to A
    assert sends(out) == [(A, Join(slots=1))]  # a newcomer asks one peer at a time
    timer = next(a.timer for a in out if isinstance(a, SetTimer))
    out = c.handle_timer(timer, 0.7)  # A is slow: Join to B
    assert sends(out) == [(B, Join(slots=1))]
    out = c.handle_message(A, Adopt(path=(ROOT, A)), 0.9)
    assert c.parent == A
    assert (B, Leave()) in sends(out)
    assert c.handle_message(B, Adopt(path=(ROOT, B)), 1.0) and c.parent == A


def test_a_detached_node_lets_a_child_that_asks_again_go_instead_of_adopting_without_a_path(
) -> None:
    """Before, it answered with ``Adopt(path=())``, which no decoder accepts (a path
    holds at least the sender): the child dropped the link as a protocol breach."""
    from taiinet.stream import codec

    b = adopted(B, 2, (ROOT, A))
    b.handle_message(C, Join(slots=0), 0.0)
    b.handle_link_down(A, 0.1)  # B is detached, C still its child
    assert not b.attached and C in b.children
    out = b.handle_message(C, Join(slots=0, have=4), 0.2)
    for _peer, message in sends(out):
        codec.decode(codec.encode(bytes(32), message))  # every message is valid
    assert sends(out) == [(C, Redirect(candidates=()))]
    assert C not in b.children


# --- blame lands on the peer that withholds data (seed 0, 10,000 viewers: 7 honest
# viewers were evicted before) -------------------------------------------------


def test_a_newcomer_does_not_blame_a_parent_stalled_upstream_for_chunks_it_held_before() -> None:
    """A newcomer is owed no backfill: its parent, holding chunk 35 when it adopted it
    and stalled since (its own parent is slow), withholds nothing.  Before, the
    newcomer (seq -1) blamed it (35 >= -1 + blame_lag), reported it and banned it,
    and the grandparent evicted the honest parent."""
    c = adopted(C, 1, (ROOT, A, B), stall_timeout=1.0, blame_lag=5)
    c.handle_message(B, Heartbeat(seq=35, path=(ROOT, A, B), standby=(A,)), 0.0)
    for t in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        c.handle_message(B, Heartbeat(seq=35, path=(ROOT, A, B), standby=(A,)), t)
        out = c.handle_timer(TICK, t + 0.01)
        assert [m for _, m in sends(out) if isinstance(m, (StallReport, Leave))] == []
    assert c.parent == B and not c.is_banned(B, 3.1)
    # Once B has held chunks it does not relay for the stall timeout, C blames it.
    c.handle_message(B, Heartbeat(seq=41, path=(ROOT, A, B), standby=(A,)), 3.2)
    c.handle_message(B, Heartbeat(seq=48, path=(ROOT, A, B), standby=(A,)), 3.7)
    out = c.handle_timer(TICK, 4.0)
    assert c.parent == B
    c.handle_message(B, Heartbeat(seq=60, path=(ROOT, A, B), standby=(A,)), 4.2)
    out = c.handle_timer(TICK, 4.3)
    assert (A, StallReport(parent=B, seq=-1)) in sends(out) and c.parent is None


def test_a_stall_that_began_under_a_detached_parent_is_not_reported_at_once() -> None:
    """C stalled while its parent B repaired; when B is adopted again the clock starts
    over, so C does not report B to its new grandparent before B could deliver."""
    c = adopted(C, 1, (ROOT, A, B), stall_timeout=1.0, upstream_grace=4.0,
                peer_timeout=10.0)
    c.chunk(10, 0.0)
    c.handle_message(B, Heartbeat(seq=10, path=(ROOT, A, B), standby=()), 0.0)
    c.handle_message(B, Heartbeat(seq=10, path=(), standby=()), 0.5)  # B detached
    c.handle_message(B, Heartbeat(seq=10, path=(ROOT, D, B), standby=()), 2.9)  # B re-adopted
    out = c.handle_timer(TICK, 5.0)
    assert [m for _, m in sends(out) if isinstance(m, StallReport)] == []
    c.handle_message(B, Heartbeat(seq=10, path=(ROOT, D, B), standby=()), 6.5)
    out = c.handle_timer(TICK, 7.0)
    assert (D, StallReport(parent=B, seq=10)) in sends(out)


def test_a_grandparent_that_feeds_no_child_does_not_evict_on_a_report() -> None:
    """The sim's free-rider F (it takes chunks, relays none, runs the honest core)
    judged its honest child H, stalled by F itself, on H's child's report and evicted
    H.  Now a report needs evidence that the grandparent delivers: a child of its own
    whose Status shows the chunks the reporter lacks, rising lately."""
    a = grandparent_with((C,), seq=0)
    a.handle_message(B, Status(slots=3, children=(C,), free=0, seq=2, recommend=()), 0.5)
    a.chunk(80, 6.0)  # A gets the stream; B, its only child, gets none of it
    a.handle_message(B, Status(slots=3, children=(C,), free=0, seq=2, recommend=()), 6.0)
    out = a.handle_message(C, StallReport(parent=B, seq=-1), 6.1)
    assert Evicted(peer=B) not in out and B in a.children


def test_a_child_hiding_its_progress_is_evicted_when_its_siblings_show_delivery() -> None:
    a = grandparent_with((C,), seq=0)
    a.handle_message(D, Join(slots=1), 0.0)
    a.chunk(80, 6.0)
    a.handle_message(D, Status(slots=1, children=(), free=1, seq=80, recommend=()), 6.0)
    a.handle_message(B, Status(slots=3, children=(C,), free=0, seq=0, recommend=()), 6.0)
    out = a.handle_message(C, StallReport(parent=B, seq=-1), 6.1)
    assert Evicted(peer=B) in out


# --- repairs ask several standby peers at once ----------------------------------------


def orphan(**config: object) -> tuple[RelayTree, list[Action]]:
    """B under A with standby (ROOT, C, D, E), whose link to A just failed."""
    b = adopted(B, 2, (ROOT, A), **config)
    b.handle_message(A, Heartbeat(seq=3, path=(ROOT, A), standby=(ROOT, C, D, E)), 0.2)
    return b, b.handle_link_down(A, 0.3)


def test_a_repair_asks_join_fanout_standby_peers_at_once_and_takes_the_first_adoption() -> None:
    b, out = orphan(join_fanout=3)
    parallel = Join(slots=2, have=-1, free_slot_only=True)
    assert sends(out) == [(ROOT, parallel), (C, parallel), (D, parallel)]
    out = b.handle_message(C, Adopt(path=(ROOT, C)), 0.35)
    assert b.parent == C
    # Every other peer still asked is released, so none holds a slot for B.
    assert sorted(sends(out)[:2]) == sorted([(ROOT, Leave()), (D, Leave())])
    # A late adoption is declined with Leave too; stale timers do nothing.
    assert sends(b.handle_message(D, Adopt(path=(ROOT, D)), 0.4)) == [(D, Leave())]
    for attempt in range(20):
        assert b.handle_timer(JoinTimer(attempt=attempt), 0.9) == []
    assert b.parent == C


def test_a_redirect_or_timeout_in_a_repair_frees_a_place_for_the_next_candidate() -> None:
    b, out = orphan(join_fanout=2)
    assert [p for p, _ in sends(out)] == [ROOT, C]
    timers = {a.timer.attempt: a for a in out if isinstance(a, SetTimer)
              and isinstance(a.timer, JoinTimer)}
    out = b.handle_message(ROOT, Redirect(candidates=(F,)), 0.35)
    parallel = Join(slots=2, have=-1, free_slot_only=True)
    assert sends(out) == [(F, parallel)]  # a redirect's candidates go first
    out = b.handle_timer(timers[max(timers)].timer, 0.8)  # C never answered
    assert sends(out) == [(D, parallel)]
    # C answers late: still taken (it was asked in this round); F and D released.
    out = b.handle_message(C, Adopt(path=(ROOT, C)), 0.9)
    assert b.parent == C and sorted(sends(out)[:2]) == sorted([(F, Leave()), (D, Leave())])


def test_a_parent_freed_by_a_parallel_joiner_gives_the_slot_back() -> None:
    """The other half of the rule: a node that adopted a joiner which went elsewhere
    drops it on its Leave, and the slot adopts the next joiner."""
    c = adopted(C, 1, (ROOT,))
    c.handle_message(B, Join(slots=2, have=3), 0.3)
    assert list(c.children) == [B]
    c.handle_message(B, Leave(), 0.4)
    assert c.children == {}
    assert sends(c.handle_message(D, Join(slots=0), 0.5))[0] == (D, Adopt(path=(ROOT, C)))


def test_a_join_beside_others_takes_only_a_free_slot_and_displaces_nobody() -> None:
    """Before, a repairing relay's parallel Joins each made a full, ranked parent
    give it its weakest child's place (``Reparent``); it then went to one of them, and
    the others had displaced a child for nothing (2,000 viewers, seed 0: 113
    Reparents and 4x the parent losses of one Join at a time)."""
    a = adopted(A, 1, (ROOT,))
    a.handle_message(C, Join(slots=0), 0.0)
    out = a.handle_message(B, Join(slots=3, free_slot_only=True), 0.1)
    assert [m for _, m in sends(out)] == [Redirect(candidates=())]
    assert list(a.children) == [C]
    out = a.handle_message(B, Join(slots=3), 0.2)  # alone: it may take C's place
    assert (C, Reparent(to=B)) in sends(out) and list(a.children) == [B]
