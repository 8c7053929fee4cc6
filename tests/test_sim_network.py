"""The generic simulation pieces: event loop and network model."""

from __future__ import annotations

import random

import pytest

from taiinet.errors import LocalProtocolError
from taiinet.sim.events import EventLoop
from taiinet.sim.network import LinkModel, SimNetwork


def test_events_run_in_time_order_and_ties_in_schedule_order() -> None:
    loop = EventLoop()
    seen: list[str] = []
    loop.schedule(2.0, seen.append, "c")
    loop.schedule(1.0, seen.append, "a")
    loop.schedule(1.0, seen.append, "b")
    loop.run(until=1.5)
    assert seen == ["a", "b"] and loop.now == 1.5
    loop.run()
    assert seen == ["a", "b", "c"] and loop.events_run == 3


def test_events_in_the_past_run_now() -> None:
    loop = EventLoop()
    loop.run(until=5.0)
    times: list[float] = []
    loop.schedule(1.0, lambda: times.append(loop.now))
    loop.run()
    assert times == [5.0]


Received = list[tuple[str, str, int]]
Failed = list[tuple[str, str]]


def network(link: LinkModel, seed: int = 1) -> tuple[EventLoop, SimNetwork, Received, Failed]:
    loop = EventLoop()
    received: list[tuple[str, str, int]] = []
    failed: list[tuple[str, str]] = []
    net = SimNetwork(loop, random.Random(seed), lambda s, d, m: received.append((s, d, m)), link,
                     lambda s, d: failed.append((s, d)))
    return loop, net, received, failed


def test_links_are_fifo_without_reordering() -> None:
    loop, net, received, _ = network(LinkModel(delay_sigma=1.0))
    for i in range(200):
        net.send("a", "b", i)
    loop.run()
    assert [m for _, _, m in received] == list(range(200))


def test_reordering_lets_messages_overtake() -> None:
    loop, net, received, _ = network(LinkModel(delay_sigma=1.0, reorder=1.0))
    for i in range(200):
        net.send("a", "b", i)
    loop.run()
    order = [m for _, _, m in received]
    assert sorted(order) == list(range(200)) and order != list(range(200))


def test_loss_and_duplication() -> None:
    loop, net, received, _ = network(LinkModel(loss=1.0))
    net.send("a", "b", 1)
    loop.run()
    assert received == []
    loop, net, received, _ = network(LinkModel(duplication=1.0))
    net.send("a", "b", 1)
    loop.run()
    assert received == [("a", "b", 1), ("a", "b", 1)]


def test_crashed_node_is_reported_unreachable_after_the_failure_delay() -> None:
    loop, net, received, failed = network(LinkModel(failure_delay=0.5))
    net.crash("b")
    net.send("a", "b", 1)
    net.probe("a", "c")  # alive: nothing happens
    loop.run(until=0.4)
    assert failed == []
    loop.run()
    assert failed == [("a", "b")] and received == []
    net.send("b", "a", 2)  # a crashed node sends nothing
    loop.run()
    assert received == []


def test_partitions_cut_links_and_heal() -> None:
    loop, net, received, failed = network(LinkModel())
    net.partition([["a"], ["b"]])
    net.send("a", "b", 1)
    net.send("a", "c", 2)  # c is in group 0, also cut from group 1
    loop.run()
    assert received == [] and sorted(failed) == [("a", "b"), ("a", "c")]
    net.partition([["a"]], one_way=True)  # group 0 -> 1 is cut, 1 -> 0 open
    net.send("c", "a", 3)
    net.send("a", "c", 4)
    loop.run()
    assert [m for _, _, m in received] == [4]
    net.heal()
    net.send("c", "a", 5)
    loop.run()
    assert [m for _, _, m in received] == [4, 5]


def test_same_seed_same_delays() -> None:
    runs = []
    for _ in range(2):
        loop, net, _received, _ = network(LinkModel(), seed=7)
        arrivals: list[float] = []
        net.receive = lambda s, d, m: arrivals.append(loop.now)  # noqa: B023
        for i in range(50):
            net.send("a", f"n{i}", i)
        loop.run()
        runs.append(arrivals)
    assert runs[0] == runs[1]


def test_bad_link_model_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        LinkModel(loss=1.5)
    with pytest.raises(LocalProtocolError):
        LinkModel(min_delay=0.5, median_delay=0.1)
