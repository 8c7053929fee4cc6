"""bench/_taskstats.py (``bench/pubsub.py --task-stats``): counts every trio task
step and hosted asyncio callback by what ran, only between ``start`` and ``stop``."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import trio

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "_taskstats.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_taskstats", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def stepper(rounds: int, done: trio.Event) -> None:
    for _ in range(rounds):
        await trio.lowlevel.checkpoint()
    done.set()


def test_task_steps_and_asyncio_callbacks_are_counted_by_what_ran() -> None:
    module = load()
    stats = module.TaskStats()
    ran: list[int] = []

    def on_loop(n: int) -> None:
        ran.append(n)

    async def main() -> None:
        done = trio.Event()
        stats.start()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stepper, 5, done)
            await done.wait()
        loop = asyncio.new_event_loop()
        try:
            for n in range(3):
                loop.call_soon(on_loop, n)
            loop.call_soon(loop.stop)
            loop.run_forever()
        finally:
            loop.close()
        stats.stop()
        await stepper(2, trio.Event())  # not counted any more

    original = asyncio.Handle._run
    trio.run(main)
    assert ran == [0, 1, 2]
    assert asyncio.Handle._run is original  # unwrapped by ``stop``
    # Its first step and one after each of its 5 checkpoints.
    assert stats.steps["stepper"] == 6
    assert stats.callbacks[on_loop.__qualname__] == 3
    lines = stats.report(deliveries=2)
    assert lines[0].startswith("trio: ")
    assert any(line.endswith(" stepper") and line.lstrip().startswith("3.000") for line in lines)
    assert any(line.startswith("asyncio: ") for line in lines)
