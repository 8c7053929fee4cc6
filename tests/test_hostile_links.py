"""Strangers at the door: resets, slowloris, unfinished handshakes, held frames.

Real sockets on loopback: a real ``taiinet signal`` process where the victim's
survival or memory is the point, the in-process WebSocket listener where its
counters suffice.  Attackers bind to 127.0.0.2 so the per-address budget tells
them from the legitimate client on 127.0.0.1 (Linux routes all of 127/8).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio_websocket

from taiinet import ConnectionClosed, Identity
from taiinet.errors import RemoteProtocolError
from taiinet.signal.client import open_signal_client
from taiinet.signal.codec import Hello, Role, encode_signal
from taiinet.transport.limits import LinkDeadlines, ListenerLimits
from taiinet.transport.secure import SecureConnection
from taiinet.transport.websocket import SUBPROTOCOL, connect_websocket, open_websocket_listener

TAIINET = [sys.executable, "-m", "taiinet.cli"]
ATTACKER = "127.0.0.2"
ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


def upgrade_request(port: int) -> bytes:
    return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
            ).encode()


async def raw_socket(port: int, source: str = ATTACKER) -> trio.socket.SocketType:
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    return sock


def reset(sock: trio.socket.SocketType) -> None:
    """Close with RST (SO_LINGER 0) instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def closed_by_peer(sock: trio.socket.SocketType) -> None:
    """Return once the other side closed ``sock`` (whatever it sent before)."""
    while True:
        try:
            if not await sock.recv(65536):
                return
        except ConnectionResetError:
            return


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def signaller_process(*args: str) -> AsyncIterator[tuple[trio.Process, str]]:
    process = await trio.lowlevel.open_process(
        [*TAIINET, "signal", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(30):
            while b"\n" not in buffer:
                chunk = await process.stdout.receive_some()
                assert chunk, "the signaller exited before printing its URL"
                buffer += chunk
        word, _peer, url = buffer.split(b"\n", 1)[0].decode().split()
        assert word == "signaller"
        yield process, url
    finally:
        process.kill()
        await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()


async def a_client_registers(url: str) -> None:
    with trio.fail_after(15):
        async with open_signal_client(Identity.generate(), [url]) as client:
            await client.wait_registered()


async def test_resets_during_the_upgrade_do_not_kill_a_signaller() -> None:
    """Finding 3: the listener read ``ws.remote`` outside any error handling, and a
    client that reset right after its upgrade request killed the process."""
    async with signaller_process() as (process, url):
        port = int(url.rsplit(":", 1)[1])
        for _ in range(20):
            sock = await raw_socket(port)
            await sock.send(upgrade_request(port))
            reset(sock)
        await a_client_registers(url)
        assert process.returncode is None


async def test_slowloris_upgrades_are_cut_and_bounded_per_address() -> None:
    limits = ListenerLimits(upgrade_timeout=1.0, max_unauthenticated_per_address=4)
    async with open_websocket_listener(BOB, limits=limits) as listener:
        slow = [await raw_socket(listener.port) for _ in range(4)]
        for sock in slow:
            await sock.send(b"GET / HTTP/1.1\r\n")
        with trio.fail_after(5):
            while listener.budget.held_by(ATTACKER) != (4, 0):
                await trio.sleep(0.01)
        extra = await raw_socket(listener.port)  # over the address's budget: closed at once
        with trio.fail_after(0.9):
            await closed_by_peer(extra)
        async with connect_websocket(listener.url, ALICE, expected_peer_id=BOB.peer_id):
            link = await listener.accept()
            assert link.remote_peer_id == ALICE.peer_id
        start = trio.current_time()
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                for sock in slow:
                    nursery.start_soon(trickle_until_closed, sock)
        assert trio.current_time() - start < 2.5  # the upgrade deadline, not trio-websocket's 60 s
        assert listener.budget.held_by(ATTACKER) == (0, 0)
        for sock in [*slow, extra]:
            sock.close()


async def trickle_until_closed(sock: trio.socket.SocketType) -> None:
    """Send a header line every 0.2 s until the listener closes the socket."""
    async with trio.open_nursery() as nursery:
        async def send_headers() -> None:
            for index in range(100):
                try:
                    await sock.send(f"X-Slow-{index}: y\r\n".encode())
                except OSError:
                    return
                await trio.sleep(0.2)

        nursery.start_soon(send_headers)
        await closed_by_peer(sock)
        nursery.cancel_scope.cancel()


async def never_handshake(port: int) -> None:
    """Upgrade to a WebSocket, then never send a Noise message; return once cut."""
    stream = trio.SocketStream(await raw_socket(port))
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, f"127.0.0.1:{port}", "/", subprotocols=[SUBPROTOCOL])
            try:
                while True:
                    await ws.get_message()
            except trio_websocket.ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


async def test_unfinished_handshakes_cannot_keep_the_listener_full() -> None:
    """Finding 4: WebSockets that never finish Noise held the listener's slots; now
    one address holds at most its budget, each for the per-message deadline."""
    limits = ListenerLimits(max_connections=16, max_unauthenticated_per_address=4,
                            deadlines=LinkDeadlines(handshake_message=0.5))
    async with open_websocket_listener(BOB, limits=limits) as listener:
        async with trio.open_nursery() as attackers:
            async def keep_reopening() -> None:
                while True:
                    # Refused (503) or reset: the attacker tries again.
                    with trio.move_on_after(2), contextlib.suppress(Exception):
                        await never_handshake(listener.port)
                    await trio.sleep(0.01)

            for _ in range(12):
                attackers.start_soon(keep_reopening)
            with trio.fail_after(5):
                while listener.budget.held_by(ATTACKER)[0] < 4:
                    await trio.sleep(0.01)
            assert listener.budget.total <= 4
            with trio.fail_after(5):
                async with connect_websocket(listener.url, ALICE, expected_peer_id=BOB.peer_id):
                    accepted = await listener.accept()
                    assert accepted.remote_peer_id == ALICE.peer_id
                    await accepted.aclose()
            attackers.cancel_scope.cancel()
        with trio.fail_after(5):
            while listener.budget.total:
                await trio.sleep(0.01)
        start = trio.current_time()
        with trio.fail_after(5):
            await never_handshake(listener.port)  # cut at the per-message deadline
        assert trio.current_time() - start < 3.0


async def test_authenticated_links_are_bounded_per_address() -> None:
    limits = ListenerLimits(max_authenticated_per_address=2)
    async with (open_websocket_listener(BOB, limits=limits) as listener,
                connect_websocket(listener.url, Identity.generate()),
                connect_websocket(listener.url, Identity.generate())):
        first, second = await listener.accept(), await listener.accept()
        async with connect_websocket(listener.url, Identity.generate()) as third:
            with pytest.raises((ConnectionClosed, RemoteProtocolError)), trio.fail_after(5):
                await third.receive()  # refused after its handshake
        with trio.fail_after(5):
            while listener.budget.held_by("127.0.0.1") != (0, 2):
                await trio.sleep(0.01)
        await first.aclose()
        await second.aclose()


#: Links the held-frame attack opens.
HELD_LINKS = 60


async def hold_a_partial_frame(url: str, size: int, sent: list[int], cut: list[float]) -> None:
    """Say hello, then send all but the last Noise message of a large frame; wait."""
    async with connect_websocket(url, Identity.generate()) as link:
        assert isinstance(link, SecureConnection)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        messages = link._session.encrypt_frame(bytes(size))
        try:
            for message in messages[:-1]:
                await link._channel.send_message(message)
            sent.append(size)
            while True:
                await link.receive()
        except (ConnectionClosed, RemoteProtocolError):
            cut.append(trio.current_time())


@pytest.mark.parametrize("size", [(1 << 20) - 64, 120 * 1024], ids=["1MiB", "120KiB"])
async def test_held_partial_frames_are_bounded_and_cut(size: int) -> None:
    """Finding 5: after hello a link could pin a 1 MiB partial frame forever (about
    1.8 MB of the signaller's memory per link).  Now a signal link's frames are at
    most 128 KiB and a started frame must complete within the frame deadline."""
    # All attackers share 127.0.0.1: the address's budget is raised so that this
    # test measures the frame bounds alone.
    async with signaller_process("--frame-timeout", "2", "--max-unauthenticated-per-address",
                                 "100") as (process, url):
        await a_client_registers(url)
        baseline = rss_bytes(process.pid)
        sent: list[int] = []
        cut: list[float] = []
        peak = baseline
        start = trio.current_time()
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(HELD_LINKS):
                    nursery.start_soon(hold_a_partial_frame, url, size, sent, cut)
                while len(cut) < HELD_LINKS:  # sample the victim's memory while links hold
                    peak = max(peak, rss_bytes(process.pid))
                    await trio.sleep(0.05)
        assert len(cut) == HELD_LINKS
        assert max(cut) - start < 15
        growth = max(peak, rss_bytes(process.pid)) - baseline
        print(f"{HELD_LINKS} links holding {size}-byte frames: {len(sent)} held, "
              f"cut after {max(cut) - start:.1f} s, peak RSS +{growth / 1e6:.1f} MB")
        # 60 held 1 MiB frames took ~108 MB before; a generous bound well below that.
        assert growth < 40 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
        await a_client_registers(url)
        assert process.returncode is None
