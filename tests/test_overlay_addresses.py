"""HyParView's per-address limits: many identities on one host hold few of our slots."""

from __future__ import annotations

import random

import pytest
import trio

from taiinet.overlay import CloseLink, HyParView, HyParViewConfig, Overlay, OverlayUsageError, Send
from taiinet.overlay.addresses import is_local_host, is_loopback
from taiinet.overlay.messages import Disconnect, ForwardJoin, Join, Neighbor, NeighborReply
from taiinet.transport.memory import MemoryNetwork
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from taiinet.wire.identity import Identity
from tests.test_overlay_driver import Node

SYBIL_HOST = "203.0.113.7"


def hpv(**config: object) -> HyParView:
    return HyParView("me", random.Random(1), HyParViewConfig(**config))  # type: ignore[arg-type]


def sends(actions: list[object]) -> list[tuple[str, object]]:
    return [(a.peer, a.message) for a in actions if isinstance(a, Send)]


def link(node: HyParView, peer: str, address: str, now: float = 0.0) -> list[object]:
    return list(node.handle_link_address(peer, address, now))


def test_sybil_joins_from_one_address_take_at_most_the_cap_of_the_active_view() -> None:
    node = hpv(active_size=5, max_neighbors_per_address=2)
    for i in range(50):
        link(node, f"sybil{i}", SYBIL_HOST, float(i))
        out = node.handle_message(f"sybil{i}", Join(), float(i))
        if f"sybil{i}" not in node.active:
            assert sends(out) == [(f"sybil{i}", Disconnect())]  # refused, no walk
            assert CloseLink(peer=f"sybil{i}") in out
    assert sum(1 for p in node.active if p.startswith("sybil")) == 2
    for i in range(3):  # honest peers from other addresses still get in
        link(node, f"honest{i}", f"198.51.100.{i}", 60.0)
        node.handle_message(f"honest{i}", Join(), 60.0)
        assert f"honest{i}" in node.active


def test_neighbor_requests_past_the_cap_are_rejected_even_high_priority() -> None:
    node = hpv(max_neighbors_per_address=1)
    link(node, "s0", SYBIL_HOST)
    node.handle_message("s0", Neighbor(high_priority=False), 0.0)
    for request in (Neighbor(high_priority=False), Neighbor(high_priority=True)):
        link(node, "s1", SYBIL_HOST)
        out = node.handle_message("s1", request, 0.0)
        assert node.active == ["s0"]
        assert sends(out) == [("s1", NeighborReply(accepted=False))]


def test_a_neighbour_whose_link_turns_out_to_come_from_a_full_address_is_dropped() -> None:
    node = hpv(max_neighbors_per_address=2)
    for peer in ("s0", "s1"):
        link(node, peer, SYBIL_HOST)
        node.handle_message(peer, Join(), 0.0)
    # A walk ending here names a newcomer whose address we learn only once linked.
    node.handle_message("s0", ForwardJoin(peer="s2", ttl=0), 0.0)
    assert "s2" in node.active
    out = link(node, "s2", SYBIL_HOST, 1.0)
    assert "s2" not in node.active
    assert ("s2", Disconnect()) in sends(out) and CloseLink(peer="s2") in out
    assert "s2" not in node.passive


def test_an_accepted_neighbor_reply_from_a_full_address_is_not_taken() -> None:
    node = hpv(max_neighbors_per_address=1)
    link(node, "s0", SYBIL_HOST)
    node.handle_message("s0", Join(), 0.0)
    node.handle_message("s0", NeighborReply(accepted=True), 0.0)  # (not pending: ignored)
    node.passive.append("s1")
    node.handle_link_down("s0", 1.0)  # s0 fails: the node asks s1
    node.handle_message("x", Join(), 1.0)  # keep one neighbour from elsewhere
    link(node, "s9", SYBIL_HOST, 1.0)
    node.handle_message("s9", Join(), 1.0)
    assert "s9" in node.active and "s1" in node._pending
    link(node, "s1", SYBIL_HOST, 1.5)
    out = node.handle_message("s1", NeighborReply(accepted=True), 2.0)
    assert "s1" not in node.active
    assert sends(out) == [("s1", Disconnect())] and CloseLink(peer="s1") in out


def test_one_address_displaces_at_most_one_neighbour_per_interval() -> None:
    node = hpv(active_size=3, protect_after=0.0, protected_neighbors=0,
               max_neighbors_per_address=2, address_eviction_interval=30.0)
    for i in range(3):
        link(node, f"h{i}", f"198.51.100.{i}")
        node.handle_message(f"h{i}", Join(), 0.0)
    link(node, "s0", SYBIL_HOST)
    node.handle_message("s0", Join(), 1.0)
    assert "s0" in node.active
    link(node, "s1", SYBIL_HOST)
    node.handle_message("s1", Join(), 2.0)  # under the cap, but a second eviction
    assert "s1" not in node.active
    node.handle_message("s2", Join(), 2.0)  # another identity, no address known: budgeted
    link(node, "s3", SYBIL_HOST)
    node.handle_message("s3", Join(), 31.0)
    assert "s3" in node.active


def test_loopback_is_exempt_by_default_and_limited_when_asked() -> None:
    node = hpv(max_neighbors_per_address=1)
    for i in range(4):
        link(node, f"p{i}", "127.0.0.1")
        node.handle_message(f"p{i}", Join(), 0.0)
    assert len(node.active) == 4
    strict = hpv(max_neighbors_per_address=1, exempt_loopback=False)
    for i in range(4):
        link(strict, f"p{i}", "127.0.0.1")
        strict.handle_message(f"p{i}", Join(), 0.0)
    assert strict.active == ["p0"]
    assert is_loopback("::1")
    assert is_loopback("127.0.0.5") and not is_loopback("2001:db8::/64")
    assert not is_loopback("not an address")


def test_other_loopback_addresses_stand_for_other_hosts() -> None:
    """Only the host's own 127.0.0.1 / ::1 is exempt: 127.x.y.z counts as an address."""
    node = hpv(max_neighbors_per_address=1)
    for i in range(4):
        link(node, f"p{i}", "127.66.0.1")
        node.handle_message(f"p{i}", Join(), 0.0)
    assert node.active == ["p0"]
    assert is_local_host("127.0.0.1") and is_local_host("::1")
    assert not is_local_host("127.0.0.2")


def test_a_link_going_down_forgets_its_address() -> None:
    node = hpv(max_neighbors_per_address=1, join_repeat_interval=0.0)
    link(node, "s0", SYBIL_HOST)
    node.handle_message("s0", Join(), 0.0)
    node.handle_link_down("s0", 1.0)
    link(node, "s1", SYBIL_HOST)
    node.handle_message("s1", Join(), 2.0)
    assert node.active == ["s1"]


def test_the_address_table_is_bounded() -> None:
    node = hpv(join_memory=8)
    for i in range(100):
        link(node, f"p{i}", f"198.51.100.{i}")
    assert len(node._addresses._addresses) == 8


def test_the_overlay_core_applies_the_limits_too() -> None:
    overlay = Overlay("me", random.Random(1))
    for i in range(10):
        overlay.handle_link_address(f"s{i}", SYBIL_HOST, 0.0)
        overlay.handle_message(f"s{i}", Join(), 0.0)
    assert len(overlay.active_view) == 2  # the default cap


def test_bad_limits_are_usage_errors() -> None:
    with pytest.raises(OverlayUsageError):
        HyParViewConfig(max_neighbors_per_address=0)
    with pytest.raises(OverlayUsageError):
        HyParViewConfig(address_eviction_interval=-1.0)


# --- over memory links, with real drivers ---------------------------------------


async def test_sybil_nodes_behind_one_address_hold_at_most_the_cap_of_a_victims_view(
        autojump_clock: object) -> None:
    network = MemoryNetwork()
    victim = Node(0, network)
    network.addresses[victim.peer_id] = "198.51.100.1"
    sybils = [Node(i, network) for i in range(1, 13)]
    honest = [Node(i, network) for i in range(13, 15)]
    for node in sybils:
        network.addresses[node.peer_id] = SYBIL_HOST
    for k, node in enumerate(honest):
        network.addresses[node.peer_id] = f"192.0.2.{k + 1}"
    async with trio.open_nursery() as nursery:
        await nursery.start(victim.run)
        for node in sybils:
            await nursery.start(node.run)
            node.driver.join(victim.peer_id)
            await trio.sleep(0.5)
        await trio.sleep(30)  # shuffles, walks, refills
        from_sybils = [p for p in victim.driver.neighbors if p in {s.peer_id for s in sybils}]
        assert 1 <= len(from_sybils) <= 2
        for node in honest:
            await nursery.start(node.run)
            node.driver.join(victim.peer_id)
        await trio.sleep(10)
        assert {n.peer_id for n in honest} <= set(victim.driver.neighbors)
        assert sum(1 for p in victim.driver.neighbors
                   if p in {s.peer_id for s in sybils}) <= 2
        nursery.cancel_scope.cancel()


async def test_memory_links_carry_their_fake_addresses_normalised(autojump_clock: object) -> None:
    network = MemoryNetwork()
    a, b = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    network.addresses[a.peer_id] = "2001:db8::1234"
    network.addresses[b.peer_id] = "::ffff:192.0.2.9"
    async with network.listen(b) as listener:
        dialed = await network.dial(a, b.peer_id)
        accepted = await listener.accept()
        assert accepted.remote_address == "2001:db8::/64"
        assert dialed.remote_address == "192.0.2.9"
        await dialed.aclose()
        await accepted.aclose()
    c = Identity.from_seed(b"\x03" * 32)
    async with network.listen(c) as listener:
        dialed = await network.dial(a, c.peer_id)
        assert dialed.remote_address is None  # no address given for c
        await dialed.aclose()


async def test_websocket_links_know_the_tcp_peers_address() -> None:
    alice, bob = Identity.from_seed(b"\x04" * 32), Identity.from_seed(b"\x05" * 32)
    async with open_websocket_listener(bob) as listener, connect_websocket(listener.url, alice,
                                 expected_peer_id=bob.peer_id) as dialed:
        accepted = await listener.accept()
        assert dialed.remote_address == "127.0.0.1"
        assert accepted.remote_address == "127.0.0.1"
        await accepted.aclose()
