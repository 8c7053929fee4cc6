"""``clock_waits_for_threads``: a MockClock does not jump past a running worker thread."""

from __future__ import annotations

import threading

import trio
import trio.testing

from taiinet.testing.clock import clock_waits_for_threads


async def _thread_done_at(release: threading.Event) -> float:
    """Virtual time at which a worker thread, released after real time passes, returns,
    while another task waits 10 virtual seconds."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 10)
        timer = threading.Timer(0.2, release.set)
        timer.start()
        await trio.to_thread.run_sync(release.wait)
        done = trio.current_time()
        nursery.cancel_scope.cancel()
    return done


async def test_the_clock_waits_for_a_worker_thread(
        thread_aware_clock: trio.testing.MockClock) -> None:
    assert await _thread_done_at(threading.Event()) == 0
    assert thread_aware_clock.autojump_threshold == 0  # jumping again once it returned
    await trio.sleep(5)
    assert trio.current_time() == 5


async def test_a_plain_autojump_clock_jumps_past_it(
        autojump_clock: trio.testing.MockClock) -> None:
    """What the harness prevents: the plain clock jumped to the sleeper's deadline."""
    assert await _thread_done_at(threading.Event()) >= 10


def test_the_original_run_sync_is_restored() -> None:
    original = trio.to_thread.run_sync
    with clock_waits_for_threads(trio.testing.MockClock(autojump_threshold=0)):
        assert trio.to_thread.run_sync is not original
    assert trio.to_thread.run_sync is original
