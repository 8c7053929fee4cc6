"""1 KiB messages from a page in headless Chromium, over a Noise-secured RTCDataChannel
and over the bare channel between the same endpoints in the same run: to a Python peer
(aiortc, no ICE server) and to another page (through a TURN relay on 127.0.0.1).

Run: ``.venv/bin/python bench/browser.py [--count N] [--size BYTES] [--pings N]``
(needs Debian's chromium and coturn, and ``npm ci`` in js/).  Prints messages/s (the
sender sends as fast as the link takes them; the receiver answers the last one), the
round trip of one message (p50, p99), and the secured link's rate as a share of the
bare channel's.  Timings vary with machine load: compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taiinet.signal.client import SignalClient, open_signal_client
from taiinet.transport.webrtc import WebRTCEndpoint, open_webrtc
from taiinet.wire.identity import Identity
from tests.browser.chromium import run_in_browser
from tests.browser.support import build_bundle, turn_server
from tests.cli_support import processes, signaller

PYTHON = Identity.from_seed(bytes([90]) * 32)


async def python_receiver(client: SignalClient, endpoint: WebRTCEndpoint, raw: list[bool]) -> None:
    """Answer offers; count "r" frames, answer the last ("R") with "d", echo pings ("p")."""
    async with trio.open_nursery() as nursery:
        async for offer in client.incoming_offers():
            answer_sdp, pending = await endpoint.answer(offer.sdp)
            await offer.answer(answer_sdp)
            nursery.start_soon(serve, pending, raw[0])


async def serve(pending: Any, raw: bool) -> None:
    if raw:
        channel = await pending.connected_raw()
        send, receive = channel.send_message, channel.receive_message
    else:
        link = await pending.connected()
        send, receive = link.send, link.receive
    try:
        while True:
            data = await receive()
            if data[:1] == b"p":
                await send(data)
            elif data[:1] == b"R":
                await send(b"d")
    except Exception:  # the page closed the link: the run is over
        return


async def main(count: int, size: int, pings: int) -> None:
    build_bundle()
    with tempfile.TemporaryDirectory() as scratch:
        async with processes() as spawned, turn_server(Path(scratch)) as turn:
            _, url = await signaller(spawned)
            raw_mode = [False]
            async with open_signal_client(PYTHON, [url], rng=random.Random(1)) as client, \
                    open_webrtc(PYTHON, candidate_addresses=["127.0.0.1"]) as endpoint, \
                    trio.open_nursery() as nursery:
                await client.wait_registered()
                nursery.start_soon(python_receiver, client, endpoint, raw_mode)
                token = trio.lowlevel.current_trio_token()
                relay = {"iceServers": [turn], "iceTransportPolicy": "relay"}

                def in_browser(pages: list[Any]) -> list[tuple[str, str, dict[str, float]]]:
                    sender, receiver = pages
                    page_id = receiver.evaluate("([s, o]) => harness.benchServe(s, o)",
                                                [[url], relay])
                    sender.evaluate("s => harness.start(s)", [url])
                    rows = []
                    for path, target, options in (("page -> Python", PYTHON.peer_id, {}),
                                                  ("page -> page (TURN)", page_id, relay)):
                        for raw in (True, False):
                            trio.from_thread.run_sync(raw_mode.__setitem__, 0, raw,
                                                      trio_token=token)
                            receiver.evaluate("r => harness.setBenchRaw(r)", raw)
                            result = sender.evaluate(
                                "([p, r, c, s, n, o]) => harness.bench(p, r, c, s, n, o)",
                                [target, raw, count, size, pings, options])
                            rows.append((path, "bare channel" if raw else "Noise link", result))
                    return rows

                rows = await trio.to_thread.run_sync(run_in_browser, in_browser, 2)
                nursery.cancel_scope.cancel()
    print(f"{count} messages of {size} bytes, {pings} round trips")
    print(f"{'path':<22} {'link':<13} {'msgs/s':>9} {'vs bare':>8} {'p50 ms':>7} {'p99 ms':>7}")
    bare: dict[str, float] = {}
    for path, kind, result in rows:
        if kind == "bare channel":
            bare[path] = result["rate"]
        share = f"{result['rate'] / bare[path]:.0%}" if kind == "Noise link" else ""
        print(f"{path:<22} {kind:<13} {result['rate']:>9.0f} {share:>8} "
              f"{result['p50']:>7.2f} {result['p99']:>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--pings", type=int, default=500)
    args = parser.parse_args()
    trio.run(main, args.count, args.size, args.pings)
