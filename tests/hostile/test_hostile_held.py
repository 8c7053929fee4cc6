"""Attacks that held up on the old code, and must keep holding: cheap checks.

Each test opens one world (a ``taiinet signal`` process and a legitimate
``sub``/``pub`` pair) and throws a series of malformed or abusive inputs at
one victim, checking after each that the victim dropped the offending link
(or ignored the frame, where the spec says so); at the end the victim is
alive, its RSS grew by at most ``BOUND_MIB`` and the pair still delivers,
exactly once each.
"""

from __future__ import annotations

import collections
import contextlib
import secrets
import signal

import trio
import trio_websocket

from taiinet.errors import TaiiNetError
from taiinet.overlay.messages import Join
from taiinet.signal.codec import Contacts, GetContacts, Register, encode_signal
from taiinet.transport.connection import Connection
from taiinet.wire.identity import Identity
from tests.hostile import attacker as a
from tests.hostile.attacks import ihave_flood
from tests.hostile.procs import LEGIT_QUERY, Child, World, open_world, rss_mib

#: RSS growth allowed to a victim over a whole series of cheap checks (MiB).
BOUND_MIB = 40.0
#: Seconds a victim may take to drop a link that broke the protocol.
DROP_TIMEOUT = 12.0
#: Seconds within which documents published after the series must arrive.
RECOVERY = 15.0


async def assert_dropped(connection: Connection, what: str) -> None:
    assert await a.wait_closed(connection, DROP_TIMEOUT), f"the victim kept a link after {what}"


async def assert_healthy(world: World, victim: Child, rss_before: float) -> None:
    assert victim.alive, world.describe()
    rss = rss_mib(victim.pid)
    assert rss is not None and rss - rss_before <= BOUND_MIB, (rss_before, rss)
    now = trio.current_time()
    assert await world.delivery.wait_sent_after(now, RECOVERY), world.describe()
    assert world.delivery.duplicates == 0, world.delivery.duplicates


async def garbage_before_noise(url: str) -> None:
    """Random bytes instead of an HTTP request, then instead of Noise message 1."""
    stream = await a.raw_connect(url)
    await stream.send_all(secrets.token_bytes(4096) + b"\r\n\r\n")
    with trio.fail_after(DROP_TIMEOUT):
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass  # reset: the victim closed with our garbage unread
    a.rst_close(stream)
    host, port = a.host_port(url)
    async with trio_websocket.open_websocket(host, port, "/", use_ssl=False,
                                             subprotocols=[a.SUBPROTOCOL]) as ws:
        await ws.send_message(secrets.token_bytes(1000))
        with trio.fail_after(DROP_TIMEOUT):
            try:
                while True:
                    await ws.get_message()
            except trio_websocket.ConnectionClosed:
                pass


async def test_signaller_holds_up() -> None:
    with trio.fail_after(120):
        async with open_world() as world:
            victim = world.signaller.child
            url = world.signaller.url
            before = rss_mib(victim.pid) or 0.0
            await garbage_before_noise(url)
            async with a.signal_link(url, register=False) as link:  # 4 GiB length prefix
                await a.send_stream_bytes(link, a.frame_prefix(4 << 30))
                await assert_dropped(link, "a 4 GiB length prefix")
            async with a.signal_link(url, register=False) as link:  # a frame that is no Frame
                await link.send(b"\xff" * 64)
                await assert_dropped(link, "a malformed protobuf frame")
            async with a.signal_link(url) as link:  # other layers' frames are ignored
                await link.send(a.overlay_frame(Join()))
                await link.send(a.gossip_frame(a.document_envelope(
                    Identity.generate(), a.document_value({"x": 1}))))
                await link.send(encode_signal(GetContacts(request_id=9, count=4,
                                                          local_only=False)))
                with trio.fail_after(DROP_TIMEOUT):
                    while not isinstance(await a.next_signal(link), Contacts):
                        pass
            identity = Identity.generate()
            async with a.signal_link(url, identity, register=False) as link:  # a bad signature
                record = bytearray(a.record_envelope(identity, home=victim_id(world),
                                                     home_url=url))
                record[-1] ^= 1
                await link.send(encode_signal(Register(request_id=1, record=bytes(record))))
                await assert_dropped(link, "a record with a bad signature")
            await assert_healthy(world, victim, before)


def victim_id(world: World) -> str:
    return world.signaller.peer_id


async def test_node_holds_up() -> None:
    with trio.fail_after(120):
        async with open_world() as world:
            victim = world.child("sub")
            before = rss_mib(victim.pid) or 0.0
            url = await a.learn_node_url(world.signaller.url, world.sub_peer_id)
            expected = world.sub_peer_id
            await garbage_before_noise(url)
            async with a.secure_connect(url, expected_peer_id=expected) as link:
                await a.send_stream_bytes(link, a.frame_prefix(4 << 30))
                await assert_dropped(link, "a 4 GiB length prefix")
            async with a.secure_connect(url, expected_peer_id=expected) as link:
                await link.send(b"\x1a\x05\xff\xff\xff\xff\xff")
                await assert_dropped(link, "a malformed protobuf frame")
            async with a.secure_connect(url, expected_peer_id=expected) as link:  # too big
                await link.send(a.gossip_frame(secrets.token_bytes(1 << 20)[:(1 << 20) - 64]))
                await assert_dropped(link, "a 1 MiB document")
            publisher = Identity.generate()
            forged = bytearray(a.document_envelope(
                publisher, a.document_value({**LEGIT_QUERY, "seq": -1})))
            forged[-1] ^= 1
            replayed = a.document_envelope(publisher, a.document_value({**LEGIT_QUERY,
                                                                         "seq": -2}))
            for _ in range(2):  # the replay comes on two links, twice on each
                async with a.secure_connect(url, expected_peer_id=expected) as link:
                    await link.send(a.overlay_frame(Join()))
                    await link.send(a.pong_frame())  # another layer's frame: ignored
                    await link.send(a.gossip_frame(replayed, origin=publisher.peer_id))
                    await link.send(a.gossip_frame(replayed, origin=publisher.peer_id))
                    with trio.fail_after(RECOVERY):
                        while -2 not in world.delivery.received:
                            await world.delivery.changed.wait()
                    # Last: the victim may drop a link that sent a forgery.
                    with contextlib.suppress(TaiiNetError):
                        await link.send(a.gossip_frame(bytes(forged)))
                    await trio.sleep(0.5)
            counts: collections.Counter[str] = collections.Counter()
            with trio.move_on_after(3.0):
                await ihave_flood(world, counts)
            assert counts["ihaves"] > 0
            await assert_healthy(world, victim, before)
            assert -1 not in world.delivery.received, "a document with a bad signature arrived"


async def test_killing_the_signaller_does_not_stop_linked_peers() -> None:
    with trio.fail_after(90):
        async with open_world() as world:
            world.signaller.child.process.send_signal(signal.SIGKILL)
            killed = trio.current_time()
            await trio.sleep(3.0)
            end = trio.current_time()
            assert await world.delivery.wait_sent_after(end, RECOVERY), world.describe()
            figures = world.delivery.window(killed, end)
            assert figures.delivered == figures.sent and figures.longest_gap < 3.0, figures
            assert world.child("sub").alive and world.child("pub").alive, world.describe()
