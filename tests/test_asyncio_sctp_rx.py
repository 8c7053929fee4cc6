"""The direct SCTP receive path leaves every association exactly as aiortc's own path does.

Two real aiortc associations (no network: nothing is sent) read the same
drawn chunks and packets, one with ``receive_directly`` and one without; the
receive state and the messages handed on must be equal after every step.
"""

from __future__ import annotations

import asyncio  # aiortc's objects live on an asyncio loop of the test's own
import logging
from collections.abc import Awaitable, Callable
from struct import pack
from typing import Any

from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc import rtcsctptransport as rsctp
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.transport import _asyncio_sctp_rx as rx
from taiinet.transport._asyncio_sctp_params import install_sound_params
from taiinet.transport._asyncio_sctp_wrap import mend_tsn_wrap

# As the bridge does before any association: aiortc's own parameter reader never
# ends on a zero-length parameter, which the drawn chunks below include.
install_sound_params()

CERTIFICATE = RTCCertificate.generateCertificate()
TAG = 0x1234ABCD
FIRST_TSN = 0xFFFFFFF0  # the TSN wraps during a run


def association(*, direct: bool) -> tuple[Any, list[tuple[int, int, bytes]], list[str]]:
    """An association that records what it hands on and the SACKs it would send
    (its TSN bookkeeping mended for the wrap, as the bridge installs it)."""
    sctp = rsctp.RTCSctpTransport(
        RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [CERTIFICATE]))
    assert mend_tsn_wrap(sctp)
    sctp._local_verification_tag = TAG
    sctp._last_received_tsn = FIRST_TSN - 1
    # aiortc draws these at random: both sides start alike
    sctp._local_tsn = sctp._reconfig_request_seq = FIRST_TSN - 100
    sctp._last_sacked_tsn = sctp._advanced_peer_ack_tsn = FIRST_TSN - 101
    delivered: list[tuple[int, int, bytes]] = []
    sacks: list[str] = []

    async def receive(stream_id: int, pp_id: int, data: bytes) -> None:
        delivered.append((stream_id, pp_id, data))

    async def send_sack() -> None:
        sacks.append(f"{sctp._last_received_tsn} {sorted(sctp._sack_misordered)}")
        sctp._sack_needed = False

    sctp._receive = receive
    sctp._send_sack = send_sack
    if direct:
        assert rx.receive_directly(sctp)
    return sctp, delivered, sacks


def receive_state(sctp: Any) -> tuple[Any, ...]:
    streams = {
        stream_id: (stream.sequence_number, [c.tsn for c in stream.reassembly])
        for stream_id, stream in sctp._inbound_streams.items()
    }
    return (sctp._last_received_tsn, sorted(sctp._sack_misordered),
            list(sctp._sack_duplicates), sctp._advertised_rwnd, sctp._sack_needed,
            sctp._last_sacked_tsn, streams)


@st.composite
def chunk_sequences(draw: st.DrawFn) -> list[rsctp.DataChunk]:
    """Messages of one to five fragments on two streams, ordered or not, now and then
    a fragment sent amid another message's, with a stray flag or sequence number; then
    lost, repeated and reordered as a network would."""
    sent: list[tuple[int, int, int]] = []  # (flags, stream, stream sequence) as sent
    seqs = {0: 0, 1: 0}
    for _ in range(draw(st.integers(1, 12))):
        stream_id = draw(st.sampled_from([0, 1]))
        unordered = draw(st.booleans()) and draw(st.booleans())
        fragments = draw(st.sampled_from([1, 1, 1, 2, 3, 4, 4, 5]))
        for i in range(fragments):
            flags = (rsctp.SCTP_DATA_UNORDERED if unordered else 0) | (
                rsctp.SCTP_DATA_FIRST_FRAG if i == 0 else 0) | (
                rsctp.SCTP_DATA_LAST_FRAG if i == fragments - 1 else 0)
            seq = seqs[stream_id]
            if not draw(st.integers(0, 7)):  # a peer's odd fragment
                if draw(st.booleans()):
                    flags ^= draw(st.sampled_from(
                        [rsctp.SCTP_DATA_UNORDERED, rsctp.SCTP_DATA_FIRST_FRAG]))
                else:
                    seq = (seq + 1) % 65536
            sent.append((flags, stream_id, seq))
        if not unordered:
            seqs[stream_id] = (seqs[stream_id] + 1) % 65536
    for _ in range(draw(st.integers(0, 2))):  # a fragment sent amid an earlier message's
        i, j = draw(st.integers(0, len(sent) - 1)), draw(st.integers(0, len(sent) - 1))
        sent.insert(min(i, j), sent.pop(max(i, j)))
    chunks: list[rsctp.DataChunk] = []
    tsn = FIRST_TSN
    for flags, stream_id, seq in sent:
        chunk = rsctp.DataChunk()
        chunk.flags = flags
        chunk.tsn, chunk.stream_id, chunk.stream_seq = tsn, stream_id, seq
        chunk.protocol = rsctp.WEBRTC_BINARY
        chunk.user_data = bytes([tsn % 251]) * draw(st.integers(1, 40))
        chunks.append(chunk)
        tsn = rsctp.tsn_plus_one(tsn)
    order = list(range(len(chunks)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 4]))):  # often none: the usual run
        i, j = draw(st.integers(0, len(order) - 1)), draw(st.integers(0, len(order) - 1))
        action = draw(st.sampled_from(["swap", "repeat", "lose"]))
        if action == "swap":
            order[i], order[j] = order[j], order[i]
        elif action == "repeat":
            order.insert(j, order[i])
        elif len(order) > 1:
            del order[i]
    return [rsctp.DataChunk(flags=chunks[i].flags, body=bytes(chunks[i])[4:]) for i in order]


def run_both(feed: Callable[[Any], Awaitable[None]]) -> None:
    """Feed both associations the same way, comparing them after each step."""
    async def main() -> None:
        plain, direct = association(direct=False), association(direct=True)
        await feed((plain, direct))

    asyncio.run(main())


@settings(max_examples=300, deadline=None)
@given(chunk_sequences())
def test_data_chunks_leave_aiortcs_state(chunks: list[rsctp.DataChunk]) -> None:
    async def feed(pair: Any) -> None:
        (plain, plain_out, _), (direct, direct_out, _) = pair
        for chunk in chunks:
            copy = rsctp.DataChunk(flags=chunk.flags, body=bytes(chunk)[4:])
            await plain._receive_data_chunk(chunk)
            await direct._receive_data_chunk(copy)
            assert receive_state(direct) == receive_state(plain)
            assert direct_out == plain_out

    run_both(feed)


def packet(chunks: list[Any], *, tag: int = TAG) -> bytes:
    body = b"".join(bytes(c) for c in chunks)
    header = pack("!HHL", 5000, 5000, tag)
    return header + pack("<L", rsctp.crc32c(header + b"\x00\x00\x00\x00" + body)) + body


def sack(cumulative_tsn: int) -> rsctp.SackChunk:
    chunk = rsctp.SackChunk()
    chunk.cumulative_tsn, chunk.advertised_rwnd = cumulative_tsn, 1 << 20
    return chunk


def heartbeat() -> rsctp.HeartbeatChunk:
    chunk = rsctp.HeartbeatChunk()
    chunk.params = [(1, b"beat")]
    return chunk


@st.composite
def packet_sequences(draw: st.DrawFn) -> list[bytes]:
    """Packets of drawn chunks (DATA and SACK, now and then something else), some of
    them damaged: a byte changed, cut short, the wrong verification tag."""
    chunks = draw(chunk_sequences())
    packets: list[bytes] = []
    while chunks:
        take = draw(st.integers(1, 4))
        group: list[Any] = chunks[:take]
        chunks = chunks[take:]
        extra = draw(st.sampled_from([None, None, "sack", "heartbeat"]))
        if extra == "sack":
            group.insert(0, sack(FIRST_TSN - 1))
        elif extra == "heartbeat":
            group.append(heartbeat())
        data = packet(group, tag=TAG if draw(st.integers(0, 9)) else TAG + 1)
        damage = draw(st.sampled_from([None, None, None, "byte", "cut"]))
        if damage == "byte":
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]
        elif damage == "cut":
            data = data[:draw(st.integers(0, len(data) - 1))]
        packets.append(data)
    return packets


@settings(max_examples=300, deadline=None)
@given(packet_sequences())
def test_packets_leave_aiortcs_state_and_bad_ones_are_dropped(packets: list[bytes]) -> None:
    sent: dict[int, list[bytes]] = {}

    async def feed(pair: Any) -> None:
        (plain, plain_out, plain_sacks), (direct, direct_out, direct_sacks) = pair
        for side in (plain, direct):
            sent[id(side)] = []

            async def send_chunk(chunk: Any, side: Any = side) -> None:  # heartbeat acks
                sent[id(side)].append(bytes(chunk))

            side._send_chunk = send_chunk
        for data in packets:
            await plain._handle_data(data)
            await direct._handle_data(data)
            assert receive_state(direct) == receive_state(plain)
            assert direct_out == plain_out and direct_sacks == plain_sacks
            assert sent[id(direct)] == sent[id(plain)]

    run_both(feed)


def count_chunk_reads(sctp: Any) -> list[Any]:
    """The chunks ``sctp`` reads through aiortc's ``_receive_chunk`` (its general path)."""
    seen: list[Any] = []
    receive_chunk = sctp._receive_chunk

    async def counting(chunk: Any) -> None:
        seen.append(chunk)
        await receive_chunk(chunk)

    sctp._receive_chunk = counting
    return seen


def test_the_usual_packet_skips_aiortcs_chunk_path() -> None:
    async def main() -> None:
        sctp, delivered, sacks = association(direct=True)
        seen = count_chunk_reads(sctp)
        first = rsctp.DataChunk(flags=rsctp.SCTP_DATA_FIRST_FRAG | rsctp.SCTP_DATA_LAST_FRAG)
        first.tsn, first.protocol, first.user_data = FIRST_TSN, rsctp.WEBRTC_BINARY, b"one"
        await sctp._handle_data(packet([first]))  # a new stream: aiortc's own path
        second = rsctp.DataChunk(flags=first.flags)
        second.tsn, second.stream_seq = rsctp.tsn_plus_one(FIRST_TSN), 1
        second.protocol, second.user_data = rsctp.WEBRTC_BINARY, b"two"
        await sctp._handle_data(packet([second]))
        assert [d for _, _, d in delivered] == [b"one", b"two"]
        assert seen == [] and len(sacks) == 2  # aiortc's path goes through _receive_chunk

    asyncio.run(main())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.lists(st.tuples(st.integers(1, 2**16 - 1), st.integers(1, 2**16 - 1)).map(
           lambda gap: (min(gap), max(gap))), max_size=3),  # one ending before it starts is
       st.lists(st.integers(0, 2**32 - 1), max_size=3))  # dropped (test_asyncio_sctp_sound)
def test_sacks_are_read_as_aiortc_reads_them(cumulative_tsn: int, rwnd: int,
                                            gaps: list[tuple[int, int]],
                                            duplicates: list[int]) -> None:
    chunk = rsctp.SackChunk()
    chunk.cumulative_tsn, chunk.advertised_rwnd = cumulative_tsn, rwnd
    chunk.gaps, chunk.duplicates = gaps, duplicates
    data = packet([chunk])
    read = rx._data_and_sacks(data, TAG)
    aiortcs = rsctp.parse_packet(data)[3]
    assert read is not None and len(read) == len(aiortcs) == 1
    assert type(read[0]) is rsctp.SackChunk and vars(read[0]) == vars(aiortcs[0])


def test_the_usual_sack_is_read_without_aiortcs_parse(monkeypatch: Any) -> None:
    # A SACK without gap reports or duplicates (nearly all of them): one unpack,
    # not SackChunk.__init__ on a copy of the chunk's body.
    made: list[Any] = []
    init = rsctp.SackChunk.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    data = packet([sack(FIRST_TSN)])
    monkeypatch.setattr(rsctp.SackChunk, "__init__", counting)
    read = rx._data_and_sacks(data, TAG)
    assert read is not None and read[0].cumulative_tsn == FIRST_TSN
    assert made == []


def test_aiortcs_debug_lines_keep_aiortcs_path() -> None:
    async def main() -> None:
        sctp, delivered, _ = association(direct=True)
        seen = count_chunk_reads(sctp)
        chunk = rsctp.DataChunk(flags=rsctp.SCTP_DATA_FIRST_FRAG | rsctp.SCTP_DATA_LAST_FRAG)
        chunk.tsn, chunk.protocol, chunk.user_data = FIRST_TSN, rsctp.WEBRTC_BINARY, b"one"
        logger = logging.getLogger(rsctp.__name__)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            await sctp._handle_data(packet([chunk]))
        finally:
            logger.setLevel(level)
        assert len(seen) == 1 and [d for _, _, d in delivered] == [b"one"]

    asyncio.run(main())


def test_a_chunk_reader_of_someone_else_keeps_its_path() -> None:
    async def main() -> None:
        sctp, _, _ = association(direct=False)
        sctp._receive_chunk = sctp._receive_chunk  # an instance hook, as another module would
        assert not rx.receive_directly(sctp)

    asyncio.run(main())


def test_a_data_chunk_hook_already_there_sees_every_chunk() -> None:
    async def main() -> None:
        sctp, delivered, _ = association(direct=False)
        seen: list[int] = []
        receive_data_chunk = sctp._receive_data_chunk

        async def noting(chunk: Any) -> None:  # as another module's hook would
            seen.append(chunk.tsn)
            await receive_data_chunk(chunk)

        sctp._receive_data_chunk = noting
        assert rx.receive_directly(sctp)
        tsn = FIRST_TSN
        for seq, data in enumerate([b"one", b"two", b"three"]):
            chunk = rsctp.DataChunk(flags=rsctp.SCTP_DATA_FIRST_FRAG | rsctp.SCTP_DATA_LAST_FRAG)
            chunk.tsn, chunk.stream_seq = tsn, seq
            chunk.protocol, chunk.user_data = rsctp.WEBRTC_BINARY, data
            await sctp._handle_data(packet([chunk]))
            tsn = rsctp.tsn_plus_one(tsn)
        assert [d for _, _, d in delivered] == [b"one", b"two", b"three"]
        assert len(seen) == 3

    asyncio.run(main())


def test_in_order_fragments_skip_aiortcs_data_path(monkeypatch: Any) -> None:
    """Messages of four fragments, two fragments a packet, as a link's frames arrive."""
    calls: list[int] = []
    aiortcs = rsctp.RTCSctpTransport._receive_data_chunk

    async def counting(self: Any, chunk: rsctp.DataChunk) -> None:
        calls.append(chunk.tsn)
        await aiortcs(self, chunk)

    monkeypatch.setattr(rsctp.RTCSctpTransport, "_receive_data_chunk", counting)

    async def main() -> None:
        sctp, delivered, sacks = association(direct=True)
        seen = count_chunk_reads(sctp)
        tsn, fragments = FIRST_TSN, []
        for seq in range(4):  # the first opens the stream: aiortc's path
            for i in range(4):
                chunk = rsctp.DataChunk(flags=(rsctp.SCTP_DATA_FIRST_FRAG if i == 0 else 0) | (
                    rsctp.SCTP_DATA_LAST_FRAG if i == 3 else 0))
                chunk.tsn, chunk.stream_seq = tsn, seq
                chunk.protocol, chunk.user_data = rsctp.WEBRTC_BINARY, bytes([seq, i]) * 600
                fragments.append(chunk)
                tsn = rsctp.tsn_plus_one(tsn)
        for at in range(0, len(fragments), 2):
            await sctp._handle_data(packet(fragments[at:at + 2]))
        assert [d for _, _, d in delivered] == [
            b"".join(bytes([seq, i]) * 600 for i in range(4)) for seq in range(4)]
        assert calls == [FIRST_TSN] and seen == [] and len(sacks) == 8
        assert sctp._last_received_tsn == fragments[-1].tsn
        assert sctp._inbound_streams[0].reassembly == []

    asyncio.run(main())


def data_chunk(tsn: int, flags: int, *, seq: int = 0, size: int = 1000) -> rsctp.DataChunk:
    """A DATA chunk of stream 0 as parsed off the wire."""
    chunk = rsctp.DataChunk()
    chunk.flags, chunk.tsn, chunk.stream_id, chunk.stream_seq = flags, tsn, 0, seq
    chunk.protocol = rsctp.WEBRTC_BINARY
    chunk.user_data = bytes([tsn % 251]) * size
    return rsctp.DataChunk(flags=flags, body=bytes(chunk)[4:])


def held_bytes(sctp: Any) -> int:
    return sum(len(c.user_data) for s in sctp._inbound_streams.values() for c in s.reassembly)


def test_a_message_that_never_ends_is_held_only_up_to_the_window() -> None:
    async def main() -> None:
        sctp, delivered, _ = association(direct=True)
        window = sctp._advertised_rwnd
        tsn = FIRST_TSN
        for i in range(1300):  # 1.3 MB of one message that never ends, in TSN order
            await sctp._receive_data_chunk(
                data_chunk(tsn, rsctp.SCTP_DATA_FIRST_FRAG if i == 0 else 0))
            tsn = rsctp.tsn_plus_one(tsn)
        assert window <= held_bytes(sctp) <= window + 1000
        assert sctp._advertised_rwnd <= 0 and delivered == []
        # What was dropped was never acknowledged: the sender retransmits from there,
        # and the message's end lets it out (the window back where it was).
        end, held = rsctp.tsn_plus_one(sctp._last_received_tsn), held_bytes(sctp)
        await sctp._receive_data_chunk(data_chunk(end, rsctp.SCTP_DATA_LAST_FRAG))
        assert [len(m) for _, _, m in delivered] == [held + 1000]
        assert held_bytes(sctp) == 0 and sctp._advertised_rwnd == window
        await sctp._receive_data_chunk(data_chunk(rsctp.tsn_plus_one(end), 3, seq=1))
        assert len(delivered) == 2

    asyncio.run(main())


def test_chunks_far_ahead_of_a_gap_are_held_only_up_to_max_tsn_ahead() -> None:
    async def main() -> None:
        sctp, delivered, _ = association(direct=True)
        # The chunks held cross the TSN wrap (2**32 - 1 to 0) half-way.
        last = sctp._last_received_tsn = (1 << 32) - rx.MAX_TSN_AHEAD // 2
        lost = rsctp.tsn_plus_one(last)
        tsn = rsctp.tsn_plus_one(lost)
        for seq in range(1, rx.MAX_TSN_AHEAD + 1000):  # whole messages, one byte each
            await sctp._receive_data_chunk(data_chunk(tsn, 3, seq=seq, size=1))
            tsn = rsctp.tsn_plus_one(tsn)
        assert len(sctp._sack_misordered) == rx.MAX_TSN_AHEAD - 1
        assert sctp._last_received_tsn == last and delivered == []
        # The lost chunk comes again: everything held goes out, in order.
        await sctp._receive_data_chunk(data_chunk(lost, 3, seq=0, size=1))
        assert len(delivered) == rx.MAX_TSN_AHEAD and held_bytes(sctp) == 0
        assert sctp._last_received_tsn == (last + rx.MAX_TSN_AHEAD) % (1 << 32)
        assert not sctp._sack_misordered

    asyncio.run(main())


@st.composite
def raw_chunks(draw: st.DrawFn) -> bytes:
    """One chunk's bytes: DATA or SACK (fields drawn), or another type; its length
    field now and then wrong (short, long, under a header) and its padding cut."""
    kind = draw(st.sampled_from([rsctp.DataChunk.type, rsctp.SackChunk.type, 6, 14]))
    if kind == rsctp.DataChunk.type:
        body = pack("!LHHL", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**16 - 1)),
                    draw(st.integers(0, 2**16 - 1)), draw(st.integers(0, 2**32 - 1)))
        body += draw(st.binary(max_size=30))
    elif kind == rsctp.SackChunk.type:
        gaps = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=2))
        duplicates = draw(st.lists(st.integers(0, 2**32 - 1), max_size=2))
        body = pack("!LLHH", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)),
                    len(gaps), len(duplicates))
        body += b"".join(pack("!HH", *g) for g in gaps)
        body += b"".join(pack("!L", d) for d in duplicates)
    else:
        body = draw(st.binary(max_size=12))
    length = len(body) + 4
    length = draw(st.sampled_from([length, length, length, 0, 3, 15, 16, length + 4]))
    flags = draw(st.integers(0, 255))
    chunk = pack("!BBH", kind, flags, length) + body
    return chunk + b"\x00" * draw(st.sampled_from([-len(chunk) % 4, -len(chunk) % 4, 0]))


@settings(max_examples=500, deadline=None)
@given(st.lists(raw_chunks(), max_size=4), st.binary(max_size=3))
def test_chunks_are_read_as_aiortc_parses_them(chunks: list[bytes], tail: bytes) -> None:
    # The packet's chunks as aiortc's parse_packet makes them (type and every field),
    # or None where that parse fails or finds a chunk other than DATA and SACK.
    body = b"".join(chunks) + tail
    header = pack("!HHL", 5000, 5000, TAG)
    data = header + pack("<L", rsctp.crc32c(header + b"\x00\x00\x00\x00" + body)) + body
    read = rx._data_and_sacks(data, TAG)
    try:
        parsed: list[Any] | None = rsctp.parse_packet(data)[3]
    except Exception:
        parsed = None
    if parsed is not None and any(
            type(c) not in (rsctp.DataChunk, rsctp.SackChunk) for c in parsed):
        parsed = None
    if read is None or parsed is None:
        assert read is None and parsed is None
        return
    assert [(type(c), vars(c)) for c in read] == [(type(c), vars(c)) for c in parsed]
    assert rx._data_and_sacks(data, TAG + 1) is None  # another association's tag
