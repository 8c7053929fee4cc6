"""The WebSocket fast path: one idle watchdog per listener, one read per message."""

from __future__ import annotations

import sys

import pytest
import trio
import trio.testing

from taiinet.transport.errors import IdleTimeout
from taiinet.transport.limits import LinkDeadlines, ListenerLimits
from taiinet.transport.websocket import connect_websocket, open_websocket_listener
from taiinet.wire.identity import Identity
from tests.idle_support import (
    check_busy_receiver_is_not_counted_idle,
    check_cancelled_receiver_is_not_counted_idle,
    check_quiet_receiver_is_cut_and_messages_reset_it,
    count_deadline_reads,
)
from tests.test_websocket import raw_channel_pair

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


async def test_listener_links_read_without_a_deadline_per_frame(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the idle deadline on (the listener default), reading frames enters no
    cancel scope per frame (before: one ``_receive_before`` per channel message)."""
    calls = count_deadline_reads(monkeypatch)
    limits = ListenerLimits(deadlines=LinkDeadlines(idle=60.0))
    async with (open_websocket_listener(BOB, limits=limits, coalesce=False) as listener,
                connect_websocket(listener.url, ALICE, coalesce=False) as client):
        server = await listener.accept()
        for n in range(50):
            await client.send(bytes([n]) * 100)
            assert await server.receive() == bytes([n]) * 100
        await server.aclose()
    assert calls() == 0


async def test_the_watchdog_cuts_a_receiver_quiet_for_its_ticks_and_messages_reset_it() -> None:
    async with raw_channel_pair() as (client, server):
        await check_quiet_receiver_is_cut_and_messages_reset_it(client, server)


async def test_a_busy_receiver_is_not_counted_idle() -> None:
    """Ticks that find nobody waiting in ``receive_message`` start the count again."""
    async with raw_channel_pair() as (_client, server):
        await check_busy_receiver_is_not_counted_idle(server, lambda: server._closing)


async def test_a_cancelled_receiver_is_not_counted_idle() -> None:
    """A read given up (its cancel scope cancelled) is not a reader waiting for nothing."""
    async with raw_channel_pair() as (client, server):
        await check_cancelled_receiver_is_not_counted_idle(client, server, lambda: server._closing)


async def test_a_silent_listener_link_is_cut_and_a_talking_one_stays() -> None:
    """Real sockets, real time: idle deadline 0.4 s."""
    limits = ListenerLimits(deadlines=LinkDeadlines(idle=0.4))
    async with (open_websocket_listener(BOB, limits=limits) as listener,
                connect_websocket(listener.url, ALICE)):
        server_silent = await listener.accept()
        async with connect_websocket(listener.url, ALICE) as talking:
            server_talking = await listener.accept()
            start = trio.current_time()
            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    async def keep_talking() -> None:
                        while True:
                            await talking.send(b"tick")
                            await trio.sleep(0.05)

                    nursery.start_soon(keep_talking)
                    with pytest.raises(IdleTimeout):
                        await server_silent.receive()
                    cut_after = trio.current_time() - start
                    for _ in range(20):  # past the silent one's cut
                        assert await server_talking.receive() == b"tick"
                    nursery.cancel_scope.cancel()
            assert cut_after >= 0.4
            assert not server_talking.closed
            await server_talking.aclose()


async def test_a_reader_parked_for_the_next_message_reads_it_with_no_failed_read() -> None:
    """A link's reader asks for the next message before it came: the read waits for
    the socket first, so no read finds it empty (before: one failing ``recv``,
    a syscall and a ``BlockingIOError``, per message)."""
    failed_reads = 0

    def profile(_frame: object, event: str, arg: object) -> None:
        nonlocal failed_reads
        if event == "c_exception" and getattr(arg, "__name__", "") in ("recv", "read"):
            failed_reads += 1

    async with raw_channel_pair() as (client, server):
        async with trio.open_nursery() as nursery:
            received: list[bytes] = []

            async def receive_all() -> None:
                for _ in range(20):
                    received.append(await server.receive_message())

            nursery.start_soon(receive_all)
            sys.setprofile(profile)
            try:
                for n in range(20):
                    await trio.testing.wait_all_tasks_blocked()  # the reader is parked
                    await client.send_message(bytes([n]) * 50)
            finally:
                sys.setprofile(None)
        assert received == [bytes([n]) * 50 for n in range(20)]
    assert failed_reads == 0


#: Python calls (``sys.setprofile`` "call" events, both ends and trio's scheduler)
#: per small message client -> server with the reader parked: 212 before the
#: direct socket reads and writes, 184 with them, 127 with whole binary frames read
#: and written without wsproto (trio 0.35, wsproto 1.3).
MAX_CALLS_PER_MESSAGE = 140


async def test_a_small_message_costs_a_bounded_number_of_python_calls() -> None:
    calls = 0

    def profile(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    async with raw_channel_pair() as (client, server), trio.open_nursery() as nursery:
        async def receive_all() -> None:
            for _ in range(20):
                await server.receive_message()

        nursery.start_soon(receive_all)
        for n in range(20):
            await trio.testing.wait_all_tasks_blocked()
            sys.setprofile(profile)
            try:
                await client.send_message(bytes([n]) * 50)
                await trio.testing.wait_all_tasks_blocked()
            finally:
                sys.setprofile(None)
    assert calls / 20 <= MAX_CALLS_PER_MESSAGE
