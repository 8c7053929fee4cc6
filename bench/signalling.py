"""Signalling benchmarks; prints one table.

* relay: offers relayed per second (offer out, signed answer back) between two
  peers of a 5-signaller mesh on loopback secure WebSockets, peers on the same
  home vs. on the two ends of the join chain; with the default per-link rate
  limit and with it lifted (the limit is the point of the first row);
* connect: seconds from opening a signal client (a new peer) to the first
  message echoed over a WebRTC data channel (aiortc, loopback) opened
  through relayed offer/answer with a peer homed on another signaller;
* dht: the Kademlia cores in the simulator, 1,000 signallers.

Run: ``.venv/bin/python bench/signalling.py`` (about 2 minutes)
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's ``signal``: keep its folder off
# the import path, or ``import trio`` would import this file instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import contextlib  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from contextlib import AsyncExitStack  # noqa: E402

import trio  # noqa: E402

from taiinet.errors import TaiiNetError  # noqa: E402
from taiinet.signal.api import open_signaller  # noqa: E402
from taiinet.signal.client import SignalClient, open_signal_client  # noqa: E402
from taiinet.signal.server import Signaller, SignallerConfig  # noqa: E402
from taiinet.sim.dht import DhtSimConfig, percentile, run_dht_simulation  # noqa: E402
from taiinet.transport.connection import Connection  # noqa: E402
from taiinet.transport.webrtc import WebRTCEndpoint, open_webrtc  # noqa: E402
from taiinet.wire.identity import Identity  # noqa: E402

OFFERS = 600
IN_FLIGHT = 16
CONNECTS = 12
LOOPBACK = ["127.0.0.1"]
UNLIMITED = SignallerConfig(peer_rate=1e9, peer_burst=1e9)


async def open_mesh(stack: AsyncExitStack, config: SignallerConfig) -> list[Signaller]:
    signallers: list[Signaller] = []
    for i in range(5):
        join = [signallers[-1].url] if signallers else []
        signallers.append(await stack.enter_async_context(open_signaller(
            join=join, config=config, rng=random.Random(i))))
    return signallers


async def answer_text(client: SignalClient) -> None:
    async for offer in client.incoming_offers():
        await offer.answer("answer:" + offer.sdp)


async def relay_rate(config: SignallerConfig, same_home: bool, offers: int = OFFERS) -> float:
    # The answering task gets a nursery of its own, inside the clients: cancelling
    # it stops that task alone.  (A nursery entered first on the exit stack had a
    # cancel scope around the mesh too: cancelling it stopped the signallers
    # while the clients, whose tasks are shielded, kept re-dialing their gone
    # home -- "no signaller reachable" -- until their close timed out.)
    async with AsyncExitStack() as stack:
        mesh = await open_mesh(stack, config)
        a = await stack.enter_async_context(open_signal_client(
            Identity.generate(), [mesh[0].url]))
        b = await stack.enter_async_context(open_signal_client(
            Identity.generate(), [mesh[0 if same_home else 4].url]))
        await a.wait_registered()
        await b.wait_registered()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_text, b)
            await a.send_offer(b.peer_id, "warm-up")
            remaining = offers
            started = time.perf_counter()

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await a.send_offer(b.peer_id, "v=0")

            async with trio.open_nursery() as workers:
                for _ in range(IN_FLIGHT):
                    workers.start_soon(worker)
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        return offers / elapsed


async def accept_links(client: SignalClient, endpoint: WebRTCEndpoint) -> None:
    async with trio.open_nursery() as nursery:
        async for offer in client.incoming_offers():
            answer, pending = await endpoint.answer(offer.sdp)
            await offer.answer(answer)
            nursery.start_soon(echo_once, pending, offer.from_peer)


async def echo_once(pending: object, peer_id: str) -> None:
    link: Connection = await pending.connected(expected_peer_id=peer_id)  # type: ignore[attr-defined]
    await link.send(await link.receive())
    with trio.move_on_after(5), contextlib.suppress(TaiiNetError):
        await link.receive()  # until the other side closes
    await link.aclose()


async def connect_times() -> list[float]:
    async with AsyncExitStack() as stack:
        mesh = await open_mesh(stack, SignallerConfig())
        b_id = Identity.generate()
        b = await stack.enter_async_context(open_signal_client(b_id, [mesh[4].url]))
        rtc_b = await stack.enter_async_context(open_webrtc(b_id, candidate_addresses=LOOPBACK))
        await b.wait_registered()
        times: list[float] = []
        async with trio.open_nursery() as nursery:  # inside the mesh: see relay_rate
            nursery.start_soon(accept_links, b, rtc_b)
            for i in range(CONNECTS):
                ident = Identity.generate()
                started = time.perf_counter()
                async with open_signal_client(ident, [mesh[i % 4].url]) as a, \
                        open_webrtc(ident, candidate_addresses=LOOPBACK) as rtc_a:
                    await a.wait_registered()
                    offer = await rtc_a.create_offer()
                    answer = await a.send_offer(b.peer_id, offer.sdp)
                    link = await offer.accept(answer, expected_peer_id=b.peer_id)
                    await link.send(b"ping")
                    assert await link.receive() == b"ping"
                    times.append(time.perf_counter() - started)
                    await link.aclose()
            nursery.cancel_scope.cancel()
        return times


def bench_dht(crash: float) -> tuple[float, float, float]:
    result = run_dht_simulation(DhtSimConfig(signallers=1000, crash=crash, lookups=300, seed=1))
    phase = result.after_crash or result.steady
    return phase.success, phase.hops_p50, phase.hops_p99


async def main() -> None:
    rates = [
        ("relay, same home, default limits", await relay_rate(SignallerConfig(), True)),
        ("relay, same home, no rate limit", await relay_rate(UNLIMITED, True)),
        ("relay, across mesh, no rate limit", await relay_rate(UNLIMITED, False)),
    ]
    base = rates[1][1]
    print(f"{'case':<40}{'offers/s':>10}{'ratio':>8}")
    for name, rate in rates:
        print(f"{name:<40}{rate:>10.0f}{rate / base:>8.2f}")
    times = await connect_times()
    print(f"\n{'connect -> first data-channel echo':<40}{'p50 s':>10}{'p99 s':>8}")
    print(f"{f'{len(times)} new peers, WebRTC via 5 signallers':<40}"
          f"{percentile([round(t * 1000) for t in times], 0.5) / 1000:>10.3f}"
          f"{percentile([round(t * 1000) for t in times], 0.99) / 1000:>8.3f}")
    print(f"\n{'dht sim, 1000 signallers':<40}{'success':>10}{'p50':>5}{'p99':>5}")
    for crash in (0.0, 0.2):
        success, p50, p99 = bench_dht(crash)
        print(f"{f'crash {crash:.0%}':<40}{success:>10.1%}{p50:>5.0f}{p99:>5.0f}")


if __name__ == "__main__":
    trio.run(main)
