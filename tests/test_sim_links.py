"""The harness runs cores that name links: dials, sends on a link, closes and crashes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from taiinet.core import CloseLink, Dial, LinkId, Send
from taiinet.sim.events import EventLoop
from taiinet.sim.harness import Harness
from taiinet.sim.network import LinkModel, sim_peer_ids
from taiinet.wire.peer_id import PeerId

A, B, C, D = sim_peer_ids(4)
#: Every one-way delay is 10 ms; a dial takes three; a failure is heard after 0.5 s.
DELAY = 0.01
FAILURE = 0.5


@dataclass
class LinkToy:
    """Notes every input of a core that names links (``taiinet.core.links.LinkCore``)."""

    peer: PeerId
    log: list[tuple[object, ...]] = field(default_factory=list)
    links: dict[PeerId, LinkId] = field(default_factory=dict)

    def handle_link_up(self, link: LinkId, peer: PeerId, address: str | None,
                       dialed: str | None, now: float) -> list[object]:
        self.log.append(("up", peer, dialed, round(now, 6)))
        self.links[peer] = link
        return []

    def handle_dial_failed(self, address: str, peer: PeerId | None,
                           now: float) -> list[object]:
        self.log.append(("dial failed", address, round(now, 6)))
        return []

    def handle_message(self, link: LinkId, message: str, now: float) -> list[object]:
        self.log.append(("message", link, message, round(now, 6)))
        return []

    def handle_link_down(self, link: LinkId, now: float) -> list[object]:
        self.log.append(("down", link, round(now, 6)))
        return []

    def handle_timer(self, timer: object, now: float) -> list[object]:
        return []


def make() -> Harness[LinkToy]:
    harness: Harness[LinkToy] = Harness(
        EventLoop(), random.Random(1),
        LinkModel(median_delay=DELAY, min_delay=DELAY, max_delay=DELAY, failure_delay=FAILURE))
    for node, name in zip((A, B, C, D), "abcd", strict=True):
        harness.add(node, LinkToy(node), address=f"sim://{name}")
    return harness


def linked(harness: Harness[LinkToy], dialer: PeerId, address: str) -> LinkId:
    harness.apply(dialer, [Dial(address=address)])
    harness.run(harness.now + 1.0)
    return list(harness.cores[dialer].links.values())[-1]


def test_a_dial_is_up_after_three_delays_and_carries_messages_in_order() -> None:
    harness = make()
    harness.apply(A, [Dial(address="sim://b", peer=B)])
    harness.run(1.0)
    link = harness.cores[A].links[B]
    assert harness.cores[B].log == [("up", A, None, 0.03)]
    assert harness.cores[A].log == [("up", B, "sim://b", 0.03)]
    harness.apply(A, [Send(peer=B, message=str(i), link=link) for i in range(3)])
    harness.run(2.0)
    assert harness.cores[B].log[1:] == [("message", link, str(i), 1.01) for i in range(3)]


def test_a_dial_to_a_crashed_or_unknown_node_or_the_wrong_peer_fails() -> None:
    harness = make()
    harness.crash(B)
    harness.apply(A, [Dial(address="sim://b"), Dial(address="sim://nobody"),
                      Dial(address="sim://c", peer=D)])
    harness.run(1.0)
    assert harness.cores[A].log == [("dial failed", "sim://c", 0.03),
                                    ("dial failed", "sim://b", FAILURE),
                                    ("dial failed", "sim://nobody", FAILURE)]
    assert harness.cores[B].log == [] and harness.cores[C].log == []


def test_a_close_is_heard_at_both_ends_after_what_was_sent() -> None:
    harness = make()
    link = linked(harness, A, "sim://b")  # up at 0.03; now 1.0
    harness.apply(A, [Send(peer=B, message="last", link=link), CloseLink(peer=B, link=link)])
    harness.apply(B, [Send(peer=A, message="too late", link=link)])
    harness.run(2.0)
    assert harness.cores[A].log[1:] == [("down", link, 1.0)]
    assert harness.cores[B].log[1:] == [("message", link, "last", 1.01), ("down", link, 1.01)]


def test_a_crash_is_heard_on_every_link_after_the_failure_delay() -> None:
    harness = make()
    links = [linked(harness, dialer, "sim://a") for dialer in (B, C, D)]  # now 3.0
    harness.crash(A)
    harness.apply(B, [Send(peer=A, message="lost", link=links[0])])
    harness.run(4.0)
    for dialer, link in zip((B, C, D), links, strict=True):
        assert harness.cores[dialer].log[1:] == [("down", link, 3.0 + FAILURE)]
    assert [entry[0] for entry in harness.cores[A].log] == ["up", "up", "up"]


def test_a_send_across_a_partition_fails_the_link_at_both_ends() -> None:
    harness = make()
    link = linked(harness, A, "sim://b")  # now 1.0
    harness.network.partition([[A]])
    harness.apply(A, [Send(peer=B, message="cut", link=link)])
    harness.apply(C, [Dial(address="sim://a")])
    harness.run(2.0)
    assert harness.cores[A].log[1:] == [("down", link, 1.0 + FAILURE)]
    assert harness.cores[B].log[1:] == [("down", link, 1.0 + FAILURE)]
    assert harness.cores[C].log == [("dial failed", "sim://a", 1.0 + FAILURE)]
