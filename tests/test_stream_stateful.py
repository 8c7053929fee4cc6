"""A hypothesis model of the relay tree: random joins, crashes, free-riders and waits.

Every core is the real ``RelayTree``, driven by the stream simulator over the
seeded link model, with chunks flowing, and repairs asking 1 to 3 standby
peers at once (``join_fanout``).  After every step: no peer has more
children than its slots and the parent pointers hold no cycle.  After a quiet
spell with no free-rider left: every live viewer reaches the broadcaster
through parents that count it as a child, when the slots suffice for all,
and no peer holds a slot for a live child that went elsewhere (a parallel
join's losers were released).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from taiinet.sim.stream import StreamSimConfig, StreamSimulation
from taiinet.stream.config import TreeConfig
from taiinet.wire.peer_id import PeerId

POOL = 30


class TreeModel(RuleBasedStateMachine):
    sim: StreamSimulation

    @initialize(seed=st.integers(0, 2**16), root_slots=st.integers(1, 3),
                fanout=st.integers(1, 3))
    def start(self, seed: int, root_slots: int, fanout: int) -> None:
        self.sim = StreamSimulation(StreamSimConfig(
            viewers=POOL, seed=seed, root_slots=root_slots,
            tree=TreeConfig(join_fanout=fanout)))
        self.sim.begin()
        self.unused = list(self.sim.ids[1:])

    def live_viewers(self) -> list[PeerId]:
        return sorted(p for p in self.sim.live if p != self.sim.root)

    @precondition(lambda self: bool(self.unused))
    @rule(slots=st.lists(st.integers(0, 3), min_size=1, max_size=8))
    def join(self, slots: list[int]) -> None:
        for count in slots[:len(self.unused)]:
            self.sim.add_peer(self.unused.pop(0), count)

    @precondition(lambda self: bool(self.unused))
    @rule(slots=st.integers(1, 3))
    def join_free_rider(self, slots: int) -> None:
        self.sim.add_peer(self.unused.pop(0), slots, free_rider=True)

    @precondition(lambda self: bool(self.live_viewers()))
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        viewers = self.live_viewers()
        self.sim.crash(viewers[data.draw(st.integers(0, len(viewers) - 1))])

    @rule(seconds=st.floats(0.01, 3.0))
    def wait(self, seconds: float) -> None:
        self.sim.loop.run(until=self.sim.loop.now + seconds)

    @precondition(lambda self: len(self.live_viewers()) >= 4)
    @rule()
    def settle_and_check_reachability(self) -> None:
        sim = self.sim
        riders = [p for p in self.live_viewers() if sim.free_rider[sim.index[p]]]
        for rider in riders:  # free-riders leave; the tree must heal around them
            sim.crash(rider)
        sim.loop.run(until=sim.loop.now + 25.0)
        viewers = self.live_viewers()
        capacity = sim.config.root_slots + sum(sim.slots[sim.index[p]] for p in viewers)
        if capacity >= len(viewers):
            assert [p for p in viewers if not sim.reaches_root(p)] == []
        held_elsewhere = [(peer, child) for peer in sim.live
                          for child in sim.cores[peer].children
                          if child in sim.live and sim.cores[child].parent != peer]
        assert held_elsewhere == []

    @invariant()
    def nobody_above_its_slots(self) -> None:
        for peer in self.sim.live:
            core = self.sim.cores[peer]
            assert len(core.children) <= core.slots

    @invariant()
    def no_cycles(self) -> None:
        cores = self.sim.cores
        for peer in self.sim.live:
            seen = {peer}
            node = cores[peer].parent
            while node is not None and node in self.sim.live:
                assert node not in seen, f"cycle through {node}"
                seen.add(node)
                node = cores[node].parent


TreeModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30)
test_tree_model = TreeModel.TestCase
