"""The shared conformance suite against the memory transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from taiinet.testing import (
    CONNECTION_CHECKS,
    ConformanceFailure,
    Suite,
    check_connection_pair,
    check_message_channel_pair,
)
from taiinet.transport.connection import MessageChannel
from taiinet.transport.memory import memory_channel_pair, open_memory_connection_pair


@pytest.mark.parametrize("check", CONNECTION_CHECKS, ids=lambda check: check.__name__)
async def test_memory_transport_conforms(check: Callable[[Suite], Awaitable[None]]) -> None:
    await check(Suite(open_memory_connection_pair, backpressure_bytes=4 << 20))


async def test_whole_suite_with_a_small_frame_limit() -> None:
    await check_connection_pair(open_memory_connection_pair, max_frame_size=200_000,
                                backpressure_bytes=2 << 20)


async def test_memory_channels_conform() -> None:
    @asynccontextmanager
    async def open_channels() -> AsyncIterator[tuple[MessageChannel, MessageChannel]]:
        a, b = memory_channel_pair(4)
        yield a, b

    await check_message_channel_pair(open_channels)


async def test_suite_catches_unbounded_buffers() -> None:
    """The back-pressure check fails a transport whose buffers grow without bound."""
    @asynccontextmanager
    async def open_unbounded(a, b, *, max_frame_size_a, max_frame_size_b):  # type: ignore[no-untyped-def]
        async with open_memory_connection_pair(a, b, max_frame_size_a=max_frame_size_a,
                                               max_frame_size_b=max_frame_size_b,
                                               capacity=100_000) as pair:
            yield pair

    suite = Suite(open_unbounded, backpressure_bytes=1 << 20)
    with pytest.raises(ConformanceFailure, match="not bounded"):
        from taiinet.testing import check_backpressure

        await check_backpressure(suite)


async def test_suite_over_a_channel_with_small_messages() -> None:
    """A channel that carries at most 1000 bytes per message (the secure layer cuts the
    Noise messages to fit) passes the suite too."""
    import trio

    from taiinet.transport.secure import secure_channel

    @asynccontextmanager
    async def open_small(a, b, *, max_frame_size_a, max_frame_size_b):  # type: ignore[no-untyped-def]
        channel_a, channel_b = memory_channel_pair(64)
        channel_a.max_message_size = channel_b.max_message_size = 1000
        result = {}

        async def respond() -> None:
            result["b"] = await secure_channel(channel_b, b, initiator=False,
                                               max_frame_size=max_frame_size_b)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(respond)
            result["a"] = await secure_channel(channel_a, a, initiator=True,
                                               expected_peer_id=b.peer_id,
                                               max_frame_size=max_frame_size_a)
        try:
            yield result["a"], result["b"]
        finally:
            await result["a"].aclose()
            await result["b"].aclose()

    await check_connection_pair(open_small, max_frame_size=200_000, backpressure_bytes=2 << 20)


async def test_suite_catches_wrong_peer_ids() -> None:
    @asynccontextmanager
    async def open_swapped(a, b, *, max_frame_size_a, max_frame_size_b):  # type: ignore[no-untyped-def]
        async with open_memory_connection_pair(b, a) as (conn_b, conn_a):
            yield conn_b, conn_a  # a's end is really b's

    from taiinet.testing import check_peer_ids

    with pytest.raises(ConformanceFailure, match="peer id"):
        await check_peer_ids(Suite(open_swapped))
