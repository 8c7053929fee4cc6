"""An optional row of ``bench/transport.py``: a raw libdatachannel data channel.

libdatachannel is a C++ WebRTC data-channel stack (libjuice ICE, OpenSSL
DTLS, usrsctp SCTP); ``pylibdatachannel`` binds it with pybind11.  It is not a
project dependency: the row is skipped when the package does not import.

Both peers live in this process.  libdatachannel runs its own threads and
calls back from them; the receiving side hands messages to the main thread
through a queue, as a bridge to trio would.  The binding exposes no
``bufferedAmount``, so the sender keeps at most ``SEND_HIGH_WATER`` bytes in
flight (sent but not yet received), the same mark the aiortc rows use.  The
binding cannot choose candidate addresses either: candidates are rewritten to
127.0.0.1 (the ICE socket is bound to every address, so the port is the same)
and IPv6 ones dropped, so nothing leaves loopback.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

from _window import Figures, Window, figures

from taiinet.transport._asyncio_channel import SEND_HIGH_WATER

try:
    import pylibdatachannel as rtc
except ImportError as error:  # optional: the row is skipped
    rtc = None
    IMPORT_ERROR = f"pylibdatachannel not importable ({error})"
else:
    IMPORT_ERROR = ""

_IPV4_HOST = re.compile(r"^(a=candidate:\S+ \d+ UDP \d+ )(\d+\.\d+\.\d+\.\d+)( \d+ typ host.*)$")
_CONNECT_TIMEOUT = 10.0
_ATTEMPTS = 5


def _loopback(candidate: str) -> str | None:
    match = _IPV4_HOST.match(candidate)
    return f"{match[1]}127.0.0.1{match[3]}" if match else None


class _Flow:
    """Bytes in flight from sender to receiver, with a condition to wait on."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.changed = threading.Condition()

    def wait_for_room(self) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.sent - self.received <= SEND_HIGH_WATER)

    def on_received(self, size: int) -> None:
        with self.changed:
            self.received += size
            self.changed.notify()


def _connect() -> tuple[object, object, object, object]:
    assert rtc is not None
    pc_a = rtc.PeerConnection(rtc.Configuration([]))
    pc_b = rtc.PeerConnection(rtc.Configuration([]))
    for pc, other in ((pc_a, pc_b), (pc_b, pc_a)):
        def on_candidate(candidate: rtc.Candidate, other: rtc.PeerConnection = other) -> None:
            rewritten = _loopback(candidate.candidate)
            if rewritten is not None:
                other.add_remote_candidate(rtc.Candidate(rewritten, candidate.mid))
        pc.on_local_candidate(on_candidate)
    pc_a.on_local_description(pc_b.set_remote_description)
    pc_b.on_local_description(pc_a.set_remote_description)
    remote: queue.Queue[rtc.DataChannel] = queue.Queue()
    pc_b.on_data_channel(remote.put)
    opened = threading.Event()
    channel_a = pc_a.create_data_channel("bench")
    channel_a.on_open(opened.set)
    channel_b = remote.get(timeout=_CONNECT_TIMEOUT)
    if not opened.wait(_CONNECT_TIMEOUT) and not channel_a.is_open:
        raise TimeoutError("libdatachannel channel did not open")
    return pc_a, pc_b, channel_a, channel_b


def _measure(size: int, warmup: float, seconds: float, pings: int) -> Figures:
    _pc_a, _pc_b, channel_a, channel_b = _connect()  # the peers must stay referenced
    inbox_a: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    inbox_b: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    flow = _Flow()

    def on_message_b(message: str | bytes) -> None:
        assert isinstance(message, bytes)
        inbox_b.put(message)
        flow.on_received(len(message))

    channel_a.on_message(inbox_a.put)
    channel_b.on_message(on_message_b)
    payload = b"\x00" + bytes(size - 1)

    def sender() -> None:
        deadline = time.perf_counter() + warmup + seconds + 0.2
        while time.perf_counter() < deadline:
            flow.wait_for_room()
            flow.sent += size
            channel_a.send(payload)
        flow.wait_for_room()
        flow.sent += size
        channel_a.send(b"\x01" + bytes(size - 1))

    sending = threading.Thread(target=sender)
    sending.start()
    message = inbox_b.get()
    window = Window(warmup, seconds)
    while message[0] == 0:
        window.arrived()
        message = inbox_b.get()
    sending.join()

    round_trips = []
    ping = b"\x02" + bytes(size - 1)
    for _ in range(pings):
        began = time.perf_counter()
        channel_a.send(ping)
        channel_b.send(inbox_b.get())
        inbox_a.get()
        round_trips.append(time.perf_counter() - began)
    return figures(window, size, round_trips)


def measure(size: int, warmup: float, seconds: float, pings: int) -> Figures:
    """Messages/s, MB/s, p50 and p99 round trip (ms), CPU µs per message (both ends).

    Runs in a child process: pylibdatachannel 0.2.0 aborts the process when
    peer connections are closed or destroyed at exit (``terminate called
    without an active exception``), and now and then in mid-run (heap
    corruption), so the child prints its figures and leaves with ``os._exit``
    without closing anything, and a crashed or hung run is reported and run again.
    """
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            child = subprocess.run(
                [sys.executable, __file__, str(size), str(warmup), str(seconds), str(pings)],
                check=False, capture_output=True, text=True,
                timeout=warmup + seconds + 2 * _CONNECT_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  libdatachannel child hung (attempt {attempt}), killed", file=sys.stderr)
            continue
        if child.returncode == 0:
            rate, megabytes, p50, p99, cpu_us = json.loads(child.stdout)
            return rate, megabytes, p50, p99, cpu_us
        last_line = (child.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"  libdatachannel child crashed (attempt {attempt}, exit {child.returncode}):"
              f" {last_line}", file=sys.stderr)
    raise RuntimeError(f"libdatachannel child failed {_ATTEMPTS} times")


if __name__ == "__main__":
    print(json.dumps(_measure(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]),
                              int(sys.argv[4]))), flush=True)
    os._exit(0)
