"""SCTP DATA packets built and sent in the data channel's ``send`` call, with no coroutine.

aiortc (1.16) sends a data channel message through
``_data_channel_send``, ``_data_channel_flush``, ``_send`` and
``_transmit`` (four coroutine frames, a deque the chunk passes through, a
scan of the sent queue for retransmissions, ``_transmit_reconfig``), then
per chunk ``_send_chunk`` (here wrapped by ``_asyncio_sctp.delay_sacks``,
which sets the I bit and bundles an owed SACK), ``serialize_packet``
(``bytes`` of the chunk) and the DTLS transport's ``_send_data``
coroutine.  ``send_directly`` makes one association do, for the usual
message, what all of that does, in one plain function:

* the message's DATA chunks are made as ``_send`` makes them (the same
  objects, with the same counters, go into the sent queue, so that SACKs,
  fast retransmit, T3 and abandonment treat them as aiortc's own);
* they leave as ``_transmit`` would let them (congestion window, burst
  limit), each in its own packet, the I bit and an owed SACK as
  ``delay_sacks`` would add them; the rest wait in aiortc's outbound queue
  for a SACK, and then leave by aiortc's path;
* the packets go to ``_asyncio_dtls.record_writer``: encrypted and on the
  socket before ``send`` returns.

The packets and the association's state are aiortc's to the byte (a test
drives a hooked and a plain association with the same drawn sends, SACKs,
losses and timeouts and compares them after every step).  Anything else
takes aiortc's path (as ``flush_at_once`` runs it): a text or empty
message, one too large for the peer, an association not established,
messages or chunks already waiting, a retransmission or a FORWARD TSN
pending, a stream reset queued, an owed SACK that reports gaps or
duplicates, aiortc's debug log on, a wrapped ``_send_chunk`` or DTLS
``_send_data`` (a test's counter, say), a DTLS pair whose sends may wait.

``sack_packet`` does the same for a SACK sent on its own (``delay_sacks``
uses it): aiortc builds a ``SackChunk``, serialises it and awaits the same
chain for a 16-byte chunk.  And ``send_directly`` reads the usual SACK
received (no gap reports, not in fast recovery) in one plain call, running
aiortc's flush and transmission after it only when something waits for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from struct import pack
from typing import Any

from aiortc import rtcsctptransport as sctp_module
from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    SCTP_MAX_PACKET_LENGTH,
    SCTP_TSN_MODULO,
    USERDATA_MAX_LENGTH,
    WEBRTC_BINARY,
    DataChunk,
    SackChunk,
)
from aiortc.utils import uint32_gt, uint32_gte

from taiinet.transport._asyncio_dtls import record_writer
from taiinet.transport._asyncio_eager import Pending, hook_with_plain_variant

#: The I bit of a DATA chunk's flags (RFC 9260 section 3.3.1): "send a SACK at once".
IMMEDIATE_ACK = 0x08

#: Sends one SCTP packet now (encrypted, on the socket), or raises.
PacketWriter = Callable[[bytes], None]
#: The writer for the next packet, or None if this packet must take aiortc's path.
WriterSource = Callable[[], PacketWriter | None]

_HOOKED = "_taiinet_direct_sends"
_new_chunk = object.__new__
#: aiortc's checksum function (CRC32c, RFC 9260 appendix B).
_CRC32C: Callable[[bytes], int] | None = getattr(sctp_module, "crc32c", None)
_AIORTC_LOGGER = logging.getLogger(sctp_module.__name__)
_ZERO_CHECKSUM = b"\x00\x00\x00\x00"
_HEADER_LENGTH = 12  # ports, verification tag, checksum
_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_ATTRIBUTES = (
    "_data_channel_send", "_data_channel_queue", "_outbound_queue", "_sent_queue",
    "_outbound_stream_seq", "_local_tsn", "_flight_size", "_cwnd", "_fast_recovery_exit",
    "_forward_tsn_chunk", "_reconfig_queue", "_association_state", "_remote_max_message_size",
    "_t3_handle", "_t3_start", "_local_port", "_remote_port", "_remote_verification_tag",
    "_sack_misordered", "_sack_duplicates", "_last_received_tsn", "_advertised_rwnd",
    "_sack_needed", "_send_chunk", "State", "_receive_sack_chunk", "_last_sacked_tsn",
    "_partial_bytes_acked", "_advanced_peer_ack_tsn", "_forward_tsn_streams",
    "_update_rto", "_update_advanced_peer_ack_point", "_t3_cancel", "_t3_restart",
)
#: aiortc methods of the send path that, wrapped on an instance, must keep seeing every message.
_PATH = ("_data_channel_flush", "_send", "_transmit", "_transmit_reconfig")


@dataclass(frozen=True, slots=True)
class DelayedSacks:
    """What ``_asyncio_sctp.delay_sacks`` tells this path: whether a SACK rides with DATA."""

    #: A SACK is owed and would ride in front of the next DATA chunk.
    owed: Callable[[], bool]
    #: The owed SACK left: stop its timer, owe nothing (``delay_sacks``' own ``sack_now``).
    settled: Callable[[], None]
    #: Its ``_send_chunk`` wrapper: another one installed later sees every chunk.
    send_chunk: Callable[[Any], Any]


def default_writer(sctp: Any) -> WriterSource:
    """The association's DTLS transport's ``record_writer``, asked afresh for every packet."""
    return partial(record_writer, sctp.transport)  # aiortc never replaces it


def plain_sack(sctp: Any) -> bytes | None:
    """aiortc's SACK chunk (``_send_sack``) as bytes, if it reports no gap and no duplicate."""
    if sctp._sack_misordered or sctp._sack_duplicates or sctp._last_received_tsn is None:
        return None
    return pack("!BBHLLHH", SackChunk.type, 0, 16, sctp._last_received_tsn,
                max(0, sctp._advertised_rwnd), 0, 0)


def packet(sctp: Any, body: bytes) -> bytes:
    """``serialize_packet``: the common header and checksum in front of chunks' bytes."""
    assert _CRC32C is not None  # nothing is hooked without it
    header = pack("!HHL", sctp._local_port, sctp._remote_port, sctp._remote_verification_tag)
    return header + pack("<L", _CRC32C(header + _ZERO_CHECKSUM + body)) + body


def sack_packet(sctp: Any, writer: WriterSource) -> bool:
    """Send aiortc's SACK in a packet of its own now, as ``_send_sack`` would; False: not done.

    False (nothing changed) when the SACK reports gaps or duplicates, while
    aiortc's debug log is on, or when ``writer`` has no writer for it.
    """
    sack = plain_sack(sctp)
    if sack is None or _AIORTC_LOGGER.isEnabledFor(logging.DEBUG):
        return False
    write = writer()
    if write is None:
        return False
    write(packet(sctp, sack))
    sctp._sack_needed = False  # what ``_send_sack`` leaves (no duplicates to clear)
    return True


def send_directly(sctp: Any, writer: WriterSource | None = None) -> bool:
    """Send ``sctp``'s usual messages directly; False if aiortc or ``delay_sacks`` lacks a hook.

    Install after ``delay_sacks`` and ``flush_at_once`` (whose
    ``_data_channel_send`` takes every other message).
    """
    sacks = getattr(sctp, "_taiinet_delayed_sacks", None)
    if (
        getattr(sctp, _HOOKED, False)
        or not isinstance(sacks, DelayedSacks)
        or not all(hasattr(sctp, a) for a in _ATTRIBUTES)
        or any(name in vars(sctp) for name in _PATH)
        or _CRC32C is None
    ):
        return False
    aiortc_send: Callable[[Any, bytes | str], None] = sctp._data_channel_send
    source = writer if writer is not None else default_writer(sctp)
    established = sctp.State.ESTABLISHED

    def data_channel_send(channel: Any, data: bytes | str) -> None:
        size = len(data)
        limit = sctp._remote_max_message_size  # 0: no limit
        if (
            type(data) is not bytes
            or not size
            or (limit and size > limit)
            or sctp._association_state != established
            or sctp._data_channel_queue
            or sctp._outbound_queue
            or sctp._forward_tsn_chunk is not None
            or sctp._reconfig_queue
            or channel.id is None
            or sctp._flight_size >= sctp._cwnd
            or sctp._send_chunk is not sacks.send_chunk
            or _AIORTC_LOGGER.isEnabledFor(logging.DEBUG)
            or _retransmission_pending(sctp)
        ):
            aiortc_send(channel, data)
            return
        sack: bytes | None = None
        if sacks.owed():
            sack = plain_sack(sctp)
            if sack is None:
                aiortc_send(channel, data)
                return
        write = source()
        if write is None:
            aiortc_send(channel, data)
            return
        channel._addBufferedAmount(size)
        chunks = _chunks(sctp, channel, data)
        _transmit(sctp, chunks, sack, sacks, write)
        channel._addBufferedAmount(-size)

    sctp._data_channel_send = data_channel_send
    if "_receive_sack_chunk" not in vars(sctp):  # another module's hook sees every SACK
        _receive_sacks_directly(sctp)
    setattr(sctp, _HOOKED, True)
    return True


def _receive_sacks_directly(sctp: Any) -> None:
    """Read the usual SACK in one plain call: ``_receive_sack_chunk`` with nothing left to do.

    aiortc's reads a SACK and then always awaits ``_data_channel_flush``
    (which awaits ``_transmit_reconfig``) and ``_transmit``: three
    coroutines that, with nothing queued, waiting or to reset, do nothing;
    and ``_update_advanced_peer_ack_point`` builds a new dict.  The usual
    SACK (no gap reports, not in fast recovery) is read here as aiortc reads
    it, and the rest runs only if it has something to do.
    """
    aiortc_receive: Callable[[SackChunk], Any] = sctp._receive_sack_chunk

    def receive_sack_chunk_now(chunk: SackChunk) -> Pending:
        if chunk.gaps or sctp._fast_recovery_exit is not None:
            aiortc_receiving: Coroutine[Any, Any, None] = aiortc_receive(chunk)
            return aiortc_receiving
        if not _acknowledge(sctp, chunk.cumulative_tsn):
            return None  # an old SACK: aiortc ignores it whole
        if (
            sctp._data_channel_queue
            or sctp._outbound_queue
            or sctp._forward_tsn_chunk is not None
            or sctp._reconfig_queue
            or _retransmission_pending(sctp)
        ):
            return flush_and_transmit()
        return None

    async def flush_and_transmit() -> None:
        await sctp._data_channel_flush()
        await sctp._transmit()

    sctp._receive_sack_chunk = hook_with_plain_variant(receive_sack_chunk_now)


def _acknowledge(sctp: Any, cumulative_tsn: int) -> bool:
    """``_receive_sack_chunk`` for a SACK without gap reports, out of fast recovery; False: old."""
    if uint32_gt(sctp._last_sacked_tsn, cumulative_tsn):
        return False
    received_time = time.time()
    sctp._last_sacked_tsn = cumulative_tsn
    cwnd_fully_utilized = sctp._flight_size >= sctp._cwnd
    done = 0
    done_bytes = 0
    sent_queue = sctp._sent_queue
    while sent_queue and uint32_gte(cumulative_tsn, sent_queue[0].tsn):
        chunk = sent_queue.popleft()
        done += 1
        if not chunk._acked:
            done_bytes += chunk._book_size
        if chunk._in_flight:  # ``_flight_size_decrease``
            chunk._in_flight = False
            sctp._flight_size -= chunk._book_size
        if done == 1 and chunk._sent_count == 1:
            sctp._update_rto(received_time - chunk._sent_time)
    if done and cwnd_fully_utilized:
        if sctp._cwnd <= sctp._ssthresh:
            sctp._cwnd += min(done_bytes, USERDATA_MAX_LENGTH)  # slow start
        else:
            sctp._partial_bytes_acked += done_bytes  # congestion avoidance
            if sctp._partial_bytes_acked >= sctp._cwnd:
                sctp._partial_bytes_acked -= sctp._cwnd
                sctp._cwnd += USERDATA_MAX_LENGTH
    if not sent_queue:
        sctp._t3_cancel()
    elif done:
        sctp._t3_restart()
    if (
        sctp._forward_tsn_streams
        or (sent_queue and sent_queue[0]._abandoned)
        or (sctp._outbound_queue and sctp._outbound_queue[0]._abandoned)
        or uint32_gt(sctp._advanced_peer_ack_tsn, cumulative_tsn)
    ):
        sctp._update_advanced_peer_ack_point()
    elif uint32_gt(cumulative_tsn, sctp._advanced_peer_ack_tsn):
        sctp._advanced_peer_ack_tsn = cumulative_tsn  # all it does with nothing abandoned
    return True


def _retransmission_pending(sctp: Any) -> bool:
    """Whether a sent chunk waits for retransmission (aiortc's ``_transmit`` sends those first)."""
    for chunk in sctp._sent_queue:  # noqa: SIM110 (a loop: no generator per message)
        if chunk._retransmit:
            return True
    return False


def _chunks(sctp: Any, channel: Any, data: bytes) -> list[DataChunk]:
    """The DATA chunks ``_send`` makes of a binary message, their TSNs and stream sequence taken."""
    stream_id = channel.id
    ordered = channel.ordered
    lifetime = channel.maxPacketLifeTime
    expiry = time.time() + lifetime / 1000 if lifetime else None
    max_retransmits = channel.maxRetransmits
    if ordered:
        stream_seq = sctp._outbound_stream_seq.get(stream_id, 0)
        flags = 0
    else:
        stream_seq = 0
        flags = SCTP_DATA_UNORDERED
    size = len(data)
    tsn = sctp._local_tsn
    chunks = []
    for pos in range(0, size, USERDATA_MAX_LENGTH):
        chunk = _new_chunk(DataChunk)  # every field is set below: no __init__ defaults
        chunk.flags = flags | (SCTP_DATA_FIRST_FRAG if pos == 0 else 0) | (
            SCTP_DATA_LAST_FRAG if pos + USERDATA_MAX_LENGTH >= size else 0)
        chunk.tsn = tsn
        chunk.stream_id = stream_id
        chunk.stream_seq = stream_seq
        chunk.protocol = WEBRTC_BINARY
        user_data = data[pos : pos + USERDATA_MAX_LENGTH]
        chunk.user_data = user_data
        chunk._abandoned = False
        chunk._acked = False
        chunk._book_size = len(user_data)
        chunk._expiry = expiry
        chunk._in_flight = False
        chunk._max_retransmits = max_retransmits
        chunk._misses = 0
        chunk._retransmit = False
        chunk._sent_count = 0
        chunk._sent_time = None
        chunks.append(chunk)
        tsn = (tsn + 1) % SCTP_TSN_MODULO
    sctp._local_tsn = tsn
    if ordered:
        sctp._outbound_stream_seq[stream_id] = (stream_seq + 1) & 0xFFFF
    return chunks


def _transmit(sctp: Any, chunks: list[DataChunk], sack: bytes | None, sacks: DelayedSacks,
              write: PacketWriter) -> None:
    """``_transmit`` with an empty outbound queue and nothing to retransmit, and ``_send_chunk``."""
    burst = (2 if sctp._fast_recovery_exit is not None else 4) * USERDATA_MAX_LENGTH
    cwnd = min(sctp._flight_size + burst, sctp._cwnd)
    sent_queue = sctp._sent_queue
    left = 0
    for chunk in chunks:
        if sctp._flight_size >= cwnd:
            break
        left += 1
        sent_queue.append(chunk)
        chunk._in_flight = True
        sctp._flight_size += chunk._book_size
        chunk._sent_count = 1
        chunk._sent_time = time.time()
        flags = chunk.flags
        if flags & SCTP_DATA_LAST_FRAG and sctp._flight_size >= sctp._cwnd:
            flags |= IMMEDIATE_ACK  # ``delay_sacks``: the window is full, ask for the SACK
        user_data = chunk.user_data
        length = 16 + len(user_data)
        body = pack("!BBHLHHL", DataChunk.type, flags, length, chunk.tsn, chunk.stream_id,
                    chunk.stream_seq, chunk.protocol) + user_data + _PADDING[length % 4]
        if sack is not None:
            sacks.settled()
            sctp._sack_needed = False
            if _HEADER_LENGTH + len(sack) + len(body) > SCTP_MAX_PACKET_LENGTH:
                write(packet(sctp, sack))  # too large together: the SACK first
            else:
                body = sack + body
            sack = None
        write(packet(sctp, body))
        if not sctp._t3_handle:
            sctp._t3_start()
    sctp._outbound_queue.extend(chunks[left:])
