"""Plumtree's lazy queue: routine ``IHave``s held per link and sent together."""

from __future__ import annotations

import random

from taiinet.core import Send, SetTimer
from taiinet.overlay.actions import Action, LazyFlushTimer
from taiinet.overlay.config import PlumtreeConfig
from taiinet.overlay.lazy import LazyQueue
from taiinet.overlay.messages import Gossip, IHave, Prune
from taiinet.overlay.plumtree import Plumtree
from taiinet.sim.network import sim_peer_ids

PEER, OTHER = sim_peer_ids(2)


def ihave(i: int) -> IHave:
    return IHave(message_id=b"m%d" % i, hops=1)


def sent(actions: list[Action]) -> list[object]:
    return [a.message for a in actions if isinstance(a, Send)]


def test_ihaves_wait_for_the_delay_then_go_together() -> None:
    queue = LazyQueue(PlumtreeConfig(lazy_delay=0.05, lazy_interval=0.25))
    out: list[Action] = []
    queue.announce(PEER, ihave(1), 1.0, out)
    queue.announce(PEER, ihave(2), 1.01, out)
    assert out == [SetTimer(at=1.05, timer=LazyFlushTimer(peer=PEER))]  # one timer
    assert queue.handle_timer(LazyFlushTimer(peer=PEER), 1.05) != []
    # The next ones wait for the link's interval since that flush.
    out = []
    queue.announce(PEER, ihave(3), 1.1, out)
    assert out == [SetTimer(at=1.3, timer=LazyFlushTimer(peer=PEER))]
    assert sent(queue.handle_timer(LazyFlushTimer(peer=PEER), 1.3)) == [ihave(3)]


def test_a_full_batch_goes_at_once_and_leaves_its_timer_stale() -> None:
    queue = LazyQueue(PlumtreeConfig(lazy_delay=0.05, lazy_batch=3))
    out: list[Action] = []
    for i in range(3):
        queue.announce(PEER, ihave(i), 0.0, out)
    assert sent(out) == [ihave(0), ihave(1), ihave(2)]
    assert queue.handle_timer(LazyFlushTimer(peer=PEER), 0.05) == []  # stale


def test_links_are_paced_apart_and_a_gone_neighbour_is_forgotten() -> None:
    queue = LazyQueue(PlumtreeConfig(lazy_delay=0.05))
    out: list[Action] = []
    queue.announce(PEER, ihave(1), 0.0, out)
    queue.announce(OTHER, ihave(2), 0.0, out)
    queue.forget(PEER)
    assert queue.held(PEER) == 0 and queue.held(OTHER) == 1
    assert queue.handle_timer(LazyFlushTimer(peer=PEER), 0.05) == []
    assert sent(queue.handle_timer(LazyFlushTimer(peer=OTHER), 0.05)) == [ihave(2)]


def test_no_delay_means_no_queue() -> None:
    queue = LazyQueue(PlumtreeConfig(lazy_delay=0))
    out: list[Action] = []
    queue.announce(PEER, ihave(1), 0.0, out)
    assert out == [Send(peer=PEER, message=ihave(1), lazy=True)]


def test_plumtree_holds_its_routine_ihaves_in_the_queue() -> None:
    me = sim_peer_ids(3)[2]
    tree = Plumtree(me, random.Random(1), PlumtreeConfig(origin_trees=0, lazy_delay=0.05))
    tree.neighbor_up(PEER, 0.0)
    tree.neighbor_up(OTHER, 0.0)
    tree.handle_message(OTHER, Prune(), 0.0)  # OTHER is lazy now
    out = tree.broadcast(b"m1", b"payload", 1.0)
    assert [(a.peer, type(a.message)) for a in out if isinstance(a, Send)] == [(PEER, Gossip)]
    [timer] = [a for a in out if isinstance(a, SetTimer)]
    assert timer == SetTimer(at=1.05, timer=LazyFlushTimer(peer=OTHER))
    flushed = tree.handle_timer(timer.timer, 1.05)
    assert flushed == [Send(peer=OTHER, message=IHave(message_id=b"m1", hops=1))]
