"""WebRTC links keep their idle deadline with one watchdog per endpoint, not a deadline per read."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from taiinet.transport._asyncio_channel import BridgedDataChannel
from taiinet.transport.errors import IdleTimeout
from taiinet.transport.limits import LinkDeadlines
from taiinet.transport.webrtc import open_webrtc
from taiinet.wire.identity import Identity
from tests.idle_support import (
    check_busy_receiver_is_not_counted_idle,
    check_cancelled_receiver_is_not_counted_idle,
    check_quiet_receiver_is_cut_and_messages_reset_it,
    count_deadline_reads,
)
from tests.test_webrtc import LOOPBACK, connect
from tests.webrtc_support import raw_pair

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


async def test_secured_links_read_without_a_deadline_per_frame(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the idle deadline on (the default), reading frames enters no cancel
    scope per frame (before: one ``_receive_before`` per data channel message)."""
    calls = count_deadline_reads(monkeypatch)
    async with (open_webrtc(ALICE, candidate_addresses=LOOPBACK) as rtc_a,
                open_webrtc(BOB, candidate_addresses=LOOPBACK) as rtc_b):
        a, b = await connect(rtc_a, rtc_b)
        for n in range(50):
            await a.send(bytes([n]) * 100)
            assert await b.receive() == bytes([n]) * 100
            await b.send(bytes([n]) * 10)
            assert await a.receive() == bytes([n]) * 10
        await a.aclose()
        await b.aclose()
    assert calls() == 0


async def test_the_watchdog_cuts_a_quiet_data_channel_and_messages_reset_it() -> None:
    async with raw_pair() as (client, server):
        await check_quiet_receiver_is_cut_and_messages_reset_it(client, server)
        assert server.closed


async def test_a_busy_receiver_is_not_counted_idle() -> None:
    """Ticks that find nobody waiting in ``receive_message`` start the count again."""
    async with raw_pair() as (_client, server):
        await check_busy_receiver_is_not_counted_idle(server, lambda: server.closed)


async def test_a_cancelled_receiver_is_not_counted_idle() -> None:
    """A read given up (its cancel scope cancelled) is not a reader waiting for nothing."""
    async with raw_pair() as (client, server):
        await check_cancelled_receiver_is_not_counted_idle(client, server, lambda: server.closed)


async def test_a_silent_link_is_cut_a_talking_one_stays_and_closed_ones_are_forgotten() -> None:
    """Real time, idle deadline 0.4 s, on the dialer's and the answerer's side."""
    deadlines = LinkDeadlines(idle=0.4)
    async with (open_webrtc(ALICE, candidate_addresses=LOOPBACK, deadlines=deadlines) as rtc_a,
                open_webrtc(BOB, candidate_addresses=LOOPBACK, deadlines=deadlines) as rtc_b):
        silent_a, silent_b = await connect(rtc_a, rtc_b)
        talking_a, talking_b = await connect(rtc_a, rtc_b)
        watch = rtc_b._idle_watch
        assert watch is not None and len(watch._channels) == 2
        start = trio.current_time()
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                async def keep_talking() -> None:
                    while True:
                        await talking_a.send(b"tick")
                        await trio.sleep(0.05)

                async def keep_reading() -> None:
                    while True:
                        await talking_a.receive()  # the answerer's side talks too

                async def answer_back() -> None:
                    while True:
                        await talking_b.send(await talking_b.receive())

                nursery.start_soon(keep_talking)
                nursery.start_soon(keep_reading)
                nursery.start_soon(answer_back)
                with pytest.raises(IdleTimeout):
                    await silent_b.receive()
                cut_after = trio.current_time() - start
                await trio.sleep(0.5)  # past the silent link's cut
                assert not talking_a.closed and not talking_b.closed
                nursery.cancel_scope.cancel()
        assert 0.4 <= cut_after < 2.0
        assert silent_b.closed
        assert [type(c) for c in watch._channels] == [BridgedDataChannel]  # the talking one
        await talking_a.aclose()
        await talking_b.aclose()
        await silent_a.aclose()
        assert not watch._channels and not rtc_a._idle_watch._channels  # type: ignore[union-attr]
