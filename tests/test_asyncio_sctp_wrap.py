"""aiortc's TSN bookkeeping, mended: right across the 32-bit wrap, aiortc's own elsewhere.

Real aiortc associations (no network: nothing is sent) mark drawn arrival
orders of TSNs received; the mended one must keep the cumulative TSN and the
out-of-order set a plain model gives, wherever the run starts, and do exactly
what plain aiortc does when the run does not cross the wrap.
"""

from __future__ import annotations

import asyncio  # aiortc's objects live on an asyncio loop of the test's own
from typing import Any

import trio
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc import rtcsctptransport as rsctp
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.transport._asyncio_sctp_wrap import gap_blocks, mend_tsn_wrap
from tests.webrtc_support import drop_first_data_packet, raw_pair

CERTIFICATE = RTCCertificate.generateCertificate()
MODULO = 1 << 32


def association(*, mended: bool, last: int) -> tuple[Any, list[Any]]:
    """An association whose cumulative TSN is ``last``, recording the chunks it sends."""
    sctp = rsctp.RTCSctpTransport(
        RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [CERTIFICATE]))
    if mended:
        assert mend_tsn_wrap(sctp)
    sctp._last_received_tsn = last
    sent: list[Any] = []

    async def send_chunk(chunk: Any) -> None:
        sent.append(chunk)

    sctp._send_chunk = send_chunk
    return sctp, sent


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[int, list[int]]:
    """(cumulative TSN before, offsets past it in arrival order): up to 40 TSNs,
    some lost, some repeated, reordered."""
    last = draw(st.one_of(st.integers(0, MODULO - 1), st.integers(MODULO - 45, MODULO - 1)))
    count = draw(st.integers(1, 40))
    offsets = draw(st.permutations(range(1, count + 1)))
    lost = draw(st.sets(st.integers(1, count), max_size=3))
    repeats = draw(st.lists(st.integers(1, count), max_size=4))
    order = [o for o in offsets if o not in lost] + repeats
    return last, draw(st.permutations(order))


def model(last: int, received: set[int]) -> tuple[int, list[int]]:
    """Cumulative TSN and the offsets held past it, for offsets ``received`` past ``last``."""
    cumulative = 0
    while cumulative + 1 in received:
        cumulative += 1
    return (last + cumulative) % MODULO, sorted(o - cumulative for o in received
                                                if o > cumulative)


def crosses_wrap(last: int, offsets: list[int]) -> bool:
    return last + max(offsets, default=0) >= MODULO


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_the_cumulative_tsn_moves_on_across_the_wrap(run: tuple[int, list[int]]) -> None:
    last, offsets = run

    async def main() -> None:
        mended, _ = association(mended=True, last=last)
        received: set[int] = set()
        for offset in offsets:
            duplicate = mended._mark_received((last + offset) % MODULO)
            assert duplicate == (offset in received)
            received.add(offset)
            cumulative, held = model(last, received)
            assert mended._last_received_tsn == cumulative
            assert sorted((t - cumulative) % MODULO for t in mended._sack_misordered) == held

    asyncio.run(main())


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_away_from_the_wrap_it_is_aiortcs_bookkeeping(run: tuple[int, list[int]]) -> None:
    last, offsets = run
    if crosses_wrap(last, offsets):
        last = (last + MODULO // 2) % MODULO  # the same run, far from the wrap

    async def main() -> None:
        mended, mended_sent = association(mended=True, last=last)
        plain, plain_sent = association(mended=False, last=last)
        for offset in offsets:
            tsn = (last + offset) % MODULO
            assert mended._mark_received(tsn) == plain._mark_received(tsn)
            assert (mended._last_received_tsn, mended._sack_misordered,
                    mended._sack_duplicates) == (
                plain._last_received_tsn, plain._sack_misordered, plain._sack_duplicates)
            await mended._send_sack()
            await plain._send_sack()
            assert bytes(mended_sent[-1]) == bytes(plain_sent[-1])

    asyncio.run(main())


def test_sack_gap_blocks_straddling_the_wrap_are_in_ascending_order() -> None:
    last = MODULO - 4
    held = {MODULO - 2, MODULO - 1, 0, 2, 3}  # offsets 2, 3, 4 | 6, 7
    assert gap_blocks(last, held) == [(2, 4), (6, 7)]

    async def main() -> None:
        sctp, sent = association(mended=True, last=last)
        sctp._sack_misordered = set(held)
        sctp._sack_duplicates = [MODULO - 1]
        sctp._sack_needed = True
        await sctp._send_sack()
        (sack,) = sent
        assert isinstance(sack, rsctp.SackChunk)
        assert (sack.cumulative_tsn, sack.gaps, sack.duplicates) == (
            last, [(2, 4), (6, 7)], [MODULO - 1])
        assert sctp._sack_duplicates == [] and not sctp._sack_needed

    asyncio.run(main())


def test_a_forward_tsn_just_below_the_wrap_moves_on_through_what_is_held() -> None:
    async def main() -> None:
        sctp, _ = association(mended=True, last=MODULO - 10)
        sctp._sack_misordered = {MODULO - 1, 0, 1, 5}
        forward = rsctp.ForwardTsnChunk()
        forward.cumulative_tsn = MODULO - 2
        forward.streams = []
        await sctp._receive_forward_tsn_chunk(forward)
        assert sctp._last_received_tsn == 1 and sctp._sack_misordered == {5}

    asyncio.run(main())


def test_mending_twice_or_without_aiortcs_hooks_does_nothing() -> None:
    class NotAnAssociation:
        pass

    async def main() -> None:
        sctp, _ = association(mended=True, last=0)
        assert not mend_tsn_wrap(sctp)
        assert not mend_tsn_wrap(NotAnAssociation())

    asyncio.run(main())


async def test_a_link_loses_a_packet_as_its_tsn_wraps_and_goes_on() -> None:
    # A real bridged link, moved (while idle) to just below the wrap: the packet
    # of the last TSN before it is lost, the rest arrive past it; the
    # retransmission must let the receiver's cumulative TSN move on to the end,
    # and messages flow on well past a window's worth.
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        sender, receiver = a._channel.transport, b._channel.transport
        assert receiver._taiinet_tsn_wrap and sender._taiinet_tsn_wrap  # the bridge's
        await b.send_message(b"hi")  # carries (or follows) the SACK of "hello"
        assert await a.receive_message() == b"hi"
        assert not sender._outbound_queue and not sender._sent_queue  # a is idle
        start = MODULO - 1
        sender._local_tsn = start
        sender._last_sacked_tsn = sender._advanced_peer_ack_tsn = start - 1
        receiver._last_received_tsn = start - 1
        dropped = drop_first_data_packet(sender.transport)
        messages = [bytes([i % 256]) * 1000 for i in range(400)]  # ~300 packets

        async def send_all() -> None:
            for message in messages:  # without waiting: TSNs past the lost one arrive
                await a.send_message(message)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_all)
                for message in messages:
                    assert await b.receive_message() == message
        assert dropped
        assert not receiver._sack_misordered
        assert 0 < receiver._last_received_tsn < start
