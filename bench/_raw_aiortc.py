"""The raw aiortc baseline of ``bench/transport.py``: plain asyncio, no trio, no bridge.

Both peers run on one asyncio loop in the main thread, as an aiortc
application would.  The sender waits on ``bufferedamountlow`` when
``bufferedAmount`` is over the same high-water mark the bridge uses, so both
sides of the comparison have the same back-pressure.  Only the candidate
address override (127.0.0.1) is borrowed from the bridge module.
"""

from __future__ import annotations

import asyncio
import statistics
import time

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


async def _measure(size: int, warmup: float, seconds: float,
                   pings: int) -> tuple[float, float, float, float, float]:
    pc_a, pc_b, channel_a, channel_b = await _connect()
    inbox_a, inbox_b = _Inbox(channel_a), _Inbox(channel_b)
    payload = b"\x00" + bytes(size - 1)

    async def sender() -> None:
        deadline = time.perf_counter() + warmup + seconds + 0.2
        while time.perf_counter() < deadline:
            await _send(channel_a, payload)
        await _send(channel_a, b"\x01" + bytes(size - 1))

    async def receiver() -> tuple[int, float, float]:
        message = await inbox_b.queue.get()
        start = time.perf_counter() + warmup
        end = start + seconds
        counted, window_start, window_end, cpu_start, cpu_end = 0, 0.0, 0.0, 0.0, 0.0
        while message[0] == 0:
            now = time.perf_counter()
            if start <= now <= end:
                if counted == 0:
                    window_start, cpu_start = now, time.process_time()
                counted += 1
                window_end, cpu_end = now, time.process_time()
            message = await inbox_b.queue.get()
        return counted, window_end - window_start, cpu_end - cpu_start

    _, (counted, window, cpu) = await asyncio.gather(sender(), receiver())
    rate = (counted - 1) / window if window > 0 else 0.0
    cpu_us = cpu / (counted - 1) * 1e6 if counted > 1 else 0.0

    round_trips = []
    ping = b"\x02" + bytes(size - 1)
    for _ in range(pings):
        began = time.perf_counter()
        await _send(channel_a, ping)
        await _send(channel_b, await inbox_b.queue.get())
        await inbox_a.queue.get()
        round_trips.append(time.perf_counter() - began)
    quantiles = statistics.quantiles(round_trips, n=100)
    await pc_a.close()
    await pc_b.close()
    return rate, rate * size / 1e6, quantiles[49] * 1e3, quantiles[98] * 1e3, cpu_us


def measure(size: int, warmup: float, seconds: float,
            pings: int) -> tuple[float, float, float, float, float]:
    """Messages/s, MB/s, p50 and p99 round trip (ms), CPU µs per message (both ends)."""
    return asyncio.run(_measure(size, warmup, seconds, pings))
