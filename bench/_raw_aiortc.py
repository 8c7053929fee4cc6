"""The raw aiortc baseline of ``bench/transport.py``: plain asyncio, no trio, no bridge.

Both peers run on one asyncio loop in the main thread, as an aiortc
application would.  The sender waits on ``bufferedamountlow`` when
``bufferedAmount`` is over the same high-water mark the bridge uses, so both
sides of the comparison have the same back-pressure.  Only the candidate
address override (127.0.0.1) is borrowed from the bridge module.
"""

from __future__ import annotations

import asyncio
import functools

from _window import Figures, measure_asyncio
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection

from taiinet.transport import _asyncio_channel as channel_limits
from taiinet.transport import _asyncio_loop as loop


async def _connect() -> tuple[RTCPeerConnection, RTCPeerConnection, RTCDataChannel,
                              RTCDataChannel]:
    loop._install_candidate_override()
    loop._CANDIDATE_ADDRESSES.set(("127.0.0.1",))
    pc_a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc_b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel_a = pc_a.createDataChannel("bench", ordered=True)
    opened_b: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
    pc_b.on("datachannel", opened_b.set_result)
    await pc_a.setLocalDescription(await pc_a.createOffer())
    await pc_b.setRemoteDescription(pc_a.localDescription)
    await pc_b.setLocalDescription(await pc_b.createAnswer())
    await pc_a.setRemoteDescription(pc_b.localDescription)
    channel_b = await opened_b
    if channel_a.readyState != "open":
        opened_a = asyncio.Event()
        channel_a.on("open", opened_a.set)
        await opened_a.wait()
    return pc_a, pc_b, channel_a, channel_b


class _Inbox:
    def __init__(self, channel: RTCDataChannel) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        channel.on("message", self.queue.put_nowait)


async def _send(channel: RTCDataChannel, data: bytes) -> None:
    if channel.bufferedAmount > channel_limits.SEND_HIGH_WATER:
        low = asyncio.Event()
        channel.bufferedAmountLowThreshold = 0
        channel.once("bufferedamountlow", low.set)
        await low.wait()
    channel.send(data)


async def _measure(size: int, warmup: float, seconds: float, pings: int) -> Figures:
    pc_a, pc_b, channel_a, channel_b = await _connect()
    inbox_a, inbox_b = _Inbox(channel_a), _Inbox(channel_b)
    result = await measure_asyncio(functools.partial(_send, channel_a), inbox_a.queue.get,
                                   functools.partial(_send, channel_b), inbox_b.queue.get,
                                   size, warmup, seconds, pings)
    await pc_a.close()
    await pc_b.close()
    return result


def measure(size: int, warmup: float, seconds: float, pings: int) -> Figures:
    """Messages/s, MB/s, p50 and p99 round trip (ms), CPU µs per message (both ends)."""
    return asyncio.run(_measure(size, warmup, seconds, pings))
