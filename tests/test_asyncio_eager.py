"""run_eagerly: a coroutine runs in its caller until it first waits, then in a task."""

from __future__ import annotations

import asyncio

import pytest

from taiinet.transport._asyncio_eager import run_eagerly


def test_a_coroutine_that_never_waits_finishes_in_the_call() -> None:
    steps: list[str] = []

    async def quick() -> None:
        steps.append("ran")

    async def main() -> None:
        assert run_eagerly(quick()) is None
        assert steps == ["ran"]  # before the loop got a turn

    asyncio.run(main())


def test_a_waiting_coroutine_is_finished_by_a_task() -> None:
    steps: list[object] = []

    async def waits(gate: asyncio.Future[int]) -> None:
        steps.append("before")
        steps.append(await gate)
        steps.append("after")

    async def main() -> None:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = run_eagerly(waits(gate))
        assert task is not None and steps == ["before"]
        gate.set_result(7)
        await task
        assert steps == ["before", 7, "after"]

    asyncio.run(main())


def test_cancelling_the_task_cancels_the_coroutine() -> None:
    seen: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        task = run_eagerly(waits())
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["cancelled"]

    asyncio.run(main())


def test_errors_reach_the_caller_or_the_task() -> None:
    async def fails_at_once() -> None:
        raise ValueError("now")

    async def fails_later(gate: asyncio.Future[None]) -> None:
        await gate
        raise ValueError("later")

    async def main() -> None:
        with pytest.raises(ValueError, match="now"):
            run_eagerly(fails_at_once())
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = run_eagerly(fails_later(gate))
        assert task is not None
        gate.set_result(None)
        with pytest.raises(ValueError, match="later"):
            await task

    asyncio.run(main())
