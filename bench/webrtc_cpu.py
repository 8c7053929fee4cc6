"""CPU per message of a WebRTC + Noise link: a fixed amount of work, for repeatable counts.

Run: ``.venv/bin/python bench/webrtc_cpu.py [--messages N] [--size B] [--mode pingpong|burst]``
or, for instruction counts that do not depend on machine load, under
callgrind twice (``--messages 0`` and ``--messages N``) and subtract::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/webrtc_cpu.py --messages 1000   # "Collected : ..."

Both ends run in this process on 127.0.0.1 (two endpoints, one link).
``pingpong``: one frame at a time, echoed back before the next (the cost of a
lone frame, as at low publish rates: every hop wakes every layer); ``burst``:
all frames sent as fast as ``send`` allows, one echo at the end (the batched
path).  Prints process CPU time per message (both ends' work) and of setting
the link up (offer, answer, ICE, DTLS, SCTP, Noise XX; both ends) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import trio

from taiinet.transport.webrtc import open_webrtc
from taiinet.wire.identity import Identity

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


async def run(messages: int, size: int, mode: str) -> dict[str, float]:
    loopback = ["127.0.0.1"]
    async with (open_webrtc(ALICE, candidate_addresses=loopback) as rtc_a,
                open_webrtc(BOB, candidate_addresses=loopback) as rtc_b):
        setup_cpu = time.process_time()
        offer = await rtc_a.create_offer()
        answer_sdp, pending = await rtc_b.answer(offer.sdp)
        ends = {}

        async def answerer() -> None:
            ends["b"] = await pending.connected()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answerer)
            ends["a"] = await offer.accept(answer_sdp)
        a, b = ends["a"], ends["b"]
        setup_cpu = time.process_time() - setup_cpu
        frame = bytes(size)
        for _ in range(20):  # warm up: SCTP's window, caches
            await a.send(frame)
            await b.send(await b.receive())
            await a.receive()
        cpu, wall = time.process_time(), time.perf_counter()
        if mode == "pingpong":
            for _ in range(messages):
                await a.send(frame)
                await b.send(await b.receive())
                await a.receive()
        else:
            async def sender() -> None:
                for _ in range(messages):
                    await a.send(frame)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                for _ in range(messages):
                    await b.receive()
            await b.send(frame)
            await a.receive()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await a.aclose()
        await b.aclose()
    frames = 2 * messages if mode == "pingpong" else messages
    return {"mode": mode, "messages": messages, "frames": frames, "size": size,
            "link_setup_cpu_s": round(setup_cpu, 4), "cpu_s": round(cpu, 4),
            "wall_s": round(wall, 4),
            "cpu_us_per_frame": round(cpu * 1e6 / max(frames, 1), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--mode", choices=("pingpong", "burst"), default="pingpong")
    args = parser.parse_args()
    print(json.dumps(trio.run(run, args.messages, args.size, args.mode)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
