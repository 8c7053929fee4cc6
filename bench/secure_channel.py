"""Throughput of the secure channel over the memory transport, next to its parts.

Run: ``.venv/bin/python bench/secure_channel.py [--megabytes N]``.  Prints one
table: raw memory channel, Noise-encrypted link, and the cost of the
handshake, with ratios to the raw channel.  Timings vary with machine load;
compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import time

import trio

from taiinet.transport.memory import memory_channel_pair, memory_connection_pair
from taiinet.wire.envelope import Envelope
from taiinet.wire.identity import Identity


async def raw_channel(total: int, size: int) -> float:
    a, b = memory_channel_pair()
    count = total // size
    payload = bytes(size)
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        async def send() -> None:
            for _ in range(count):
                await a.send_message(payload)

        nursery.start_soon(send)
        for _ in range(count):
            await b.receive_message()
    return time.perf_counter() - start


async def secure_link(total: int, size: int) -> float:
    conn_a, conn_b = await memory_connection_pair(Identity.from_seed(bytes(32)),
                                                  Identity.from_seed(bytes([1]) * 32))
    count = total // size
    payload = bytes(size)
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        async def send() -> None:
            for _ in range(count):
                await conn_a.send(payload)

        nursery.start_soon(send)
        for _ in range(count):
            await conn_b.receive()
    return time.perf_counter() - start


async def handshakes(count: int) -> float:
    a, b = Identity.from_seed(bytes(32)), Identity.from_seed(bytes([1]) * 32)
    start = time.perf_counter()
    for _ in range(count):
        await memory_connection_pair(a, b)
    return time.perf_counter() - start


def envelopes(count: int) -> tuple[float, float]:
    identity = Identity.from_seed(bytes(32))
    start = time.perf_counter()
    sealed = [Envelope.seal(identity, "bench", b"/t", bytes(200)) for _ in range(count)]
    sealing = time.perf_counter() - start
    start = time.perf_counter()
    for data in sealed:
        Envelope.open(data, "bench")
    return sealing, time.perf_counter() - start


async def main(megabytes: int) -> None:
    total = megabytes << 20
    rows: list[tuple[str, str, float]] = []
    for size in (1024, 65536):
        raw = await raw_channel(total, size)
        secure = await secure_link(total, size)
        rows.append((f"raw memory channel, {size} B messages", f"{total / raw / 1e6:8.1f} MB/s",
                     1.0))
        rows.append((f"Noise link, {size} B frames", f"{total / secure / 1e6:8.1f} MB/s",
                     raw / secure))
    hs = await handshakes(200)
    rows.append(("Noise XX handshake (both sides)", f"{200 / hs:8.0f} /s", 0.0))
    seal, open_ = envelopes(2000)
    rows.append(("Envelope.seal, 200 B payload", f"{2000 / seal:8.0f} /s", 0.0))
    rows.append(("Envelope.open, 200 B payload", f"{2000 / open_:8.0f} /s", seal / open_))
    print(f"{'measurement':44} {'rate':>14} {'ratio':>7}")
    for name, rate, ratio in rows:
        print(f"{name:44} {rate:>14} {ratio:7.2f}" if ratio else f"{name:44} {rate:>14}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=64)
    trio.run(main, parser.parse_args().megabytes)
