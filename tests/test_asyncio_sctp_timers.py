"""The lazy T3 timer expires as aiortc's would: never early, not after a cancel, once."""

from __future__ import annotations

import asyncio  # aiortc's objects live on an asyncio loop of the test's own
import contextvars
from typing import Any

from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc import rtcsctptransport as rsctp

from taiinet.transport._asyncio_sctp_timers import LazyDeadline, lazy_t3

RTO = 0.05


def association(expiries: list[float]) -> Any:
    sctp = rsctp.RTCSctpTransport(RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]))
    sctp._rto = RTO

    def expired() -> None:  # what matters of aiortc's: T3 no longer runs
        sctp._t3_handle = None
        expiries.append(sctp._loop.time())

    sctp._t3_expired = expired
    assert lazy_t3(sctp)
    return sctp


def test_restarts_move_the_expiry_and_a_cancel_stops_it() -> None:
    async def main() -> None:
        expiries: list[float] = []
        sctp = association(expiries)
        loop = sctp._loop
        sctp._t3_start()
        assert sctp._t3_handle
        last = loop.time()
        for _ in range(3):  # each restart before the expiry moves it on
            await asyncio.sleep(RTO / 2)
            last = loop.time()
            sctp._t3_restart()
        await asyncio.sleep(RTO * 3)
        assert len(expiries) == 1 and expiries[0] >= last + RTO
        assert not sctp._t3_handle
        sctp._t3_start()
        sctp._t3_cancel()
        assert not sctp._t3_handle
        await asyncio.sleep(RTO * 3)
        assert len(expiries) == 1  # the cancelled one never expires

    asyncio.run(main())


def test_a_timer_aiortc_started_is_taken_over() -> None:
    async def main() -> None:
        expiries: list[float] = []
        sctp = rsctp.RTCSctpTransport(RTCDtlsTransport(
            RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]))
        sctp._rto = RTO
        sctp._t3_start()  # aiortc's own timer
        started = sctp._t3_handle.when()

        def expired() -> None:
            sctp._t3_handle = None
            expiries.append(sctp._loop.time())

        sctp._t3_expired = expired
        assert lazy_t3(sctp)
        await asyncio.sleep(RTO * 3)
        assert len(expiries) == 1 and expiries[0] >= started

    asyncio.run(main())


def test_each_arm_makes_a_timer_and_nothing_else() -> None:
    """Arms share one bound callback and one context (the deadline's own, made
    with it), and the expiry runs in that context, not in the arming code's."""
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        marker.set("made")
        deadline = LazyDeadline(lambda: seen.append(marker.get()))
        marker.set("armed")
        armed = []  # (timer, its callback, its context), read as it is armed
        for step in range(3):  # an earlier deadline each time: a new loop timer each time
            deadline.set(loop, loop.time() + RTO * (3 - step))
            timer = deadline._timer
            armed.append((timer, timer._callback, timer._context))
        assert len({id(timer) for timer, _, _ in armed}) == 3
        assert all(callback is armed[0][1] for _, callback, _ in armed)
        assert all(context is armed[0][2] for _, _, context in armed)
        await asyncio.sleep(RTO * 2)
        assert seen == ["made"]

    asyncio.run(main())
