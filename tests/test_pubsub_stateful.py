"""Hypothesis stateful model of content-based routing on a small simulated network.

Random subscriptions, unsubscriptions, publications, link failures and crashes
on 8 routers linked by a seeded network (every message through the codecs).
Every document is delivered exactly once to every live node with matching
subscriptions, listing exactly those subscriptions, even when published only
``BEFORE`` seconds after the last subscription change (interest still moving:
the catch-up on interest widening repairs what stops short);
nothing is ever delivered for a subscription that does not match.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from taiinet.pubsub.query import Query
from tests.pubsub_harness import PubsubNet

NODES = 8
TOPICS = ("a", "b", "c")
SUBSCRIPTIONS = {
    "A": {"topic": "a"},
    "AB": {"topic": {"$in": ["a", "b"]}},
    "big": {"size": {"$gte": 5}},
    "all": {},
}
#: Simulated seconds for interest adverts and tree repairs to settle.
SETTLE = 6.0
#: Seconds a subscription change precedes a publication at least (the
#: subscription rules run this long, a publication runs at once): interest is
#: still moving when documents are published.  Failures and crashes are
#: followed by ``SETTLE`` (the overlay repairs its views and tree).
BEFORE = 0.1

nodes = st.integers(0, NODES - 1)


class PubsubModel(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16))
    def setup(self, seed: int) -> None:
        self.net = PubsubNet(NODES, seed)
        self.subs: dict[str, dict[str, Query]] = {p: {} for p in self.net.ids}
        self.crashed: set[str] = set()
        self.checked = 0
        self.net.run(SETTLE)

    def _live(self, index: int) -> str | None:
        node = self.net.ids[index]
        return None if node in self.crashed else node

    @rule(index=nodes, name=st.sampled_from(sorted(SUBSCRIPTIONS)))
    def subscribe(self, index: int, name: str) -> None:
        node = self._live(index)
        if node is not None:
            self.net.subscribe(node, name, SUBSCRIPTIONS[name])
            self.subs[node][name] = Query(SUBSCRIPTIONS[name])
            self.net.run(BEFORE)

    @rule(index=nodes, name=st.sampled_from(sorted(SUBSCRIPTIONS)))
    def unsubscribe(self, index: int, name: str) -> None:
        node = self._live(index)
        if node is not None:
            self.net.unsubscribe(node, name)
            self.subs[node].pop(name, None)
            self.net.run(BEFORE)

    @rule(index=nodes, pick=st.integers(0, 10))
    def fail_link(self, index: int, pick: int) -> None:
        node = self._live(index)
        if node is None:
            return
        active = self.net.routers[node].active_view
        if active:
            peer = active[pick % len(active)]
            now = self.net.loop.now
            self.net.apply(node, self.net.routers[node].handle_link_down(peer, now))
            self.net.apply(peer, self.net.routers[peer].handle_link_down(node, now))
            self.net.run(SETTLE)

    @rule(index=nodes)
    def crash(self, index: int) -> None:
        node = self._live(index)
        if node is not None and len(self.crashed) < 2:
            self.crashed.add(node)
            self.net.network.crash(node)
            self.net.run(SETTLE)

    @rule(index=nodes, topic=st.sampled_from(TOPICS), size=st.integers(0, 9))
    def publish(self, index: int, topic: str, size: int) -> None:
        node = self._live(index)
        if node is None:
            return
        # A sequence number: the same document published twice has the same id.
        document = {"topic": topic, "size": size, "seq": self.checked}
        mid = self.net.publish(node, document)
        self.net.run(SETTLE)
        got = self.net.deliveries_of(mid)
        expected = {}
        for peer, subs in self.subs.items():
            matching = sorted(name for name, q in subs.items() if q.matches(document))
            if matching and peer not in self.crashed:
                expected[peer] = tuple(sorted(matching, key=repr))
        # Nothing for non-matching subscriptions; the crashed may have got it before.
        assert {p: s for p, s in got.items() if p not in self.crashed} == expected
        self.checked += 1

    @invariant()
    def deliveries_only_match(self) -> None:
        net = getattr(self, "net", None)
        for node, _mid, subs, document in net.deliveries if net is not None else ():
            assert subs
            for name in subs:
                assert Query(SUBSCRIPTIONS[str(name)]).matches(document), (node, name)


PubsubModel.TestCase.settings = settings(max_examples=25, stateful_step_count=20)
test_pubsub_model = PubsubModel.TestCase
