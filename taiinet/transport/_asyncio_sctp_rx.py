"""SCTP packets read with less Python per packet: the usual DATA chunk in a few assignments.

aiortc (1.16) reads an SCTP packet in ``RTCSctpTransport._handle_data``:
``parse_packet``, a list of the packet's INIT chunks, then per chunk
``_receive_chunk`` (a debug line formatted, a chain of ``isinstance``) and,
for DATA, ``_receive_data_chunk``: ``_mark_received`` sorts the out-of-order
TSNs and rebuilds the duplicate list and the out-of-order set, the stream's
reassembly appends the chunk and a generator scans and re-slices the list,
``_reset_deferred_streams`` looks for a pending stream reset.  For the DATA
chunk a TaiiNet link carries nearly always (the next TSN, a whole ordered
message, its stream's next, nothing out of order or waiting) all of that
ends in four assignments and the hand-over of the message.

``receive_directly`` makes one association do just that:

* ``_handle_data``: a packet of DATA and SACK chunks only goes chunk by chunk
  to ``_receive_data_chunk`` / ``_receive_sack_chunk``, then, as aiortc does,
  ``_send_sack`` if one is needed.  Any other packet (INIT, HEARTBEAT,
  RE-CONFIG, an unknown chunk type), and any packet while aiortc's logger
  writes debug lines, goes to aiortc's own ``_handle_data``; so does one that
  fails a check (length, chunk length, checksum, verification tag, a chunk
  too short to parse, a SACK gap block ending before it starts): aiortc's
  parse, made sound by ``_asyncio_sctp_sound``, drops it.  A DATA chunk
  before the peer's INIT or INIT ACK was read is discarded, as there.
* ``_receive_data_chunk``: the usual chunk as above, and the in-order
  fragments of an ordered message (a link frame over 1,200 bytes spans
  several chunks): the first with nothing waiting in its stream is kept, a
  middle or last one with the next TSN that continues the stream's one
  waiting message (its first fragment the stream's next, every TSN since
  held) is kept or, the last, joins the rest into the message handed on.
  Any other chunk (a gap or a duplicate, unordered, a stream sequence out of
  turn, fragments of another message waiting, a deferred stream reset, a
  new stream) goes to aiortc's.  The state left is aiortc's to the field (a test compares them
  chunk by chunk on drawn sequences), but for one bound (below).  Hooks that wrap
  ``_receive_data_chunk`` go on after this one (they then wrap it); one
  already there keeps seeing every chunk (this path is then not installed).

Both are plain calls on the usual path (``_asyncio_eager.call_now``, its two
lines inline where a packet passes, a Python call less per hook): a
packet's chunks, the message handed to the data channel and the SACK owed go
from the DTLS record to the socket without a coroutine; a coroutine is made
only for what waits (receive back-pressure) or falls back to aiortc.  A DATA
chunk is parsed with one unpack and one copy into aiortc's ``DataChunk``, and the usual
SACK (no gap reports, no duplicates) with one unpack into its ``SackChunk``.

The bound: aiortc holds every DATA chunk it cannot hand on yet (after a gap,
or a fragment of a message not ended), however far ahead its TSN and past
its receive window; a peer could grow it without end (a message that never
ends, TSNs far ahead).  Here a chunk that would be held past the window is
dropped as lost, as RFC 9260 section 6.2 lets a receiver with no window left
drop a chunk beyond the highest TSN received, and so is one more than
``MAX_TSN_AHEAD`` TSNs ahead (``_asyncio_sctp_sound``, which drops such a
chunk on aiortc's path too): an honest sender keeps within our window and
retransmits what was dropped; chunks that fill a gap below the highest TSN
are still taken (they let held messages out).  A SACK reports the window.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from struct import Struct
from typing import Any

from aiortc import rtcsctptransport as sctp_module
from aiortc.rtcsctptransport import (
    SCTP_CHUNK_HEADER_LENGTH,
    SCTP_COMMON_HEADER_LENGTH,
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    SCTP_PACKET_MINIMUM_LENGTH,
    DataChunk,
    SackChunk,
)

from taiinet.transport._asyncio_eager import PLAIN_VARIANT as _NOW
from taiinet.transport._asyncio_eager import Pending, hook_with_plain_variant
from taiinet.transport._asyncio_sctp_sound import MAX_TSN_AHEAD, sound_sack

_HOOKED = "_taiinet_direct_receive"
#: A DATA chunk's header (type, flags, length, TSN, stream, stream sequence, protocol).
_DATA_HEADER_LENGTH = 16
#: ... its fields after the type byte (flags, length, TSN, stream, stream sequence, protocol).
_unpack_data = Struct("!xBHLHHL").unpack_from
#: A SACK chunk without gap reports or duplicates: its length, and its fields after the header.
_PLAIN_SACK_LENGTH = 16
_unpack_plain_sack = Struct("!xBHLLHH").unpack_from
_unpack_chunk_header = Struct("!BBH").unpack_from
_unpack_tag = Struct("!4xL").unpack_from  # the common header's verification tag ...
_unpack_checksum = Struct("<8xL").unpack_from  # ... and checksum (CRC32c, little-endian)
_DATA: int = DataChunk.type
_SACK: int = SackChunk.type
_new_data_chunk = object.__new__
#: aiortc's checksum function (CRC32c, RFC 9260 appendix B).
_CRC32C: Callable[[bytes], int] | None = getattr(sctp_module, "crc32c", None)
_WHOLE_ORDERED = SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG
_FRAGMENT_BITS = SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG | SCTP_DATA_UNORDERED
_FIRST_OR_UNORDERED = SCTP_DATA_FIRST_FRAG | SCTP_DATA_UNORDERED
_LAST_OR_UNORDERED = SCTP_DATA_LAST_FRAG | SCTP_DATA_UNORDERED
#: aiortc's per-chunk debug lines: while they are written, aiortc reads every packet.
_AIORTC_LOGGER = logging.getLogger(sctp_module.__name__)
_ATTRIBUTES = (
    "_handle_data", "_receive_data_chunk", "_receive_sack_chunk", "_receive", "_send_sack",
    "_sack_needed", "_sack_misordered", "_sack_duplicates", "_last_received_tsn",
    "_inbound_streams", "_advertised_rwnd", "_reconfig_deferred", "_local_verification_tag",
)


def receive_directly(sctp: Any) -> bool:
    """Read ``sctp``'s usual packets and DATA chunks directly; False if aiortc lacks a hook."""
    if (
        getattr(sctp, _HOOKED, False)
        or not all(hasattr(sctp, a) for a in _ATTRIBUTES)
        or "_receive_chunk" in vars(sctp)  # someone else reads chunks: leave the path to them
        or _CRC32C is None
        or getattr(sctp_module, "CHUNK_TYPES", {}).get(DataChunk.type) is not DataChunk
        or sctp_module.CHUNK_TYPES.get(SackChunk.type) is not SackChunk
    ):
        return False
    aiortc_handle_data: Callable[[bytes], Coroutine[Any, Any, None]] = sctp._handle_data
    aiortc_receive_data_chunk: Callable[[DataChunk], Awaitable[None]] = sctp._receive_data_chunk
    plain_receive = getattr(type(sctp), "_receive", None) is sctp_module.RTCSctpTransport._receive

    def handle_data_now(data: bytes) -> Pending:
        chunks = _data_and_sacks(data, sctp._local_verification_tag)
        if chunks is None or _AIORTC_LOGGER.isEnabledFor(logging.DEBUG):
            aiortc_handling: Coroutine[Any, Any, None] = aiortc_handle_data(data)
            return aiortc_handling
        # ``call_now`` inline (its two lines): a call less per chunk and per SACK owed.
        for index, chunk in enumerate(chunks):
            hook = (sctp._receive_data_chunk if type(chunk) is DataChunk
                    else sctp._receive_sack_chunk)
            now = getattr(hook, _NOW, None)
            pending = now(chunk) if now is not None else hook(chunk)
            if pending is not None:
                return handle_rest(pending, chunks, index + 1)
        if sctp._sack_needed:
            hook = sctp._send_sack
            now = getattr(hook, _NOW, None)
            return now() if now is not None else hook()  # type: ignore[no-any-return]
        return None

    async def handle_rest(pending: Coroutine[Any, Any, None], chunks: list[Any],
                          start: int) -> None:
        """The rest of a packet after a chunk that has to wait (``handle_data``'s loop)."""
        await pending
        for chunk in chunks[start:]:
            if type(chunk) is DataChunk:
                await sctp._receive_data_chunk(chunk)
            else:
                await sctp._receive_sack_chunk(chunk)
        if sctp._sack_needed:
            await sctp._send_sack()

    def deliver(stream_id: int, pp_id: int, data: bytes) -> Pending:
        """``await sctp._receive(...)``; aiortc's own ``_receive`` only passes it on."""
        if "_receive" in vars(sctp) or not plain_receive:
            receiving: Coroutine[Any, Any, None] = sctp._receive(stream_id, pp_id, data)
            return receiving
        hook = sctp._data_channel_receive  # ``call_now``, inline
        now = getattr(hook, _NOW, None)
        if now is not None:
            return now(stream_id, pp_id, data)  # type: ignore[no-any-return]
        return hook(stream_id, pp_id, data)  # type: ignore[no-any-return]

    def receive_data_chunk_now(chunk: DataChunk) -> Pending:
        stream = sctp._inbound_streams.get(chunk.stream_id)
        last_tsn = sctp._last_received_tsn
        if (
            stream is None
            or chunk.stream_seq != stream.sequence_number
            or (chunk.tsn - 1) % sctp_module.SCTP_TSN_MODULO != last_tsn  # None: no INIT read
            or sctp._sack_misordered
            or sctp._sack_duplicates
            or sctp._reconfig_deferred is not None
        ):
            return bounded_receive_data_chunk(chunk, last_tsn)
        fragment = chunk.flags & _FRAGMENT_BITS
        reassembly = stream.reassembly
        if fragment & _LAST_OR_UNORDERED == 0 and sctp._advertised_rwnd <= 0:
            sctp._sack_needed = True  # a fragment to hold, and no window: dropped as lost
            return None
        if not reassembly:
            if fragment == _WHOLE_ORDERED:
                # What aiortc's path leaves: the chunk acknowledged, its message out of
                # the reassembly (the receive window back where it was), the stream's
                # next sequence number due.
                sctp._sack_needed = True
                sctp._last_received_tsn = chunk.tsn
                stream.sequence_number = (stream.sequence_number + 1) % 65536
                return deliver(chunk.stream_id, chunk.protocol, chunk.user_data)
            if fragment == SCTP_DATA_FIRST_FRAG:  # a message's first fragment waits
                sctp._sack_needed = True
                sctp._last_received_tsn = chunk.tsn
                reassembly.append(chunk)
                sctp._advertised_rwnd -= len(chunk.user_data)
                return None
        elif fragment & _FIRST_OR_UNORDERED == 0 and _continues(reassembly, stream, last_tsn):
            sctp._sack_needed = True
            sctp._last_received_tsn = chunk.tsn
            sctp._advertised_rwnd -= len(chunk.user_data)
            if fragment != SCTP_DATA_LAST_FRAG:  # a middle fragment waits
                reassembly.append(chunk)
                return None
            # The last fragment: aiortc joins the run, empties the reassembly,
            # gives the window back and moves the stream on.
            message = b"".join([c.user_data for c in reassembly] + [chunk.user_data])
            stream.reassembly = []
            stream.sequence_number = (stream.sequence_number + 1) % 65536
            sctp._advertised_rwnd += len(message)
            return deliver(chunk.stream_id, chunk.protocol, message)
        return bounded_receive_data_chunk(chunk, last_tsn)

    async def bounded_receive_data_chunk(chunk: DataChunk, last_tsn: int | None) -> None:
        """aiortc's path for ``chunk``, unless aiortc would hold it past the bound."""
        if last_tsn is None:
            return  # before the peer's INIT or INIT ACK: discarded (RFC 9260 section 6)
        if _past_window(sctp, chunk, last_tsn):
            sctp._sack_needed = True  # dropped as lost; the SACK reports the window
            return
        await aiortc_receive_data_chunk(chunk)

    sctp._handle_data = hook_with_plain_variant(handle_data_now)
    if "_receive_data_chunk" not in vars(sctp):  # another module's hook sees every chunk
        sctp._receive_data_chunk = hook_with_plain_variant(receive_data_chunk_now)
    setattr(sctp, _HOOKED, True)
    return True


def _past_window(sctp: Any, chunk: DataChunk, last_tsn: int) -> bool:
    """Whether aiortc would hold ``chunk`` past the bound: it is then dropped as lost.

    A message's last fragment is dropped only past ``MAX_TSN_AHEAD``: it may be
    what lets the held chunks out.
    """
    ahead = (chunk.tsn - last_tsn) % sctp_module.SCTP_TSN_MODULO
    if ahead == 0 or ahead >= 1 << 31:
        return False  # a duplicate: aiortc reports it
    if ahead > MAX_TSN_AHEAD:
        return True
    if sctp._advertised_rwnd > 0 or chunk.flags & SCTP_DATA_LAST_FRAG:
        return False
    modulo: int = sctp_module.SCTP_TSN_MODULO
    highest = max(((t - last_tsn) % modulo for t in sctp._sack_misordered), default=0)
    return bool(ahead > highest)  # beyond the highest TSN received (a gap filler is taken)


def _continues(reassembly: list[DataChunk], stream: Any, last_tsn: int) -> bool:
    """Whether ``reassembly`` is one ordered message begun and not ended, up to ``last_tsn``.

    Its first chunk starts an ordered message, the stream's next.  Nothing past
    ``last_tsn`` is held (the caller checks nothing is out of order) and aiortc
    keeps the chunks sorted with no duplicate, so as many chunks as TSNs from
    the first to ``last_tsn`` are those TSNs, each once: the next TSN continues
    the message.  None of them ends it, or aiortc would have handed it on.
    """
    first = reassembly[0]
    return (
        first.flags & _FIRST_OR_UNORDERED == SCTP_DATA_FIRST_FRAG
        and first.stream_seq == stream.sequence_number
        and (last_tsn - first.tsn) % sctp_module.SCTP_TSN_MODULO == len(reassembly) - 1
    )


def _data_and_sacks(data: bytes, expected_tag: int) -> list[Any] | None:
    """The packet's chunks if it passes aiortc's checks and holds only DATA and SACK; else None.

    A DATA chunk and the usual SACK are each read with one unpack of their
    first 16 bytes (chunk header and fields); anything else goes through
    aiortc's chunk classes, as ``parse_packet`` reads it.
    """
    length = len(data)
    if length < SCTP_PACKET_MINIMUM_LENGTH:
        return None
    assert _CRC32C is not None  # receive_directly hooks nothing without it
    if _unpack_tag(data)[0] != expected_tag or _unpack_checksum(data)[0] != _CRC32C(
        data[0:8] + b"\x00\x00\x00\x00" + data[12:]
    ):
        return None
    chunks: list[Any] = []
    pos = SCTP_COMMON_HEADER_LENGTH
    last_header = length - SCTP_CHUNK_HEADER_LENGTH
    last_fields = length - _DATA_HEADER_LENGTH  # the last offset with 16 bytes after it
    while pos <= last_header:
        chunk_type = data[pos]
        if chunk_type == _DATA and pos <= last_fields:
            flags, chunk_length, tsn, stream_id, stream_seq, protocol = _unpack_data(data, pos)
            if _DATA_HEADER_LENGTH <= chunk_length <= length - pos:
                # What ``DataChunk(flags, body)`` makes, with one unpack and one copy.
                chunk = _new_data_chunk(DataChunk)
                chunk.flags = flags
                chunk.tsn = tsn
                chunk.stream_id = stream_id
                chunk.stream_seq = stream_seq
                chunk.protocol = protocol
                chunk.user_data = data[pos + _DATA_HEADER_LENGTH : pos + chunk_length]
                chunks.append(chunk)
                pos += chunk_length + (-chunk_length % 4)
                continue
        elif chunk_type == _SACK and pos <= last_fields:
            flags, chunk_length, cumulative_tsn, advertised_rwnd, gaps, duplicates = (
                _unpack_plain_sack(data, pos))
            if chunk_length == _PLAIN_SACK_LENGTH and not (gaps or duplicates):
                # What ``SackChunk(flags, body)`` makes of the usual SACK, with no body copy.
                sack = _new_data_chunk(SackChunk)
                sack.flags = flags
                sack.cumulative_tsn = cumulative_tsn
                sack.advertised_rwnd = advertised_rwnd
                sack.gaps = []
                sack.duplicates = []
                chunks.append(sack)
                pos += _PLAIN_SACK_LENGTH
                continue
        chunk_type, chunk_flags, chunk_length = _unpack_chunk_header(data, pos)
        if chunk_length < SCTP_CHUNK_HEADER_LENGTH or pos + chunk_length > length:
            return None
        body = data[pos + SCTP_CHUNK_HEADER_LENGTH : pos + chunk_length]
        try:
            if chunk_type == _DATA:
                chunks.append(DataChunk(flags=chunk_flags, body=body))
            elif chunk_type == _SACK:
                sack = SackChunk(flags=chunk_flags, body=body)
                if not sound_sack(sack):
                    return None  # aiortc's (sound) parse drops it
                chunks.append(sack)
            else:
                return None
        except Exception:  # a body too short for its chunk: aiortc's parse raises it
            return None
        pos += chunk_length + (-chunk_length % 4)
    return chunks
