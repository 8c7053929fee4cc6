"""Simulation of the overlay (HyParView + Plumtree) at thousands of nodes.

The scenario is the one of the Plumtree paper: nodes join one by one through a
random live contact, the overlay stabilises, half of the broadcasts are sent
from random nodes, a fraction of the nodes crash at once, then the other half
is sent.  Every node runs the real ``taiinet.overlay.Overlay`` core; the
simulator is only its driver.  Messages are passed as domain objects (or,
with ``wire_codec``, encoded and decoded through protobuf on every hop).

Per broadcast it measures reliability (share of the nodes live when it was
sent that delivered it), RMR (relative message redundancy: payload messages
received / (nodes delivered - 1) - 1; IHave and control messages are counted
apart) and the last delivery hop.  Same config, same seed: same result.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from taiinet.errors import LocalProtocolError
from taiinet.overlay import codec
from taiinet.overlay.actions import Deliver
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.messages import Gossip, IHave, OverlayMessage
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness, Progress
from taiinet.sim.network import LinkModel, sim_peer_ids
from taiinet.wire.peer_id import PeerId

__all__ = ["Adversary", "OverlaySimConfig", "OverlaySimResult", "Progress", "simulate",
           "simulate_overlay"]


class Adversary(Protocol):
    """Peers without an honest core (``taiinet.sim.eclipse``): gets their messages."""

    def receive(self, src: PeerId, dst: PeerId, message: OverlayMessage) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlaySimConfig:
    nodes: int = 1000
    #: Share of the nodes that crash after the first half of the broadcasts.
    fail: float = 0.0
    messages: int = 50
    seed: int = 0
    #: Simulated seconds between two joins.
    join_interval: float = 0.002
    #: Simulated seconds between the last join and the first broadcast.
    stabilize: float = 20.0
    #: Simulated seconds between two broadcasts (and around the crash).
    message_interval: float = 2.0
    payload_size: int = 256
    #: Publishers: 0 sends each broadcast from a random live node; k > 0 picks
    #: k publishers at the first broadcast and sends each broadcast from a
    #: random live one of them (new ones are picked if all crashed).
    sources: int = 0
    link: LinkModel = field(default_factory=LinkModel)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    #: Encode and decode every message through the protobuf codec (slower).
    wire_codec: bool = False

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise LocalProtocolError("a simulation needs at least 2 nodes")
        if not 0.0 <= self.fail < 1.0:
            raise LocalProtocolError("--fail must be in [0, 1)")
        if self.messages < 0:
            raise LocalProtocolError("--messages must be >= 0")
        if not 0 <= self.sources <= self.nodes:
            raise LocalProtocolError("--sources must be in [0, nodes]")
        if self.payload_size < 0:
            raise LocalProtocolError("payload size must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageResult:
    index: int
    after_failure: bool
    reliability: float
    rmr: float
    ldh: int
    delivered: int
    live: int
    payloads: int
    ihaves: int
    #: Broadcasts sent so far by this message's origin, this one included
    #: (2: the message that builds the origin's own tree).
    origin_rank: int = 1

    def as_json(self) -> dict[str, object]:
        return {"index": self.index, "after_failure": self.after_failure,
                "reliability": round(self.reliability, 6), "rmr": round(self.rmr, 6),
                "ldh": self.ldh}


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlaySimResult:
    config: OverlaySimConfig
    messages: list[MessageResult]
    live_nodes: int
    #: Share of live nodes in the largest connected component of the active
    #: views, right after the crash and at the end of the run.
    component_at_failure: float
    component_at_end: float
    #: Control messages received (membership, Graft, Prune) during the broadcasts.
    control_messages: int
    events: int
    simulated_seconds: float

    def summary(self) -> dict[str, object]:
        def mean(values: list[float]) -> float | None:
            return round(sum(values) / len(values), 6) if values else None

        before = [m for m in self.messages if not m.after_failure]
        after = [m for m in self.messages if m.after_failure]
        return {
            "nodes": self.config.nodes,
            "fail": self.config.fail,
            "messages": self.config.messages,
            "seed": self.config.seed,
            "live_nodes": self.live_nodes,
            "reliability_before": mean([m.reliability for m in before]),
            "reliability_after": mean([m.reliability for m in after]),
            "min_reliability": min((m.reliability for m in self.messages), default=0.0),
            "rmr_before": mean([m.rmr for m in before]),
            "rmr_after": mean([m.rmr for m in after]),
            "max_ldh": max((m.ldh for m in self.messages), default=0),
            "largest_component_at_failure": round(self.component_at_failure, 6),
            "largest_component_at_end": round(self.component_at_end, 6),
            "control_messages": self.control_messages,
            "events": self.events,
            "simulated_seconds": round(self.simulated_seconds, 3),
        }


class OverlaySimulation:
    """A scenario on the harness: one ``Overlay`` core per node."""

    def __init__(self, config: OverlaySimConfig) -> None:
        self.config = config
        master = random.Random(config.seed)
        self.rng = random.Random(master.getrandbits(64))
        self.loop = EventLoop()
        coded = config.wire_codec
        self.harness: Harness[Overlay] = Harness(
            self.loop, random.Random(master.getrandbits(64)), config.link,
            on_event=self._on_event, on_message=self._count, on_orphan=self._to_adversary,
            encode=codec.encode if coded else None, decode=codec.decode if coded else None)
        self.network = self.harness.network
        self.ids = sim_peer_ids(config.nodes)
        self.cores = self.harness.cores
        for peer in self.ids:
            self.cores[peer] = Overlay(peer, random.Random(master.getrandbits(64)),
                                       config.overlay)
        self.joined: list[PeerId] = []
        self.live: list[PeerId] = list(self.ids)
        self.publishers: list[PeerId] = []
        self._index: dict[bytes, int] = {}
        count = config.messages
        self._delivered = [0] * count
        self._live_at_send = [0] * count
        self._payloads = [0] * count
        self._ihaves = [0] * count
        self._ldh = [0] * count
        self._origin_rank = [1] * count
        self._sent_by: dict[PeerId, int] = {}
        self._control = 0
        self._after_failure_from = count // 2
        self._component_at_failure = 1.0
        #: Receives messages sent to ids that have no core (attackers).
        self.adversary: Adversary | None = None
        #: A node whose deliveries from others are logged (message index ->
        #: time), and the messages it sent itself.
        self.watched: PeerId | None = None
        self.watched_deliveries: dict[int, float] = {}
        self.watched_sent: set[int] = set()

    # --- what the harness shows us ----------------------------------------------

    def _on_event(self, node: PeerId, action: Any) -> None:
        if isinstance(action, Deliver):
            index = self._index.get(action.message_id)
            if index is not None:
                self._delivered[index] += 1
                if node == self.watched and action.sender is not None:
                    self.watched_deliveries[index] = self.loop.now
                if action.hops > self._ldh[index]:
                    self._ldh[index] = action.hops

    def _count(self, src: PeerId, dst: PeerId, message: OverlayMessage) -> None:
        if isinstance(message, Gossip | IHave):
            index = self._index.get(message.message_id)
            if index is not None:
                (self._payloads if isinstance(message, Gossip) else self._ihaves)[index] += 1
        elif self._index:
            self._control += 1

    def _to_adversary(self, src: PeerId, dst: PeerId, message: OverlayMessage) -> None:
        if self.adversary is not None:
            self.adversary.receive(src, dst, message)

    def _apply(self, node: PeerId, actions: list[Any]) -> None:
        self.harness.apply(node, actions)

    def _join(self, node: PeerId) -> None:
        now = self.loop.now
        core = self.cores[node]
        self._apply(node, core.start(now))
        if self.joined:
            contact = self.joined[self.rng.randrange(len(self.joined))]
            self._apply(node, core.join(contact, now))
        self.joined.append(node)

    def _broadcast(self, index: int) -> None:
        sources = self.config.sources
        if sources:
            crashed = self.network.crashed
            self.publishers = [p for p in self.publishers if p not in crashed]
            if not self.publishers:
                self.publishers = self.rng.sample(self.live, min(sources, len(self.live)))
            origin = self.publishers[self.rng.randrange(len(self.publishers))]
        else:
            origin = self.live[self.rng.randrange(len(self.live))]
        self._sent_by[origin] = self._origin_rank[index] = self._sent_by.get(origin, 0) + 1
        if origin == self.watched:
            self.watched_sent.add(index)
        mid = b"m%d" % index
        self._index[mid] = index
        self._live_at_send[index] = len(self.live)
        payload = (b"%d:" % index).ljust(self.config.payload_size, b".")
        self._apply(origin, self.cores[origin].broadcast(mid, payload, self.loop.now))

    def _crash(self) -> None:
        count = round(self.config.fail * len(self.ids))
        victims = self.rng.sample(self.live, count)
        for node in victims:
            self.network.crash(node)
        dead = set(victims)
        self.live = [n for n in self.live if n not in dead]
        self._component_at_failure = self.largest_component()

    # --- measuring -------------------------------------------------------------

    def largest_component(self) -> float:
        """Share of live nodes in the largest connected component of the active views."""
        adjacency: dict[PeerId, set[PeerId]] = {n: set() for n in self.live}
        for node in self.live:
            for peer in self.cores[node].active_view:
                if peer in adjacency:  # (neither crashed nor an attacker)
                    adjacency[node].add(peer)
                    adjacency[peer].add(node)
        best = 0
        seen: set[PeerId] = set()
        for start in self.live:
            if start in seen:
                continue
            seen.add(start)
            stack = [start]
            size = 0
            while stack:
                node = stack.pop()
                size += 1
                for peer in adjacency[node]:
                    if peer not in seen:
                        seen.add(peer)
                        stack.append(peer)
            best = max(best, size)
        return best / len(self.live) if self.live else 0.0

    # --- the scenario ------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> OverlaySimResult:
        cfg = self.config
        loop = self.loop
        for i, node in enumerate(self.ids):
            loop.schedule(i * cfg.join_interval, self._join, node)
        first = cfg.nodes * cfg.join_interval + cfg.stabilize
        half = cfg.messages // 2
        times = []
        for index in range(cfg.messages):
            # One interval gap around the crash: after it come the second half.
            gap = 1 if index >= half and cfg.fail > 0 else 0
            at = first + (index + gap) * cfg.message_interval
            times.append(at)
            loop.schedule(at, self._broadcast, index)
        if cfg.fail > 0:
            loop.schedule(first + half * cfg.message_interval, self._crash)
            self._after_failure_from = half
        else:
            self._after_failure_from = cfg.messages
        end = (times[-1] if times else first) + 3 * cfg.message_interval + 5.0
        self.harness.run(end, progress)
        return self._result(end)

    def _result(self, end: float) -> OverlaySimResult:
        results = []
        for index in range(self.config.messages):
            delivered = self._delivered[index]
            live = self._live_at_send[index]
            payloads = self._payloads[index]
            rmr = payloads / (delivered - 1) - 1 if delivered > 1 else 0.0
            results.append(MessageResult(
                index=index, after_failure=index >= self._after_failure_from,
                reliability=delivered / live if live else 0.0, rmr=rmr, ldh=self._ldh[index],
                delivered=delivered, live=live, payloads=payloads, ihaves=self._ihaves[index],
                origin_rank=self._origin_rank[index]))
        return OverlaySimResult(
            config=self.config, messages=results, live_nodes=len(self.live),
            component_at_failure=self._component_at_failure,
            component_at_end=self.largest_component(), control_messages=self._control,
            events=self.loop.events_run, simulated_seconds=end)


def simulate(config: OverlaySimConfig, progress: Progress | None = None) -> OverlaySimResult:
    """Run one overlay simulation scenario."""
    return OverlaySimulation(config).run(progress)


#: The name ``taiinet.sim`` exports.
simulate_overlay = simulate
