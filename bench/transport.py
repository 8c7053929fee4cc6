"""Transport benchmark: each secured link next to its raw transport, in one run.

Run: ``.venv/bin/python bench/transport.py [--seconds S] [--warmup W] [--pings N]
[--repeat R] [--only NAME]``.

For 1 KiB and 16 KiB messages it measures, on 127.0.0.1 with both ends in
this process:

* throughput (messages/s, MB/s): one side sends as fast as ``send`` lets it
  (back-pressure included) for ``warmup + seconds``; the receiver counts only
  what arrives after the warm-up, so SCTP's slow start is not measured;
* latency: ``--pings`` round trips of one message echoed back (p50, p99).

Rows: raw memory channel / memory + Noise; raw trio-websocket / WebSocket +
Noise; raw aiortc data channel on its own asyncio loop (no trio, no bridge;
``bench/_raw_aiortc.py``) / the bridged data channel without Noise / WebRTC +
Noise; and, when they import (neither is a project dependency), raw
libdatachannel data channels through ``pylibdatachannel``
(``bench/_raw_libdatachannel.py``) and ``aiolibdatachannel``
(``bench/_raw_aiolibdatachannel.py``, CPython >= 3.12: see there), printed
with their ratio to raw aiortc.  ``ratio`` is a row's message rate over its reference
row's.  ``cpu us`` is process CPU time (both ends, all threads) over the
messages received in the measured window (read at its two ends, ``_window.py``);
on a loaded machine it is steadier than the rates, so ``cpu ratio`` (the
reference row's CPU per message over this row's) says what ``ratio`` would be
on a machine of its own when both ends are CPU-bound in this process.
Every cell runs ``--repeat`` times, interleaved with the other rows so that
load changes hit raw and secured rows alike, and the best run is shown (load
only ever slows a run).  Timings vary with machine load; compare rows of one
run, not runs.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
import trio_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _raw_aiolibdatachannel
import _raw_aiortc
import _raw_libdatachannel
from _window import Window, figures

from taiinet.transport.memory import memory_channel_pair, memory_connection_pair
from taiinet.transport.webrtc import open_webrtc
from taiinet.transport.websocket import (
    SUBPROTOCOL,
    WEBSOCKET_MAX_MESSAGE_SIZE,
    connect_websocket,
    open_websocket_listener,
)
from taiinet.transport.wsproto_channel import (
    WebSocketChannel,
    accept_websocket,
    connect_websocket_stream,
)
from taiinet.wire.identity import Identity

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)
SIZES = (1024, 16 * 1024)

Send = Callable[[bytes], Awaitable[None]]
Receive = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Link:
    """Both directions of one link as plain send/receive callables."""

    send_a: Send
    receive_a: Receive
    send_b: Send
    receive_b: Receive


@dataclass(frozen=True, slots=True)
class Result:
    messages_per_second: float
    megabytes_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_message: float | None = None


async def measure(link: Link, size: int, warmup: float, seconds: float, pings: int) -> Result:
    payload = b"\x00" + bytes(size - 1)
    stop = b"\x01" + bytes(size - 1)
    windows: list[Window] = []

    async def sender() -> None:
        deadline = time.perf_counter() + warmup + seconds + 0.2
        while time.perf_counter() < deadline:
            await link.send_a(payload)
        await link.send_a(stop)

    async def receiver() -> None:
        message = await link.receive_b()
        window = Window(warmup, seconds)
        while message[0] == 0:
            window.arrived()
            message = await link.receive_b()
        windows.append(window)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        nursery.start_soon(receiver)

    round_trips = []
    ping = b"\x02" + bytes(size - 1)
    for _ in range(pings):
        began = time.perf_counter()
        await link.send_a(ping)
        await link.send_b(await link.receive_b())
        await link.receive_a()
        round_trips.append(time.perf_counter() - began)
    return Result(*figures(windows[0], size, round_trips))


# -- the links ----------------------------------------------------------------


@asynccontextmanager
async def raw_memory() -> AsyncIterator[Link]:
    a, b = memory_channel_pair()
    yield Link(a.send_message, a.receive_message, b.send_message, b.receive_message)


@asynccontextmanager
async def noise_memory() -> AsyncIterator[Link]:
    a, b = await memory_connection_pair(ALICE, BOB)
    yield Link(a.send, a.receive, b.send, b.receive)
    await a.aclose()
    await b.aclose()


async def _ws_bytes(ws: trio_websocket.WebSocketConnection) -> bytes:
    message = await ws.get_message()
    assert isinstance(message, bytes)
    return message


@asynccontextmanager
async def raw_websocket() -> AsyncIterator[Link]:
    accepted, incoming = trio.open_memory_channel[trio_websocket.WebSocketConnection](1)
    done = trio.Event()

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await accepted.send(await request.accept(subprotocol=SUBPROTOCOL))
        await done.wait()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: trio_websocket.serve_websocket(
                handler, "127.0.0.1", 0, None, message_queue_size=16,
                max_message_size=WEBSOCKET_MAX_MESSAGE_SIZE, task_status=task_status))
        async with trio_websocket.open_websocket_url(
                f"ws://127.0.0.1:{server.port}", subprotocols=[SUBPROTOCOL],
                message_queue_size=16, max_message_size=WEBSOCKET_MAX_MESSAGE_SIZE) as ws_a:
            ws_b = await incoming.receive()
            yield Link(ws_a.send_message, lambda: _ws_bytes(ws_a),
                       ws_b.send_message, lambda: _ws_bytes(ws_b))
        done.set()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_wsproto() -> AsyncIterator[Link]:
    """The WebSocket channel TaiiNet links use (wsproto), without Noise."""
    accepted, incoming = trio.open_memory_channel[WebSocketChannel](1)

    async def handler(stream: trio.SocketStream) -> None:
        channel = await accept_websocket(stream, SUBPROTOCOL)
        assert channel is not None
        await accepted.send(channel)
        await channel.wait_closed()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        a = await connect_websocket_stream(stream, f"127.0.0.1:{port}", "/", SUBPROTOCOL)
        b = await incoming.receive()
        yield Link(a.send_message, a.receive_message, b.send_message, b.receive_message)
        await a.aclose()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def noise_websocket() -> AsyncIterator[Link]:
    async with (open_websocket_listener(BOB) as listener,
                connect_websocket(listener.url, ALICE) as a):
        b = await listener.accept()
        yield Link(a.send, a.receive, b.send, b.receive)


@asynccontextmanager
async def bridged_webrtc(*, secure: bool) -> AsyncIterator[Link]:
    loopback = ["127.0.0.1"]
    async with (open_webrtc(ALICE, candidate_addresses=loopback) as rtc_a,
                open_webrtc(BOB, candidate_addresses=loopback) as rtc_b):
        offer = await rtc_a.create_offer()
        answer_sdp, pending = await rtc_b.answer(offer.sdp)
        if secure:
            ends = {}

            async def answerer() -> None:
                ends["b"] = await pending.connected()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(answerer)
                ends["a"] = await offer.accept(answer_sdp)
            a, b = ends["a"], ends["b"]
            yield Link(a.send, a.receive, b.send, b.receive)
        else:
            ca = await offer.accept_raw(answer_sdp)
            cb = await pending.connected_raw()
            yield Link(ca.send_message, ca.receive_message, cb.send_message, cb.receive_message)


# -- the table ----------------------------------------------------------------

ROWS: tuple[tuple[str, str | None, Callable[[], AbstractAsyncContextManager[Link]]], ...] = (
    ("memory, raw channel", None, raw_memory),
    ("memory + Noise", "memory, raw channel", noise_memory),
    ("trio-websocket, raw", None, raw_websocket),
    ("WebSocket channel (wsproto), raw", None, raw_wsproto),
    ("WebSocket + Noise", "WebSocket channel (wsproto), raw", noise_websocket),
    ("aiortc, raw (asyncio only)", None, lambda: _unused()),
    ("aiortc via bridge, raw", "aiortc, raw (asyncio only)",
     lambda: bridged_webrtc(secure=False)),
    ("WebRTC + Noise", "aiortc, raw (asyncio only)", lambda: bridged_webrtc(secure=True)),
    ("libdatachannel, raw (threads)", "aiortc, raw (asyncio only)", lambda: _unused()),
    ("aiolibdatachannel, raw (asyncio)", "aiortc, raw (asyncio only)", lambda: _unused()),
)

OUTSIDE_TRIO: dict[str, Callable[[int, float, float, int], tuple[float, ...]]] = {
    "aiortc, raw (asyncio only)": _raw_aiortc.measure,
    "libdatachannel, raw (threads)": _raw_libdatachannel.measure,
    "aiolibdatachannel, raw (asyncio)": _raw_aiolibdatachannel.measure,
}
SKIPPED = {"libdatachannel, raw (threads)": lambda: _raw_libdatachannel.IMPORT_ERROR,
           "aiolibdatachannel, raw (asyncio)": _raw_aiolibdatachannel.unavailable}


def _unused() -> AbstractAsyncContextManager[Link]:
    raise AssertionError("the raw data-channel rows run outside trio")


async def measure_row(factory: Callable[[], AbstractAsyncContextManager[Link]], size: int,
                      args: argparse.Namespace) -> Result:
    async with factory() as link:
        return await measure(link, size, args.warmup, args.seconds, args.pings)


def best(results: list[Result]) -> Result:
    """The best of repeated runs: on a shared machine, load only ever slows a run."""
    cpu = [r.cpu_us_per_message for r in results if r.cpu_us_per_message]
    return Result(max(r.messages_per_second for r in results),
                  max(r.megabytes_per_second for r in results),
                  min(r.p50_ms for r in results), min(r.p99_ms for r in results),
                  min(cpu) if cpu else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured ramp-up per cell")
    parser.add_argument("--pings", type=int, default=200, help="round trips per cell")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per cell, interleaved across rows; the best one is shown")
    parser.add_argument("--only", default="", help="measure only rows whose name contains this")
    args = parser.parse_args()

    runs: dict[tuple[str, int], list[Result]] = {}
    skipped = {name: why() for name, why in SKIPPED.items()
               if args.only.lower() in name.lower()}
    for name, reason in skipped.items():
        if reason:
            print(f"skipped {name}: {reason}", file=sys.stderr)
    for repetition in range(args.repeat):
        for size in SIZES:
            for name, _, factory in ROWS:
                if args.only.lower() not in name.lower() or skipped.get(name):
                    continue
                if name in OUTSIDE_TRIO:
                    try:
                        result = Result(*OUTSIDE_TRIO[name](size, args.warmup, args.seconds,
                                                            args.pings))
                    except RuntimeError as error:  # an optional binding that crashes
                        print(f"  run {repetition + 1}: {name}, {size} B: failed ({error})",
                              file=sys.stderr)
                        continue
                else:
                    result = trio.run(measure_row, factory, size, args)
                runs.setdefault((name, size), []).append(result)
                print(f"  run {repetition + 1}: {name}, {size} B: "
                      f"{result.messages_per_second:.0f} msg/s", file=sys.stderr)
    results = {key: best(value) for key, value in runs.items()}

    print(f"{'link':32} {'size':>6} {'msg/s':>9} {'MB/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
          f" {'ratio':>6} {'cpu us':>6} {'cpu ratio':>9}")
    for size in SIZES:
        for name, raw_name, _ in ROWS:
            if (name, size) not in results:
                continue
            r = results[name, size]
            ratio = (f"{r.messages_per_second / results[raw_name, size].messages_per_second:6.2f}"
                     if (raw_name, size) in results else "     -")
            cpu = (f"{r.cpu_us_per_message:6.1f}" if r.cpu_us_per_message else "     -")
            reference = results.get((raw_name, size)) if raw_name else None
            cpu_ratio = (f"{reference.cpu_us_per_message / r.cpu_us_per_message:9.2f}"
                         if reference and reference.cpu_us_per_message
                         and r.cpu_us_per_message else "        -")
            print(f"{name:32} {size:>6} {r.messages_per_second:9.0f} "
                  f"{r.megabytes_per_second:7.1f} {r.p50_ms:7.3f} {r.p99_ms:7.3f} {ratio} {cpu}"
                  f" {cpu_ratio}")
        print()


if __name__ == "__main__":
    main()
