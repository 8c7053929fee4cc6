"""The conformance suite every transport runs (like ``trio.testing.check_two_way_stream``).

A transport's tests call ``check_connection_pair`` with a factory that opens a
pair of connected, secured ``Connection``\\ s between two given identities
(``a`` dials ``b``), or run the checks one by one from ``CONNECTION_CHECKS``
(e.g. with ``pytest.mark.parametrize``) to see which fails::

    @asynccontextmanager
    async def open_pair(a, b, *, max_frame_size_a, max_frame_size_b):
        ...  # connect, run secure_channel on both ends
        try:
            yield conn_a, conn_b
        finally:
            await conn_a.aclose(); await conn_b.aclose()

    async def test_conformance():
        await check_connection_pair(open_pair)

``check_message_channel_pair`` does the same for a raw ``MessageChannel``
pair, before the secure upgrade.

What is checked: peer ids on both sides; order of many frames of many sizes;
empty frames, frames across Noise message boundaries and frames of exactly
the maximum size; an oversized frame refused by the sender (and the link
still usable) and by the receiver (``FrameTooLarge``, that link closed);
closing from either side (frames sent before the close still arrive, then
``ConnectionClosed`` on both sides, a blocked ``receive`` woken);
back-pressure (``send`` stalls while the peer does not read, and everything
arrives once it does); concurrent senders and receivers on both sides.

Real transports have socket buffers and background tasks: pass
``blocked_cushion`` (seconds of quiet that count as "stalled", used with
``trio.testing.wait_all_tasks_blocked``) and make ``backpressure_bytes``
larger than every buffer on the path.  The checks use no clock otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Protocol

import trio
import trio.testing

from taiinet.errors import ConnectionClosed, LocalProtocolError
from taiinet.transport.connection import Connection, MessageChannel
from taiinet.wire.errors import FrameTooLarge
from taiinet.wire.framing import DEFAULT_MAX_FRAME_SIZE
from taiinet.wire.identity import Identity, parse_peer_id

#: Bytes the back-pressure check tries to push at a peer that does not read.
DEFAULT_BACKPRESSURE_BYTES = 16 << 20
#: Plaintext carried by one Noise transport message (frames above this are split).
_NOISE_CHUNK = 65535 - 16


class ConnectionPairFactory(Protocol):
    """Opens two connected ``Connection``\\ s: ``a`` (the dialer) and ``b``."""

    def __call__(self, a: Identity, b: Identity, *, max_frame_size_a: int,
                 max_frame_size_b: int) -> AbstractAsyncContextManager[
                     tuple[Connection, Connection]]: ...


ChannelPairFactory = Callable[[], AbstractAsyncContextManager[
    tuple[MessageChannel, MessageChannel]]]


class ConformanceFailure(AssertionError):
    """A transport did not behave as the connection interface promises."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceFailure(message)


class Suite:
    """Settings shared by the checks: identities, sizes, how to detect a stall."""

    def __init__(self, open_pair: ConnectionPairFactory, *,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 backpressure_bytes: int = DEFAULT_BACKPRESSURE_BYTES,
                 blocked_cushion: float = 0.0, seed: int = 0) -> None:
        self.open_pair = open_pair
        self.max_frame_size = max_frame_size
        self.backpressure_bytes = backpressure_bytes
        self.blocked_cushion = blocked_cushion
        self.seed = seed
        self.a = Identity.from_seed(bytes([0xA1]) * 32)
        self.b = Identity.from_seed(bytes([0xB2]) * 32)

    def pair(self, *, max_frame_size_a: int | None = None,
             max_frame_size_b: int | None = None) -> AbstractAsyncContextManager[
                 tuple[Connection, Connection]]:
        return self.open_pair(
            self.a, self.b,
            max_frame_size_a=self.max_frame_size if max_frame_size_a is None else max_frame_size_a,
            max_frame_size_b=self.max_frame_size if max_frame_size_b is None else max_frame_size_b)

    async def wait_until_stalled(self, progress: Callable[[], int]) -> None:
        """Return once ``progress()`` stays the same over three quiet periods."""
        stable_rounds, last = 0, -1
        while stable_rounds < 3:
            await trio.testing.wait_all_tasks_blocked(self.blocked_cushion)
            current = progress()
            stable_rounds = stable_rounds + 1 if current == last else 0
            last = current


async def check_peer_ids(suite: Suite) -> None:
    async with suite.pair() as (a, b):
        _expect(a.local_peer_id == suite.a.peer_id, "a.local_peer_id is not a's peer id")
        _expect(a.remote_peer_id == suite.b.peer_id, "a.remote_peer_id is not b's peer id")
        _expect(b.local_peer_id == suite.b.peer_id, "b.local_peer_id is not b's peer id")
        _expect(b.remote_peer_id == suite.a.peer_id, "b.remote_peer_id is not a's peer id")
        for peer_id in (a.local_peer_id, a.remote_peer_id):
            _expect(parse_peer_id(peer_id) == peer_id, f"{peer_id!r} is not a canonical peer id")


async def check_ordering(suite: Suite) -> None:
    """Frames of many sizes arrive whole and in order, both ways at once."""
    rng = random.Random(suite.seed)
    sizes = [min(rng.choice((0, 4, 7, 100, 1000, 5000, 70000)), suite.max_frame_size)
             for _ in range(120)]
    # Each non-empty frame starts with its index, so a lost or repeated frame is named.
    frames = [index.to_bytes(4, "big") + rng.randbytes(size - 4) if size >= 4 else b""
              for index, size in enumerate(sizes)]
    async with suite.pair() as (a, b):
        async def send_all(conn: Connection) -> None:
            for frame in frames:
                await conn.send(frame)

        async def receive_all(conn: Connection, name: str) -> None:
            for index, frame in enumerate(frames):
                got = await conn.receive()
                _expect(got == frame, f"{name}: frame {index} of {len(frame)} bytes arrived "
                                      f"altered or out of order ({len(got)} bytes)")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all, a)
            nursery.start_soon(send_all, b)
            nursery.start_soon(receive_all, b, "b")
            nursery.start_soon(receive_all, a, "a")


async def check_large_frames(suite: Suite) -> None:
    """Frames at Noise message boundaries and of exactly the maximum size."""
    rng = random.Random(suite.seed + 1)
    limit = suite.max_frame_size
    sizes = [0, 1, _NOISE_CHUNK - 4, _NOISE_CHUNK - 3, _NOISE_CHUNK - 2, _NOISE_CHUNK,
             2 * _NOISE_CHUNK - 3, limit - 1, limit]
    frames = [rng.randbytes(size) for size in sizes if 0 <= size <= limit]
    async with suite.pair() as (a, b):
        for sender, receiver in ((a, b), (b, a)):
            async with trio.open_nursery() as nursery:
                async def send_all(conn: Connection = sender) -> None:
                    for frame in frames:
                        await conn.send(frame)

                nursery.start_soon(send_all)
                for frame in frames:
                    got = await receiver.receive()
                    _expect(got == frame, f"a frame of {len(frame)} bytes arrived altered "
                                          f"({len(got)} bytes)")


async def check_oversized_frame_refused_by_sender(suite: Suite) -> None:
    async with suite.pair() as (a, b):
        try:
            await a.send(bytes(suite.max_frame_size + 1))
        except LocalProtocolError:
            pass
        else:
            raise ConformanceFailure("send() accepted a frame over the maximum size")
        await a.send(b"still usable")
        _expect(await b.receive() == b"still usable", "the link broke after a refused send")


async def check_oversized_frame_rejected_by_receiver(suite: Suite) -> None:
    """A peer with a larger limit sends too much: FrameTooLarge, that link closes."""
    small = min(suite.max_frame_size, 100_000)
    async with suite.pair(max_frame_size_a=small * 2, max_frame_size_b=small) as (a, b):
        await a.send(b"before")
        _expect(await b.receive() == b"before", "the first frame did not arrive")
        async with trio.open_nursery() as nursery:
            # The sender may block or fail once b closes: either is fine.
            async def send_big() -> None:
                with suppress(ConnectionClosed):
                    await a.send(bytes(small + 1))

            nursery.start_soon(send_big)
            try:
                await b.receive()
            except FrameTooLarge:
                pass
            else:
                raise ConformanceFailure("the receiver accepted a frame over its maximum")
            for operation in (b.receive, lambda: b.send(b"x")):
                try:
                    await operation()
                except ConnectionClosed:
                    pass
                else:
                    raise ConformanceFailure("the link stayed open after FrameTooLarge")
            try:
                while True:
                    await a.receive()
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()


async def _check_close_from(suite: Suite, closer_is_a: bool) -> None:
    async with suite.pair() as (a, b):
        closer, other = (a, b) if closer_is_a else (b, a)
        frames = [b"one", b"", b"three" * 1000]
        for frame in frames:
            await closer.send(frame)
        await closer.aclose()
        await closer.aclose()  # idempotent
        for frame in frames:
            _expect(await other.receive() == frame, "a frame sent before close was lost")
        for side, name in ((other, "the other side"), (closer, "the closing side")):
            for operation in (side.receive, lambda side=side: side.send(b"late")):
                try:
                    await operation()
                except ConnectionClosed:
                    pass
                else:
                    raise ConformanceFailure(f"{name} was still usable after close")


async def check_close_from_dialer(suite: Suite) -> None:
    await _check_close_from(suite, closer_is_a=True)


async def check_close_from_listener(suite: Suite) -> None:
    await _check_close_from(suite, closer_is_a=False)


async def check_close_wakes_blocked_receive(suite: Suite) -> None:
    """``aclose`` from one task wakes another task blocked in ``receive`` on either side."""
    async with suite.pair() as (a, b):
        outcomes: list[str] = []

        async def receive(conn: Connection, name: str) -> None:
            try:
                await conn.receive()
            except ConnectionClosed:
                outcomes.append(name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive, a, "a")
            nursery.start_soon(receive, b, "b")
            await trio.testing.wait_all_tasks_blocked(suite.blocked_cushion)
            await a.aclose()
        _expect(sorted(outcomes) == ["a", "b"],
                f"closing a woke only {outcomes} with ConnectionClosed")


async def check_backpressure(suite: Suite) -> None:
    """``send`` stalls while the peer does not read; all frames arrive once it does."""
    frame_size = min(suite.max_frame_size, 64 * 1024)
    count = max(2, suite.backpressure_bytes // frame_size)
    sent = 0
    async with suite.pair() as (a, b):
        async def send_all() -> None:
            nonlocal sent
            for index in range(count):
                await a.send(index.to_bytes(4, "big") + bytes(frame_size - 4))
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all)
            await suite.wait_until_stalled(lambda: sent)
            stalled_at = sent
            for index in range(count):
                frame = await b.receive()
                if frame[:4] != index.to_bytes(4, "big") or len(frame) != frame_size:
                    nursery.cancel_scope.cancel()
                    corrupted = index
                    break
            else:
                corrupted = None
        _expect(stalled_at < count, f"all {count} frames of {frame_size} bytes were sent to a "
                                    "peer that reads nothing: the buffers are not bounded")
        _expect(corrupted is None, f"frame {corrupted} arrived altered after back-pressure")
        _expect(sent == count, "the sender did not finish once the peer read")


async def check_concurrent_senders(suite: Suite) -> None:
    """Several tasks send on each side while others receive: frames never interleave."""
    senders, per_sender = 4, 40
    rng = random.Random(suite.seed + 2)
    sizes = [rng.choice((10, 3000, 70000)) for _ in range(per_sender)]

    def frame(sender: int, index: int) -> bytes:
        header = bytes([sender]) + index.to_bytes(4, "big")
        return header + bytes([sender]) * (sizes[index] - len(header))

    async with suite.pair() as (a, b):
        async def send(conn: Connection, sender: int) -> None:
            for index in range(per_sender):
                await conn.send(frame(sender, index))

        async def receive(conn: Connection, name: str) -> None:
            next_index = [0] * senders
            for _ in range(senders * per_sender):
                got = await conn.receive()
                sender, index = got[0], int.from_bytes(got[1:5], "big")
                _expect(sender < senders and index == next_index[sender]
                        and got == frame(sender, index),
                        f"{name}: a frame arrived corrupted, interleaved or out of order")
                next_index[sender] += 1

        async with trio.open_nursery() as nursery:
            for sender in range(senders):
                nursery.start_soon(send, a, sender)
                nursery.start_soon(send, b, sender)
            nursery.start_soon(receive, a, "a")
            nursery.start_soon(receive, b, "b")


CONNECTION_CHECKS: tuple[Callable[[Suite], Awaitable[None]], ...] = (
    check_peer_ids,
    check_ordering,
    check_large_frames,
    check_oversized_frame_refused_by_sender,
    check_oversized_frame_rejected_by_receiver,
    check_close_from_dialer,
    check_close_from_listener,
    check_close_wakes_blocked_receive,
    check_backpressure,
    check_concurrent_senders,
)


async def check_connection_pair(open_pair: ConnectionPairFactory, *,
                                max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                                backpressure_bytes: int = DEFAULT_BACKPRESSURE_BYTES,
                                blocked_cushion: float = 0.0) -> None:
    """Run every check of ``CONNECTION_CHECKS``, each on a fresh pair."""
    suite = Suite(open_pair, max_frame_size=max_frame_size,
                  backpressure_bytes=backpressure_bytes, blocked_cushion=blocked_cushion)
    for check in CONNECTION_CHECKS:
        await check(suite)


async def check_message_channel_pair(open_channels: ChannelPairFactory) -> None:
    """Raw channels: order, messages up to ``max_message_size``, close seen by the peer."""
    rng = random.Random(7)
    async with open_channels() as (a, b):
        limit = min(a.max_message_size, b.max_message_size)
        messages = [rng.randbytes(size) for size in (1, 2, 100, limit - 1, limit)]
        async with trio.open_nursery() as nursery:
            async def send_all() -> None:
                for message in messages:
                    await a.send_message(message)

            nursery.start_soon(send_all)
            for message in messages:
                got = await b.receive_message()
                _expect(got == message, f"a message of {len(message)} bytes arrived altered")
        await a.aclose()
        await a.aclose()
        try:
            while True:
                await b.receive_message()
        except ConnectionClosed:
            pass
