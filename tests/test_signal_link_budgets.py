"""Signal links stay alive while quiet (Ping/Pong) and every frame counts in the
per-link budgets, Pings too."""

from __future__ import annotations

import contextlib
import random

import trio
import trio.testing

from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.signal.api import open_signaller
from taiinet.signal.client import open_signal_client
from taiinet.signal.codec import Hello, Role, decode_signal, encode_signal
from taiinet.signal.server import SignallerConfig
from taiinet.signal.transport import MemorySignalTransport, WebSocketSignalTransport
from taiinet.transport.limits import LinkDeadlines, ListenerLimits
from taiinet.transport.memory import MemoryNetwork
from taiinet.wire.framing import decode_link_frame, encode_uvarint
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import decode_control, encode_ping, encode_pong, ping_nonce

SIGNALLER = Identity.from_seed(b"s" * 32)
MALLORY = Identity.from_seed(b"m" * 32)


def _control(frame: bytes) -> tuple[str, int] | None:
    """``(kind, nonce)`` of a one-item link control frame, else ``None``."""
    [(protocol, body)] = decode_link_frame(frame)
    return decode_control(body) if protocol == 1 else None


def padded_pong(nonce: int, size: int) -> bytes:
    """A valid ``Pong`` frame of about ``size`` bytes (an unknown field pads it), which
    the signaller reads and skips."""
    padding = bytes(size)
    return (encode_pong(nonce) + encode_uvarint((1000 << 3) | 2)
            + encode_uvarint(len(padding)) + padding)


async def test_a_quiet_link_is_pinged_and_pings_are_answered(
        autojump_clock: trio.testing.MockClock) -> None:
    transport = MemorySignalTransport(MemoryNetwork())
    config = SignallerConfig(keepalive_interval=20.0)
    async with open_signaller(identity=SIGNALLER, transport=transport, config=config,
                              rng=random.Random(0)) as sig:
        link = await transport.network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        assert isinstance(decode_signal(await link.receive()), Hello)
        start = trio.current_time()
        with trio.fail_after(100):
            for _ in range(3):
                assert ping_nonce(await link.receive()) == 0
        assert trio.current_time() - start == 60.0  # one every 20 s of quiet
        await link.send(encode_ping(77))
        answer = _control(await link.receive())
        assert answer == ("pong", 77)
        await link.aclose()


async def test_every_frame_counts_in_the_byte_budget(
        autojump_clock: trio.testing.MockClock) -> None:
    """Frames the signal layer skips are still read at the link's byte rate."""
    transport = MemorySignalTransport(MemoryNetwork())
    config = SignallerConfig(peer_byte_rate=10_000, peer_byte_burst=20_000, peer_burst=1000)
    async with open_signaller(identity=SIGNALLER, transport=transport, config=config,
                              rng=random.Random(0)) as sig:
        link = await transport.network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        assert isinstance(decode_signal(await link.receive()), Hello)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            async def flood() -> None:
                for _ in range(12):
                    await link.send(padded_pong(1, 10_000))
                await link.send(encode_ping(5))

            nursery.start_soon(flood)
            answer = _control(await link.receive())
        assert answer == ("pong", 5)
        # 20 KB of burst, then about 100 KB more at 10 KB/s
        assert trio.current_time() - start >= 9.0
        await link.aclose()


async def test_a_registered_client_outlives_the_idle_deadline_over_websockets() -> None:
    """Real sockets, real time: idle deadline 0.5 s, keep-alive every 0.15 s."""
    transport = WebSocketSignalTransport(
        limits=ListenerLimits(deadlines=LinkDeadlines(idle=0.5)))
    config = SignallerConfig(keepalive_interval=0.15)
    async with (open_signaller(transport=transport, config=config) as sig,
                open_signal_client(Identity.generate(), [sig.url]) as client):
        with trio.fail_after(10):
            await client.wait_registered()
        link = client._connection
        await trio.sleep(2.0)  # four idle deadlines without a signal message
        assert client._connection is link and link is not None and not link.closed


async def test_a_link_that_keeps_flooding_is_dropped(
        autojump_clock: trio.testing.MockClock) -> None:
    transport = MemorySignalTransport(MemoryNetwork())
    config = SignallerConfig(peer_rate=2.0, peer_burst=5.0, flood_timeout=10.0)
    async with open_signaller(identity=SIGNALLER, transport=transport, config=config,
                              rng=random.Random(0)) as sig:
        link = await transport.network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        start = trio.current_time()

        async def flood() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await link.send(padded_pong(1, 10))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            with trio.fail_after(60), contextlib.suppress(ConnectionClosed, RemoteProtocolError):
                while True:
                    await link.receive()
            nursery.cancel_scope.cancel()
        assert 10.0 < trio.current_time() - start < 15.0


async def test_a_burst_then_a_pause_is_not_a_flood(
        autojump_clock: trio.testing.MockClock) -> None:
    transport = MemorySignalTransport(MemoryNetwork())
    config = SignallerConfig(peer_rate=2.0, peer_burst=5.0, flood_timeout=10.0)
    async with open_signaller(identity=SIGNALLER, transport=transport, config=config,
                              rng=random.Random(0)) as sig:
        link = await transport.network.dial(MALLORY, sig.peer_id)
        await link.send(encode_signal(Hello(role=Role.PEER, listen_url="")))
        assert isinstance(decode_signal(await link.receive()), Hello)
        for round_ in range(4):  # 8 s of throttling each round, then a pause
            for _ in range(20):
                await link.send(padded_pong(1, 10))
            await link.send(encode_ping(round_))
            while True:
                answer = _control(await link.receive())
                if answer == ("pong", round_):
                    break
            await trio.sleep(10.0)
        assert not link.closed
        await link.aclose()
