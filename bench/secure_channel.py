"""Throughput of the secure channel over the memory transport, next to its parts.

Run: ``.venv/bin/python bench/secure_channel.py [--megabytes N]``.  Prints one
table: raw memory channel vs Noise-encrypted link (ratio to the raw channel),
our handshake core vs the noiseprotocol package (ratio to ours; noiseprotocol
is a test extra, its row is left out without it), and envelopes.  Timings vary with machine load;
compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import time

import trio

from taiinet.transport.memory import memory_channel_pair, memory_connection_pair
from taiinet.transport.noise import (
    PROTOCOL_NAME,
    NoiseHandshake,
    make_handshake_payload,
    verify_handshake_payload,
)
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


def core_handshakes(count: int) -> float:
    """Both sides of XX in our sans-I/O core (no channel, no payload parsing shortcuts)."""
    a, b = Identity.from_seed(bytes(32)), Identity.from_seed(bytes([1]) * 32)
    start = time.perf_counter()
    for index in range(count):
        keys = index.to_bytes(4, "big") * 8
        initiator = NoiseHandshake(initiator=True, identity=a, static_private_key=keys,
                                   ephemeral_private_key=keys[::-1])
        responder = NoiseHandshake(initiator=False, identity=b, static_private_key=keys[1:] + b"x",
                                   ephemeral_private_key=keys[2:] + b"yz")
        responder.read_message(initiator.write_message())
        initiator.read_message(responder.write_message())
        responder.read_message(initiator.write_message())
    return time.perf_counter() - start


def reference_handshakes(count: int) -> float | None:
    """The same exchange in the noiseprotocol package (test extra), with the same payloads."""
    try:
        from noise.connection import Keypair, NoiseConnection
    except ImportError:
        return None
    a, b = Identity.from_seed(bytes(32)), Identity.from_seed(bytes([1]) * 32)
    start = time.perf_counter()
    for _ in range(count):
        sides = []
        for role in ("initiator", "responder"):
            side = NoiseConnection.from_name(PROTOCOL_NAME)
            getattr(side, f"set_as_{role}")()
            side.set_keypair_from_private_bytes(Keypair.STATIC, os.urandom(32))
            side.start_handshake()
            sides.append(side)
        initiator, responder = sides
        static_i = initiator.noise_protocol.handshake_state.s.public_bytes
        static_r = responder.noise_protocol.handshake_state.s.public_bytes
        responder.read_message(initiator.write_message(b""))
        received = initiator.read_message(responder.write_message(
            make_handshake_payload(b, static_r)))
        verify_handshake_payload(received, static_r)  # the same checks our core makes
        received = responder.read_message(initiator.write_message(
            make_handshake_payload(a, static_i)))
        verify_handshake_payload(received, static_i)
    return time.perf_counter() - start


def row(name: str, rate: str, ratio: float | None = None) -> None:
    print(f"{name:46} {rate:>14} {'' if ratio is None else f'{ratio:.2f}':>7}")


async def main(megabytes: int) -> None:
    """Ratio: the row's rate over the rate of the first row of its section."""
    total = megabytes << 20
    row("measurement", "rate", None)
    for size in (1024, 16384, 65536):
        raw = await raw_channel(total, size)
        secure = await secure_link(total, size)
        row(f"raw memory channel, {size} B messages", f"{total / raw / 1e6:.1f} MB/s", 1.0)
        row(f"  Noise link over it, {size} B frames", f"{total / secure / 1e6:.1f} MB/s",
            raw / secure)
    count = 300
    ours = core_handshakes(count)
    row("XX handshake, both sides, our sans-I/O core", f"{count / ours:.0f} /s", 1.0)
    reference = reference_handshakes(count)
    if reference is not None:
        row("  the same in the noiseprotocol package", f"{count / reference:.0f} /s",
            ours / reference)
    count = 200
    elapsed = await handshakes(count)
    row("  secure_channel over memory (driver incl.)", f"{count / elapsed:.0f} /s",
        ours / (elapsed * 300 / count))
    count = 2000
    seal, open_ = envelopes(count)
    row("Envelope.seal, 200 B payload", f"{count / seal:.0f} /s", 1.0)
    row("  Envelope.open, 200 B payload", f"{count / open_:.0f} /s", seal / open_)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=64)
    trio.run(main, parser.parse_args().megabytes)
