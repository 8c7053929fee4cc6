"""The link layer and its runner with a toy core on the contract (``taiinet.core``):
the runner carries out ``Send``/``SetTimer``/``CloseLink``/``ProbeLink`` for any
core, dispatches items by protocol id, and bounds what each link holds.
Memory links, trio's MockClock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from taiinet.core import CloseLink, NeighborUp, ProbeLink, Send, SetTimer
from taiinet.errors import ConnectionClosed, RemoteProtocolError
from taiinet.link.config import LinkConfig
from taiinet.link.registry import ProtocolCodec, ProtocolRegistry
from taiinet.link.runner import Runner
from taiinet.transport.connection import Connection
from taiinet.transport.limits import DEFAULT_IDLE_TIMEOUT
from taiinet.transport.memory import memory_connection_pair
from taiinet.wire.framing import decode_link_frame, encode_item, join_items
from taiinet.wire.identity import Identity
from taiinet.wire.keepalive import LINK_PROTOCOL, decode_control, encode_ping, pong_item
from taiinet.wire.peer_id import PeerId

ME, PEER = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
ECHO = 200


class BadEcho(RemoteProtocolError):
    """An echo body that is not a number."""


@dataclass(frozen=True, slots=True)
class Echo:
    n: int


def _decode(body: bytes) -> Echo:
    if not body.isdigit():
        raise BadEcho(f"not a number: {body!r}")
    return Echo(int(body))


ECHO_CODEC = ProtocolCodec(protocol_id=ECHO, name="echo", message_types=(Echo,),
                           encode=lambda m: str(m.n).encode(), decode=_decode)


class EchoCore:
    """Answers ``Echo(n)`` with ``Echo(n + 1)``; ticks once a second; closes on 0."""

    def __init__(self) -> None:
        self.heard: list[PeerId] = []
        self.down: list[PeerId] = []
        self.up: list[tuple[PeerId, str | None]] = []
        self.refuse = False

    def start(self, now: float) -> list[Any]:
        return [SetTimer(at=now + 1.0, timer=1)]

    def handle_message(self, peer: PeerId, message: Echo, now: float) -> list[Any]:
        if message.n == 0:
            return [CloseLink(peer=peer)]
        return [Send(peer=peer, message=Echo(message.n + 1)), NeighborUp(peer=peer)]

    def handle_timer(self, timer: int, now: float) -> list[Any]:
        return [("tick", timer, now), SetTimer(at=now + 1.0, timer=timer + 1)]

    def handle_link_down(self, peer: PeerId, now: float) -> list[Any]:
        self.down.append(peer)
        return []

    def handle_link_up(self, peer: PeerId, address: str | None, now: float) -> list[Any]:
        self.up.append((peer, address))
        return []

    def heard_from(self, peer: PeerId, now: float) -> None:
        self.heard.append(peer)

    def admit_frame(self, peer: PeerId, size: int, messages: int,
                    now: float) -> list[Any] | None:
        return [] if self.refuse else None


async def _no_dial(peer: PeerId) -> Connection:
    raise AssertionError("nothing to dial")


@asynccontextmanager
async def echo_runner() -> AsyncIterator[tuple[EchoCore, Runner]]:
    """An ``EchoCore`` under a running ``Runner`` that dials nobody; stopped on exit."""
    core = EchoCore()
    runner = Runner(core, _no_dial)
    runner.register(ECHO_CODEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        yield core, runner
        nursery.cancel_scope.cancel()


def _items(frame: bytes) -> list[tuple[int, bytes]]:
    return decode_link_frame(frame)


async def test_the_runner_carries_out_a_contract_cores_actions(autojump_clock: object) -> None:
    core, events = EchoCore(), []
    runner = Runner(core, _no_dial, on_event=events.append)
    runner.register(ECHO_CODEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        ours, theirs = await memory_connection_pair(PEER, ME)
        runner.add_connection(theirs)
        await ours.send(join_items([encode_item(ECHO, b"41"), encode_item(ECHO, b"1"),
                                    encode_item(77, b"nobody runs 77")]))
        # Both answers queued in one input go out in one frame.
        assert _items(await ours.receive()) == [(ECHO, b"42"), (ECHO, b"2")]
        assert core.heard == [PEER.peer_id] and runner.protocols.unknown_items == 1
        assert events == [NeighborUp(peer=PEER.peer_id)] * 2
        await trio.sleep(2.5)
        assert [e for e in events if isinstance(e, tuple)] == [("tick", 1, 1.0),
                                                                ("tick", 2, 2.0)]
        runner.apply([ProbeLink(peer=PEER.peer_id)])
        [(protocol, body)] = _items(await ours.receive())
        assert (protocol, decode_control(body)) == (LINK_PROTOCOL, ("ping", 0))
        await ours.send(encode_item(ECHO, b"0"))  # the core closes the link
        with pytest.raises(ConnectionClosed):
            await ours.receive()
        await trio.sleep(0.1)
        assert core.down == [] and runner.links.links == {}  # closed on purpose: no link down
        nursery.cancel_scope.cancel()


async def test_a_body_its_codec_rejects_drops_the_peer(autojump_clock: object) -> None:
    core = EchoCore()
    runner = Runner(core, _no_dial)
    runner.register(ECHO_CODEC)
    beside: list[PeerId] = []  # a protocol composed beside the core hears of it too
    runner.register(ProtocolCodec(protocol_id=201, name="beside", message_types=(bytes,),
                                  encode=bytes, decode=bytes),
                    lambda *_: None, link_down=lambda peer, _now: beside.append(peer))
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        ours, theirs = await memory_connection_pair(PEER, ME)
        runner.add_connection(theirs)
        await ours.send(join_items([encode_item(ECHO, b"x"), encode_item(ECHO, b"5")]))
        with pytest.raises(ConnectionClosed):
            while True:
                assert await ours.receive() == b"", "nothing after the bad item is handled"
        await trio.sleep(0.1)
        assert core.down == beside == [PEER.peer_id]
        nursery.cancel_scope.cancel()


async def test_a_frame_over_budget_is_dropped_unread(autojump_clock: object) -> None:
    async with echo_runner() as (core, runner):
        ours, theirs = await memory_connection_pair(PEER, ME)
        runner.add_connection(theirs)
        core.refuse = True
        await ours.send(encode_item(ECHO, b"1"))
        await ours.send(encode_ping(9))
        await trio.sleep(0.1)
        # Neither answered nor heard: both frames dropped before anything was used.
        assert runner.frames_refused == 2 and core.heard == []
        core.refuse = False
        await ours.send(encode_item(ECHO, b"1"))
        assert _items(await ours.receive()) == [(ECHO, b"2")]


async def test_a_peer_that_does_not_read_loses_its_link_when_its_queue_fills(
        autojump_clock: object) -> None:
    core = EchoCore()
    far_ends: list[Connection] = []

    async def dial(peer: PeerId) -> Connection:
        ours, theirs = await memory_connection_pair(ME, PEER, capacity=1)
        far_ends.append(theirs)
        return ours

    runner = Runner(core, dial, link_config=LinkConfig(send_queue=4))
    runner.register(ECHO_CODEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        sent = 0
        while not core.down and sent < 100:
            sent += 1
            runner.apply([Send(peer=PEER.peer_id, message=Echo(sent))])
            await trio.sleep(0.01)
        # The memory link holds one frame, the queue four: a few more and it is dropped.
        assert core.down == [PEER.peer_id] and sent < 20
        nursery.cancel_scope.cancel()


def test_an_item_of_the_cores_own_protocol_goes_to_the_core_without_the_registry() -> None:
    """An item of a protocol registered with the core's handler and no ``admit`` is
    decoded and handed to ``handle_message`` by ``handle_item`` itself (every document
    a node receives takes this path); others still go through the registry."""
    core, events = EchoCore(), []
    runner = Runner(core, _no_dial, on_event=events.append)
    runner.register(ECHO_CODEC)
    admitted: list[PeerId] = []
    runner.register(ProtocolCodec(protocol_id=201, name="admitted", message_types=(),
                                  encode=bytes, decode=_decode),
                    handle=lambda peer, message, now: events.append(message),
                    admit=lambda peer, now: admitted.append(peer) is None)
    dispatched: list[int] = []
    dispatch = runner.protocols.dispatch

    def counted(peer: PeerId, protocol: int, body: bytes, now: float) -> None:
        dispatched.append(protocol)
        dispatch(peer, protocol, body, now)

    runner.protocols.dispatch = counted  # type: ignore[method-assign]
    runner.links.enqueue = lambda *args, **kwargs: None  # type: ignore[method-assign]
    runner.handle_item(PEER.peer_id, ECHO, b"41", 0.0)
    runner.handle_item(PEER.peer_id, 201, b"7", 0.0)
    runner.handle_item(PEER.peer_id, 77, b"nobody runs 77", 0.0)
    assert events == [NeighborUp(peer=PEER.peer_id), Echo(7)]
    assert dispatched == [201, 77] and admitted == [PEER.peer_id]
    assert runner.protocols.unknown_items == 1
    with pytest.raises(BadEcho):
        runner.handle_item(PEER.peer_id, ECHO, b"x", 0.0)


def test_the_registry_refuses_reserved_and_duplicate_ids() -> None:
    registry = ProtocolRegistry()
    registry.register(ECHO_CODEC, lambda *_: None)
    with pytest.raises(Exception, match="registered already"):
        registry.register(ECHO_CODEC, lambda *_: None)
    for reserved in (0, LINK_PROTOCOL):
        with pytest.raises(Exception, match="reserved"):
            ProtocolCodec(protocol_id=reserved, name="x", message_types=(), encode=bytes,
                          decode=bytes)
    with pytest.raises(Exception, match="no protocol registered"):
        registry.encode(random.Random())


async def _frames_with_late_item(rounds: int, *, busy: bool) -> list[list[int]]:
    """The ``Echo`` numbers of each frame the peer gets when an item is queued
    ``rounds`` scheduler rounds after the sender took up its last ones.

    ``busy``: the peer reads nothing until items 2 and 3 are queued, so the
    sender is writing 2 when 3 comes (a busy link); else the link is idle.
    """
    far_ends: list[Connection] = []

    async def dial(peer: PeerId) -> Connection:
        ours, theirs = await memory_connection_pair(ME, PEER, capacity=1)
        far_ends.append(theirs)
        return ours

    def send(n: int) -> None:
        runner.apply([Send(peer=PEER.peer_id, message=Echo(n))])

    async def queue_later(n: int) -> None:
        for _ in range(rounds):
            await trio.lowlevel.checkpoint()
        send(n)

    runner = Runner(EchoCore(), dial)
    runner.register(ECHO_CODEC)
    frames: list[list[int]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        send(1)
        await trio.sleep(1)
        [far] = far_ends
        if busy:
            send(2)
            await trio.sleep(1)
            send(3)
            await trio.sleep(1)
            frames.append([int(body) for _p, body in _items(await far.receive())])
            nursery.start_soon(queue_later, 4)
        else:
            frames.append([int(body) for _p, body in _items(await far.receive())])
            send(2)
            nursery.start_soon(queue_later, 3)
        while True:
            with trio.move_on_after(1):
                frames.append([int(body) for _p, body in _items(await far.receive())])
                continue
            break
        nursery.cancel_scope.cancel()
    return frames


async def test_a_busy_sender_waits_scheduler_rounds_for_more_items_an_idle_one_does_not(
        autojump_clock: object) -> None:
    """A sender that items reached while it wrote lets ``BATCH_ROUNDS`` scheduler
    rounds pass before it takes its next batch, so what other tasks queue
    meanwhile shares the frame; the wait is bounded.  A sender woken from an
    empty queue lets one round pass: what is queued later goes in the next frame."""
    from taiinet.link.manager import BATCH_ROUNDS

    assert await _frames_with_late_item(3, busy=True) == [[1], [2], [3, 4]]
    assert await _frames_with_late_item(2 * BATCH_ROUNDS, busy=True) == [[1], [2], [3], [4]]
    assert await _frames_with_late_item(0, busy=False) == [[1], [2, 3]]
    # (1 round later: either, as trio orders the tasks of one round at random.)
    assert await _frames_with_late_item(3, busy=False) == [[1], [2], [3]]


async def test_flush_returns_when_the_link_goes_not_on_a_timer(autojump_clock: object) -> None:
    """``flush`` (what ``Node.hand_off`` waits on) is woken by the link going
    away, at that instant, and by the write it waits for."""
    core = EchoCore()
    far_ends: list[Connection] = []

    async def dial(peer: PeerId) -> Connection:
        ours, theirs = await memory_connection_pair(ME, PEER, capacity=1)
        far_ends.append(theirs)
        return ours

    runner = Runner(core, dial)
    runner.register(ECHO_CODEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        # The far end reads nothing: the first frame fills the link, the second blocks.
        runner.apply([Send(peer=PEER.peer_id, message=Echo(1))])
        await trio.sleep(1)
        runner.apply([Send(peer=PEER.peer_id, message=Echo(2))])
        results: list[tuple[bool, float]] = []

        async def flush() -> None:
            results.append((await runner.links.flush(PEER.peer_id), trio.current_time()))

        nursery.start_soon(flush)
        await trio.sleep(5)
        assert results == []
        dropped_at = trio.current_time()
        runner.links.drop(PEER.peer_id)
        await trio.sleep(5)
        assert results == [(False, dropped_at)]
        # A flush that the writes complete returns True once they are written.
        runner.apply([Send(peer=PEER.peer_id, message=Echo(9))])
        nursery.start_soon(flush)
        await trio.sleep(1)
        [far_end] = far_ends[1:]
        assert _items(await far_end.receive()) == [(ECHO, b"9")]
        await trio.sleep(1)
        assert results[1] == (True, dropped_at + 5)
        nursery.cancel_scope.cancel()


async def test_with_two_connections_it_sends_where_the_peer_sends(autojump_clock: object) -> None:
    """Two peers that dialed each other at once hold two connections: each
    sends on the one a frame last came from, so both settle on one and the
    other falls idle both ways (its idle deadline closes it with nothing in
    flight) instead of each side writing on a connection the other no longer
    writes on (docs/protocol.md 4.3)."""
    async with echo_runner() as (_, runner):
        older_far, older = await memory_connection_pair(PEER, ME)
        newer_far, newer = await memory_connection_pair(PEER, ME)
        runner.add_connection(older)
        runner.add_connection(newer)
        await older_far.send(encode_item(ECHO, b"1"))
        with trio.fail_after(1):
            assert _items(await older_far.receive()) == [(ECHO, b"2")]
        await newer_far.send(encode_item(ECHO, b"5"))
        assert _items(await newer_far.receive()) == [(ECHO, b"6")]
        runner.apply([ProbeLink(peer=PEER.peer_id)])
        [(protocol, body)] = _items(await newer_far.receive())
        assert (protocol, decode_control(body)) == (LINK_PROTOCOL, ("ping", 0))


async def test_a_connection_that_ends_with_frames_perhaps_unread_fails_the_link(
        autojump_clock: object) -> None:
    """The cancelled join dial: the peer finished the handshake of a second
    connection, so this side sends on it (the newest), then the peer closes it
    without reading.  The frame written there is lost; the link must not stay
    up as if nothing happened: it fails, and the core hears the link go
    (docs/protocol.md 4.3)."""
    async with echo_runner() as (core, runner):
        older_far, older = await memory_connection_pair(PEER, ME)
        runner.add_connection(older)
        await older_far.send(encode_item(ECHO, b"1"))
        with trio.fail_after(1):
            assert _items(await older_far.receive()) == [(ECHO, b"2")]
        newer_far, newer = await memory_connection_pair(PEER, ME)
        runner.add_connection(newer)  # the answerer's side of the join dial
        runner.apply([Send(peer=PEER.peer_id, message=Echo(7))])
        assert await runner.links.flush(PEER.peer_id)
        await newer_far.aclose()  # the dial was cancelled: closed unread
        with pytest.raises(ConnectionClosed), trio.fail_after(1):
            await older_far.receive()  # the whole link goes
        await trio.sleep(0.1)
        assert core.down == [PEER.peer_id] and runner.links.links == {}


async def test_the_connection_left_idle_by_a_crossed_dial_ends_without_failing_the_link(
        autojump_clock: object) -> None:
    """Two peers dialed each other at once: this side wrote on its own
    connection, then both settled on the other one, so nothing ever came back
    on the first.  When the idle deadline closes it (``read_within`` after the
    last write on it, the peer long done reading it), the link stays up; it
    used to fail, and the core repaired a live neighbour (docs/protocol.md 4.3)."""
    async with echo_runner() as (core, runner):
        older_far, older = await memory_connection_pair(PEER, ME)
        runner.add_connection(older)  # this side's dial
        runner.apply([Send(peer=PEER.peer_id, message=Echo(7))])
        with trio.fail_after(1):
            assert _items(await older_far.receive()) == [(ECHO, b"7")]
        newer_far, newer = await memory_connection_pair(PEER, ME)
        runner.add_connection(newer)  # the peer's dial: both send here from now on
        await newer_far.send(encode_item(ECHO, b"1"))
        with trio.fail_after(1):
            assert _items(await newer_far.receive()) == [(ECHO, b"2")]
        await trio.sleep(DEFAULT_IDLE_TIMEOUT)  # the default read_within
        await older_far.aclose()  # idle both ways since: the idle deadline
        await trio.sleep(0.1)
        assert core.down == [] and runner.links.is_linked(PEER.peer_id)
        runner.apply([Send(peer=PEER.peer_id, message=Echo(9))])
        with trio.fail_after(1):
            assert _items(await newer_far.receive()) == [(ECHO, b"9")]


async def test_a_connection_that_ends_with_nothing_unanswered_keeps_the_link(
        autojump_clock: object) -> None:
    """A second connection that ends with every frame written on it followed
    by one from the peer (here: nothing written on it at all, and a reply to
    the last frame on the other) loses nothing: the link stays up."""
    async with echo_runner() as (core, runner):
        older_far, older = await memory_connection_pair(PEER, ME)
        newer_far, newer = await memory_connection_pair(PEER, ME)
        runner.add_connection(older)
        runner.add_connection(newer)
        await older_far.send(encode_item(ECHO, b"1"))
        with trio.fail_after(1):
            assert _items(await older_far.receive()) == [(ECHO, b"2")]
        await older_far.send(pong_item(0))  # answers on the written connection
        await trio.sleep(0.1)
        await newer_far.aclose()
        await trio.sleep(0.1)
        assert core.down == [] and runner.links.is_linked(PEER.peer_id)
        runner.apply([Send(peer=PEER.peer_id, message=Echo(7))])
        with trio.fail_after(1):
            assert _items(await older_far.receive()) == [(ECHO, b"7")]


async def test_a_connection_added_as_the_runner_stops_is_closed_not_a_crash(
        autojump_clock: object) -> None:
    """A join dial that finishes while the node closes hands over its connection
    after the link layer's last task ended but before the layer returned (its
    nursery then refuses new tasks): the connection is closed, nothing raises."""
    core = EchoCore()
    runner = Runner(core, _no_dial)
    runner.register(ECHO_CODEC)
    far, near = await memory_connection_pair(PEER, ME)
    raised: list[BaseException] = []
    added: list[bool] = []

    class AddOnLastExit(trio.abc.Instrument):
        def task_exited(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("_serve_until_stopped"):
                added.append(True)
                try:  # the nursery is closed now; the runner has not resumed
                    runner.add_connection(near)
                except BaseException as exc:  # (recorded for the assertion)
                    raised.append(exc)

    trio.lowlevel.add_instrument(AddOnLastExit())
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        nursery.cancel_scope.cancel()
    assert added == [True] and raised == []
    with pytest.raises(ConnectionClosed):
        await far.receive()


async def test_one_message_sent_to_several_peers_is_encoded_once(autojump_clock: object) -> None:
    encoded: list[int] = []

    def encode(message: Echo) -> bytes:
        encoded.append(message.n)
        return str(message.n).encode()

    runner = Runner(EchoCore(), _no_dial)
    runner.register(ProtocolCodec(protocol_id=ECHO, name="echo", message_types=(Echo,),
                                  encode=encode, decode=_decode))
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        a, b, c = (Identity.from_seed(bytes([i]) * 32).peer_id for i in (3, 4, 5))
        shared = Echo(7)
        runner.apply([Send(peer=a, message=shared), Send(peer=b, message=shared),
                      Send(peer=c, message=Echo(7)), Send(peer=a, message=Echo(8))])
        # An equal message that is another object is encoded again: only the
        # very object just encoded is reused.
        assert encoded == [7, 7, 8]
        assert [list(runner.links.links[p].queue) for p in (a, b, c)] == [
            [encode_item(ECHO, b"7"), encode_item(ECHO, b"8")], [encode_item(ECHO, b"7")],
            [encode_item(ECHO, b"7")]]
        nursery.cancel_scope.cancel()
