"""Helpers for the tests of TaiiNet's aiortc hooks: a bridged pair of data channels
on loopback, a count of the loop timers made for one purpose, a lost packet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from aiortc import rtcsctptransport

from taiinet.transport._asyncio_bridge import AiortcBridge
from taiinet.transport._asyncio_channel import BridgedDataChannel
from taiinet.transport._asyncio_sctp_timers import LazyDeadline

LOOPBACK = ["127.0.0.1"]


@asynccontextmanager
async def open_bridge() -> AsyncIterator[AiortcBridge]:
    bridge = AiortcBridge(candidate_addresses=LOOPBACK, ice_servers=())
    bridge.start()
    try:
        yield bridge
    finally:
        await bridge.aclose()


@asynccontextmanager
async def raw_pair() -> AsyncIterator[tuple[BridgedDataChannel, BridgedDataChannel]]:
    """Two bridged data channels of one link on 127.0.0.1, open, every hook installed."""
    async with open_bridge() as left, open_bridge() as right:
        offerer, answerer = left.new_peer(), right.new_peer()
        answer = await answerer.create_answer(await offerer.create_offer())
        await offerer.accept_answer(answer)
        with trio.fail_after(20):
            channels = await offerer.wait_open(), await answerer.wait_open()
        yield channels


def timer_target(callback: Any) -> Any:
    """What a loop timer runs when due: a ``LazyDeadline``'s expiry, else its callback."""
    owner = getattr(callback, "__self__", None)
    return owner.expire if isinstance(owner, LazyDeadline) else callback


def count_loop_timers(loop: Any, runs: Callable[[Any], bool]) -> list[float]:
    """The deadlines of the loop timers made from now on whose target (``timer_target``)
    satisfies ``runs``; the caller deletes ``loop.call_at`` to stop counting."""
    call_at = loop.call_at
    made: list[float] = []

    def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        if runs(timer_target(callback)):
            made.append(when)
        return call_at(when, callback, *args, **kwargs)

    loop.call_at = counting  # call_later goes through call_at
    return made


def drop_first_data_packet(dtls: Any) -> list[bytes]:
    """Make ``dtls`` (a peer's DTLS transport) drop the next SCTP packet it sends
    that carries DATA, once; the list gets the packet dropped."""
    send_data = dtls._send_data
    dropped: list[bytes] = []

    async def drop_first_data(data: bytes) -> None:
        chunks = rtcsctptransport.parse_packet(data)[3]
        if not dropped and any(isinstance(c, rtcsctptransport.DataChunk) for c in chunks):
            dropped.append(data)
            return
        await send_data(data)

    dtls._send_data = drop_first_data
    return dropped
