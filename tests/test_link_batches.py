"""The link's per-frame path: what one transport read brought is one batch of frames
(one wait, one schedule point), a full socket buffer is read on without a wait,
the link's lock stays usable when a waiter is cancelled, and WebSocket masking
keys come from a block of ``os.urandom`` rather than a call per frame."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from taiinet.errors import ConnectionClosed
from taiinet.transport._linklock import LinkLock
from taiinet.transport._wsframes import MASK_KEY_BLOCK, binary_frame, take_binary_frames
from taiinet.transport.errors import DecryptionError
from taiinet.transport.memory import memory_connection_pair
from taiinet.transport.noise import with_length_prefix
from taiinet.transport.secure import RECEIVE_BATCH_MESSAGES
from taiinet.transport.wsproto_channel import RECEIVE_BYTES
from taiinet.wire.framing import encode_item, frame_with_prefix
from tests.test_link_runner import ECHO, ME, PEER, _items, echo_runner
from tests.test_transport_secure import ALICE, BOB, dial_raw_peer
from tests.test_websocket import open_websocket_pair, raw_channel_pair


async def test_a_batch_takes_every_frame_already_waiting_up_to_its_bound(
        autojump_clock: object) -> None:
    a, b = await memory_connection_pair(ALICE, BOB, capacity=64)
    frames = [bytes([n]) * 50 for n in range(RECEIVE_BATCH_MESSAGES + 8)]
    for frame in frames:
        await a.send(frame)
    first = await b.receive_batch()
    assert first == frames[:RECEIVE_BATCH_MESSAGES + 1]  # the one read, and those waiting
    assert await b.receive_batch() == frames[RECEIVE_BATCH_MESSAGES + 1:]
    await a.send(b"alone")
    assert await b.receive_batch() == [b"alone"]
    await a.aclose()
    with pytest.raises(ConnectionClosed):
        await b.receive_batch()


async def test_a_bad_message_among_the_waiting_ones_ends_the_batch_after_the_good_frames(
        autojump_clock: object) -> None:
    conn, peer = await dial_raw_peer()
    good = with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"good")))
    bad = bytearray(with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"bad"))))
    bad[-1] ^= 1
    later = with_length_prefix(peer.noise.encrypt(frame_with_prefix(b"later")))
    for message in (good, bytes(bad), later):
        await peer.channel.send_message(message)
    assert await conn.receive_batch() == [b"good"]  # type: ignore[attr-defined]
    assert conn.closed  # type: ignore[attr-defined]
    with pytest.raises(DecryptionError):  # the error itself, not a bare "closed"
        await conn.receive_batch()  # type: ignore[attr-defined]
    with pytest.raises(DecryptionError):
        await conn.receive()  # type: ignore[attr-defined]


async def test_what_one_websocket_read_brought_is_one_batch() -> None:
    async with open_websocket_pair(ALICE, BOB, max_frame_size_a=1 << 20,
                                   max_frame_size_b=1 << 20, coalesce=False) as (a, b):
        frames = [bytes([n]) * 300 for n in range(5)]
        for frame in frames:
            await a.send(frame)
        # (Each send wrote its WebSocket message to the socket: on loopback the
        # bytes are in the other socket now, and one 64 KiB read takes all.)
        assert await b.receive_batch() == frames


async def test_a_read_that_filled_its_buffer_reads_on_without_waiting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waits = 0
    wait_readable = trio.lowlevel.wait_readable

    async def counting(sock: object) -> None:
        nonlocal waits
        waits += 1
        await wait_readable(sock)  # type: ignore[arg-type]

    monkeypatch.setattr(trio.lowlevel, "wait_readable", counting)
    messages = [bytes([n]) * 40_000 for n in range(2)]  # more than one read's 64 KiB
    assert sum(map(len, messages)) > RECEIVE_BYTES
    async with raw_channel_pair() as (client, server):
        for message in messages:
            await client.send_message(message)
        waits = 0
        assert [await server.receive_message() for _ in messages] == messages
        assert waits == 1  # the second read found the rest without a wait


async def test_the_link_reader_takes_what_came_together_in_one_read(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames already waiting when the link's reader looks are handled together:
    one ``receive_batch``, not a ``receive`` (and a schedule point) per frame."""
    reads: list[str] = []
    async with echo_runner() as (_core, runner):
        ours, theirs = await memory_connection_pair(PEER, ME, capacity=16)
        for n in range(1, 6):
            await ours.send(encode_item(ECHO, str(n * 10).encode()))
        receive, receive_batch = theirs.receive, theirs.receive_batch

        async def counted_receive() -> bytes:
            reads.append("receive")
            return await receive()

        async def counted_batch() -> list[bytes]:
            reads.append("batch")
            return await receive_batch()

        monkeypatch.setattr(theirs, "receive", counted_receive)
        monkeypatch.setattr(theirs, "receive_batch", counted_batch)
        runner.add_connection(theirs)
        answers: list[tuple[int, bytes]] = []
        while len(answers) < 5:
            answers += _items(await ours.receive())
        assert answers == [(ECHO, str(n * 10 + 1).encode()) for n in range(1, 6)]
        await trio.testing.wait_all_tasks_blocked()
        assert reads == ["batch", "batch"]  # the five frames, then waiting for more


async def test_a_lock_released_as_its_only_waiter_is_cancelled_is_free() -> None:
    """The waiter left the parking lot when its cancellation came, before it ran:
    the release finds nobody to hand the lock to, so the lock is free, not held
    for ever by nobody (every later send or read would wait for good)."""
    lock = LinkLock()
    lock.held = True
    outcome: list[str] = []

    async def waiter(scope: trio.CancelScope) -> None:
        with scope:
            await lock.wait()
            outcome.append("got the lock")
        outcome.append("cancelled" if scope.cancelled_caught else "")

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, scope)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # in the same step as the release: the waiter has not run yet
        lock.release()
    assert outcome == ["cancelled"]
    assert not lock.held


def test_masking_keys_come_from_one_urandom_call_per_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    urandom = os.urandom

    def counting(size: int) -> bytes:
        calls.append(size)
        return urandom(size)

    monkeypatch.setattr(os, "urandom", counting)
    frames = [binary_frame(b"x" * 10, True) for _ in range(MASK_KEY_BLOCK // 4 + 1)]
    assert len(calls) <= 2  # not one per frame
    keys = [frame[2:6] for frame in frames]
    assert len(set(keys)) > len(keys) - 3  # fresh keys (a repeat is a 2**-32 chance each)
    taken: list[bytes] = []
    for frame in frames:
        assert take_binary_frames(frame, True, 100, taken) == (len(frame), True)
    assert taken == [b"x" * 10] * len(frames)
