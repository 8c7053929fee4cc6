"""An optional row of ``bench/transport.py``: a raw aiolibdatachannel data channel.

aiolibdatachannel wraps libdatachannel (C++: libjuice ICE, OpenSSL DTLS,
usrsctp SCTP) with nanobind and puts an asyncio API on top.  It is not a
project dependency, and its wheels need CPython 3.12 or newer, so the row runs
in a child process under the interpreter named by ``AIOLIBDATACHANNEL_PYTHON``
(default: this one) and is skipped when that interpreter cannot import it.
This file is that child's script too; it imports nothing from TaiiNet.

Both peers share one asyncio loop, as in ``_raw_aiortc.py``.  ``send`` waits,
as the library does by default, while the channel's ``bufferedAmount`` is
above its low threshold (0).  The offer and answer carry every candidate
inline; IPv4 host candidates are rewritten to 127.0.0.1 (the ICE socket is
bound to every address, so the port is the same) and IPv6 ones dropped, so
nothing leaves loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from _window import Figures, measure_asyncio

PYTHON = os.environ.get("AIOLIBDATACHANNEL_PYTHON", sys.executable)
_HOST = re.compile(r"^(a=candidate:\S+ \d+ UDP \d+ )(\S+)( \d+ typ host.*)$", re.IGNORECASE)
_CONNECT_TIMEOUT = 10.0


def unavailable() -> str:
    """Why the row cannot run, or "" when it can."""
    probe = subprocess.run([PYTHON, "-c", "import aiolibdatachannel"], check=False,
                           capture_output=True, text=True)
    if probe.returncode == 0:
        return ""
    return (f"aiolibdatachannel not importable by {PYTHON} (it needs CPython >= 3.12;"
            " set AIOLIBDATACHANNEL_PYTHON to such an interpreter that has it)")


def _loopback(sdp: str) -> str:
    lines = []
    for line in sdp.splitlines():
        match = _HOST.match(line)
        if match:
            if ":" in match[2]:
                continue
            line = f"{match[1]}127.0.0.1{match[3]}"
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


async def _measure(size: int, warmup: float, seconds: float, pings: int) -> Figures:
    import asyncio

    from aiolibdatachannel import PeerConnection, RTCConfiguration

    pc_a, pc_b = PeerConnection(RTCConfiguration()), PeerConnection(RTCConfiguration())
    channel_a = await pc_a.create_data_channel("bench")
    offer = await pc_a.create_offer()
    await pc_b.set_remote_description(_loopback(offer.sdp), "offer")
    answer = await pc_b.create_answer()
    await pc_a.set_remote_description(_loopback(answer.sdp), "answer")
    channel_b = await asyncio.wait_for(pc_b.accept_data_channel(), _CONNECT_TIMEOUT)
    await asyncio.wait_for(channel_a.wait_open(), _CONNECT_TIMEOUT)
    result = await measure_asyncio(channel_a.send, channel_a.recv, channel_b.send,
                                   channel_b.recv, size, warmup, seconds, pings)
    await pc_a.aclose()
    await pc_b.aclose()
    return result


def measure(size: int, warmup: float, seconds: float, pings: int) -> Figures:
    """Messages/s, MB/s, p50 and p99 round trip (ms), CPU µs per message (both ends)."""
    child = subprocess.run(
        [PYTHON, __file__, str(size), str(warmup), str(seconds), str(pings)],
        check=True, capture_output=True, text=True,
        timeout=warmup + seconds + 2 * _CONNECT_TIMEOUT + pings)
    rate, megabytes, p50, p99, cpu_us = json.loads(child.stdout)
    return rate, megabytes, p50, p99, cpu_us


if __name__ == "__main__":
    import asyncio

    print(json.dumps(asyncio.run(_measure(int(sys.argv[1]), float(sys.argv[2]),
                                          float(sys.argv[3]), int(sys.argv[4])))))
