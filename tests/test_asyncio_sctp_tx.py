"""The direct SCTP send path sends aiortc's packets, to the byte, and leaves aiortc's state.

Two real aiortc associations (no network: packets are collected) with the
same hooks as a TaiiNet link, one whose packets may take the direct paths
(``send_directly``, ``sack_packet``) and one whose writer refuses every
packet (so every message and SACK takes aiortc's path, as before these
paths existed), go through the same drawn steps: messages of every size on
channels of every kind, DATA from the peer (SACKs owed, bundled, sent at
once), SACKs with and without gap reports (fast retransmit), T3 expiries, a
shrunken congestion window.  Packets sent and the state must be equal after
every step.  Then counting tests on a real link.
"""

from __future__ import annotations

import asyncio  # aiortc's objects live on an asyncio loop of the test's own
import collections
from collections.abc import Callable
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
from hypothesis import example, given, settings
from hypothesis import strategies as st

from taiinet.transport import _asyncio_sctp as sacks_module
from taiinet.transport import _asyncio_sctp_tx as tx
from taiinet.transport._asyncio_sctp_rx import receive_directly
from taiinet.transport._asyncio_sctp_timers import lazy_t3
from tests.webrtc_support import count_loop_timers, raw_pair, timer_target

CERTIFICATE = RTCCertificate.generateCertificate()
TAG = 0x1234ABCD
LOCAL_TSN = 0xFFFFFFE0  # our TSNs wrap during a run
PEER_TSN = 0x7FFFFFF0
#: id -> (ordered, maxRetransmits): a TaiiNet channel, an unordered one, partly reliable ones.
CHANNELS = {1: (True, None), 3: (False, None), 5: (True, 0), 7: (False, 0)}
U = rsctp.USERDATA_MAX_LENGTH


class Association:
    """One association, established by hand, that collects the packets it sends."""

    def __init__(self, *, direct: bool) -> None:
        sctp = rsctp.RTCSctpTransport(
            RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [CERTIFICATE]))
        sctp._association_state = sctp.State.ESTABLISHED
        sctp._RTCSctpTransport__state = "connected"
        sctp._remote_port = 5000
        sctp._ssthresh = 1 << 20  # from the peer's INIT (its receive window)
        sctp._local_verification_tag = sctp._remote_verification_tag = TAG
        sctp._local_tsn = sctp._reconfig_request_seq = LOCAL_TSN
        sctp._last_sacked_tsn = sctp._advanced_peer_ack_tsn = rsctp.tsn_minus_one(LOCAL_TSN)
        sctp._last_received_tsn = rsctp.tsn_minus_one(PEER_TSN)
        self.sctp = sctp
        self.packets: list[bytes] = []
        self.low_events: list[int] = []

        async def send_data(data: bytes) -> None:
            self.packets.append(data)

        sctp.transport._send_data = send_data
        writer: tx.WriterSource = (lambda: self.packets.append) if direct else (lambda: None)
        assert receive_directly(sctp)
        assert sacks_module.delay_sacks(sctp, writer)
        assert sacks_module.flush_at_once(sctp)
        if direct:  # else aiortc's send path and SACK reading
            assert tx.send_directly(sctp, writer)
        assert lazy_t3(sctp)
        self.timer_calls: list[str] = []  # T3 started, restarted, cancelled, in order
        for name in ("_t3_start", "_t3_restart", "_t3_cancel"):
            setattr(sctp, name, self.logging(name, getattr(sctp, name)))
        self.channels = {}
        for stream_id, (ordered, max_retransmits) in CHANNELS.items():
            channel = RTCDataChannel(sctp, RTCDataChannelParameters(
                label="x", negotiated=True, id=stream_id, ordered=ordered,
                maxRetransmits=max_retransmits))
            channel.on("bufferedamountlow", lambda i=stream_id: self.low_events.append(i))
            self.channels[stream_id] = channel

    def logging(self, name: str, call: Callable[[], None]) -> Callable[[], None]:
        def logged() -> None:
            self.timer_calls.append(name)
            call()

        return logged

    def state(self) -> tuple[Any, ...]:
        s = self.sctp
        return (
            s._local_tsn, dict(s._outbound_stream_seq), [chunk_state(c) for c in s._sent_queue],
            [chunk_state(c) for c in s._outbound_queue], s._flight_size, s._cwnd, s._ssthresh,
            s._partial_bytes_acked, s._fast_recovery_exit, s._fast_recovery_transmit,
            s._t3_handle is None, s._sack_needed, list(s._sack_duplicates),
            sorted(s._sack_misordered), s._last_received_tsn, s._last_sacked_tsn,
            s._advanced_peer_ack_tsn, dict(s._forward_tsn_streams),
            s._forward_tsn_chunk is None, len(s._data_channel_queue),
            {i: c.bufferedAmount for i, c in self.channels.items()}, list(self.low_events),
            list(self.timer_calls),
        )


def chunk_state(c: Any) -> tuple[Any, ...]:
    return (c.flags, c.tsn, c.stream_id, c.stream_seq, c.protocol, c.user_data, c._abandoned,
            c._acked, c._book_size, c._expiry is None, c._in_flight, c._max_retransmits,
            c._misses, c._retransmit, c._sent_count, c._sent_time is None)


def packet(chunks: list[Any]) -> bytes:
    body = b"".join(bytes(c) for c in chunks)
    header = pack("!HHL", 5000, 5000, TAG)
    return header + pack("<L", rsctp.crc32c(header + b"\x00\x00\x00\x00" + body)) + body


def peer_data(sctp: Any, count: int, *, immediate: bool) -> bytes:
    """A packet of ``count`` whole messages from the peer, on stream 1, next in turn."""
    chunks = []
    tsn = rsctp.tsn_plus_one(sctp._last_received_tsn)
    stream = sctp._inbound_streams.get(1)
    seq = stream.sequence_number if stream is not None else 0
    for i in range(count):
        chunk = rsctp.DataChunk()
        chunk.flags = rsctp.SCTP_DATA_FIRST_FRAG | rsctp.SCTP_DATA_LAST_FRAG
        if immediate and i == count - 1:
            chunk.flags |= sacks_module.IMMEDIATE_ACK
        chunk.tsn, chunk.stream_id, chunk.stream_seq = tsn, 1, (seq + i) % 65536
        chunk.protocol, chunk.user_data = rsctp.WEBRTC_BINARY, b"peer%d" % i
        chunks.append(chunk)
        tsn = rsctp.tsn_plus_one(tsn)
    return packet(chunks)


def peer_sack(sctp: Any, acked: int, gap: int) -> bytes:
    """A SACK of the first ``acked`` chunks in flight and, ``gap`` chunks on, one more."""
    queue = list(sctp._sent_queue)
    sack = rsctp.SackChunk()
    acked = min(acked, len(queue))
    sack.cumulative_tsn = queue[acked - 1].tsn if acked else sctp._last_sacked_tsn
    sack.advertised_rwnd = 1 << 20
    if gap and acked + gap < len(queue):
        sack.gaps = [(gap + 1, gap + 1)]
    return packet([sack])


sends = st.tuples(st.just("send"), st.sampled_from(sorted(CHANNELS)),
                  st.sampled_from([1, 2, 3, 100, U - 1, U, U + 1, 2 * U + 7, 6 * U, 0, -1,
                                   rsctp.REMOTE_DEFAULT_MAX_MESSAGE_SIZE + 1]))
steps = st.lists(st.one_of(
    sends,
    sends,
    st.tuples(st.just("data"), st.integers(1, 2), st.booleans()),
    # acked chunks, a gap block that far on, that SACK repeated (three: a fast retransmit)
    st.tuples(st.just("sack"), st.integers(0, 8), st.integers(0, 3), st.integers(1, 3)),
    st.tuples(st.just("t3")),
    # a message handed over before the transmission T3 scheduled runs (FORWARD TSN pending)
    st.tuples(st.just("t3 send"), st.sampled_from(sorted(CHANNELS)), st.sampled_from([1, U])),
    st.tuples(st.just("cwnd"), st.sampled_from([U, 2 * U, 3 * U, 12 * U])),
    st.tuples(st.just("ssthresh"), st.sampled_from([U, 1 << 20])),  # congestion avoidance
    st.tuples(st.just("old sack")),  # reordered by the network: older than the last one
    # fast recovery until what was sent is acknowledged (a smaller burst)
    st.tuples(st.just("recovery")),
), min_size=8, max_size=40)


async def step(a: Association, action: tuple[Any, ...]) -> None:
    sctp = a.sctp
    if action[0] == "send":
        _, stream_id, size = action
        data: bytes | str = "text" if size < 0 else bytes([size % 251]) * size
        try:
            a.channels[stream_id].send(data)
        except ValueError:  # larger than the peer takes: aiortc refuses it
            a.low_events.append(-1)
    elif action[0] == "data":
        await sctp._handle_data(peer_data(sctp, action[1], immediate=action[2]))
    elif action[0] == "sack":
        sack = peer_sack(sctp, action[1], action[2])
        for _ in range(action[3]):
            await sctp._handle_data(sack)
    elif action[0] in ("t3", "t3 send"):
        if sctp._t3_handle is not None:
            sctp._t3_expired()
        if action[0] == "t3 send":
            a.channels[action[1]].send(bytes(action[2]))
    elif action[0] == "old sack":
        sack = rsctp.SackChunk()
        sack.cumulative_tsn = rsctp.tsn_minus_one(sctp._last_sacked_tsn)
        sack.advertised_rwnd = 1 << 20
        await sctp._handle_data(packet([sack]))
    elif action[0] == "ssthresh":
        sctp._ssthresh = action[1]
    elif action[0] == "recovery":
        sctp._fast_recovery_exit = rsctp.tsn_minus_one(sctp._local_tsn)
    else:
        sctp._cwnd = action[1]
    for _ in range(3):  # aiortc's own tasks (a flush, a transmission after T3) run
        await asyncio.sleep(0)


@settings(max_examples=400, deadline=None)
@given(steps)
# congestion avoidance (the window full when the SACK comes)
@example([("ssthresh", U), ("send", 1, 6 * U), ("sack", 1, 0, 1)])
# an unordered chunk abandoned: the peer's next SACK is behind the advanced ack point
@example([("send", 7, 100), ("t3",), ("sack", 0, 0, 1)])
# a fast retransmit, then a message in fast recovery (a burst of two packets)
@example([("cwnd", 12 * U), ("send", 1, 6 * U), ("sack", 0, 1, 3), ("recovery",),
          ("send", 1, 6 * U)])
def test_direct_sends_are_aiortcs_packets_and_state(
        monkeypatch_session: None, actions: list[tuple[Any, ...]]) -> None:
    async def main() -> None:
        plain, direct = Association(direct=False), Association(direct=True)
        for action in actions:
            await step(plain, action)
            await step(direct, action)
            assert direct.packets == plain.packets, action
            assert direct.state() == plain.state(), action

    asyncio.run(main())


@pytest.fixture(scope="module")
def monkeypatch_session() -> Any:
    """SACK delay timers that never fire during a drawn run (each side would fire its own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sacks_module, "SACK_DELAY", 3600.0)
        patch.setattr(sacks_module, "SACK_DELAY_MID_MESSAGE", 3600.0)
        yield


def test_the_direct_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drawn test compares something: the usual message and SACK leave directly."""
    counts: collections.Counter[str] = collections.Counter()
    count_calls(monkeypatch, rsctp.RTCSctpTransport, "_send", counts)
    count_calls(monkeypatch, rsctp, "serialize_packet", counts)

    async def main() -> None:
        a = Association(direct=True)
        a.channels[1].send(b"x" * 300)
        await a.sctp._handle_data(peer_data(a.sctp, 1, immediate=True))  # a SACK at once
        counts["packets"] = len(a.packets)

    asyncio.run(main())
    assert counts == {"packets": 2}, counts


# A real link: what the direct paths save.

#: The delayed-SACK timer's expiry (``delay_sacks``), what its ``LazyDeadline`` runs.
SACK_DELAY_OVER = "delay_sacks.<locals>.delay_over"


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
                counts: collections.Counter[str]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)


async def test_messages_and_sacks_skip_aiortcs_send_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        counts: collections.Counter[str] = collections.Counter()
        for name in ("_data_channel_flush", "_send"):
            count_calls(monkeypatch, rsctp.RTCSctpTransport, name, counts)
        count_calls(monkeypatch, rsctp, "serialize_packet", counts)
        for i in range(20):  # a ping, a pong (the SACK rides), and a lone SACK now and then
            await a.send_message(bytes([i]) * 300)
            assert await b.receive_message() == bytes([i]) * 300
            await b.send_message(b"ack")
            assert await a.receive_message() == b"ack"
        # aiortc's path: each of these at least once per message (and per SACK).
        assert counts["_send"] == counts["serialize_packet"] == 0, counts
        # Only a SACK's processing still flushes and transmits (aiortc's ``_receive_sack_chunk``).
        assert counts["_data_channel_flush"] <= 45, counts


async def test_lone_packets_make_no_loop_timer_each() -> None:
    async with raw_pair() as (a, b):
        await b.send_message(b"hello")
        assert await a.receive_message() == b"hello"
        loop = b._channel.transport._loop
        made = count_loop_timers(
            loop, lambda target: getattr(target, "__qualname__", "") == SACK_DELAY_OVER)
        try:
            for i in range(30):  # b owes a SACK for each, and its reply carries it
                await a.send_message(bytes([i]))
                assert await b.receive_message() == bytes([i])
                await b.send_message(b"ack")
                assert await a.receive_message() == b"ack"
        finally:
            del loop.call_at
        # Before: a timer made (and cancelled by the reply) per packet received.
        assert len(made) <= 3, len(made)


async def test_a_mid_message_sack_delay_cancels_no_loop_timer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A one-packet message leaves a SACK owed for up to SACK_DELAY; the next
    # message's second packet leaves one owed for up to SACK_DELAY_MID_MESSAGE.
    large = bytes(3 * rsctp.USERDATA_MAX_LENGTH + 100)  # four DATA packets
    cancelled: list[asyncio.TimerHandle] = []
    cancel = asyncio.TimerHandle.cancel

    def noting_cancel(handle: asyncio.TimerHandle) -> None:
        if getattr(timer_target(handle._callback), "__qualname__", "") == SACK_DELAY_OVER:
            cancelled.append(handle)
        cancel(handle)

    async with raw_pair() as (a, b):
        await b.send_message(b"hello")  # carries any SACK b owes from the set-up
        assert await a.receive_message() == b"hello"
        monkeypatch.setattr(asyncio.TimerHandle, "cancel", noting_cancel)
        for _ in range(5):
            await a.send_message(b"1")
            assert await b.receive_message() == b"1"
            await a.send_message(large)
            assert await b.receive_message() == large
        monkeypatch.undo()
    # Before: one deadline for both delays, whose loop timer, armed for 200 ms, was
    # cancelled for the earlier one and another made (and, once that fired, a
    # third for the next 200 ms deadline).
    assert not cancelled, len(cancelled)


def test_a_message_waits_in_aiortcs_queue_after_a_channel_closed_early() -> None:
    # aiortc replaces its data channel queue when a channel closes before the
    # association is up; a message handed over later must be in the new one.
    async def main() -> list[Any]:
        a = Association(direct=True)
        sctp = a.sctp
        sctp._association_state = sctp.State.COOKIE_WAIT
        a.channels[3].close()  # not established: aiortc rebuilds its queue without it
        sctp._data_channel_send(a.channels[1], b"later")
        return [data for _, _, data in sctp._data_channel_queue]

    assert asyncio.run(main()) == [b"later"]
