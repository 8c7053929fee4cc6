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
    print(f"{'measurement':44} {'rate':>14} {'vs raw channel':>15}")
    for size in (1024, 16384, 65536):
        raw = await raw_channel(total, size)
        secure = await secure_link(total, size)
        print(f"{f'raw memory channel, {size} B messages':44} {total / raw / 1e6:9.1f} MB/s "
              f"{1.0:15.2f}")
        print(f"{f'Noise link, {size} B frames':44} {total / secure / 1e6:9.1f} MB/s "
              f"{raw / secure:15.2f}")
    count = 200
    elapsed = await handshakes(count)
    print(f"{'Noise XX handshake (both sides, one process)':44} {count / elapsed:11.0f} /s")
    count = 2000
    seal, open_ = envelopes(count)
    print(f"{'Envelope.seal, 200 B payload':44} {count / seal:11.0f} /s")
    print(f"{'Envelope.open, 200 B payload':44} {count / open_:11.0f} /s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=64)
    trio.run(main, parser.parse_args().megabytes)
