"""``taiinet.link.rounds.Rounds``: scheduler rounds counted once for all the
senders that wait some (what ``LinkManager`` senders wait before a batch)."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel
import trio.testing

from taiinet.link.rounds import Rounds


class _Steps(trio.abc.Instrument):
    """Task steps taken by each task (by name)."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task.name] = self.steps.get(task.name, 0) + 1


async def _observe(rounds_seen: list[int]) -> None:
    """Checkpoint once per scheduler round, counting the rounds."""
    while True:
        await trio.lowlevel.checkpoint()
        rounds_seen[0] += 1


async def test_waiters_are_woken_after_their_rounds_in_one_step_each() -> None:
    """Eight tasks waiting 12 rounds each take two steps each (start, wake), not 12:
    one task counts the rounds for all of them; and each waited at least 12 rounds."""
    rounds = Rounds()
    steps = _Steps()
    seen = [0]
    waited: list[int] = []

    async def waiter() -> None:
        start = seen[0]
        await rounds.wait(12)
        waited.append(seen[0] - start)

    trio.lowlevel.add_instrument(steps)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rounds.run, name="rounds")
            nursery.start_soon(_observe, seen, name="observer")
            async with trio.open_nursery() as waiters:
                for n in range(8):
                    waiters.start_soon(waiter, name=f"waiter{n}")
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert len(waited) == 8
    assert min(waited) >= 12
    assert max(steps.steps[f"waiter{n}"] for n in range(8)) <= 2
    # The counting task took about one step per round, not one per waiter and round.
    assert steps.steps["rounds"] <= max(waited) + 3


async def test_one_round_is_a_plain_checkpoint_and_later_waiters_wait_their_own_rounds(
        ) -> None:
    """``wait(1)`` needs no counting task; a waiter that comes while others wait
    still waits its full count from when it came."""
    rounds = Rounds()
    seen = [0]
    with trio.move_on_after(1) as scope:  # no ``run``: ``wait(1)`` must not need it
        await rounds.wait(1)
    assert not scope.cancelled_caught
    results: dict[str, int] = {}

    async def waiter(name: str, delay: int, count: int) -> None:
        for _ in range(delay):
            await trio.lowlevel.checkpoint()
        start = seen[0]
        await rounds.wait(count)
        results[name] = seen[0] - start

    async with trio.open_nursery() as nursery:
        nursery.start_soon(rounds.run)
        nursery.start_soon(_observe, seen)
        async with trio.open_nursery() as waiters:
            waiters.start_soon(waiter, "early", 0, 10)
            waiters.start_soon(waiter, "late", 6, 10)
            waiters.start_soon(waiter, "short", 2, 3)
        nursery.cancel_scope.cancel()
    assert results["early"] >= 10 and results["late"] >= 10 and results["short"] >= 3


async def test_a_cancelled_waiter_leaves_the_others_waiting_and_the_count_idles() -> None:
    """A waiter cancelled while it waits neither wakes early nor blocks the rest;
    with nobody waiting the counting task sleeps (no step per round)."""
    rounds = Rounds()
    steps = _Steps()
    done: list[str] = []

    async def waiter(name: str, count: int) -> None:
        await rounds.wait(count)
        done.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(rounds.run, name="rounds")
        with trio.CancelScope() as cancelled:
            async with trio.open_nursery() as inner:
                inner.start_soon(waiter, "cancelled", 50)
                await trio.lowlevel.checkpoint()
                cancelled.cancel()
        async with trio.open_nursery() as waiters:
            waiters.start_soon(waiter, "kept", 5)
        assert done == ["kept"]
        # Let the cancelled waiter's round pass, then nobody waits: the count idles.
        for _ in range(60):
            await trio.lowlevel.checkpoint()
        trio.lowlevel.add_instrument(steps)
        try:
            for _ in range(100):
                await trio.lowlevel.checkpoint()
        finally:
            trio.lowlevel.remove_instrument(steps)
        assert steps.steps.get("rounds", 0) == 0
        nursery.cancel_scope.cancel()


async def test_waits_make_no_event_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy sender waits once per frame: a waiter parks itself, with no
    ``trio.Event`` (and its parking lot) made per wait; only the counter makes
    one when it goes idle."""
    rounds = Rounds()
    made: list[trio.Event] = []
    real_event = trio.Event

    def counted_event() -> trio.Event:
        made.append(real_event())
        return made[-1]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(rounds.run)
        await trio.testing.wait_all_tasks_blocked()  # the counter idles on its first event
        monkeypatch.setattr(trio, "Event", counted_event)
        async with trio.open_nursery() as waiters:
            for _ in range(8):
                waiters.start_soon(rounds.wait, 5)
        monkeypatch.undo()
        nursery.cancel_scope.cancel()
    assert len(made) <= 1
