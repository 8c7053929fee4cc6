"""A peer's malformed SCTP packets are dropped (``taiinet.transport._asyncio_sctp_sound``).

Two real aiortc associations, joined in memory (each one's DTLS
``_send_data`` queues the packet for the other), go through the SCTP
handshake; the one under test carries every hook a TaiiNet link installs.
Packets from the peer enter it where the DTLS reader hands them over (its
``_handle_data``, by its plain variant as ``_asyncio_dtls`` calls it).
Before these hooks, each explicit packet below raised out of that entry
(ending the link) or, for an INIT once established, left the link unable to
carry anything.
"""

from __future__ import annotations

import asyncio  # aiortc's objects live on an asyncio loop of the test's own
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from struct import pack
from typing import Any

import pytest
from aiortc import (
    RTCCertificate,
    RTCDataChannel,
    RTCDataChannelParameters,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
)
from aiortc import rtcsctptransport as rsctp
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.transport import _asyncio_sctp as sacks_module
from taiinet.transport import _asyncio_sctp_tx as tx
from taiinet.transport._asyncio_eager import PLAIN_VARIANT
from taiinet.transport._asyncio_sctp_rx import receive_directly
from taiinet.transport._asyncio_sctp_sound import install_sound_receive
from taiinet.transport._asyncio_sctp_timers import lazy_t3
from taiinet.transport._asyncio_sctp_wrap import mend_tsn_wrap

install_sound_receive()  # as the bridge does, before any association

CERTIFICATE = RTCCertificate.generateCertificate()
NODE_TAG, PEER_TAG = 0x1234ABCD, 0x5678EF01
NODE_TSN, PEER_TSN = 0x10000000, 0xFFFFFFF8
STREAM = 1  # the channel both ends have (negotiated)
PORT = 5000
ABORT, SHUTDOWN, RECONFIG = 6, 7, 130
DATA, FORWARD_TSN = 0, 192


def packet(chunks: bytes, tag: int = NODE_TAG) -> bytes:
    """A packet from the peer to the node: right ports, tag and checksum."""
    header = pack("!HHL", PORT, PORT, tag)
    return header + pack("<L", rsctp.crc32c(header + b"\x00\x00\x00\x00" + chunks)) + chunks


def chunk(kind: int, body: bytes, flags: int = 0, length: int | None = None) -> bytes:
    raw = pack("!BBH", kind, flags, 4 + len(body) if length is None else length) + body
    return raw + b"\x00" * (-len(raw) % 4)


def data_chunk(tsn: int, user_data: bytes, *, pp_id: int = rsctp.WEBRTC_BINARY,
               stream: int = STREAM, seq: int = 0) -> bytes:
    """A whole ordered message in one DATA chunk."""
    return chunk(DATA, pack("!LHHL", tsn, stream, seq, pp_id) + user_data, flags=3)


async def hand_over(sctp: Any, data: bytes) -> None:
    """What ``_asyncio_dtls`` does with a decrypted record: the SCTP packet's handling."""
    handle = sctp._handle_data
    now = getattr(handle, PLAIN_VARIANT, None)
    pending = now(data) if now is not None else handle(data)
    if pending is not None:
        await pending


class Link:
    """The node's association (TaiiNet's hooks, unless not ``hooked``: an answerer's
    before it adopts the channel) and the peer's (aiortc's), in memory."""

    def __init__(self, *, hooked: bool = True) -> None:
        self.node = self._association("server", NODE_TAG, NODE_TSN)
        self.peer = self._association("client", PEER_TAG, PEER_TSN)
        self.to_node: deque[bytes] = deque()
        self.to_peer: deque[bytes] = deque()
        self.node_got: list[bytes] = []
        self.peer_got: list[bytes] = []
        self._wire(self.node, self.to_peer)
        self._wire(self.peer, self.to_node)
        if hooked:  # the bridge's hooks, in the bridge's order
            assert mend_tsn_wrap(self.node)
            assert receive_directly(self.node)
            assert sacks_module.delay_sacks(self.node, lambda: self.to_peer.append)
            assert sacks_module.flush_at_once(self.node)
            assert tx.send_directly(self.node, lambda: self.to_peer.append)
            assert lazy_t3(self.node)
        self.node_channel = self._channel(self.node, self.node_got)
        self.peer_channel = self._channel(self.peer, self.peer_got)

    @staticmethod
    def _association(role: str, tag: int, tsn: int) -> Any:
        dtls = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [CERTIFICATE])
        dtls._role = role
        sctp = rsctp.RTCSctpTransport(dtls)
        sctp._local_verification_tag = tag
        sctp._local_tsn = sctp._reconfig_request_seq = tsn
        sctp._last_sacked_tsn = sctp._advanced_peer_ack_tsn = rsctp.tsn_minus_one(tsn)
        return sctp

    @staticmethod
    def _wire(sctp: Any, queue: deque[bytes]) -> None:
        async def send_data(data: bytes) -> None:
            queue.append(data)

        sctp.transport._send_data = send_data

    @staticmethod
    def _channel(sctp: Any, got: list[bytes]) -> RTCDataChannel:
        channel = RTCDataChannel(sctp, RTCDataChannelParameters(
            label="taiinet", negotiated=True, id=STREAM))
        channel.on("message", got.append)
        return channel

    async def start(self, *, handshake: bool = True) -> None:
        caps = rsctp.RTCSctpCapabilities(maxMessageSize=65536)
        await self.node.start(caps, PORT)
        await self.peer.start(caps, PORT)
        if handshake:
            await self.pump()
            assert self.node._association_state == rsctp.RTCSctpTransport.State.ESTABLISHED
            assert self.peer._association_state == rsctp.RTCSctpTransport.State.ESTABLISHED

    async def pump(self) -> None:
        """Carry every queued packet, both ways, until none is left."""
        for _ in range(100):
            await asyncio.sleep(0)  # a turn of the loop (no wait): aiortc's ensure_future tasks run
            if not (self.to_node or self.to_peer):
                return
            while self.to_node:
                await hand_over(self.node, self.to_node.popleft())
            while self.to_peer:
                await hand_over(self.peer, self.to_peer.popleft())
        raise AssertionError("the associations never went quiet")

    async def carries(self, *, to_node: bool = True, to_peer: bool = True) -> None:
        """A message each way gets through (the node's SACKs are flushed by a message)."""
        if to_node:
            self.peer_channel.send(b"to the node")
            await self.pump()
            assert self.node_got[-1:] == [b"to the node"]
        if to_peer:
            self.node_channel.send(b"to the peer")
            await self.pump()
            assert self.peer_got[-1:] == [b"to the peer"]


def run(test: Callable[[Link], Awaitable[None]], *, handshake: bool = True,
        hooked: bool = True) -> None:
    async def main() -> None:
        link = Link(hooked=hooked)
        await link.start(handshake=handshake)
        await test(link)

    asyncio.run(main())


# One packet per hole: each raised out of the node's entry before (or, for the
# INIT, left the link dead), each is dropped now and the link carries on.
_SACK_FIELDS = pack("!LL", NODE_TSN - 1, 1 << 20)
SHORT_BODIES = {
    "DATA body of 5 bytes": chunk(DATA, b"\x00" * 5, flags=3),
    "INIT ACK body of 8 bytes": chunk(2, b"\x00" * 8),
    "SACK body of 6 bytes": chunk(3, b"\x00" * 6),
    "SACK counting 3 gaps, holding 1": chunk(3, _SACK_FIELDS + pack("!HHHH", 3, 0, 1, 1)),
    "SACK counting a duplicate, holding none": chunk(3, _SACK_FIELDS + pack("!HH", 0, 1)),
    "SHUTDOWN body of 2 bytes": chunk(SHUTDOWN, b"\x00\x01"),
    "FORWARD TSN body of 3 bytes": chunk(FORWARD_TSN, b"\x00" * 3),
    "FORWARD TSN with half a stream entry": chunk(FORWARD_TSN, pack("!LH", PEER_TSN, 1)),
}


@pytest.mark.parametrize("name", SHORT_BODIES)
def test_a_chunk_body_too_short_for_its_fields_drops_the_packet(name: str) -> None:
    async def test(link: Link) -> None:
        await hand_over(link.node, packet(SHORT_BODIES[name]))
        await link.carries()

    run(test)


def test_an_init_bundled_with_other_chunks_drops_the_packet() -> None:
    init = chunk(1, pack("!LLHHL", 0xDEAD, 1 << 20, 10, 10, 1))
    heartbeat = chunk(4, pack("!HH", 1, 8) + b"ping")

    async def test(link: Link) -> None:
        await hand_over(link.node, packet(init + heartbeat, tag=0))
        assert not link.to_peer  # nothing answered: dropped silently
        await link.carries()

    run(test)


def test_an_init_once_established_is_discarded() -> None:
    # aiortc took it for a collision: a new peer tag and cumulative TSN, then
    # neither side read the other's packets.
    init = chunk(1, pack("!LLHHL", 0xDEAD, 1 << 20, 10, 10, 12345))

    async def test(link: Link) -> None:
        await hand_over(link.node, packet(init, tag=0))
        assert not link.to_peer
        await link.carries()

    run(test)


RECONFIG_PARAMS = {
    "reset request of 8 bytes": pack("!HH", 13, 12) + b"\x00" * 8,
    "reset request with half a stream": pack("!HH", 13, 17) + b"\x00" * 13 + b"\x00" * 3,
    "response of 4 bytes": pack("!HH", 16, 8) + b"\x00" * 4,
    "add streams of 4 bytes": pack("!HH", 17, 8) + b"\x00" * 4,
}


@pytest.mark.parametrize("name", RECONFIG_PARAMS)
def test_a_reconfig_parameter_too_short_drops_the_packet(name: str) -> None:
    async def test(link: Link) -> None:
        await hand_over(link.node, packet(chunk(RECONFIG, RECONFIG_PARAMS[name])))
        await link.carries()

    run(test)


def test_a_sack_gap_block_ending_before_it_starts_drops_the_packet() -> None:
    async def test(link: Link) -> None:
        link.node_channel.send(b"in flight")  # the peer never sees it: lost
        await asyncio.sleep(0)
        assert link.to_peer and link.node._sent_queue
        link.to_peer.clear()
        sack = chunk(3, _SACK_FIELDS + pack("!HHHH", 1, 0, 3, 2))
        await hand_over(link.node, packet(sack))
        assert len(link.node._sent_queue) == 1  # the SACK was not read
        await link.carries(to_peer=False)

    run(test)


def test_a_sack_covering_more_than_was_sent_costs_only_what_is_in_flight() -> None:
    # Four overlapping blocks (1, 65535) with one chunk in flight: aiortc marked
    # 262,140 TSNs one by one (290 such blocks, one 1,188-byte packet: a second of
    # CPU with the node's loop blocked).  Counted in lines aiortc runs, not in time.
    lines = 0

    def count_lines(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        if frame.f_code.co_name != "_receive_sack_chunk" or not frame.f_code.co_filename.endswith(
                "rtcsctptransport.py"):
            return None
        lines += event == "line"
        return count_lines

    async def test(link: Link) -> None:
        link.node_channel.send(b"in flight")
        await asyncio.sleep(0)
        link.to_peer.clear()
        blocks = pack("!HH", 1, 65535) * 4
        sack = chunk(3, pack("!LLHH", NODE_TSN - 1, 1 << 20, 4, 0) + blocks)
        sys.settrace(count_lines)
        try:
            await hand_over(link.node, packet(sack))
        finally:
            sys.settrace(None)
        assert link.node._sent_queue[0]._acked  # the chunk in flight is reported received
        assert 0 < lines < 500

    run(test)


def test_a_data_chunk_far_ahead_is_dropped_as_lost_before_the_hooks() -> None:
    # An answerer's association before it adopts the channel has no hooks of its own:
    # aiortc's path kept the chunk, then built a SACK whose gap block offset
    # (70,000) does not fit its 16-bit field: struct.error.  (The hooks' path
    # drops it already: test_asyncio_sctp_rx.)
    async def test(link: Link) -> None:
        await hand_over(link.node, packet(data_chunk((PEER_TSN + 70_000) % 2**32, b"far")))
        await link.pump()
        assert not link.node._sack_misordered
        await link.carries()

    run(test, hooked=False)


def test_data_and_forward_tsn_before_the_peers_init_are_discarded() -> None:
    # The node has sent its INIT (its tag is known) and read nothing yet.
    async def test(link: Link) -> None:
        assert link.node._last_received_tsn is None
        await hand_over(link.node, packet(data_chunk(PEER_TSN, b"early")))
        await hand_over(link.node, packet(chunk(FORWARD_TSN, pack("!L", PEER_TSN))))
        assert not link.node_got
        await link.pump()
        await link.carries()

    run(test, handshake=False)


def dcep_open(label: bytes, protocol: bytes = b"") -> bytes:
    return pack("!BBHLHH", rsctp.DATA_CHANNEL_OPEN, 0, 0, 0, len(label), len(protocol)) + (
        label + protocol)


DCEP_MESSAGES = {
    "OPEN for the stream in use": (STREAM, rsctp.WEBRTC_DCEP, dcep_open(b"again")),
    "OPEN with a label not UTF-8": (3, rsctp.WEBRTC_DCEP, dcep_open(b"\xff\xfe")),
    "OPEN with a protocol not UTF-8": (3, rsctp.WEBRTC_DCEP, dcep_open(b"x", b"\xc3")),
    "ACK for a stream with no channel": (3, rsctp.WEBRTC_DCEP, bytes([rsctp.DATA_CHANNEL_ACK])),
    "text that is not UTF-8": (STREAM, rsctp.WEBRTC_STRING, b"\xff"),
}


@pytest.mark.parametrize("name", DCEP_MESSAGES)
def test_a_data_channel_message_aiortc_cannot_read_is_dropped(name: str) -> None:
    stream, pp_id, message = DCEP_MESSAGES[name]

    async def test(link: Link) -> None:
        texts: list[Any] = []
        link.node_channel.on("message", texts.append)
        # The peer's next TSN: the chunk is acknowledged, its message dropped.
        await hand_over(link.node, packet(data_chunk(PEER_TSN, message, pp_id=pp_id,
                                                     stream=stream)))
        assert link.node._last_received_tsn == PEER_TSN
        assert set(link.node._data_channels) == {STREAM} and texts == []
        link.peer._local_tsn = rsctp.tsn_plus_one(PEER_TSN)  # as if the peer had sent it
        if stream == STREAM:
            link.peer._outbound_stream_seq[STREAM] = 1
        await link.carries()

    run(test)


def test_abort_still_ends_the_association() -> None:
    async def test(link: Link) -> None:
        await hand_over(link.node, packet(chunk(ABORT, b"")))
        assert link.node.state == "closed"

    run(test)


# Drawn packets: arbitrary bytes, and packets with the right checksum and tag
# whose chunks have drawn types, flags, lengths and bodies.
CHUNK_TYPES = [DATA, 1, 2, 3, 4, 5, 9, 10, 11, 14, FORWARD_TSN, 0x3F, 0x7F, 0xBF, 0xFF,
               ABORT, SHUTDOWN, 8, RECONFIG]
ENDING = {ABORT, SHUTDOWN, RECONFIG}  # end the association or may reset the channel
TOUCHING_RECEIVE = {DATA, FORWARD_TSN}  # may take the peer's next TSN


@st.composite
def drawn_chunks(draw: st.DrawFn) -> tuple[int, bytes]:
    kind = draw(st.sampled_from(CHUNK_TYPES))
    if kind == DATA:
        tsns = [(PEER_TSN + ahead) % 2**32 for ahead in (0, 1, 8, 5000, 70_000, 2**31)]
        body = pack("!LHHL", draw(st.sampled_from(tsns)),
                    draw(st.sampled_from([STREAM, 3, 0xFFFF])), draw(st.integers(0, 2)),
                    draw(st.sampled_from([50, 51, 53, 56, 57, 0])))
        body += draw(st.binary(max_size=16) | st.sampled_from(
            [dcep_open(b"x"), dcep_open(b"\xff"), bytes([2]), b"\xff\xfe"]))
        body = body[:draw(st.integers(0, len(body)))] if draw(st.booleans()) else body
    elif kind == 3:
        body = pack("!LLHH", draw(st.sampled_from([NODE_TSN - 1, NODE_TSN, 0])), 1 << 20,
                    draw(st.integers(0, 3)), draw(st.integers(0, 2)))
        body += draw(st.binary(max_size=16))
    elif kind == FORWARD_TSN:
        body = pack("!L", (PEER_TSN + draw(st.sampled_from([0, 1, 5, 2**31 - 1]))) % 2**32)
        body += draw(st.binary(max_size=12))
    elif kind == RECONFIG:
        param_type = draw(st.sampled_from([13, 14, 15, 16, 17, 18]))
        value = draw(st.sampled_from([b"", pack("!LLL", PEER_TSN, NODE_TSN, PEER_TSN)]))
        value += draw(st.binary(max_size=12))  # a reset request's streams, or junk
        body = pack("!HH", param_type, draw(st.sampled_from([4 + len(value), 0, 3, 40]))) + value
    else:
        body = draw(st.binary(max_size=24))
    length = draw(st.sampled_from([None, None, None, 0, 3, 4, 5, 16, len(body) + 8]))
    return kind, chunk(kind, body, flags=draw(st.integers(0, 255)), length=length)


@st.composite
def hostile_packets(draw: st.DrawFn) -> tuple[bytes, set[int]]:
    """A packet and the chunk types drawn into it."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=64)), set()
    chunks = draw(st.lists(drawn_chunks(), min_size=1, max_size=3))
    tag = draw(st.sampled_from([NODE_TAG, NODE_TAG, NODE_TAG, 0]))
    return packet(b"".join(c for _, c in chunks), tag=tag), {k for k, _ in chunks}


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(hostile_packets(), min_size=1, max_size=3), st.booleans())
def test_no_drawn_packet_raises_out_of_the_node(drawn: list[tuple[bytes, set[int]]],
                                                hooked: bool) -> None:
    kinds = set().union(*(k for _, k in drawn))

    async def test(link: Link) -> None:
        for data, _ in drawn:
            await hand_over(link.node, data)  # nothing raises out of the entry ...
            await link.pump()  # ... nor out of either side reading what follows
        if not kinds & ENDING:
            await link.carries(to_node=not kinds & TOUCHING_RECEIVE)

    run(test, hooked=hooked)
