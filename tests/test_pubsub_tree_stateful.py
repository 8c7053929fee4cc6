"""Hypothesis stateful model of the stable-tree router: the contract, exactly once.

8 routers on a seeded simulated network whose links have widely spread
delays (log-normal, sigma 1: adversarial orders across links) and may
duplicate messages; each link stays FIFO, as the contract assumes of real
links (every message through the codecs).  Rules
interleave subscriptions, unsubscriptions, publications, link failures,
partitions (which reshape the tree), crashes and late joiners (a node
that starts, joins and publishes at once, as ``taiinet pub`` does), each
followed by a short run, so documents are in flight while interest and the tree move.  ``check``
then lets the network be quiet for ``QUIET`` seconds and asserts the
contract (docs/pubsub.md section 1) for every publication since the last check:
every subscription open from the publication to now, at a live node in the
publisher's component, whose query matches, got the document exactly once;
and at any time nothing is delivered twice, nor to a subscription that does
not match.  Settle is 0: publications follow subscription changes at once.
"""

from __future__ import annotations

from collections.abc import Hashable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from taiinet.pubsub.query import Query
from taiinet.sim.network import LinkModel
from tests.pubsub_harness import PubsubNet

NODES = 8
#: Nodes that start only when a rule starts them (late joiners, one-shot publishers).
LATE = 3
SUBSCRIPTIONS = {
    "A": {"topic": "a"},
    "AB": {"topic": {"$in": ["a", "b"]}},
    "big": {"size": {"$gte": 5}},
    "all": {},
}
#: Quiet seconds before a check: the tree convergence bound of the contract (T_quiet).
QUIET = 10.0
#: Most simulated seconds of churn between checks, so every publication is
#: checked well within the retention D (30 s) of the contract.
MAX_CHURN = 8.0

nodes = st.integers(0, NODES + LATE - 1)
steps = st.sampled_from((0.0, 0.01, 0.05, 0.2, 0.5))


def component(net: PubsubNet, start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for peer in net.routers[todo.pop()].active_view:
            if peer not in seen and peer not in net.network.crashed:
                seen.add(peer)
                todo.append(peer)
    return seen


class TreeModel(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16), duplication=st.sampled_from((0.0, 0.2)),
                warm=st.sampled_from((0.0, 5.0)))
    def setup(self, seed: int, duplication: float, warm: float) -> None:
        link = LinkModel(median_delay=0.02, delay_sigma=1.0, max_delay=0.3,
                         duplication=duplication)
        self.net = PubsubNet(NODES + LATE, seed, link=link, late=LATE)
        self.subs: dict[str, dict[str, Query]] = {p: {} for p in self.net.ids}
        #: (node, subscription) -> time it was last (re)opened.
        self.opened: dict[tuple[str, str], float] = {}
        self.crashed: set[str] = set()
        #: Publications since the last check: (message id, publisher, document, time).
        self.pending: list[tuple[bytes, str, dict[str, object], float]] = []
        self.churn = 0.0
        self.checked = 0
        self.net.run(warm)

    def _live(self, index: int) -> str | None:
        node = self.net.ids[index]
        return None if node in self.crashed or index >= self.net.started else node

    def _run(self, seconds: float) -> None:
        self.net.run(seconds)
        self.churn += seconds
        if self.churn >= MAX_CHURN:
            self._check()

    @rule(index=nodes, name=st.sampled_from(sorted(SUBSCRIPTIONS)), step=steps)
    def subscribe(self, index: int, name: str, step: float) -> None:
        node = self._live(index)
        if node is not None:
            self.net.subscribe(node, name, SUBSCRIPTIONS[name])
            if name not in self.subs[node]:
                self.opened[(node, name)] = self.net.loop.now
            self.subs[node][name] = Query(SUBSCRIPTIONS[name])
            self._run(step)

    @rule(index=nodes, name=st.sampled_from(sorted(SUBSCRIPTIONS)), step=steps)
    def unsubscribe(self, index: int, name: str, step: float) -> None:
        node = self._live(index)
        if node is not None:
            self.net.unsubscribe(node, name)
            self.subs[node].pop(name, None)
            self.opened.pop((node, name), None)
            self._run(step)

    @rule(index=nodes, pick=st.integers(0, 10), step=steps)
    def fail_link(self, index: int, pick: int, step: float) -> None:
        node = self._live(index)
        if node is None:
            return
        active = self.net.routers[node].active_view
        if active:
            peer = active[pick % len(active)]
            now = self.net.loop.now
            self.net.apply(node, self.net.routers[node].handle_link_down(peer, now))
            self.net.apply(peer, self.net.routers[peer].handle_link_down(node, now))
            self._run(step)

    @rule(index=nodes, step=st.sampled_from((0.5, 2.0)))
    def isolate_for_a_while(self, index: int, step: float) -> None:
        """Cut one node off (its links fail), then heal: the tree reshapes twice."""
        node = self._live(index)
        if node is not None:
            self.net.network.partition([[node]])
            self._run(step)
            self.net.network.heal()
            self._run(0.05)

    @rule(index=nodes, step=steps)
    def crash(self, index: int, step: float) -> None:
        node = self._live(index)
        if node is not None and len(self.crashed) < 2:
            self.crashed.add(node)
            self.net.network.crash(node)
            self._run(step)

    @rule(index=nodes, topic=st.sampled_from(("a", "b", "c")), size=st.integers(0, 9),
          step=steps)
    def publish(self, index: int, topic: str, size: int, step: float) -> None:
        node = self._live(index)
        if node is None:
            return
        document = {"topic": topic, "size": size, "seq": len(self.pending) + 1000 * self.checked}
        mid = self.net.publish(node, document)
        self.pending.append((mid, node, document, self.net.loop.now))
        self._run(step)

    @rule(topic=st.sampled_from(("a", "b", "c")), size=st.integers(0, 9), step=steps)
    def join_and_publish(self, topic: str, size: int, step: float) -> None:
        """A late joiner publishes as soon as it is started (it may have no neighbour yet)."""
        if self.net.started < len(self.net.ids):
            node = self.net.start_late()
            document = {"topic": topic, "size": size,
                        "seq": len(self.pending) + 1000 * self.checked}
            self.pending.append((self.net.publish(node, document), node, document,
                                 self.net.loop.now))
            self._run(step)

    @rule()
    def quiet_then_check(self) -> None:
        self._check()

    def _check(self) -> None:
        self.net.run(QUIET)
        for mid, publisher, document, at in self.pending:
            got = self.net.deliveries_of(mid)  # asserts exactly once per node
            if publisher in self.crashed:
                continue
            reachable = component(self.net, publisher)
            for node in reachable:
                promised = {name for name, q in self.subs[node].items()
                            if q.matches(document) and self.opened[(node, name)] <= at}
                delivered: set[Hashable] = set(got.get(node, ()))
                assert promised <= delivered, (node, document, promised, delivered)
        self.pending.clear()
        self.churn = 0.0
        self.checked += 1

    @invariant()
    def deliveries_only_match(self) -> None:
        net = getattr(self, "net", None)
        seen: set[tuple[str, bytes]] = set()
        for node, mid, subs, document in net.deliveries if net is not None else ():
            assert (node, mid) not in seen, "delivered twice"
            seen.add((node, mid))
            assert subs
            for name in subs:
                assert Query(SUBSCRIPTIONS[str(name)]).matches(document), (node, name)

    def teardown(self) -> None:
        if getattr(self, "net", None) is not None and self.pending:
            self._check()


TreeModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30,
                                       deadline=None)
test_tree_model = TreeModel.TestCase
