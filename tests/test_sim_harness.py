"""The one simulation harness runs any core on the contract: a toy core shows each action."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from taiinet.core import CloseLink, NeighborUp, ProbeLink, Send, SetTimer
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness
from taiinet.sim.network import LinkModel, sim_peer_ids
from taiinet.wire.peer_id import PeerId

A, B, C = sim_peer_ids(3)


@dataclass(frozen=True)
class Noted:
    """The toy core's output event."""

    what: str


@dataclass
class Toy:
    """Answers "ping" with "pong", notes every input; ``plan`` is returned by ``start``."""

    peer: PeerId
    plan: list[object] = field(default_factory=list)
    log: list[tuple[str, object, float]] = field(default_factory=list)

    def start(self, now: float) -> list[object]:
        return self.plan

    def handle_message(self, peer: PeerId, message: str, now: float) -> list[object]:
        self.log.append(("message", (peer, message), now))
        if message == "ping":
            return [Send(peer=peer, message="pong"), Noted(what="pinged")]
        return []

    def handle_timer(self, timer: str, now: float) -> list[object]:
        self.log.append(("timer", timer, now))
        return [Noted(what=timer)]

    def handle_link_down(self, peer: PeerId, now: float) -> list[object]:
        self.log.append(("down", peer, now))
        return []

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[object]:
        return []

    def heard_from(self, peer: PeerId, now: float) -> None:
        self.log.append(("heard", peer, now))


def make(seed: int = 1) -> tuple[Harness[Toy], list[tuple[PeerId, object]]]:
    events: list[tuple[PeerId, object]] = []
    harness: Harness[Toy] = Harness(
        EventLoop(), random.Random(seed), LinkModel(median_delay=0.01, min_delay=0.01,
                                                    max_delay=0.01, failure_delay=0.5),
        on_event=lambda node, action: events.append((node, action)))
    for peer in (A, B, C):
        harness.add(peer, Toy(peer))
    return harness, events


def test_sends_timers_and_events_are_carried_out() -> None:
    harness, events = make()
    a = harness.cores[A]
    a.plan = [Send(peer=B, message="ping"), SetTimer(at=2.0, timer="tick"),
              NeighborUp(peer=B), CloseLink(peer=C)]
    harness.apply(A, a.start(0.0))
    harness.run(3.0)
    assert harness.cores[B].log == [("message", (A, "ping"), 0.01)]
    assert a.log == [("message", (B, "pong"), 0.02), ("timer", "tick", 2.0)]
    assert events == [(A, NeighborUp(peer=B)), (B, Noted(what="pinged")), (A, Noted(what="tick"))]


def test_crashed_node_gets_nothing_and_its_peer_hears_the_link_down() -> None:
    harness, _ = make()
    harness.crash(B)
    harness.apply(B, [SetTimer(at=1.0, timer="never")])
    harness.apply(A, [Send(peer=B, message="ping"), ProbeLink(peer=C)])
    harness.run(2.0)
    assert harness.cores[B].log == []
    assert harness.cores[A].log == [("heard", C, 0.0), ("down", B, 0.5)]


def test_coded_messages_cross_the_network_encoded() -> None:
    seen: list[object] = []
    harness: Harness[Toy] = Harness(
        EventLoop(), random.Random(1), encode=lambda m: m.encode(), decode=lambda b: b.decode())
    harness.add(B, Toy(B))
    deliver = harness.network.receive

    def tap(src: PeerId, dst: PeerId, data: object) -> None:
        seen.append(data)
        deliver(src, dst, data)

    harness.network.receive = tap
    harness.apply(A, [Send(peer=B, message="ping")])
    harness.run(2.0)
    assert seen == [b"ping", b"pong"]  # (the pong goes to A, which has no core)
    assert [entry[1] for entry in harness.cores[B].log] == [(A, "ping")]
