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

The SACK is the one aiortc builds (its own ``_send_sack``; the usual one,
without gaps or duplicates, the same bytes built by
``_asyncio_sctp_tx``), so cumulative TSN, gaps and duplicates are as
before, only sent later or bundled; the peer sees standard SCTP (any stack
reads bundled chunks).  The delay timers (one per delay below) move lazily: a
SACK that leaves clears their deadlines, and one loop timer each stays armed
at or before the next, not one made and cancelled per packet received.

A lone packet whose last DATA chunk does not end its message is
acknowledged after only ``SACK_DELAY_MID_MESSAGE`` (aiortc's 5 ms of
before): its sender has more of the message to send and most likely waits
for the congestion window.  For a packet that ends a message the receiver
cannot tell, so the sender says it: it sets the I bit on a last DATA chunk
that ends a message and leaves its congestion window full: nothing more
leaves before a SACK arrives (aiortc sends neither new nor retransmitted
chunks then; a message handed over later waits too), and the peer would
otherwise hold that SACK until its 200 ms timer fired, stalling the link
that long.  A peer that predates RFC 7053 ignores the bit (a
reserved bit then, ignored on receipt), and then only its own SACK rule
applies.  (Asking only when data was waiting, or only with an odd number
of packets in flight, halved the 16 KiB throughput of
``bench/transport.py``: messages handed over after the window filled
waited for the peer's timer.  Asking on every transmission that fills the
window, mid-message too, flagged half the DATA chunks of a bulk transfer
and cost 8 % more CPU per 16 KB message in ``bench/webrtc_cpu.py``.  The
bit is decided as each chunk leaves, with no hook around aiortc's
``_transmit``: one cost ping-pong frames 5-7 % more CPU.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from struct import pack
from typing import Any

from aiortc import rtcsctptransport

from taiinet.transport._asyncio_eager import (
    PLAIN_VARIANT,
    Pending,
    call_now,
    hook_with_plain_variant,
    run_eagerly,
)
from taiinet.transport._asyncio_sctp_timers import LazyDeadline
from taiinet.transport._asyncio_sctp_tx import (
    IMMEDIATE_ACK,
    DelayedSacks,
    WriterSource,
    default_writer,
    sack_packet,
)

logger = logging.getLogger(__name__)

#: Seconds a SACK for a lone packet waits for a second packet or outgoing DATA:
#: RFC 9260's largest (section 6.2), as in libwebrtc's dcsctp.  Once 5 ms, because
#: 200 ms without the I bit made ``tests/test_stream_process.py`` (WebRTC, video
#: frames of many packets) fail 3 runs in 6: a sender out of congestion window
#: waited for the timer.  Such a sender now asks for the SACK (the I bit).
SACK_DELAY = 0.2
#: The same for a lone packet whose last DATA chunk does not end its message: the
#: sender has more of the message to send and has not sent it, most likely held by
#: its congestion window, so it waits for this SACK.  A window-limited bulk transfer
#: (``bench/transport.py``, 16 KiB) lost half its throughput with 200 ms here, the I
#: bit on every window-limited transmission or not.
SACK_DELAY_MID_MESSAGE = 0.005

__all__ = ["IMMEDIATE_ACK", "SACK_DELAY", "SACK_DELAY_MID_MESSAGE", "delay_sacks",
           "flush_at_once"]

_HOOKED = "_taiinet_delayed_sacks"
_FLUSH_HOOKED = "_taiinet_flush_at_once"


def delay_sacks(sctp: Any, writer: WriterSource | None = None) -> bool:
    """Install delayed, bundled SACKs on one ``RTCSctpTransport``; False if aiortc lacks a hook.

    A SACK sent on its own goes to ``writer`` (default: the DTLS transport's
    ``record_writer``) when ``_asyncio_sctp_tx.sack_packet`` can build it.
    """
    send_sack: Callable[[], Awaitable[None]] | None = getattr(sctp, "_send_sack", None)
    send_chunk: Callable[[Any], Awaitable[None]] | None = getattr(sctp, "_send_chunk", None)
    receive_data: Callable[[Any], Awaitable[None]] | None = getattr(
        sctp, "_receive_data_chunk", None)
    if send_sack is None or send_chunk is None or getattr(sctp, _HOOKED, False):
        return False
    if receive_data is None:
        return False
    if not all(hasattr(sctp, name) for name in (
            "_sack_needed", "_remote_verification_tag", "_flight_size", "_cwnd")):
        return False
    #: ``receive_data``'s plain variant, read once (``call_now`` would read it per chunk).
    receive_data_now: Callable[[Any], Pending] | None = getattr(receive_data, PLAIN_VARIANT, None)
    loop: asyncio.AbstractEventLoop | None = None  # the association's (aiortc's run on one)
    owed = 0  # packets with DATA not yet acknowledged
    immediate = False  # a DATA chunk since the last SACK asked for one at once
    message_ended = True  # the last DATA chunk received ended its message
    timer_tasks: set[asyncio.Task[None]] = set()

    source = writer if writer is not None else default_writer(sctp)

    def settled() -> None:
        nonlocal owed, immediate
        delay.clear()  # the loop timers, if any, fire and find nothing to do
        mid_message_delay.clear()
        owed = 0
        immediate = False

    def sack_now_now() -> Pending:
        settled()
        if sctp._send_chunk is not flagging_send_chunk or not sack_packet(sctp, source):
            return call_now(send_sack)
        return None

    async def sack_now() -> None:
        pending = sack_now_now()
        if pending is not None:
            await pending

    async def bundled_sack() -> None:
        settled()
        await send_sack()

    def delay_over() -> None:
        if owed and sctp._sack_needed and sctp.state == "connected":
            task = run_eagerly(_quietly(sack_now()))  # sent now, in the timer's callback
            if task is not None:
                timer_tasks.add(task)
                task.add_done_callback(timer_tasks.discard)

    # The delay timers, moved lazily (as ``_asyncio_sctp_timers`` moves T3): a SACK
    # that leaves clears its deadline only, and one loop timer stays armed at or
    # before it, not a loop timer made and cancelled per packet.  One per delay:
    # with one for both, a 5 ms deadline after a 200 ms one cancelled its timer
    # and made another, which fired and made a third for the next 200 ms one.
    delay = LazyDeadline(delay_over)  # SACK_DELAY
    mid_message_delay = LazyDeadline(delay_over)  # SACK_DELAY_MID_MESSAGE

    def delayed_send_sack_now() -> Pending:
        """Called by aiortc after each received packet that needs a SACK."""
        nonlocal owed, loop
        owed += 1
        if owed >= 2 or immediate or getattr(sctp, "_sack_misordered", None) or getattr(
            sctp, "_sack_duplicates", None
        ):
            return sack_now_now()
        if delay.deadline is None and mid_message_delay.deadline is None:
            if loop is None:  # once: each ``get_running_loop`` is a getpid system call
                loop = asyncio.get_running_loop()
            if message_ended:
                delay.set(loop, loop.time() + SACK_DELAY)
            else:
                mid_message_delay.set(loop, loop.time() + SACK_DELAY_MID_MESSAGE)
        return None

    def noting_receive_data_now(chunk: Any) -> Pending:
        """aiortc's handling of a received DATA chunk, noting its I bit."""
        nonlocal immediate, message_ended
        if chunk.flags & IMMEDIATE_ACK:
            immediate = True
        message_ended = bool(chunk.flags & rtcsctptransport.SCTP_DATA_LAST_FRAG)
        if receive_data_now is not None:
            return receive_data_now(chunk)
        return call_now(receive_data, chunk)

    async def flagging_send_chunk(chunk: Any) -> None:
        """Set the I bit on a message's last chunk that leaves the congestion window full.

        aiortc counts a chunk in its flight size before it hands it here, and
        sends nothing more (new or retransmitted) while the window is full,
        so this chunk is the transmission's last: a message handed over
        later waits for a SACK, which the peer would delay.
        """
        if not (isinstance(chunk, rtcsctptransport.DataChunk)
                and chunk.flags & rtcsctptransport.SCTP_DATA_LAST_FRAG
                and sctp._flight_size >= sctp._cwnd):
            await bundling_send_chunk(chunk)
            return
        chunk.flags |= IMMEDIATE_ACK
        try:
            await bundling_send_chunk(chunk)
        finally:
            chunk.flags &= ~IMMEDIATE_ACK  # a retransmission decides afresh

    async def bundling_send_chunk(chunk: Any) -> None:
        if not (owed and sctp._sack_needed and isinstance(chunk, rtcsctptransport.DataChunk)):
            await send_chunk(chunk)
            return
        captured: list[Any] = []

        async def capture(sack: Any) -> None:
            captured.append(sack)

        sctp._send_chunk = capture  # aiortc's _send_sack builds the SACK and hands it here
        try:
            await bundled_sack()
        finally:
            sctp._send_chunk = flagging_send_chunk
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

    sctp._send_sack = hook_with_plain_variant(delayed_send_sack_now)
    sctp._send_chunk = flagging_send_chunk
    sctp._receive_data_chunk = hook_with_plain_variant(noting_receive_data_now)
    setattr(sctp, _HOOKED, DelayedSacks(
        owed=lambda: bool(owed and sctp._sack_needed), settled=settled,
        send_chunk=flagging_send_chunk))
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
    ``_asyncio_sctp_tx.send_directly``, installed after this, sends the usual
    message without the flush, and this path takes the others.
    """
    send = getattr(sctp, "_data_channel_send", None)
    flush = getattr(sctp, "_data_channel_flush", None)
    if (send is None or flush is None or not hasattr(sctp, "_data_channel_queue")
            or getattr(sctp, _FLUSH_HOOKED, False)):
        return False
    if not hasattr(sctp, "_remote_max_message_size"):
        return False

    def data_channel_send(channel: Any, data: bytes | str) -> None:
        limit = sctp._remote_max_message_size  # 0: no limit
        if not isinstance(data, bytes) or not data or (limit and len(data) > limit):
            send(channel, data)  # aiortc's path (and its error for an oversized one)
            return
        channel._addBufferedAmount(len(data))
        # aiortc replaces its queue when a channel closes early: look it up afresh
        sctp._data_channel_queue.append((channel, rtcsctptransport.WEBRTC_BINARY, data))
        run_eagerly(flush())

    sctp._data_channel_send = data_channel_send
    setattr(sctp, _FLUSH_HOOKED, True)
    return True
