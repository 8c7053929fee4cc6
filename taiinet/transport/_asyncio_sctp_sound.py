"""aiortc's SCTP receive path, made to drop what it cannot read instead of failing.

aiortc (1.16) reads a packet in ``RTCSctpTransport._handle_data``, which
drops it only when ``parse_packet`` raises ``ValueError``.  Anything else
raised on a peer's bytes escapes into the DTLS reader and ends the link (the
node stays up, but the link dies uncleanly).  What a peer past the DTLS
handshake could raise that way, and what happens to it here:

* parse, a chunk body too short for its fixed fields (DATA under 12 bytes,
  INIT and INIT ACK under 16, SACK under 12 or shorter than its gap and
  duplicate counts, SHUTDOWN under 4, FORWARD TSN under 4 or with a cut
  stream entry): ``struct.error``.  Malformed (RFC 9260 section 3.2): the
  packet is dropped.
* parse, an INIT bundled with other chunks: aiortc's ``assert``.  RFC 9260
  sections 6.10 and 8.5.1: an INIT is alone in its packet, and a packet with
  a zero verification tag that is not a lone INIT is discarded silently.
* parse, a SACK gap block that ends before it starts: aiortc's SACK handler
  reads a variable it never set (``UnboundLocalError``) once data is in
  flight.  Malformed (RFC 9260 section 3.3.4): the packet is dropped.
* parse, a RE-CONFIG stream reset, response or add-streams parameter too
  short for its fields, or a reset request with half a stream number:
  ``struct.error`` in aiortc's chunk handler.  Malformed (RFC 6525 sections
  4.1, 4.4, 4.5): the packet is dropped.
* handler, a DATA or FORWARD TSN chunk before the peer's INIT or INIT ACK
  was read (aiortc has no cumulative TSN yet: ``TypeError``).  RFC 9260
  section 6: such a chunk is discarded (the chunk only).
* handler, a DATA chunk more than ``MAX_TSN_AHEAD`` TSNs ahead, on aiortc's
  own path (an association without ``_asyncio_sctp_rx``'s hooks: the
  answerer's, until it has read the peer's DCEP OPEN): aiortc kept it, and
  the SACK reporting it needs a gap block offset past 65,535, or, for many,
  a chunk longer than 65,535 bytes: ``struct.error`` as the SACK is built.
  Dropped as lost, as ``_asyncio_sctp_rx`` drops it (RFC 9260 section 6.2).
* handler, an INIT once the association is established: aiortc took it
  as an INIT collision and replaced the peer's verification tag and the
  cumulative TSN, so the link went on with neither side reading the other.
  Discarded here (the chunk only).  RFC 9260 section 5.2.2 answers it with
  an INIT ACK and restarts on the COOKIE ECHO; aiortc keeps no state for a
  restart and a WebRTC association never restarts (a new one is a new peer
  connection), so TaiiNet departs from it there.
* data channel (RFC 8832), a DCEP OPEN for a stream already in use, or whose
  label or protocol is not UTF-8, a DCEP ACK for a stream with no channel
  (aiortc's ``assert`` and ``UnicodeDecodeError``), and a text message that
  is not UTF-8 (RFC 8831 section 6.6): the message is dropped (its chunk
  stays acknowledged: SCTP delivered it).

One more is not an exception but a frozen node: aiortc marks every TSN a
SACK's gap blocks cover, one by one, each block up to 65,535 TSNs, however
many blocks overlap and however few TSNs are in flight; one 1,188-byte
packet of 290 blocks (1, 65535) took a second of CPU with the loop (the
node's) blocked.  A SACK whose blocks cover more TSNs than were ever sent
(beyond the TSN last assigned) is not one an honest peer sends (its blocks
are disjoint, within what it received); its blocks are merged and cut there
before aiortc reads them (``sound_receive_sack_chunk``), so it costs at most
the TSNs in flight.  Any other SACK reads as before.

ABORT and SHUTDOWN keep aiortc's handling: they end the association
cleanly, as RFC 9260 says.

Installed module-wide when this module is imported (the bridge and the SCTP
receive path import it), before any association exists: ``parse_packet`` is
a global of aiortc's module, read at each call; the three handlers are methods
of ``RTCSctpTransport`` that each association's hooks reach through the
class.  None of it is on the usual path: ``_asyncio_sctp_rx`` reads the
usual packet itself (its SACK check is ``sound_sack``), ``_asyncio_sctp_tx``
reads the usual SACK (no gap blocks) itself, and the usual binary message
goes past aiortc's ``_data_channel_receive``.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import Any

from aiortc import rtcsctptransport
from aiortc.rtcsctptransport import (
    DATA_CHANNEL_ACK,
    DATA_CHANNEL_OPEN,
    RECONFIG_PARAM_TYPES,
    WEBRTC_DCEP,
    WEBRTC_STRING,
    Chunk,
    DataChunk,
    ForwardTsnChunk,
    InitChunk,
    ReconfigChunk,
    RTCSctpTransport,
    SackChunk,
)

from taiinet.transport._asyncio_sctp_params import install_sound_params

__all__ = ["MAX_TSN_AHEAD", "install_sound_receive", "sound_parse_packet",
           "sound_receive_sack_chunk", "sound_sack"]

_install_lock = threading.Lock()
_Packet = tuple[int, int, int, list[Any]]
#: aiortc's own functions, as they were before ``install_sound_receive``.
aiortc_parse_packet: Callable[[bytes], _Packet] = rtcsctptransport.parse_packet
aiortc_receive_chunk = RTCSctpTransport._receive_chunk
aiortc_data_channel_receive = RTCSctpTransport._data_channel_receive
aiortc_receive_sack_chunk = RTCSctpTransport._receive_sack_chunk
#: States in which aiortc reads a peer's INIT (both ends initiate, RFC 8841 section 9.3):
#: before the association is established.
_INIT_STATES = (RTCSctpTransport.State.CLOSED, RTCSctpTransport.State.COOKIE_WAIT,
                RTCSctpTransport.State.COOKIE_ECHOED)
_DCEP_OPEN_HEADER = struct.Struct("!BBHLHH")
_TSN_MODULO = rtcsctptransport.SCTP_TSN_MODULO
_HALF = _TSN_MODULO // 2  # serial-number arithmetic (RFC 1982): at or past it, behind
#: DATA chunks further ahead of the cumulative TSN than this are dropped as lost: a
#: window of small chunks (1 MiB over 4096 is 256 bytes of user data per chunk; full
#: chunks carry 1,172), and bounded both ways: aiortc's out-of-order set and the gaps
#: it can hold, each chunk at most a packet (4096 x 1,172 bytes), and a SACK's gap
#: blocks (at most 2,048 of them, offsets under 4,097: both fit their 16-bit fields).
MAX_TSN_AHEAD = 4096


def sound_sack(chunk: SackChunk) -> bool:
    """Whether every gap block of ``chunk`` starts at or before its end."""
    return all(start <= end for start, end in chunk.gaps)


def _sound_reconfig(chunk: ReconfigChunk) -> bool:
    """Whether aiortc's handler can read each of ``chunk``'s parameters it knows
    (a reset request's parse also fails on half a stream number)."""
    for param_type, value in chunk.params:
        parser = RECONFIG_PARAM_TYPES.get(param_type)
        if parser is None:
            continue
        try:
            parser.parse(value)
        except struct.error:
            return False
    return True


def sound_parse_packet(data: bytes) -> _Packet:
    """aiortc's ``parse_packet``; ``ValueError`` for every packet it cannot read soundly."""
    try:
        packet = aiortc_parse_packet(data)
    except struct.error as exc:
        raise ValueError(f"SCTP chunk too short for its fields: {exc}") from None
    chunks = packet[3]
    for chunk in chunks:
        kind = type(chunk)
        if kind is InitChunk and len(chunks) > 1:
            raise ValueError("SCTP INIT chunk bundled with other chunks")
        if kind is SackChunk and not sound_sack(chunk):
            raise ValueError("SCTP SACK gap block ends before it starts")
        if kind is ReconfigChunk and not _sound_reconfig(chunk):
            raise ValueError("SCTP RE-CONFIG parameter too short for its fields")
    return packet


async def sound_receive_chunk(sctp: RTCSctpTransport, chunk: Chunk) -> None:
    """aiortc's ``_receive_chunk``, discarding what it would misread in this state."""
    kind = type(chunk)
    if kind is DataChunk or kind is ForwardTsnChunk:
        last = sctp._last_received_tsn
        if last is None:
            return  # before the peer's INIT or INIT ACK: no TSN to count from
        if isinstance(chunk, DataChunk) and (
                MAX_TSN_AHEAD < (chunk.tsn - last) % _TSN_MODULO < _HALF):
            sctp._sack_needed = True  # dropped as lost; the SACK reports the window
            return
    elif kind is InitChunk and sctp._association_state not in _INIT_STATES:
        return
    await aiortc_receive_chunk(sctp, chunk)


def _gaps_within(gaps: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """``gaps`` (sound blocks) merged where they overlap or touch, and cut at offset ``limit``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(gaps):
        if start > limit:
            break
        end = min(end, limit)
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


async def sound_receive_sack_chunk(sctp: RTCSctpTransport, chunk: SackChunk) -> None:
    """aiortc's ``_receive_sack_chunk``, its gap blocks first bounded by the TSNs sent."""
    gaps = chunk.gaps
    if gaps:
        ahead = (sctp._local_tsn - 1 - chunk.cumulative_tsn) % _TSN_MODULO
        limit = ahead if ahead < _HALF else 0  # a cumulative TSN past all sent: none
        if sum(end - start + 1 for start, end in gaps) > limit:
            chunk.gaps = _gaps_within(gaps, limit)
    await aiortc_receive_sack_chunk(sctp, chunk)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf8")
    except UnicodeDecodeError:
        return False
    return True


def _sound_dcep(sctp: RTCSctpTransport, stream_id: int, data: bytes) -> bool:
    """Whether aiortc reads this DCEP message without failing (RFC 8832 section 5)."""
    if data[0] == DATA_CHANNEL_OPEN and len(data) >= _DCEP_OPEN_HEADER.size:
        if stream_id in sctp._data_channels:
            return False
        label_length, protocol_length = _DCEP_OPEN_HEADER.unpack_from(data)[4:]
        label_end = _DCEP_OPEN_HEADER.size + label_length
        return _utf8(data[_DCEP_OPEN_HEADER.size:label_end]) and _utf8(
            data[label_end:label_end + protocol_length])
    if data[0] == DATA_CHANNEL_ACK:
        return stream_id in sctp._data_channels
    return True


async def sound_data_channel_receive(sctp: RTCSctpTransport, stream_id: int, pp_id: int,
                                     data: bytes) -> None:
    """aiortc's ``_data_channel_receive``, dropping a message it would fail on."""
    if pp_id == WEBRTC_DCEP and data:
        if not _sound_dcep(sctp, stream_id, data):
            return
    elif pp_id == WEBRTC_STRING and stream_id in sctp._data_channels and not _utf8(data):
        return
    await aiortc_data_channel_receive(sctp, stream_id, pp_id, data)


def install_sound_receive() -> None:
    """Make aiortc's SCTP receive path drop what it cannot read (and read parameters soundly)."""
    install_sound_params()
    with _install_lock:
        rtcsctptransport.parse_packet = sound_parse_packet
        transport_class: Any = RTCSctpTransport  # on the class: every association
        transport_class._receive_chunk = sound_receive_chunk
        transport_class._data_channel_receive = sound_data_channel_receive
        transport_class._receive_sack_chunk = sound_receive_sack_chunk


install_sound_receive()
