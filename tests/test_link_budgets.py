"""A neighbour flooding control messages or link frames is dropped, then disconnected.

The overlay core budgets each neighbour's ``Graft``s (and the payload bytes
their answers cost), ``IHave``s and link frames; the router budgets adverts
before decoding them.  Cores alone, then real drivers over memory links with
trio's MockClock.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from taiinet.errors import ConnectionClosed
from taiinet.node.routed import RoutedDriver
from taiinet.overlay import codec
from taiinet.overlay.actions import CloseLink, NeighborDown, Send
from taiinet.overlay.budget import LinkBudgetConfig, LinkBudgets, Verdict
from taiinet.overlay.core import Overlay, OverlayConfig
from taiinet.overlay.driver import OverlayDriver
from taiinet.overlay.errors import OverlayUsageError
from taiinet.overlay.messages import MAX_PAYLOAD_SIZE, Gossip, Graft, IHave, Join
from taiinet.pubsub import codec as pubsub_codec
from taiinet.pubsub.messages import InterestAdvert
from taiinet.pubsub.query import Query
from taiinet.transport.connection import Connection
from taiinet.transport.memory import memory_connection_pair
from taiinet.wire.framing import encode_item
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import encode_ping

VICTIM = Identity.from_seed(b"\x11" * 32)
FRIEND = Identity.from_seed(b"\x12" * 32)
ROGUE = Identity.from_seed(b"\x13" * 32)
PAYLOAD = b"x" * MAX_PAYLOAD_SIZE


def _overlay() -> tuple[Overlay, bytes]:
    """A node with neighbours "mallory" and "alice" that broadcast one 60 KB payload."""
    node = Overlay("me", random.Random(0), OverlayConfig())
    for peer in ("mallory", "alice"):
        node.handle_message(peer, Join(), 0.0)
    mid = hashlib.sha256(PAYLOAD).digest()
    node.broadcast(mid, PAYLOAD, 0.0)
    return node, mid


def _answers(actions: list[Any]) -> int:
    return sum(1 for a in actions if isinstance(a, Send) and type(a.message) is Gossip)


def test_a_graft_flood_is_answered_within_the_byte_budget_then_disconnected() -> None:
    node, mid = _overlay()
    answered, closed_at = 0, None
    for i in range(1000):  # 1,000 grafts of one 60 KB payload at once: 60 MB asked
        actions = node.handle_message("mallory", Graft(message_id=mid), 1.0)
        answered += _answers(actions)
        if CloseLink(peer="mallory", failed=True) in actions:
            closed_at = i
            assert NeighborDown(peer="mallory") in actions
            break
    burst = LinkBudgetConfig().graft_byte_burst
    assert answered == int(burst // MAX_PAYLOAD_SIZE)  # ~8 MB answered, no more
    assert closed_at == answered + LinkBudgetConfig().offence_burst
    assert "mallory" not in node.active_view and "alice" in node.active_view
    stats = node.budget_stats
    assert stats.grafts_dropped == 51 and stats.disconnected == 1
    # Budgets outlive the link: back at once, the offender is dropped at its first offence.
    node.handle_message("mallory", Join(), 1.0)
    assert CloseLink(peer="mallory", failed=True) in node.handle_message(
        "mallory", Graft(message_id=mid), 1.0)


def test_grafts_at_an_honest_rate_are_all_answered() -> None:
    node, mid = _overlay()
    for i in range(2000):  # 20 grafts/s of 60 KB (1.2 MB/s) for 100 s
        assert _answers(node.handle_message("alice", Graft(message_id=mid), 1.0 + i / 20)) == 1
    assert node.budget_stats.grafts_dropped == 0


def test_an_ihave_flood_is_dropped_then_disconnected() -> None:
    node, _mid = _overlay()
    config = LinkBudgetConfig()
    closed_at = None
    for i in range(10_000):
        ihave = IHave(message_id=hashlib.sha256(i.to_bytes(4, "big")).digest(), hops=1)
        if CloseLink(peer="mallory", failed=True) in node.handle_message("mallory", ihave, 1.0):
            closed_at = i
            break
    assert closed_at == config.ihave_burst + config.offence_burst
    assert node.budget_stats.ihaves_dropped == config.offence_burst + 1
    # Its announcements went with it: no graft will be sent on its word.
    assert node.broadcast_core.missing_count == 0


def test_tiny_frames_are_dropped_then_the_link_is_closed() -> None:
    node, _mid = _overlay()
    config = LinkBudgetConfig()
    verdicts = [node.admit_frame("mallory", 2, 0, 1.0)  # empty batches count one message
                for _ in range(int(config.message_burst))]
    assert verdicts == [None] * int(config.message_burst)
    dropped = [node.admit_frame("mallory", 2, 0, 1.0) for _ in range(50)]
    assert dropped == [[]] * 50
    assert CloseLink(peer="mallory", failed=True) in (node.admit_frame("mallory", 2, 0, 1.0)
                                                       or [])
    assert node.budget_stats.frames_dropped == 51
    # A batch counts each message in it; bytes are budgeted too.
    assert node.admit_frame("alice", 10, int(config.message_burst) + 1, 1.0) == []
    assert node.admit_frame("alice", int(config.byte_burst) + 1, 1, 1.0) == []
    assert node.admit_frame("alice", 10, 1, 1.0) is None


def test_link_budget_config_is_checked() -> None:
    with pytest.raises(OverlayUsageError):
        LinkBudgetConfig(graft_byte_burst=1000)
    with pytest.raises(OverlayUsageError):
        LinkBudgetConfig(ihaves_per_second=0)


@given(st.lists(st.tuples(st.floats(0.0, 0.5), st.integers(0, 600), st.integers(1, 70_000)),
                max_size=300))
def test_a_link_budget_never_admits_more_than_its_burst_plus_its_rate(
        arrivals: list[tuple[float, int, int]]) -> None:
    config = LinkBudgetConfig(messages_per_second=100.0, message_burst=300.0,
                              bytes_per_second=100_000.0, byte_burst=200_000.0,
                              offence_burst=1e9)
    budgets = LinkBudgets(config)
    now, messages, size_sum = 0.0, 0, 0
    for gap, count, size in arrivals:
        now += gap
        if budgets.admit_frame("p", size, count, now) is Verdict.ADMIT:
            messages += max(1, count)
            size_sum += size
    assert messages <= config.message_burst + config.messages_per_second * now + 1e-6
    assert size_sum <= config.byte_burst + config.bytes_per_second * now + 1e-6


# --- real drivers over memory links ----------------------------------------------


async def _no_dial(peer_id: str) -> Connection:
    raise ConnectionClosed("nothing to dial")


async def _drain(connection: Connection) -> None:
    try:
        async for _data in connection:
            pass
    except ConnectionClosed:
        pass


async def _flood(rogue: Connection, frame: bytes, count: int) -> int:
    """Send ``frame`` up to ``count`` times; how many went before the link closed."""
    for i in range(count):
        try:
            await rogue.send(frame)
        except ConnectionClosed:
            return i
        if i % 64 == 0:
            await trio.lowlevel.checkpoint()
    return count


@asynccontextmanager
async def _victim(driver: OverlayDriver) -> AsyncIterator[Connection]:
    """``driver`` running with FRIEND and ROGUE as neighbours; yields the rogue's end."""
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        links = []
        for identity in (FRIEND, ROGUE):
            ours, theirs = await memory_connection_pair(identity, VICTIM)
            driver.add_connection(theirs)
            nursery.start_soon(_drain, ours)
            await ours.send(codec.encode_frame(Join()))
            links.append(ours)
        await trio.sleep(1.0)
        assert sorted(driver.neighbors) == sorted([FRIEND.peer_id, ROGUE.peer_id])
        yield links[1]
        nursery.cancel_scope.cancel()


async def test_a_peer_flooding_pings_is_disconnected(autojump_clock: object) -> None:
    driver = OverlayDriver(VICTIM.peer_id, _no_dial, rng=random.Random(1))
    async with _victim(driver) as rogue:
        ping = encode_ping(7)
        start = trio.current_time()
        sent = await _flood(rogue, ping, 20_000)
        elapsed = trio.current_time() - start  # the clock jumps when all tasks wait
        await trio.sleep(1.0)
        assert sent < 20_000, "the victim kept reading a flood of pings"
        assert ROGUE.peer_id not in driver.neighbors
        assert FRIEND.peer_id in driver.neighbors
        config = LinkBudgetConfig()
        assert (config.offence_burst + 1 <= driver.frames_refused
                <= config.offence_burst + 1 + config.offences_per_second * elapsed)
        assert driver.overlay is not None and driver.overlay.budget_stats.disconnected == 1


async def test_a_peer_flooding_adverts_is_disconnected_before_they_are_decoded(
        autojump_clock: object) -> None:
    driver = RoutedDriver(VICTIM, _no_dial, rng=random.Random(1))
    async with _victim(driver) as rogue:
        router = driver.router
        received = router.stats.adverts_received
        adverts = [encode_item(12, pubsub_codec.encode(InterestAdvert(
            version=v, filters=(Query({"n": {"$in": list(range(v % 50, v % 50 + 40))}}),))))
            for v in range(1, 1001)]  # protocol 12: pubsub
        sent = 0
        start = trio.current_time()
        for frame in adverts:
            if await _flood(rogue, frame, 1) == 0:
                break
            sent += 1
        elapsed = trio.current_time() - start  # the clock jumps when all tasks wait
        await trio.sleep(1.0)
        assert sent < 1000
        assert ROGUE.peer_id not in driver.neighbors and FRIEND.peer_id in driver.neighbors
        budget = router.config.budget
        decoded = router.stats.adverts_received - received
        assert decoded <= budget.advert_burst + budget.adverts_per_second * elapsed
        assert (budget.offence_burst + 1 <= router.stats.adverts_over_budget
                <= budget.offence_burst + 1 + budget.offences_per_second * elapsed)
