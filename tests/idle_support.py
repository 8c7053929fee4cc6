"""The idle watchdog's checks, shared by every channel kind it watches (WebSocket, WebRTC)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from taiinet.transport import secure
from taiinet.transport._idle import IDLE_TICKS, IdleWatch
from taiinet.transport.errors import IdleTimeout


async def check_quiet_receiver_is_cut_and_messages_reset_it(client: Any, server: Any) -> None:
    """``IDLE_TICKS`` ticks with a reader waiting on ``server`` and no message cut it
    (``IdleTimeout``, and on every later read); a message meanwhile starts the count again."""
    watch = IdleWatch(idle=60.0)
    watch.watch(server)
    outcome: list[BaseException | bytes] = []

    async def receive(done: trio.Event) -> None:
        try:
            outcome.append(await server.receive_message())
        except IdleTimeout as exc:
            outcome.append(exc)
        done.set()

    with trio.fail_after(10):  # a watchdog that never cuts fails here instead of hanging
        async with trio.open_nursery() as nursery:
            first = trio.Event()
            nursery.start_soon(receive, first)
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(IDLE_TICKS):  # the first tick only starts the count
                await watch.tick()
            await client.send_message(b"alive")
            await first.wait()
            assert outcome == [b"alive"]
            nursery.start_soon(receive, trio.Event())
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(IDLE_TICKS):  # the message reset the count
                await watch.tick()
            assert len(outcome) == 1
            await watch.tick()
    assert isinstance(outcome[1], IdleTimeout)
    with pytest.raises(IdleTimeout):
        await server.receive_message()


async def check_busy_receiver_is_not_counted_idle(server: Any, closed: Callable[[], bool]) -> None:
    """Ticks that find nobody waiting in ``receive_message`` start the count again."""
    watch = IdleWatch(idle=60.0)
    watch.watch(server)
    for _ in range(3 * IDLE_TICKS):
        await watch.tick()
    assert not closed()


async def check_cancelled_receiver_is_not_counted_idle(
        client: Any, server: Any, closed: Callable[[], bool]) -> None:
    """A ``receive_message`` that was cancelled leaves nobody waiting: ticks after it
    do not cut the channel, and a later read still gets the next message."""
    watch = IdleWatch(idle=60.0)
    watch.watch(server)
    with trio.move_on_after(1) as scope:
        async with trio.open_nursery() as nursery:
            async def receive() -> None:
                await server.receive_message()

            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            assert server.receiving
            nursery.cancel_scope.cancel()
    assert not scope.cancelled_caught  # cancelled by hand, not by the 1 s bound
    assert not server.receiving
    for _ in range(3 * IDLE_TICKS):
        await watch.tick()
    assert not closed()
    await client.send_message(b"still here")
    with trio.fail_after(10):
        assert await server.receive_message() == b"still here"


def count_deadline_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the reads that enter a cancel scope for a deadline
    (``SecureConnection._receive_before``); returns the count so far."""
    calls = 0
    original = secure.SecureConnection._receive_before

    async def counted(self: secure.SecureConnection, deadline: float,
                      frame_deadline: bool) -> bytes:
        nonlocal calls
        calls += 1
        return await original(self, deadline, frame_deadline)

    monkeypatch.setattr(secure.SecureConnection, "_receive_before", counted)
    return lambda: calls
