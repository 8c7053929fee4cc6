"""A subscription hands out queued messages without a scheduler round per message.

``Subscription.receive`` is a cancel point on every call, but a schedule
point only when it waits and once every ``RECEIVE_BATCH`` messages taken in
a row: a reader draining a queue the node filled does not pay a trio
scheduler round (~3 us) per delivery, and still lets other tasks run.  A
ticker task counts the scheduler rounds it gets while the reader drains.
"""

from __future__ import annotations

import sys
from typing import Any

import trio
import trio.testing

from taiinet.node.subscription import RECEIVE_BATCH
from tests.node_support import lone_memory_node

QUEUED = 3 * RECEIVE_BATCH


async def test_draining_a_queue_yields_once_every_receive_batch_messages(
        autojump_clock: trio.testing.MockClock) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, lone_memory_node(nursery) as node:
            async with node.subscribe({"n": {"$exists": True}}) as subscription:
                for n in range(QUEUED):
                    await node.publish({"n": n})
                await trio.sleep(0.5)
                assert subscription.pending() == QUEUED
                nursery.start_soon(ticker)
                got = [(await subscription.receive()).data["n"] for _ in range(QUEUED)]
                assert got == list(range(QUEUED))
                # One round per RECEIVE_BATCH messages (the last one's may not have run
                # the ticker yet), not one per message.
                assert QUEUED // RECEIVE_BATCH - 1 <= ticks <= QUEUED // RECEIVE_BATCH
            nursery.cancel_scope.cancel()


async def test_receive_is_still_a_cancel_point_with_messages_queued(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, lone_memory_node(nursery) as node:
            async with node.subscribe({"n": {"$exists": True}}) as subscription:
                for n in range(2):
                    await node.publish({"n": n})
                await trio.sleep(0.5)
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await subscription.receive()
                assert scope.cancelled_caught
                assert subscription.pending() == 2  # nothing taken, nothing lost
                assert (await subscription.receive()).data["n"] == 0
            nursery.cancel_scope.cancel()


async def test_a_delivery_reaches_the_subscription_within_the_call_that_routed_it(
        autojump_clock: trio.testing.MockClock) -> None:
    """Nothing queued: the driver hands the document to the subscription at once,
    not through the node's delivery queue and task (a task switch per delivery)."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, lone_memory_node(nursery) as node:
            async with node.subscribe({"n": {"$exists": True}}) as subscription:
                node.driver.publish({"n": 1}, published_unix_ms=1, nonce=1)  # no checkpoint
                assert subscription.pending() == 1
                assert node.driver.documents.pending == 0
                assert (await subscription.receive()).data == {"n": 1}
            nursery.cancel_scope.cancel()


async def test_behind_a_full_blocking_subscription_deliveries_keep_their_order(
        autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, lone_memory_node(nursery) as node:
            query = {"n": {"$exists": True}}
            async with node.subscribe(query, buffer=1, slow_policy="block") as blocking, \
                    node.subscribe(query) as other:
                for n in range(4):
                    node.driver.publish({"n": n}, published_unix_ms=1, nonce=n + 1)
                # The first went in at once; the blocking queue is full, so the rest
                # wait in the node's queue, for both subscriptions, in order.
                assert (blocking.pending(), other.pending()) == (1, 1)
                assert node.driver.documents.pending == 3
                for subscription in (blocking, other):
                    got = [(await subscription.receive()).data["n"] for _ in range(4)]
                    assert got == [0, 1, 2, 3]
            nursery.cancel_scope.cancel()


async def test_a_reader_that_waits_for_each_message_makes_no_event_per_wait(
        autojump_clock: trio.testing.MockClock, monkeypatch: Any) -> None:
    """The reader's wait (and a blocked writer's) reuses one flag: twenty messages,
    each published while the reader waits, make no ``trio.Event`` (one per wait
    before), and each arrives."""
    made = [0]
    event = trio.Event

    def counted() -> trio.Event:
        if sys._getframe(1).f_code.co_filename.endswith("subscription.py"):
            made[0] += 1  # (the node's timers make some of their own)
        return event()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, lone_memory_node(nursery) as node:
            async with node.subscribe({"n": {"$exists": True}}) as subscription:
                got: list[int] = []

                async def read() -> None:
                    for _ in range(20):
                        got.append((await subscription.receive()).data["n"])

                nursery.start_soon(read)
                await trio.sleep(0.5)
                monkeypatch.setattr(trio, "Event", counted)
                for n in range(20):
                    await node.publish({"n": n})
                    await trio.sleep(0.5)  # the reader takes it and waits again
                monkeypatch.setattr(trio, "Event", event)
                assert got == list(range(20))
            nursery.cancel_scope.cancel()
    assert made[0] == 0
