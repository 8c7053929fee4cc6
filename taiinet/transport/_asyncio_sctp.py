"""SCTP acknowledgements for aiortc's associations: every second packet, or bundled with DATA.

aiortc (1.16) answers every SCTP packet that carries DATA with a SACK in a
packet of its own, at once: for every data packet, a second packet goes the
other way, each with its DTLS record, UDP datagram and the peer's work to
read it.  RFC 9260 section 6.2 asks for a SACK for at least every second
packet and lets the others wait (at most 200 ms; here ``SACK_DELAY``), and
section 6.1 lets a SACK ride in front of outgoing DATA in the same packet.
``delay_sacks`` makes one association do both:

* the first packet of DATA arms a timer (``SACK_DELAY``); the second sends
  the SACK at once, as does the timer when it fires;
* a packet that leaves a gap in the TSNs or repeats one is acknowledged at
  once (section 6.7: the sender's fast retransmit needs these reports);
* a DATA chunk leaving while a SACK is owed carries it (one packet, if both
  fit in aiortc's packet size; otherwise two, SACK first);
* a received DATA chunk with the I bit set (RFC 9260 section 3.3.1, from
  RFC 7053) is acknowledged at once.

As a sender, the association sets the I bit on the last DATA chunk of a
transmission that leaves data waiting (the congestion window, or the burst
limit, is full) with an odd number of packets in flight: nothing else would
send before a SACK arrives, and the peer would hold the SACK for the last,
lone packet until its timer fired, stalling the link that long (with an
even number, its every-second-packet SACK comes anyway).  Chunks marked for
retransmission and not yet resent count as waiting data.  A peer that
predates RFC 7053 ignores the bit (a reserved bit then, ignored on receipt),
and then only its own SACK rule applies.

Nothing else changes: the SACK is the one aiortc builds (its own
``_send_sack``), so cumulative TSN, gaps and duplicates are as before, only
sent later or bundled.  The peer sees standard SCTP (any stack reads bundled
chunks; aiortc's own parser does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from itertools import islice
from struct import pack
from typing import Any

from aiortc import rtcsctptransport

from taiinet.transport._asyncio_eager import run_eagerly

logger = logging.getLogger(__name__)

#: Seconds a SACK for a lone packet waits for a second packet or outgoing DATA:
#: RFC 9260's largest (section 6.2), as in libwebrtc's dcsctp.  Once 5 ms, because
#: 200 ms without the I bit made ``tests/test_stream_process.py`` (WebRTC, video
#: frames of many packets) fail 3 runs in 6: a sender out of congestion window
#: waited for the timer.  Such a sender now asks for the SACK (the I bit).
SACK_DELAY = 0.2

#: The I bit of a DATA chunk's flags (RFC 9260 section 3.3.1): "send a SACK at once".
IMMEDIATE_ACK = 0x08

#: Outstanding chunks, from the earliest, looked at for one marked for retransmission.
RETRANSMIT_LOOKAHEAD = 8

_HOOKED = "_taiinet_delayed_sacks"
_FLUSH_HOOKED = "_taiinet_flush_at_once"


def delay_sacks(sctp: Any) -> bool:
    """Install delayed, bundled SACKs on one ``RTCSctpTransport``; False if aiortc lacks a hook."""
    send_sack: Callable[[], Awaitable[None]] | None = getattr(sctp, "_send_sack", None)
    send_chunk: Callable[[Any], Awaitable[None]] | None = getattr(sctp, "_send_chunk", None)
    transmit: Callable[[], Awaitable[None]] | None = getattr(sctp, "_transmit", None)
    receive_data: Callable[[Any], Awaitable[None]] | None = getattr(
        sctp, "_receive_data_chunk", None)
    if send_sack is None or send_chunk is None or getattr(sctp, _HOOKED, False):
        return False
    if transmit is None or receive_data is None:
        return False
    if not all(hasattr(sctp, name) for name in (
            "_sack_needed", "_remote_verification_tag", "_outbound_queue", "_sent_queue",
            "_flight_size_increase", "_flight_size_decrease")):
        return False
    flight_increase: Callable[[Any], None] = sctp._flight_size_increase
    flight_decrease: Callable[[Any], None] = sctp._flight_size_decrease
    owed = 0  # packets with DATA not yet acknowledged
    in_flight = 0  # DATA chunks (so packets) counted in aiortc's flight size
    immediate = False  # a DATA chunk since the last SACK asked for one at once
    leaving: list[Any] | None = None  # DATA chunks of the transmission under way
    timer: asyncio.TimerHandle | None = None
    timer_tasks: set[asyncio.Task[None]] = set()

    def cancel_timer() -> None:
        nonlocal timer
        if timer is not None:
            timer.cancel()
            timer = None

    async def sack_now() -> None:
        nonlocal owed, immediate
        cancel_timer()
        owed = 0
        immediate = False
        await send_sack()

    def timer_fired() -> None:
        nonlocal timer
        timer = None
        if owed and sctp._sack_needed and sctp.state == "connected":
            task = run_eagerly(_quietly(sack_now()))  # sent now, in the timer's callback
            if task is not None:
                timer_tasks.add(task)
                task.add_done_callback(timer_tasks.discard)

    async def delayed_send_sack() -> None:
        """Called by aiortc after each received packet that needs a SACK."""
        nonlocal owed, timer
        owed += 1
        if owed >= 2 or immediate or getattr(sctp, "_sack_misordered", None) or getattr(
            sctp, "_sack_duplicates", None
        ):
            await sack_now()
        elif timer is None:
            timer = asyncio.get_running_loop().call_later(SACK_DELAY, timer_fired)

    async def noting_receive_data(chunk: Any) -> None:
        """aiortc's handling of a received DATA chunk, noting its I bit."""
        nonlocal immediate
        if chunk.flags & IMMEDIATE_ACK:
            immediate = True
        await receive_data(chunk)

    async def collecting_transmit() -> None:
        """aiortc's ``_transmit``, its DATA chunks sent at the end, the last flagged if stalled.

        aiortc decides what leaves (retransmissions, new chunks, flight size,
        T3) exactly as before; only the packets go out once it has decided,
        so that the last one can carry the I bit when data is left waiting.
        """
        nonlocal leaving
        if leaving is not None:  # a transmission inside one (not seen in aiortc)
            await transmit()
            return
        leaving = []
        try:
            await transmit()
        finally:
            chunks, leaving = leaving, None
        if not chunks:
            return
        if waits_on_a_lone_packet():
            last = chunks[-1]
            last.flags |= IMMEDIATE_ACK
            try:
                for chunk in chunks:
                    await bundling_send_chunk(chunk)
            finally:
                last.flags &= ~IMMEDIATE_ACK  # a retransmission decides afresh
            return
        for chunk in chunks:
            await bundling_send_chunk(chunk)

    def counting_increase(chunk: Any) -> None:
        nonlocal in_flight
        if not chunk._in_flight:
            in_flight += 1
        flight_increase(chunk)

    def counting_decrease(chunk: Any) -> None:
        nonlocal in_flight
        if chunk._in_flight:
            in_flight -= 1
        flight_decrease(chunk)

    def waits_on_a_lone_packet() -> bool:
        """Data is left waiting for a SACK the peer would delay: ask for it at once.

        The peer acknowledges every second packet at once, so an even number
        of packets in flight brings a SACK anyway (one DATA chunk per packet
        here).  Waiting data: new chunks, or chunks marked for retransmission
        (looked for among the first outstanding ones, where loss recovery
        marks them; a full scan per transmission cost a third more CPU in a
        bulk transfer).
        """
        if in_flight % 2 == 0:
            return False
        if sctp._outbound_queue:
            return True
        return any(c._retransmit for c in islice(sctp._sent_queue, RETRANSMIT_LOOKAHEAD))

    async def deferring_send_chunk(chunk: Any) -> None:
        if leaving is not None and isinstance(chunk, rtcsctptransport.DataChunk):
            leaving.append(chunk)
            return
        await bundling_send_chunk(chunk)

    async def bundling_send_chunk(chunk: Any) -> None:
        if not (owed and sctp._sack_needed and isinstance(chunk, rtcsctptransport.DataChunk)):
            await send_chunk(chunk)
            return
        captured: list[Any] = []

        async def capture(sack: Any) -> None:
            captured.append(sack)

        sctp._send_chunk = capture  # aiortc's _send_sack builds the SACK and hands it here
        try:
            await sack_now()
        finally:
            sctp._send_chunk = deferring_send_chunk
        chunks = [bytes(c) for c in captured] + [bytes(chunk)]
        header = pack(
            "!HHL", sctp._local_port, sctp._remote_port, sctp._remote_verification_tag
        )
        body = b"".join(chunks)
        if len(header) + 4 + len(body) > rtcsctptransport.SCTP_MAX_PACKET_LENGTH:
            for c in [*captured, chunk]:
                await send_chunk(c)
            return
        checksum = rtcsctptransport.crc32c(  # type: ignore[attr-defined]
            header + b"\x00\x00\x00\x00" + body)
        await sctp.transport._send_data(header + pack("<L", checksum) + body)

    sctp._send_sack = delayed_send_sack
    sctp._send_chunk = deferring_send_chunk
    sctp._transmit = collecting_transmit
    sctp._receive_data_chunk = noting_receive_data
    sctp._flight_size_increase = counting_increase
    sctp._flight_size_decrease = counting_decrease
    setattr(sctp, _HOOKED, True)
    return True


async def _quietly(work: Awaitable[None]) -> None:
    """A timer's SACK: the association may have closed meanwhile (nothing to tell)."""
    try:
        await work
    except Exception:
        logger.debug("a delayed SACK could not be sent", exc_info=True)


def flush_at_once(sctp: Any) -> bool:
    """Hand a binary message to SCTP in ``send``'s call, not in a task of its own; False if no hook.

    aiortc's ``_data_channel_send`` queues the message and starts a task to
    flush the queue (``_data_channel_flush``): a task, a callback and a loop
    iteration per message before its packet leaves.  This one queues it the
    same way and runs the flush at once (``run_eagerly``; it never waits: the
    packets go to the socket, or stay queued in SCTP for the congestion
    window).  Text, empty and oversized messages keep aiortc's path.
    """
    send = getattr(sctp, "_data_channel_send", None)
    flush = getattr(sctp, "_data_channel_flush", None)
    queue = getattr(sctp, "_data_channel_queue", None)
    if send is None or flush is None or queue is None or getattr(sctp, _FLUSH_HOOKED, False):
        return False
    if not hasattr(sctp, "_remote_max_message_size"):
        return False

    def data_channel_send(channel: Any, data: bytes | str) -> None:
        limit = sctp._remote_max_message_size  # 0: no limit
        if not isinstance(data, bytes) or not data or (limit and len(data) > limit):
            send(channel, data)  # aiortc's path (and its error for an oversized one)
            return
        channel._addBufferedAmount(len(data))
        queue.append((channel, rtcsctptransport.WEBRTC_BINARY, data))
        run_eagerly(flush())

    sctp._data_channel_send = data_channel_send
    setattr(sctp, _FLUSH_HOOKED, True)
    return True
