"""The asyncio bridge on its own: raw aiortc data channels seen from trio (127.0.0.1 only)."""

from __future__ import annotations

import ast
import collections
import logging
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    rtcsctptransport,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from taiinet.errors import ConnectionClosed, LocalProtocolError
from taiinet.transport import _asyncio_dtls as dtls_module
from taiinet.transport import _asyncio_loop as loop_module
from taiinet.transport import _asyncio_sctp as sctp_module
from taiinet.transport._asyncio_bridge import AiortcBridge, BridgeConnectError
from taiinet.transport._asyncio_channel import (
    RECEIVE_HIGH_WATER,
    RECEIVE_HIGH_WATER_BYTES,
    BridgedDataChannel,
)
from tests.import_support import load_copy_without
from tests.webrtc_support import (
    count_loop_timers,
    drop_first_data_packet,
    open_bridge,
    raw_pair,
)

PACKAGE = Path(__file__).resolve().parent.parent / "taiinet"


def loop_left() -> bool:
    """Whether this trio run still has an asyncio loop (none once every bridge closed)."""
    return loop_module._HOSTED.get() is not None


async def wait_until_stalled(progress: Callable[[], int]) -> None:
    """Return once ``progress()`` stays put while trio is idle, three times running."""
    stable, last = 0, -1
    with trio.fail_after(30):
        while stable < 3:
            await trio.testing.wait_all_tasks_blocked(0.1)
            stable, last = (stable + 1 if progress() == last else 0), progress()


async def test_messages_cross_in_order_both_ways() -> None:
    async with raw_pair() as (a, b):
        for i in range(50):
            await a.send_message(i.to_bytes(2, "big") * 100)
            await b.send_message(bytes([i]))
        assert [await b.receive_message() for _ in range(50)] == [
            i.to_bytes(2, "big") * 100 for i in range(50)
        ]
        assert [await a.receive_message() for _ in range(50)] == [bytes([i]) for i in range(50)]
    assert not loop_left()


async def test_oversized_message_is_a_local_error() -> None:
    async with raw_pair() as (a, _b):
        with pytest.raises(LocalProtocolError):
            await a.send_message(b"x" * (a.max_message_size + 1))


async def test_close_reaches_the_other_side_after_queued_messages() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"last words")
        assert await b.receive_message() == b"last words"
        await a.aclose()
        await a.aclose()  # idempotent
        with pytest.raises(ConnectionClosed):
            await b.receive_message()
        with pytest.raises(ConnectionClosed):
            await a.send_message(b"too late")


async def test_a_reader_that_stops_reading_stalls_the_sender() -> None:
    message_size, count = 4096, 900  # 3.7 MB: more than every buffer on the path
    async with raw_pair() as (a, b):
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(count):
                await a.send_message(i.to_bytes(4, "big") * (message_size // 4))
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await wait_until_stalled(lambda: sent)
            assert a._writer_waiting
            assert sent < count
            assert len(b._inbox) <= RECEIVE_HIGH_WATER + 1
            assert b._inbox_bytes <= RECEIVE_HIGH_WATER_BYTES + message_size
            for i in range(count):
                assert await b.receive_message() == i.to_bytes(4, "big") * (message_size // 4)


async def test_cancelled_call_leaves_no_task_behind() -> None:
    async with open_bridge() as bridge:
        started = trio.Event()

        async def never_ending() -> None:
            import asyncio  # the test plays the bridge's part here

            started.set()  # same thread: the loop runs inside trio
            await asyncio.Event().wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bridge.run, never_ending)
            await started.wait()
            nursery.cancel_scope.cancel()

        async def count_tasks() -> int:
            import asyncio

            return len(asyncio.all_tasks()) - 1

        assert await bridge.run(count_tasks) == 0
    assert not loop_left()


async def test_failed_ice_is_reported() -> None:
    # The answerer offers no candidate at all, so ICE cannot find a pair.
    async with open_bridge() as left:
        mute = AiortcBridge(candidate_addresses=[], ice_servers=())
        mute.start()
        try:
            offerer, answerer = left.new_peer(), mute.new_peer()
            answer = await answerer.create_answer(await offerer.create_offer())
            await offerer.accept_answer(answer)
            with trio.fail_after(30), pytest.raises(BridgeConnectError):
                await offerer.wait_open()
        finally:
            await mute.aclose()


def test_candidate_override_filters_by_family() -> None:
    token = loop_module._CANDIDATE_ADDRESSES.set(("127.0.0.1", "::1"))
    try:
        assert loop_module._get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
        assert loop_module._get_host_addresses(use_ipv4=False, use_ipv6=True) == ["::1"]
    finally:
        loop_module._CANDIDATE_ADDRESSES.reset(token)


def test_only_the_bridge_imports_asyncio_or_aiortc() -> None:
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in {"asyncio", "aiortc", "aioice"} for n in names):
                importers.append(path.name)
    assert set(importers) == {
        "_asyncio_bridge.py", "_asyncio_channel.py", "_asyncio_dtls.py", "_asyncio_eager.py",
        "_asyncio_loop.py", "_asyncio_sctp.py", "_asyncio_sctp_params.py", "_asyncio_sctp_rx.py",
        "_asyncio_sctp_timers.py", "_asyncio_sctp_tx.py", "_asyncio_sctp_wrap.py",
        "_asyncio_sctp_sound.py",
    }


async def test_closing_while_dtls_connects_leaves_no_association_behind() -> None:
    # aiortc's connect task starts SCTP when the DTLS handshake ends, also when
    # close() is under way (waiting in its DTLS shutdown): hold that shutdown
    # until the handshake is done, as a loaded loop sometimes does.
    import asyncio  # the bridge's loop: this test reaches into aiortc's objects

    async with open_bridge() as left, open_bridge() as right:
        offerer, answerer = left.new_peer(), right.new_peer()
        answer = await answerer.create_answer(await offerer.create_offer())
        assert offerer._pc is not None
        sctp = offerer._pc.sctp
        dtls = sctp.transport
        handshake_done = asyncio.Event()

        def on_state() -> None:
            if dtls.state == "connected":
                handshake_done.set()

        dtls.on("statechange", on_state)
        stop = dtls.stop

        async def stop_after_handshake() -> None:
            await asyncio.wait_for(handshake_done.wait(), 20)
            await stop()

        dtls.stop = stop_after_handshake
        await offerer.accept_answer(answer)
        await offerer.aclose()
        assert handshake_done.is_set()
        assert sctp.state == "closed"
    assert not loop_left()


async def test_ice_sockets_get_the_wider_receive_buffer() -> None:
    # asyncio reads one datagram per socket per loop iteration: a busy loop lets
    # an SCTP window pile up in the socket, and Linux drops what exceeds it.
    import socket

    from taiinet.transport._asyncio_bridge import UDP_RECEIVE_BUFFER

    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    async with raw_pair() as (a, b):
        for protocol in ice_protocols(a, b):
            sock = protocol.transport.get_extra_info("socket")
            # Linux reports twice the request (its bookkeeping), capped at rmem_max.
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            assert got >= 2 * min(UDP_RECEIVE_BUFFER, rmem_max), got


def ice_protocols(*channels: Any) -> list[Any]:
    """The ICE sockets' asyncio protocols under bridged ``channels`` (at least one each)."""
    found = []
    for channel in channels:
        gatherer = channel._channel.transport.transport.transport.iceGatherer
        protocols = list(gatherer._connection._protocols)
        assert protocols
        found += protocols
    return found


async def test_ice_sockets_are_read_in_datagram_sized_reads() -> None:
    # asyncio reads 256 KiB per datagram (allocated, then shrunk): past glibc's
    # mmap threshold a map and unmap per datagram.  Any UDP datagram fits 64 KiB.
    from taiinet.transport._asyncio_bridge import UDP_READ_SIZE

    async with raw_pair() as (a, b):
        for protocol in ice_protocols(a, b):
            assert protocol.transport.max_size == UDP_READ_SIZE == 65536
        await a.send_message(b"z" * 5000)  # still read whole
        assert await b.receive_message() == b"z" * 5000


async def test_bridges_share_one_loop_until_the_last_one_closes() -> None:
    async def seven() -> int:
        return 7

    async with open_bridge() as first:
        async with open_bridge() as second:
            assert first.hosted is second.hosted
        # The second one is closed; the loop still serves the first.
        assert await first.run(seven) == 7
        assert not first.hosted.loop.is_closed()
        with pytest.raises(ConnectionClosed):
            await second.run(seven)
    assert not loop_left()
    assert first.hosted.loop.is_closed()
    async with open_bridge() as again:  # a new loop for the next user
        assert again.hosted is not first.hosted
        assert await again.run(seven) == 7
    assert not loop_left()


async def test_callbacks_made_ready_run_without_waiting_for_trio() -> None:
    # A callback that schedules another (a task woken by a future: aiortc's DTLS
    # reader, once per datagram) runs in the same turn of the driver, not one
    # trio scheduling round later each.
    async with open_bridge() as bridge:
        hosted = bridge.hosted
        done: list[bool] = []

        def chain(n: int) -> None:
            if n:
                hosted.loop.call_soon(chain, n - 1)
            else:
                done.append(True)

        hosted.call_soon(lambda: chain(5))
        rounds = 0
        with trio.fail_after(10):
            while not done:
                await trio.lowlevel.checkpoint()
                rounds += 1
        assert rounds <= 2


async def test_datagrams_waiting_are_read_in_one_turn_of_the_driver() -> None:
    # asyncio reads one datagram per socket per iteration; an iteration that
    # found sockets ready is followed by another in the same turn, so a burst
    # waiting on a socket does not cost a trio scheduling round per datagram.
    import asyncio  # the test plays aioice's part: a UDP endpoint on the loop
    import socket

    count = 6
    async with open_bridge() as bridge:
        received: list[bytes] = []

        class Counting(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                received.append(data)

        async def listen() -> Any:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                Counting, local_addr=("127.0.0.1", 0))
            return transport

        transport = await bridge.run(listen)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for i in range(count):
                    sender.sendto(bytes([i]), transport.get_extra_info("sockname"))
            rounds = 0
            with trio.fail_after(10):
                while len(received) < count:
                    await trio.lowlevel.checkpoint()
                    rounds += 1
            assert received == [bytes([i]) for i in range(count)]
            assert rounds <= 4, rounds
        finally:
            transport.close()


async def test_the_loop_runs_in_the_trio_thread() -> None:
    async def where() -> threading.Thread:
        return threading.current_thread()

    async with open_bridge() as bridge:
        assert await bridge.run(where) is threading.current_thread()


def count_sent_chunks(channel: BridgedDataChannel) -> collections.Counter[str]:
    """Count, by type, the SCTP chunks ``channel``'s side sends from now on (and its packets)."""
    sent: collections.Counter[str] = collections.Counter()
    dtls = channel._channel.transport.transport
    send_data = dtls._send_data

    async def counting(data: bytes) -> None:
        sent["packets"] += 1
        for chunk in rtcsctptransport.parse_packet(data)[3]:
            sent[type(chunk).__name__] += 1
            if isinstance(chunk, rtcsctptransport.DataChunk) and (
                    chunk.flags & sctp_module.IMMEDIATE_ACK):
                sent["I bit"] += 1
        await send_data(data)

    dtls._send_data = counting
    return sent


async def test_a_burst_is_acknowledged_every_second_packet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The delayed-SACK timer is set long, so that a loaded machine spreading the
    # burst's packets over more than the real delay (5 ms) cannot add SACKs: the
    # count is then the every-second-packet rule's alone.
    monkeypatch.setattr(sctp_module, "SACK_DELAY", 3.0)
    size = 60_000  # 52 DATA packets of aiortc's 1,172 bytes
    async with raw_pair() as (a, b):
        sent = count_sent_chunks(b)
        data_sent = count_sent_chunks(a)
        await a.send_message(bytes(size))
        assert await b.receive_message() == bytes(size)
        with trio.fail_after(20):
            while a._channel.transport._sent_queue:  # everything acknowledged
                await trio.sleep(0.01)
        packets = -(-size // rtcsctptransport.USERDATA_MAX_LENGTH)
        # Every second packet, not every one (aiortc's own rule) nor only the timer's,
        # and at once for a packet whose sender ran out of congestion window (I bit).
        flagged = data_sent["I bit"]
        assert packets // 2 - 1 <= sent["SackChunk"] <= packets // 2 + 1 + flagged, sent
        assert flagged < packets // 2, data_sent


async def test_lone_packets_are_acknowledged_every_second_one() -> None:
    # Messages further apart than the old 5 ms delay and well within the 200 ms
    # one: a SACK for every second packet, not one per packet (the receiver
    # sends no DATA for them to ride with).
    count = 10
    async with raw_pair() as (a, b):
        await b.send_message(b"hello")  # carries any SACK b owes from the set-up
        assert await a.receive_message() == b"hello"
        sent = count_sent_chunks(b)
        data_sent = count_sent_chunks(a)
        for i in range(count):
            await a.send_message(bytes([i]))
            assert await b.receive_message() == bytes([i])
            await trio.sleep(0.02)
        assert sent["SackChunk"] <= count // 2 + 1, sent
        assert data_sent["I bit"] == 0, data_sent  # never short of window


async def test_a_sender_out_of_window_asks_for_a_sack_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A congestion window of one packet (as after a retransmission timeout):
    # a lone packet in the middle of a message is acknowledged after the short
    # delay, and one that ends a message and fills the window carries the I
    # bit (RFC 7053), which the receiver acknowledges at once instead of after
    # its delay for message ends (set far beyond the test's patience): the
    # rest of the message, and a message handed over once the window had
    # filled, follow without a retransmission timeout.
    monkeypatch.setattr(sctp_module, "SACK_DELAY", 60.0)
    async with raw_pair() as (a, b):
        await b.send_message(b"hello")
        assert await a.receive_message() == b"hello"
        data_sent = count_sent_chunks(a)
        sctp_a = a._channel.transport
        sctp_a._cwnd = rtcsctptransport.USERDATA_MAX_LENGTH
        message = bytes(3 * rtcsctptransport.USERDATA_MAX_LENGTH)  # three packets
        await a.send_message(message)
        with trio.fail_after(10):
            assert await b.receive_message() == message
        assert data_sent["DataChunk"] == 3, data_sent
        with trio.fail_after(10):
            while sctp_a._sent_queue:
                await trio.sleep(0.01)
        sctp_a._cwnd = rtcsctptransport.USERDATA_MAX_LENGTH
        first = bytes(rtcsctptransport.USERDATA_MAX_LENGTH)  # fills the window
        await a.send_message(first)
        assert await b.receive_message() == first
        await a.send_message(b"after")  # handed over with the window full
        with trio.fail_after(10):
            assert await b.receive_message() == b"after"
        assert data_sent["DataChunk"] == 5, data_sent  # nothing resent after a timeout
        assert data_sent["I bit"] >= 1, data_sent


async def test_a_sack_owed_rides_with_outgoing_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sctp_module, "SACK_DELAY", 60.0)  # the timer never beats the reply
    async with raw_pair() as (a, b):
        await b.send_message(b"hello")  # carries any SACK b owes from the set-up
        assert await a.receive_message() == b"hello"
        sent = count_sent_chunks(b)
        # One packet of DATA each way, the reply sent before the SACK's delay ends.
        sctp_b = b._channel.transport
        await a.send_message(b"ping")
        assert await b.receive_message() == b"ping"
        assert sctp_b._sack_needed  # owed, not yet sent
        await b.send_message(b"pong")
        assert await a.receive_message() == b"pong"
        assert sent["DataChunk"] == 1 and sent["SackChunk"] == 1 and sent["packets"] == 1, sent
        assert not sent["I bit"], sent  # the window was open: no SACK asked for


async def test_a_gap_is_acknowledged_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A packet after a lost one is reported at once (RFC 9260 section 6.7), so
    # the sender's fast retransmit does not wait for the delay.
    monkeypatch.setattr(sctp_module, "SACK_DELAY", 60.0)
    async with raw_pair() as (a, b):
        await b.send_message(b"hello")
        assert await a.receive_message() == b"hello"
        sctp_b = b._channel.transport
        sent = count_sent_chunks(b)
        dtls_a = a._channel.transport.transport
        send_data = dtls_a._send_data
        dropped = drop_first_data_packet(dtls_a)
        await a.send_message(b"lost")
        await a.send_message(b"next")  # arrives with a gap before it
        with trio.fail_after(10):
            while not sent["SackChunk"]:
                await trio.sleep(0.01)
        assert dropped and sctp_b._sack_misordered, sent
        dtls_a._send_data = send_data


async def test_messages_arrive_whole_and_in_order_when_packets_are_lost() -> None:
    # Every seventh DATA chunk's first transmission is dropped: fast retransmit
    # and the timers (with the delayed SACKs and the I bit) recover them all.
    async with raw_pair() as (a, b):
        dtls_a = a._channel.transport.transport
        send_data = dtls_a._send_data
        dropped: set[int] = set()

        async def lossy(data: bytes) -> None:
            for chunk in rtcsctptransport.parse_packet(data)[3]:
                if (isinstance(chunk, rtcsctptransport.DataChunk) and chunk.tsn % 7 == 0
                        and chunk.tsn not in dropped):
                    dropped.add(chunk.tsn)
                    return
            await send_data(data)

        dtls_a._send_data = lossy
        messages = [i.to_bytes(2, "big") * 1500 for i in range(40)]  # 3 chunks each
        for message in messages:
            await a.send_message(message)
        with trio.fail_after(60):
            assert [await b.receive_message() for _ in messages] == messages
            while a._channel.transport._sent_queue:  # everything acknowledged
                await trio.sleep(0.01)
        assert len(dropped) >= 10, dropped


async def test_a_binary_message_leaves_in_the_send_call() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        sent = count_sent_chunks(a)
        seen: list[int] = []

        async def send_and_look() -> None:
            a._channel.send(b"now")
            seen.append(sent["DataChunk"])  # before the loop took another turn

        await a._peer._bridge.run(send_and_look)
        assert seen == [1], sent
        assert await b.receive_message() == b"now"


async def test_binary_messages_skip_the_message_event() -> None:
    async with raw_pair() as (a, b):
        b._channel.remove_all_listeners("message")  # only the direct path is left
        await a.send_message(b"direct")
        with trio.fail_after(10):
            assert await b.receive_message() == b"direct"


def count_queued_datagrams(channel: BridgedDataChannel) -> list[bytes]:
    """The datagrams that reach ``channel``'s side through aioice's queue from now on."""
    queue = channel._channel.transport.transport.transport._connection._queue
    queued: list[bytes] = []
    put = queue.put_nowait

    def counting(item: Any) -> None:
        queued.append(item)
        put(item)

    queue.put_nowait = counting
    return queued


async def test_records_are_read_in_the_socket_callback() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")  # the handshakes are over, both readers parked
        assert await b.receive_message() == b"hello"
        await b.send_message(b"hello")
        assert await a.receive_message() == b"hello"
        queued_a, queued_b = count_queued_datagrams(a), count_queued_datagrams(b)
        for i in range(50):
            await a.send_message(i.to_bytes(2, "big") * 700)  # two DATA packets each
            await b.send_message(bytes([i]))
        assert [await b.receive_message() for _ in range(50)] == [
            i.to_bytes(2, "big") * 700 for i in range(50)
        ]
        assert [await a.receive_message() for _ in range(50)] == [bytes([i]) for i in range(50)]
        # Not one datagram went through aiortc's reader task (its queue).
        assert queued_a == [] and queued_b == []


async def test_a_peer_closing_dtls_closes_the_direct_reader_side(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiortc")
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        dtls_b = b._channel.transport.transport
        assert getattr(dtls_b, dtls_module._HOOKED)
        await a._peer._bridge.run(a._peer._pc.close)  # DTLS close_notify, no channel close
        with trio.fail_after(20):
            while dtls_b.state != "closed":
                await trio.sleep(0.01)
        with pytest.raises(ConnectionClosed):
            await b.receive_message()
    # Ended as aiortc's reader ends on the peer's close_notify: quietly (it
    # logged a TypeError's traceback when the end was a (None, 1) datagram).
    assert not [r for r in caplog.records if r.name.startswith("aiortc")], caplog.text


async def test_datagrams_held_behind_a_busy_record_are_bounded() -> None:
    # b stops reading, so a record of a's waits in b's socket callback; then a
    # flood of DTLS-range datagrams (a peer faster than b, or garbage) arrives.
    async with raw_pair() as (a, b):
        dtls_b = b._channel.transport.transport
        assert 2 * b._channel.transport._advertised_rwnd <= dtls_module.MAX_HELD_BYTES
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(RECEIVE_HIGH_WATER + 64):
                await a.send_message(i.to_bytes(4, "big") * 16)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await wait_until_stalled(lambda: len(b._inbox))
            assert b._room is not None  # the SCTP receive path waits: a record is busy
            connection = dtls_b.transport._connection
            flood = 3 * dtls_module.MAX_HELD_BYTES // 1200
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]

                async def feed() -> None:
                    for i in range(flood):
                        connection.data_received(bytes([23]) + i.to_bytes(4, "big") * 300, 1)

                await b._peer._bridge.run(feed)
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert grown < dtls_module.MAX_HELD_BYTES * 5 // 4, grown  # not 3x the budget
            held = getattr(dtls_b, dtls_module._HELD)
            assert held.bytes <= dtls_module.MAX_HELD_BYTES
            assert held.dropped >= flood - dtls_module.MAX_HELD_BYTES // 1201
            received = [await b.receive_message() for _ in range(sent)]
        assert received == [i.to_bytes(4, "big") * 16 for i in range(sent)]
        with trio.fail_after(30):  # the garbage was dropped or read; the link still works
            await a.send_message(b"after")
            assert await b.receive_message() == b"after"
            await b.send_message(b"back")
            assert await a.receive_message() == b"back"
        assert held.bytes == held.datagrams == 0



def _dtls_garbage() -> st.SearchStrategy[bytes]:
    """Datagrams in the DTLS range (RFC 7983): arbitrary, or an application-data
    record header (epoch 1, any sequence number and length) over arbitrary bytes."""
    header = st.tuples(st.integers(0, 2**48 - 1), st.integers(0, 2**16 - 1)).map(
        lambda seq_len: (b"\x17\xfe\xfd\x00\x01" + seq_len[0].to_bytes(6, "big")
                         + seq_len[1].to_bytes(2, "big")))
    return st.one_of(
        st.tuples(st.integers(20, 63), st.binary(max_size=300)).map(
            lambda first_rest: bytes([first_rest[0]]) + first_rest[1]),
        st.tuples(header, st.binary(max_size=300)).map(b"".join),
    )


@settings(max_examples=8, deadline=None)
@given(st.lists(_dtls_garbage(), min_size=1, max_size=12))
async def test_bad_dtls_records_are_dropped_and_the_link_goes_on(datagrams: list[bytes]) -> None:
    """Whatever DTLS-range datagrams arrive (the direct record path reads them),
    none ends the link, nothing stays held, and messages flow both ways after."""
    async with raw_pair() as (a, b):
        dtls_b = b._channel.transport.transport
        connection = dtls_b.transport._connection

        async def feed() -> None:
            for datagram in datagrams:
                connection.data_received(datagram, 1)

        await b._peer._bridge.run(feed)
        with trio.fail_after(10):  # a link the garbage ended never answers
            await a.send_message(b"after")
            assert await b.receive_message() == b"after"
            await b.send_message(b"back")
            assert await a.receive_message() == b"back"
        held = getattr(dtls_b, dtls_module._HELD)
        assert held.bytes == held.datagrams == 0


def test_trio_as_a_guest_of_asyncio_keeps_its_host_loop() -> None:
    import asyncio  # the host program's loop, not the bridge's

    seen: list[bool] = []

    async def trio_main() -> None:
        async def seven() -> int:
            return 7

        host = asyncio.events._get_running_loop()
        async with open_bridge() as bridge:
            assert await bridge.run(seven) == 7
            seen.append(asyncio.events._get_running_loop() is host)

    async def host_program() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_main, run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result)
        (await done).unwrap()

    asyncio.run(host_program())
    assert seen == [True]


def count_aioice_sends(channel: BridgedDataChannel) -> list[bytes]:
    """The datagrams ``channel``'s side hands to aioice's ``Connection.send`` from now on."""
    ice = channel._channel.transport.transport.transport
    send = ice._send
    sent: list[bytes] = []

    async def counting(data: bytes) -> None:
        sent.append(data)
        await send(data)

    ice._send = counting
    return sent


def count_socket_sends(channel: BridgedDataChannel) -> list[bytes]:
    """The datagrams ``channel``'s side writes to its nominated pair's socket from now on."""
    pair = channel._channel.transport.transport.transport._connection._nominated[1]
    transport = pair.protocol.transport
    sendto = transport.sendto
    sent: list[bytes] = []

    def counting(data: bytes, addr: Any = None) -> None:
        sent.append(data)
        sendto(data, addr)

    transport.sendto = counting
    return sent


async def test_records_are_sent_in_the_send_call() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        dtls_a = a._channel.transport.transport
        assert getattr(dtls_a, dtls_module._SEND_HOOKED)
        before = dtls_a._get_stats()
        through_aioice, on_socket = count_aioice_sends(a), count_socket_sends(a)
        for i in range(20):
            await a.send_message(bytes([i]) * 300)
            assert await b.receive_message() == bytes([i]) * 300
        # Every record went straight to the socket, none through aioice's
        # coroutines, and aiortc's counters (its stats) still count each one.
        assert through_aioice == [] and len(on_socket) >= 20
        after = dtls_a._get_stats()
        (stats_before,), (stats_after,) = before.values(), after.values()
        assert stats_after.packetsSent - stats_before.packetsSent == len(on_socket)
        assert stats_after.bytesSent - stats_before.bytesSent == sum(map(len, on_socket))


async def test_reading_a_record_flushes_nothing_when_openssl_has_nothing() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        dtls_b = b._channel.transport.transport
        write_ssl = dtls_b._write_ssl
        calls: list[None] = []

        async def counting() -> None:
            calls.append(None)
            await write_ssl()

        dtls_b._write_ssl = counting
        for i in range(20):
            await a.send_message(bytes([i]) * 300)
            assert await b.receive_message() == bytes([i]) * 300
        assert calls == []  # aiortc's path calls it (and pyOpenSSL raises) once per record


async def test_records_skip_pyopenssls_python_wrappers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Records are encrypted and decrypted through the cffi binding: not one call of
    # pyOpenSSL's send / recv / bio_write / bio_read (Python around one OpenSSL call).
    from OpenSSL import SSL

    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        calls: collections.Counter[str] = collections.Counter()
        for name in ("send", "recv", "bio_write", "bio_read"):
            original = getattr(SSL.Connection, name)

            def counting(self: Any, *args: Any, _name: str = name, _original: Any = original,
                         **kwargs: Any) -> Any:
                calls[_name] += 1
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(SSL.Connection, name, counting)
        for i in range(20):
            await a.send_message(bytes([i]) * 2000)  # two DATA packets each, and SACKs
            assert await b.receive_message() == bytes([i]) * 2000
            await b.send_message(bytes([i]) * 10)
            assert await a.receive_message() == bytes([i]) * 10
        assert calls == {}


async def test_records_cross_without_per_packet_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    # Per record: the bytes straight out of cffi (no ``ffi.buffer`` object), and
    # no aiortc property (``RTCDtlsTransport.transport``, ``RTCSctpTransport.transport``)
    # to find the socket: the writer keeps what does not change.
    from aiortc import RTCDtlsTransport, RTCSctpTransport

    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        calls: collections.Counter[str] = collections.Counter()
        ffi = dtls_module._ffi

        class CountingFfi:
            def __getattr__(self, name: str) -> Any:
                calls[f"ffi.{name}"] += 1
                return getattr(ffi, name)

        monkeypatch.setattr(dtls_module, "_ffi", CountingFfi())
        for cls in (RTCDtlsTransport, RTCSctpTransport):
            prop = cls.transport

            def counting(self: Any, _prop: Any = prop, _name: str = cls.__name__) -> Any:
                calls[_name] += 1
                return _prop.fget(self)

            monkeypatch.setattr(cls, "transport", property(counting))
        for i in range(20):
            await a.send_message(bytes([i]) * 2000)  # two DATA packets each, and SACKs
            assert await b.receive_message() == bytes([i]) * 2000
            await b.send_message(bytes([i]) * 10)
            assert await a.receive_message() == bytes([i]) * 10
        monkeypatch.undo()
        assert calls == {}, calls


def test_sends_keep_aiortcs_path_without_aioices_connection() -> None:
    import asyncio  # aiortc's objects, made on a loop of the test's own

    async def elsewhere(data: bytes) -> None:
        raise AssertionError("not sent")

    async def main() -> None:
        certificate = RTCCertificate.generateCertificate()
        plain = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [certificate])
        assert dtls_module.send_directly(plain)
        ice = RTCIceTransport(RTCIceGatherer())
        ice._send = elsewhere  # a connection that is not aioice's: no hook
        other = RTCDtlsTransport(ice, [certificate])
        assert not dtls_module.send_directly(other)
        assert other._send_data.__func__ is RTCDtlsTransport._send_data

    asyncio.run(main())



def test_sends_keep_aiortcs_path_without_pyopenssls_binding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # pyOpenSSL's cffi binding is private: if its module is gone, records keep
    # aiortc's ``_write_ssl`` instead of the import failing the whole transport.
    import asyncio  # aiortc's objects, made on a loop of the test's own

    module = load_copy_without(monkeypatch, dtls_module, "OpenSSL._util", "dtls_without_binding")
    assert module._lib is None

    async def main() -> None:
        certificate = RTCCertificate.generateCertificate()
        dtls = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [certificate])
        assert not module.send_directly(dtls)
        assert dtls._send_data.__func__ is RTCDtlsTransport._send_data

    asyncio.run(main())

def is_t3_expiry(target: Any) -> bool:
    """SCTP's T3 expiry, aiortc's timer or ours (``lazy_t3``), either side."""
    return getattr(target, "__func__", None) is rtcsctptransport.RTCSctpTransport._t3_expired


async def test_t3_is_not_a_new_loop_timer_per_packet() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        loop = a._channel.transport._loop
        made = count_loop_timers(loop, is_t3_expiry)
        try:
            for i in range(30):  # each acknowledged before the next leaves
                await a.send_message(bytes([i]) * 300)
                assert await b.receive_message() == bytes([i]) * 300
                await b.send_message(b"ack")
                assert await a.receive_message() == b"ack"
        finally:
            del loop.call_at
        # aiortc: a T3 timer made per DATA packet (and cancelled by its SACK),
        # each side; here one per RTO (1 s at least) while data flows.
        assert len(made) <= 6, len(made)


async def test_t3_still_retransmits_a_lost_packet() -> None:
    async with raw_pair() as (a, b):
        await a.send_message(b"hello")
        assert await b.receive_message() == b"hello"
        dtls_a = a._channel.transport.transport
        send_data = dtls_a._send_data
        dropped = drop_first_data_packet(dtls_a)
        assert a._channel.transport._taiinet_lazy_t3
        await a.send_message(b"lost once")  # nothing follows: only T3 brings it back
        with trio.fail_after(20):
            assert await b.receive_message() == b"lost once"
        assert dropped
        dtls_a._send_data = send_data


async def test_delayed_sacks_ask_for_the_running_loop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython's asyncio.get_running_loop checks the process id: a getpid system
    # call per call.  The SACK delay is armed for nearly every lone packet.
    import asyncio
    import types

    calls: list[object] = []

    def counting() -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        calls.append(loop)
        return loop

    proxy = types.SimpleNamespace(**{n: getattr(asyncio, n) for n in dir(asyncio)
                                     if not n.startswith("__")})
    proxy.get_running_loop = counting
    monkeypatch.setattr(sctp_module, "asyncio", proxy)
    async with raw_pair() as (a, b):
        for i in range(10):  # ping-pong: every packet a lone one, its SACK delayed
            await a.send_message(bytes([i]))
            await b.send_message(await b.receive_message())
            assert await a.receive_message() == bytes([i])
    assert 1 <= len(calls) <= 2, len(calls)  # once per association


async def test_a_usual_packet_is_read_without_call_now(monkeypatch: pytest.MonkeyPatch) -> None:
    # The receive path reads each hook's plain variant itself: ``call_now`` is a
    # Python call per chunk, per message and per SACK owed that does only that.
    from taiinet.transport import _asyncio_eager as eager_module
    from taiinet.transport import _asyncio_sctp_rx as rx_module

    calls: list[object] = []

    def counting(hook: Any, *args: Any) -> Any:
        calls.append(hook)
        return eager_module.call_now(hook, *args)

    for module in (dtls_module, rx_module, sctp_module):
        monkeypatch.setattr(module, "call_now", counting, raising=False)
    async with raw_pair() as (a, b):
        await a.send_message(b"warm")
        assert await b.receive_message() == b"warm"
        calls.clear()
        for i in range(10):
            await a.send_message(bytes([i]))
            await b.send_message(await b.receive_message())
            assert await a.receive_message() == bytes([i])
    assert calls == []


async def test_chained_iterations_set_the_running_loop_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython's _set_running_loop costs a getpid system call: the driver makes
    # the loop the running one once around the iterations it chains.
    import asyncio.events

    async with open_bridge() as bridge:
        hosted = bridge.hosted
        await bridge.run(asyncio.sleep, 0)  # the loop is up and idle
        sets: list[object] = []
        real = asyncio.events._set_running_loop

        def counting(loop: Any) -> None:
            sets.append(loop)
            real(loop)

        monkeypatch.setattr(asyncio.events, "_set_running_loop", counting)
        done: list[bool] = []

        def chain(n: int) -> None:  # six iterations, chained in one turn
            if n:
                hosted.loop.call_soon(chain, n - 1)
            else:
                done.append(True)

        hosted.call_soon(lambda: chain(5))
        with trio.fail_after(10):
            while not done:
                await trio.lowlevel.checkpoint()
        monkeypatch.undo()
        assert len(sets) <= 4, len(sets)  # set and restored, once per turn (one more turn)
