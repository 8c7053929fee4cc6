"""``taiinet.link.wakeup.Wakeup`` (a link sender's reusable flag), and the link
sender making no event per frame with it."""

from __future__ import annotations

import sys
from typing import Any

import trio
import trio.testing

from taiinet.core import Send
from taiinet.link.runner import Runner
from taiinet.link.wakeup import Wakeup
from taiinet.transport.connection import Connection
from taiinet.transport.memory import memory_connection_pair
from taiinet.wire.framing import decode_link_frame
from taiinet.wire.peer_id import PeerId
from tests.test_link_runner import ECHO_CODEC, ME, PEER, Echo, EchoCore, _no_dial


async def test_a_set_flag_wakes_the_waiter_once_and_clear_makes_it_wait_again(
        autojump_clock: object) -> None:
    wakeup = Wakeup()
    woken: list[float] = []

    async def waiter() -> None:
        for _ in range(2):
            await wakeup.wait()
            woken.append(trio.current_time())
            wakeup.clear()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        assert woken == [] and not wakeup.is_set()
        wakeup.set()
        wakeup.set()  # a second set before the waiter runs wakes it once
        await trio.sleep(1)
        assert woken == [1.0] and not wakeup.is_set()
        await trio.sleep(2)
        wakeup.set()
    assert woken == [1.0, 4.0]


async def test_a_wait_on_a_set_flag_is_a_checkpoint_and_leaves_it_set() -> None:
    wakeup = Wakeup()
    wakeup.set()
    with trio.testing.assert_checkpoints():
        await wakeup.wait()
    assert wakeup.is_set()


async def test_a_cancelled_wait_leaves_the_flag_usable(autojump_clock: object) -> None:
    wakeup = Wakeup()
    with trio.move_on_after(1) as scope:
        await wakeup.wait()
    assert scope.cancelled_caught and not wakeup.is_set()
    wakeup.set()  # nobody waits: just the flag
    await wakeup.wait()
    wakeup.clear()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wakeup.wait)
        await trio.sleep(1)
        wakeup.set()
    assert wakeup.is_set()


async def test_every_waiter_is_woken_and_a_cancelled_one_leaves_the_others_waiting(
        autojump_clock: object) -> None:
    wakeup = Wakeup()
    woken: list[str] = []

    async def waiter(name: str) -> None:
        await wakeup.wait()
        woken.append(name)

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as inner:
            inner.start_soon(waiter, "e")  # the first waiter, then cancelled
            await trio.sleep(1)
            for name in "abcd":
                nursery.start_soon(waiter, name)
            await trio.sleep(1)
            inner.cancel_scope.cancel()
        assert woken == []
        wakeup.set()
        wakeup.clear()  # cleared before they run: they were woken all the same
    assert sorted(woken) == ["a", "b", "c", "d"]  # not "e", cancelled
    assert not wakeup.is_set()
    async with trio.open_nursery() as nursery:  # the first place is free again
        nursery.start_soon(waiter, "f")
        await trio.sleep(1)
        wakeup.set()
    assert woken[-1] == "f"


async def test_a_link_sender_makes_no_event_per_frame(autojump_clock: object,
                                                      monkeypatch: Any) -> None:
    """Forty frames, each written by a sender that waited for its item, make no
    ``trio.Event`` (one was made for ``urgent`` and one for ``wrote`` per frame,
    with nobody flushing); the peer reads them all, in order.  (Between frames
    less than the core's one-second tick passes: its timer makes events.)"""
    made = [0]
    event = trio.Event

    def counted() -> trio.Event:
        made[0] += 1
        return event()

    far_ends: list[Connection] = []

    async def dial(peer: PeerId) -> Connection:
        ours, theirs = await memory_connection_pair(ME, PEER, capacity=100)
        far_ends.append(theirs)
        return ours

    runner = Runner(EchoCore(), dial)
    runner.register(ECHO_CODEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.apply([Send(peer=PEER.peer_id, message=Echo(0))])
        await trio.sleep(0.5)
        monkeypatch.setattr(trio, "Event", counted)
        for n in range(1, 41):
            runner.apply([Send(peer=PEER.peer_id, message=Echo(n))])
            await trio.sleep(0.01)  # written meanwhile: the sender waits again
        monkeypatch.setattr(trio, "Event", event)
        [far] = far_ends
        got = []
        for _ in range(41):
            [(_protocol, body)] = decode_link_frame(await far.receive())
            got.append(int(body))
        nursery.cancel_scope.cancel()
    assert got == list(range(41))
    assert made[0] == 0


async def test_the_runners_timer_task_makes_no_event_per_timer(autojump_clock: object,
                                                               monkeypatch: Any) -> None:
    """The core's timer, re-armed every second for twenty seconds, is served by
    one reused flag (an event per timer before), and fires every time."""
    made = [0]
    event = trio.Event

    def counted() -> trio.Event:
        if sys._getframe(1).f_code.co_filename.endswith("runner.py"):
            made[0] += 1
        return event()

    monkeypatch.setattr(trio, "Event", counted)
    ticks: list[Any] = []
    core = EchoCore()
    runner = Runner(core, dial=_no_dial, on_event=ticks.append)
    runner.register(ECHO_CODEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await trio.sleep(20.5)
        nursery.cancel_scope.cancel()
    assert [tick[1] for tick in ticks] == list(range(1, 21))
    assert made[0] == 0
