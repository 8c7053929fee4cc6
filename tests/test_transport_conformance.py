"""The shared conformance suite against the memory transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from taiinet.transport.connection import MessageChannel
from taiinet.transport.memory import memory_channel_pair, open_memory_connection_pair
from taiinet.transport.testing import (
    CONNECTION_CHECKS,
    ConformanceFailure,
    Suite,
    check_connection_pair,
    check_message_channel_pair,
)


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
        from taiinet.transport.testing import check_backpressure

        await check_backpressure(suite)
