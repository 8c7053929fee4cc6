"""Hypothesis stateful model of a small overlay: joins, message interleavings,
timers, crashes and broadcasts, with the invariants of HyParView and Plumtree.

Links are FIFO (as the transports are); hypothesis picks which link delivers
next, when timers fire and who crashes.  Strangers (ids with no core) send
any membership message they like to any node, claiming any peer ids, and
never answer: messages to them are dropped.
"""

from __future__ import annotations

import random
from collections import deque

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from taiinet.overlay import (
    Deliver,
    HyParViewConfig,
    MissingTimer,
    NeighborDown,
    NeighborUp,
    Overlay,
    OverlayConfig,
    PlumtreeConfig,
    ProbeLink,
    Send,
    SetTimer,
)
from taiinet.overlay.actions import Action, LazyFlushTimer, Timer
from taiinet.overlay.messages import (
    Disconnect,
    ForwardJoin,
    Join,
    MembershipMessage,
    Neighbor,
    NeighborReply,
    Shuffle,
    ShuffleReply,
)

NODES = 10
STRANGERS = ("s0", "s1", "s2")
CONFIG = OverlayConfig(membership=HyParViewConfig(active_size=3, passive_size=6, arwl=4, prwl=2,
                                                  shuffle_active=2, shuffle_passive=2))


class OverlayModel(RuleBasedStateMachine):
    config = CONFIG

    @initialize(seed=st.integers(0, 2**16))
    def setup(self, seed: int) -> None:
        self.now = 0.0
        self.ids = [f"p{i}" for i in range(NODES)]
        self.cores = {p: Overlay(p, random.Random(seed * 100 + i), self.config)
                      for i, p in enumerate(self.ids)}
        self.joined: list[str] = []
        self.crashed: set[str] = set()
        self.links: dict[tuple[str, str], deque[object]] = {}
        self.timers: dict[str, list[tuple[float, Timer]]] = {p: [] for p in self.ids}
        self.delivered: dict[tuple[str, bytes], int] = {}
        self.broadcasts = 0
        #: Each node's neighbours as its NeighborUp / NeighborDown events say.
        self.up: dict[str, set[str]] = {p: set() for p in self.ids}

    # --- plumbing ----------------------------------------------------------

    def apply(self, node: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                assert action.peer != node, "a node sent a message to itself"
                if action.peer not in self.cores:
                    continue  # a stranger: never answers
                if action.peer in self.crashed:
                    self.apply(node, self.cores[node].handle_link_down(action.peer, self.now))
                else:
                    self.links.setdefault((node, action.peer), deque()).append(action.message)
            elif isinstance(action, ProbeLink):
                if action.peer not in self.cores:
                    continue  # a stranger keeps its links open and silent
                if action.peer in self.crashed:
                    self.apply(node, self.cores[node].handle_link_down(action.peer, self.now))
                else:  # a live peer answers the Ping at once
                    self.cores[node].heard_from(action.peer, self.now)
            elif isinstance(action, SetTimer):
                self.timers[node].append((action.at, action.timer))
            elif isinstance(action, Deliver):
                key = (node, action.message_id)
                self.delivered[key] = self.delivered.get(key, 0) + 1
            elif isinstance(action, NeighborUp):
                assert action.peer not in self.up[node], "two NeighborUp in a row"
                self.up[node].add(action.peer)
            elif isinstance(action, NeighborDown):
                assert action.peer in self.up[node], "NeighborDown without NeighborUp"
                self.up[node].discard(action.peer)

    def deliver_one(self, key: tuple[str, str]) -> None:
        src, dst = key
        message = self.links[key].popleft()
        if not self.links[key]:
            del self.links[key]
        self.now += 0.001
        self.apply(dst, self.cores[dst].handle_message(src, message, self.now))  # type: ignore[arg-type]

    def live(self) -> list[str]:
        return [p for p in self.joined if p not in self.crashed]

    def drain(self) -> None:
        """Deliver everything in flight, firing missing-message timers, until quiet."""
        for _ in range(100_000):
            if self.links:
                self.deliver_one(min(self.links))
                continue
            due = [(at, p, t) for p in self.live() for at, t in self.timers[p]
                   if isinstance(t, MissingTimer | LazyFlushTimer)]
            if not due:
                return
            at, node, timer = min(due, key=lambda d: (d[0], d[1]))
            self.timers[node].remove((at, timer))
            self.now = max(self.now, at)
            self.apply(node, self.cores[node].handle_timer(timer, self.now))
        raise AssertionError("the overlay did not quiesce")

    # --- rules ---------------------------------------------------------------

    @rule(data=st.data())
    def join(self, data: st.DataObject) -> None:
        waiting = [p for p in self.ids if p not in self.joined]
        live = self.live()
        if not waiting or (self.joined and not live):
            return
        node = data.draw(st.sampled_from(waiting))
        self.apply(node, self.cores[node].start(self.now))
        if live:
            contact = data.draw(st.sampled_from(live))
            self.apply(node, self.cores[node].join(contact, self.now))
        self.joined.append(node)

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        if self.links:
            self.deliver_one(data.draw(st.sampled_from(sorted(self.links))))

    @rule(data=st.data())
    def fire_timer(self, data: st.DataObject) -> None:
        live = [p for p in self.live() if self.timers[p]]
        if not live:
            return
        node = data.draw(st.sampled_from(live))
        at, timer = min(self.timers[node], key=lambda t: t[0])
        self.timers[node].remove((at, timer))
        self.now = max(self.now, at)
        self.apply(node, self.cores[node].handle_timer(timer, self.now))

    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        live = self.live()
        if len(live) > 3 and len(self.crashed) < 3:
            self.crashed.add(data.draw(st.sampled_from(live)))
            for key in [k for k in self.links if self.crashed & set(k)]:
                del self.links[key]

    @rule(data=st.data())
    def stranger_sends(self, data: st.DataObject) -> None:
        live = self.live()
        if not live:
            return
        node = data.draw(st.sampled_from(live))
        names = st.sampled_from([*self.ids, *STRANGERS, "ghost"])
        message: MembershipMessage = data.draw(st.one_of(
            st.just(Join()), st.just(Disconnect()),
            st.builds(Neighbor, high_priority=st.booleans()),
            st.builds(NeighborReply, accepted=st.booleans()),
            st.builds(ForwardJoin, peer=names, ttl=st.integers(0, 255)),
            st.builds(Shuffle, origin=names, ttl=st.integers(0, 255),
                      peers=st.lists(names, max_size=12).map(tuple)),
            st.builds(ShuffleReply, peers=st.lists(names, max_size=12).map(tuple))))
        stranger = data.draw(st.sampled_from(STRANGERS))
        self.now += 0.001
        core = self.cores[node]
        before = (list(core.active_view), list(core.passive_view))
        walker = core.membership._may_walk(stranger)
        actions = core.handle_message(stranger, message, self.now)
        if isinstance(message, ForwardJoin | Shuffle) and not walker:
            # Walks from a non-neighbour are dropped: nothing changes, nothing is sent.
            assert actions == [] and (core.active_view, core.passive_view) == before
        self.apply(node, actions)

    @rule(data=st.data())
    def broadcast(self, data: st.DataObject) -> None:
        live = self.live()
        if live:
            node = data.draw(st.sampled_from(live))
            self.broadcasts += 1
            mid = b"b%d" % self.broadcasts
            self.apply(node, self.cores[node].broadcast(mid, b"payload", self.now))

    @rule(data=st.data())
    def quiesce_and_check(self, data: st.DataObject) -> None:
        """After quiet, views are symmetric and a broadcast reaches its whole component."""
        live = self.live()
        if not live:
            return
        # Let every live node notice crashed neighbours (keep-alive probes).
        for node in live:
            for peer in list(self.cores[node].active_view):
                if peer in self.crashed:
                    self.apply(node, self.cores[node].handle_link_down(peer, self.now))
        self.drain()
        for node in live:
            for peer in self.cores[node].active_view:
                if peer in self.cores and peer not in self.crashed:
                    assert node in self.cores[peer].active_view, f"{node}->{peer} not symmetric"
        origin = data.draw(st.sampled_from(live))
        self.broadcasts += 1
        mid = b"q%d" % self.broadcasts
        self.apply(origin, self.cores[origin].broadcast(mid, b"check", self.now))
        self.drain()
        for node in self.component(origin):
            assert self.delivered.get((node, mid)) == 1, f"{node} missed the broadcast"

    def component(self, start: str) -> set[str]:
        seen = {start}
        stack = [start]
        while stack:
            for peer in self.cores[stack.pop()].active_view:
                if peer not in seen and peer in self.cores and peer not in self.crashed:
                    seen.add(peer)
                    stack.append(peer)
        return seen

    # --- invariants ------------------------------------------------------------

    @invariant()
    def neighbour_events_follow_the_active_view(self) -> None:
        """The layers above follow the neighbours from events alone, never polling."""
        for node, core in getattr(self, "cores", {}).items():
            assert self.up[node] == set(core.active_view)

    @invariant()
    def views_are_bounded_and_clean(self) -> None:
        for node, core in getattr(self, "cores", {}).items():
            active, passive = core.active_view, core.passive_view
            assert node not in active and node not in passive
            assert len(set(active)) == len(active) and len(set(passive)) == len(passive)
            assert not set(active) & set(passive)
            assert len(active) <= self.config.membership.active_size
            assert len(passive) <= self.config.membership.passive_size
            membership = core.membership
            cfg = membership.config
            # Bookkeeping of the defences stays in step with the views, and bounded.
            # One record per neighbour, its times in order.
            for record in membership._neighbours.values():
                assert record.since <= record.last_heard
                assert record.probed_at is None or record.probed_at >= record.since
            assert set(membership._passive.sources) <= set(passive)
            per_source: dict[str, int] = {}
            for source in membership._passive.sources.values():
                per_source[source] = per_source.get(source, 0) + 1
            assert all(count <= cfg.passive_per_source for count in per_source.values())
            assert len(membership._recently_dropped) <= 2 * cfg.active_size
            assert len(membership._recent_joins) <= cfg.join_memory
            assert not set(membership._pending) & set(active)

    @invariant()
    def every_tree_splits_the_active_view_into_eager_and_lazy(self) -> None:
        for core in getattr(self, "cores", {}).values():
            tree = core.broadcast_core
            for origin in ["", *tree.origin_trees]:
                eager, lazy = tree.tree(origin)
                assert not set(eager) & set(lazy)
                assert set(eager) | set(lazy) == set(core.active_view)

    @invariant()
    def tree_links_are_eager(self) -> None:
        for core in getattr(self, "cores", {}).values():
            tree = core.broadcast_core
            assert tree.tree_links <= set(tree.eager)

    @invariant()
    def delivered_at_most_once(self) -> None:
        assert all(count == 1 for count in getattr(self, "delivered", {}).values())


OverlayModel.TestCase.settings = settings(max_examples=60, stateful_step_count=60)
test_overlay_model = OverlayModel.TestCase


class FloodPrefixModel(OverlayModel):
    """The same model with a flood prefix of 2 hops (the shared tree kept explicitly)."""

    config = OverlayConfig(membership=CONFIG.membership,
                           broadcast=PlumtreeConfig(flood_prefix=2))


FloodPrefixModel.TestCase.settings = settings(max_examples=60, stateful_step_count=60)
test_flood_prefix_model = FloodPrefixModel.TestCase
